//! Live figures, written by the audio and inference threads through atomics and read by the
//! editor, the log and `restyle render --json`. The plugin keeps one across re-activations, so
//! an open editor keeps reading the same object.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};

use atomic_float::AtomicF32;

use crate::engine::{LatencyMode, MAX_CHANNELS};
use crate::model::MAX_STYLES;

/// Bands of the spectrum the editor draws (log-spaced from 40 Hz to 20 kHz).
pub const SPECTRUM_BANDS: usize = 64;

/// One frame's spectrum in dB per band.
pub struct Spectrum(pub [AtomicF32; SPECTRUM_BANDS]);

impl Default for Spectrum {
    fn default() -> Self {
        Self(std::array::from_fn(|_| AtomicF32::new(-120.0)))
    }
}

#[derive(Default)]
pub struct EngineStats {
    /// The latency reported to the host, in samples at `sample_rate`.
    pub latency_samples: AtomicU32,
    pub sample_rate: AtomicU32,
    /// The running engine's channel count (1 or 2; 0 before any engine ran), so the meters show
    /// one bar for a mono track.
    pub channels: AtomicU32,
    /// Peak level of each channel, in and out (linear), decaying by 12 dB per 100 ms between
    /// peaks, so a reader polling at any rate sees every peak.
    pub input_peak: [AtomicF32; MAX_CHANNELS],
    pub output_peak: [AtomicF32; MAX_CHANNELS],
    /// The newest frame's spectrum (channels averaged), in dB per band: what goes into the model
    /// and what comes out of the synthesis.
    pub spectrum_in: Spectrum,
    pub spectrum_out: Spectrum,
    /// How sure the pack's classifier is that the output is each style (0–1), for the style meter.
    pub style_confidence: [AtomicF32; MAX_STYLES],
    /// Sums of the meter's verdicts and their count, for a render's average.
    pub style_confidence_sum: [AtomicF32; MAX_STYLES],
    pub style_estimates: AtomicU64,
    /// Frames the audio thread handed to the inference thread.
    pub frames_submitted: AtomicU64,
    /// Frames whose result was not back in time: they were played dry.
    pub late_frames: AtomicU64,
    /// Frames the model failed on (an error, a panic or a non-finite output): played dry.
    pub failed_frames: AtomicU64,
    /// The worst way the running model has failed, a [`ModelFault`]: so the editor and a render
    /// can say why frames play dry, not only how many.
    model_fault: AtomicU8,
    /// Input samples that were NaN or infinite and were replaced by silence.
    pub nonfinite_input: AtomicU64,
    /// Whether the inference thread got real-time scheduling.
    pub realtime_priority: std::sync::atomic::AtomicBool,
    /// Model calls made by the inference thread.
    pub inferences: AtomicU64,
    /// Time of one model call, in milliseconds: a running mean and the worst.
    pub inference_ms_mean: AtomicF32,
    pub inference_ms_max: AtomicF32,
}

/// A copy of the figures at one moment, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct StatsSnapshot {
    pub realtime_priority: bool,
    pub frames_submitted: u64,
    pub late_frames: u64,
    pub failed_frames: u64,
    pub model_fault: ModelFault,
    pub nonfinite_input: u64,
    pub inferences: u64,
    pub inference_ms_mean: f32,
    pub inference_ms_max: f32,
}

impl EngineStats {
    /// Records one model call; called by the inference thread only.
    pub fn record_inference(&self, ms: f32) {
        let n = self.inferences.fetch_add(1, Relaxed) + 1;
        let mean = self.inference_ms_mean.load(Relaxed);
        // A cumulative mean for the first thousand calls, then an exponential one, so the
        // figure follows the machine's load without being noisy.
        let weight = 1.0 / (n.min(1000) as f32);
        self.inference_ms_mean.store(mean + (ms - mean) * weight, Relaxed);
        if ms > self.inference_ms_max.load(Relaxed) {
            self.inference_ms_max.store(ms, Relaxed);
        }
    }

    /// Records a model failure; called by the inference thread only. The worst kind is kept.
    pub fn record_model_fault(&self, fault: ModelFault) {
        self.model_fault.fetch_max(fault as u8, Relaxed);
    }

    /// Forgets the running model's failures: a new model has taken its place.
    pub fn clear_model_fault(&self) {
        self.model_fault.store(ModelFault::None as u8, Relaxed);
    }

    pub fn model_fault(&self) -> ModelFault {
        ModelFault::from_u8(self.model_fault.load(Relaxed))
    }

    /// Publishes one verdict of the style meter; called by the inference thread only.
    pub fn record_style_confidence(&self, confidences: &[f32; MAX_STYLES]) {
        for ((now, sum), &c) in self.style_confidence.iter().zip(&self.style_confidence_sum).zip(confidences) {
            now.store(c, Relaxed);
            sum.store(sum.load(Relaxed) + c, Relaxed);
        }
        self.style_estimates.fetch_add(1, Relaxed);
    }

    /// The meter's average verdict per style since the engine started (zeros if it never ran).
    pub fn mean_style_confidence(&self) -> [f32; MAX_STYLES] {
        let n = self.style_estimates.load(Relaxed).max(1) as f32;
        std::array::from_fn(|i| self.style_confidence_sum[i].load(Relaxed) / n)
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            realtime_priority: self.realtime_priority.load(Relaxed),
            frames_submitted: self.frames_submitted.load(Relaxed),
            late_frames: self.late_frames.load(Relaxed),
            failed_frames: self.failed_frames.load(Relaxed),
            model_fault: self.model_fault(),
            nonfinite_input: self.nonfinite_input.load(Relaxed),
            inferences: self.inferences.load(Relaxed),
            inference_ms_mean: self.inference_ms_mean.load(Relaxed),
            inference_ms_max: self.inference_ms_max.load(Relaxed),
        }
    }
}

/// How the running model has failed, from least to most serious. Frames it fails on play dry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum ModelFault {
    #[default]
    None = 0,
    /// The model returned an error (ONNX Runtime refused a call).
    Error = 1,
    /// The model returned NaN or infinite values.
    NonFinite = 2,
    /// The model panicked; it is not called again.
    Panicked = 3,
}

impl ModelFault {
    fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Error,
            2 => Self::NonFinite,
            3 => Self::Panicked,
            _ => Self::None,
        }
    }

    /// The fault in words, with what the plugin does about it; `None` when there is none.
    pub fn describe(self, failed_frames: u64) -> Option<String> {
        let frames = if failed_frames == 1 { "1 frame".to_owned() } else { format!("{failed_frames} frames") };
        match self {
            Self::None => None,
            Self::Error => Some(format!("the model failed on {frames} (see the log); those played dry")),
            Self::NonFinite => Some(format!("the model gave NaN or infinite values on {frames}; those played dry")),
            Self::Panicked => Some("the model crashed; playing dry until another pack is loaded".to_owned()),
        }
    }
}

/// What the editor's status line says in words, set off the audio thread (on activation and when
/// a model loads) and read by the editor with `try_read`, never by the audio thread.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub model: String,
    pub provider: String,
    pub styles: Vec<String>,
    /// The latency mode the running engine was started with: the setting takes effect only when
    /// the host restarts the plugin.
    pub latency_mode: LatencyMode,
    /// Why the plugin is passing audio through, or what it refused, in words.
    pub error: Option<String>,
}
