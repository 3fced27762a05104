//! The real-time path, top to bottom: input → dry delay and input gain → resampling to the
//! model's rate → STFT analysis → request ring → (inference thread) → result ring → synthesis →
//! resampling back → style-mix with the latency-aligned dry signal → output gain.
//!
//! The plugin and the command-line renderer drive this same type. Everything it needs is made in
//! [`Engine::new`]; [`Engine::process`] never allocates, locks, makes a system call or waits in
//! [`Pacing::RealTime`]. A frame whose result is not back `D` hops after it was sent is played
//! dry and counted as late.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::{Acquire, Relaxed, Release}};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use atomic_float::AtomicF32;
use restyle_dsp::delay::DelayLine;
use restyle_dsp::features::log_magnitude;
use restyle_dsp::ramp::Ramp;
use restyle_dsp::resample::{round_trip_delay, Resampler};
use restyle_dsp::stft::Stft;
use restyle_dsp::window::WindowShape;
use restyle_dsp::Complex32;
use rtrb::{Consumer, Producer, RingBuffer};

use crate::model::{Models, StyleWeights};
use crate::stats::{EngineStats, Spectrum, SPECTRUM_BANDS};
pub use crate::worker::ModelSwap;
use crate::worker::{FrameJob, Outcome, Shared, Worker};

/// The rate the models run at, in Hz; other host rates are resampled to and from it.
pub const MODEL_RATE: u32 = 48_000;
/// 1024 samples: 21 ms of analysis at 48 kHz, 513 bins of 47 Hz.
pub const N_FFT: usize = 1024;
/// 128 samples: 2.7 ms at 48 kHz. The synthesis window is two hops long, so the hop sets the
/// STFT's latency (255 samples).
pub const HOP: usize = 128;
pub const MAX_CHANNELS: usize = 2;
/// Host blocks are processed in pieces of at most this many samples, so scratch buffers have a
/// fixed size whatever the host sends.
const CHUNK: usize = 512;
/// Style changes glide over this many seconds (per frame), so the model never sees a step.
const STYLE_GLIDE_S: f32 = 0.02;
/// Style-mix and gain changes ramp over this many milliseconds.
const RAMP_MS: f32 = 10.0;
/// How fast the published peak levels fall (120 dB/s: 12 dB per 100 ms).
const PEAK_DECAY_DB_PER_S: f32 = 120.0;
/// The spectrum published for the editor spans these frequencies, in Hz.
const SPECTRUM_RANGE_HZ: (f32, f32) = (40.0, 20_000.0);
/// How long an offline render waits for one frame before it plays it dry.
const OFFLINE_WAIT: Duration = Duration::from_secs(2);
/// How long dropping the engine waits for the inference thread before it detaches it.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);
/// The largest linear gain a control may ask for: +24 dB, the top of the gain parameters.
const MAX_CONTROL_GAIN: f32 = 15.848_932;

/// Whether the audio thread may wait for the inference thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// A live stream: never wait; a late frame is played dry and counted.
    RealTime,
    /// An offline render (a DAW's bounce, the command-line renderer): each frame waits for its
    /// result (up to two seconds), so the output does not depend on the machine's speed.
    Offline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// The host's sample rate in Hz.
    pub sample_rate: u32,
    pub channels: usize,
    /// The largest block the host will send. It sets the pipeline delay: results for the frames
    /// of one block can only come back in a later block.
    pub max_block: usize,
    pub pacing: Pacing,
    pub latency_mode: LatencyMode,
}

/// How much time each frame's inference gets beyond what the host's block size needs: a setting
/// of the plugin, saved in its state and applied at activation, so the latency it adds is
/// reported to the host then and never changes while processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LatencyMode {
    /// The least latency the block size allows: a frame's result is due one block after it.
    #[default]
    Lowest,
    /// One hop more (128 samples at the model's rate, 2.7 ms) for every frame, for a machine
    /// busy enough that the lowest setting plays a frame dry now and then.
    Safe,
}

