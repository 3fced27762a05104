//! The engine's invariants over hosts drawn at random (proptest): any sample rate from 44.1 to
//! 192 kHz, mono or stereo, any schedule of block sizes from 1 to 8192 samples, and parameters
//! changing from block to block (style, blends, style mix, gains at their extremes, bypass). The
//! models are deterministic and fast (the identity, tone curves) and the pacing is offline, so no
//! frame is ever late and a failure is the engine's, not the machine's.
//!
//! A failing case is printed shrunk to a small host, and saved under `proptest-regressions/` so
//! that the next run tries it first.

mod common;

use proptest::prelude::*;
use proptest::test_runner::Config;
use restyle::engine::{Controls, Engine, EngineConfig, LatencyMode, Pacing};
use restyle::model::{FrameModel, IdentityModel, ToneModel, MAX_STYLES};
use restyle::params::style_weights;

use common::{delayed_error, noise};

/// The rates hosts run at, from 44.1 to 192 kHz (48 kHz is the models' own: no resampling).
const RATES: [u32; 6] = [44_100, 48_000, 88_200, 96_000, 176_400, 192_000];
/// The gain parameters' range, in dB.
const GAIN_DB: f32 = 24.0;
/// Cases per property: the file runs in under a minute in a debug build on two cores.
/// `PROPTEST_CASES=1000 cargo test --release -p restyle --test properties` runs more.
const CASES: u32 = 12;

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(CASES);
    Config { cases, ..Config::default() }
}

/// One block's parameter values, as a host's automation sets them.
#[derive(Debug, Clone)]
struct Automation {
    style: usize,
    blends: [f32; MAX_STYLES],
    mix: f32,
    in_gain_db: f32,
    out_gain_db: f32,
    bypass: bool,
}

impl Automation {
    /// The engine's controls for a pack of `styles` styles, as the plugin makes them.
    fn controls(&self, styles: usize) -> Controls {
        let gain = |db: f32| 10f32.powf(db / 20.0);
        Controls {
            style: style_weights(self.style, &self.blends, styles),
            mix: self.mix,
            input_gain: gain(self.in_gain_db),
            output_gain: gain(self.out_gain_db),
            bypass: self.bypass,
        }
    }
}

/// A simulated host: its configuration, the block sizes it sends (cycled) and the parameter
/// values of each block (cycled), and how much audio it plays after the latency has passed.
#[derive(Debug, Clone)]
struct Host {
    sample_rate: u32,
    channels: usize,
    blocks: Vec<usize>,
    automation: Vec<Automation>,
    /// Samples past the latency, so every case hears the engine's output.
    extra: usize,
    seed: u64,
}

impl Host {
    fn max_block(&self) -> usize {
        self.blocks.iter().copied().max().unwrap_or(1)
    }

    fn engine(&self, model: Box<dyn FrameModel>) -> Engine {
        let config =
            EngineConfig { sample_rate: self.sample_rate, channels: self.channels, max_block: self.max_block(), pacing: Pacing::Offline, latency_mode: LatencyMode::Lowest };
        let mut engine = Engine::new(config, model).unwrap();
        engine.jump_to(&self.automation[0].controls(engine.styles().len()));
        engine
    }

    /// Plays `input` through `engine` block by block, each block with its automation.
    fn play(&self, engine: &mut Engine, input: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let styles = engine.styles().len();
        let mut output = input.to_vec();
        let (mut start, len) = (0, input[0].len());
        for (size, automation) in self.blocks.iter().cycle().zip(self.automation.iter().cycle()) {
            if start >= len {
                break;
            }
            let end = (start + size).min(len);
            let mut block: Vec<&mut [f32]> = output.iter_mut().map(|c| &mut c[start..end]).collect();
            engine.process(&mut block, &automation.controls(styles));
            start = end;
        }
        output
    }
}

fn gain_db() -> impl Strategy<Value = f32> {
    prop_oneof![Just(-GAIN_DB), Just(0.0), Just(GAIN_DB), -GAIN_DB..=GAIN_DB]
}

fn automation() -> impl Strategy<Value = Automation> {
    let blend = prop_oneof![3 => Just(0.0f32), 1 => Just(1.0), 2 => 0.0f32..=1.0];
    let mix = prop_oneof![Just(0.0f32), Just(1.0), 0.0f32..=1.0];
    (0..MAX_STYLES, prop::array::uniform8(blend), mix, gain_db(), gain_db(), prop::bool::weighted(0.2)).prop_map(
        |(style, blends, mix, in_gain_db, out_gain_db, bypass)| Automation {
            style,
            blends,
            mix,
            in_gain_db,
            out_gain_db,
            bypass,
        },
    )
}

/// Block sizes at every scale: single samples, typical buffers, the largest hosts send.
fn block() -> impl Strategy<Value = usize> {
    prop_oneof![1..=16usize, 17..=1024usize, 1025..=8192usize]
}

