//! Offline rendering through the real engine, with the host's block sizes simulated. Used by the
//! command-line renderer, the demo and the tests.

use std::time::Instant;

use anyhow::Result;
use restyle_dsp::noise::Xorshift;

use crate::engine::{Controls, Engine, EngineConfig, LatencyMode, Pacing};
use crate::model::Models;
use crate::stats::StatsSnapshot;

/// How the simulated host splits the audio into blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockSizes {
    Fixed(usize),
    /// Sizes drawn uniformly from `1..=max`, repeatably from `seed`.
    Random { max: usize, seed: u64 },
}

impl BlockSizes {
    /// The largest block the schedule can produce (what a host would announce).
    pub fn max(&self) -> usize {
        match *self {
            BlockSizes::Fixed(n) | BlockSizes::Random { max: n, .. } => n.max(1),
        }
    }

    /// An endless iterator of block sizes.
    pub fn iter(&self) -> impl Iterator<Item = usize> {
        let schedule = *self;
        let mut source = Xorshift::new(match schedule {
            BlockSizes::Random { seed, .. } => seed,
            BlockSizes::Fixed(_) => 0,
        });
        std::iter::repeat_with(move || match schedule {
            BlockSizes::Fixed(n) => n.max(1),
            BlockSizes::Random { max, .. } => (source.next_u64() % max.max(1) as u64) as usize + 1,
        })
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RenderSettings {
    pub controls: Controls,
    pub blocks: BlockSizes,
    pub pacing: Pacing,
    /// Deliver blocks on a real-time clock, as an audio interface would, instead of as fast as
    /// possible: what a live performance sees (use with [`Pacing::RealTime`]).
    pub paced: bool,
    pub latency_mode: LatencyMode,
}

/// What a render did, as `restyle render --json` prints it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RenderReport {
    pub latency_samples: usize,
    pub latency_ms: f64,
    pub pipeline_delay_hops: usize,
    pub latency_mode: LatencyMode,
    pub sample_rate: u32,
    pub channels: usize,
    /// Sample frames rendered (per channel).
    pub frames: usize,
    pub late_frames: u64,
    pub failed_frames: u64,
    pub provider: String,
    pub model: String,
    /// The style meter's average verdict per style (empty without a meter).
    pub style_confidence: std::collections::BTreeMap<String, f32>,
    /// Wall-clock time of the render.
    pub seconds: f64,
    /// Wall-clock time over audio time: below 1 is faster than real time.
    pub realtime_factor: f64,
    pub stats: StatsSnapshot,
}

/// Renders `input` (`input[c]` is channel `c`) and returns output aligned with it (the engine's
/// latency removed, as a host's delay compensation would), same length.
pub fn render(
    input: &[Vec<f32>],
    sample_rate: u32,
    settings: &RenderSettings,
    models: impl Into<Models>,
    provider: &str,
    mut progress: impl FnMut(f64),
) -> Result<(Vec<Vec<f32>>, RenderReport)> {
    let channels = input.len();
    let frames = input.first().map_or(0, Vec::len);
    let config = EngineConfig { sample_rate, channels, max_block: settings.blocks.max(), pacing: settings.pacing, latency_mode: settings.latency_mode };
    let mut engine = Engine::new(config, models)?;
    engine.jump_to(&settings.controls);
    let latency = engine.latency();
    let total = frames + latency;
    let mut output: Vec<Vec<f32>> = (0..channels).map(|c| {
        let mut v = input[c].clone();
        v.resize(total, 0.0);
        v
    }).collect();

    if settings.paced {
        crate::priority::promote(crate::priority::SIMULATED_AUDIO);
    }
    let started = Instant::now();
    let mut start = 0;
    for size in settings.blocks.iter() {
        if start >= total {
            break;
        }
        let end = (start + size).min(total);
        if settings.paced {
            let due = started + std::time::Duration::from_secs_f64(start as f64 / sample_rate as f64);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        let mut block: Vec<&mut [f32]> = output.iter_mut().map(|c| &mut c[start..end]).collect();
        engine.process(&mut block, &settings.controls);
        start = end;
        progress(start as f64 / total as f64);
    }
    let seconds = started.elapsed().as_secs_f64();
    for channel in &mut output {
        channel.drain(..latency);
    }
    let stats = engine.stats().snapshot();
    let report = RenderReport {
        latency_samples: latency,
        latency_ms: latency as f64 * 1000.0 / sample_rate as f64,
        pipeline_delay_hops: engine.pipeline_delay(),
        latency_mode: settings.latency_mode,
        sample_rate,
        channels,
        frames,
        late_frames: stats.late_frames,
        failed_frames: stats.failed_frames,
        provider: provider.to_owned(),
        model: engine.model_name().to_owned(),
        style_confidence: if engine.stats().style_estimates.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            Default::default()
        } else {
            engine.styles().iter().cloned().zip(engine.stats().mean_style_confidence()).collect()
        },
        seconds,
        realtime_factor: seconds / (frames.max(1) as f64 / sample_rate as f64),
        stats,
    };
    Ok((output, report))
}