impl LatencyMode {
    const ALL: [LatencyMode; 2] = [LatencyMode::Lowest, LatencyMode::Safe];

    /// The setting's name, as `FromStr` reads it: "lowest" or "safe".
    pub fn label(self) -> &'static str {
        match self {
            LatencyMode::Lowest => "lowest",
            LatencyMode::Safe => "safe",
        }
    }

    /// Hops of pipeline delay this mode adds to what the block size needs.
    fn extra_hops(self) -> usize {
        match self {
            LatencyMode::Lowest => 0,
            LatencyMode::Safe => 1,
        }
    }
}

impl std::str::FromStr for LatencyMode {
    type Err = String;

    /// Reads a command-line value: "lowest" or "safe" (any case).
    fn from_str(text: &str) -> Result<Self, String> {
        crate::choice::parse(text, &LatencyMode::ALL, LatencyMode::label, "latency mode")
    }
}

/// The control values for one block, as the host or the renderer set them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Controls {
    pub style: StyleWeights,
    /// 0 = dry, 1 = fully restyled.
    pub mix: f32,
    /// Linear gains.
    pub input_gain: f32,
    pub output_gain: f32,
    pub bypass: bool,
}

impl Default for Controls {
    fn default() -> Self {
        let mut style = StyleWeights::default();
        style[0] = 1.0;
        Self { style, mix: 1.0, input_gain: 1.0, output_gain: 1.0, bypass: false }
    }
}

/// The pipeline delay in hops for a host configuration: the largest block in whole hops at the
/// model's rate (at least one), plus what the latency mode adds.
fn pipeline_delay(sample_rate: u32, max_block: usize, mode: LatencyMode) -> usize {
    let model_block = (max_block as u64 * MODEL_RATE as u64).div_ceil(sample_rate as u64) as usize;
    model_block.div_ceil(HOP).max(1) + mode.extra_hops()
}

pub struct Engine {
    config: EngineConfig,
    /// Total delay from input to output in host samples; the plugin reports exactly this.
    latency: usize,
    /// The dry signal, delayed by `latency` so style-mix blends aligned signals.
    dry: Vec<DelayLine>,
    rate: Option<RateConversion>,
    stft: Stft,
    frames: FramePipeline,
    /// Host-rate scratch: the signal on its way through the STFT, and the delayed dry signal.
    wet: Vec<Vec<f32>>,
    dry_out: Vec<Vec<f32>>,
    /// Per-sample input gain of the current chunk, applied to both paths.
    input_ramp: Vec<f32>,
    mix: Ramp,
    input_gain: Ramp,
    output_gain: Ramp,
    bypass: Ramp,
    /// Per-sample factor by which the published peak levels fall.
    peak_decay: f32,
    stats: Arc<EngineStats>,
}

/// Resamplers to and from the model's rate, with the model-rate scratch between them.
struct RateConversion {
    down: Vec<Resampler>,
    up: Vec<Resampler>,
    model: Vec<Vec<f32>>,
}

impl Engine {
    pub fn new(config: EngineConfig, models: impl Into<Models>) -> Result<Self> {
        Self::for_plugin(config, models, Arc::default(), Arc::default())
    }

