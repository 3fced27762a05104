//! Analysis/synthesis window pairs for overlap-add STFT processing.
//!
//! The pair decides the STFT's latency: output sample `n` is final once every frame whose
//! synthesis window covers it has been processed, so the latency is the length of the synthesis
//! window's non-zero tail. A symmetric pair costs almost a whole FFT length; the asymmetric pair
//! (Mauler & Martin, 2011) keeps a long analysis window for frequency resolution and a short
//! synthesis window for latency.

use std::f64::consts::PI;

/// Which window pair to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowShape {
    /// Long rising analysis window, short synthesis window of `2 * hop` at the end of the frame:
    /// latency `2 * hop - 1` samples. See `docs/CONTRACT.md` for the formulas.
    Asymmetric,
    /// Square-root periodic Hann for both analysis and synthesis: latency `n_fft - 1` samples.
    SqrtHann,
}

/// Why a window pair cannot be built for a configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WindowError {
    #[error("FFT size {n_fft} must be even and at least 4")]
    BadFftSize { n_fft: usize },
    #[error("hop {hop} must be at least 1 and divide the FFT size {n_fft}")]
    BadHop { n_fft: usize, hop: usize },
    #[error("the asymmetric window needs n_fft >= 4 * hop (got n_fft {n_fft}, hop {hop})")]
    AsymmetricTooShort { n_fft: usize, hop: usize },
    #[error("the {shape:?} windows do not overlap-add to a constant at hop {hop} (ripple {ripple:e})")]
    NotCola { shape: WindowShape, hop: usize, ripple: f64 },
}

/// An analysis window and the synthesis window that reconstructs it perfectly at `hop`.
///
/// The synthesis window includes the inverse FFT's `1 / n_fft` scaling and the overlap-add
/// normalisation, so `synthesis * irfft_unscaled(rfft(frame * analysis))` overlap-added at `hop`
/// gives back the input exactly.
#[derive(Debug, Clone)]
pub struct WindowPair {
    shape: WindowShape,
    hop: usize,
    analysis: Vec<f32>,
    synthesis: Vec<f32>,
    /// Samples from the first non-zero synthesis coefficient to the end of the frame.
    synthesis_support: usize,
}

/// Periodic Hann of length `len` evaluated at `n`.
fn hann(n: usize, len: usize) -> f64 {
    0.5 - 0.5 * (2.0 * PI * n as f64 / len as f64).cos()
}

impl WindowPair {
    pub fn new(shape: WindowShape, n_fft: usize, hop: usize) -> Result<Self, WindowError> {
        if n_fft < 4 || !n_fft.is_multiple_of(2) {
            return Err(WindowError::BadFftSize { n_fft });
        }
        if hop == 0 || !n_fft.is_multiple_of(hop) {
            return Err(WindowError::BadHop { n_fft, hop });
        }
        let (analysis, synthesis) = match shape {
            WindowShape::Asymmetric => asymmetric(n_fft, hop)?,
            WindowShape::SqrtHann => {
                let w: Vec<f64> = (0..n_fft).map(|n| hann(n, n_fft).sqrt()).collect();
                (w.clone(), w)
            }
        };
        let product: Vec<f64> = analysis.iter().zip(&synthesis).map(|(a, s)| a * s).collect();
        let overlap = overlap_sums(&product, hop);
        let mean = overlap.iter().sum::<f64>() / hop as f64;
        let ripple = overlap.iter().map(|s| (s / mean - 1.0).abs()).fold(0.0, f64::max);
        if mean.is_nan() || mean <= 0.0 || ripple > 1e-9 {
            return Err(WindowError::NotCola { shape, hop, ripple });
        }
        let scale = 1.0 / (mean * n_fft as f64);
        let synthesis: Vec<f32> = synthesis.iter().map(|s| (s * scale) as f32).collect();
        let first_nonzero = synthesis.iter().position(|&s| s != 0.0).unwrap_or(n_fft);
        Ok(Self {
            shape,
            hop,
            analysis: analysis.iter().map(|&a| a as f32).collect(),
            synthesis,
            synthesis_support: n_fft - first_nonzero,
        })
    }

