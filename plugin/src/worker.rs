//! The inference thread: takes frames from the audio thread, runs the model, sends gains back.
//!
//! Everything that may allocate, block or take unbounded time (the model itself) runs here. The
//! thread sleeps in short polls rather than being woken by the audio thread, because waking a
//! thread is a system call and the audio thread makes none.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rtrb::{Consumer, Producer};

use crate::model::{FrameBatch, FrameModel, Models, StyleMeter, StyleWeights, MAX_STYLES};
use crate::priority;
use crate::stats::{EngineStats, ModelFault};

/// The largest per-bin gain a model may apply (+60 dB): a runaway model is limited, not obeyed.
pub const MAX_GAIN: f32 = 1000.0;
/// Frames over which a newly swapped-in model takes over from the old one (16 hops: 43 ms), so
/// that switching packs while playing never clicks.
const SWAP_FADE_FRAMES: u32 = 16;

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
    /// Models offered to replace the running ones.
    pub swap: Arc<ModelSwap>,
    /// How many styles the running model has, for the audio thread's style weights.
    pub style_count: AtomicUsize,
}

/// Models waiting to replace the running ones: a pack chosen while the plugin plays. A background
/// thread offers them and the inference thread takes them between two frames; the audio thread
/// never touches this, so its lock is never taken there.
#[derive(Default)]
pub struct ModelSwap {
    next: Mutex<Option<Models>>,
}

impl ModelSwap {
    /// Offers `models`, replacing an offer not taken yet.
    pub fn offer(&self, models: Models) {
        let stale = self.next.lock().ok().and_then(|mut next| next.replace(models));
        // Dropped here, after the lock is released: a model's sessions can take a while to free.
        drop(stale);
    }

    /// Withdraws an offer not taken yet (the engine it was meant for is gone).
    pub fn withdraw(&self) {
        let stale = self.next.lock().ok().and_then(|mut next| next.take());
        drop(stale);
    }

    /// The offered models, if any; never waits for the offering thread.
    fn take(&self) -> Option<Models> {
        self.next.try_lock().ok()?.take()
    }
}

