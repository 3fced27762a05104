"""Step 2, train: the conditional streaming generator.

Phase "ae": reconstruction only (log-magnitude L1 plus a multi-resolution spectral loss).
Phase "adv": starts from the autoencoder checkpoint and fine-tunes against the spectrogram
discriminator (least-squares GAN) while keeping the reconstruction losses.

`--resynth-weight W` adds the reconstruction losses once more, weighted, on what the plugin plays:
the model's magnitudes on the input's phase, overlap-added and analysed again
(`resynthesis.Resynthesis`), so the model is trained on the audio a listener hears.
`--adv-on resynthesized` has the discriminator judge that audio too.

Runs on one CPU process by default (`python -m restyle_models.train`) and under `torchrun`
(DDP: one process per GPU or CPU slot, gradients averaged by PyTorch's own engine); rank 0 logs
to TensorBoard (`models/runs/`) and writes the checkpoints (`models/data/checkpoints/`).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from . import signal as sig
from .dataset import PairSampler, input_stats, load_audio, load_split
from .discriminator import SpectrogramDiscriminator
from .model import Generator, GeneratorConfig, count_params, narrow, widen
from .render import DATA_DIR, MODELS_DIR
from .resynthesis import WARM_UP, Resynthesis

LOSS_FLOOR = -9.0  # logmag below this (about -78 dB) is treated as silence by the losses
CONTRACT_FLOOR = float(0.5 * np.log(sig.LOGMAG_EPS))  # the lowest log-magnitude an analysed frame has
MEL_FB = torch.from_numpy(sig.mel_filterbank())  # [40, 513], the classifier features' bands
CHROMA = torch.from_numpy(sig.chroma_matrix())  # [12, 513], the evaluation's pitch classes
MR_SCALES = [(2, 4), (4, 16), (16, 64)]  # (frames, bins) pooling of the multi-resolution loss


@dataclass(frozen=True)
class LossWeights:
    """Weights of the optional terms beside the L1 and multi-resolution losses (0: off)."""
    lsd: float = 0.0
    flux: float = 0.0
    flatness: float = 0.0
    chroma: float = 0.0


def recon_loss(y: torch.Tensor, t: torch.Tensor,
               w: LossWeights = LossWeights()) -> tuple[torch.Tensor, dict[str, float]]:
    """Log-magnitude L1 plus a multi-resolution spectral loss, plus the weighted optional terms:
    the log-spectral distance itself (`lsd_loss`), `flux_loss`, `flatness_loss` and
    `chroma_loss`.

    The model works on one STFT resolution (the contract's), so the "multi-resolution STFT" loss
    is computed on magnitudes pooled over several time x frequency tiles: each scale compares
    log-magnitudes (L1) and the spectral convergence `||T - Y||_F / ||T||_F`, the two terms of
    the usual MR-STFT loss, at a coarser resolution."""
    yc, tc = y.clamp(min=LOSS_FLOOR), t.clamp(min=LOSS_FLOOR)
    l1 = (yc - tc).abs().mean()
    ym, tm = torch.exp(yc)[:, None], torch.exp(tc)[:, None]
    mr = y.new_zeros(())
    for kt, kf in MR_SCALES:
        yp = F.avg_pool2d(ym, (kt, kf), ceil_mode=True)
        tp = F.avg_pool2d(tm, (kt, kf), ceil_mode=True)
        mr = mr + (torch.log(yp + 1e-4) - torch.log(tp + 1e-4)).abs().mean()
        mr = mr + torch.linalg.norm((tp - yp).flatten(1), dim=1).div(
            torch.linalg.norm(tp.flatten(1), dim=1) + 1e-6).mean()
    mr = mr / len(MR_SCALES)
    loss = l1 + mr
    logs = {"l1": float(l1.detach()), "mrstft": float(mr.detach())}
    for name, weight, term in (("lsd", w.lsd, lsd_loss), ("flux", w.flux, flux_loss),
                               ("flatness", w.flatness, flatness_loss), ("chroma", w.chroma, chroma_loss)):
        if weight > 0:
            value = term(y, t)
            logs[name] = float(value.detach())
            loss = loss + weight * value
    return loss, logs


def lsd_loss(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """`lsd_db` as a loss (natural-log units): the RMS over bins weighs a frame's worst bins
    more than L1 does, as the evaluation's distance does."""
    d = y.clamp(min=sig.LSD_FLOOR) - t.clamp(min=sig.LSD_FLOOR)
    return (d.pow(2).mean(-1) + 1e-6).sqrt().mean()


def flux_loss(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """How much less (or more) each bin moves from frame to frame than the target does, over a
    crop: L1 between the two mean |logmag[t] - logmag[t-1]| per bin.

    An L1 or RMS loss on the frames themselves pulls a causal model towards the average of what
    may come next, so the longer it trains the smoother its output gets (REPORT.md). This matches
    the amount of movement, not its timing, which those losses and the discriminator judge."""
    def moves(z: torch.Tensor) -> torch.Tensor:
        return z.clamp(min=sig.LSD_FLOOR).diff(dim=1).abs().mean(1)
    return (moves(y) - moves(t)).abs().mean()


def band_peakiness(z: torch.Tensor) -> torch.Tensor:
    """`signal.band_peakiness` in PyTorch: per frame and mel band, ln(arithmetic / geometric
    mean) of the bin powers under the band's weights, on log-magnitudes floored as the
    contract's are. [..., 513] -> [..., 40]."""
    z, fb = z.clamp(min=CONTRACT_FLOOR), MEL_FB.to(z.device)
    arith = torch.log(torch.exp(2.0 * z) @ fb.t()) - torch.log(fb.sum(1))
    return arith - (2.0 * z) @ (fb / fb.sum(1, keepdim=True)).t()


def flatness_loss(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """L1 between the output's and the target's per-band peakiness (`band_peakiness`, the
    spectral flatness of each mel band in log form): how far the partials stand above the
    valleys between them. The style classifier heard the s512 pack's outputs as their target
    in 70 % of windows, and in 95 % once only these 40 of its 160 features were swapped for the
    real target's (Organ: 29 % -> 99.5 %; swapping the spectral envelope changed nothing):
    log-magnitude losses leave the valleys too shallow or too deep, whatever the envelope."""
    return (band_peakiness(y) - band_peakiness(t)).abs().mean()


def chroma_loss(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """1 - the cosine similarity of the output's and the target's power chroma, per frame, over
    the frames the evaluation counts as voiced: its chroma similarity as a loss. Power weighs
    the strongest partials, which the log-magnitude losses weigh no more than the valleys
    between them (2 % of bins are within 10 dB of their frame's peak)."""
    def chroma(z: torch.Tensor) -> torch.Tensor:
        return torch.exp(2.0 * z.clamp(min=CONTRACT_FLOOR)) @ CHROMA.to(z.device).t()
    voiced = (t.amax(-1) > sig.VOICED).to(y.dtype)
    miss = 1.0 - F.cosine_similarity(chroma(y), chroma(t), dim=-1)
    return (miss * voiced).sum() / voiced.sum().clamp(min=1.0)


def lsd_db(y: torch.Tensor, t: torch.Tensor) -> float:
    """Log-spectral distance in dB (RMS over bins, mean over frames) with a -61 dB floor."""
    return float(lsd_loss(y, t) * 20.0 / np.log(10.0))


def setup_distributed() -> tuple[int, int, torch.device]:
    """(rank, world size, device); initializes the process group only under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        rank = dist.get_rank()
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local)
            return rank, world, torch.device("cuda", local)
        return rank, world, torch.device("cpu")
    return 0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu")


def should_stop(stop: bool, world: int, device: torch.device) -> bool:
    """Rank 0's time budget decides for everyone, so all ranks run the same number of steps."""
    if world == 1:
        return stop
    flag = torch.tensor([1.0 if stop else 0.0], device=device)
    dist.broadcast(flag, 0)
    return bool(flag.item() > 0)


def unwrap(m: torch.nn.Module) -> torch.nn.Module:
    return m.module if isinstance(m, DDP) else m


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--phase", choices=["ae", "adv"], default="ae")
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    ap.add_argument("--runs-dir", type=Path, default=MODELS_DIR / "runs")
    ap.add_argument("--steps", type=int, default=100_000, help="upper bound on steps")
    ap.add_argument("--minutes", type=float, default=30.0, help="wall-clock budget (rank 0 decides)")
    ap.add_argument("--batch", type=int, default=16, help="per process")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--adv-weight", type=float, default=0.1)
    ap.add_argument("--adv-on", choices=["magnitudes", "resynthesized"], default="magnitudes",
                    help="what the discriminator judges: the model's log-magnitudes, or the audio the "
                         "plugin plays from them (needs --resynth-weight > 0)")
    ap.add_argument("--resynth-weight", type=float, default=0.0,
                    help="weight of the reconstruction losses on the resynthesized audio (0: off)")
    ap.add_argument("--lsd-weight", type=float, default=0.0,
                    help="weight of the log-spectral distance among the reconstruction losses (0: off)")
    ap.add_argument("--flux-weight", type=float, default=0.0,
                    help="weight of the frame-to-frame movement match (flux_loss), against over-smoothing")
    ap.add_argument("--flatness-weight", type=float, default=0.0,
                    help="weight of the per-band peakiness match (flatness_loss) among the reconstruction losses (0: off)")
    ap.add_argument("--chroma-weight", type=float, default=0.0,
                    help="weight of the per-frame power chroma match (chroma_loss) among the reconstruction losses (0: off)")
    ap.add_argument("--init", type=Path, default=None,
                    help="adv phase: the checkpoint to start from (default: the autoencoder's)")
    ap.add_argument("--tag", default=None, help="checkpoint name gen_<tag>.pt (default: the phase)")
    for name in ("enc", "hidden", "dec"):
        ap.add_argument(f"--{name}", type=int, default=None,
                        help=f"layer width (default {getattr(GeneratorConfig, name)}); with --init, "
                             "widens the checkpoint's, starting from the function it computes, or "
                             "narrows it to its first units")
    ap.add_argument("--local", type=int, default=0,
                    help="channels of the frequency-local path; with --init, adds one to a model without")
    ap.add_argument("--local-bins", type=int, default=0,
                    help="bins, from the lowest, that the local path refines (0: all); with --init, "
                         "narrows a wider path")
    ap.add_argument("--threads", type=int, default=2, help="torch threads per process (the default machine has 2 cores)")
    ap.add_argument("--val-every", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-items", type=int, default=None, help="limit items (smoke tests)")
    args = ap.parse_args(argv)
    if args.adv_on == "resynthesized" and args.resynth_weight <= 0:
        ap.error("--adv-on resynthesized needs --resynth-weight > 0")

    torch.set_flush_denormal(True)  # denormals slowed GRU steps 30x (DESIGN.md)
    torch.set_num_threads(args.threads)
    rank, world, device = setup_distributed()
    torch.manual_seed(args.seed + rank)
    ckpt_dir = args.data_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)

    train = load_split(args.data_dir, "train", args.max_items)
    val = load_split(args.data_dir, "val", args.max_items)
    if args.phase == "ae":
        mean, std = input_stats(train)
        sizes = {k: v for k, v in (("enc", args.enc), ("hidden", args.hidden), ("dec", args.dec)) if v}
        cfg = GeneratorConfig(n_styles=train.n_styles, local=args.local, local_bins=args.local_bins, **sizes)
        gen = Generator(cfg, torch.from_numpy(mean), torch.from_numpy(std))
        history: dict = {}
    else:
        src = args.init or ckpt_dir / "gen_ae.pt"
        if not src.exists():
            raise FileNotFoundError(f"{src} missing: run the 'ae' phase first")
        ck = torch.load(src, map_location="cpu")
        cfg = GeneratorConfig(**ck["config"])
        if args.local and cfg.local and args.local != cfg.local:
            raise ValueError(f"{src} has a local path of {cfg.local} channels, not {args.local}")
        grow = args.local and not cfg.local
        if grow:
            cfg.local = args.local
        state = ck["state_dict"]
        if args.local_bins:
            if cfg.local_bins and args.local_bins > cfg.local_bins:
                raise ValueError(f"{src} refines only {cfg.local_bins} bins, it cannot widen to {args.local_bins}")
            cfg.local_bins = args.local_bins
        gen = Generator(cfg)
        if "local_pos" in state:
            # Narrowing keeps the refined bins' embeddings; the path reads the same bins as before.
            state = {**state, "local_pos": state["local_pos"][:, :gen.local_span()[1]]}
        missing, _ = gen.load_state_dict(state, strict=not grow)
        if grow and not all(k.startswith("local_") for k in missing):
            raise ValueError(f"{src}: checkpoint lacks {missing}")
        now = (cfg.enc, cfg.hidden, cfg.dec)
        sizes = (args.enc or cfg.enc, args.hidden or cfg.hidden, args.dec or cfg.dec)
        if sizes != now and all(new <= old for new, old in zip(sizes, now)):
            gen, drift = narrow(gen, *sizes)
            print(f"train: narrowed {src} to enc/hidden/dec {sizes}: the output moved by up to "
                  f"{drift:.4g} on a probe batch", flush=True)
        elif sizes != now:
            gen = widen(gen, *sizes)
        history = ck["training"]
    gen.to(device)
    disc = SpectrogramDiscriminator(train.n_styles).to(device) if args.phase == "adv" else None
    if world > 1:
        gen = DDP(gen)
        disc = DDP(disc) if disc is not None else None
    opt_g = torch.optim.AdamW(gen.parameters(), lr=args.lr if args.phase == "ae" else args.lr * 0.25,
                              betas=(0.8, 0.99) if args.phase == "adv" else (0.9, 0.999))
    opt_d = torch.optim.AdamW(disc.parameters(), lr=args.lr * 0.5, betas=(0.8, 0.99)) if disc else None
    base_lr = opt_g.param_groups[0]["lr"]
    sampler = PairSampler(train, args.seq_len, seed=args.seed * 1000 + rank)
    resynth = Resynthesis().to(device) if args.resynth_weight > 0 else None
    train_audio = load_audio(args.data_dir, train) if resynth is not None else None
    tag = args.tag or args.phase
    weights = LossWeights(args.lsd_weight, args.flux_weight, args.flatness_weight, args.chroma_weight)
    vx, vy, vs, vt = PairSampler(val, 256, seed=12345).batch(48)
    vx, vy, vs = vx.to(device), vy.to(device), vs.to(device)

    writer = None
    if rank == 0:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(str(args.runs_dir / f"gen_{tag}"))
        print(f"train[{args.phase}]: {count_params(unwrap(gen))} params, {train.frames()} train frames "
              f"x {train.n_styles} styles, world {world}, device {device}", flush=True)

    norm = unwrap(gen)
    t0 = time.time()
    step = 0
    best = {"val_lsd_db": float("inf")}
    logs: dict[str, float] = {}
    while step < args.steps:
        stop = (time.time() - t0) / 60.0 > args.minutes if rank == 0 else False
        if step % 10 == 0 and should_stop(stop, world, device):
            break
        if resynth is None:
            x, y, s, t = sampler.batch(args.batch)
        else:
            x, y, s, t, audio = sampler.batch_with_audio(args.batch, train_audio)
        x, y, s, t = x.to(device), y.to(device), s.to(device), t.to(device)
        out, _ = gen(x, s)
        loss, logs = recon_loss(out, y, weights)
        judged, real = out, y
        if resynth is not None:
            heard, y_heard = resynth(resynth.spectra(audio.to(device)), out), y[:, WARM_UP:-1]
            loss_rs, logs_rs = recon_loss(heard, y_heard, weights)
            loss = loss + args.resynth_weight * loss_rs
            logs.update({f"resynth_{k}": v for k, v in logs_rs.items()})
            if args.adv_on == "resynthesized":
                judged, real = heard, y_heard
        if disc is not None:
            def dnorm(z: torch.Tensor) -> torch.Tensor:
                return (z.clamp(min=LOSS_FLOOR) - norm.in_mean) / norm.in_std
            d_real = disc(dnorm(real), t)
            d_fake = disc(dnorm(judged.detach()), t)
            loss_d = (d_real - 1).pow(2).mean() + d_fake.pow(2).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            g_adv = (disc(dnorm(judged), t) - 1).pow(2).mean()
            loss = loss + args.adv_weight * g_adv
            logs.update({"d": float(loss_d.detach()), "g_adv": float(g_adv.detach())})
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(gen.parameters(), 1.0)
        opt_g.step()
        # cosine decay over the wall-clock budget (the step count a budget allows is unknown)
        frac = min(1.0, (time.time() - t0) / 60.0 / args.minutes)
        for group in opt_g.param_groups:
            group["lr"] = base_lr * max(0.05, 0.5 * (1.0 + np.cos(np.pi * frac)))
        step += 1
        if rank == 0 and step % 20 == 0:
            for k, v in logs.items():
                writer.add_scalar(f"train/{k}", v, step)
        if rank == 0 and (step % args.val_every == 0):
            with torch.no_grad():
                vo, _ = norm(vx, vs)
                vl, vlogs = recon_loss(vo, vy)
                vlsd = lsd_db(vo, vy)
            writer.add_scalar("val/loss", float(vl), step)
            writer.add_scalar("val/lsd_db", vlsd, step)
            el = time.time() - t0
            print(f"train[{args.phase}] step {step} {el / 60:.1f} min: train {logs} val lsd {vlsd:.3f} dB "
                  f"l1 {vlogs['l1']:.4f}", flush=True)
            if vlsd < best["val_lsd_db"] or args.phase == "adv":
                best = {"val_lsd_db": vlsd, "step": step}
                save(ckpt_dir / f"gen_{tag}.pt", norm, train, history, args, tag, step, el, world, vlsd)
    if rank == 0:
        el = time.time() - t0
        with torch.no_grad():
            vo, _ = norm(vx, vs)
            vlsd = lsd_db(vo, vy)
        if args.phase == "adv" or vlsd < best["val_lsd_db"]:
            save(ckpt_dir / f"gen_{tag}.pt", norm, train, history, args, tag, step, el, world, vlsd)
        print(f"train[{args.phase}] done: {step} steps in {el / 60:.1f} min, final val lsd {vlsd:.3f} dB, "
              f"best {best}", flush=True)
        writer.close()
    if world > 1:
        dist.destroy_process_group()


def save(path: Path, gen: Generator, train, history: dict, args: argparse.Namespace, tag: str, step: int,
         seconds: float, world: int, val_lsd: float) -> None:
    """Checkpoint with everything export and the manifest need; the run is recorded in the
    training history under its tag, after the runs it started from."""
    info = dict(history)
    info[tag] = {"steps": step, "minutes": round(seconds / 60.0, 2), "batch_per_process": args.batch,
                        "seq_len": args.seq_len, "lr": args.lr if args.phase == "ae" else args.lr * 0.25, "processes": world, "threads": args.threads,
                        "val_lsd_db": round(val_lsd, 4), "train_frames": train.frames(),
                        **({"adv_weight": args.adv_weight} if args.phase == "adv" else {}),
                        **({"adv_on": args.adv_on} if args.phase == "adv" and args.adv_on != "magnitudes" else {}),
                        **({"resynth_weight": args.resynth_weight} if args.resynth_weight > 0 else {}),
                        **({"lsd_weight": args.lsd_weight} if args.lsd_weight > 0 else {}),
                        **({"flux_weight": args.flux_weight} if args.flux_weight > 0 else {}),
                        **({"flatness_weight": args.flatness_weight} if args.flatness_weight > 0 else {}),
                        **({"chroma_weight": args.chroma_weight} if args.chroma_weight > 0 else {}),
                        **{k: getattr(gen.cfg, k) for k in ("enc", "hidden", "dec")
                           if getattr(gen.cfg, k) != getattr(GeneratorConfig, k)},
                        **({"local": gen.cfg.local} if gen.cfg.local else {}),
                        **({"local_bins": gen.cfg.local_bins} if gen.cfg.local_bins else {})}
    torch.save({"config": gen.cfg.to_dict(), "state_dict": gen.state_dict(), "styles": train.style_names,
                "training": info}, path)


if __name__ == "__main__":
    main()
