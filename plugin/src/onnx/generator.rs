//! The pack's streaming generator as a [`FrameModel`]: one frame per channel per call, with the
//! model's recurrent state carried from call to call (docs/CONTRACT.md, "Generator ONNX
//! interface").

use anyhow::{ensure, Context, Result};
use ort::session::Session;
use ort::value::TensorRef;

use super::{interface_error, open, Provider};
use crate::model::{FrameBatch, FrameModel};
use crate::pack::{Pack, PackError, Role, BINS};

pub struct OnnxGenerator {
    session: Session,
    /// The pack's name, shown in the status line.
    name: String,
    styles: Vec<String>,
    /// "cpu", "cuda" or "directml": where the session really runs.
    provider: &'static str,
    /// Why the GPU asked for is not in use, if it is not.
    provider_note: Option<String>,
    /// The batch (channel count) the state below belongs to; a new count starts from zeros.
    channels: usize,
    /// `state_in` shape, batch first; the batch entry is rewritten per call.
    state_shape: Vec<i64>,
    /// Values of one channel's state (the product of the shape's tail).
    state_len: usize,
    /// The state of every channel, fed as `state_in` and replaced by `state_out` after each call.
    state: Vec<f32>,
    /// The engine's style weights repeated per channel, `[channels, S]`, reused across calls.
    style: Vec<f32>,
}

impl OnnxGenerator {
    /// Opens the pack's generator on `provider` (see [`Provider`]), after checking it against the
    /// manifest. Call it off the audio thread: the first session of a process also loads ONNX
    /// Runtime (50–100 ms measured here), and a session takes 1–30 ms.
    pub fn new(pack: &Pack, provider: Provider) -> Result<Self, PackError> {
        let opened = open(pack, Role::Generator, provider)?;
        let state_shape = pack.manifest.state_shape().to_vec();
        let state_len = state_shape[1..].iter().map(|&d| d as usize).product();
        let mut generator = Self {
            session: opened.session,
            name: pack.manifest.name.clone(),
            styles: pack.style_names(),
            provider: opened.provider,
            provider_note: opened.note,
            channels: 0,
            state_shape,
            state_len,
            state: Vec::new(),
            style: Vec::new(),
        };
        generator.refuse_non_finite(pack)?;
        Ok(generator)
    }

    /// Runs a few frames of a quiet, flat spectrum through each style and refuses the model if
    /// anything that comes back is not a number. A pack whose training diverged (NaN weights)
    /// has the right interface, so without this it would load and play dry for good.
    fn refuse_non_finite(&mut self, pack: &Pack) -> Result<(), PackError> {
        /// A flat spectrum some 35 dB below full scale, in the engine's log-magnitude units.
        const PROBE_LOGMAG: f32 = -2.0;
        const PROBE_FRAMES: usize = 4;
        let bins = BINS as usize;
        let logmag = vec![PROBE_LOGMAG; bins];
        let mut out = vec![0.0; bins];
        let s = self.styles.len();
        for slot in 0..s {
            let style: Vec<f32> = (0..s).map(|i| if i == slot { 1.0 } else { 0.0 }).collect();
            self.start(1);
            for _ in 0..PROBE_FRAMES {
                self.run_rows(&logmag, &style, 1, &mut out)
                    .map_err(|e| interface_error(pack, Role::Generator, format!("fails on a test frame: {e:#}")))?;
                if let Some(bin) = out.iter().position(|v| !v.is_finite()) {
                    let problem = format!(
                        "gives {} in bin {bin} of a quiet test frame in style '{}': its weights are not numbers (a training run that diverged?)",
                        out[bin], self.styles[slot]
                    );
                    return Err(interface_error(pack, Role::Generator, problem));
                }
            }
        }
        self.start(0);
        Ok(())
    }

    /// The execution provider in use: "cpu", "cuda" or "directml".
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// Why a GPU that was asked for ([`Provider::Gpu`]) is not in use.
    pub fn provider_note(&self) -> Option<&str> {
        self.provider_note.as_deref()
    }

    /// One frame of `channels` channels, each with its own style weights (`style` is
    /// `[channels, S]`): the contract's interface as it is. The engine uses one style for all
    /// channels ([`FrameModel::run`]); tests compare against fixtures made with a style per row.
    pub fn run_rows(&mut self, logmag: &[f32], style: &[f32], channels: usize, out: &mut [f32]) -> Result<()> {
        let bins = BINS as usize;
        let s = self.styles.len();
        ensure!(channels > 0 && logmag.len() == channels * bins, "the generator needs {bins} bins per channel, got {} values for {channels} channel(s)", logmag.len());
        ensure!(style.len() == channels * s, "the generator needs {s} style weights per channel, got {} for {channels}", style.len());
        ensure!(out.len() == logmag.len(), "output buffer has {} values, the frame {}", out.len(), logmag.len());
        if channels != self.channels {
            self.start(channels);
        }
        let outputs = self
            .session
            .run(ort::inputs![
                "logmag" => TensorRef::from_array_view(([channels, bins], logmag))?,
                "style" => TensorRef::from_array_view(([channels, s], style))?,
                "state_in" => TensorRef::from_array_view((&self.state_shape[..], &self.state[..]))?,
            ])
            .context("running the generator")?;
        let (_, logmag_out) = outputs["logmag_out"].try_extract_tensor::<f32>().context("reading logmag_out")?;
        let (_, state_out) = outputs["state_out"].try_extract_tensor::<f32>().context("reading state_out")?;
        ensure!(logmag_out.len() == out.len(), "the generator returned {} values for {} expected", logmag_out.len(), out.len());
        ensure!(state_out.len() == self.state.len(), "the generator returned a state of {} values, {} expected", state_out.len(), self.state.len());
        out.copy_from_slice(logmag_out);
        // A state that went non-finite would silence every later frame; start again from zero.
        if state_out.iter().all(|v| v.is_finite()) {
            self.state.copy_from_slice(state_out);
        } else {
            self.state.fill(0.0);
        }
        Ok(())
    }

    /// The state carried into the next call, `[channels, ...]` flattened (the parity tests
    /// compare it with the pipeline's).
    pub fn state(&self) -> &[f32] {
        &self.state
    }

    /// Starts a stream of `channels` channels from zero state.
    fn start(&mut self, channels: usize) {
        self.channels = channels;
        self.state_shape[0] = channels as i64;
        self.state.clear();
        self.state.resize(channels * self.state_len, 0.0);
    }
}

impl FrameModel for OnnxGenerator {
    fn name(&self) -> &str {
        &self.name
    }

    fn styles(&self) -> &[String] {
        &self.styles
    }

    fn run(&mut self, batch: &FrameBatch<'_>, out: &mut [f32]) -> Result<()> {
        let s = self.styles.len();
        let mut style = std::mem::take(&mut self.style);
        style.clear();
        for _ in 0..batch.channels {
            style.extend_from_slice(&batch.style[..s]);
        }
        let result = self.run_rows(batch.logmag, &style, batch.channels, out);
        self.style = style;
        result
    }

    fn reset(&mut self) {
        self.state.fill(0.0);
    }
}