/// The model being replaced, still run for a few frames so that its gains fade into the new
/// model's.
struct Outgoing {
    model: Box<dyn FrameModel>,
    frames_left: u32,
    /// The new model's gains for the frame being faded.
    incoming: Vec<f32>,
    scratch: Vec<f32>,
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
            let mut outgoing: Option<Outgoing> = None;
            loop {
                if let Some(next) = shared.swap.take() {
                    let old = std::mem::replace(&mut model, next.generator);
                    meter = next.meter;
                    shared.style_count.store(model.styles().len(), Ordering::Release);
                    outgoing = (!poisoned).then(|| Outgoing {
                        model: old,
                        frames_left: SWAP_FADE_FRAMES,
                        incoming: Vec::new(),
                        scratch: Vec::new(),
                    });
                    report = FailureReport::default();
                    shared.stats.clear_model_fault();
                    poisoned = catch_unwind(AssertUnwindSafe(|| model.reset())).is_err();
                }
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
                        // A reset ends a fade: there is no old sound left to fade from.
                        outgoing = None;
                        if let Some(meter) = meter.as_deref_mut() {
                            meter.reset();
                        }
                    }
                    job.outcome = if job.seq < shared.oldest_useful.load(Ordering::Acquire) {
                        Outcome::Skipped
                    } else if poisoned {
                        Outcome::Failed
                    } else {
                        let result = infer(model.as_mut(), &mut job, &mut out, bins, &shared.stats, &mut report);
                        poisoned |= result == Err(ModelFault::Panicked);
                        if let Err(fault) = result {
                            shared.stats.record_model_fault(fault);
                        }
                        if let Some(old) = outgoing.as_mut().filter(|_| result.is_ok()) {
                            old.fade(&mut job, bins, &shared.stats, &mut report);
                        }
                        outgoing = outgoing.filter(|old| old.frames_left > 0);
                        if result.is_ok() { Outcome::Done } else { Outcome::Failed }
                    };
                    if job.outcome == Outcome::Failed {
                        shared.stats.failed_frames.fetch_add(1, Ordering::Relaxed);
                    }
                    let (outcome, channels) = (job.outcome, job.channels);
                    // The ring holds every job in existence, so it is never full.
                    let _ = results.push(job);
                    // The style meter listens after the frame has gone back: its classifier call
                    // must not make the frame late.
                    if let (Outcome::Done, Some(listening)) = (outcome, meter.as_deref_mut()) {
                        if !listener.listen(listening, &out, channels, bins, &shared.stats, &mut report) {
                            meter = None;
                        }
                    }
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

impl Outgoing {
    /// Replaces the new model's gains in `job` by a geometric blend with the old model's, the old
    /// one's share falling frame by frame. If the old model fails, the new gains stand.
    fn fade(&mut self, job: &mut FrameJob, bins: usize, stats: &EngineStats, report: &mut FailureReport) {
        let len = job.channels * bins;
        self.incoming.clear();
        self.incoming.extend_from_slice(&job.gain[..len]);
        let result = infer(self.model.as_mut(), job, &mut self.scratch, bins, stats, report);
        let new_share = 1.0 - self.frames_left as f32 / (SWAP_FADE_FRAMES + 1) as f32;
        self.frames_left = if result == Err(ModelFault::Panicked) { 0 } else { self.frames_left - 1 };
        for (gain, new) in job.gain[..len].iter_mut().zip(&self.incoming) {
            *gain = if result.is_ok() {
                (gain.max(f32::MIN_POSITIVE).ln() * (1.0 - new_share) + new.max(f32::MIN_POSITIVE).ln() * new_share).exp()
            } else {
                *new
            };
        }
    }
}

/// Runs the model on one job and turns its output into gains, or says how the model failed
/// (the gains are then unusable).
fn infer(
    model: &mut dyn FrameModel,
    job: &mut FrameJob,
    out: &mut Vec<f32>,
    bins: usize,
    stats: &EngineStats,
    report: &mut FailureReport,
) -> Result<(), ModelFault> {
    let len = job.channels * bins;
    out.resize(len, 0.0);
    let started = Instant::now();
    let batch = FrameBatch { logmag: &job.logmag[..len], channels: job.channels, style: &job.style };
    let result = catch_unwind(AssertUnwindSafe(|| model.run(&batch, out)));
    stats.record_inference(started.elapsed().as_secs_f32() * 1000.0);
    match result {
        Err(_) => {
            report.once("the model panicked; playing dry from now on");
            Err(ModelFault::Panicked)
        }
        Ok(Err(error)) => {
            report.once(&format!("the model failed: {error:#}"));
            Err(ModelFault::Error)
        }
        Ok(Ok(())) => {
            let mut finite = true;
            for ((gain, target), input) in job.gain[..len].iter_mut().zip(out.iter()).zip(&job.logmag[..len]) {
                let g = (target - input).exp();
                finite &= g.is_finite();
                *gain = g.clamp(0.0, MAX_GAIN);
            }
            if !finite {
                report.once("the model gave NaN or infinite values; those frames play dry");
                return Err(ModelFault::NonFinite);
            }
            Ok(())
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
    /// Returns false if the meter panicked: it is not called again, and restyling goes on.
    fn listen(&mut self, meter: &mut dyn StyleMeter, out: &[f32], channels: usize, bins: usize, stats: &EngineStats, report: &mut FailureReport) -> bool {
        self.mono.clear();
        self.mono.resize(bins, 0.0);
        for channel in out.chunks_exact(bins).take(channels) {
            self.mono.iter_mut().zip(channel).for_each(|(m, x)| *m += x / channels as f32);
        }
        match catch_unwind(AssertUnwindSafe(|| meter.push(&self.mono, &mut self.confidences))) {
            Ok(Ok(true)) => stats.record_style_confidence(&self.confidences),
            Ok(Ok(false)) => {}
            Ok(Err(error)) => report.once(&format!("the style meter failed: {error:#}")),
            Err(_) => {
                report.once("the style meter panicked; it is off until another pack is loaded");
                return false;
            }
        }
        true
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