fn host() -> impl Strategy<Value = Host> {
    (
        prop::sample::select(RATES.to_vec()),
        1..=2usize,
        prop::collection::vec(block(), 1..6),
        prop::collection::vec(automation(), 1..12),
        1000..4000usize,
        any::<u64>(),
    )
        .prop_map(|(sample_rate, channels, blocks, automation, extra, seed)| Host {
            sample_rate,
            channels,
            blocks,
            automation,
            extra,
            seed,
        })
}

/// White noise in [-0.5, 0.5), long enough to reach `extra` samples past the engine's latency.
fn noise_input(host: &Host, engine: &Engine) -> Vec<Vec<f32>> {
    (0..host.channels).map(|c| noise(engine.latency() + host.extra, host.seed ^ c as u64)).collect()
}

/// A few sines below the lower of the host's and the model's Nyquist frequency (what the
/// resamplers pass untouched), faded in so their start is band-limited too.
fn tones_input(host: &Host, engine: &Engine) -> Vec<Vec<f32>> {
    let len = engine.latency() + host.extra;
    let top = 0.4 * host.sample_rate.min(48_000) as f32;
    let mut source = restyle_dsp::noise::Xorshift::new(host.seed);
    let mut tone = || (50.0 + (source.next_f32() + 0.5) * (top - 50.0), (source.next_f32() + 0.5) * std::f32::consts::TAU);
    let tones: Vec<[(f32, f32); 3]> = (0..host.channels).map(|_| [tone(), tone(), tone()]).collect();
    let fade = 1024.0;
    tones
        .iter()
        .map(|tones| {
            (0..len)
                .map(|n| {
                    let t = n as f32 / host.sample_rate as f32;
                    let ramp = 0.5 - 0.5 * (std::f32::consts::PI * (n as f32 / fade).min(1.0)).cos();
                    let sum: f32 = tones.iter().map(|(f, phase)| (std::f32::consts::TAU * f * t + phase).sin()).sum();
                    0.2 * ramp * sum
                })
                .collect()
        })
        .collect()
}

fn tone_model() -> Box<dyn FrameModel> {
    Box::new(ToneModel::new(48_000.0, 513))
}

proptest! {
    #![proptest_config(config())]

    /// Whatever the host does, every output sample is a number within reach of the input (the
    /// gains and the tone curves can raise it by at most about 60 dB), no frame is late or
    /// failed, and the latency never changes from what the engine reported when it was made.
    #[test]
    fn output_is_finite_and_the_latency_constant(host in host(), tones in any::<bool>()) {
        let model = if tones { tone_model() } else { Box::new(IdentityModel::default()) };
        let mut engine = host.engine(model);
        let latency = engine.latency();
        let input = noise_input(&host, &engine);
        let output = host.play(&mut engine, &input);
        let peak = output.iter().flatten().fold(0.0f32, |m, y| if y.is_finite() { m.max(y.abs()) } else { f32::INFINITY });
        prop_assert!(peak < 1000.0, "output peak {peak}");
        prop_assert_eq!(engine.latency(), latency);
        prop_assert_eq!(engine.stats().latency_samples.load(std::sync::atomic::Ordering::Relaxed) as usize, latency);
        let stats = engine.stats().snapshot();
        prop_assert_eq!((stats.late_frames, stats.failed_frames), (0, 0), "{:?}", stats);
    }

    /// Style mix held at 0 gives exactly the input, delayed by the reported latency, whatever the
    /// style, blends and bypass do meanwhile (the model changes the sound, so a leak would show).
    #[test]
    fn style_mix_zero_is_the_input_delayed_by_the_latency(mut host in host()) {
        for a in &mut host.automation {
            (a.mix, a.in_gain_db, a.out_gain_db) = (0.0, 0.0, 0.0);
        }
        let mut engine = host.engine(tone_model());
        let input = noise_input(&host, &engine);
        let output = host.play(&mut engine, &input);
        for (input, output) in input.iter().zip(&output) {
            let err = delayed_error(input, output, engine.latency());
            prop_assert!(err <= 1e-6, "error {err}");
        }
    }

    /// With the identity model at full mix the engine gives back its input, delayed by the
    /// reported latency: exactly up to rounding at 48 kHz, and within the resamplers' ripple for
    /// a signal they pass at other rates. Style, blends and bypass change meanwhile.
    #[test]
    fn identity_at_full_mix_reconstructs_the_input(mut host in host()) {
        for a in &mut host.automation {
            (a.mix, a.in_gain_db, a.out_gain_db) = (1.0, 0.0, 0.0);
        }
        let mut engine = host.engine(Box::new(IdentityModel::default()));
        let resampled = host.sample_rate != 48_000;
        let input = if resampled { tones_input(&host, &engine) } else { noise_input(&host, &engine) };
        let output = host.play(&mut engine, &input);
        let latency = engine.latency();
        let tolerance = if resampled { 2e-3 } else { 1e-4 };
        for (input, output) in input.iter().zip(&output) {
            let err = (latency..output.len()).map(|n| (output[n] - input[n - latency]).abs()).fold(0.0, f32::max);
            prop_assert!(err <= tolerance, "error {err} (tolerance {tolerance})");
        }
    }
}
