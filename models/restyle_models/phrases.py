"""Test-split phrases for the Rust end-to-end test (`plugin/tests/quality.rs`), with what this
pipeline's evaluation measures on them.

The Rust test renders each phrase through the plugin's own engine toward every other style and
judges the audio with the pack's classifier. To show that the plugin delivers the quality this
pipeline reports, it needs the same phrases and the figures the evaluation gives them here:
for every source -> target pair, the log-spectral distance to the target and the classifier's
share of windows heard as the target, for the unchanged input and for the shipped int8
generator resynthesized on the input's phase (the engine's path; one channel per call, as the
engine runs a mono track, because dynamic int8 quantization depends on the batch).

Writes `plugin/tests/fixtures/phrases/`: `<item>_<Style>.wav` (16-bit mono 48 kHz, cut from the
rendered test split) and `expected.json`. Rerun after every retraining of the default pack: the
file records the generator it measured, and the Rust test refuses figures of another one.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from . import signal as sig
from .classifier import SILENCE_LOGMEL
from .classifier import voiced as clf_voiced
from .dataset import load_index
from .evaluate import lsd_frames, resynthesized, stream_batch
from .export import session
from .render import DATA_DIR, MODELS_DIR, read_wav, write_wav

OUT_DIR = MODELS_DIR.parent / "plugin" / "tests" / "fixtures" / "phrases"


def fnv1a64(data: bytes) -> int:
    """FNV-1a, 64 bits: a fingerprint the Rust test computes the same way, with no hashing crate."""
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    ap.add_argument("--pack", type=Path, default=MODELS_DIR / "packs" / "default")
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument("--items", type=int, default=2, help="test pieces (one variant each)")
    ap.add_argument("--start", type=float, default=2.0, help="seconds into each phrase")
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args(argv)

    index = load_index(args.data_dir)
    names = [s["name"] for s in index["styles"]]
    manifest = json.loads((args.pack / "manifest.json").read_text())
    state_shape = manifest["generator"]["state_shape"][1:]
    generator = (args.pack / "generator.onnx").read_bytes()
    gen, clf = session(args.pack / "generator.onnx"), session(args.pack / "classifier.onnx")
    fb = sig.mel_filterbank()
    items = [it["id"] for it in index["items"] if it["split"] == "test" and it["id"].endswith("_v0")][:args.items]
    start, length = int(args.start * sig.SAMPLE_RATE), int(args.seconds * sig.SAMPLE_RATE)
    args.out.mkdir(parents=True, exist_ok=True)

    def heard_as(lm: np.ndarray) -> np.ndarray:
        f = sig.classifier_features(lm, step=sig.CLASSIFIER_FRAMES, fb=fb)
        f = f[clf_voiced(f)]
        return clf.run(None, {"features": f})[0].argmax(-1) if len(f) else np.zeros(0, int)

    pairs = []
    for item in items:
        spectra = {}
        for name in names:
            audio = read_wav(args.data_dir / "audio" / f"{item}_{name}.wav", start, length)
            write_wav(args.out / f"{item}_{name}.wav", audio)
            spectra[name] = sig.stft_frames(audio.astype(np.float32) / 32768.0)
        for s, source in enumerate(names):
            x = sig.logmag(spectra[source])
            for d, target in enumerate(names):
                if s == d:
                    continue
                y = sig.logmag(spectra[target])
                mask = y.max(-1) > sig.VOICED
                style = np.eye(len(names), dtype=np.float32)[[d]]
                model = resynthesized(spectra[source], stream_batch(gen, x[None], style, state_shape)[0])
                figures = {}
                for system, lm in (("input", x), ("model", model)):
                    heard = heard_as(lm)
                    figures[system] = {"lsd_db": float(lsd_frames(lm, y)[mask].mean()),
                                       "target_share": float((heard == d).mean()), "windows": int(len(heard))}
                pairs.append({"item": item, "source": source, "target": target, **figures})
        print(f"phrases: {item} done", flush=True)

    mean = lambda system, key: float(np.mean([p[system][key] for p in pairs]))  # noqa: E731
    expected = {
        "generator": {"bytes": len(generator), "fnv1a64": f"{fnv1a64(generator):016x}"},
        "styles": names,
        "items": items,
        "start_seconds": args.start,
        "seconds": args.seconds,
        "lsd_floor": sig.LSD_FLOOR,
        "voiced_logmag": sig.VOICED,
        "silence_logmel": SILENCE_LOGMEL,
        "classifier_step_frames": sig.CLASSIFIER_FRAMES,
        "mean": {system: {key: mean(system, key) for key in ("lsd_db", "target_share")} for system in ("input", "model")},
        "pairs": pairs,
    }
    (args.out / "expected.json").write_text(json.dumps(expected, indent=1))
    m = expected["mean"]
    print(f"phrases: {len(pairs)} pairs; LSD input {m['input']['lsd_db']:.2f} dB, model {m['model']['lsd_db']:.2f} dB; "
          f"target share input {m['input']['target_share']:.3f}, model {m['model']['target_share']:.3f}; "
          f"wrote {args.out}")


if __name__ == "__main__":
    main()
