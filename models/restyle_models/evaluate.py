"""Step 5, evaluate: the test split (unseen pieces), per target style, written to REPORT.md and
into the manifest's metrics.

Every model output here comes from onnxruntime streaming one frame per call, as the plugin
runs it. Sources are all instruments other than the target. Compared: the shipped int8 model,
its fp32 graph, the autoencoder-only model, the unchanged input and a static EQ match (a fixed
per-bin gain from the average input power spectrum to the average target power spectrum of that
instrument pair, measured on the train split).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from . import signal as sig
from .dataset import load_index, load_split
from .export import export_generator, load_generator, session, time_per_call
from .render import DATA_DIR, MODELS_DIR, read_wav

DB = 20.0 / np.log(10.0)
RESYNTHESIZED = ("int8", "eq", "target")  # the systems also measured on the audio they resynthesize to


def lsd_frames(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-frame RMS over bins of the dB difference, both floored at -61 dB."""
    d = (np.maximum(a, sig.LSD_FLOOR) - np.maximum(b, sig.LSD_FLOOR)) * DB
    return np.sqrt((d ** 2).mean(-1))


def variation(lm: np.ndarray) -> float:
    """Frame-to-frame spectral variation: mean |dB[t] - dB[t-1]| over bins and frames."""
    d = np.maximum(lm, sig.LSD_FLOOR) * DB
    return float(np.abs(np.diff(d, axis=0)).mean())


def chroma_similarity(a: np.ndarray, b: np.ndarray, mask: np.ndarray, cm: np.ndarray) -> float:
    """Mean cosine similarity of per-frame chroma (from power) over voiced frames."""
    ca = sig.power_from_logmag(a[mask]) @ cm.T
    cb = sig.power_from_logmag(b[mask]) @ cm.T
    num = (ca * cb).sum(1)
    den = np.linalg.norm(ca, axis=1) * np.linalg.norm(cb, axis=1) + 1e-12
    return float((num / den).mean()) if len(num) else float("nan")


def spectra_of(path: Path, frames: int) -> np.ndarray:
    """The first `frames` contract STFT frames of a rendered mono 16-bit WAV (framing is causal,
    so only the audio those frames cover is read)."""
    return sig.stft_frames(read_wav(path, length=frames * sig.HOP).astype(np.float32) / 32768.0)


def resynthesized(spec_in: np.ndarray, logmag_out: np.ndarray) -> np.ndarray:
    """What the engine plays, analysed again: the input spectrum times
    `exp(logmag_out - logmag_in)` clamped to [0, 1000] (docs/CONTRACT.md: the input's phase),
    overlap-added, then the contract's log-magnitudes of that audio."""
    gain = np.clip(np.exp(logmag_out - sig.logmag(spec_in)), 0.0, 1000.0)
    return sig.reanalysed(spec_in * gain)


def stream_batch(sess, x: np.ndarray, style: np.ndarray, state_shape: list[int]) -> np.ndarray:
    """onnxruntime streaming over [B, T, 513]."""
    b, t, _ = x.shape
    state = np.zeros((b, *state_shape), dtype=np.float32)
    out = np.empty_like(x)
    for k in range(t):
        out[:, k], state = sess.run(None, {"logmag": x[:, k], "style": style, "state_in": state})
    return out