    pub fn shape(&self) -> WindowShape {
        self.shape
    }

    pub fn n_fft(&self) -> usize {
        self.analysis.len()
    }

    pub fn hop(&self) -> usize {
        self.hop
    }

    pub fn analysis(&self) -> &[f32] {
        &self.analysis
    }

    /// The synthesis window, scaled by `1 / n_fft` and the overlap-add normalisation.
    pub fn synthesis(&self) -> &[f32] {
        &self.synthesis
    }

    /// The STFT's own latency in samples: the non-zero tail of the synthesis window.
    pub fn latency(&self) -> usize {
        self.synthesis_support.max(self.hop)
    }
}

/// The asymmetric pair of `docs/CONTRACT.md`, before normalisation.
fn asymmetric(n_fft: usize, hop: usize) -> Result<(Vec<f64>, Vec<f64>), WindowError> {
    let (n, m) = (n_fft, hop);
    if n < 4 * m {
        return Err(WindowError::AsymmetricTooShort { n_fft, hop });
    }
    let analysis: Vec<f64> = (0..n)
        .map(|i| {
            if i < n - m {
                hann(i, 2 * (n - m)).sqrt()
            } else {
                hann(i - (n - 2 * m), 2 * m).sqrt()
            }
        })
        .collect();
    let synthesis = (0..n)
        .map(|i| if i < n - 2 * m { 0.0 } else { hann(i - (n - 2 * m), 2 * m) / analysis[i] })
        .map(|s| if s.is_finite() { s } else { 0.0 })
        .collect();
    Ok((analysis, synthesis))
}

/// For each phase `j < hop`, the sum of `window[j + k * hop]` over all `k`.
fn overlap_sums(window: &[f64], hop: usize) -> Vec<f64> {
    (0..hop).map(|j| window.iter().skip(j).step_by(hop).sum()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asymmetric_latency_is_twice_the_hop_less_one() {
        let pair = WindowPair::new(WindowShape::Asymmetric, 1024, 128).unwrap();
        assert_eq!(pair.latency(), 255);
        assert!(pair.synthesis()[..1024 - 256].iter().all(|&s| s == 0.0));
    }

    #[test]
    fn asymmetric_matches_contract_formula() {
        let pair = WindowPair::new(WindowShape::Asymmetric, 1024, 128).unwrap();
        let a = pair.analysis();
        assert!((a[448] as f64 - hann(448, 1792).sqrt()).abs() < 1e-7);
        assert!((a[1000] as f64 - hann(1000 - 768, 256).sqrt()).abs() < 1e-7);
        // Analysis times synthesis is a Hann of 2 * hop at the end of the frame, over n_fft.
        let s = pair.synthesis();
        let product = a[900] as f64 * s[900] as f64 * 1024.0;
        assert!((product - hann(900 - 768, 256)).abs() < 1e-6);
    }

    #[test]
    fn sqrt_hann_latency_is_almost_a_frame() {
        let pair = WindowPair::new(WindowShape::SqrtHann, 512, 128).unwrap();
        assert_eq!(pair.latency(), 511);
    }

    #[test]
    fn bad_configurations_are_refused() {
        assert_eq!(
            WindowPair::new(WindowShape::Asymmetric, 1000, 300).unwrap_err(),
            WindowError::BadHop { n_fft: 1000, hop: 300 }
        );
        assert!(matches!(
            WindowPair::new(WindowShape::Asymmetric, 256, 128),
            Err(WindowError::AsymmetricTooShort { .. })
        ));
        // sqrt-Hann at 50% overlap is not COLA for the product (a Hann at hop n/2 is, but the
        // product of two sqrt-Hann at hop 3n/4 is not).
        assert!(matches!(
            WindowPair::new(WindowShape::SqrtHann, 16, 16),
            Err(WindowError::NotCola { .. })
        ));
    }
}
