#!/usr/bin/env python3
"""Host-level checks of the VST3 bundle in a real VST3 host: pedalboard (Spotify), which hosts
VST3 plugins through JUCE. The VST3 side of tests/tests/clap_host.rs and clap_hardening.rs, with
the same numbers (docs/CONTRACT.md, tests/src/contract.rs):

- the parameters, with the contract's names, ranges and defaults; Style Mix set in percent;
- every rate from 44.1 to 192 kHz with blocks of 1 to 8192 samples: the latency reported before
  and after (re)activation is the documented one, the output has the input's length, is finite and
  not silent, and pedalboard's latency compensation lines it up: at Style Mix 0 it is the input;
- mono as well as stereo;
- the host's bypass: the input, latency compensated, whatever the gains;
- a stream cut into blocks of assorted sizes renders as one call does; automation between chunks
  of a stream (pedalboard's closest approach to automation inside a block): Style Mix, a blend knob
  and bypass take effect where they should;
- state: saved, loaded into a fresh instance, saved again, equal byte for byte; broken states
  refused, hostile ones repaired, and the plugin still plays;
- several instances processing at once on their own threads render as they do alone;
- NaN, infinities and huge values in the input give finite, bounded output.

pedalboard renders offline (it tells the plugin it is not real time), so the model runs on every
frame and every render is reproducible. Every `process(..., reset=True)` deactivates the plugin
and activates it again at the given rate, with `min(buffer_size, len(audio))` as the maximum
block, and then sends blocks of exactly that size (the last one shorter).

What pedalboard cannot do, and clap_hardening.rs does through CLAP: automation at a sample inside a
block (JUCE sends a value at the first sample of the next block), real-time processing (late
frames, the dry fallback), how often the host is told of a new latency (pedalboard shows only the
latency JUCE last read), and telling a refused state from an ignored one (JUCE's state setter
returns nothing: here refused means nothing changed).

Usage: python check_vst3.py BUNDLE.vst3 [--plugin-log FILE] [-k NAME]   (exit 1 on failure)
"""
from __future__ import annotations

import argparse
import faulthandler
import os
import re
import struct
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pedalboard

# What the plugin promises (tests/src/contract.rs).
MODEL_RATE = 48_000
STFT_LATENCY = 255
HOP = 128
# The resampler's kernel half width, in samples of the lower rate (restyle_dsp::resample::TAPS_HALF).
RESAMPLER_HALF_WIDTH = 24
# Style Mix, the gains and bypass glide over 10 ms.
RAMP_SECONDS = 0.010

SAMPLE_RATES = (44_100, 48_000, 88_200, 96_000, 176_400, 192_000)
BLOCK_SIZES = (1, 64, 441, 512, 4096, 8192)
# The configuration of the renders that are not about rates and block sizes.
RATE, BLOCK = 48_000, 512
# pedalboard activates every plugin it loads once, at 44.1 kHz with blocks of 512, to find out how
# it behaves on reset (`ExternalPlugin::detectReloadType`): what a fresh instance reports.
PEDALBOARD_PROBE = (44_100, 512)

# |output - input| allowed where the plugin must pass the input through.
DRY_TOLERANCE = 1e-5


class Param(NamedTuple):
    """A parameter as pedalboard shows it: its display name, unit, range and default."""

    name: str
    unit: str | None = None
    low: float | None = None
    high: float | None = None
    default: object = None


# The contract's parameters under the names pedalboard gives them (display name and unit).
PARAMETERS: dict[str, Param] = {
    "style": Param("Style"),
    **{f"blend_{slot}": Param(f"Blend {slot}", " %", 0.0, 100.0, 0.0) for slot in range(1, 9)},
    "style_mix": Param("Style Mix", " %", 0.0, 100.0, 100.0),
    "input_gain_db": Param("Input Gain", " dB", -24.0, 24.0, 0.0),
    "output_gain_db": Param("Output Gain", " dB", -24.0, 24.0, 0.0),
    "bypass": Param("Bypass", default=False),
}
# The pack's style slots: the Style parameter's values.
STYLE_SLOTS = 8

Audio = np.ndarray  # float32, shape (channels, samples)
Plugin = pedalboard.VST3Plugin


class CheckFailed(Exception):
    """A property of the plugin that does not hold."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


# ------------------------------------------------------------------------------------------------
# Signals and comparisons


def test_signal(rate: int, length: int, channels: int = 2, seed: int = 1) -> Audio:
    """Two sines and white noise per channel, about -12 dBFS peak; the channels differ, and the
    noise makes every delay unambiguous (tests/src/signal.rs `stereo_test_signal`)."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / rate
    tones = [(220.0, 1375.0), (330.0, 2750.0)][:channels]
    sines = [0.1 * np.sin(2 * np.pi * f1 * t) + 0.05 * np.sin(2 * np.pi * f2 * t) for f1, f2 in tones]
    return np.stack([s + 0.1 * rng.uniform(-1, 1, length) for s in sines]).astype(np.float32)


def rms(audio: Audio) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0


def max_error(a: Audio, b: Audio) -> tuple[float, int]:
    """The largest |a - b| on any channel and the sample where it is (NaN counts as the worst)."""
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64)).max(axis=0, initial=0.0)
    diff[np.isnan(diff)] = np.inf
    at = int(np.argmax(diff)) if diff.size else 0
    return (float(diff[at]) if diff.size else 0.0), at


