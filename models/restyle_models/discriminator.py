"""Spectrogram discriminator for the adversarial fine-tune.

It reads a log-magnitude patch [B, T, 513] and answers, per style, "is this a real render of
that style?" on a grid of time-frequency patches (one output channel per style; the loss uses the
target style's channel). Patch-wise answers push the generator toward realistic local texture,
which is where the autoencoder alone falls short: DESIGN.md measured its outputs as too smooth
over time (frame-to-frame variation 2.3-3.0 dB against 4.1 dB in real strings).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import spectral_norm


class SpectrogramDiscriminator(nn.Module):
    """Patch discriminator with one output channel per style (spectral norm for stability)."""

    def __init__(self, n_styles: int, width: int = 32) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            spectral_norm(nn.Conv2d(1, w, (3, 9), stride=(1, 4), padding=(1, 4))), nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(w, 2 * w, (3, 9), stride=(2, 4), padding=(1, 4))), nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(2 * w, 2 * w, (5, 5), stride=(2, 2), padding=(2, 2))), nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(2 * w, 2 * w, (5, 5), stride=(1, 2), padding=(2, 2))), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, n_styles, (3, 3), padding=(1, 1)),
        )

    def forward(self, logmag_norm: torch.Tensor, style_idx: torch.Tensor) -> torch.Tensor:
        """Scores [B, T', F'] of the `style_idx` channel for normalized logmag [B, T, 513]."""
        out = self.net(logmag_norm[:, None])  # [B, S, T', F']
        idx = style_idx.view(-1, 1, 1, 1).expand(-1, 1, out.shape[2], out.shape[3])
        return out.gather(1, idx)[:, 0]
