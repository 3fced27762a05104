"""The conditional streaming generator.

Shape (per frame, causal): normalized input log-magnitude and the style weights go through a
two-layer encoder, a GRU carries the past (its hidden state is the only state), and a decoder that
sees the GRU output, the encoder output and the style predicts a log-magnitude *residual* that
is added to the input. The residual keeps pitch and onsets from the input (the model only has to
learn how the timbre and envelope differ), and the style vector is an ordinary input, so a blend
of styles is just another vector: blending costs nothing extra.

A frequency-local path (`local` channels, optional) refines that residual bin by bin: two small
convolutions along frequency read the input and the residual around each bin, modulated per frame
by the decoder. The full-band residual comes out of a 384-wide layer, so it paints broad shapes;
the local path can reshape each partial and the valleys between them, where REPORT.md found most
of the remaining error. It may refine only the lowest `local_bins` bins: on `l8d`, its gain lay
below 12 kHz (masked to bins 0-255, 6.90 dB against 6.75 on 4 test pieces; 7.99 with no local
path at all), and each convolution then does half the work.

A harmonic path (`harmonic` partials, optional) places corrections on the partials of the notes
that sound: a pitch detector reads the frame (one activation per semitone), each active pitch gets
a gain per partial from a style table and the decoder, and a fixed kernel puts every (pitch,
partial) gain on the bins where that partial lies. An instrument's timbre is mostly how loud each
partial is, and which partials those are follows the pitch: the church organ's mixtures lift the
12th and 16th partials 20-40 dB above a piano's on the same note, bins that neither the 384-wide
full-band residual (no pitch) nor the 9-bin local path (no reach) can single out.

Why a GRU written as plain matrix multiplies: DESIGN.md measured that such a GRU runs faster in
dynamic int8 than in fp32 with onnxruntime on one thread, while a convolutional TCN got slower.
Training uses `nn.GRU` (fused, fast); `step()` computes exactly the same cell with `MatMul`s so
the exported streaming graph quantizes well.
"""
from __future__ import annotations

from dataclasses import dataclass, asdict

import torch
import torch.nn.functional as F
from torch import nn

from . import signal as sig

LOCAL_IN_TAPS = 9  # bins each frequency-local feature reads (about 420 Hz)
LOCAL_OUT_TAPS = 5
HARMONIC_LOWEST_MIDI = 33  # A1, 55 Hz: the lowest pitch the harmonic path detects
HARMONIC_PITCHES = 60  # semitones from A1 up to G#6 (1661 Hz), the chorales' range with transpositions
HARMONIC_HALF_WIDTH = 1.5  # bins: a partial's weight falls linearly to zero this far from its centre
# The pitch detector starts as comb contrast (`comb_contrast`) on the log-magnitudes: on chorale
# frames a sounding note scores 0.3-1 (natural-log units), its neighbours and octaves 0.1-0.2 and
# a flat spectrum 0, so these put a note at 0.27-0.997, a neighbour at 0.05-0.12 and silence at
# 0.02 before training refines them.
HARMONIC_SALIENCE_GAIN = 10.0
HARMONIC_SALIENCE_BIAS = -4.0


@dataclass
class GeneratorConfig:
    """Sizes of the generator; stored in checkpoints and the manifest."""
    n_styles: int
    n_bins: int = sig.N_BINS
    enc: int = 384
    hidden: int = 256
    dec: int = 384
    local: int = 0  # channels of the frequency-local path (0: none)
    local_bins: int = 0  # bins, from the lowest, that the local path refines (0: all)
    harmonic: int = 0  # partials per pitch of the harmonic path (0: none)

    def to_dict(self) -> dict:
        return asdict(self)


