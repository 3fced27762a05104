//! `cargo bench -p restyle --bench inference`: per-frame generator time, int8 against fp32, on
//! one CPU thread, batch 2 (stereo), fed the demo clip's real frames. Prints figures only.
//!
//! The int8 generator is the shipped one; the fp32 reference is the pipeline's export before
//! quantization (`models/data/export/generator_fp32.onnx`, made by `models/` and not committed).

use std::borrow::Cow;
use std::path::Path;
use std::time::Instant;

use restyle::engine::{N_FFT, HOP};
use restyle::model::{FrameBatch, FrameModel, StyleWeights};
use restyle::onnx::{OnnxGenerator, Provider};
use restyle::pack::Pack;
use restyle_dsp::features::log_magnitude;
use restyle_dsp::stft::Stft;
use restyle_dsp::window::WindowShape;

const PACK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/packs/default");
const FP32: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/data/export/generator_fp32.onnx");

/// The demo clip's log-magnitude frames, as the engine would send them.
fn frames() -> Vec<Vec<f32>> {
    let clip = restyle::demo::clip().expect("demo clip");
    let mut stft = Stft::new(WindowShape::Asymmetric, N_FFT, HOP, 1).expect("stft");
    let mut signal = clip.channels[0].clone();
    let mut frames = Vec::new();
    stft.process(&mut [&mut signal[..]], |_, spectra| {
        let mut logmag = vec![0.0; N_FFT / 2 + 1];
        log_magnitude(&spectra[0], &mut logmag);
        frames.push(logmag);
    });
    frames
}

fn measure(label: &str, mut generator: OnnxGenerator, frames: &[Vec<f32>]) {
    let mut style = StyleWeights::default();
    style[1] = 1.0;
    let bins = N_FFT / 2 + 1;
    let mut input = vec![0.0; 2 * bins];
    let mut out = vec![0.0; 2 * bins];
    let mut times = Vec::with_capacity(frames.len() * 2);
    for (i, frame) in frames.iter().cycle().take(frames.len() * 2).enumerate() {
        input[..bins].copy_from_slice(frame);
        input[bins..].copy_from_slice(&frames[(i + 7) % frames.len()]);
        let batch = FrameBatch { logmag: &input, channels: 2, style: &style };
        let started = Instant::now();
        generator.run(&batch, &mut out).expect("inference");
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    // The first calls warm the session up; a plugin makes them before it plays.
    times.drain(..100);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    times.sort_by(f64::total_cmp);
    let p99 = times[times.len() * 99 / 100];
    let max = times[times.len() - 1];
    let hop_ms = HOP as f64 / 48.0;
    println!(
        "generator {label}: {} stereo frames, mean {mean:.4} ms, p99 {p99:.4} ms, max {max:.4} ms per frame (one hop is {hop_ms:.2} ms: mean load {:.1}% of one core)",
        times.len(),
        mean / hop_ms * 100.0
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let frames = frames();
    let pack = Pack::embedded().expect("the default pack");
    measure("int8 (shipped)", OnnxGenerator::new(&pack, Provider::Cpu).expect("int8 generator"), &frames);
    match std::fs::read(FP32) {
        Ok(fp32) => {
            let dir = Path::new(PACK);
            let manifest = std::fs::read(dir.join("manifest.json")).expect("manifest");
            let classifier = std::fs::read(dir.join("classifier.onnx")).expect("classifier");
            let pack = Pack::from_parts("fp32 reference", &manifest, Cow::Owned(fp32), Cow::Owned(classifier)).expect("fp32 pack");
            measure("fp32 (reference)", OnnxGenerator::new(&pack, Provider::Cpu).expect("fp32 generator"), &frames);
        }
        Err(error) => println!("generator fp32: not measured, {FP32}: {error} (run the models/ pipeline to export it)"),
    }
}
