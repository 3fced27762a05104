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

    def batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(input [B,T,513], target [B,T,513], style one-hot [B,S], target index [B])."""
        s = self.split.n_styles
        xs, ys, tgt = [], [], []
        for _ in range(batch_size):
            i = int(self.rng.choice(len(self.lengths), p=self.weights))
            start = int(self.rng.integers(0, max(1, self.lengths[i] - self.seq_len)))
            src = int(self.rng.integers(s))
            dst = int(self.rng.integers(s))
            xs.append(self.split.feats[i][src][start:start + self.seq_len])
            ys.append(self.split.feats[i][dst][start:start + self.seq_len])
            tgt.append(dst)
        x = torch.from_numpy(np.stack(xs).astype(np.float32))
        y = torch.from_numpy(np.stack(ys).astype(np.float32))
        t = torch.tensor(tgt)
        return x, y, torch.nn.functional.one_hot(t, s).float(), t
