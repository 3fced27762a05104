"""The engine's resynthesis in PyTorch, differentiable, for training on what the plugin plays.

The plugin does not play the generator's log-magnitudes: it multiplies the input's spectrum by
`exp(logmag_out - logmag_in)` (clamped to [0, 1000]), keeps the input's phase and overlap-adds
(docs/CONTRACT.md). What a listener, and the evaluation's classifier, hears is that audio, whose
own spectrum is smoother from frame to frame than the model's raw output. `Resynthesis` computes
the log-magnitudes of that audio analysed again (`signal.reanalysed` in numpy), so a loss can
be put on them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import signal as sig

#: Frames at the start of a crop whose reanalysis lacks the overlap-add of frames before the crop.
WARM_UP = sig.N_FFT // sig.HOP


class Resynthesis(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("h_a", torch.from_numpy(sig.analysis_window()).float())
        self.register_buffer("h_s", torch.from_numpy(sig.synthesis_window()).float())

    def spectra(self, audio: torch.Tensor) -> torch.Tensor:
        """Complex contract spectra [B, L, 513] of audio crops [B, (L - 1) * hop + n_fft] that
        start `n_fft - hop` samples before their first frame's last sample (as `stft_frames`
        frames audio with its leading zeros)."""
        return torch.fft.rfft(audio.unfold(-1, sig.N_FFT, sig.HOP) * self.h_a, dim=-1)

    def forward(self, spec_in: torch.Tensor, logmag_out: torch.Tensor) -> torch.Tensor:
        """Log-magnitudes [B, L - WARM_UP - 1, 513] of the audio the engine plays for these
        frames, analysed again: frames `WARM_UP .. L - 1` of the crop (the first need frames
        before it, the last waits for the next frame's overlap-add)."""
        logmag_in = 0.5 * torch.log(spec_in.real ** 2 + spec_in.imag ** 2 + sig.LOGMAG_EPS)
        gain = torch.exp(logmag_out - logmag_in).clamp(0.0, 1000.0)
        frames = torch.fft.irfft(spec_in * gain, n=sig.N_FFT, dim=-1) * self.h_s  # [B, L, N]
        b, length, n = frames.shape
        audio = F.fold(frames.transpose(1, 2), output_size=(1, (length - 1) * sig.HOP + n),
                       kernel_size=(1, n), stride=(1, sig.HOP)).reshape(b, -1)
        again = torch.fft.rfft(audio.unfold(-1, n, sig.HOP) * self.h_a, dim=-1)[:, WARM_UP:length - 1]
        return 0.5 * torch.log(again.real ** 2 + again.imag ** 2 + sig.LOGMAG_EPS)