    /// An engine that publishes its figures into `stats` and takes the models offered through
    /// `swap` while it runs: the plugin keeps both across activations, for its editor.
    pub fn for_plugin(config: EngineConfig, models: impl Into<Models>, stats: Arc<EngineStats>, swap: Arc<ModelSwap>) -> Result<Self> {
        ensure!((1..=MAX_CHANNELS).contains(&config.channels), "{} channels: Restyle runs mono or stereo", config.channels);
        ensure!((8_000..=384_000).contains(&config.sample_rate), "sample rate {} Hz is not supported (8 kHz to 384 kHz)", config.sample_rate);
        ensure!(config.max_block > 0, "the maximum block size must be at least 1");
        let channels = config.channels;
        let stft = Stft::new(WindowShape::Asymmetric, N_FFT, HOP, channels).context("building the STFT")?;
        let delay = pipeline_delay(config.sample_rate, config.max_block, config.latency_mode);
        let core_latency = stft.latency() + delay * HOP;
        let (latency, rate) = if config.sample_rate == MODEL_RATE {
            (core_latency, None)
        } else {
            let (down_delay, up_delay, total) = round_trip_delay(config.sample_rate, MODEL_RATE, core_latency);
            let down: Vec<_> = (0..channels).map(|_| Resampler::new(config.sample_rate, MODEL_RATE, down_delay)).collect();
            let up = (0..channels).map(|_| Resampler::new(MODEL_RATE, config.sample_rate, up_delay)).collect();
            let model_len = down[0].max_output(CHUNK);
            (total, Some(RateConversion { down, up, model: vec![vec![0.0; model_len]; channels] }))
        };
        stats.latency_samples.store(latency as u32, Relaxed);
        stats.sample_rate.store(config.sample_rate, Relaxed);
        stats.channels.store(channels as u32, Relaxed);
        let frames = FramePipeline::new(models.into(), &stft, delay, config.pacing, stats.clone(), swap)?;
        let ramp_len = (RAMP_MS / 1000.0 * config.sample_rate as f32).round() as usize;
        let ramp = |value: f32| Ramp::new(value, ramp_len);
        let defaults = Controls::default();
        Ok(Self {
            config,
            latency,
            dry: (0..channels).map(|_| DelayLine::new(latency)).collect(),
            rate,
            stft,
            frames,
            wet: vec![vec![0.0; CHUNK]; channels],
            dry_out: vec![vec![0.0; CHUNK]; channels],
            input_ramp: vec![0.0; CHUNK],
            mix: ramp(defaults.mix),
            input_gain: ramp(defaults.input_gain),
            output_gain: ramp(defaults.output_gain),
            bypass: ramp(0.0),
            peak_decay: 10f32.powf(-PEAK_DECAY_DB_PER_S / 20.0 / config.sample_rate as f32),
            stats,
        })
    }

    /// Input-to-output delay in host samples, fixed for the engine's life.
    pub fn latency(&self) -> usize {
        self.latency
    }

    /// The pipeline delay `D`, in hops at the model's rate.
    pub fn pipeline_delay(&self) -> usize {
        self.frames.delay as usize
    }

    pub fn stats(&self) -> &Arc<EngineStats> {
        &self.stats
    }

    pub fn model_name(&self) -> &str {
        &self.frames.model_name
    }

    /// The styles of the models the engine started with.
    pub fn styles(&self) -> &[String] {
        &self.frames.styles
    }

    /// How many styles the running models have: the starting ones' until a swap (see
    /// [`ModelSwap`]) has taken effect.
    pub fn style_count(&self) -> usize {
        self.frames.shared.style_count.load(Acquire)
    }

    /// Sets every control to `controls` at once, without ramps (after loading a state).
    pub fn jump_to(&mut self, controls: &Controls) {
        let controls = self.usable(controls);
        self.mix.jump(controls.mix);
        self.input_gain.jump(controls.input_gain);
        self.output_gain.jump(controls.output_gain);
        self.bypass.jump(if controls.bypass { 1.0 } else { 0.0 });
        self.frames.target_style = controls.style;
        self.frames.style = controls.style;
    }

    /// Clears all audio history (the host stopped and restarted the stream).
    pub fn reset(&mut self) {
        self.dry.iter_mut().for_each(DelayLine::reset);
        if let Some(rate) = &mut self.rate {
            rate.down.iter_mut().chain(rate.up.iter_mut()).for_each(Resampler::reset);
        }
        self.stft.reset();
        self.frames.reset();
    }

