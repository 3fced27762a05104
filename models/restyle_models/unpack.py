"""Checkpoints from a committed pack, so that training can go on from the shipped models on a
machine that never trained them: checkpoints live in the git-ignored `data/`, the pack in git.

`python -m restyle_models.unpack [--pack packs/default] [--tag NAME]` writes
`data/checkpoints/gen_<NAME>.pt` (for `train --init`) and `classifier.pt` (for `export`).

The weights are the graphs' initializers: exact where the pack kept fp32, dequantized
(`scale * (q - zero_point)`) where it holds an int8 MatMul weight, so an unpacked generator
carries the shipped model's rounding (REPORT.md: its outputs differ from the float model it was
quantized from by 0.4-0.6 dB, at the same distance to the target). The export names some
initializers after their parameter and some not (`onnx::MatMul_217`, a transposed weight), so
which one is which is found by exporting a template of the manifest's architecture whose every
entry holds distinct integers and reading them back. The result is checked end to end: the
checkpoint, exported and quantized again as the pack says, reproduces the pack's fixture.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from . import export
from .classifier import StyleClassifier
from .model import Generator, GeneratorConfig
from .render import DATA_DIR, MODELS_DIR

QUANT_SUFFIXES = ("_quantized", "_scale", "_zero_point")


def initializers(path: Path) -> dict[str, np.ndarray]:
    """Every float initializer, int8 weights dequantized under their float name."""
    raw = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
    out = {n: a for n, a in raw.items() if a.dtype == np.float32 and not n.endswith(QUANT_SUFFIXES)}
    for name in (n[:-len("_quantized")] for n in raw if n.endswith("_quantized")):
        q = raw[f"{name}_quantized"].astype(np.float32)
        scale, zero = raw[f"{name}_scale"].astype(np.float32), raw[f"{name}_zero_point"].astype(np.float32)
        if scale.size > 1 and q.shape[-1] != scale.size:
            raise ValueError(f"{path}: {name} {list(q.shape)} has {scale.size} scales, not one per column")
        out[name] = (q - zero) * scale  # per tensor, or per MatMul output column (the last axis)
    return out


def locate(module: torch.nn.Module, export_fn: Callable[[torch.nn.Module, Path], None]) -> dict[str, tuple[str, bool]]:
    """Initializer name -> (state-dict entry, transposed?) for graphs `export_fn` writes of
    `module`: every entry is filled with distinct integers (exact in float32 below 2^24; from
    2^22, so that no constant of the graph looks like one) and the exported initializers are read
    back."""
    sd = module.state_dict()
    start, owner = 2 ** 22, []
    with torch.no_grad():
        for key, t in sd.items():
            t.copy_(torch.arange(start, start + t.numel(), dtype=torch.float32).reshape(t.shape))
            owner.append((start, start + t.numel(), key))
            start += t.numel()
    if start >= 2 ** 24:
        raise ValueError(f"{start} values do not stay distinct in float32")
    with tempfile.TemporaryDirectory(prefix="restyle-unpack-") as tmp:
        path = Path(tmp) / "template.onnx"
        export_fn(module, path)
        template = initializers(path)
    found: dict[str, tuple[str, bool]] = {}
    for name, arr in template.items():
        first = arr.reshape(-1)[0] if arr.size else 0.0
        key = next((k for lo, hi, k in owner if lo <= first < hi), None)
        if key is None:
            continue  # a constant of the graph, not a weight
        ref = sd[key].numpy()
        if arr.shape == ref.shape and np.array_equal(arr, ref):
            found[name] = (key, False)
        elif ref.ndim == 2 and arr.shape == ref.T.shape and np.array_equal(arr, ref.T):
            found[name] = (key, True)
        else:
            raise ValueError(f"initializer {name} holds part of {key} in a layout unpack does not know")
    missing = set(sd) - {k for k, _ in found.values()}
    if missing:
        raise ValueError(f"the export keeps no initializer for {sorted(missing)}")
    return found


def unpack_module(module: torch.nn.Module, export_fn: Callable[[torch.nn.Module, Path], None],
                  graph: Path) -> dict[str, torch.Tensor]:
    """The state dict of `module`'s architecture read from the pack's graph."""
    weights = initializers(graph)
    state = {}
    for name, (key, transposed) in locate(module, export_fn).items():
        if name not in weights:
            raise ValueError(f"{graph} lacks the initializer {name} (exported by another version of export.py?)")
        arr, shape = weights[name], tuple(module.state_dict()[key].shape)
        # the quantizer may fold a Transpose into the weight; a square one keeps the template's layout
        if arr.ndim == 2 and (arr.shape != shape or (arr.shape == shape[::-1] and transposed)):
            arr = arr.T
        if arr.shape != shape:
            raise ValueError(f"{graph}: {name} is {arr.shape}, {key} is {shape}")
        state[key] = torch.tensor(np.array(arr))
    return state


def requantized(gen: Generator, quantization: str, out_dir: Path) -> Path:
    """The generator exported and quantized the way the pack's manifest says it was."""
    fp32 = out_dir / "generator_fp32.onnx"
    export.export_generator(gen, fp32)
    if quantization == "fp32":
        return fp32
    if quantization not in export.DYNAMIC_VARIANTS:
        raise ValueError(f"unpack reproduces dynamic int8 packs only, not {quantization!r}")
    pre = export.preprocess(fp32, out_dir)
    return export.quantize_dynamic_variant(pre, out_dir / "generator_int8.onnx", export.DYNAMIC_VARIANTS[quantization])


