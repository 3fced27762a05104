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
        return logmag + self.residual(xn, d, self.dec2(d)), hn[0]

    def residual(self, xn: torch.Tensor, d: torch.Tensor, full: torch.Tensor) -> torch.Tensor:
        """The full-band residual `full`, refined bin by bin by the frequency-local path where
        there is one: convolutions along frequency over the input and that residual, modulated
        per frame by the decoder's features `d` (FiLM) and told which bin they are at
        (`local_pos`), so that a partial's shape (its width, the valleys around it) can change,
        which a residual from one 384-wide layer cannot place bin for bin. No state: the
        GRU's state stays the only one."""
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
        return logmag + self.residual(xn, d, lin(d, self.dec2)), new_state


def _placement(small: GeneratorConfig, hidden: int) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
    """Where each unit of `small` sits in a model at least as wide with a GRU of `hidden`, per
    layer: (rows, columns) of its weights. The GRU's r, z, n gate blocks and the decoder's
    `[GRU, encoder, style]` input each keep their old units first."""
    h0, ident = small.hidden, torch.arange
    gates = torch.cat([g * hidden + ident(h0) for g in range(3)])
    dec_in = torch.cat([ident(h0), hidden + ident(h0), 2 * hidden + ident(small.n_styles)])
    return {
        "enc1": (ident(small.enc), ident(small.n_bins + small.n_styles)),
        "enc2": (ident(h0), ident(small.enc)),
        "gru.weight_ih_l0": (gates, ident(h0)), "gru.weight_hh_l0": (gates, ident(h0)),
        "gru.bias_ih_l0": (gates, None), "gru.bias_hh_l0": (gates, None),
        "dec1": (ident(small.dec), dec_in),
        "dec2": (ident(small.n_bins), ident(small.dec)),
        "local_film": (ident(2 * small.local), ident(small.dec)),
    }


def _resized(gen: Generator, enc: int, hidden: int, dec: int) -> Generator:
    """An untrained copy of `gen`'s architecture with other layer widths."""
    cfg = GeneratorConfig(**{**gen.cfg.to_dict(), "enc": enc, "hidden": hidden, "dec": dec})
    return Generator(cfg, gen.in_mean, gen.in_std)


def _drift(a: Generator, b: Generator) -> float:
    """Largest output difference of two generators on a random batch around the input's
    statistics."""
    cfg = a.cfg
    probe = a.in_mean + a.in_std * torch.randn(2, 32, cfg.n_bins)
    style = torch.softmax(torch.randn(2, cfg.n_styles), -1)
    with torch.no_grad():
        return (a(probe, style)[0] - b(probe, style)[0]).abs().max().item()


def _move_units(src: Generator, dst: Generator, layout: dict) -> None:
    """Copies `src`'s weights into `dst` unit by unit, where one is a resized copy of the other
    and `layout` places the smaller one's units in the larger. Growing, the new units keep their
    random fan-in and get a zero fan-out, so the old units read nothing new; shrinking, the
    extra units and every weight from them are dropped."""
    weights = src.state_dict()
    with torch.no_grad():
        for name, d in dst.named_parameters():
            w = weights[name]
            if d.shape == w.shape:  # unchanged, the local path's own layers among them
                d.copy_(w)
                continue
            rows, cols = layout[name if name in layout else name.rsplit(".", 1)[0]]
            if d.numel() < w.numel():
                d.copy_(w[rows] if d.dim() == 1 else w[rows[:, None], cols[None, :]])
            elif d.dim() == 1:
                d[rows] = w
            else:
                d[rows] = 0.0
                d[rows[:, None], cols[None, :]] = w


def widen(gen: Generator, enc: int, hidden: int, dec: int) -> Generator:
    """A copy of `gen` with wider layers that computes exactly what `gen` does.

    Each new unit keeps its fresh random fan-in and gets a zero fan-out into the old units, so the
    output is unchanged until training moves it. On 2 CPU cores a larger model trained from scratch
    would need far more than a session to reach the pack; grown like this (as the local path was,
    REPORT.md) it starts where the pack is and only the extra capacity has to learn."""
    old = gen.cfg
    if enc < old.enc or hidden < old.hidden or dec < old.dec:
        raise ValueError(f"widen: cannot narrow enc/hidden/dec {old.enc}/{old.hidden}/{old.dec} "
                         f"to {enc}/{hidden}/{dec} (narrow first, then widen)")
    wide = _resized(gen, enc, hidden, dec)
    _move_units(gen, wide, _placement(old, hidden))
    drift = _drift(wide, gen)
    if drift > 1e-4:
        raise RuntimeError(f"widen: the wide model's output differs from the original's by {drift}")
    return wide


def narrow(gen: Generator, enc: int, hidden: int, dec: int) -> tuple[Generator, float]:
    """A copy of `gen` with only its first `enc`/`hidden`/`dec` units, and the largest change
    that made to the output on a probe batch.

    The inverse of `widen`: units grown that training left nearly unused (REPORT.md: fan-outs
    twenty times smaller than the old units') can be removed again, so the engine keeps the
    pack's size and cost while the weights keep what the wider run learned."""
    old = gen.cfg
    if enc > old.enc or hidden > old.hidden or dec > old.dec:
        raise ValueError(f"narrow: cannot widen enc/hidden/dec {old.enc}/{old.hidden}/{old.dec} "
                         f"to {enc}/{hidden}/{dec}")
    small = _resized(gen, enc, hidden, dec)
    _move_units(gen, small, _placement(small.cfg, old.hidden))
    return small, _drift(small, gen)


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