    /// Processes one block in place; `block[c]` is channel `c`, any length.
    pub fn process(&mut self, block: &mut [&mut [f32]], controls: &Controls) {
        debug_assert_eq!(block.len(), self.config.channels);
        let controls = self.usable(controls);
        self.mix.set_target(controls.mix);
        self.input_gain.set_target(controls.input_gain);
        self.output_gain.set_target(controls.output_gain);
        self.bypass.set_target(if controls.bypass { 1.0 } else { 0.0 });
        self.frames.target_style = controls.style;

        let len = block.first().map_or(0, |c| c.len());
        let mut start = 0;
        while start < len {
            let end = (start + CHUNK).min(len);
            self.process_chunk(block, start, end);
            start = end;
        }
    }

    /// `controls` limited to what the audio path can multiply by. A host or caller may send
    /// anything: a NaN would stick in the ramps and the style glide and silence every later
    /// sample, an infinite gain or weight would make every later sample infinite. So a value that
    /// is not a number leaves its control where it is (style weights as a whole), and the others
    /// are clamped to their ranges: mix 0–1, gains 0 to +24 dB, each style weight 0–1.
    fn usable(&self, controls: &Controls) -> Controls {
        let keep_or_clamp = |value: f32, current: f32, max: f32| if value.is_nan() { current } else { value.clamp(0.0, max) };
        let style = if controls.style.iter().any(|w| w.is_nan()) {
            self.frames.target_style
        } else {
            controls.style.map(|w| w.clamp(0.0, 1.0))
        };
        Controls {
            style,
            mix: keep_or_clamp(controls.mix, self.mix.target(), 1.0),
            input_gain: keep_or_clamp(controls.input_gain, self.input_gain.target(), MAX_CONTROL_GAIN),
            output_gain: keep_or_clamp(controls.output_gain, self.output_gain.target(), MAX_CONTROL_GAIN),
            bypass: controls.bypass,
        }
    }

    fn process_chunk(&mut self, block: &mut [&mut [f32]], start: usize, end: usize) {
        let len = end - start;

        // 1. Input: silence anything non-finite, keep the raw input for the dry path.
        for ((channel, wet), (dry, dry_out)) in
            block.iter_mut().zip(&mut self.wet).zip(self.dry.iter_mut().zip(&mut self.dry_out))
        {
            let input = &mut channel[start..end];
            let mut bad = 0;
            for x in input.iter_mut().filter(|x| !x.is_finite()) {
                *x = 0.0;
                bad += 1;
            }
            if bad > 0 {
                self.stats.nonfinite_input.fetch_add(bad, Relaxed);
            }
            dry.process(input, &mut dry_out[..len]);
            wet[..len].copy_from_slice(input);
        }
        publish_peaks(&self.stats.input_peak, block, start, end, self.peak_decay);
        for g in &mut self.input_ramp[..len] {
            *g = self.input_gain.next_sample();
        }
        for wet in &mut self.wet {
            wet[..len].iter_mut().zip(&self.input_ramp).for_each(|(x, g)| *x *= g);
        }

        // 2. Analysis, the model, synthesis: at the model's rate.
        let frames = &mut self.frames;
        match &mut self.rate {
            None => self.stft.process(&mut channel_slices(&mut self.wet, len)[..self.config.channels], |k, spectra| frames.on_frame(k, spectra)),
            Some(rate) => {
                let mut produced = 0;
                for ((wet, down), model) in self.wet.iter().zip(&mut rate.down).zip(&mut rate.model) {
                    produced = down.process(&wet[..len], model);
                }
                self.stft.process(&mut channel_slices(&mut rate.model, produced)[..self.config.channels], |k, spectra| frames.on_frame(k, spectra));
                for ((wet, up), model) in self.wet.iter_mut().zip(&mut rate.up).zip(&rate.model) {
                    let written = up.process(&model[..produced], &mut wet[..len]);
                    debug_assert_eq!(written, len, "the resamplers' delays keep one output per input");
                }
            }
        }

        // 3. Style-mix with the aligned dry signal, output gain, bypass.
        for i in 0..len {
            let (mix, out_gain, bypass) = (self.mix.next_sample(), self.output_gain.next_sample(), self.bypass.next_sample());
            let in_gain = self.input_ramp[i];
            for ((channel, wet), dry) in block.iter_mut().zip(&self.wet).zip(&self.dry_out) {
                let processed = (dry[i] * in_gain * (1.0 - mix) + wet[i] * mix) * out_gain;
                channel[start + i] = processed + (dry[i] - processed) * bypass;
            }
        }
        publish_peaks(&self.stats.output_peak, block, start, end, self.peak_decay);
    }
}

