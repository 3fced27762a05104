//! Live performance figures, written by the audio and inference threads through atomics and read
//! by the editor, the log and `restyle render --json`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use atomic_float::AtomicF32;

#[derive(Default)]
pub struct EngineStats {
    /// Frames the audio thread handed to the inference thread.
    pub frames_submitted: AtomicU64,
    /// Frames whose result was not back in time: they were played dry.
    pub late_frames: AtomicU64,
    /// Frames the model failed on (an error, a panic or a non-finite output): played dry.
    pub failed_frames: AtomicU64,
    /// Input samples that were NaN or infinite and were replaced by silence.
    pub nonfinite_input: AtomicU64,
    /// Model calls made by the inference thread.
    pub inferences: AtomicU64,
    /// Time of one model call, in milliseconds: the last, a running mean and the worst.
    pub inference_ms_last: AtomicF32,
    pub inference_ms_mean: AtomicF32,
    pub inference_ms_max: AtomicF32,
}

/// A copy of the figures at one moment, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct StatsSnapshot {
    pub frames_submitted: u64,
    pub late_frames: u64,
    pub failed_frames: u64,
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
        self.inference_ms_last.store(ms, Relaxed);
        if ms > self.inference_ms_max.load(Relaxed) {
            self.inference_ms_max.store(ms, Relaxed);
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            frames_submitted: self.frames_submitted.load(Relaxed),
            late_frames: self.late_frames.load(Relaxed),
            failed_frames: self.failed_frames.load(Relaxed),
            nonfinite_input: self.nonfinite_input.load(Relaxed),
            inferences: self.inferences.load(Relaxed),
            inference_ms_mean: self.inference_ms_mean.load(Relaxed),
            inference_ms_max: self.inference_ms_max.load(Relaxed),
        }
    }
}
