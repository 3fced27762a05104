//! The soak run: the engine fed for an hour (by default) of audio while its parameters keep
//! changing, as in a long session where a producer automates everything. It looks for what only
//! time shows: memory that grows, late frames that start to pile up, output that goes bad after
//! millions of frames. A command, not a test: it takes minutes and reports figures.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use restyle_dsp::noise::Xorshift;
use serde::Serialize;

use crate::engine::{Controls, Engine, EngineConfig, LatencyMode, Pacing};
use crate::model::{Models, MAX_STYLES};
use crate::params::style_weights;
use crate::stats::StatsSnapshot;

#[derive(Debug, Clone, Copy)]
pub struct SoakSettings {
    pub sample_rate: u32,
    pub channels: usize,
    pub block: usize,
    pub latency_mode: LatencyMode,
    /// Audio to push through, in seconds.
    pub seconds: f64,
    /// Blocks are delivered on a clock this many times faster than real time, so an hour of
    /// audio takes minutes while the inference thread still has to keep up with a deadline.
    pub speed: f64,
    /// Audio time between parameter changes.
    pub change_every: Duration,
    /// Audio time between host resets (transport restarts).
    pub reset_every: Duration,
}

/// One progress line's figures.
#[derive(Debug, Clone, Serialize)]
pub struct SoakPoint {
    pub audio_seconds: f64,
    pub resident_mib: Option<f64>,
    pub late_frames: u64,
    pub failed_frames: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    pub audio_seconds: f64,
    pub wall_seconds: f64,
    pub speed: f64,
    pub block: usize,
    pub sample_rate: u32,
    pub latency_samples: usize,
    pub latency_mode: LatencyMode,
    pub pipeline_delay_hops: usize,
    pub parameter_changes: u64,
    pub resets: u64,
    /// Resident memory once the engine has run for a minute of audio (its buffers and the
    /// model's arenas in place), and at the end.
    pub resident_mib_start: Option<f64>,
    pub resident_mib_end: Option<f64>,
    /// Output samples that were not finite (must be 0) and the largest output magnitude.
    pub nonfinite_output: u64,
    pub output_peak: f32,
    /// The slowest `process` call, in microseconds.
    pub slowest_block_us: f64,
    pub stats: StatsSnapshot,
    pub progress: Vec<SoakPoint>,
}

/// The process's resident memory in MiB (Linux; `None` elsewhere).
pub fn resident_mib() -> Option<f64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system setting.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    (page > 0).then(|| pages * page as f64 / (1024.0 * 1024.0))
}

/// Random but plausible automation: a style, some blends, a mix often at its ends, gains within
/// ±12 dB, bypass now and then.
fn random_controls(random: &mut Xorshift, styles: usize) -> Controls {
    let mut unit = || (random.next_u64() >> 11) as f32 / (1u64 << 53) as f32;
    let selected = (unit() * styles as f32) as usize;
    let blends: [f32; MAX_STYLES] = std::array::from_fn(|_| if unit() < 0.3 { unit() } else { 0.0 });
    let mix = match unit() {
        u if u < 0.1 => 0.0,
        u if u < 0.3 => 1.0,
        _ => unit(),
    };
    let db = |u: f32| 10f32.powf((u * 24.0 - 12.0) / 20.0);
    Controls {
        style: style_weights(selected, &blends, styles),
        mix,
        input_gain: db(unit()),
        output_gain: db(unit()),
        bypass: unit() < 0.05,
    }
}