/// Publishes each channel's peak over `start..end`, letting the previous peak decay meanwhile.
fn publish_peaks(peaks: &[AtomicF32; MAX_CHANNELS], block: &[&mut [f32]], start: usize, end: usize, decay: f32) {
    let fall = decay.powi((end - start) as i32);
    for (peak, channel) in peaks.iter().zip(block) {
        let new = channel[start..end].iter().fold(0.0f32, |m, x| m.max(x.abs()));
        peak.store(new.max(peak.load(Relaxed) * fall), Relaxed);
    }
}

/// Log-spaced bands over the spectrum for the editor: `(first bin, end bin)` of each.
fn spectrum_bands(bins: usize) -> Vec<(usize, usize)> {
    let (low, high) = SPECTRUM_RANGE_HZ;
    let hz_per_bin = MODEL_RATE as f32 / 2.0 / (bins - 1) as f32;
    let edge = |i: usize| {
        let hz = low * (high / low).powf(i as f32 / SPECTRUM_BANDS as f32);
        ((hz / hz_per_bin).round() as usize).min(bins - 1)
    };
    (0..SPECTRUM_BANDS).map(|i| (edge(i), edge(i + 1).max(edge(i) + 1))).collect()
}

/// Publishes the mean power of each band (channels averaged) in dB relative to a full-scale sine.
fn publish_spectrum(out: &Spectrum, spectra: &[Vec<Complex32>], bands: &[(usize, usize)], reference_power: f32) {
    for (value, &(from, to)) in out.0.iter().zip(bands) {
        let power: f32 = spectra.iter().flat_map(|s| &s[from..to]).map(|x| x.norm_sqr()).sum();
        let mean = power / ((to - from) * spectra.len()) as f32;
        value.store(10.0 * (mean / reference_power + 1e-12).log10(), Relaxed);
    }
}

/// Borrows the first `len` samples of each buffer as the `&mut [&mut [f32]]` the STFT takes,
/// without allocating.
fn channel_slices(buffers: &mut [Vec<f32>], len: usize) -> [&mut [f32]; MAX_CHANNELS] {
    let mut it = buffers.iter_mut().map(|b| &mut b[..len]);
    std::array::from_fn(|_| it.next().unwrap_or(&mut []))
}

/// A frame waiting `D` hops for its result: its spectra (for the dry fallback and for applying
/// the gains) and, once back, the job.
struct Pending {
    seq: Option<u64>,
    spectra: Vec<Vec<Complex32>>,
    job: Option<FrameJob>,
}

/// The audio thread's side of the exchange with the inference thread.
struct FramePipeline {
    /// `D`: frame `k`'s result is played at hop `k + D`.
    delay: u64,
    bins: usize,
    channels: usize,
    pacing: Pacing,
    /// Indexed by frame number modulo `D + 1`.
    pending: Vec<Pending>,
    /// Jobs not in flight. Its capacity holds every job, so pushing never allocates.
    free: Vec<FrameJob>,
    requests: Producer<FrameJob>,
    results: Consumer<FrameJob>,
    shared: Arc<Shared>,
    worker: Option<Worker>,
    stats: Arc<EngineStats>,
    /// The style weights the controls ask for, and the ones gliding towards them frame by frame.
    target_style: StyleWeights,
    style: StyleWeights,
    /// Bumped at every reset, so the inference thread resets the model's state.
    epoch: u64,
    /// Offline only: a wait for a result ran out, so the model is stuck or gone. Frames play dry
    /// without waiting until a result comes back: a bounce must end, not take two seconds a hop.
    stalled: bool,
    model_name: String,
    styles: Vec<String>,
    /// Bin ranges of the editor's spectrum bands, and the power of a full-scale sine's bin.
    bands: Vec<(usize, usize)>,
    reference_power: f32,
}

