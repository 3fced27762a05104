//! The engine's contract: latency, reconstruction, late frames, block sizes.

mod common;

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use common::*;
use std::sync::Arc;

use restyle::engine::{Controls, Engine, EngineConfig, LatencyMode, ModelSwap, Pacing};
use restyle::model::{FrameBatch, FrameModel, IdentityModel, ToneModel};
use restyle::render::BlockSizes;

const SCHEDULES: [BlockSizes; 8] = [
    BlockSizes::Fixed(1),
    BlockSizes::Fixed(7),
    BlockSizes::Fixed(64),
    BlockSizes::Fixed(512),
    BlockSizes::Fixed(4096),
    BlockSizes::Fixed(8192),
    BlockSizes::Random { max: 1500, seed: 42 },
    BlockSizes::Random { max: 8192, seed: 7 },
];

#[test]
fn style_mix_zero_outputs_the_input_delayed_by_the_reported_latency() {
    let controls = Controls { mix: 0.0, ..Controls::default() };
    for channels in [1, 2] {
        for blocks in SCHEDULES {
            let input: Vec<Vec<f32>> = (0..channels).map(|c| noise(20_000, c as u64 + 1)).collect();
            // A model that changes the sound, so a leak of the wet path would show.
            let model = Box::new(ToneModel::new(48_000.0, 513));
            let mut engine = engine(48_000, channels, blocks.max(), Pacing::RealTime, model, &controls);
            let output = stream(&mut engine, &input, blocks, &controls);
            for c in 0..channels {
                let err = delayed_error(&input[c], &output[c], engine.latency());
                assert!(err <= 1e-6, "{channels} ch, {blocks:?}: error {err}");
            }
        }
    }
}

#[test]
fn identity_model_at_full_mix_reconstructs_the_input() {
    let controls = Controls::default();
    for channels in [1, 2] {
        for blocks in SCHEDULES {
            let input: Vec<Vec<f32>> = (0..channels).map(|c| noise(20_000, c as u64 + 7)).collect();
            let mut engine = engine(48_000, channels, blocks.max(), Pacing::Offline, identity(), &controls);
            let output = stream(&mut engine, &input, blocks, &controls);
            let stats = engine.stats().snapshot();
            assert!(stats.frames_submitted >= 150, "the frames went through the model: {stats:?}");
            assert_eq!(stats.late_frames, 0, "offline rendering waits for every frame");
            for c in 0..channels {
                let err = delayed_error(&input[c], &output[c], engine.latency());
                assert!(err <= 1e-4, "{channels} ch, {blocks:?}: error {err}");
            }
        }
    }
}

#[test]
fn impulse_comes_out_exactly_at_the_reported_latency() {
    for sample_rate in [44_100, 48_000, 96_000, 88_200, 192_000] {
        for mix in [0.0, 1.0] {
            for max_block in [64, 512] {
                let controls = Controls { mix, ..Controls::default() };
                let mut input = vec![vec![0.0f32; sample_rate as usize / 4]];
                input[0][1000] = 1.0;
                let mut engine = engine(sample_rate, 1, max_block, Pacing::Offline, identity(), &controls);
                let output = stream(&mut engine, &input, BlockSizes::Fixed(max_block), &controls);
                let (peak, value) = output[0]
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                    .map(|(i, v)| (i, *v))
                    .unwrap();
                assert_eq!(peak, 1000 + engine.latency(), "{sample_rate} Hz, mix {mix}, blocks {max_block}: peak {value}");
                // Through the model the signal is band-limited to the model's 24 kHz, which lowers an
                // impulse's peak in proportion above 48 kHz.
                let expected = if mix == 0.0 { 1.0 } else { (48_000.0 / sample_rate as f32).min(1.0) };
                assert!(value > 0.8 * expected, "{sample_rate} Hz, mix {mix}: the impulse survives ({value})");
            }
        }
    }
}

#[test]
fn latency_at_48k_with_small_blocks_is_under_ten_ms() {
    let controls = Controls::default();
    let engine = engine(48_000, 2, 128, Pacing::RealTime, identity(), &controls);
    assert_eq!(engine.latency(), 255 + 128);
    assert!(engine.latency() <= 480);
}

