//! The frame model the inference thread runs, behind a small trait so the engine can be tested
//! with fakes and the ONNX generator can be swapped in without touching the audio path.
//!
//! A model maps each channel's log-magnitude spectrum (see `docs/CONTRACT.md`) to a target
//! log-magnitude, given the style weights. It may keep state from frame to frame.

use anyhow::Result;

/// The most styles a pack can offer: one style slot and one blend knob each.
pub const MAX_STYLES: usize = 8;

/// Non-negative style weights that sum to 1 over the pack's styles.
pub type StyleWeights = [f32; MAX_STYLES];

/// One frame of every channel, laid out channel after channel.
pub struct FrameBatch<'a> {
    pub logmag: &'a [f32],
    pub channels: usize,
    pub style: &'a StyleWeights,
}

impl FrameBatch<'_> {
    pub fn bins(&self) -> usize {
        self.logmag.len() / self.channels.max(1)
    }
}

pub trait FrameModel: Send {
    /// Human-readable name, shown in the status line and `restyle info`.
    fn name(&self) -> &str;

    /// The styles this model can be steered towards, in slot order.
    fn styles(&self) -> &[String];

    /// Writes the target log-magnitudes for `batch` into `out` (same layout as `batch.logmag`).
    fn run(&mut self, batch: &FrameBatch<'_>, out: &mut [f32]) -> Result<()>;

    /// Forgets any state carried from frame to frame (the host reset or restarted the stream).
    fn reset(&mut self) {}
}

/// Listens to the restyled output and says which style it sounds like (the editor's style meter).
pub trait StyleMeter: Send {
    /// Feeds one frame of output log-magnitudes (channels averaged). When a new estimate is
    /// ready, writes one confidence per style into `confidences` and returns `true`.
    fn push(&mut self, logmag: &[f32], confidences: &mut [f32]) -> Result<bool>;

    fn reset(&mut self) {}
}

/// What the inference thread runs: the generator, and the style meter when the pack has one.
pub struct Models {
    pub generator: Box<dyn FrameModel>,
    pub meter: Option<Box<dyn StyleMeter>>,
}

impl<M: FrameModel + 'static> From<Box<M>> for Models {
    fn from(generator: Box<M>) -> Self {
        Self { generator, meter: None }
    }
}

impl From<Box<dyn FrameModel>> for Models {
    fn from(generator: Box<dyn FrameModel>) -> Self {
        Self { generator, meter: None }
    }
}

/// Returns the input unchanged: the whole engine then reconstructs its input.
pub struct IdentityModel {
    styles: Vec<String>,
}

impl Default for IdentityModel {
    fn default() -> Self {
        Self { styles: vec!["Identity".to_owned()] }
    }
}

impl IdentityModel {
    /// An identity that keeps a pack's style names, so the controls still name them while the
    /// pack cannot run.
    pub fn with_styles(styles: Vec<String>) -> Self {
        Self { styles }
    }
}

impl FrameModel for IdentityModel {
    fn name(&self) -> &str {
        "identity"
    }

    fn styles(&self) -> &[String] {
        &self.styles
    }

    fn run(&mut self, batch: &FrameBatch<'_>, out: &mut [f32]) -> Result<()> {
        out.copy_from_slice(batch.logmag);
        Ok(())
    }
}

/// A deterministic spectral transform: each style is a fixed tone curve (in nepers per bin) and
/// the style weights blend the curves. It needs no model file, so it exercises the whole
/// pipeline — style weights, blending, a per-bin gain — where ONNX is not available.
pub struct ToneModel {
    styles: Vec<String>,
    /// `curves[s][bin]`: log-gain of style `s`.
    curves: Vec<Vec<f32>>,
}

/// A style's log-gain as a function of the bin.
type BinGain<'a> = Box<dyn Fn(usize) -> f32 + 'a>;

impl ToneModel {
    /// Tone curves for a spectrum of `bins` bins spanning 0 to `sample_rate / 2`.
    pub fn new(sample_rate: f32, bins: usize) -> Self {
        let nyquist = sample_rate / 2.0;
        let freq = |bin: usize| bin as f32 / (bins - 1) as f32 * nyquist;
        let octaves_from_1k = |bin: usize| (freq(bin).max(20.0) / 1000.0).log2();
        let band = |bin: usize, centre: f32, octaves: f32| {
            let d = (freq(bin).max(20.0) / centre).log2() / octaves;
            (-d * d).exp()
        };
        // One neper is 8.7 dB.
        let shapes: [(&str, BinGain<'_>); 4] = [
            ("Bright", Box::new(|b| 0.35 * octaves_from_1k(b).clamp(-2.0, 4.0))),
            ("Warm", Box::new(|b| -0.35 * octaves_from_1k(b).clamp(-1.0, 4.0) + 0.4 * band(b, 200.0, 1.0))),
            ("Hollow", Box::new(|b| -1.2 * band(b, 900.0, 0.8))),
            ("Radio", Box::new(|b| 1.0 * band(b, 1500.0, 1.2) - 1.0)),
        ];
        Self {
            styles: shapes.iter().map(|(name, _)| (*name).to_owned()).collect(),
            curves: shapes.iter().map(|(_, curve)| (0..bins).map(curve).collect()).collect(),
        }
    }
}

impl FrameModel for ToneModel {
    fn name(&self) -> &str {
        "tone curves"
    }

    fn styles(&self) -> &[String] {
        &self.styles
    }

    fn run(&mut self, batch: &FrameBatch<'_>, out: &mut [f32]) -> Result<()> {
        let bins = batch.bins();
        anyhow::ensure!(
            self.curves.iter().all(|c| c.len() == bins),
            "tone curves were made for {} bins, the frame has {bins}",
            self.curves[0].len()
        );
        for (out, logmag) in out.chunks_exact_mut(bins).zip(batch.logmag.chunks_exact(bins)) {
            out.copy_from_slice(logmag);
            for (curve, &weight) in self.curves.iter().zip(batch.style.iter()) {
                if weight != 0.0 {
                    out.iter_mut().zip(curve).for_each(|(o, c)| *o += weight * c);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tone_model_blends_curves_linearly() {
        let mut model = ToneModel::new(48_000.0, 513);
        let logmag = vec![0.0; 513 * 2];
        let run = |model: &mut ToneModel, style: StyleWeights| {
            let mut out = vec![0.0; 513 * 2];
            model.run(&FrameBatch { logmag: &logmag, channels: 2, style: &style }, &mut out).unwrap();
            out
        };
        let mut bright = [0.0; MAX_STYLES];
        bright[0] = 1.0;
        let mut hollow = [0.0; MAX_STYLES];
        hollow[2] = 1.0;
        let mut half = [0.0; MAX_STYLES];
        half[0] = 0.5;
        half[2] = 0.5;
        let (a, b, mix) = (run(&mut model, bright), run(&mut model, hollow), run(&mut model, half));
        assert!(a[400] > 0.5, "Bright lifts the top");
        assert!(b[19] < -1.0, "Hollow scoops around 900 Hz");
        for i in 0..a.len() {
            assert!((mix[i] - 0.5 * (a[i] + b[i])).abs() < 1e-5);
        }
    }
}
