//! The style classifier's input, computed from the generator's log-magnitude frames exactly as
//! the training pipeline does (models/restyle_models/signal.py `classifier_features`, recipe in
//! the manifest): per frame the log-mel `ln(mel(power) + eps)` and each band's peakiness
//! (log of arithmetic over geometric mean of its bin powers); over the last `window_frames`
//! frames the mean log-mel, the mean rise and the mean fall from frame to frame, and the mean
//! peakiness. The first block says what the spectral envelope is; the others how it moves
//! (attack, decay, vibrato) and how harmonic each band is, which an EQ cannot fake.

use restyle_dsp::mel::{MelFilterbank, MelNorm, MelScale};

use crate::engine::{MODEL_RATE, N_FFT};
use crate::pack::FeatureRecipe;

/// The floor inside the generator's log-magnitude (docs/CONTRACT.md), removed before the mel.
const LOGMAG_EPS: f64 = 1e-10;

/// Mean log-mel, mean rise, mean fall, mean peakiness.
pub const FEATURES_PER_BAND: usize = 4;

/// `ln(Σ W p) - ln(Σ W) - Σ(W · 2 logmag) / Σ W` over band `band`'s weights `W`, with the bin
/// powers `p = exp(2 logmag)` (the contract's floor included, `floored_power`): the log of the
/// arithmetic over the geometric mean, 0 for a flat band, large for a few strong harmonics.
fn band_peakiness(filterbank: &MelFilterbank, band: usize, logmag: &[f32], floored_power: &[f64]) -> f32 {
    let (start, weights) = filterbank.band(band);
    let (mut power, mut total, mut log_power) = (0.0f64, 0.0f64, 0.0f64);
    for ((&w, &lm), &p) in weights.iter().zip(&logmag[start..]).zip(&floored_power[start..]) {
        let w = f64::from(w);
        power += w * p;
        total += w;
        log_power += w * 2.0 * f64::from(lm);
    }
    if total > 0.0 && power > 0.0 {
        (power.ln() - total.ln() - log_power / total) as f32
    } else {
        0.0
    }
}

/// Streaming feature extractor: push one frame per hop, read the features when the window is full.
pub struct StyleFeatures {
    filterbank: MelFilterbank,
    eps: f32,
    window: usize,
    /// The last `window` log-mel frames, a ring; `next` is the oldest.
    history: Vec<f32>,
    /// The same frames' band peakiness, in the same ring order.
    peakiness: Vec<f32>,
    next: usize,
    /// Frames pushed since the last reset, up to `window`.
    filled: usize,
    /// One frame's `exp(2 logmag)`, floor included: the mel bands overlap, so each bin's power
    /// is computed once here rather than once per band.
    floored_power: Vec<f64>,
    /// The same without the floor, for the mel.
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
            peakiness: vec![0.0; recipe.window_frames * mel.n_mels],
            next: 0,
            filled: 0,
            floored_power: vec![0.0; filterbank.n_bins()],
            power: vec![0.0; filterbank.n_bins()],
            mel: vec![0.0; mel.n_mels],
            filterbank,
        }
    }

    /// The number of features, `4 * n_mels`.
    pub fn dim(&self) -> usize {
        FEATURES_PER_BAND * self.filterbank.n_mels()
    }

    /// Adds one frame of log-magnitudes (`n_fft / 2 + 1` bins).
    pub fn push(&mut self, logmag: &[f32]) {
        for ((p, floored), &lm) in self.power.iter_mut().zip(&mut self.floored_power).zip(logmag) {
            *floored = (2.0 * f64::from(lm)).exp();
            *p = (*floored - LOGMAG_EPS).max(0.0) as f32;
        }
        self.filterbank.apply(&self.power, &mut self.mel);
        let n = self.mel.len();
        let slot = &mut self.history[self.next * n..(self.next + 1) * n];
        for (h, &m) in slot.iter_mut().zip(&self.mel) {
            *h = (m + self.eps).ln();
        }
        for (band, peak) in self.peakiness[self.next * n..(self.next + 1) * n].iter_mut().enumerate() {
            *peak = band_peakiness(&self.filterbank, band, logmag, &self.floored_power);
        }
        self.next = (self.next + 1) % self.window;
        self.filled = (self.filled + 1).min(self.window);
    }

    /// Writes the features of the last `window_frames` frames into `out` (`dim()` values);
    /// returns false, writing nothing, until that many frames were pushed (or if `out` is not
    /// `dim()` long).
    pub fn features(&self, out: &mut [f32]) -> bool {
        let n = self.mel.len();
        if self.filled < self.window || out.len() != FEATURES_PER_BAND * n {
            return false;
        }
        let slot = |age: usize| (self.next + age) % self.window * n;
        for band in 0..n {
            let (mut level, mut rise, mut fall, mut peak) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
            for age in 0..self.window {
                let now = f64::from(self.history[slot(age) + band]);
                level += now;
                peak += f64::from(self.peakiness[slot(age) + band]);
                if age > 0 {
                    let change = now - f64::from(self.history[slot(age - 1) + band]);
                    rise += change.max(0.0);
                    fall += (-change).max(0.0);
                }
            }
            let (frames, pairs) = (self.window as f64, (self.window - 1) as f64);
            out[band] = (level / frames) as f32;
            out[n + band] = (rise / pairs) as f32;
            out[2 * n + band] = (fall / pairs) as f32;
            out[3 * n + band] = (peak / frames) as f32;
        }
        true
    }

    /// Forgets the frames pushed so far.
    pub fn reset(&mut self) {
        self.history.fill(0.0);
        self.peakiness.fill(0.0);
        self.next = 0;
        self.filled = 0;
    }
}