/// The safe latency mode gives every frame one hop more to come back: the pipeline delay grows
/// by one hop, the latency by one hop at the model's rate (in host samples elsewhere), and the
/// restyled path still comes out exactly at the reported latency.
#[test]
fn the_safe_latency_mode_adds_one_hop_and_stays_aligned() {
    let controls = Controls::default();
    for sample_rate in [44_100, 48_000, 96_000] {
        for max_block in [64, 512] {
            let what = format!("{sample_rate} Hz, blocks up to {max_block}");
            let config = |latency_mode| EngineConfig { sample_rate, channels: 1, max_block, pacing: Pacing::Offline, latency_mode };
            let lowest = Engine::new(config(LatencyMode::Lowest), identity()).unwrap();
            let mut safe = Engine::new(config(LatencyMode::Safe), identity()).unwrap();
            assert_eq!(safe.pipeline_delay(), lowest.pipeline_delay() + 1, "{what}");
            let hop = 128.0 * sample_rate as f64 / 48_000.0;
            let added = (safe.latency() - lowest.latency()) as f64;
            assert!((added - hop).abs() <= 1.0, "{what}: safe adds {added} samples, one hop is {hop}");
            assert_eq!(safe.stats().latency_samples.load(Relaxed) as usize, safe.latency(), "{what}: published");

            let mut input = vec![vec![0.0f32; sample_rate as usize / 4]];
            input[0][1000] = 1.0;
            let output = stream(&mut safe, &input, BlockSizes::Fixed(max_block), &controls);
            let peak = output[0].iter().enumerate().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).map(|(i, _)| i).unwrap();
            assert_eq!(peak, 1000 + safe.latency(), "{what}");
            assert_eq!(safe.stats().snapshot().late_frames, 0, "{what}");
        }
    }
}

#[test]
fn resampled_rates_reconstruct_a_band_limited_signal() {
    for sample_rate in [44_100u32, 96_000] {
        let controls = Controls::default();
        let len = sample_rate as usize / 2;
        let tone = |n: usize| {
            let t = n as f32 / sample_rate as f32;
            0.3 * (2.0 * std::f32::consts::PI * 440.0 * t).sin() + 0.2 * (2.0 * std::f32::consts::PI * 5_000.0 * t).sin()
        };
        let input = vec![(0..len).map(tone).collect::<Vec<f32>>()];
        let mut engine = engine(sample_rate, 1, 256, Pacing::Offline, identity(), &controls);
        let output = stream(&mut engine, &input, BlockSizes::Random { max: 256, seed: 9 }, &controls);
        let latency = engine.latency();
        let err = (latency + 4096..len).map(|n| (output[0][n] - input[0][n - latency]).abs()).fold(0.0, f32::max);
        assert!(err < 2e-3, "{sample_rate} Hz: error {err}");
    }
}

#[test]
fn a_slow_model_gives_late_frames_and_never_blocks_the_audio_thread() {
    let controls = Controls::default();
    let model = Box::new(SlowModel { delay: Duration::from_millis(200), inner: IdentityModel::default() });
    let mut engine = engine(48_000, 2, 128, Pacing::RealTime, model, &controls);
    let input: Vec<Vec<f32>> = (0..2).map(|c| noise(48_000, c + 3)).collect();
    let mut output = input.clone();
    let mut slowest = Duration::ZERO;
    for start in (0..48_000).step_by(128) {
        let mut block: Vec<&mut [f32]> = output.iter_mut().map(|c| &mut c[start..start + 128]).collect();
        let started = Instant::now();
        engine.process(&mut block, &controls);
        slowest = slowest.max(started.elapsed());
    }
    let stats = engine.stats().snapshot();
    assert!(slowest < Duration::from_millis(100), "a block took {slowest:?}: the audio thread waited for the model");
    assert!(stats.late_frames > 300, "late frames are counted: {stats:?}");
    // Late frames are played dry, so the output is still the input, delayed.
    for c in 0..2 {
        assert!(output[c].iter().all(|y| y.is_finite()));
        let err = delayed_error(&input[c], &output[c], engine.latency());
        assert!(err < 1e-4, "dry fallback is seamless: error {err}");
    }
}

/// Dropping the engine (the host deactivating or destroying the plugin) while the inference
/// thread is inside a slow model call returns within one call, and one stuck for longer than the
/// shutdown wait is left behind rather than hanging the host.
#[test]
fn dropping_the_engine_while_the_model_is_busy_returns_in_bounded_time() {
    let controls = Controls::default();
    for (delay, bound) in [(Duration::from_millis(300), Duration::from_millis(700)), (Duration::from_secs(10), Duration::from_millis(2600))] {
        let model = Box::new(SlowModel { delay, inner: IdentityModel::default() });
        let mut engine = engine(48_000, 2, 128, Pacing::RealTime, model, &controls);
        let mut block = vec![vec![0.1f32; 128]; 2];
        // Several frames queue behind the one the model is busy with.
        for _ in 0..8 {
            let mut channels: Vec<&mut [f32]> = block.iter_mut().map(|c| c.as_mut_slice()).collect();
            engine.process(&mut channels, &controls);
        }
        std::thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        drop(engine);
        let took = started.elapsed();
        assert!(took < bound, "dropping the engine took {took:?} with a model taking {delay:?} per frame");
    }
}

