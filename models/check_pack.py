#!/usr/bin/env python3
"""Validates a committed model pack against its manifest, with numpy and onnxruntime only (CI).

Checks: manifest fields and contract constants; every model file exists and its ONNX inputs and
outputs have the manifest's names, ranks and fixed dims (batch dim dynamic); style count agrees
everywhere; the fixture's frames, streamed through the generator with state carried, and its
classifier features reproduce the stored outputs within the fixture's tolerances (1e-4, and for an
int8 generator its `generator_tolerance`: int8 kernels differ between CPUs, export.py); the
generator also runs at batch 1 and 2 and gives finite outputs; the pack stays under 20 MB.

Usage: python models/check_pack.py [models/packs/default]   (exit 1 with a reason on failure)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

CONTRACT = {"format_version": 1, "sample_rate": 48000, "n_fft": 1024, "hop": 128,
            "window": "asymmetric", "feature": "logmag_ln_eps1e-10"}
MAX_PACK_BYTES = 20 * 1024 * 1024


class PackError(Exception):
    """A pack that does not match its manifest or the contract."""


def session(path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise PackError(f"{path}: onnxruntime cannot load it: {e}") from e


def check_io(sess: ort.InferenceSession, spec: dict, what: str) -> None:
    """Names, order, ranks and fixed dims of a model's tensors against the manifest."""
    for kind, actual in (("inputs", sess.get_inputs()), ("outputs", sess.get_outputs())):
        want = spec[kind]
        if [t.name for t in actual] != [t["name"] for t in want]:
            raise PackError(f"{what} {kind}: names {[t.name for t in actual]} != manifest {[t['name'] for t in want]}")
        for a, w in zip(actual, want):
            if a.type != "tensor(float)":
                raise PackError(f"{what} {a.name}: type {a.type}, expected float32")
            if len(a.shape) != len(w["shape"]):
                raise PackError(f"{what} {a.name}: rank {len(a.shape)} != manifest {w['shape']}")
            if w["shape"][0] != -1 or isinstance(a.shape[0], int):
                raise PackError(f"{what} {a.name}: batch dim must be dynamic (-1), model has {a.shape[0]}")
            for i, (da, dw) in enumerate(zip(a.shape[1:], w["shape"][1:]), start=1):
                if da != dw:
                    raise PackError(f"{what} {a.name}: dim {i} is {da}, manifest says {dw}")


def check(pack: Path) -> list[str]:
    """Runs every check; returns lines describing what passed."""
    notes: list[str] = []
    mpath = pack / "manifest.json"
    if not mpath.exists():
        raise PackError(f"{mpath} missing")
    m = json.loads(mpath.read_text())
    for k, v in CONTRACT.items():
        if m.get(k) != v:
            raise PackError(f"manifest {k} = {m.get(k)!r}, contract says {v!r}")
    styles = m["styles"]
    n_styles = len(styles)
    if not 1 <= n_styles <= 8 or any(not s.get("name") for s in styles):
        raise PackError(f"manifest styles must be 1..8 named entries, got {styles}")
    total = sum(p.stat().st_size for p in pack.iterdir() if p.is_file())
    if total > MAX_PACK_BYTES:
        raise PackError(f"pack is {total} bytes, limit {MAX_PACK_BYTES}")
    notes.append(f"manifest ok: {n_styles} styles ({', '.join(s['name'] for s in styles)}), pack {total / 1e6:.2f} MB")

    g = m["generator"]
    if g.get("role") != "generator":
        raise PackError("generator.role must be 'generator'")
    gs = session(pack / g["file"])
    check_io(gs, g, "generator")
    shapes = {t["name"]: t["shape"] for t in g["inputs"] + g["outputs"]}
    if shapes["logmag"][1:] != [513] or shapes["logmag_out"][1:] != [513] or shapes["style"][1:] != [n_styles]:
        raise PackError(f"generator shapes disagree with the contract / style count: {shapes}")
    if shapes["state_in"] != g["state_shape"] or shapes["state_out"] != g["state_shape"]:
        raise PackError(f"state shapes {shapes['state_in']} / {shapes['state_out']} != state_shape {g['state_shape']}")
    tail = g["state_shape"][1:]
    for b in (1, 2):
        y, st = gs.run(None, {"logmag": np.full((b, 513), -3.0, np.float32),
                              "style": np.full((b, n_styles), 1.0 / n_styles, np.float32),
                              "state_in": np.zeros((b, *tail), np.float32)})
        if y.shape != (b, 513) or st.shape != (b, *tail) or not np.isfinite(y).all():
            raise PackError(f"generator at batch {b}: shapes {y.shape} {st.shape} or non-finite output")
    notes.append(f"generator ok: {g['file']} ({g['quantization']}), state {g['state_shape']}")

    c = m["classifier"]
    if c.get("role") != "classifier":
        raise PackError("classifier.role must be 'classifier'")
    cs = session(pack / c["file"])
    check_io(cs, c, "classifier")
    if c["outputs"][0]["shape"][1:] != [n_styles]:
        raise PackError(f"classifier output {c['outputs'][0]['shape']} != {n_styles} styles")
    if c["inputs"][0]["shape"][1] != c["features"]["dim"]:
        raise PackError("classifier input width != features.dim")
    notes.append(f"classifier ok: {c['file']}, F = {c['features']['dim']}")

    fx_path = pack / "fixture.json"
    fx = json.loads(fx_path.read_text())
    tol = float(fx.get("tolerance", 1e-4))
    gtol = float(fx.get("generator_tolerance", tol))
    gf = fx["generator"]
    style = np.asarray(gf["style"], np.float32)
    state = np.zeros((style.shape[0], *tail), np.float32)
    worst = 0.0
    for k in range(gf["frames"]):
        y, state = gs.run(None, {"logmag": np.asarray(gf["logmag"][k], np.float32), "style": style, "state_in": state})
        worst = max(worst, float(np.abs(y - np.asarray(gf["logmag_out"][k], np.float32)).max()))
    worst = max(worst, float(np.abs(state - np.asarray(gf["state_out_final"], np.float32)).max()))
    if worst > gtol:
        raise PackError(f"generator fixture mismatch: max abs error {worst:.3g} > {gtol}")
    cf = fx["classifier"]
    p = cs.run(None, {"features": np.asarray(cf["features"], np.float32)})[0]
    cerr = float(np.abs(p - np.asarray(cf["probs"], np.float32)).max())
    if cerr > tol:
        raise PackError(f"classifier fixture mismatch: max abs error {cerr:.3g} > {tol}")
    if not np.allclose(p.sum(-1), 1.0, atol=1e-4):
        raise PackError("classifier probs do not sum to 1")
    notes.append(f"fixture ok: {gf['frames']} frames x batch {style.shape[0]}, generator max err {worst:.2g}, "
                 f"classifier max err {cerr:.2g} (tol {gtol} and {tol})")
    return notes


def main() -> int:
    pack = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "packs" / "default"
    try:
        for line in check(pack):
            print(f"check_pack: {line}")
    except (PackError, KeyError, FileNotFoundError, json.JSONDecodeError) as e:
        print(f"check_pack: FAILED for {pack}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"check_pack: {pack} passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
