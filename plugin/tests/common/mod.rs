//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use restyle::engine::{Controls, Engine, EngineConfig, LatencyMode, Pacing};
use restyle::model::{FrameBatch, FrameModel, IdentityModel};
use restyle::render::BlockSizes;

pub use restyle_dsp::noise::white_noise as noise;

/// Streams `input` through `engine` in blocks from `blocks`, returning the raw output (latency
/// not removed).
pub fn stream(engine: &mut Engine, input: &[Vec<f32>], blocks: BlockSizes, controls: &Controls) -> Vec<Vec<f32>> {
    let mut output = input.to_vec();
    let len = input[0].len();
    let mut start = 0;
    for size in blocks.iter() {
        if start >= len {
            break;
        }
        let end = (start + size).min(len);
        let mut block: Vec<&mut [f32]> = output.iter_mut().map(|c| &mut c[start..end]).collect();
        engine.process(&mut block, controls);
        start = end;
    }
    output
}

pub fn engine(sample_rate: u32, channels: usize, max_block: usize, pacing: Pacing, model: Box<dyn FrameModel>, controls: &Controls) -> Engine {
    let mut engine = Engine::new(EngineConfig { sample_rate, channels, max_block, pacing, latency_mode: LatencyMode::Lowest }, model).unwrap();
    engine.jump_to(controls);
    engine
}

pub fn identity() -> Box<dyn FrameModel> {
    Box::new(IdentityModel::default())
}

/// The identity, but taking `delay` per call: a model too slow for real time.
pub struct SlowModel {
    pub delay: Duration,
    pub inner: IdentityModel,
}

impl FrameModel for SlowModel {
    fn name(&self) -> &str {
        "slow"
    }
    fn styles(&self) -> &[String] {
        self.inner.styles()
    }
    fn run(&mut self, batch: &FrameBatch<'_>, out: &mut [f32]) -> anyhow::Result<()> {
        thread::sleep(self.delay);
        self.inner.run(batch, out)
    }
}

/// Largest absolute difference between `output[n]` and `input[n - delay]` (zero before `delay`).
pub fn delayed_error(input: &[f32], output: &[f32], delay: usize) -> f32 {
    output
        .iter()
        .enumerate()
        .map(|(n, &y)| (y - if n >= delay { input[n - delay] } else { 0.0 }).abs())
        .fold(0.0, f32::max)
}

/// The test fixtures (`tests/fixtures/make_fixtures.py` writes them).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Fails the test (never skips it) when ONNX Runtime cannot be loaded.
pub fn require_runtime() {
    if let Err(error) = restyle::runtime::runtime() {
        panic!("these tests need ONNX Runtime: run `cargo xtask fetch-ort`.\n{error}");
    }
}

/// A copy of the tiny pack in a temporary folder, with `replace` files swapped in.
pub fn tiny_pack_with(test: &str, replace: &[(&str, Vec<u8>)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("restyle-onnx-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["manifest.json", "generator.onnx", "classifier.onnx"] {
        std::fs::copy(fixtures().join("tiny").join(file), dir.join(file)).unwrap();
    }
    for (file, bytes) in replace {
        std::fs::write(dir.join(file), bytes).unwrap();
    }
    dir
}