/// Scales every bin by `gain`: a model whose effect is easy to see in the output level.
struct GainModel {
    gain: f32,
    styles: Vec<String>,
}

impl FrameModel for GainModel {
    fn name(&self) -> &str {
        "gain"
    }
    fn styles(&self) -> &[String] {
        &self.styles
    }
    fn run(&mut self, batch: &FrameBatch<'_>, out: &mut [f32]) -> anyhow::Result<()> {
        let log_gain = self.gain.ln();
        out.iter_mut().zip(batch.logmag).for_each(|(y, x)| *y = x + log_gain);
        Ok(())
    }
}

/// A pack switched while playing fades in over many hops: the level of a steady sine moves from
/// the old model's gain to the new one's in small steps, where a hard swap would jump within the
/// two hops of one synthesis window.
#[test]
fn models_swapped_while_playing_fade_in_without_a_jump() {
    let swap = Arc::new(ModelSwap::default());
    let config = EngineConfig { sample_rate: 48_000, channels: 1, max_block: 128, pacing: Pacing::Offline, latency_mode: LatencyMode::Lowest };
    let old = Box::new(GainModel { gain: 1.0, styles: vec!["A".into()] });
    let mut engine = Engine::for_plugin(config, old, Arc::default(), swap.clone()).unwrap();
    let controls = Controls::default();
    engine.jump_to(&controls);
    let sine: Vec<f32> = (0..128 * 400).map(|n| (n as f32 * 0.0625).sin() * 0.5).collect();
    let mut levels = Vec::new();
    for (hop, chunk) in sine.chunks(128).enumerate() {
        if hop == 100 {
            swap.offer(Box::new(GainModel { gain: 0.25, styles: vec!["B".into(), "C".into()] }).into());
            while engine.style_count() != 2 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let mut block = chunk.to_vec();
        engine.process(&mut [block.as_mut_slice()], &controls);
        levels.push(block.iter().fold(0.0f32, |m, y| m.max(y.abs())));
    }
    let (before, after) = (levels[90], levels[390]);
    assert!((before - 0.5).abs() < 0.02 && (after - 0.125).abs() < 0.01, "levels {before} then {after}");
    let largest_step = levels[90..].windows(2).map(|w| (w[0] - w[1]).abs()).fold(0.0, f32::max);
    let hops_moving = levels[90..].windows(2).filter(|w| (w[0] - w[1]).abs() > 0.002).count();
    assert!(largest_step < 0.25 * (before - after), "the level jumped by {largest_step} in one hop: {:?}", &levels[95..130]);
    assert!(hops_moving >= 10, "the change took only {hops_moving} hops: {:?}", &levels[95..130]);
}

#[test]
fn non_finite_input_is_silenced_and_counted() {
    let controls = Controls::default();
    let mut engine = engine(48_000, 1, 256, Pacing::Offline, Box::new(ToneModel::new(48_000.0, 513)), &controls);
    let mut input = vec![noise(24_000, 5)];
    input[0][3000] = f32::NAN;
    input[0][3001] = f32::INFINITY;
    input[0][3002] = f32::NEG_INFINITY;
    let output = stream(&mut engine, &input, BlockSizes::Fixed(256), &controls);
    assert!(output[0].iter().all(|y| y.is_finite()));
    assert_eq!(engine.stats().snapshot().nonfinite_input, 3);
}

#[test]
fn reset_forgets_the_past() {
    let controls = Controls::default();
    let mut engine = engine(44_100, 2, 256, Pacing::Offline, identity(), &controls);
    let loud: Vec<Vec<f32>> = (0..2).map(|c| noise(10_000, c)).collect();
    stream(&mut engine, &loud, BlockSizes::Fixed(256), &controls);
    engine.reset();
    let silence = vec![vec![0.0f32; 10_000]; 2];
    let output = stream(&mut engine, &silence, BlockSizes::Fixed(256), &controls);
    assert!(output.iter().flatten().all(|&y| y == 0.0), "nothing from before the reset leaks out");
}

#[test]
fn levels_and_spectrum_are_published_for_the_editor() {
    let controls = Controls::default();
    let mut engine = engine(48_000, 2, 256, Pacing::Offline, identity(), &controls);
    let sine: Vec<f32> = (0..48_000).map(|n| 0.5 * (2.0 * std::f32::consts::PI * 1000.0 * n as f32 / 48_000.0).sin()).collect();
    let input = vec![sine.clone(), sine];
    stream(&mut engine, &input, BlockSizes::Fixed(256), &controls);
    let stats = engine.stats();
    for c in 0..2 {
        let (peak_in, peak_out) = (stats.input_peak[c].load(Relaxed), stats.output_peak[c].load(Relaxed));
        assert!((peak_in - 0.5).abs() < 0.01, "input peak {peak_in}");
        assert!((peak_out - 0.5).abs() < 0.01, "output peak {peak_out}");
    }
    let read = |s: &restyle::stats::Spectrum| s.0.iter().map(|v| v.load(Relaxed)).collect::<Vec<f32>>();
    let (bands_in, bands_out) = (read(&stats.spectrum_in), read(&stats.spectrum_out));
    let loudest = (0..bands_in.len()).max_by(|&a, &b| bands_in[a].total_cmp(&bands_in[b])).unwrap();
    // 64 log-spaced bands from 40 Hz to 20 kHz: 1 kHz falls in band 33.
    assert_eq!(loudest, (64.0 * (1000.0f32 / 40.0).ln() / (500.0f32).ln()) as usize);
    assert!(bands_in[loudest] > -15.0 && bands_in[loudest] < 0.0, "{} dB", bands_in[loudest]);
    assert!((bands_out[loudest] - bands_in[loudest]).abs() < 0.5, "identity: out {} in {}", bands_out[loudest], bands_in[loudest]);
    assert!(bands_in[5] < bands_in[loudest] - 40.0, "far from the tone is quiet");
}

/// How [`FaultyModel`] misbehaves.
#[derive(Clone, Copy, Debug)]
enum Misbehaviour {
    Panic,
    NonFinite,
    Error,
}

/// Halves every bin, except on calls `from..to`, where it misbehaves.
struct FaultyModel {
    calls: usize,
    faulty: std::ops::Range<usize>,
    misbehaviour: Misbehaviour,
    inner: GainModel,
}

impl FrameModel for FaultyModel {
    fn name(&self) -> &str {
        "faulty"
    }
    fn styles(&self) -> &[String] {
        self.inner.styles()
    }
    fn run(&mut self, batch: &FrameBatch<'_>, out: &mut [f32]) -> anyhow::Result<()> {
        self.calls += 1;
        if !self.faulty.contains(&(self.calls - 1)) {
            return self.inner.run(batch, out);
        }
        match self.misbehaviour {
            Misbehaviour::Panic => panic!("a model that panics (on purpose, in a test)"),
            Misbehaviour::NonFinite => {
                self.inner.run(batch, out)?;
                out[7] = f32::NAN;
                out[300] = f32::INFINITY;
                Ok(())
            }
            Misbehaviour::Error => anyhow::bail!("a model that fails (on purpose, in a test)"),
        }
    }
}

/// A model that panics, returns NaN or infinity, or fails, costs only the frames it fails on:
/// they play dry (a panicking model is not called again), the failures are counted, the status
/// line says what happened in words, and the audio thread never waits.
#[test]
fn a_failing_model_plays_dry_counts_the_frames_and_says_why() {
    use restyle::editor::status::StatusLine;
    use restyle::stats::{ModelFault, Status};

    let controls = Controls::default();
    let seconds = 2;
    for (misbehaviour, fault, words) in [
        (Misbehaviour::NonFinite, ModelFault::NonFinite, "NaN or infinite values on 40 frames"),
        (Misbehaviour::Error, ModelFault::Error, "failed on 40 frames"),
        (Misbehaviour::Panic, ModelFault::Panicked, "crashed"),
    ] {
        let model = FaultyModel {
            calls: 0,
            faulty: 100..140,
            misbehaviour,
            inner: GainModel { gain: 0.5, styles: vec!["Half".into()] },
        };
        let mut engine = engine(48_000, 2, 128, Pacing::Offline, Box::new(model), &controls);
        let input: Vec<Vec<f32>> = (0..2).map(|c| noise(48_000 * seconds, c + 11)).collect();
        let started = Instant::now();
        let output = stream(&mut engine, &input, BlockSizes::Fixed(128), &controls);
        let took = started.elapsed();
        let stats = engine.stats().snapshot();
        assert!(output.iter().flatten().all(|y| y.is_finite()), "{misbehaviour:?}: non-finite output");
        assert!(took < Duration::from_secs(20), "{misbehaviour:?}: {took:?} for {seconds} s of audio");
        assert_eq!(stats.model_fault, fault, "{misbehaviour:?}: {stats:?}");

        // The last half second: the halved signal if the model came back, the dry signal if not.
        let latency = engine.latency();
        let tail = output[0].len() - 24_000..output[0].len();
        let rms = |x: &[f32]| (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
        let ratio = rms(&output[0][tail.clone()]) / rms(&input[0][tail.start - latency..tail.end - latency]);
        let frames = stats.frames_submitted;
        match misbehaviour {
            Misbehaviour::Panic => {
                assert_eq!(stats.failed_frames, frames - 100, "every frame from the panic on fails: {stats:?}");
                let err = tail.map(|n| (output[0][n] - input[0][n - latency]).abs()).fold(0.0, f32::max);
                assert!(err < 1e-4, "after the panic the output is the dry signal: error {err}");
            }
            _ => {
                assert_eq!(stats.failed_frames, 40, "{misbehaviour:?}: {stats:?}");
                assert!((ratio - 0.5).abs() < 0.02, "{misbehaviour:?}: the model is back afterwards: level ratio {ratio}");
            }
        }
        let line = StatusLine::new(engine.stats(), &Status::default());
        let error = line.error.unwrap_or_default();
        assert!(error.contains(words), "{misbehaviour:?}: the status line says {error:?}");
    }
}

/// An offline render (a bounce) with a model that is stuck waits for it once, then plays dry
/// without waiting until a result comes back: it ends, where two seconds a hop would take hours.
#[test]
fn an_offline_render_with_a_stuck_model_ends_playing_dry() {
    let controls = Controls::default();
    let model = Box::new(SlowModel { delay: Duration::from_secs(30), inner: IdentityModel::default() });
    let mut engine = engine(48_000, 2, 512, Pacing::Offline, model, &controls);
    let input: Vec<Vec<f32>> = (0..2).map(|c| noise(24_000, c + 21)).collect();
    let started = Instant::now();
    let output = stream(&mut engine, &input, BlockSizes::Fixed(512), &controls);
    let took = started.elapsed();
    let stats = engine.stats().snapshot();
    assert!(took < Duration::from_secs(6), "half a second of audio took {took:?} with a stuck model");
    assert!(stats.late_frames > 150, "the frames played dry are counted: {stats:?}");
    for c in 0..2 {
        let err = delayed_error(&input[c], &output[c], engine.latency());
        assert!(err < 1e-4, "the stuck model's frames play dry: error {err}");
    }
}

/// Fails on its third verdict by panicking.
struct PanickingMeter {
    frames: usize,
}

impl restyle::model::StyleMeter for PanickingMeter {
    fn push(&mut self, _logmag: &[f32], confidences: &mut [f32]) -> anyhow::Result<bool> {
        self.frames += 1;
        assert!(self.frames < 3, "a style meter that panics (on purpose, in a test)");
        confidences[0] = 1.0;
        Ok(true)
    }
}

/// A style meter that panics is switched off; restyling goes on as before.
#[test]
fn a_panicking_style_meter_is_switched_off_and_restyling_goes_on() {
    let controls = Controls::default();
    let models = restyle::model::Models {
        generator: Box::new(GainModel { gain: 0.5, styles: vec!["Half".into()] }),
        meter: Some(Box::new(PanickingMeter { frames: 0 })),
    };
    let mut engine = Engine::new(EngineConfig { sample_rate: 48_000, channels: 2, max_block: 256, pacing: Pacing::Offline, latency_mode: LatencyMode::Lowest }, models).unwrap();
    engine.jump_to(&controls);
    let input: Vec<Vec<f32>> = (0..2).map(|c| noise(48_000, c + 31)).collect();
    let output = stream(&mut engine, &input, BlockSizes::Fixed(256), &controls);
    let stats = engine.stats();
    let snapshot = stats.snapshot();
    assert_eq!((snapshot.failed_frames, snapshot.late_frames), (0, 0), "{snapshot:?}");
    assert_eq!(stats.style_estimates.load(Relaxed), 2, "the meter's verdicts before it panicked");
    let tail = 24_000..48_000;
    let latency = engine.latency();
    let rms = |x: &[f32]| (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
    let ratio = rms(&output[0][tail.clone()]) / rms(&input[0][tail.start - latency..tail.end - latency]);
    assert!((ratio - 0.5).abs() < 0.02, "the model still restyles after the meter panicked: level ratio {ratio}");
}