def mean_power(split, n_styles: int) -> np.ndarray:
    """[S, 513] average power spectrum per instrument over a split."""
    acc = np.zeros((n_styles, sig.N_BINS))
    n = 0
    for item in split.feats:
        for s in range(n_styles):
            acc[s] += sig.power_from_logmag(item[s][::4]).sum(0)
        n += len(item[0][::4])
    return acc / max(n, 1)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    ap.add_argument("--pack", type=Path, default=MODELS_DIR / "packs" / "default")
    ap.add_argument("--frames", type=int, default=3000, help="frames per test item (8 s)")
    ap.add_argument("--items", type=int, default=16)
    ap.add_argument("--max-items", type=int, default=None)
    ap.add_argument("--timing-calls", type=int, default=3000)
    ap.add_argument("--report", type=Path, default=MODELS_DIR / "REPORT.md")
    args = ap.parse_args(argv)
    t_start = time.time()
    import onnxruntime as ort  # noqa: F401  (fail early with a clear error if missing)
    from .classifier import voiced as clf_voiced

    index = load_index(args.data_dir)
    names = [s["name"] for s in index["styles"]]
    n_styles = len(names)
    manifest_path = args.pack / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    state_shape = manifest["generator"]["state_shape"][1:]
    ck_dir = args.data_dir / "checkpoints"
    exp_dir = args.data_dir / "export"
    ae_path = exp_dir / "generator_ae_fp32.onnx"
    has_ae = (ck_dir / "gen_ae.pt").exists()
    if has_ae:
        export_generator(load_generator(ck_dir / "gen_ae.pt")[0], ae_path)
    models = {"int8": session(args.pack / "generator.onnx"), "fp32": session(exp_dir / "generator_fp32.onnx")}
    if has_ae:
        models["ae_fp32"] = session(ae_path)
    clf = session(args.pack / "classifier.onnx")
    fb = sig.mel_filterbank()
    cm = sig.chroma_matrix()

    train = load_split(args.data_dir, "train", args.max_items)
    pw = mean_power(train, n_styles)
    eq_gain = 0.5 * np.log((pw[None, :, :] + 1e-10) / (pw[:, None, :] + 1e-10))  # [src, dst, bins]
    del train
    test = load_split(args.data_dir, "test", args.max_items)
    # one variant per piece first, so the items span as many unseen pieces as possible
    order = sorted(range(len(test.ids)), key=lambda i: (test.ids[i].endswith("_v1"), test.ids[i]))[:args.items]

    def classify(lm: np.ndarray) -> np.ndarray:
        f = sig.classifier_features(lm, step=sig.CLASSIFIER_FRAMES, fb=fb)
        f = f[clf_voiced(f)]
        return clf.run(None, {"features": f})[0] if len(f) else np.zeros((0, n_styles), np.float32)

    systems = ["input", "eq"] + list(models) + ["target"]
    acc = {d: {k: {"lsd": [], "hits": [], "var": [], "chroma": []} for k in systems} for d in range(n_styles)}
    fp_int = {d: [] for d in range(n_styles)}
    # on resynthesized audio, what a listener (and the classifier) hears of what the engine plays:
    # the shipped model, the EQ match, and the true target magnitudes (the input's phase is the
    # only error left there: the ceiling of the engine's resynthesis)
    resynth = {d: {k: {"lsd": [], "hits": []} for k in RESYNTHESIZED} for d in range(n_styles)}
    blends = [(1, 2), (4, 5), (1, 5), (0, 1)]
    blend_probs = {p: {"resynthesized": [], "magnitudes": []} for p in blends}
    for i in order:
        item = test.feats[i]
        t = min(args.frames, item[0].shape[0])
        pairs = [(s, d) for s in range(n_styles) for d in range(n_styles) if s != d]
        x = np.stack([item[s][:t].astype(np.float32) for s, _ in pairs])
        y = np.stack([item[d][:t].astype(np.float32) for _, d in pairs])
        style = np.eye(n_styles, dtype=np.float32)[[d for _, d in pairs]]
        outs = {"input": x, "eq": x + eq_gain[[s for s, _ in pairs], [d for _, d in pairs]][:, None, :].astype(np.float32),
                "target": y}
        for name, sess in models.items():
            outs[name] = stream_batch(sess, x, style, state_shape)
        spec_in = [spectra_of(args.data_dir / "audio" / f"{test.ids[i]}_{names[s]}.wav", t) for s in range(n_styles)]
        for j, (s, d) in enumerate(pairs):
            mask = y[j].max(-1) > sig.VOICED
            for k, r in resynth[d].items():
                heard = resynthesized(spec_in[s], outs[k][j])
                r["lsd"].append(lsd_frames(heard, y[j])[mask].mean())
                r["hits"].extend((classify(heard).argmax(-1) == d).tolist())
            for k in systems:
                o = outs[k][j]
                a = acc[d][k]
                a["lsd"].append(lsd_frames(o, y[j])[mask].mean())
                p = classify(o)
                a["hits"].extend((p.argmax(-1) == d).tolist())
                a["var"].append(variation(o))
                a["chroma"].append(chroma_similarity(o, y[j], mask, cm))
            fp_int[d].append(lsd_frames(outs["int8"][j], outs["fp32"][j])[mask].mean())
        # 50/50 blends from every source instrument
        for a_, b_ in blends:
            srcs = [s for s in range(n_styles) if s not in (a_, b_)]
            xb = np.stack([item[s][:t].astype(np.float32) for s in srcs])
            st = np.zeros((len(srcs), n_styles), np.float32)
            st[:, a_], st[:, b_] = 0.5, 0.5
            ob = stream_batch(models["int8"], xb, st, state_shape)
            for s, o in zip(srcs, ob):
                for judged, p in (("resynthesized", classify(resynthesized(spec_in[s], o))), ("magnitudes", classify(o))):
                    if len(p):
                        blend_probs[(a_, b_)][judged].append(p)
        print(f"evaluate: item {test.ids[i]} done ({time.time() - t_start:.0f} s)", flush=True)

    # timing, interleaved
    tm = {"fp32": [], "int8": []}
    for _ in range(3):
        for k in tm:
            tm[k].append(time_per_call(models[k], n_styles, state_shape, args.timing_calls))
    timing = {k: min(v) for k, v in tm.items()}

    def m(d: int, k: str, key: str) -> float:
        v = acc[d][k][key]
        return float(np.mean(v)) if len(v) else float("nan")

    per_style = {}
    for d in range(n_styles):
        r = {k: {"lsd_db": m(d, k, "lsd"), "target_share": m(d, k, "hits"), "variation_db": m(d, k, "var"),
                 "chroma_similarity": m(d, k, "chroma")} for k in systems}
        r["int8_vs_fp32_lsd_db"] = float(np.mean(fp_int[d]))
        r["resynthesized_lsd_db"] = {k: float(np.mean(v["lsd"])) for k, v in resynth[d].items()}
        r["resynthesized_target_share"] = {k: float(np.mean(v["hits"])) for k, v in resynth[d].items()}
        per_style[names[d]] = r
    blend_res = {}
    for (a_, b_), by_judged in blend_probs.items():
        res = {}
        for judged, ps in by_judged.items():
            p = np.concatenate(ps) if ps else np.zeros((0, n_styles))
            heard = np.bincount(p.argmax(-1), minlength=n_styles) / max(len(p), 1)
            res[judged] = {names[k]: float(heard[k]) for k in range(n_styles)}
        blend_res[f"{names[a_]}+{names[b_]}"] = res
    summary = {
        "test_items": [test.ids[i] for i in order], "frames_per_item": args.frames,
        "per_style": per_style, "blend_50_50": blend_res, "timing_ms_per_call_b2_1thread": timing,
        "minutes": round((time.time() - t_start) / 60, 2),
    }
    (args.data_dir / "evaluation.json").write_text(json.dumps(summary, indent=1))
    avg = lambda k, key: float(np.mean([per_style[n][k][key] for n in names]))  # noqa: E731
    manifest["generator"]["metrics"]["test"] = {
        "lsd_db": {k: avg(k, "lsd_db") for k in systems if k != "target"},
        "target_share": {k: avg(k, "target_share") for k in systems},
        "variation_db": {k: avg(k, "variation_db") for k in systems},
        "chroma_similarity": {k: avg(k, "chroma_similarity") for k in systems if k != "target"},
        "int8_vs_fp32_lsd_db": float(np.mean([per_style[n]["int8_vs_fp32_lsd_db"] for n in names])),
        "resynthesized_lsd_db": {k: float(np.mean([per_style[n]["resynthesized_lsd_db"][k] for n in names]))
                                 for k in RESYNTHESIZED},
        "resynthesized_target_share": {k: float(np.mean([per_style[n]["resynthesized_target_share"][k] for n in names]))
                                       for k in RESYNTHESIZED},
        "ms_per_frame_b2_1thread": timing,
    }
    manifest["classifier"]["metrics"]["test_accuracy_real_renders"] = avg("target", "target_share")
    manifest_path.write_text(json.dumps(manifest, indent=1))
    write_report(args.report, index, summary, names, manifest, systems)
    print(f"evaluate: wrote {args.report} in {summary['minutes']} min")


