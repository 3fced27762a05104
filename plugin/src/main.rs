//! `restyle`: renders audio files through the plugin's own engine, and describes it.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use clap::{Parser, Subcommand};
use restyle::engine::{Controls, Engine, EngineConfig, LatencyMode, Pacing, MODEL_RATE};
use restyle::loader::{self, Loaded};
use restyle::model::MAX_STYLES;
use restyle::onnx::Provider;
use restyle::params::style_weights;
use restyle::render::{render, BlockSizes, RenderSettings};
use restyle::soak::{soak, SoakSettings};
use restyle::wav;

#[derive(Parser)]
#[command(name = "restyle", version, about = "Real-time neural music style transfer: the plugin's engine on the command line")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The latency setting, shared by every command: the plugin's setting of the same name.
#[derive(clap::Args)]
struct LatencyChoice {
    /// lowest (the least the block size allows) or safe (one hop, 2.7 ms, more time for each
    /// frame's inference: fewer late frames on a busy machine).
    #[arg(long = "latency", default_value = "lowest")]
    mode: LatencyMode,
}

/// Which models to run, shared by every command.
#[derive(clap::Args)]
struct ModelChoice {
    /// A model pack folder (manifest.json, generator.onnx, classifier.onnx); default: the pack
    /// built into the binary.
    #[arg(long)]
    pack: Option<PathBuf>,
    /// Where the models run: auto (a GPU if ONNX Runtime has one, else the CPU), cpu or gpu.
    #[arg(long, default_value = "auto")]
    provider: Provider,
}

impl ModelChoice {
    /// The models, or a passthrough whose reason is printed on stderr.
    fn load(&self) -> Loaded {
        let loaded = match &self.pack {
            Some(folder) => loader::load_dir(folder, self.provider),
            None => loader::load_default(self.provider),
        };
        if let Some(problem) = &loaded.problem {
            eprintln!("restyle: {problem}");
        }
        loaded
    }
}

