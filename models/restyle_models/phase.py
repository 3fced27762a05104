"""Measurement: does the engine need a phase reconstruction, or is the input's phase enough?

The engine plays the generator's magnitudes on the input's phase (docs/CONTRACT.md). The issue's
resynthesis target suggested a real-time phase reconstruction such as RTPGHI (Prusa & Holighaus,
"Phase vocoder done right", 2017) instead. This command measures both on test phrases, as
log-spectral distance of the resynthesized audio to the paired ground truth:

- the model's magnitudes on the input's phase (what the engine does) and on RTPGHI's phase;
- the true target magnitudes on both (how much each phase alone costs).

RTPGHI here is the causal variant (no look-ahead, so no added latency): the phase's time
derivative comes from the frequency slope of the log-magnitude, its frequency derivative from the
time slope (backward difference), and the phase is integrated from the loudest bins outwards with
a max-heap. The relations hold exactly for a Gaussian window; for the contract's asymmetric window
the Gaussian's width (`lambda`) and the window's effective centre are fitted on train phrases.

Runs in the training environment, on the rendered audio (`python -m restyle_models.render`).
"""
from __future__ import annotations

import argparse
import heapq
import json
import time
from pathlib import Path

import numpy as np

from . import signal as sig
from .dataset import load_index
from .evaluate import lsd_frames, resynthesized, spectra_of, stream_batch
from .export import session
from .render import DATA_DIR, MODELS_DIR

TOLERANCE = 1e-5  # bins this far below the frame's loudest get no phase of their own (RTPGHI's tol)
LAMBDAS = (0.18, 0.25645, 0.35)  # Gaussian width / n_fft^2; 0.25645 is a Hann window's
CENTRES = (640, 700, 760, 820)  # sample of the analysis window taken as its centre


def rtpghi(logmag: np.ndarray, lam: float, centre: float, tol: float = TOLERANCE) -> np.ndarray:
    """Causal RTPGHI phase [T, bins] for contract log-magnitudes [T, bins] (phase referenced to
    the frame's first sample, as `stft_frames` computes it)."""
    n, hop = sig.N_FFT, sig.HOP
    frames, bins = logmag.shape
    k = np.arange(bins)
    phase = np.zeros((frames, bins))
    prev_s = np.full(bins, -np.inf)
    prev_phase = np.zeros(bins)
    prev_dt = 2 * np.pi * k / n
    for t in range(frames):
        s = logmag[t].astype(np.float64)
        slope_f = np.zeros(bins)
        slope_f[1:-1] = (s[2:] - s[:-2]) / 2
        dt = 2 * np.pi * k / n + (n / lam) * slope_f  # phase advance per sample
        slope_t = np.where(np.isfinite(prev_s), s - prev_s, 0.0)
        df = -(lam / (n * hop)) * slope_t - 2 * np.pi * centre / n  # phase step per bin
        floor = s.max() + np.log(tol)
        todo = set(np.nonzero(s > floor)[0].tolist())
        cur = np.zeros(bins)
        heap = [(-prev_s[b], b, True) for b in todo if prev_s[b] > floor]
        heapq.heapify(heap)
        while todo:
            if not heap:  # a new peak with no loud neighbour: start it from its own history
                b = max(todo, key=lambda i: s[i])
                heap.append((-prev_s[b], b, True))
            _, b, from_past = heapq.heappop(heap)
            if from_past:
                if b in todo:
                    cur[b] = prev_phase[b] + hop * (prev_dt[b] + dt[b]) / 2
                    todo.discard(b)
                    heapq.heappush(heap, (-s[b], b, False))
                continue
            for nb in (b - 1, b + 1):
                if nb in todo:
                    cur[nb] = cur[b] + (nb - b) * (df[b] + df[nb]) / 2
                    todo.discard(nb)
                    heapq.heappush(heap, (-s[nb], nb, False))
        phase[t] = cur
        prev_s, prev_phase, prev_dt = s, cur, dt
    return phase


def on_phase(logmag: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Log-magnitudes of the audio that `logmag` on `phase` resynthesizes to."""
    return sig.reanalysed(np.exp(logmag) * np.exp(1j * phase))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    ap.add_argument("--pack", type=Path, default=MODELS_DIR / "packs" / "default")
    ap.add_argument("--frames", type=int, default=800, help="frames per phrase (2.1 s)")
    ap.add_argument("--items", type=int, default=4, help="test phrases (one variant per piece)")
    args = ap.parse_args(argv)
    t0 = time.time()
    index = load_index(args.data_dir)
    names = [s["name"] for s in index["styles"]]
    audio_dir = args.data_dir / "audio"

    def spectra(item_id: str) -> list[np.ndarray]:
        return [spectra_of(audio_dir / f"{item_id}_{n}.wav", args.frames) for n in names]

    # fit lambda and the centre on a train phrase's true targets (no test data)
    tune = spectra(next(it["id"] for it in index["items"] if it["split"] == "train"))
    fits = {}
    for lam in LAMBDAS:
        for centre in CENTRES:
            errs = []
            for spec in tune[1::2]:
                lm = sig.logmag(spec)
                mask = lm.max(-1) > sig.VOICED
                errs.append(lsd_frames(on_phase(lm, rtpghi(lm, lam * sig.N_FFT ** 2, centre)), lm)[mask].mean())
            fits[(lam, centre)] = float(np.mean(errs))
    lam, centre = min(fits, key=fits.get)
    print(f"phase: fitted lambda {lam} x n_fft^2, centre {centre} (self-resynthesis {fits[(lam, centre)]:.3f} dB)")

    manifest = json.loads((args.pack / "manifest.json").read_text())
    state_shape = manifest["generator"]["state_shape"][1:]
    gen = session(args.pack / manifest["generator"]["file"])
    tests = [it["id"] for it in index["items"] if it["split"] == "test" and it["id"].endswith("_v0")][:args.items]
    rows = {k: [] for k in ("input", "model", "model_input_phase", "model_rtpghi", "target_input_phase", "target_rtpghi")}
    for item_id in tests:
        spec = spectra(item_id)
        lms = [sig.logmag(s) for s in spec]
        pairs = [(s, d) for s in range(len(names)) for d in range(len(names)) if s != d]
        x = np.stack([lms[s] for s, _ in pairs])
        style = np.eye(len(names), dtype=np.float32)[[d for _, d in pairs]]
        out = stream_batch(gen, x, style, state_shape)
        for j, (s, d) in enumerate(pairs):
            y = lms[d]
            mask = y.max(-1) > sig.VOICED
            for key, lm in (("input", lms[s]), ("model", out[j]),
                            ("model_input_phase", resynthesized(spec[s], out[j])),
                            ("model_rtpghi", on_phase(out[j], rtpghi(out[j], lam * sig.N_FFT ** 2, centre))),
                            ("target_input_phase", resynthesized(spec[s], y)),
                            ("target_rtpghi", on_phase(y, rtpghi(y, lam * sig.N_FFT ** 2, centre)))):
                rows[key].append(lsd_frames(lm, y)[mask].mean())
        print(f"phase: {item_id} done ({time.time() - t0:.0f} s)", flush=True)
    base = float(np.mean(rows["input"]))
    print(f"phase: log-spectral distance to the target over {len(tests)} test phrases x {len(pairs)} pairs, "
          f"{args.frames} frames each (dB, and / unchanged input):")
    for key, v in rows.items():
        print(f"  {key:20s} {np.mean(v):7.3f}  {np.mean(v) / base:.3f}")


if __name__ == "__main__":
    main()