def first_difference(a: Audio, b: Audio) -> int | None:
    """The first sample at which `a` and `b` differ in any bit on either channel."""
    differs = np.any(a.view(np.uint32) != b.view(np.uint32), axis=0)
    return int(np.argmax(differs)) if differs.any() else None


def settled_from(a: Audio, b: Audio, tolerance: float) -> int:
    """One past the last sample at which `a` and `b` differ by more than `tolerance` (0: never)."""
    far = ~(np.abs(a - b) <= tolerance).all(axis=0)
    return int(np.nonzero(far)[0][-1]) + 1 if far.any() else 0


def expect_finite(audio: Audio, what: str) -> None:
    bad = ~np.isfinite(audio)
    if bad.any():
        channel, sample = (int(i[0]) for i in np.nonzero(bad))
        raise CheckFailed(f"{what}: non-finite output {audio[channel, sample]} on channel {channel} at {sample}")


def peak_correlation_lag(x: Audio, y: Audio, max_lag: int) -> tuple[int, float]:
    """The lag in -max_lag..=max_lag at which `y` (channel 0) correlates most strongly with `x`,
    and that normalized correlation. The model applies a real gain per frequency bin (zero phase)
    to the latency-aligned input, so once pedalboard has removed the latency the peak is at 0."""
    a, b = x[0].astype(np.float64), y[0].astype(np.float64)
    n = 1 << (len(a) + len(b)).bit_length()
    corr = np.fft.irfft(np.fft.rfft(b, n) * np.conj(np.fft.rfft(a, n)), n)
    lags = np.arange(-max_lag, max_lag + 1)
    values = corr[lags % n] / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30)
    best = int(np.argmax(np.abs(values)))
    return int(lags[best]), float(values[best])


# ------------------------------------------------------------------------------------------------
# The latency the plugin documents (tests/tests/clap_hardening.rs)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def pipeline_delay_hops(rate: int, max_block: int) -> int:
    """`D`: the largest block in model-rate samples, in whole hops, at least one."""
    return max(1, ceil_div(ceil_div(max_block * MODEL_RATE, rate), HOP))


def allowed_latency(rate: int, max_block: int) -> range:
    """Exactly `255 + D * 128` at the model rate; elsewhere that many model samples in host
    samples, plus the two resamplers' delay (at most two kernel half widths of the lower rate) and
    two samples of rounding."""
    model = STFT_LATENCY + pipeline_delay_hops(rate, max_block) * HOP
    if rate == MODEL_RATE:
        return range(model, model + 1)
    ratio = rate / MODEL_RATE
    core = model * ratio
    resampling = 2 * RESAMPLER_HALF_WIDTH * max(ratio, 1.0) + 2
    return range(int(np.floor(core)) + 1, int(np.ceil(core + resampling)) + 1)


def describe(r: range) -> str:
    return f"{r.start}" if len(r) == 1 else f"{r.start}..={r.stop - 1}"


# ------------------------------------------------------------------------------------------------
# The host


class Host:
    """Makes instances of the bundle."""

    def __init__(self, bundle: Path) -> None:
        self.bundle = bundle

    def load(self) -> Plugin:
        plugin = pedalboard.load_plugin(str(self.bundle))
        expect(isinstance(plugin, Plugin), f"{self.bundle} loaded as a {type(plugin).__name__}, not a VST3 plugin")
        return plugin

    def configured(self, **values: object) -> Plugin:
        """A fresh instance with `values` set and delivered (see `configure`)."""
        plugin = self.load()
        configure(plugin, **values)
        return plugin


def configure(plugin: Plugin, **values: object) -> None:
    """Sets parameters as a host opening a project would: before the render starts.

    JUCE's VST3 hosting hands a value set from Python to the plugin's processor at the start of the
    next block it processes, as a change at sample 0, and not before; the plugin then glides Style
    Mix, the gains and bypass over 10 ms from the old value, as it must for any automation. So
    after setting the values this processes a few samples, which delivers them; the next
    `process(..., reset=True)` activates the plugin afresh, and it starts from its values, no glide.
    """
    for name, value in values.items():
        setattr(plugin, name, value)
    plugin.process(np.zeros((2, 64), np.float32), RATE, buffer_size=64, reset=True)


def render(plugin: Plugin, audio: Audio, rate: int = RATE, block: int = BLOCK) -> Audio:
    """One offline render from a fresh activation at `rate` with blocks of `block` samples.
    pedalboard flushes the plugin with the latency's worth of silence and drops as many samples
    from the start, so the output lines up with the input."""
    output = plugin.process(audio, rate, buffer_size=block, reset=True)
    expect(output.shape == audio.shape, f"{rate} Hz, blocks of {block}: output {output.shape} for input {audio.shape}")
    return output


# The values every stream starts from.
STREAM_START: dict[str, object] = {"style_mix": 100, "bypass": False, **{f"blend_{i}": 0 for i in range(1, 9)}}