#[derive(Subcommand)]
enum Command {
    /// Render a WAV file through the engine, as a DAW would with the plugin on the track.
    Render {
        /// Input WAV (mono or stereo, any common rate and sample format).
        input: PathBuf,
        /// Output WAV (32-bit float, same rate and channels, aligned with the input).
        #[arg(short, long)]
        output: PathBuf,
        /// Style to restyle towards, by name (see `restyle info`).
        #[arg(long)]
        style: Option<String>,
        /// Blend other styles in: NAME=W,... with W from 0 to 1.
        #[arg(long, value_delimiter = ',')]
        blend: Vec<String>,
        /// Style-mix from 0 (dry) to 1 (fully restyled).
        #[arg(long, default_value_t = 1.0)]
        mix: f32,
        /// Host block size to simulate, in samples.
        #[arg(long, default_value_t = 512)]
        block: usize,
        /// Simulate a host whose block sizes change at random from call to call, up to --block.
        #[arg(long)]
        random_blocks: bool,
        /// Never wait for the inference thread, like a live stream (late frames are played dry).
        #[arg(long)]
        realtime: bool,
        /// Deliver the blocks on a real-time clock, like an audio interface (implies --realtime):
        /// takes as long as the audio lasts and counts the late frames a performer would hear.
        #[arg(long)]
        paced: bool,
        /// Print one JSON object with the figures instead of a summary.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        latency: LatencyChoice,
        #[command(flatten)]
        models: ModelChoice,
    },
    /// Run the engine for a long time (an hour of audio by default) with parameters changing all
    /// the while, and report memory, late frames and output health: a soak test.
    Soak {
        /// Audio to push through, in minutes.
        #[arg(long, default_value_t = 60.0)]
        minutes: f64,
        /// Deliver blocks this many times faster than real time. Only 1 (a live session, an
        /// hour for an hour) counts late frames faithfully: the inference thread polls on the
        /// real-time clock. Faster runs still check memory and output.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Host block size, in samples.
        #[arg(long, default_value_t = 128)]
        block: usize,
        /// Print one JSON object with the figures instead of a summary.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        latency: LatencyChoice,
        #[command(flatten)]
        models: ModelChoice,
    },
    /// Describe the engine: model, styles, latency, execution provider.
    Info {
        #[arg(long)]
        json: bool,
        /// Sample rate to report the latency for.
        #[arg(long, default_value_t = MODEL_RATE)]
        sample_rate: u32,
        /// Host block size to report the latency for.
        #[arg(long, default_value_t = 128)]
        block: usize,
        #[command(flatten)]
        latency: LatencyChoice,
        #[command(flatten)]
        models: ModelChoice,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("restyle: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Render { input, output, style, blend, mix, block, random_blocks, realtime, paced, json, latency, models } => {
            if block == 0 || block > 65_536 {
                bail!("--block must be between 1 and 65536 samples, not {block}");
            }
            if !(0.0..=1.0).contains(&mix) {
                bail!("--mix must be between 0 and 1, not {mix}");
            }
            let audio = wav::read(&input)?;
            let loaded = models.load();
            let styles = loaded.models.generator.styles().to_vec();
            let controls = Controls { style: choose_style(&styles, style.as_deref(), &blend)?, mix, ..Controls::default() };
            let settings = RenderSettings {
                controls,
                blocks: if random_blocks { BlockSizes::Random { max: block, seed: 0x5eed } } else { BlockSizes::Fixed(block) },
                pacing: if realtime || paced { Pacing::RealTime } else { Pacing::Offline },
                paced,
                latency_mode: latency.mode,
            };
            let show_progress = !json && std::io::stderr().is_terminal() && audio.channels[0].len() > 30 * audio.sample_rate as usize;
            let mut last = -1i64;
            let (rendered, report) = render(&audio.channels, audio.sample_rate, &settings, loaded.models, loaded.provider, |done| {
                let percent = (done * 100.0) as i64;
                if show_progress && percent != last {
                    last = percent;
                    let bar = "#".repeat(percent as usize / 4);
                    eprint!("\r[{bar:<25}] {percent:3}%");
                    let _ = std::io::stderr().flush();
                }
            })?;
            if show_progress {
                eprintln!();
            }
            wav::write(&output, &wav::Audio { sample_rate: audio.sample_rate, channels: rendered })?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!(
                    "{} -> {}: {:.1} s of audio at {} Hz, {} channel(s), latency {} samples ({:.2} ms), {} late frame(s), {:.3}x real time",
                    input.display(),
                    output.display(),
                    report.frames as f64 / report.sample_rate as f64,
                    report.sample_rate,
                    report.channels,
                    report.latency_samples,
                    report.latency_ms,
                    report.late_frames,
                    report.realtime_factor,
                );
            }
            Ok(())
        }
        Command::Soak { minutes, speed, block, json, latency, models } => {
            if block == 0 || block > 65_536 {
                bail!("--block must be between 1 and 65536 samples, not {block}");
            }
            if !(minutes > 0.0 && speed > 0.0) {
                bail!("--minutes and --speed must be above 0");
            }
            let settings = SoakSettings {
                sample_rate: MODEL_RATE,
                channels: 2,
                block,
                latency_mode: latency.mode,
                seconds: minutes * 60.0,
                speed,
                change_every: Duration::from_millis(250),
                reset_every: Duration::from_secs(300),
            };
            let clip = restyle::demo::clip()?;
            let loaded = models.load();
            let report = soak(&settings, loaded.models, &clip.channels[0], Duration::from_secs(300), |point| {
                if !json {
                    eprintln!(
                        "{:>6.1} min of audio: resident {}, {} late frame(s), {} failed",
                        point.audio_seconds / 60.0,
                        mib(point.resident_mib),
                        point.late_frames,
                        point.failed_frames
                    );
                }
            })?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!(
                    "{:.1} min of audio in {:.1} min ({}x real time, {}-sample blocks, latency {} samples in {} mode, provider {}): \
                     resident memory {} after the first minute, {} at the end; {} late of {} frames, {} failed; \
                     {} parameter changes, {} resets; {} non-finite output samples, output peak {:.2}; slowest block {:.0} us",
                    report.audio_seconds / 60.0,
                    report.wall_seconds / 60.0,
                    report.speed,
                    report.block,
                    report.latency_samples,
                    report.latency_mode.label(),
                    loaded.provider,
                    mib(report.resident_mib_start),
                    mib(report.resident_mib_end),
                    report.stats.late_frames,
                    report.stats.frames_submitted,
                    report.stats.failed_frames,
                    report.parameter_changes,
                    report.resets,
                    report.nonfinite_output,
                    report.output_peak,
                    report.slowest_block_us,
                );
            }
            ensure!(report.nonfinite_output == 0, "the engine produced {} non-finite output samples", report.nonfinite_output);
            Ok(())
        }
        Command::Info { json, sample_rate, block, latency, models } => {
            let config = EngineConfig { sample_rate, channels: 2, max_block: block, pacing: Pacing::RealTime, latency_mode: latency.mode };
            let loaded = models.load();
            let (provider, problem) = (loaded.provider, loaded.problem.clone());
            let runtime = match restyle::runtime::runtime() {
                Ok(runtime) => runtime.describe(),
                Err(error) => error.to_owned(),
            };
            let engine = Engine::new(config, loaded.models).context("starting the engine")?;
            let info = serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "model": engine.model_name(),
                "styles": engine.styles(),
                "provider": provider,
                "problem": problem,
                "onnx_runtime": runtime,
                "model_sample_rate": MODEL_RATE,
                "sample_rate": sample_rate,
                "block": block,
                "latency_mode": latency.mode,
                "pipeline_delay_hops": engine.pipeline_delay(),
                "latency_samples": engine.latency(),
                "latency_ms": engine.latency() as f64 * 1000.0 / sample_rate as f64,
            });
            if json {
                println!("{info}");
            } else {
                println!("Restyle {}", env!("CARGO_PKG_VERSION"));
                println!("model: {} (provider: {provider})", engine.model_name());
                println!("ONNX Runtime: {runtime}");
                if let Some(problem) = problem {
                    println!("note: {problem}");
                }
                println!("styles: {}", engine.styles().join(", "));
                println!(
                    "latency at {sample_rate} Hz, blocks up to {block}, {} mode: {} samples ({:.2} ms)",
                    latency.mode.label(),
                    engine.latency(),
                    engine.latency() as f64 * 1000.0 / sample_rate as f64
                );
            }
            Ok(())
        }
    }
}

fn mib(value: Option<f64>) -> String {
    value.map_or_else(|| "unknown".to_owned(), |v| format!("{v:.1} MiB"))
}

/// The style weights for `--style` and `--blend`, by style name (case-insensitive).
fn choose_style(styles: &[String], style: Option<&str>, blends: &[String]) -> Result<restyle::model::StyleWeights> {
    let find = |name: &str| {
        styles
            .iter()
            .position(|s| s.eq_ignore_ascii_case(name.trim()))
            .with_context(|| format!("unknown style '{name}'; this model has: {}", styles.join(", ")))
    };
    let selected = style.map(find).transpose()?.unwrap_or(0);
    let mut amounts = [0.0f32; MAX_STYLES];
    for blend in blends {
        let (name, weight) = blend.split_once('=').with_context(|| format!("--blend takes NAME=W, not '{blend}'"))?;
        let weight: f32 = weight.trim().parse().with_context(|| format!("blend weight '{weight}' is not a number"))?;
        if !(0.0..=1.0).contains(&weight) {
            bail!("blend weight {weight} for '{name}' must be between 0 and 1");
        }
        amounts[find(name)?] = weight;
    }
    Ok(style_weights(selected, &amounts, styles.len()))
}
