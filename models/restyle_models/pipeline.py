"""One command for the whole pipeline: render -> classifier -> train (ae, adv) -> export -> evaluate
-> the end-to-end test's phrases (for the default pack).

`python -m restyle_models.pipeline` trains the default pack on 2 CPU cores (about an hour);
`--smoke` runs a tiny render, a few training steps of both phases, the classifier, export, unpack
(and a few steps more from the unpacked pack), evaluate and the pack check into a temporary
folder: the test that the code path works, needing PyTorch but no time.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import classifier, compare, evaluate, export, phrases, render, train, unpack
from .render import MODELS_DIR

# The adversarial phase also trains on the resynthesized audio: at equal time (18 min from the
# same checkpoint) that gave 7.42 dB resynthesized LSD and a 0.567 classifier share on test
# phrases, against 7.45 dB and 0.543 without it.
RESYNTH_WEIGHT = 1.0
# The adversarial phase trains on crops of 512 frames (1.4 s), 4 per batch: the plugin streams
# one state for minutes, and a model that only saw 128-frame crops from a zero state drifts. On 8
# test pieces streamed 1536 frames, the previous default pack (l4n15) was 6.48 dB from the
# target, against 6.34 with its state reset every 64 frames; 58 min more from it (one thread each, equal frames per
# step) gave 6.19 dB at 512 x 4 (reset: 6.16) and 6.33 at 128 x 16 (reset: 6.18).
ADV_SEQ_LEN, ADV_BATCH = 512, 4
# The adversarial phase matches each mel band's peakiness to the target's (`train.flatness_loss`):
# 50 min more from the s512 pack with it (one thread) raised the share of test windows heard as
# the target from 0.70 to 0.78 (Organ 0.32 to 0.71) at 0.07 dB more LSD (REPORT.md). The default
# pack went on at weights 3, 4 and 6 beside the flux loss; this run keeps the weight it was
# measured at.
FLATNESS_WEIGHT = 1.0
# The discriminator judges the resynthesized audio, what the plugin plays, rather than the model's
# magnitudes: 55 min each from the z1 pack (one thread, 8 test pieces x 30 pairs) raised the
# share heard as the target from 0.925 to 0.938, against 0.933 with it judging the magnitudes.
ADV_ON = "resynthesized"
# Not in the default run, which fits an hour on 2 cores: the frequency-local path, the LSD
# loss, the per-bin movement match (`train.flux_loss`) and the chroma match
# (`train.chroma_loss`). The default pack grew them in more runs (models/README.md). The smoke
# run keeps them tested, the local path band-limited as in that pack.
SMOKE_LOCAL_CHANNELS = 4
SMOKE_LOCAL_BINS = 256
LSD_WEIGHT = 1.0
FLUX_WEIGHT = 1.0
CHROMA_WEIGHT = 1.0


def run_all(data_dir: Path, pack: Path, runs_dir: Path, ae_minutes: float, adv_minutes: float,
            smoke: bool, report: Path) -> None:
    t0 = time.time()
    d = ["--data-dir", str(data_dir)]
    if smoke:
        render.main(d + ["--pieces", "4", "--variants", "1", "--val", "1", "--test", "1", "--max-seconds", "5", "--jobs", "1"])
        train.main(d + ["--runs-dir", str(runs_dir), "--phase", "ae", "--steps", "6", "--val-every", "3",
                        "--enc", "64", "--hidden", "32", "--dec", "64", "--batch", "4", "--seq-len", "32"])
        train.main(d + ["--runs-dir", str(runs_dir), "--phase", "adv", "--steps", "4", "--val-every", "2",
                        "--batch", "4", "--seq-len", "32", "--resynth-weight", str(RESYNTH_WEIGHT),
                        "--local", str(SMOKE_LOCAL_CHANNELS), "--local-bins", str(SMOKE_LOCAL_BINS),
                        "--lsd-weight", str(LSD_WEIGHT), "--flux-weight", str(FLUX_WEIGHT),
                        "--flatness-weight", str(FLATNESS_WEIGHT), "--chroma-weight", str(CHROMA_WEIGHT),
                        "--adv-on", ADV_ON])
        classifier.main(d + ["--epochs", "2"])
        export.main(d + ["--pack", str(pack), "--name", "smoke", "--timing-calls", "50"])
        # training goes on from a pack alone: unpack it, then a few more adversarial steps, its
        # GRU and decoder grown wider on the way, then cut back to the pack's size
        unpacked = data_dir / "unpacked" / "checkpoints" / "gen_pack.pt"
        unpack.main(["--pack", str(pack), "--data-dir", str(unpacked.parent.parent)])
        train.main(d + ["--runs-dir", str(runs_dir), "--phase", "adv", "--steps", "2", "--val-every", "1",
                        "--batch", "4", "--seq-len", "32", "--init", str(unpacked), "--tag", "from_pack",
                        "--hidden", "40", "--dec", "72"])
        train.main(d + ["--runs-dir", str(runs_dir), "--phase", "adv", "--steps", "2", "--val-every", "1",
                        "--batch", "4", "--seq-len", "32", "--init", str(data_dir / "checkpoints" / "gen_from_pack.pt"),
                        "--tag", "narrowed", "--hidden", "32", "--dec", "64"])
        compare.main(d + ["--pack", str(pack), "--items", "1", "--frames", "64",
                          "gen_adv.pt", "gen_from_pack.pt", "gen_narrowed.pt"])
        evaluate.main(d + ["--pack", str(pack), "--frames", "200", "--items", "1", "--timing-calls", "50",
                           "--report", str(pack / "REPORT.md")])
        phrases.main(d + ["--pack", str(pack), "--out", str(pack / "phrases"), "--items", "1", "--seconds", "1"])
    else:
        render.main(d)
        classifier.main(d)
        train.main(d + ["--runs-dir", str(runs_dir), "--phase", "ae", "--minutes", str(ae_minutes)])
        train.main(d + ["--runs-dir", str(runs_dir), "--phase", "adv", "--minutes", str(adv_minutes),
                        "--resynth-weight", str(RESYNTH_WEIGHT), "--seq-len", str(ADV_SEQ_LEN),
                        "--batch", str(ADV_BATCH), "--flatness-weight", str(FLATNESS_WEIGHT),
                        "--adv-on", ADV_ON])
        export.main(d + ["--pack", str(pack)])
        evaluate.main(d + ["--pack", str(pack), "--report", str(report)])
        if pack.resolve() == (MODELS_DIR / "packs" / "default").resolve():
            phrases.main(d + ["--pack", str(pack)])
    res = subprocess.run([sys.executable, str(MODELS_DIR / "check_pack.py"), str(pack)])
    if res.returncode != 0:
        raise SystemExit(f"pipeline: check_pack failed for {pack}")
    print(f"pipeline: done in {(time.time() - t0) / 60:.1f} min; pack at {pack}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny end-to-end run in a temporary folder")
    ap.add_argument("--data-dir", type=Path, default=MODELS_DIR / "data")
    ap.add_argument("--pack", type=Path, default=MODELS_DIR / "packs" / "default")
    ap.add_argument("--ae-minutes", type=float, default=40.0)
    ap.add_argument("--adv-minutes", type=float, default=14.0)
    args = ap.parse_args(argv)
    if args.smoke:
        with tempfile.TemporaryDirectory(prefix="restyle-smoke-") as tmp:
            t = Path(tmp)
            run_all(t / "data", t / "pack", t / "runs", 0, 0, True, t / "REPORT.md")
    else:
        run_all(args.data_dir, args.pack, MODELS_DIR / "runs", args.ae_minutes, args.adv_minutes, False,
                MODELS_DIR / "REPORT.md")


if __name__ == "__main__":
    main()
