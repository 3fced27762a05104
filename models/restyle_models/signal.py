"""Signal definitions shared with the Rust engine (docs/CONTRACT.md): windows, STFT frames,
log-magnitudes, and the classifier's mel features.

Everything here must match `dsp/` bit for bit in meaning, so it is written out from the
contract's formulas instead of borrowed from a library with its own conventions.
"""
from __future__ import annotations

import numpy as np

SAMPLE_RATE = 48_000
N_FFT = 1024
HOP = 128
N_BINS = N_FFT // 2 + 1
LOGMAG_EPS = 1e-10
FEATURE_NAME = "logmag_ln_eps1e-10"

# Classifier feature recipe (also written into the manifest so the plugin can reproduce it).
N_MELS = 40
MEL_LOG_EPS = 1e-6
CLASSIFIER_FRAMES = 32  # frames averaged per classifier decision (32 * 128 / 48 kHz = 85 ms)


def periodic_hann(length: int) -> np.ndarray:
    """`H_L[n] = 0.5 - 0.5 cos(2 pi n / L)`, the contract's periodic Hann (float64)."""
    n = np.arange(length, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)


def analysis_window(n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """Asymmetric analysis window `h_a` of docs/CONTRACT.md: a long rising sqrt-Hann over
    `N - M` samples, then the falling half of a short sqrt-Hann of length `2M`."""
    n, m = n_fft, hop
    h = np.zeros(n, dtype=np.float64)
    long_w = periodic_hann(2 * (n - m))
    short_w = periodic_hann(2 * m)
    idx = np.arange(n)
    first = idx < n - m
    h[first] = np.sqrt(long_w[idx[first]])
    h[~first] = np.sqrt(short_w[idx[~first] - (n - 2 * m)])
    return h


def synthesis_window(n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """Synthesis window `h_s`: zero before `N - 2M`, then `H_2M / h_a`, so `h_a * h_s` is a
    periodic Hann of length `2M` at the end of the frame (overlap-adds to 1 at hop `M`)."""
    n, m = n_fft, hop
    h_a = analysis_window(n, m)
    short_w = periodic_hann(2 * m)
    h = np.zeros(n, dtype=np.float64)
    for i in range(n - 2 * m, n):
        h[i] = short_w[i - (n - 2 * m)] / h_a[i] if h_a[i] > 0 else 0.0
    return h


def stft_frames(audio: np.ndarray, n_fft: int = N_FFT, hop: int = HOP,
                chunk: int = 8192) -> np.ndarray:
    """Complex spectra of a mono signal as the streaming engine sees it: frame `k` is the `n_fft`
    newest samples after `(k + 1) * hop` samples have arrived (zeros before the start), times
    `h_a`, through an unscaled real FFT. Returns complex64 [frames, n_fft/2+1]."""
    if audio.ndim != 1:
        raise ValueError(f"stft_frames expects mono audio, got shape {audio.shape}")
    x = np.concatenate([np.zeros(n_fft - hop, dtype=np.float64), audio.astype(np.float64)])
    n_frames = (len(x) - n_fft) // hop + 1
    win = analysis_window(n_fft, hop)
    out = np.empty((n_frames, n_fft // 2 + 1), dtype=np.complex64)
    view = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    for s in range(0, n_frames, chunk):
        out[s:s + chunk] = np.fft.rfft(view[s:s + chunk] * win, axis=1)
    return out


def overlap_add(spec: np.ndarray, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """The engine's synthesis, without its delay: `irfft(Y) * h_s` overlap-added at `hop`, sample
    `j` of the result lined up with sample `j` of the audio `stft_frames` analysed: an
    unmodified spectrum gives the audio back, but for the last hop, which waits for a frame that
    never comes. float64 [frames * hop]."""
    frames = np.fft.irfft(spec.astype(np.complex128), n=n_fft, axis=1) * synthesis_window(n_fft, hop)
    out = np.zeros(len(spec) * hop + n_fft)
    for k, frame in enumerate(frames):
        out[k * hop:k * hop + n_fft] += frame
    return out[n_fft - hop:n_fft - hop + len(spec) * hop]


def reanalysed(spec: np.ndarray) -> np.ndarray:
    """The contract's log-magnitudes of the audio a spectrum resynthesizes to (`overlap_add`):
    what a listener's analysis sees of what the engine would play."""
    return logmag(stft_frames(overlap_add(spec)))


def logmag(spec: np.ndarray) -> np.ndarray:
    """The contract's feature `0.5 * ln(re^2 + im^2 + 1e-10)` (float32)."""
    re = spec.real.astype(np.float32)
    im = spec.imag.astype(np.float32)
    return (0.5 * np.log(re * re + im * im + np.float32(LOGMAG_EPS))).astype(np.float32)


# The evaluation's floor for distances (about -61 dB) and the frames it counts (the target's
# loudest bin above about -43 dB); training's losses use the same two.
LSD_FLOOR = -7.0
VOICED = LSD_FLOOR + 2.0


def power_from_logmag(lm: np.ndarray) -> np.ndarray:
    """Power spectrum `re^2 + im^2` recovered from a log-magnitude (floor removed, >= 0)."""
    return np.maximum(np.exp(2.0 * lm.astype(np.float64)) - LOGMAG_EPS, 0.0)


def chroma_matrix() -> np.ndarray:
    """[12, 513] map of bins (55 Hz .. 5 kHz) to pitch classes, for the evaluation's chroma
    similarity and the loss that trains towards it."""
    f = np.arange(N_BINS) * SAMPLE_RATE / N_FFT
    m = np.zeros((12, N_BINS), dtype=np.float32)
    ok = (f >= 55.0) & (f <= 5000.0)
    pc = (np.round(12 * np.log2(np.maximum(f, 1.0) / 440.0)) + 69).astype(int) % 12
    m[pc[ok], np.nonzero(ok)[0]] = 1.0
    return m


def _hz_to_mel_slaney(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3.0
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-300) / min_log_hz) / logstep, mels)


def _mel_to_hz_slaney(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3.0
    freqs = f_sp * m
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """librosa.filters.mel(sr, n_fft, n_mels, fmin=0, fmax=sr/2, htk=False, norm='slaney'),
    reimplemented (float64 math, float32 result) so training needs no librosa and the Rust
    `dsp::mel` (Slaney scale, Slaney norm) gives the same weights. Shape [n_mels, n_fft/2+1]."""
    fftfreqs = np.linspace(0.0, sr / 2.0, 1 + n_fft // 2)
    mel_pts = np.linspace(_hz_to_mel_slaney(0.0), _hz_to_mel_slaney(sr / 2.0), n_mels + 2)
    mel_f = _mel_to_hz_slaney(mel_pts)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, len(fftfreqs)), dtype=np.float64)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0.0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels])
    weights *= enorm[:, None]
    return weights.astype(np.float32)


def log_mel_frames(lm: np.ndarray, fb: np.ndarray | None = None) -> np.ndarray:
    """Per-frame log-mel `ln(mel_power + 1e-6)` from contract log-magnitudes [T, 513] -> [T, 40]."""
    fb = mel_filterbank() if fb is None else fb
    power = power_from_logmag(lm).astype(np.float32)
    return np.log(power @ fb.T + np.float32(MEL_LOG_EPS)).astype(np.float32)


def classifier_features(lm: np.ndarray, frames: int = CLASSIFIER_FRAMES,
                        step: int | None = None, fb: np.ndarray | None = None) -> np.ndarray:
    """Classifier inputs from consecutive windows of `frames` log-magnitude frames.

    With d[t] = logmel[t] - logmel[t-1] over the window's `frames - 1` consecutive pairs:
    feature = concat(mean over the window of logmel (40),
                     mean of max(d, 0) (40: attacks, rises),
                     mean of max(-d, 0) (40: decays),
                     mean of the per-band flatness `band_peakiness` (40)) -> F = 160.
    Rises and decays carry the temporal envelope (attack, decay, sustain, vibrato) and the
    peakiness the harmonic-versus-noise fine structure inside each band: neither changes under
    a fixed EQ. The first block carries the spectral envelope. Windows start every `step` frames.
    """
    step = frames if step is None else step
    lmel = log_mel_frames(lm, fb)
    nm = lmel.shape[1]
    if len(lmel) < frames:
        return np.zeros((0, 3 * nm), dtype=np.float32)
    starts = np.arange(0, len(lmel) - frames + 1, step)
    d = np.diff(lmel, axis=0)  # d[t-1] = lmel[t] - lmel[t-1]

    def window_mean(x: np.ndarray, n: int) -> np.ndarray:
        c = np.concatenate([np.zeros((1, nm)), np.cumsum(x, axis=0, dtype=np.float64)])
        return (c[starts + n] - c[starts]) / n

    peak = band_peakiness(lm, fb)
    return np.concatenate([window_mean(lmel, frames), window_mean(np.maximum(d, 0), frames - 1),
                           window_mean(np.maximum(-d, 0), frames - 1), window_mean(peak, frames)],
                          axis=1).astype(np.float32)


def band_peakiness(lm: np.ndarray, fb: np.ndarray | None = None) -> np.ndarray:
    """Per frame and mel band, ln(arithmetic mean / geometric mean) of the bin powers
    `p = exp(2 logmag)` (contract floor included) under the band's weights W:
    `ln(sum W p) - ln(sum W) - sum(W 2 logmag) / sum(W)`, >= 0; high for a few strong harmonics,
    near 0 for noise or a single bin. [T, 513] -> [T, 40]."""
    fb = mel_filterbank() if fb is None else fb
    w = fb.astype(np.float64)
    wsum = w.sum(1)
    lm64 = lm.astype(np.float64)
    arith = np.log(np.exp(2.0 * lm64) @ w.T) - np.log(wsum)
    geo = (2.0 * lm64) @ w.T / wsum
    return (arith - geo).astype(np.float32)