class Generator(nn.Module):
    """Causal conditional generator: logmag [B,T,513] + style [B,S] -> target logmag [B,T,513]."""

    def __init__(self, cfg: GeneratorConfig, mean: torch.Tensor | None = None,
                 std: torch.Tensor | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        nb, s = cfg.n_bins, cfg.n_styles
        self.register_buffer("in_mean", torch.zeros(nb) if mean is None else mean.float().clone())
        self.register_buffer("in_std", torch.ones(nb) if std is None else std.float().clone())
        self.enc1 = nn.Linear(nb + s, cfg.enc)
        self.enc2 = nn.Linear(cfg.enc, cfg.hidden)
        self.gru = nn.GRU(cfg.hidden, cfg.hidden, batch_first=True)
        self.dec1 = nn.Linear(2 * cfg.hidden + s, cfg.dec)
        self.dec2 = nn.Linear(cfg.dec, nb)
        nn.init.zeros_(self.dec2.weight)  # start as the identity mapping (output = input)
        nn.init.zeros_(self.dec2.bias)
        if cfg.local:
            self.local_in = nn.Conv1d(2, cfg.local, LOCAL_IN_TAPS, padding=LOCAL_IN_TAPS // 2)
            self.local_pos = nn.Parameter(torch.zeros(cfg.local, self.local_span()[1]))
            self.local_film = nn.Linear(cfg.dec, 2 * cfg.local)
            self.local_out = nn.Conv1d(cfg.local, 1, LOCAL_OUT_TAPS, padding=LOCAL_OUT_TAPS // 2)
            nn.init.zeros_(self.local_out.weight)  # adds nothing until trained
            nn.init.zeros_(self.local_out.bias)
        if cfg.harmonic:
            kernel = harmonic_kernel(cfg.harmonic, nb)
            self.register_buffer("harm_kernel", kernel, persistent=False)
            self.harm_pitch = nn.Linear(nb, HARMONIC_PITCHES)
            with torch.no_grad():
                self.harm_pitch.weight.copy_(HARMONIC_SALIENCE_GAIN * comb_contrast(kernel, cfg.harmonic))
                self.harm_pitch.bias.fill_(HARMONIC_SALIENCE_BIAS)
            self.harm_table = nn.Linear(s, HARMONIC_PITCHES * cfg.harmonic, bias=False)
            self.harm_dec = nn.Linear(cfg.dec, HARMONIC_PITCHES + cfg.harmonic)
            for p in (self.harm_table.weight, self.harm_dec.weight, self.harm_dec.bias):
                nn.init.zeros_(p)  # adds nothing until trained

    def local_span(self) -> tuple[int, int]:
        """(bins refined, bins read): the path reads a few bins past those it refines, as many as
        its two convolutions reach, so that a band-limited path gives each refined bin exactly
        what the full-band one would."""
        nb = self.cfg.n_bins
        refined = min(self.cfg.local_bins or nb, nb)
        return refined, min(nb, refined + LOCAL_IN_TAPS // 2 + LOCAL_OUT_TAPS // 2)

    def state_shape(self) -> list[int]:
        """Streaming state tail (after the batch dim)."""
        return [self.cfg.hidden]

    def forward(self, logmag: torch.Tensor, style: torch.Tensor,
                state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Sequence mode for training: logmag [B,T,513], style [B,S] (or [B,T,S]), state [B,H]."""
        b, t, _ = logmag.shape
        st = style[:, None, :].expand(b, t, -1) if style.dim() == 2 else style
        xn = (logmag - self.in_mean) / self.in_std
        h = F.relu(self.enc1(torch.cat([xn, st], dim=-1)))
        h = F.relu(self.enc2(h))
        h0 = None if state is None else state[None].contiguous()
        g, hn = self.gru(h, h0)
        d = F.relu(self.dec1(torch.cat([g, h, st], dim=-1)))
        return logmag + self.residual(logmag, xn, st, d, self.dec2(d)), hn[0]

    def partials(self, logmag: torch.Tensor, style: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """The harmonic path's residual: for each pitch, how sure the detector is that it sounds
        (`harm_pitch`, sigmoid), times a gain per partial that the style sets per pitch
        (`harm_table`: a blend of styles blends their tables) and the decoder moves per pitch
        and per partial with the context (`harm_dec`), spread onto the partials' bins by the
        fixed kernel (`harmonic_kernel`) in one MatMul, which int8 makes cheap. Broadcasts over
        reshapes with constant shapes: the same sums through gathers of the pitch and partial
        of each (pitch, partial) ran 0.035 ms slower per call in onnxruntime."""
        p, nh = HARMONIC_PITCHES, self.cfg.harmonic
        mod = self.harm_dec(d)
        gain = (self.harm_table(style).reshape(-1, p, nh) + mod[..., :p].reshape(-1, p, 1)
                + mod[..., p:].reshape(-1, 1, nh))
        active = torch.sigmoid(self.harm_pitch(logmag)).reshape(-1, p, 1)
        spread = torch.matmul((active * gain).reshape(-1, p * nh), self.harm_kernel)
        return spread.reshape(logmag.shape)

    def residual(self, logmag: torch.Tensor, xn: torch.Tensor, style: torch.Tensor, d: torch.Tensor,
                 full: torch.Tensor) -> torch.Tensor:
        """The full-band residual `full`, plus the harmonic path's where there is one (before the
        local path, which then shapes its partials too), refined bin by bin by the
        frequency-local path where there is one: convolutions along frequency over the input and that residual, modulated
        per frame by the decoder's features `d` (FiLM) and told which bin they are at
        (`local_pos`), so that a partial's shape (its width, the valleys around it) can change,
        which a residual from one 384-wide layer cannot place bin for bin. No state: the
        GRU's state stays the only one. A model without these paths exports exactly the graph it
        did before they existed (unpack reads a pack by its initializers' names)."""
        if self.cfg.harmonic:
            full = full + self.partials(logmag, style, d)
        if not self.cfg.local:
            return full
        lead, nb = full.shape[:-1], self.cfg.n_bins
        refined, read = self.local_span()
        if read < nb:
            xn, full_read = xn[..., :read], full[..., :read]
        else:
            full_read = full
        u = torch.stack([xn, full_read], dim=-2).reshape(-1, 2, read)
        gamma, beta = self.local_film(d).reshape(-1, 2 * self.cfg.local, 1).chunk(2, dim=1)
        h = F.relu((self.local_in(u) + self.local_pos) * (1.0 + gamma) + beta)
        r = self.local_out(h)
        if refined < nb:
            r = F.pad(r[..., :refined], (0, nb - refined))
        return full + r.reshape(*lead, nb)

    def step(self, logmag: torch.Tensor, style: torch.Tensor,
             state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One frame, streaming: [B,513], [B,S], [B,H] -> ([B,513], [B,H]).

        Every affine map is `x @ W^T + b` (a MatMul and an Add in ONNX, not Gemm) so that
        onnxruntime's dynamic quantization turns each into an int8 MatMul."""
        def lin(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
            return torch.matmul(x, layer.weight.t()) + layer.bias

        hid = self.cfg.hidden
        xn = (logmag - self.in_mean) / self.in_std
        h = F.relu(lin(torch.cat([xn, style], dim=-1), self.enc1))
        h = F.relu(lin(h, self.enc2))
        gi = torch.matmul(h, self.gru.weight_ih_l0.t()) + self.gru.bias_ih_l0
        gh = torch.matmul(state, self.gru.weight_hh_l0.t()) + self.gru.bias_hh_l0
        r = torch.sigmoid(gi[:, :hid] + gh[:, :hid])
        z = torch.sigmoid(gi[:, hid:2 * hid] + gh[:, hid:2 * hid])
        n = torch.tanh(gi[:, 2 * hid:] + r * gh[:, 2 * hid:])
        new_state = (1.0 - z) * n + z * state
        d = F.relu(lin(torch.cat([new_state, h, style], dim=-1), self.dec1))
        return logmag + self.residual(logmag, xn, style, d, lin(d, self.dec2)), new_state


def harmonic_kernel(partials: int, n_bins: int) -> torch.Tensor:
    """[pitches * partials, bins]: row (p, h) is a triangle of half-width `HARMONIC_HALF_WIDTH`
    bins centred on partial `h + 1` of equal-tempered pitch `HARMONIC_LOWEST_MIDI + p` (A4 = 440
    Hz); partials past the last bin are left out (zero rows)."""
    midi = torch.arange(HARMONIC_PITCHES, dtype=torch.float64) + HARMONIC_LOWEST_MIDI
    f0 = 440.0 * 2.0 ** ((midi - 69.0) / 12.0)
    centre = f0[:, None] * torch.arange(1, partials + 1, dtype=torch.float64) / (sig.SAMPLE_RATE / sig.N_FFT)
    bins = torch.arange(n_bins, dtype=torch.float64)
    tri = (1.0 - (bins - centre[..., None]).abs() / HARMONIC_HALF_WIDTH).clamp(min=0.0)
    return tri.reshape(HARMONIC_PITCHES * partials, n_bins).float()


def comb_contrast(kernel: torch.Tensor, partials: int) -> torch.Tensor:
    """[pitches, bins]: each pitch's partials (the kernel's rows summed, normalized to sum 1)
    minus the mean over the bins up to its highest partial, so that a spectrum scores high where
    its peaks sit on a pitch's partials and 0 where it is flat, whatever its level or tilt."""
    comb = kernel.reshape(HARMONIC_PITCHES, partials, -1).sum(1)
    comb = comb / comb.sum(1, keepdim=True)
    top = torch.stack([row.nonzero().max() for row in comb])
    span = (torch.arange(comb.shape[1])[None] <= top[:, None]).float()
    return comb - span / span.sum(1, keepdim=True)


class StreamingGenerator(nn.Module):
    """Export wrapper with the contract's tensor order: (logmag, style, state_in) ->
    (logmag_out, state_out)."""

    def __init__(self, gen: Generator) -> None:
        super().__init__()
        self.gen = gen

    def forward(self, logmag: torch.Tensor, style: torch.Tensor,
                state_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.gen.step(logmag, style, state_in)


def count_params(m: nn.Module) -> int:
    """Trainable parameter count (buffers excluded)."""
    return sum(p.numel() for p in m.parameters())