def write_report(path: Path, index: dict, s: dict, names: list[str], manifest: dict, systems: list[str]) -> None:
    """REPORT.md: the figures against the issue's targets, per style."""
    ps = s["per_style"]
    g = manifest["generator"]
    L = ["# Restyle default pack: evaluation report", "",
         "Generated by `python -m restyle_models.evaluate` on the test split (pieces never seen in training). "
         "Every model figure is onnxruntime streaming one frame per call, as the plugin runs it. "
         "Sources: every instrument other than the target. `int8` is the shipped generator; `fp32` its float graph; "
         "`ae_fp32` the autoencoder before adversarial fine-tuning; `eq` a fixed per-bin gain from the average input "
         "power spectrum to the average target power spectrum of the same instrument pair (train split); `input` the unchanged input.", "",
         f"Test items: {', '.join(s['test_items'])} (first {s['frames_per_item']} frames = "
         f"{s['frames_per_item'] * sig.HOP / sig.SAMPLE_RATE:.1f} s each).", "",
         "## Data", "", "| split | minutes per style |", "|---|---|"]
    for k, v in index["minutes_per_style"].items():
        L.append(f"| {k} | {v:.1f} |")
    style_list = ", ".join(f"{st['name']} (GM {st['program']})" for st in index["styles"])
    L += ["", f"Styles: {style_list}.", "",
          "## Training", "", "```", json.dumps(g["training"], indent=1), "```", "",
          "## Log-spectral distance to the paired ground truth (dB, lower is better)", "",
          "| target | input | EQ | AE fp32 | fp32 | int8 | int8/input | int8/EQ |", "|---|---|---|---|---|---|---|---|"]
    def f(d: dict, k: str, key: str) -> str:
        return f"{d[k][key]:.3f}" if k in d else "-"
    for n in names:
        d = ps[n]
        L.append(f"| {n} | {f(d,'input','lsd_db')} | {f(d,'eq','lsd_db')} | {f(d,'ae_fp32','lsd_db')} | {f(d,'fp32','lsd_db')} | "
                 f"{f(d,'int8','lsd_db')} | {d['int8']['lsd_db'] / d['input']['lsd_db']:.3f} | {d['int8']['lsd_db'] / d['eq']['lsd_db']:.3f} |")
    mean = lambda k, key: np.mean([ps[n][k][key] for n in names if k in ps[n]])  # noqa: E731

    def fmean(k: str, key: str) -> str:
        """The mean over styles, or '-' for a system this run had not (no autoencoder checkpoint)."""
        return f"{mean(k, key):.3f}" if k in systems else "-"
    L.append(f"| **mean** | {mean('input','lsd_db'):.3f} | {mean('eq','lsd_db'):.3f} | {fmean('ae_fp32','lsd_db')} | "
             f"{mean('fp32','lsd_db'):.3f} | {mean('int8','lsd_db'):.3f} | {mean('int8','lsd_db') / mean('input','lsd_db'):.3f} | "
             f"{mean('int8','lsd_db') / mean('eq','lsd_db'):.3f} |")
    L += ["", "Targets: int8/input <= 0.4, int8/EQ <= 0.5.", "",
          "## The same on resynthesized audio (dB)", "",
          "What the engine plays: the model's magnitudes on the input's phase, overlap-added, then analysed again "
          "(`resynthesized` in evaluate.py). `target` puts the true target magnitudes on the input's phase: the "
          "error the input's phase alone leaves.", "",
          "| target | input | EQ resynthesized | int8 resynthesized | target resynthesized | int8/input | target/input |",
          "|---|---|---|---|---|---|---|"]
    for n in names:
        d = ps[n]
        rs = d["resynthesized_lsd_db"]
        L.append(f"| {n} | {d['input']['lsd_db']:.3f} | {rs['eq']:.3f} | {rs['int8']:.3f} | {rs['target']:.3f} | "
                 f"{rs['int8'] / d['input']['lsd_db']:.3f} | {rs['target'] / d['input']['lsd_db']:.3f} |")
    rmean = lambda k, key="resynthesized_lsd_db": np.mean([ps[n][key][k] for n in names])  # noqa: E731
    L += [f"| **mean** | {mean('input','lsd_db'):.3f} | {rmean('eq'):.3f} | {rmean('int8'):.3f} | {rmean('target'):.3f} | "
          f"{rmean('int8') / mean('input','lsd_db'):.3f} | {rmean('target') / mean('input','lsd_db'):.3f} |", "",
          "Target: int8 resynthesized/input <= 0.45.", "",
          "Share of windows of the resynthesized audio the classifier hears as the target style (what the plugin "
          "plays; the input is its own resynthesis, so its share is the one in the next table):", "",
          "| target | EQ resynthesized | int8 resynthesized | target resynthesized |", "|---|---|---|---|"]
    for n in names:
        rs = ps[n]["resynthesized_target_share"]
        L.append(f"| {n} | {rs['eq']:.3f} | {rs['int8']:.3f} | {rs['target']:.3f} |")
    share = "resynthesized_target_share"
    L += [f"| **mean** | {rmean('eq', share):.3f} | {rmean('int8', share):.3f} | {rmean('target', share):.3f} |", "",
          "Targets: >= 0.95 on the model output, <= 0.50 on EQ.", "",
          "## Classifier: share of output windows heard as the target style", "",
          "| target | real target | input | EQ | AE fp32 | fp32 | int8 |", "|---|---|---|---|---|---|---|"]
    for n in names:
        d = ps[n]
        L.append(f"| {n} | {f(d,'target','target_share')} | {f(d,'input','target_share')} | {f(d,'eq','target_share')} | "
                 f"{f(d,'ae_fp32','target_share')} | {f(d,'fp32','target_share')} | {f(d,'int8','target_share')} |")
    L.append(f"| **mean** | {mean('target','target_share'):.3f} | {mean('input','target_share'):.3f} | {mean('eq','target_share'):.3f} | "
             f"{fmean('ae_fp32','target_share')} | {mean('fp32','target_share'):.3f} | {mean('int8','target_share'):.3f} |")
    L += ["", "Targets: >= 0.95 on the model output, <= 0.50 on EQ.", "",
          "## Frame-to-frame spectral variation (mean |dB[t]-dB[t-1]|)", "",
          "| target | real target | input | EQ | AE fp32 | int8 | int8/real |", "|---|---|---|---|---|---|---|"]
    for n in names:
        d = ps[n]
        L.append(f"| {n} | {f(d,'target','variation_db')} | {f(d,'input','variation_db')} | {f(d,'eq','variation_db')} | "
                 f"{f(d,'ae_fp32','variation_db')} | {f(d,'int8','variation_db')} | {d['int8']['variation_db'] / d['target']['variation_db']:.3f} |")
    L += ["", "Target: int8/real within 0.8 .. 1.2.", "",
          "## Chroma similarity to the ground truth (cosine, voiced frames)", "",
          "| target | input | EQ | AE fp32 | int8 |", "|---|---|---|---|---|"]
    for n in names:
        d = ps[n]
        L.append(f"| {n} | {f(d,'input','chroma_similarity')} | {f(d,'eq','chroma_similarity')} | {f(d,'ae_fp32','chroma_similarity')} | {f(d,'int8','chroma_similarity')} |")
    L += ["", "Target: >= 0.9.", "", "## int8 against fp32", "",
          f"Shipped quantization: `{g['quantization']}`. Per-call time at batch 2 (one frame of both channels), "
          f"onnxruntime {manifest.get('onnxruntime', '1.31.1')}, 1 intra-op thread, median of 3000 calls, best of 3 interleaved rounds:", "",
          f"- fp32: {s['timing_ms_per_call_b2_1thread']['fp32']:.4f} ms per frame", f"- int8: {s['timing_ms_per_call_b2_1thread']['int8']:.4f} ms per frame", "",
          "| target | LSD int8 - LSD fp32 (dB) | LSD(int8, fp32) (dB) |", "|---|---|---|"]
    for n in names:
        d = ps[n]
        L.append(f"| {n} | {d['int8']['lsd_db'] - d['fp32']['lsd_db']:+.4f} | {d['int8_vs_fp32_lsd_db']:.4f} |")
    L += ["", "Quantization candidates measured at export (validation split):", "", "| variant | LSD to target dB | LSD to fp32 dB | ms/call b2 | bytes |", "|---|---|---|---|---|"]
    for k, v in g["metrics"]["quantization_candidates"].items():
        L.append(f"| {k} | {v['lsd_to_target_db']:.4f} | {v.get('lsd_to_fp32_db', 0.0):.4f} | {v['ms_per_call_b2']:.4f} | {v['size_bytes']} |")
    L += ["", "## 50/50 blends: what the classifier hears", "",
          "Share of windows heard as each style, on the resynthesized audio (what the plugin plays) and on the model's magnitudes.",
          "", "| blend | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for k, v in s["blend_50_50"].items():
        for judged in ("resynthesized", "magnitudes"):
            L.append(f"| {k} ({judged}) | " + " | ".join(f"{v[judged][n]:.2f}" for n in names) + " |")
    path.write_text("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