def stream(plugin: Plugin, audio: Audio, changes: dict[int, dict[str, object]], block: int = BLOCK) -> Audio:
    """Renders `audio` at `RATE` as one stream, cut into chunks at the samples in `changes`,
    setting each chunk's parameters before it: `changes[n]` reaches the plugin with input sample
    `n`. Every stream starts from `STREAM_START`, whatever the last one left the parameters at.

    pedalboard cannot automate inside a block: a value set from Python reaches the plugin at the
    first sample of the next block. With `reset=False` it processes chunk after chunk as one stream
    (no re-activation, as long as no chunk asks for a larger block than the first), each cut into
    blocks of `block` from the chunk's start, so a change lands at any sample we choose, but always
    at the start of a block: this tests that a change takes effect at its sample and never before,
    not that the plugin splits a block at a change (clap_hardening.rs does that).

    In a stream pedalboard keeps its latency compensation: it drops the first `latency` output
    samples, so output sample `n` is the one the plugin played `latency` samples after it received
    input sample `n`; a final chunk of silence as long as the latency flushes the end out. A change
    with input sample `c` therefore acts on what the plugin plays from then on, output `c - latency`
    on; the style it gives the input from `c` on shows at output `c` (less the STFT's reach).
    """
    configure(plugin, **STREAM_START)
    plugin.reset()
    cuts = [0, *sorted(changes), audio.shape[1]]
    expect(cuts[1] >= block, f"the first chunk must be at least a block ({block}) long: {cuts}")
    chunks = []
    for start, end in zip(cuts, cuts[1:]):
        for name, value in changes.get(start, {}).items():
            setattr(plugin, name, value)
        chunks.append(plugin.process(audio[:, start:end], RATE, buffer_size=block, reset=False))
    latency = plugin.reported_latency_samples
    for start in range(0, latency, block):
        silence = np.zeros((audio.shape[0], min(block, latency - start)), np.float32)
        chunks.append(plugin.process(silence, RATE, buffer_size=block, reset=False))
    output = np.concatenate(chunks, axis=1)
    expect(output.shape == audio.shape, f"a stream of {audio.shape} gave {output.shape} (latency {latency})")
    return output


def display_values(plugin: Plugin) -> dict[str, object]:
    """Every parameter's value as pedalboard shows it (the plugin's own text, parsed). Not the
    normalized values: pedalboard keeps what it last sent for those, not what the plugin made of it
    (Style set to 'Organ' is sent as 0.215, which the plugin rounds to slot 2 of 7, 0.286)."""
    return {name: getattr(plugin, name) for name in plugin.parameters}


# ------------------------------------------------------------------------------------------------
# The state JUCE saves for a VST3 plugin: b"VC2!", the length of what follows (u32, little
# endian), the XML and a NUL. Inside, <IComponent> holds the plugin's own state in JUCE's base64
# dialect: "size.", then 6 bits a character, least significant first. For this plugin that is
# nice-plug's JSON.

JUCE_BASE64 = ".ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+"


def juce_base64_decode(text: str) -> bytes:
    size, _, chars = text.partition(".")
    table = np.zeros(256, np.uint32)
    table[np.frombuffer(JUCE_BASE64.encode(), np.uint8)] = np.arange(64, dtype=np.uint32)
    # Four characters are three bytes.
    sixes = np.zeros(ceil_div(len(chars), 4) * 4, np.uint32)
    sixes[: len(chars)] = table[np.frombuffer(chars.encode(), np.uint8)]
    words = np.bitwise_or.reduce(sixes.reshape(-1, 4) << np.array([0, 6, 12, 18], np.uint32), axis=1)
    data = np.stack([(words >> shift) & 0xFF for shift in (0, 8, 16)], axis=1).astype(np.uint8).tobytes()
    return data[: int(size)]


def juce_base64_encode(data: bytes) -> str:
    padded = np.zeros(ceil_div(len(data), 3) * 3, np.uint32)
    padded[: len(data)] = np.frombuffer(data, np.uint8)
    words = np.bitwise_or.reduce(padded.reshape(-1, 3) << np.array([0, 8, 16], np.uint32), axis=1)
    sixes = np.stack([(words >> shift) & 63 for shift in (0, 6, 12, 18)], axis=1).reshape(-1)
    chars = np.frombuffer(JUCE_BASE64.encode(), np.uint8)[sixes[: ceil_div(len(data) * 8, 6)]]
    return f"{len(data)}." + chars.tobytes().decode()


def juce_state(xml: str) -> bytes:
    data = xml.encode() + b"\0"
    return b"VC2!" + struct.pack("<I", len(data)) + data


def state_xml(state: bytes) -> str:
    expect(state[:4] == b"VC2!", f"not JUCE's binary XML state: {state[:16]!r}")
    (length,) = struct.unpack("<I", state[4:8])
    return state[8 : 8 + length].rstrip(b"\0").decode()


def component_state(state: bytes) -> bytes:
    """The plugin's own state inside a JUCE VST3 state."""
    found = re.search(r"<IComponent>(.*?)</IComponent>", state_xml(state))
    expect(found is not None, f"no IComponent in the state: {state_xml(state)[:200]}")
    return juce_base64_decode(found.group(1))


def with_component_state(state: bytes, component: bytes) -> bytes:
    """`state` with the plugin's own part replaced by `component`."""
    inner = f"<IComponent>{juce_base64_encode(component)}</IComponent>"
    return juce_state(re.sub(r"<IComponent>.*?</IComponent>", inner, state_xml(state)))


# ------------------------------------------------------------------------------------------------
# The checks


