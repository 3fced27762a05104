"""Step 3, classifier: a small style classifier on log-mel statistics of real renders.

It serves two purposes: the evaluation asks it whether a generator output is heard as the
target style, and the plugin shows it live as a style meter. Input: `signal.classifier_features`
(F = 120: mean log-mel, mean rise and mean fall of the log-mel over 32 frames, from the
contract's 1024/128 STFT). Trained only on real renders, each window passed through a random
smooth EQ curve (up to about +-9 dB per band, plus a random overall gain) and half of them also
through the fixed EQ that matches their instrument's average spectrum to another instrument's
(train split): the classifier must not be fooled by an equalizer, so the spectral envelope alone
must not give a style away; the temporal envelope has to.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import signal as sig
from .dataset import Split, load_split
from .render import DATA_DIR

SILENCE_LOGMEL = -9.0  # windows whose loudest mel band mean is below this are silence, not style


class StyleClassifier(nn.Module):
    """MLP: features [B, 80] -> probs [B, S] (softmax); normalization baked in."""

    def __init__(self, n_features: int, n_styles: int, width: int = 128,
                 mean: torch.Tensor | None = None, std: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("f_mean", torch.zeros(n_features) if mean is None else mean.float())
        self.register_buffer("f_std", torch.ones(n_features) if std is None else std.float())
        self.net = nn.Sequential(nn.Linear(n_features, width), nn.ReLU(), nn.Dropout(0.1),
                                 nn.Linear(width, width), nn.ReLU(), nn.Linear(width, n_styles))

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.net((features - self.f_mean) / self.f_std)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(features), dim=-1)


def random_eq(n: int, gen: torch.Generator, knots: int = 6, depth: float = 2.0) -> torch.Tensor:
    """Random smooth EQ curves in ln-power units over the mel bands, [n, 40]: linear
    interpolation between `knots` random values in +-depth (2.0 = +-8.7 dB), plus a random
    overall gain of +-6 dB."""
    k = (torch.rand(n, knots, generator=gen) * 2 - 1) * depth
    pos = torch.linspace(0, knots - 1, sig.N_MELS)
    lo = pos.floor().long().clamp(max=knots - 2)
    frac = pos - lo
    curve = k[:, lo] * (1 - frac) + k[:, lo + 1] * frac
    return curve + (torch.rand(n, 1, generator=gen) * 2 - 1) * 1.4


def voiced(features: np.ndarray) -> np.ndarray:
    """Mask of windows with sound in them (silence carries no style)."""
    return features[:, :sig.N_MELS].max(axis=1) > SILENCE_LOGMEL


def split_features(split: Split, step: int) -> tuple[np.ndarray, np.ndarray]:
    """(features [N, 80], style labels [N]) over all items and styles, silent windows dropped."""
    fb = sig.mel_filterbank()
    xs, ys = [], []
    for item in split.feats:
        for s, lm in enumerate(item):
            f = sig.classifier_features(lm.astype(np.float32), step=step, fb=fb)
            f = f[voiced(f)]
            xs.append(f)
            ys.append(np.full(len(f), s))
    return np.concatenate(xs), np.concatenate(ys)


def mean_power(split: Split) -> np.ndarray:
    """[S, 513] average power spectrum per instrument (for the EQ-match check)."""
    acc = np.zeros((split.n_styles, sig.N_BINS))
    n = 0
    for item in split.feats:
        for s, lm in enumerate(item):
            acc[s] += sig.power_from_logmag(lm[::4]).sum(0)
        n += len(item[0][::4])
    return acc / max(n, 1)


def eq_match_features(split: Split, pw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Features of every other instrument EQ-matched to each style (fixed per-bin gain from the
    average source spectrum to the average target spectrum), labelled with the target style:
    the share the classifier assigns to the target should stay low."""
    fb = sig.mel_filterbank()
    xs, ys = [], []
    for item in split.feats[:3]:
        for src, lm in enumerate(item):
            for dst in range(split.n_styles):
                if dst == src:
                    continue
                gain = (0.5 * np.log((pw[dst] + 1e-10) / (pw[src] + 1e-10))).astype(np.float32)
                f = sig.classifier_features(lm.astype(np.float32) + gain, step=32, fb=fb)
                f = f[voiced(f)]
                xs.append(f)
                ys.append(np.full(len(f), dst))
    return np.concatenate(xs), np.concatenate(ys)


def accuracy(model: StyleClassifier, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        p = model(torch.from_numpy(x)).argmax(-1).numpy()
    return float((p == y).mean())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-items", type=int, default=None)
    args = ap.parse_args(argv)
    torch.set_flush_denormal(True)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t0 = time.time()
    train = load_split(args.data_dir, "train", args.max_items)
    xtr, ytr = split_features(train, step=8)
    pw = mean_power(train)
    del train
    val = load_split(args.data_dir, "val", args.max_items)
    xva, yva = split_features(val, step=16)
    xeq, yeq = eq_match_features(val, pw)
    n_styles = int(ytr.max()) + 1
    model = StyleClassifier(xtr.shape[1], n_styles, mean=torch.from_numpy(xtr.mean(0)),
                            std=torch.from_numpy(np.maximum(xtr.std(0), 1e-3)))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-3)
    fb = sig.mel_filterbank().astype(np.float64)
    band = np.log(pw @ fb.T + 1e-10)  # [S, 40] ln mel power of each instrument's average spectrum
    band_gain = torch.from_numpy((band[None, :, :] - band[:, None, :]).astype(np.float32))  # [src, dst, 40]
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr).long()
    gen = torch.Generator().manual_seed(0)
    best, best_eq, best_score, best_state = -1.0, -1.0, -1e9, None
    for ep in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(perm), 256):
            idx = perm[i:i + 256]
            xb = xt[idx].clone()
            xb[:, :sig.N_MELS] += random_eq(len(idx), gen)
            # half the windows get the EQ that would match their instrument to another one:
            # an equalized piano is still a piano
            yb = yt[idx]
            other = (yb + torch.randint(1, n_styles, (len(idx),), generator=gen)) % n_styles
            use = (torch.rand(len(idx), generator=gen) < 0.5).float()[:, None]
            xb[:, :sig.N_MELS] += use * band_gain[yb, other]
            loss = F.cross_entropy(model.logits(xb), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        acc = accuracy(model, xva, yva)
        eq_share = accuracy(model, xeq, yeq)
        # selection favours real accuracy but penalizes being fooled by an EQ
        score = acc - 0.5 * max(0.0, eq_share - 0.5)
        if score >= best_score:
            best_score, best, best_eq = score, acc, eq_share
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        print(f"classifier: epoch {ep + 1} loss {float(loss.detach()):.4f} val acc {acc:.4f} "
              f"EQ-match heard as target {eq_share:.4f}", flush=True)
    model.load_state_dict(best_state)
    out = args.data_dir / "checkpoints"
    out.mkdir(parents=True, exist_ok=True)
    info = {"epochs": args.epochs, "train_windows": int(len(xtr)), "val_windows": int(len(xva)),
            "val_accuracy": round(best, 4), "val_eq_match_target_share": round(best_eq, 4), "minutes": round((time.time() - t0) / 60.0, 2)}
    torch.save({"n_features": int(xtr.shape[1]), "n_styles": n_styles, "state_dict": model.state_dict(),
                "training": info}, out / "classifier.pt")
    print(f"classifier: chosen val accuracy {best:.4f}, EQ-match heard as target {best_eq:.4f} "
          f"({len(xtr)} train windows) in {info['minutes']} min")


if __name__ == "__main__":
    main()
