//! `cargo xtask demo`: renders the plugin's embedded demo clip through the default model and
//! style with the plugin's own engine, and writes what a person wants to hear and see.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::{Context, Result};
use restyle::engine::{Controls, LatencyMode, Pacing};
use restyle::model::MAX_STYLES;
use restyle::params::style_weights;
use restyle::render::{render, BlockSizes, RenderSettings};
use restyle::wav::{self, Audio};
use restyle_dsp::features::log_magnitude;
use restyle_dsp::stft::Stft;
use restyle_dsp::window::WindowShape;

/// The style the demo restyles the piano clip toward.
const DEMO_STYLE: &str = "Strings";
/// Spectrogram analysis: 2048-point frames (23 Hz bins at 48 kHz), a column every 512 samples.
const SPECTROGRAM_FFT: usize = 2048;
const SPECTROGRAM_HOP: usize = 512;
/// Rows per panel, log-spaced over this range in Hz.
const ROWS: usize = 256;
const RANGE_HZ: (f32, f32) = (40.0, 20_000.0);
/// The colour scale spans this many dB below the loudest bin of the input.
const DYNAMIC_RANGE_DB: f32 = 90.0;

pub fn run(root: &Path) -> Result<()> {
    let out_dir = root.join("target").join("demo");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let clip = restyle::demo::clip()?;
    let loaded = restyle::loader::load_default(restyle::onnx::Provider::Cpu);
    anyhow::ensure!(loaded.problem.is_none(), "the default model pack did not load: {}", loaded.problem.unwrap_or_default());
    // The clip is piano, so it goes toward the style the default pack renders best.
    let styles = loaded.models.generator.styles().to_vec();
    let slot = styles.iter().position(|s| s == DEMO_STYLE).unwrap_or(0);
    let style = styles.get(slot).cloned().unwrap_or_default();
    let controls = Controls { style: style_weights(slot, &[0.0; MAX_STYLES], styles.len()), ..Controls::default() };
    let settings = RenderSettings { controls, blocks: BlockSizes::Fixed(256), pacing: Pacing::Offline, paced: false, latency_mode: LatencyMode::Lowest };
    let (output, report) = render(&clip.channels, clip.sample_rate, &settings, loaded.models, loaded.provider, |_| {})?;

    let input_path = out_dir.join("demo_in.wav");
    let output_path = out_dir.join("demo_out.wav");
    let image_path = out_dir.join("demo_spectrogram.png");
    wav::write(&input_path, &clip)?;
    wav::write(&output_path, &Audio { sample_rate: clip.sample_rate, channels: output.clone() })?;
    write_spectrograms(&image_path, clip.sample_rate, &clip.channels[0], &output[0])?;

    println!("Rendered the demo clip through '{}' (style '{style}'):", report.model);
    println!("  {} (input)", input_path.display());
    println!("  {} (output)", output_path.display());
    println!("  {} (spectrogram: input above, output below)", image_path.display());
    println!(
        "  latency {} samples ({:.2} ms), {} late frames, {:.3}x real time",
        report.latency_samples, report.latency_ms, report.late_frames, report.realtime_factor
    );
    Ok(())
}

/// Log-magnitude columns (dB) of `signal`, one per hop.
fn spectrogram(signal: &[f32]) -> Result<Vec<Vec<f32>>> {
    let mut stft = Stft::new(WindowShape::SqrtHann, SPECTROGRAM_FFT, SPECTROGRAM_HOP, 1).context("spectrogram STFT")?;
    let mut columns = Vec::new();
    let mut buffer = signal.to_vec();
    let mut logmag = vec![0.0; stft.bins()];
    stft.process(&mut [&mut buffer[..]], |_, spectra| {
        log_magnitude(&spectra[0], &mut logmag);
        // Natural log of the magnitude to dB.
        columns.push(logmag.iter().map(|l| l * 20.0 / std::f32::consts::LN_10).collect());
    });
    Ok(columns)
}

fn write_spectrograms(path: &Path, sample_rate: u32, input: &[f32], output: &[f32]) -> Result<()> {
    let panels = [spectrogram(input)?, spectrogram(output)?];
    let top = panels[0].iter().flatten().fold(f32::MIN, |m, &v| m.max(v));
    let width = panels[0].len().max(1);
    let gap = 6;
    let height = 2 * ROWS + gap;
    let bins = SPECTROGRAM_FFT / 2 + 1;
    let hz_per_bin = sample_rate as f32 / SPECTROGRAM_FFT as f32;
    let mut pixels = vec![0u8; width * height * 3];
    for (p, columns) in panels.iter().enumerate() {
        for row in 0..ROWS {
            // Low frequencies at the bottom of each panel.
            let hz = RANGE_HZ.0 * (RANGE_HZ.1 / RANGE_HZ.0).powf((ROWS - 1 - row) as f32 / (ROWS - 1) as f32);
            let bin = ((hz / hz_per_bin).round() as usize).min(bins - 1);
            let y = p * (ROWS + gap) + row;
            for (x, column) in columns.iter().enumerate().take(width) {
                let level = ((column[bin] - top + DYNAMIC_RANGE_DB) / DYNAMIC_RANGE_DB).clamp(0.0, 1.0);
                pixels[(y * width + x) * 3..][..3].copy_from_slice(&colour(level));
            }
        }
    }
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), width as u32, height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&pixels).with_context(|| format!("cannot write {}", path.display()))
}

/// A dark-to-bright colour scale (black, purple, orange, pale yellow) for `level` in 0..=1.
fn colour(level: f32) -> [u8; 3] {
    const STOPS: [[f32; 3]; 4] = [[0.0, 0.0, 4.0], [120.0, 28.0, 109.0], [237.0, 105.0, 37.0], [252.0, 255.0, 164.0]];
    let t = level * (STOPS.len() - 1) as f32;
    let i = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - i as f32;
    std::array::from_fn(|c| (STOPS[i][c] + (STOPS[i + 1][c] - STOPS[i][c]) * f) as u8)
}