def check_parameters(host: Host) -> None:
    """The contract's parameters, names, ranges and defaults, as a VST3 host sees them; Style Mix
    is set in percent and mixes linearly between the dry and the styled signal."""
    plugin = host.load()
    params = plugin.parameters
    missing, unexpected = sorted(set(PARAMETERS) - set(params)), sorted(set(params) - set(PARAMETERS))
    expect(not missing and not unexpected, f"parameters: missing {missing}, not in the contract {unexpected}")
    for name, spec in PARAMETERS.items():
        param = params[name]
        expect(param.name == spec.name, f"'{name}' is called {param.name!r}, not {spec.name!r}")
        if spec.unit is not None:
            got = (param.label, param.min_value, param.max_value)
            expect(got == (spec.unit, spec.low, spec.high), f"'{name}': unit and range {got}, not {spec[1:4]}")
        if spec.default is not None:
            value = getattr(plugin, name)
            expect(value == spec.default, f"'{name}' of a fresh instance is {value}, not {spec.default}")
    styles = params["style"].valid_values
    expect(len(styles) == STYLE_SLOTS, f"'style' has {len(styles)} values, not the {STYLE_SLOTS} slots: {styles}")
    expect(plugin.style == styles[0], f"a fresh instance's style is {plugin.style!r}, not the first, {styles[0]!r}")
    expect(params["bypass"].type is bool, f"'bypass' is a {params['bypass'].type}, not a switch")
    print(f"    {len(params)} parameters; styles {styles}")

    plugin.style_mix = 25
    normalized = params["style_mix"].raw_value
    expect(plugin.style_mix == 25 and abs(normalized - 0.25) < 1e-6, f"style_mix = 25 gives {normalized} normalized")
    # Renders from fresh activations are reproducible, and the styled path does not depend on the
    # mix: 25 % is a quarter of the 100 % render and three quarters of the input.
    audio = test_signal(RATE, RATE // 2)
    renders = {}
    for percent in (0, 25, 100):
        configure(plugin, style_mix=percent)
        renders[percent] = render(plugin, audio)
    err, at = max_error(renders[25], 0.25 * renders[100] + 0.75 * audio)
    print(f"    Style Mix 25 %: {err:.1e} from 0.25 * styled + 0.75 * dry")
    expect(err <= DRY_TOLERANCE, f"Style Mix 25 % is off the linear mix by {err} at sample {at}")
    err, at = max_error(renders[0], audio)
    expect(err <= DRY_TOLERANCE, f"Style Mix 0 % is off the input by {err} at sample {at}")


def styled_lag_slack(rate: int) -> int:
    """Host samples by which the styled output's correlation peak may miss lag 0: at most half a
    sample at the model's rate. Restyling is a per-frame gain on the input's spectrum, and
    through the resamplers that can leave the peak a fraction of a model-rate sample off, which
    at 4x the model's rate is a host sample or two (which one depends on the model's gains). A
    wet path off by a whole model-rate sample, or by hops, still fails at every rate; the exact
    alignment is the dry path's, checked above, and the identity model's (plugin/tests/engine.rs)."""
    return int(rate / (2 * MODEL_RATE))


def check_rates_and_block_sizes(host: Host) -> None:
    """Every rate and maximum block size: the latency reported before activation is the last
    one's, after activation the documented one; the output has the input's length, is finite and
    not silent, and lines up with the input once pedalboard has compensated the reported latency:
    at Style Mix 0 it is the input, styled it correlates best with the input at lag 0 (within
    `styled_lag_slack`)."""
    dry, wet = host.configured(style_mix=0), host.load()
    probe = allowed_latency(*PEDALBOARD_PROBE)
    fresh = host.load().reported_latency_samples
    print(f"    a fresh instance (pedalboard probed it at {PEDALBOARD_PROBE[0]} Hz, blocks of 512): latency {fresh}")
    expect(fresh in probe, f"a fresh instance reports latency {fresh}; after pedalboard's probe: {describe(probe)}")

    print("    rate Hz  block  samples   D  latency  allowed      dry error  styled RMS  lag  corr    time")
    previous = dry.reported_latency_samples
    for rate in SAMPLE_RATES:
        for block in BLOCK_SIZES:
            started = time.perf_counter()
            what = f"{rate} Hz, blocks of {block}"
            # Blocks of one sample: a short signal (a few thousand process calls).
            length = 4096 if block == 1 else max(4 * block, rate // 4)
            audio = test_signal(rate, length, seed=block)
            before = dry.reported_latency_samples
            expect(before == previous, f"{what}: before activation the latency reads {before}, not {previous}")
            output = render(dry, audio, rate, block)
            latency = dry.reported_latency_samples
            allowed = allowed_latency(rate, block)
            expect(latency in allowed, f"{what}: latency {latency}, the documented formula allows {describe(allowed)}")
            err, at = max_error(output, audio)
            expect(
                err <= DRY_TOLERANCE,
                f"{what}: at Style Mix 0 the latency-compensated output is off the input by {err} at sample {at} "
                f"(latency {latency})",
            )

            styled = render(wet, audio, rate, block)
            expect(wet.reported_latency_samples == latency, f"{what}: another instance reports a latency of {latency}")
            expect_finite(styled, what)
            level = rms(styled[:, length // 4 :])
            expect(level > 1e-3, f"{what}: the styled output is silent (RMS {level})")
            lag, corr = peak_correlation_lag(audio[:, length // 4 :], styled[:, length // 4 :], 256)
            slack = styled_lag_slack(rate)
            expect(
                abs(lag) <= slack,
                f"{what}: the styled output correlates best with the input {lag} samples late (r = {corr:.3f}), "
                f"more than {slack} off: the reported latency, {latency}, is not the real one",
            )
            expect(0.3 < abs(corr) < 0.999, f"{what}: correlation {corr:.4f} with the input: unrelated, or unstyled")
            took = (time.perf_counter() - started) * 1e3
            print(
                f"    {rate:>7}  {block:>5}  {length:>7}  {pipeline_delay_hops(rate, block):>2}  {latency:>7}  "
                f"{describe(allowed):<11}  {err:>9.1e}  {level:>10.4f}  {lag:>3}  {corr:.2f}  {took:>4.0f} ms"
            )
            previous = latency
    # Deactivated (pedalboard's reset releases the plugin's resources), the latency is unchanged.
    dry.reset()
    expect(dry.reported_latency_samples == previous, f"deactivated, the latency reads {dry.reported_latency_samples}")


def check_mono(host: Host) -> None:
    """A mono input (pedalboard asks for a one-channel layout): dry is the input, styled is finite."""
    audio = test_signal(RATE, RATE // 2, channels=1)
    err, at = max_error(render(host.configured(style_mix=0), audio), audio)
    expect(err <= DRY_TOLERANCE, f"mono, Style Mix 0: {err} from the input at sample {at}")
    styled = render(host.load(), audio)
    expect_finite(styled, "mono")
    expect(rms(styled) > 1e-3, f"mono: the styled output is silent (RMS {rms(styled)})")


def check_bypass(host: Host) -> None:
    """The host's bypass: the input, latency compensated, untouched by the gains and the mix; the
    latency stays; off again, the render is exactly an unbypassed one."""
    settings = dict(style_mix=90, input_gain_db=6.0, output_gain_db=-9.0)
    audio = test_signal(RATE, RATE)
    plugin = host.configured(**settings, bypass=True)
    bypassed = render(plugin, audio)
    latency = plugin.reported_latency_samples
    err, at = max_error(bypassed, audio)
    print(f"    bypassed: {err:.1e} from the input (latency {latency})")
    expect(err <= DRY_TOLERANCE, f"bypassed, the output is off the input by {err} at sample {at}")

    never_bypassed = host.configured(**settings)
    reference = render(never_bypassed, audio)
    expect(never_bypassed.reported_latency_samples == latency, f"bypass changed the latency from {latency}")
    configure(plugin, bypass=False)
    unbypassed = render(plugin, audio)
    differs = first_difference(unbypassed, reference)
    expect(differs is None, f"after bypass the render differs from a never bypassed one from sample {differs}")
    expect(max_error(unbypassed, audio)[0] > 0.01, "unbypassed, the output is still the input")


def check_streams_and_automation(host: Host) -> None:
    """A stream cut into blocks of assorted sizes, 1 included, renders bit for bit as one call
    does. Then parameter changes inside a stream, at odd samples (the start of a chunk; see
    `stream` for where pedalboard puts them in the output):

    - Style Mix 100 -> 0 changes the output from the change's very sample on, glides linearly over
      10 ms and then gives the input (the dry signal is latency-aligned).
    - A blend knob reaches the audio through the STFT frames: the first frame analysed after the
      change is the first with the new weights; its synthesis window reaches `2 * hop - 2` samples
      before its last input sample, so the first changed output sample is the change's
      `- (2 * hop - 2)` or one of the `hop - 1` after that (clap_hardening.rs, 2c).
    - Bypass on and off: from its sample; the input within the crossfade; then, exactly, what it
      would have been without bypass.
    """
    plugin = host.load()
    audio = test_signal(RATE, 48_000)
    one_shot = render(plugin, audio)
    latency = plugin.reported_latency_samples
    reference = stream(plugin, audio, {})
    differs = first_difference(reference, one_shot)
    expect(differs is None, f"a stream renders differently from one call from sample {differs}")
    rng = np.random.default_rng(5)
    cuts = np.cumsum(rng.choice([1, 2, 7, 63, 64, 129, 300, 511, 512, 700], 400)) + BLOCK
    cuts = cuts[cuts < audio.shape[1]]
    uneven = stream(plugin, audio, {int(cut): {} for cut in cuts})
    differs = first_difference(uneven, one_shot)
    print(f"    in {len(cuts) + 1} chunks of 1 to 700 samples: {'identical' if differs is None else 'different'}")
    expect(differs is None, f"a stream in blocks of assorted sizes renders differently from sample {differs}")

    ramp = round(RAMP_SECONDS * RATE)
    at = 8 * BLOCK + 203
    changed = stream(plugin, audio, {at: {"style_mix": 0}})
    played = at - latency
    first = first_difference(reference, changed)
    expect(first == played, f"Style Mix 0 with input sample {at} changed output from {first}, not {played}")
    mixes = 1.0 - np.arange(1, ramp + 1) / ramp
    glide = reference[:, played : played + ramp] * mixes + audio[:, played : played + ramp] * (1.0 - mixes)
    err, offset = max_error(changed[:, played : played + ramp], glide)
    dry_from = settled_from(changed, audio, DRY_TOLERANCE)
    print(
        f"    Style Mix 100 -> 0 % with input sample {at}: output changes from {first} (= {at} - latency {latency}), "
        f"{err:.1e} off a linear {ramp}-sample glide, is the input from {dry_from}"
    )
    expect(err <= DRY_TOLERANCE, f"the Style Mix glide is {err} off a linear {ramp}-sample one, {offset} samples in")
    expect(dry_from <= played + ramp, f"after Style Mix 0 from output {played} the output is the input from {dry_from}")

    reach = 2 * HOP - 2
    for at in (8 * BLOCK + 77, 8 * BLOCK + 128, 8 * BLOCK + 129, 20 * BLOCK + 1):
        changed = stream(plugin, audio, {at: {"blend_3": 100}})
        expect_finite(changed, "blend automation")
        first = first_difference(reference, changed)
        expect(first is not None, f"blend_3 0 -> 100 % with input sample {at} did not change the output")
        print(f"    blend_3 0 -> 100 % with input sample {at}: output changes from {first} = {at} - {at - first}")
        allowed = range(at - reach, at - reach + HOP)
        expect(first in allowed, f"blend_3 100 % with input sample {at} changed output from {first}, not in {allowed}")
        later = slice(first + 960, first + 960 + 4800)
        change = max_error(reference[:, later], changed[:, later])[0]
        expect(change > 0.01 * np.abs(reference[:, later]).max(), f"the blend change at {at} is inaudible ({change})")

    on, off = 10_000 + 33, 30_000 + 91
    crossfade = 2 * ramp + BLOCK
    switched = stream(plugin, audio, {on: {"bypass": True}, off: {"bypass": False}})
    on, off = on - latency, off - latency
    first = first_difference(reference, switched)
    expect(first == on, f"bypass on changed the output from sample {first}, not {on}")
    dry_from = on + settled_from(switched[:, on:off], audio[:, on:off], DRY_TOLERANCE)
    back_from = off + settled_from(switched[:, off:], reference[:, off:], 0.0)
    print(f"    bypass on from output {on}: the input from {dry_from}; off from {off}: unbypassed from {back_from}")
    expect(dry_from <= on + crossfade, f"bypassed from output {on}, the output is the input only from {dry_from}")
    expect(back_from <= off + crossfade, f"bypass off from output {off}: as never bypassed only from {back_from}")


def check_state_round_trip(host: Host) -> None:
    """Saved, loaded into a fresh instance and saved again: the same bytes, the same values, and
    the same render bit for bit."""
    plugin = host.load()
    styles = plugin.parameters["style"].valid_values
    configure(plugin, style=styles[2], blend_2=50, blend_7=25, style_mix=25, input_gain_db=-6.0, output_gain_db=3.5)
    saved = plugin.raw_state
    own = component_state(saved)
    print(f"    {len(saved)} bytes; the plugin's own {len(own)}: {own[:100].decode(errors='replace')}...")
    for text in ['"mix":{"f32":0.25}', '"style":{"i32":2}', '"blend_2":{"f32":0.5}']:
        expect(text.encode() in own, f"the saved state does not hold {text}: {own.decode(errors='replace')}")

    fresh = host.load()
    fresh.raw_state = saved
    resaved = fresh.raw_state
    expect(resaved == saved, f"saved, loaded and saved again: {resaved!r}, first {saved!r}")
    loaded, kept = display_values(fresh), display_values(plugin)
    expect(loaded == kept, f"values loaded {loaded}, saved {kept}")
    third = host.load()
    third.raw_state = resaved
    expect(third.raw_state == saved, "a second round trip changed the state")
    audio = test_signal(RATE, RATE // 2)
    differs = first_difference(render(plugin, audio), render(fresh, audio))
    expect(differs is None, f"the restored instance renders differently from sample {differs}")


def broken_states(saved: bytes) -> list[tuple[str, bytes]]:
    """States a disk, a bad copy or another plugin could hand the plugin: broken at JUCE's level,
    and broken inside JUCE's envelope, where they reach the plugin (clap_hardening.rs, 5)."""
    own = component_state(saved)
    noise = np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()

    def wrapped(component: bytes) -> bytes:
        return with_component_state(saved, component)

    def nested(depth: int, open_: str, close: str) -> bytes:
        return wrapped(f'{{"params":{{"mix":{open_ * depth}{close * depth}}},"fields":{{}}}}'.encode())

    return [
        ("an empty state", b""),
        ("the magic alone", b"VC2!"),
        ("the state cut in half", saved[: len(saved) // 2]),
        ("the state less its last 20 bytes", saved[:-20]),
        ("random bytes", noise),
        ("the magic, a length of 2^32 - 1 and random bytes", b"VC2!" + struct.pack("<I", 2**32 - 1) + noise),
        ("XML without the plugin's state", juce_state('<?xml version="1.0"?> <VST3PluginState></VST3PluginState>')),
        ("the plugin's state empty", wrapped(b"")),
        ("the plugin's state cut in half", wrapped(own[: len(own) // 2])),
        ("the plugin's state random bytes", wrapped(noise)),
        ("a JSON array", wrapped(b"[1,2,3]")),
        ("JSON null", wrapped(b"null")),
        ("an empty JSON object", wrapped(b"{}")),
        ("params as an array", wrapped(b'{"params":[],"fields":{}}')),
        ("an untyped value", wrapped(b'{"params":{"mix":0.5},"fields":{}}')),
        ("a value of an unknown type", wrapped(b'{"params":{"mix":{"f64":0.5}},"fields":{}}')),
        ("an integer out of i32", wrapped(b'{"params":{"style":{"i32":99999999999}},"fields":{}}')),
        ("a field that is not a string", wrapped(b'{"params":{},"fields":{"pack":5}}')),
        ("JSON with trailing garbage", wrapped(own + b"}}}")),
        ("invalid UTF-8", wrapped(b'{"params":{},"fields":{"pack":"\xff"}}')),
        ("100 000 nested arrays", nested(100_000, "[", "]")),
        ("100 000 nested objects", nested(100_000, '{"a":', "}")),
    ]


HOSTILE = b"""{"version":"0.0.0-evil","params":{
    "mix":{"f32":1e30},"style":{"i32":-7},"in_gain":{"bool":true},"out_gain":{"f32":1e39},
    "blend_2":{"f32":-5},"blend_4":{"f32":0.25},"bypass":{"f32":1},
    "gain_of_another_plugin":{"f32":1},"":{"i32":0}},
    "fields":{"pack":"\\"../../etc\\"","editor-state":"{\\"width\\":4000000000,\\"height\\":4000000000}",
    "provider":"\\"quantum\\"","secret":"{\\"a\\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}"}}"""


def check_broken_state(host: Host) -> None:
    """Broken states are refused (JUCE's state setter returns nothing, so: nothing changes, not a
    value, not a byte of the state saved afterwards), before and after processing; a state of the
    right shape with hostile values loads repaired: values clamped or dropped, foreign entries gone;
    the plugin plays finite, audible audio after all of it."""
    plugin = host.load()
    styles = plugin.parameters["style"].valid_values
    configure(plugin, style=styles[3], blend_2=50, style_mix=25, input_gain_db=-6.0, output_gain_db=3.5)
    saved, values = plugin.raw_state, display_values(plugin)
    audio = test_signal(RATE, RATE // 2)
    bad = broken_states(saved)
    started = time.perf_counter()
    for when in ("inactive", "after processing"):
        if when == "after processing":
            render(plugin, audio)
        for name, blob in bad:
            # If loading it kills the process, faulthandler's traceback shows `name` on this line.
            plugin.raw_state = blob
            what = f"{when}: loading {name} ({len(blob)} bytes)"
            expect(display_values(plugin) == values, f"{what} changed values to {display_values(plugin)}")
            expect(plugin.raw_state == saved, f"{what} changed the saved state")
    print(f"    {len(bad)} broken states refused, inactive and active, in {time.perf_counter() - started:.2f} s")
    output = render(plugin, audio)
    expect_finite(output, "after the broken states")
    expect(rms(output) > 1e-3, f"silent after the broken states (RMS {rms(output)})")

    plugin.raw_state = with_component_state(saved, HOSTILE)
    got = display_values(plugin)
    expected = {
        "style_mix": (100.0, "1e30 clamped to 100 %"),
        "style": (styles[0], "-7 clamped to the first slot"),
        "blend_2": (0.0, "-5 clamped to 0 %"),
        "blend_4": (25.0, "a valid value loads"),
        "input_gain_db": (values["input_gain_db"], "a bool for a float is dropped: the value stays"),
        "output_gain_db": (values["output_gain_db"], "1e39 is infinite as f32 and dropped: the value stays"),
        "bypass": (False, "a float for a bool is dropped: the value stays"),
    }
    for name, (value, why) in expected.items():
        expect(got[name] == value, f"after the hostile state {name} is {got[name]!r}, expected {value!r}: {why}")
    own = component_state(plugin.raw_state).decode()
    expect('"pack":"null"' in own, f"the pack must fall back to the built-in one: {own}")
    clamped = '"editor-state":"{\\"width\\":7680,\\"height\\":4320}"'
    expect(clamped in own, f"the editor size must be clamped to the largest screen: {own}")
    for foreign in ("secret", "gain_of_another_plugin", '"":', "etc", "quantum"):
        expect(foreign not in own, f"{foreign!r} survived into the saved state: {own}")
    output = render(plugin, audio)
    expect_finite(output, "after the hostile state")
    expect(rms(output) > 1e-3, f"silent after the hostile state (RMS {rms(output)})")


def check_concurrent_instances(host: Host) -> None:
    """Four instances with different settings and block sizes, processing at the same time on
    their own threads, each render exactly what they render alone; and an instance with the same
    settings as another renders the same."""
    count = 4
    audio = test_signal(RATE, RATE)
    styles = host.load().parameters["style"].valid_values
    settings = [dict(style=styles[i], blend_6=25 * i, style_mix=100 - 10 * i) for i in range(count)]
    blocks = [512, 256, 100, 333]
    plugins = [host.configured(**s) for s in settings]
    alone = [render(plugin, audio, RATE, block) for plugin, block in zip(plugins, blocks)]
    together: list[Audio | None] = [None] * count
    errors: list[str] = []
    all_ready = threading.Barrier(count)

    def play(i: int) -> None:
        try:
            all_ready.wait()
            together[i] = render(plugins[i], audio, RATE, blocks[i])
        except Exception:  # reported below, with the instance
            errors.append(f"instance {i}: {traceback.format_exc()}")

    started = time.perf_counter()
    threads = [threading.Thread(target=play, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"    {count} instances, {audio.shape[1]} samples each, at once in {time.perf_counter() - started:.2f} s")
    expect(not errors, "\n".join(errors))
    for i in range(count):
        expect_finite(together[i], f"instance {i}")
        differs = first_difference(alone[i], together[i])
        expect(differs is None, f"instance {i} rendered differently while the others ran, from sample {differs}")
        for j in range(i):
            expect(first_difference(together[i], together[j]) is not None, f"instances {j} and {i} rendered alike")
    differs = first_difference(render(host.configured(**settings[0]), audio, RATE, blocks[0]), alone[0])
    expect(differs is None, f"two instances with the same settings render differently from sample {differs}")


Span = tuple[int, int, Callable[[np.ndarray], np.ndarray]]


def check_broken_audio(host: Host) -> None:
    """Blocks of NaN, infinities, denormals, +-1e6 and full-scale DC in the input: finite output,
    never louder than 4x the loudest finite input; NaN and infinities are exactly silence; a second
    after the last bad sample the level is back (clap_hardening.rs, 6)."""
    plugin = host.load()
    length = 96_000
    clean = test_signal(RATE, length)
    nonfinite: list[Span] = [
        (4_000, 512, lambda n: np.full(n.shape, np.nan)),
        (6_000, 300, lambda n: np.full(n.shape, np.inf)),
        (7_000, 300, lambda n: np.full(n.shape, -np.inf)),
        (8_000, 1_000, lambda n: np.where(n % 2 == 0, np.inf, np.nan)),
        (9_500, 3, lambda n: np.full(n.shape, np.nan)),
    ]
    garbage: list[Span] = [
        (10_000, 4_096, lambda n: np.where(n % 2 == 0, 1e-40, -1e-40)),
        (15_000, 4_096, lambda n: np.where((n // 37) % 2 == 0, 1e6, -1e6)),
        (20_000, 4_096, lambda n: np.ones(n.shape)),
    ]

    def spoiled(spans: list[Span], silence: bool = False) -> Audio:
        audio = clean.copy()
        for start, count, value in spans:
            audio[:, start : start + count] = 0.0 if silence else value(np.arange(count)).astype(np.float32)
        return audio

    spans = nonfinite + garbage
    broken = spoiled(spans)
    loudest_input = float(np.abs(broken[np.isfinite(broken)]).max())
    after = slice(max(start + count for start, count, _ in spans) + RATE, length)
    reference, output = render(plugin, clean), render(plugin, broken)
    expect_finite(output, "broken input")
    loudest = float(np.abs(output).max())
    recovered, level = rms(output[:, after]), rms(reference[:, after])
    print(
        f"    loudest finite input {loudest_input:.0e}, loudest output {loudest:.3g}; a second after: RMS "
        f"{recovered:.4f} (clean {level:.4f})"
    )
    expect(loudest <= 4 * loudest_input, f"output peak {loudest} for an input peak of {loudest_input}")
    expect(recovered > 0.5 * level, f"a second after the bad input the RMS is {recovered}, clean {level}")
    differs = first_difference(render(plugin, spoiled(nonfinite)), render(plugin, spoiled(nonfinite, silence=True)))
    expect(differs is None, f"NaN and infinite input is not rendered as silence: different from sample {differs}")


CHECKS: list[Callable[[Host], None]] = [
    check_parameters,
    check_rates_and_block_sizes,
    check_mono,
    check_bypass,
    check_streams_and_automation,
    check_state_round_trip,
    check_broken_state,
    check_concurrent_instances,
    check_broken_audio,
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path, help="the .vst3 bundle")
    parser.add_argument("--plugin-log", type=Path, help="where the plugin logs (NICE_LOG); default stderr")
    parser.add_argument("-k", dest="only", default="", help="run only the checks whose name contains this")
    args = parser.parse_args()
    if not args.bundle.is_dir():
        print(f"no VST3 bundle at {args.bundle}: build it with `cargo xtask bundle restyle --release`", file=sys.stderr)
        return 1
    if args.plugin_log:
        # Read when the plugin library is loaded, so before the first instance.
        os.environ["NICE_LOG"] = str(args.plugin_log)
    # A crash in the plugin takes the process down: this names the check and line it happened in.
    faulthandler.enable()

    print(f"pedalboard {pedalboard.__version__}, numpy {np.__version__}: {args.bundle}")
    host = Host(args.bundle)
    failed = []
    started = time.perf_counter()
    for check in CHECKS:
        name = check.__name__.removeprefix("check_")
        if args.only not in name:
            continue
        print(f"{name}:", flush=True)
        check_started = time.perf_counter()
        try:
            check(host)
            print(f"  ok ({time.perf_counter() - check_started:.2f} s)", flush=True)
        except CheckFailed as failure:
            failed.append(name)
            print(f"  FAILED: {failure}", flush=True)
        except Exception:
            failed.append(name)
            print(f"  FAILED with an error:\n{traceback.format_exc()}", flush=True)
    took = time.perf_counter() - started
    if failed:
        print(f"VST3 check failed in {took:.1f} s: {', '.join(failed)}")
        return 1
    print(f"VST3 check passed in {took:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