impl FramePipeline {
    /// A pipeline for the frames `stft` makes, each played `delay` hops after it is analysed.
    fn new(models: Models, stft: &Stft, delay: usize, pacing: Pacing, stats: Arc<EngineStats>, swap: Arc<ModelSwap>) -> Result<Self> {
        let (channels, bins) = (stft.channels(), stft.bins());
        let reference_power = (stft.windows().analysis().iter().sum::<f32>() / 2.0).powi(2);
        let delay = delay as u64;
        let slots = delay as usize + 1;
        // Every frame in flight, every result waiting, and slack for stale ones on their way back.
        let jobs = 2 * slots + 4;
        let (requests, worker_requests) = RingBuffer::new(jobs);
        let (worker_results, results) = RingBuffer::new(jobs);
        let model_name = models.generator.name().to_owned();
        let styles = models.generator.styles().to_vec();
        let shared = Arc::new(Shared {
            stats: stats.clone(),
            shutdown: AtomicBool::new(false),
            oldest_useful: AtomicU64::new(0),
            swap,
            style_count: AtomicUsize::new(styles.len()),
        });
        // A quarter of a hop: the thread notices new work well within the hops it has.
        let poll = Duration::from_secs_f64(HOP as f64 / MODEL_RATE as f64 / 4.0);
        let worker = Worker::spawn(models, worker_requests, worker_results, shared.clone(), poll, bins)
            .context("starting the inference thread")?;
        let mut style = StyleWeights::default();
        style[0] = 1.0;
        Ok(Self {
            delay,
            bins,
            channels,
            pacing,
            pending: (0..slots).map(|_| Pending { seq: None, spectra: vec![vec![Complex32::default(); bins]; channels], job: None }).collect(),
            free: (0..jobs).map(|_| FrameJob::new(channels, bins)).collect(),
            requests,
            results,
            shared,
            worker: Some(worker),
            stats,
            target_style: style,
            style,
            epoch: 0,
            stalled: false,
            model_name,
            styles,
            bands: spectrum_bands(bins),
            reference_power,
        })
    }

    fn reset(&mut self) {
        for pending in &mut self.pending {
            pending.seq = None;
            if let Some(job) = pending.job.take() {
                self.free.push(job);
            }
        }
        self.epoch += 1;
        self.style = self.target_style;
        self.shared.oldest_useful.store(0, Release);
    }

    /// Called by the STFT once per hop with frame `k`'s spectra; replaces them with the spectra
    /// to synthesise now: frame `k - D`, restyled if its result is back, dry if not.
    fn on_frame(&mut self, k: u64, spectra: &mut [Vec<Complex32>]) {
        self.glide_style();
        publish_spectrum(&self.stats.spectrum_in, spectra, &self.bands, self.reference_power);
        self.submit(k, spectra);
        self.shared.oldest_useful.store(k.saturating_sub(self.delay), Release);
        self.collect();
        self.play(k, spectra);
        publish_spectrum(&self.stats.spectrum_out, spectra, &self.bands, self.reference_power);
    }

    fn glide_style(&mut self) {
        let alpha = 1.0 - (-(HOP as f32) / (STYLE_GLIDE_S * MODEL_RATE as f32)).exp();
        for (s, t) in self.style.iter_mut().zip(&self.target_style) {
            *s += (t - *s) * alpha;
        }
    }

