"""Measurement: generator checkpoints side by side on the validation split, measured as the
evaluation measures the pack, so that runs are chosen without looking at the test split.

For every item and every (source, target) pair of instruments, each checkpoint maps the source to
the target (PyTorch sequence mode, which equals the streaming graph); the figures are the
evaluation's own: log-spectral distance to the real target on the model's magnitudes and on the
audio the engine plays from them (`evaluate.resynthesized`), the share of the classifier's windows
of that audio heard as the target, chroma similarity and frame-to-frame variation against the real
target's.

`python -m restyle_models.compare gen_r5.pt gen_c1.pt [--split val] [--items 12] [--frames 1536]`
(about a minute per checkpoint on one core).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from . import signal as sig
from .classifier import voiced
from .dataset import load_index, load_split
from .evaluate import chroma_similarity, lsd_frames, resynthesized, spectra_of, variation
from .export import load_generator, session
from .render import DATA_DIR, MODELS_DIR


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="+", help="generator checkpoints in data/checkpoints")
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    ap.add_argument("--pack", type=Path, default=MODELS_DIR / "packs" / "default", help="its classifier judges")
    ap.add_argument("--split", choices=["val", "test"], default="val")
    ap.add_argument("--items", type=int, default=12)
    ap.add_argument("--frames", type=int, default=1536)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    names = [s["name"] for s in load_index(args.data_dir)["styles"]]
    n = len(names)
    split = load_split(args.data_dir, args.split)
    order = sorted(range(len(split.ids)), key=lambda i: (split.ids[i].endswith("_v1"), split.ids[i]))[:args.items]
    clf = session(args.pack / "classifier.onnx")
    fb = sig.mel_filterbank()
    cm = sig.chroma_matrix()
    pairs = [(s, d) for s in range(n) for d in range(n) if s != d]
    style = torch.eye(n)[[d for _, d in pairs]]

    print(f"{args.split}: {len(order)} items x {len(pairs)} pairs x {args.frames} frames\n")
    print("| checkpoint | LSD | resynthesized LSD | heard as the target (resynthesized) | chroma | variation / real, lowest |")
    print("|---|---|---|---|---|---|")
    for name in args.checkpoints:
        gen, _ = load_generator(args.data_dir / "checkpoints" / name)
        lsd, rs_lsd, chroma = [], [], []
        hits = {d: [] for d in range(n)}
        var_out, var_real = np.zeros(n), np.zeros(n)
        for i in order:
            item = split.feats[i]
            t = min(args.frames, item[0].shape[0])
            x = torch.tensor(np.stack([item[s][:t].astype(np.float32) for s, _ in pairs]))
            with torch.no_grad():
                out = gen(x, style)[0].numpy()
            spec = [spectra_of(args.data_dir / "audio" / f"{split.ids[i]}_{names[s]}.wav", t) for s in range(n)]
            for j, (s, d) in enumerate(pairs):
                y = item[d][:t].astype(np.float32)
                mask = y.max(-1) > sig.VOICED
                heard = resynthesized(spec[s], out[j])
                lsd.append(lsd_frames(out[j], y)[mask].mean())
                rs_lsd.append(lsd_frames(heard, y)[mask].mean())
                chroma.append(chroma_similarity(out[j], y, mask, cm))
                var_out[d] += variation(out[j])
                var_real[d] += variation(y)
                f = sig.classifier_features(heard, step=sig.CLASSIFIER_FRAMES, fb=fb)
                f = f[voiced(f)]
                if len(f):
                    hits[d].extend((clf.run(None, {"features": f})[0].argmax(-1) == d).tolist())
        ratio = var_out / var_real
        low = int(np.argmin(ratio))
        per_style = ", ".join(f"{names[d]} {np.mean(hits[d]):.3f}" for d in range(n))
        share = np.mean(sum(hits.values(), []))
        print(f"| `{name}` | {np.mean(lsd):.3f} | {np.mean(rs_lsd):.3f} | {share:.3f} ({per_style}) | "
              f"{np.nanmean(chroma):.3f} | {ratio[low]:.3f} {names[low]} |", flush=True)


if __name__ == "__main__":
    main()
