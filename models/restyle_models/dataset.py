"""Paired frames for training and evaluation, read from what `render` wrote.

All features of a split are loaded into memory once (float16, about 1 KB a frame), and batches
are random crops: a random (piece, variant), a random source instrument, a random target style,
and the same frame range from both renders, which are aligned sample for sample.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import signal as sig
from .render import read_wav


@dataclass
class Split:
    """Features of one split: `feats[i][s]` is item i rendered with style s, [T_i, 513] float16."""
    style_names: list[str]
    feats: list[list[np.ndarray]]
    ids: list[str]

    @property
    def n_styles(self) -> int:
        return len(self.style_names)

    def frames(self) -> int:
        return sum(f[0].shape[0] for f in self.feats)


def load_index(data_dir: Path) -> dict:
    """The render step's index (styles, items, splits)."""
    path = data_dir / "index.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `python -m restyle_models.render` first")
    return json.loads(path.read_text())


def load_split(data_dir: Path, split: str, max_items: int | None = None) -> Split:
    """Loads every style's features for the items of `split` ("train", "val", "test")."""
    index = load_index(data_dir)
    names = [s["name"] for s in index["styles"]]
    items = [it for it in index["items"] if it["split"] == split][:max_items]
    if not items:
        raise ValueError(f"no items in split {split!r} of {data_dir}/index.json")
    feats = [[np.load(data_dir / it["features"][n]) for n in names] for it in items]
    return Split(names, feats, [it["id"] for it in items])


def input_stats(split: Split, max_frames: int = 200_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin mean and std of input log-magnitudes over all instruments (normalization)."""
    rng = np.random.default_rng(seed)
    rows = []
    per = max(1, max_frames // (len(split.feats) * split.n_styles))
    for f in split.feats:
        for s in f:
            idx = rng.integers(0, s.shape[0], size=min(per, s.shape[0]))
            rows.append(s[idx].astype(np.float32))
    x = np.concatenate(rows)
    return x.mean(0), np.maximum(x.std(0), 1e-3)


class PairSampler:
    """Random aligned crops (input from any instrument, target from the chosen style)."""

    def __init__(self, split: Split, seq_len: int, seed: int) -> None:
        self.split = split
        self.seq_len = seq_len
        self.rng = np.random.default_rng(seed)
        self.lengths = np.array([f[0].shape[0] for f in split.feats])
        self.weights = self.lengths / self.lengths.sum()

    def _draw(self, batch_size: int) -> list[tuple[int, int, int, int]]:
        """(item, first frame, source instrument, target style) for each crop."""
        s = self.split.n_styles
        picks = []
        for _ in range(batch_size):
            i = int(self.rng.choice(len(self.lengths), p=self.weights))
            start = int(self.rng.integers(0, max(1, self.lengths[i] - self.seq_len)))
            picks.append((i, start, int(self.rng.integers(s)), int(self.rng.integers(s))))
        return picks

    def _tensors(self, picks: list[tuple[int, int, int, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        xs = [self.split.feats[i][src][start:start + self.seq_len] for i, start, src, _ in picks]
        ys = [self.split.feats[i][dst][start:start + self.seq_len] for i, start, _, dst in picks]
        x = torch.from_numpy(np.stack(xs).astype(np.float32))
        y = torch.from_numpy(np.stack(ys).astype(np.float32))
        t = torch.tensor([dst for *_, dst in picks])
        return x, y, torch.nn.functional.one_hot(t, self.split.n_styles).float(), t

    def batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(input [B,T,513], target [B,T,513], style one-hot [B,S], target index [B])."""
        return self._tensors(self._draw(batch_size))

    def batch_with_audio(self, batch_size: int, audio: list[list[np.ndarray]]) -> tuple[torch.Tensor, ...]:
        """`batch`, plus the source audio the input frames were analysed from, [B, (T - 1) * hop
        + n_fft] (see `resynthesis.Resynthesis.spectra`); `audio` is `load_audio`'s."""
        picks = self._draw(batch_size)
        length = (self.seq_len - 1) * sig.HOP + sig.N_FFT
        crops = [audio[i][src][start * sig.HOP:start * sig.HOP + length] for i, start, src, _ in picks]
        wave = torch.from_numpy(np.stack(crops).astype(np.float32) / 32768.0)
        return (*self._tensors(picks), wave)


def load_audio(data_dir: Path, split: Split) -> list[list[np.ndarray]]:
    """The rendered audio of a split's items, `audio[i][s]` int16, with the `n_fft - hop` leading
    zeros `signal.stft_frames` frames it with, so frame `k` starts at sample `k * hop`."""
    pad = np.zeros(sig.N_FFT - sig.HOP, dtype=np.int16)
    out = []
    for item in split.ids:
        row = []
        for name in split.style_names:
            row.append(np.concatenate([pad, read_wav(data_dir / "audio" / f"{item}_{name}.wav")]))
        out.append(row)
    return out