/// Runs the soak, calling `progress` every `report_every` of audio.
pub fn soak(
    settings: &SoakSettings,
    models: impl Into<Models>,
    input: &[f32],
    report_every: Duration,
    mut progress: impl FnMut(&SoakPoint),
) -> Result<SoakReport> {
    ensure!(!input.is_empty(), "the soak needs some input audio");
    ensure!(settings.speed > 0.0, "the speed must be above 0");
    let config = EngineConfig {
        sample_rate: settings.sample_rate,
        channels: settings.channels,
        max_block: settings.block,
        pacing: Pacing::RealTime,
        latency_mode: settings.latency_mode,
    };
    let mut engine = Engine::new(config, models)?;
    let styles = engine.styles().len().max(1);
    let sr = settings.sample_rate as f64;
    let samples_of = |d: Duration| ((d.as_secs_f64() * sr) as u64).max(1);
    let (total, change_every, reset_every, report_every) = (
        (settings.seconds * sr) as u64,
        samples_of(settings.change_every),
        samples_of(settings.reset_every),
        samples_of(report_every),
    );
    let warm_up = samples_of(Duration::from_secs(60)).min(total / 2);

    let mut random = Xorshift::new(0x50a4);
    let mut controls = Controls::default();
    let mut block = vec![vec![0.0f32; settings.block]; settings.channels];
    let mut report = SoakReport {
        audio_seconds: 0.0,
        wall_seconds: 0.0,
        speed: settings.speed,
        block: settings.block,
        sample_rate: settings.sample_rate,
        latency_samples: engine.latency(),
        latency_mode: settings.latency_mode,
        pipeline_delay_hops: engine.pipeline_delay(),
        parameter_changes: 0,
        resets: 0,
        resident_mib_start: None,
        resident_mib_end: None,
        nonfinite_output: 0,
        output_peak: 0.0,
        slowest_block_us: 0.0,
        stats: engine.stats().snapshot(),
        progress: Vec::new(),
    };
    crate::priority::promote(crate::priority::SIMULATED_AUDIO);
    let started = Instant::now();
    let mut done = 0u64;
    while done < total {
        let len = settings.block.min((total - done) as usize);
        let due = started + Duration::from_secs_f64(done as f64 / sr / settings.speed);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        for (c, channel) in block.iter_mut().enumerate() {
            for (i, x) in channel[..len].iter_mut().enumerate() {
                // Each channel reads the clip from a different place, so they differ.
                let at = (done as usize + i + c * input.len() / 3) % input.len();
                *x = input[at];
            }
        }
        let mut channels: Vec<&mut [f32]> = block.iter_mut().map(|c| &mut c[..len]).collect();
        let call = Instant::now();
        engine.process(&mut channels, &controls);
        report.slowest_block_us = report.slowest_block_us.max(call.elapsed().as_secs_f64() * 1e6);
        for y in channels.iter().flat_map(|c| c.iter()) {
            if y.is_finite() {
                report.output_peak = report.output_peak.max(y.abs());
            } else {
                report.nonfinite_output += 1;
            }
        }

        let before = done;
        done += len as u64;
        let crossed = |every: u64| done / every != before / every;
        if crossed(change_every) {
            controls = random_controls(&mut random, styles);
            report.parameter_changes += 1;
        }
        if crossed(reset_every) {
            engine.reset();
            report.resets += 1;
        }
        if before < warm_up && done >= warm_up {
            report.resident_mib_start = resident_mib();
        }
        if crossed(report_every) || done == total {
            let stats = engine.stats().snapshot();
            let point = SoakPoint {
                audio_seconds: done as f64 / sr,
                resident_mib: resident_mib(),
                late_frames: stats.late_frames,
                failed_frames: stats.failed_frames,
            };
            progress(&point);
            report.progress.push(point);
        }
    }
    report.audio_seconds = done as f64 / sr;
    report.wall_seconds = started.elapsed().as_secs_f64();
    report.resident_mib_end = resident_mib();
    report.stats = engine.stats().snapshot();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::IdentityModel;

    #[test]
    fn a_short_soak_changes_parameters_resets_and_reports() {
        let settings = SoakSettings {
            sample_rate: 48_000,
            channels: 2,
            block: 128,
            latency_mode: LatencyMode::Lowest,
            seconds: 2.0,
            speed: 1000.0,
            change_every: Duration::from_millis(100),
            reset_every: Duration::from_millis(500),
        };
        let input: Vec<f32> = (0..4800).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
        let mut lines = 0;
        let report = soak(&settings, Box::new(IdentityModel::default()), &input, Duration::from_millis(500), |_| lines += 1)
            .expect("the soak runs");
        assert_eq!(report.audio_seconds, 2.0);
        assert_eq!((report.parameter_changes, report.resets, lines), (20, 4, 4));
        assert_eq!(report.nonfinite_output, 0);
        assert!(report.output_peak > 0.05 && report.output_peak < 10.0, "peak {}", report.output_peak);
        assert!(report.resident_mib_start.is_some() && report.resident_mib_end.is_some());
    }
}
