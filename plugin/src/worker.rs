//! The inference thread: takes frames from the audio thread, runs the model, sends gains back.
//!
//! Everything that may allocate, block or take unbounded time (the model itself) runs here. The
//! thread sleeps in short polls rather than being woken by the audio thread, because waking a
//! thread is a system call and the audio thread makes none.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rtrb::{Consumer, Producer};

use crate::model::{FrameBatch, FrameModel, Models, StyleMeter, StyleWeights, MAX_STYLES};
use crate::priority;
use crate::stats::EngineStats;

/// The largest per-bin gain a model may apply (+60 dB): a runaway model is limited, not obeyed.
pub const MAX_GAIN: f32 = 1000.0;

/// One frame of work, travelling audio thread → inference thread → audio thread. Its buffers are
/// allocated once and recycled, so moving a job through the rings never allocates.
pub struct FrameJob {
    /// Frame index since the engine's last reset.
    pub seq: u64,
    /// Which reset this frame belongs to; a new epoch resets the model's state.
    pub epoch: u64,
    pub channels: usize,
    /// Input log-magnitudes, channel after channel.
    pub logmag: Box<[f32]>,
    /// Per-bin gains to apply to the input spectrum, filled in by the inference thread.
    pub gain: Box<[f32]>,
    pub style: StyleWeights,
    pub outcome: Outcome,
}

/// What became of a job on the inference thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pending,
    Done,
    /// Skipped because it was already too late to be heard.
    Skipped,
    /// The model failed or produced non-finite values.
    Failed,
}

impl FrameJob {
    pub fn new(max_channels: usize, bins: usize) -> Self {
        Self {
            seq: 0,
            epoch: 0,
            channels: 0,
            logmag: vec![0.0; max_channels * bins].into_boxed_slice(),
            gain: vec![0.0; max_channels * bins].into_boxed_slice(),
            style: StyleWeights::default(),
            outcome: Outcome::Pending,
        }
    }
}

/// What the audio thread shares with the inference thread besides the rings.
pub struct Shared {
    pub stats: Arc<EngineStats>,
    /// Set by the engine when it is dropped: the thread finishes and exits.
    pub shutdown: AtomicBool,
    /// The oldest frame still worth computing (published by the audio thread each hop).
    pub oldest_useful: AtomicU64,
}

pub struct Worker {
    pub handle: JoinHandle<()>,
}

impl Worker {
    pub fn spawn(
        models: Models,
        mut requests: Consumer<FrameJob>,
        mut results: Producer<FrameJob>,
        shared: Arc<Shared>,
        poll: Duration,
        bins: usize,
    ) -> std::io::Result<Self> {
        let Models { generator: mut model, mut meter } = models;
        let handle = thread::Builder::new().name("restyle-inference".into()).spawn(move || {
            shared.stats.realtime_priority.store(priority::promote(priority::INFERENCE), Ordering::Relaxed);
            let mut out = Vec::new();
            let mut listener = MeterInput::default();
            let mut epoch = u64::MAX;
            // After a panic the model's state is unknown: it is not called again.
            let mut poisoned = false;
            let mut report = FailureReport::default();
            loop {
                while let Ok(mut job) = requests.pop() {
                    // Checked per job, not per batch: with a slow model, a queue of frames
                    // nobody will hear must not hold up the host's deactivate.
                    if shared.shutdown.load(Ordering::Acquire) {
                        return;
                    }
                    if job.epoch != epoch {
                        epoch = job.epoch;
                        if !poisoned {
                            poisoned = catch_unwind(AssertUnwindSafe(|| model.reset())).is_err();
                        }
                        if let Some(meter) = meter.as_deref_mut() {
                            meter.reset();
                        }
                    }
                    job.outcome = if job.seq < shared.oldest_useful.load(Ordering::Acquire) {
                        Outcome::Skipped
                    } else if poisoned {
                        Outcome::Failed
                    } else {
                        let (outcome, panicked) = infer(model.as_mut(), &mut job, &mut out, bins, &shared.stats, &mut report);
                        poisoned |= panicked;
                        outcome
                    };
                    match job.outcome {
                        Outcome::Failed => {
                            shared.stats.failed_frames.fetch_add(1, Ordering::Relaxed);
                        }
                        Outcome::Done => {
                            if let Some(meter) = meter.as_deref_mut() {
                                listener.listen(meter, &out, job.channels, bins, &shared.stats, &mut report);
                            }
                        }
                        Outcome::Pending | Outcome::Skipped => {}
                    }
                    // The ring holds every job in existence, so it is never full.
                    let _ = results.push(job);
                }
                if shared.shutdown.load(Ordering::Acquire) {
                    return;
                }
                thread::park_timeout(poll);
            }
        })?;
        Ok(Self { handle })
    }
}

/// Runs the model on one job and turns its output into gains. Returns the outcome and whether
/// the model panicked.
fn infer(
    model: &mut dyn FrameModel,
    job: &mut FrameJob,
    out: &mut Vec<f32>,
    bins: usize,
    stats: &EngineStats,
    report: &mut FailureReport,
) -> (Outcome, bool) {
    let len = job.channels * bins;
    out.resize(len, 0.0);
    let started = Instant::now();
    let batch = FrameBatch { logmag: &job.logmag[..len], channels: job.channels, style: &job.style };
    let result = catch_unwind(AssertUnwindSafe(|| model.run(&batch, out)));
    stats.record_inference(started.elapsed().as_secs_f32() * 1000.0);
    match result {
        Err(_) => {
            report.once("the model panicked; playing dry from now on");
            (Outcome::Failed, true)
        }
        Ok(Err(error)) => {
            report.once(&format!("the model failed: {error:#}"));
            (Outcome::Failed, false)
        }
        Ok(Ok(())) => {
            let mut finite = true;
            for ((gain, target), input) in job.gain[..len].iter_mut().zip(out.iter()).zip(&job.logmag[..len]) {
                let g = (target - input).exp();
                finite &= g.is_finite();
                *gain = g.clamp(0.0, MAX_GAIN);
            }
            (if finite { Outcome::Done } else { Outcome::Failed }, false)
        }
    }
}

/// Feeds the style meter the generator's output, channels averaged, and publishes its verdicts.
#[derive(Default)]
struct MeterInput {
    mono: Vec<f32>,
    confidences: [f32; MAX_STYLES],
}

impl MeterInput {
    fn listen(&mut self, meter: &mut dyn StyleMeter, out: &[f32], channels: usize, bins: usize, stats: &EngineStats, report: &mut FailureReport) {
        self.mono.clear();
        self.mono.resize(bins, 0.0);
        for channel in out.chunks_exact(bins).take(channels) {
            self.mono.iter_mut().zip(channel).for_each(|(m, x)| *m += x / channels as f32);
        }
        match meter.push(&self.mono, &mut self.confidences) {
            Ok(true) => stats.record_style_confidence(&self.confidences),
            Ok(false) => {}
            Err(error) => report.once(&format!("the style meter failed: {error:#}")),
        }
    }
}

/// Logs the first model failure only, so a model that fails every frame does not flood the log.
#[derive(Default)]
struct FailureReport {
    logged: bool,
}

impl FailureReport {
    fn once(&mut self, message: &str) {
        if !std::mem::replace(&mut self.logged, true) {
            nice_plug::nice_log!("restyle: {message}");
        }
    }
}
