"""Step 1, render: paired, time-aligned training audio.

Bach chorales from the `music21` corpus (shipped with the package, so no download) are turned
into MIDI with one General MIDI program per render and played by `fluidsynth` through Debian's
FluidR3 GM SoundFont at 48 kHz. Every (piece, variant) is rendered once per style instrument with
identical note timing, so frame `k` of any two renders holds the same notes: the pairs the
generator learns from. Variants add a transposition, a tempo and a velocity profile for
diversity. The split into train / validation / test is by piece, never by frame, so test
phrases are unseen.

Output: `data/audio/<piece>_v<k>_<style>.wav` (mono 16-bit), `data/features/*.npy` (contract
log-magnitudes, float16) and `data/index.json` (what the next steps read).
"""
from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, asdict
from pathlib import Path

import numpy as np

from . import signal as sig

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
MODELS_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = MODELS_DIR / "data"

# The pack's styles: (display name, General MIDI program, 0-based). Order = style slot.
STYLES: list[tuple[str, int]] = [
    ("Piano", 0),          # Acoustic Grand Piano
    ("Strings", 48),       # String Ensemble 1
    ("Organ", 19),         # Church Organ
    ("Guitar", 24),        # Acoustic Guitar (nylon)
    ("Brass", 61),         # Brass Section
    ("Flute", 73),         # Flute
]


@dataclass
class NoteEvent:
    """One note in seconds, already transposed and with its final velocity."""
    start: float
    end: float
    pitch: int
    velocity: int


def piece_events(path: Path, transpose: int, bpm: float, vel_base: int, max_seconds: float,
                 rng: np.random.Generator) -> list[NoteEvent]:
    """Notes of a corpus piece in seconds (ties merged), cut at `max_seconds`."""
    from music21 import corpus

    score = corpus.parse(str(path)).stripTies()
    sec_per_q = 60.0 / bpm
    events: list[NoteEvent] = []
    for n in score.flatten().notes:
        start = float(n.offset) * sec_per_q
        if start >= max_seconds:
            continue
        dur = max(float(n.quarterLength) * sec_per_q, 0.05)
        pitches = [p.midi for p in n.pitches]
        for p in pitches:
            pitch = int(np.clip(p + transpose, 21, 108))
            vel = int(np.clip(vel_base + rng.integers(-12, 13), 20, 127))
            events.append(NoteEvent(start, min(start + dur, max_seconds), pitch, vel))
    if not events:
        raise ValueError(f"piece {path} has no notes")
    return events


def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


def write_midi(path: Path, events: list[NoteEvent], program: int) -> None:
    """A format-0 MIDI file: tempo 120 bpm at 480 ticks/quarter (1 tick = 1/960 s), a program
    change on channel 0 and the notes. Written by hand so timing is exact and identical for
    every program (music21's writer re-quantizes)."""
    tpq = 480
    ticks_per_sec = tpq * 2  # 120 bpm
    msgs: list[tuple[int, int, bytes]] = []  # (tick, order, bytes); note-offs before note-ons
    for e in events:
        t0 = int(round(e.start * ticks_per_sec))
        t1 = max(int(round(e.end * ticks_per_sec)), t0 + 1)
        msgs.append((t0, 1, bytes([0x90, e.pitch, e.velocity])))
        msgs.append((t1, 0, bytes([0x80, e.pitch, 0])))
    msgs.sort(key=lambda m: (m[0], m[1]))
    track = bytearray()
    track += _varlen(0) + bytes([0xFF, 0x51, 0x03]) + (500_000).to_bytes(3, "big")
    track += _varlen(0) + bytes([0xC0, program])
    last = 0
    for tick, _, data in msgs:
        track += _varlen(tick - last) + data
        last = tick
    track += _varlen(0) + bytes([0xFF, 0x2F, 0x00])
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, tpq)
    path.write_bytes(header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track))


def read_wav(path: Path, start: int = 0, length: int | None = None) -> np.ndarray:
    """Samples of a rendered mono 16-bit WAV as int16: `length` of them (all by default) from
    sample `start`."""
    with wave.open(str(path), "rb") as w:
        w.setpos(start)
        return np.frombuffer(w.readframes(w.getnframes() - start if length is None else length), dtype=np.int16).copy()


