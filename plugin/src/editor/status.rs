//! The status line: execution provider, inference time, late frames, latency, and any model or
//! library error in words.

use std::sync::atomic::Ordering::Relaxed;

use crate::stats::{EngineStats, Status};

/// What the status line says, one field per figure, in the order it shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusLine {
    /// "CPU", "CUDA", ... or "not running" while the engine is not active.
    pub provider: String,
    pub model: String,
    /// "0.12 ms mean · 0.40 ms max", or "no inference yet".
    pub inference: String,
    /// "0 late frames" or "12 late frames (0.4 %)".
    pub late: String,
    /// "383 samples · 8.0 ms".
    pub latency: String,
    /// Why the plugin is passing audio through, in words, if it is: a library or pack problem,
    /// else a failing model.
    pub error: Option<String>,
}

/// The execution provider as its makers write it ("cpu" -> "CPU", "directml" -> "DirectML").
pub fn provider_name(provider: &str) -> String {
    match provider.to_ascii_lowercase().as_str() {
        "" => "not running".to_owned(),
        "none" => "passthrough".to_owned(),
        "cpu" => "CPU".to_owned(),
        "cuda" => "CUDA".to_owned(),
        "directml" | "dml" => "DirectML".to_owned(),
        "tensorrt" => "TensorRT".to_owned(),
        "coreml" => "CoreML".to_owned(),
        _ => provider.to_owned(),
    }
}

impl StatusLine {
    pub fn new(stats: &EngineStats, status: &Status) -> Self {
        let provider = provider_name(&status.provider);
        let model = if status.model.is_empty() { "no model".to_owned() } else { status.model.clone() };

        let inferences = stats.inferences.load(Relaxed);
        let inference = if inferences == 0 {
            "no inference yet".to_owned()
        } else {
            format!("{:.2} ms mean · {:.2} ms max", stats.inference_ms_mean.load(Relaxed), stats.inference_ms_max.load(Relaxed))
        };

        let late_frames = stats.late_frames.load(Relaxed);
        let submitted = stats.frames_submitted.load(Relaxed);
        let plural = if late_frames == 1 { "" } else { "s" };
        let late = if late_frames == 0 || submitted == 0 {
            format!("{late_frames} late frame{plural}")
        } else {
            format!("{late_frames} late frame{plural} ({:.1} %)", 100.0 * late_frames as f64 / submitted as f64)
        };

        let samples = stats.latency_samples.load(Relaxed);
        let rate = stats.sample_rate.load(Relaxed);
        let latency = if rate == 0 {
            format!("latency {samples} samples")
        } else {
            format!("latency {samples} samples · {:.1} ms", samples as f64 * 1000.0 / rate as f64)
        };

        let fault = stats.model_fault().describe(stats.failed_frames.load(Relaxed));
        Self { provider, model, inference, late, latency, error: status.error.clone().or(fault) }
    }
}
