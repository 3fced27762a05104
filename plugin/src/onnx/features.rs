//! The style classifier's input, computed from the generator's log-magnitude frames exactly as
//! the training pipeline does (models/restyle_models/signal.py `classifier_features`, recipe in
//! the manifest): per frame the log-mel `ln(mel(power) + eps)`; over the last `window_frames`
//! frames the mean log-mel, then the mean absolute change from frame to frame. The first half
//! says what the timbre is, the second how it moves (attack, vibrato), which an EQ cannot fake.

use restyle_dsp::mel::{MelFilterbank, MelNorm, MelScale};

use crate::engine::{MODEL_RATE, N_FFT};
use crate::pack::FeatureRecipe;

/// The floor inside the generator's log-magnitude (docs/CONTRACT.md), removed before the mel.
const LOGMAG_EPS: f64 = 1e-10;

/// Streaming feature extractor: push one frame per hop, read the features when the window is full.
pub struct StyleFeatures {
    filterbank: MelFilterbank,
    eps: f32,
    window: usize,
    /// The last `window` log-mel frames, a ring; `next` is the oldest.
    history: Vec<f32>,
    next: usize,
    /// Frames pushed since the last reset, up to `window`.
    filled: usize,
    /// One frame's power spectrum, reused.
    power: Vec<f32>,
    mel: Vec<f32>,
}

impl StyleFeatures {
    /// For a recipe that [`crate::pack::Manifest::validate`] accepted.
    pub fn new(recipe: &FeatureRecipe) -> Self {
        let mel = &recipe.mel;
        let scale = if mel.scale == "htk" { MelScale::Htk } else { MelScale::Slaney };
        let norm = if mel.norm == "none" { MelNorm::None } else { MelNorm::Slaney };
        let filterbank = MelFilterbank::new(MODEL_RATE as f32, N_FFT, mel.n_mels, mel.fmin_hz, mel.fmax_hz, scale, norm);
        Self {
            eps: recipe.log.eps,
            window: recipe.window_frames,
            history: vec![0.0; recipe.window_frames * mel.n_mels],
            next: 0,
            filled: 0,
            power: vec![0.0; filterbank.n_bins()],
            mel: vec![0.0; mel.n_mels],
            filterbank,
        }
    }

    /// The number of features, `2 * n_mels`.
    pub fn dim(&self) -> usize {
        2 * self.filterbank.n_mels()
    }

    /// Adds one frame of log-magnitudes (`n_fft / 2 + 1` bins).
    pub fn push(&mut self, logmag: &[f32]) {
        for (p, &lm) in self.power.iter_mut().zip(logmag) {
            *p = ((2.0 * f64::from(lm)).exp() - LOGMAG_EPS).max(0.0) as f32;
        }
        self.filterbank.apply(&self.power, &mut self.mel);
        let n = self.mel.len();
        let slot = &mut self.history[self.next * n..(self.next + 1) * n];
        for (h, &m) in slot.iter_mut().zip(&self.mel) {
            *h = (m + self.eps).ln();
        }
        self.next = (self.next + 1) % self.window;
        self.filled = (self.filled + 1).min(self.window);
    }

    /// Writes the features of the last `window_frames` frames into `out` (`dim()` values);
    /// returns false, writing nothing, until that many frames were pushed (or if `out` is not
    /// `dim()` long).
    pub fn features(&self, out: &mut [f32]) -> bool {
        let n = self.mel.len();
        if self.filled < self.window || out.len() != 2 * n {
            return false;
        }
        let frame = |age: usize| {
            let slot = (self.next + age) % self.window;
            &self.history[slot * n..(slot + 1) * n]
        };
        for band in 0..n {
            let mut level = 0.0f64;
            let mut change = 0.0f64;
            for age in 0..self.window {
                level += f64::from(frame(age)[band]);
                if age > 0 {
                    change += f64::from((frame(age)[band] - frame(age - 1)[band]).abs());
                }
            }
            out[band] = (level / self.window as f64) as f32;
            out[n + band] = (change / (self.window - 1) as f64) as f32;
        }
        true
    }

    /// Forgets the frames pushed so far.
    pub fn reset(&mut self) {
        self.next = 0;
        self.filled = 0;
    }
}
