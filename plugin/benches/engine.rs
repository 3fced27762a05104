//! `cargo bench -p restyle`: the audio thread's cost per block and the whole engine's real-time
//! factor. It prints figures; it asserts nothing about speed.

use std::time::{Duration, Instant};

use restyle::engine::{Controls, Engine, EngineConfig, LatencyMode, Pacing};
use restyle::model::{IdentityModel, Models};
use restyle::render::{render, BlockSizes, RenderSettings};
use restyle_dsp::noise::white_noise as noise;
use restyle::loader::load_default;
use restyle::onnx::Provider;

const RATE: u32 = 48_000;

/// CPU time (user + system) this process has used, from /proc (Linux).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / 100.0))
}

fn audio_thread_per_block(block: usize, model: impl Into<Models>, label: &str) {
    let controls = Controls::default();
    let config = EngineConfig { sample_rate: RATE, channels: 2, max_block: block, pacing: Pacing::RealTime, latency_mode: LatencyMode::Lowest };
    let mut engine = Engine::new(config, model).expect("engine");
    engine.jump_to(&controls);
    let seconds = 20;
    let mut audio: Vec<Vec<f32>> = (1..=2).map(|c| noise(RATE as usize * seconds, c)).collect();
    let mut times = Vec::with_capacity(audio[0].len() / block);
    for start in (0..audio[0].len() - block).step_by(block) {
        let (l, r) = audio.split_at_mut(1);
        let mut io = [&mut l[0][start..start + block], &mut r[0][start..start + block]];
        let t = Instant::now();
        engine.process(&mut io, &controls);
        times.push(t.elapsed());
        // Pace roughly like a host would, so the inference thread keeps up as it would live.
        std::thread::sleep(Duration::from_micros(20));
    }
    times.sort();
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    let p99 = times[times.len() * 99 / 100];
    let max = *times.last().expect("blocks");
    let budget = Duration::from_secs_f64(block as f64 / RATE as f64);
    println!(
        "audio thread, {label}, 48 kHz stereo, {block}-sample blocks: mean {:.1} us, p99 {:.1} us, max {:.1} us (budget {:.0} us; mean is {:.2}% of it)",
        mean.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        max.as_secs_f64() * 1e6,
        budget.as_secs_f64() * 1e6,
        mean.as_secs_f64() / budget.as_secs_f64() * 100.0,
    );
}

fn whole_engine(model: impl Into<Models>, provider: &str, label: &str) {
    let seconds = 60;
    let input: Vec<Vec<f32>> = (1..=2).map(|c| noise(RATE as usize * seconds, c)).collect();
    let settings = RenderSettings { controls: Controls::default(), blocks: BlockSizes::Fixed(512), pacing: Pacing::Offline, paced: false, latency_mode: LatencyMode::Lowest };
    let cpu_before = cpu_time();
    let (_, report) = render(&input, RATE, &settings, model, provider, |_| {}).expect("render");
    let cpu = cpu_time().zip(cpu_before).map(|(after, before)| (after - before).as_secs_f64());
    println!(
        "whole engine, {label}, 48 kHz stereo, {seconds} s: real-time factor {:.4} (wall), {} (CPU time of both threads / audio time); inference mean {:.4} ms, max {:.4} ms per frame; {} late frames",
        report.realtime_factor,
        cpu.map_or("n/a".to_owned(), |c| format!("{:.4}", c / seconds as f64)),
        report.stats.inference_ms_mean,
        report.stats.inference_ms_max,
        report.late_frames,
    );
}

fn main() {
    // `cargo test --benches` runs this with --bench too; only measure under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let default_pack = || {
        let loaded = load_default(Provider::Cpu);
        assert!(loaded.problem.is_none(), "the default pack must load: {:?}", loaded.problem);
        loaded
    };
    audio_thread_per_block(64, Box::new(IdentityModel::default()), "identity model");
    audio_thread_per_block(64, default_pack().models, "default pack (int8 ONNX)");
    audio_thread_per_block(512, Box::new(IdentityModel::default()), "identity model");
    whole_engine(Box::new(IdentityModel::default()), "none", "identity model");
    let loaded = default_pack();
    whole_engine(loaded.models, loaded.provider, "default pack (int8 ONNX)");
}