    fn submit(&mut self, k: u64, spectra: &[Vec<Complex32>]) {
        let slot = (k % self.pending.len() as u64) as usize;
        let pending = &mut self.pending[slot];
        pending.seq = Some(k);
        for (kept, new) in pending.spectra.iter_mut().zip(spectra) {
            kept.copy_from_slice(new);
        }
        if let Some(stale) = pending.job.take() {
            self.free.push(stale);
        }
        let Some(mut job) = self.free.pop() else { return };
        job.seq = k;
        job.epoch = self.epoch;
        job.channels = self.channels;
        job.style = self.style;
        job.outcome = Outcome::Pending;
        for (logmag, spectrum) in job.logmag.chunks_exact_mut(self.bins).zip(spectra) {
            log_magnitude(spectrum, logmag);
        }
        match self.requests.push(job) {
            Ok(()) => {
                self.stats.frames_submitted.fetch_add(1, Relaxed);
                if self.pacing == Pacing::Offline {
                    if let Some(worker) = &self.worker {
                        worker.handle.thread().unpark();
                    }
                }
            }
            Err(rtrb::PushError::Full(job)) => self.free.push(job),
        }
    }

    /// Takes every result that came back and files it with its frame, if still wanted.
    fn collect(&mut self) {
        while let Ok(job) = self.results.pop() {
            self.stalled = false;
            let slot = (job.seq % self.pending.len() as u64) as usize;
            let pending = &mut self.pending[slot];
            if job.epoch == self.epoch && pending.seq == Some(job.seq) && pending.job.is_none() {
                pending.job = Some(job);
            } else {
                self.free.push(job);
            }
        }
    }

    fn play(&mut self, k: u64, spectra: &mut [Vec<Complex32>]) {
        let Some(j) = k.checked_sub(self.delay) else {
            // Frames before the stream started: silence, like the input was.
            spectra.iter_mut().for_each(|s| s.fill(Complex32::default()));
            return;
        };
        let slot = (j % self.pending.len() as u64) as usize;
        if self.pacing == Pacing::Offline && !self.stalled {
            self.stalled = !self.wait_for(slot, j);
        }
        let pending = &mut self.pending[slot];
        let job = pending.job.take();
        match &job {
            Some(job) if job.outcome == Outcome::Done => {
                for ((out, kept), gains) in spectra.iter_mut().zip(&pending.spectra).zip(job.gain.chunks_exact(self.bins)) {
                    for ((o, x), g) in out.iter_mut().zip(kept).zip(gains) {
                        *o = x * g;
                    }
                }
            }
            _ => {
                for (out, kept) in spectra.iter_mut().zip(&pending.spectra) {
                    out.copy_from_slice(kept);
                }
                if !matches!(&job, Some(job) if job.outcome == Outcome::Failed) {
                    self.stats.late_frames.fetch_add(1, Relaxed);
                }
            }
        }
        if let Some(job) = job {
            self.free.push(job);
        }
    }

    /// Offline only: waits (bounded) until frame `j`'s result is back. Returns false if the wait
    /// ran out.
    fn wait_for(&mut self, slot: usize, j: u64) -> bool {
        let deadline = Instant::now() + OFFLINE_WAIT;
        let waiting = |pending: &Pending| pending.job.is_none() && pending.seq == Some(j);
        while waiting(&self.pending[slot]) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::yield_now();
            self.collect();
        }
        true
    }
}

impl Drop for FramePipeline {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Release);
        let Some(worker) = self.worker.take() else { return };
        worker.handle.thread().unpark();
        let deadline = Instant::now() + SHUTDOWN_WAIT;
        while !worker.handle.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        if worker.handle.is_finished() {
            let _ = worker.handle.join();
        } else {
            // A model stuck in a call: leave the thread to finish on its own rather than hang
            // the host. It exits at its next poll.
            nice_plug::nice_log!("restyle: the inference thread did not stop within {SHUTDOWN_WAIT:?}; detached");
        }
    }
}
