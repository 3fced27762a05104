"""Measurement: which of the style classifier's feature groups keeps a generator's output from
being heard as its target.

The classifier reads four groups of 40 features over 32-frame windows (`signal.classifier_features`):
the mean log-mel spectrum (the envelope), its mean rises and mean falls (the temporal envelope)
and the per-band peakiness (how far the partials stand above the valleys). For each test pair,
the generator's output is resynthesized as the engine plays it, and one group of its features at
a time is replaced by the real target's; the share of windows then heard as the target says how
much of the miss that group carries. A group that lifts the share to ~1 is the one to train for.

`python -m restyle_models.attribute [--checkpoint gen_pack.pt] [--items 8] [--frames 1536]`
(PyTorch sequence mode, which equals the streaming graph; a few minutes on one core).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from . import signal as sig
from .classifier import voiced
from .dataset import load_index, load_split
from .evaluate import resynthesized, spectra_of
from .export import load_generator, session
from .render import DATA_DIR, MODELS_DIR

BANDS = sig.N_MELS
GROUPS: dict[str, list[int]] = {
    "none": [],
    "envelope": list(range(0, BANDS)),
    "rises": list(range(BANDS, 2 * BANDS)),
    "falls": list(range(2 * BANDS, 3 * BANDS)),
    "peakiness": list(range(3 * BANDS, 4 * BANDS)),
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    ap.add_argument("--checkpoint", default="gen_pack.pt", help="generator checkpoint in data/checkpoints")
    ap.add_argument("--pack", type=Path, default=MODELS_DIR / "packs" / "default", help="its classifier judges")
    ap.add_argument("--items", type=int, default=8, help="test pieces (one variant each)")
    ap.add_argument("--frames", type=int, default=1536)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    gen, _ = load_generator(args.data_dir / "checkpoints" / args.checkpoint)
    names = [s["name"] for s in load_index(args.data_dir)["styles"]]
    n = len(names)
    test = load_split(args.data_dir, "test")
    order = sorted(range(len(test.ids)), key=lambda i: (test.ids[i].endswith("_v1"), test.ids[i]))[:args.items]
    clf = session(args.pack / "classifier.onnx")
    fb = sig.mel_filterbank()
    hits = {d: {g: [] for g in GROUPS} for d in range(n)}
    heard_as = np.zeros((n, n), dtype=int)

    def features(spec_in: np.ndarray, lm: np.ndarray) -> np.ndarray:
        return sig.classifier_features(resynthesized(spec_in, lm), step=sig.CLASSIFIER_FRAMES, fb=fb)

    for i in order:
        item = test.feats[i]
        pairs = [(s, d) for s in range(n) for d in range(n) if s != d]
        x = torch.tensor(np.stack([item[s][:args.frames].astype(np.float32) for s, _ in pairs]))
        with torch.no_grad():
            out = gen(x, torch.eye(n)[[d for _, d in pairs]])[0].numpy()
        spec = [spectra_of(args.data_dir / "audio" / f"{test.ids[i]}_{names[s]}.wav", args.frames) for s in range(n)]
        for j, (s, d) in enumerate(pairs):
            fo = features(spec[s], out[j])
            ft = features(spec[d], item[d][:args.frames].astype(np.float32))
            both = voiced(fo) & voiced(ft)
            fo, ft = fo[both], ft[both]
            if not len(fo):
                continue
            for group, idx in GROUPS.items():
                f = fo.copy()
                f[:, idx] = ft[:, idx]
                verdict = clf.run(None, {"features": f})[0].argmax(-1)
                hits[d][group].extend((verdict == d).tolist())
                if group == "none":
                    heard_as[d] += np.bincount(verdict, minlength=n)
        print(f"attribute: {test.ids[i]} done", flush=True)

    print(f"\nShare of windows heard as the target, {args.checkpoint}, resynthesized, with one feature group "
          f"replaced by the real target's ({len(order)} test pieces x {n * (n - 1)} pairs x {args.frames} frames):\n")
    print("| target | " + " | ".join(GROUPS) + " | heard as (none replaced) |")
    print("|---|" + "---|" * (len(GROUPS) + 1))
    for d in range(n):
        top = ", ".join(f"{names[k]} {heard_as[d, k]}" for k in np.argsort(-heard_as[d])[:3] if heard_as[d, k])
        print(f"| {names[d]} | " + " | ".join(f"{np.mean(hits[d][g]):.3f}" for g in GROUPS) + f" | {top} |")
    print("| **mean** | " + " | ".join(f"{np.mean(sum((hits[d][g] for d in range(n)), [])):.3f}" for g in GROUPS) + " | |")


if __name__ == "__main__":
    main()