def write_wav(path: Path, samples: np.ndarray) -> None:
    """Mono 16-bit 48 kHz, the format of every render."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sig.SAMPLE_RATE)
        w.writeframes(samples.astype("<i2").tobytes())


def render_midi(midi: Path, wav_out: Path, n_samples: int) -> np.ndarray:
    """Renders with fluidsynth (no reverb/chorus so pairs differ only by instrument) and returns
    mono float32 of exactly `n_samples` (padded or cut), also written to `wav_out`."""
    tmp = wav_out.with_suffix(".stereo.wav")
    cmd = ["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.4", "-r", str(sig.SAMPLE_RATE),
           "-F", str(tmp), str(SOUNDFONT), str(midi)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0 or not tmp.exists():
        raise RuntimeError(f"fluidsynth failed on {midi}: rc={res.returncode} {res.stderr[-500:]}")
    with wave.open(str(tmp), "rb") as w:
        if w.getframerate() != sig.SAMPLE_RATE or w.getsampwidth() != 2:
            raise RuntimeError(f"{tmp}: unexpected format {w.getframerate()} Hz, {w.getsampwidth()} B")
        raw = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        ch = w.getnchannels()
    tmp.unlink()
    mono = raw.reshape(-1, ch).astype(np.float32).mean(axis=1) / 32768.0
    out = np.zeros(n_samples, dtype=np.float32)
    out[:min(n_samples, len(mono))] = mono[:n_samples]
    write_wav(wav_out, (np.clip(out, -1, 1) * 32767).astype(np.int16))
    return out


def render_item(item: dict, data_dir: Path) -> dict:
    """Renders one (piece, variant) with every style program and stores its features."""
    rng = np.random.default_rng(item["seed"])
    events = piece_events(Path(item["path"]), item["transpose"], item["bpm"], item["velocity"],
                          item["max_seconds"], rng)
    end = max(e.end for e in events) + 1.5  # release tail
    n_samples = int(end * sig.SAMPLE_RATE)
    (data_dir / "midi").mkdir(parents=True, exist_ok=True)
    (data_dir / "audio").mkdir(parents=True, exist_ok=True)
    (data_dir / "features").mkdir(parents=True, exist_ok=True)
    files = {}
    for name, program in STYLES:
        stem = f"{item['id']}_{name}"
        midi = data_dir / "midi" / f"{stem}.mid"
        write_midi(midi, events, program)
        audio = render_midi(midi, data_dir / "audio" / f"{stem}.wav", n_samples)
        lm = sig.logmag(sig.stft_frames(audio))
        np.save(data_dir / "features" / f"{stem}.npy", lm.astype(np.float16))
        files[name] = f"features/{stem}.npy"
    return {**item, "seconds": n_samples / sig.SAMPLE_RATE, "frames": int(lm.shape[0]), "features": files}


def plan_items(n_pieces: int, variants: int, max_seconds: float, seed: int,
               n_val: int, n_test: int) -> list[dict]:
    """Chooses pieces and their variants and assigns each piece to one split."""
    from music21 import corpus

    paths = sorted(p for p in corpus.getComposer("bach") if str(p).endswith((".mxl", ".xml", ".krn")))
    rng = np.random.default_rng(seed)
    chosen = [paths[i] for i in rng.permutation(len(paths))[:n_pieces]]
    items = []
    for pi, path in enumerate(chosen):
        split = "test" if pi < n_test else "val" if pi < n_test + n_val else "train"
        for v in range(variants):
            items.append({
                "id": f"{Path(path).stem.replace('.', '_')}_v{v}",
                "piece": Path(path).stem, "split": split, "path": str(path),
                "transpose": int(rng.integers(-5, 6)) if v else 0,
                "bpm": float(rng.uniform(70, 120)),
                "velocity": int(rng.integers(55, 115)),
                "max_seconds": max_seconds, "seed": int(rng.integers(1 << 31)),
            })
    return items


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # 48 pieces (34 train / 6 val / 8 test) is the data the default pack was trained on
    ap.add_argument("--pieces", type=int, default=48)
    ap.add_argument("--variants", type=int, default=2)
    ap.add_argument("--max-seconds", type=float, default=24.0)
    ap.add_argument("--val", type=int, default=6)
    ap.add_argument("--test", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = ap.parse_args(argv)
    if not SOUNDFONT.exists():
        raise SystemExit(f"{SOUNDFONT} missing: apt-get install -y fluidsynth fluid-soundfont-gm")
    args.data_dir.mkdir(parents=True, exist_ok=True)
    items = plan_items(args.pieces, args.variants, args.max_seconds, args.seed, args.val, args.test)
    t0 = time.time()
    done: list[dict] = []
    with ThreadPoolExecutor(args.jobs) as ex:
        for i, rec in enumerate(ex.map(lambda it: render_item(it, args.data_dir), items)):
            done.append(rec)
            if i % 10 == 0:
                print(f"render: {i + 1}/{len(items)} ({time.time() - t0:.0f} s)", flush=True)
    minutes = {s: sum(r["seconds"] for r in done if r["split"] == s) / 60.0 for s in ("train", "val", "test")}
    index = {"sample_rate": sig.SAMPLE_RATE, "n_fft": sig.N_FFT, "hop": sig.HOP,
             "styles": [{"name": n, "program": p} for n, p in STYLES], "items": done,
             "minutes_per_style": minutes, "render_seconds": time.time() - t0}
    (args.data_dir / "index.json").write_text(json.dumps(index, indent=1))
    print(f"render: {len(done)} items x {len(STYLES)} styles in {time.time() - t0:.0f} s; "
          f"minutes per style: " + ", ".join(f"{k} {v:.1f}" for k, v in minutes.items()))


if __name__ == "__main__":
    main()