def fixture_error(graph: Path, fixture: dict) -> float:
    """Largest difference from the fixture's streaming outputs (logmag and final state)."""
    g = fixture["generator"]
    frames = lambda key: np.stack([np.asarray(f, dtype=np.float32) for f in g[key]], axis=1)  # noqa: E731
    sess = export.session(graph)
    out, state = export.run_stream(sess, frames("logmag"), np.asarray(g["style"], dtype=np.float32),
                                   list(sess.get_inputs()[2].shape[1:]))
    return max(float(np.abs(out - frames("logmag_out")).max()),
               float(np.abs(state - np.asarray(g["state_out_final"], dtype=np.float32)).max()))


def unpack_generator(pack: Path, manifest: dict) -> tuple[Generator, float, float]:
    """The pack's generator as a PyTorch model, how far its re-export is from the fixture, and
    how far it may be (the fixture's `generator_tolerance`: int8 kernels differ between CPUs)."""
    spec = manifest["generator"]
    names = {f.name for f in fields(GeneratorConfig)}
    cfg = GeneratorConfig(**{k: v for k, v in spec["architecture"].items() if k in names})
    gen = Generator(cfg).eval()
    gen.load_state_dict(unpack_module(Generator(cfg).eval(), export.export_generator, pack / spec["file"]))
    fixture = json.loads((pack / "fixture.json").read_text())
    with tempfile.TemporaryDirectory(prefix="restyle-unpack-") as tmp:
        err = fixture_error(requantized(gen, spec["quantization"], Path(tmp)), fixture)
    return gen, err, float(fixture.get("generator_tolerance", fixture["tolerance"]))


def unpack_classifier(pack: Path, manifest: dict) -> tuple[StyleClassifier, float]:
    """The pack's classifier (its graph is fp32: exact), and how far it is from the fixture."""
    spec = manifest["classifier"]
    n_features, n_styles = spec["inputs"][0]["shape"][1], spec["outputs"][0]["shape"][1]

    def export_fn(m: torch.nn.Module, path: Path) -> None:
        export.export_classifier(m, n_features, path)

    clf = StyleClassifier(n_features, n_styles).eval()
    clf.load_state_dict(unpack_module(StyleClassifier(n_features, n_styles).eval(), export_fn, pack / spec["file"]))
    fx = json.loads((pack / "fixture.json").read_text())["classifier"]
    with torch.no_grad():
        probs = clf(torch.tensor(fx["features"], dtype=torch.float32)).numpy()
    return clf, float(np.abs(probs - np.asarray(fx["probs"], dtype=np.float32)).max())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pack", type=Path, default=MODELS_DIR / "packs" / "default")
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    ap.add_argument("--tag", default="pack", help="generator checkpoint name gen_<tag>.pt")
    ap.add_argument("--force", action="store_true", help="replace checkpoints that exist")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    manifest = json.loads((args.pack / "manifest.json").read_text())
    ck_dir = args.data_dir / "checkpoints"
    gen_path, clf_path = ck_dir / f"gen_{args.tag}.pt", ck_dir / "classifier.pt"
    existing = [str(p) for p in (gen_path, clf_path) if p.exists()]
    if existing and not args.force:
        raise SystemExit(f"unpack: {', '.join(existing)} exist; --force replaces them")

    gen, err, gen_tol = unpack_generator(args.pack, manifest)
    clf, clf_err = unpack_classifier(args.pack, manifest)
    for what, e, tol in (("re-exported generator", err, gen_tol), ("classifier", clf_err, export.PARITY_TOL)):
        if e > tol:
            raise SystemExit(f"unpack: the {what} is {e:.2e} from {args.pack}/fixture.json "
                             f"(> {tol}): nothing saved")
    ck_dir.mkdir(parents=True, exist_ok=True)
    styles = [s["name"] for s in manifest["styles"]]
    torch.save({"config": gen.cfg.to_dict(), "state_dict": gen.state_dict(), "styles": styles,
                "training": manifest["generator"]["training"]}, gen_path)
    spec = manifest["classifier"]
    torch.save({"n_features": spec["inputs"][0]["shape"][1], "n_styles": len(styles),
                "state_dict": clf.state_dict(), "training": spec["training"]}, clf_path)
    print(f"unpack: {gen_path} ({manifest['generator']['quantization']} weights dequantized; re-exported, "
          f"{err:.2e} from the fixture) and {clf_path} ({clf_err:.2e}) from {args.pack}")


if __name__ == "__main__":
    main()
