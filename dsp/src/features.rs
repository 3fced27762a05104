//! Per-bin spectral features shared by the engine and the training pipeline.
//!
//! The generator reads and writes log-magnitudes in the units fixed by `docs/CONTRACT.md`:
//! `logmag[b] = 0.5 * ln(re[b]^2 + im[b]^2 + 1e-10)`. Computing them anywhere else with another
//! floor or another log would silently shift every feature the model sees.

use crate::Complex32;

/// The power floor inside the contract's log-magnitude, so silent bins give a finite
/// `0.5 * ln(1e-10) ≈ -11.51` instead of `-inf`.
pub const LOGMAG_EPS: f32 = 1e-10;

/// `out[b] = 0.5 * ln(re^2 + im^2 + LOGMAG_EPS)`, in `f32` with numpy's order of operations.
///
/// Only the common length of the two slices is processed (checked in debug builds).
pub fn log_magnitude(spectrum: &[Complex32], out: &mut [f32]) {
    debug_assert_eq!(spectrum.len(), out.len(), "log_magnitude: input and output lengths differ");
    for (y, z) in out.iter_mut().zip(spectrum) {
        *y = 0.5 * (z.re * z.re + z.im * z.im + LOGMAG_EPS).ln();
    }
}

/// `out[b] = re^2 + im^2`: the power spectrum a mel filterbank takes.
///
/// Only the common length of the two slices is processed (checked in debug builds).
pub fn power_spectrum(spectrum: &[Complex32], out: &mut [f32]) {
    debug_assert_eq!(spectrum.len(), out.len(), "power_spectrum: input and output lengths differ");
    for (y, z) in out.iter_mut().zip(spectrum) {
        *y = z.re * z.re + z.im * z.im;
    }
}

/// Inverse of [`log_magnitude`]: `out[b] = sqrt(max(exp(2 logmag[b]) - LOGMAG_EPS, 0))`.
///
/// Exact for the contract's units up to `f32` rounding; bins at or below the floor map to 0.
///
/// Only the common length of the two slices is processed (checked in debug builds).
pub fn magnitude_from_logmag(logmag: &[f32], out: &mut [f32]) {
    debug_assert_eq!(logmag.len(), out.len(), "magnitude_from_logmag: input and output lengths differ");
    for (y, &l) in out.iter_mut().zip(logmag) {
        let power = (2.0 * f64::from(l)).exp() - f64::from(LOGMAG_EPS);
        *y = power.max(0.0).sqrt() as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_magnitude_is_ln_of_the_magnitude() {
        let spectrum = [Complex32::new(3.0, 4.0), Complex32::new(0.0, 0.0)];
        let mut out = [0.0; 2];
        log_magnitude(&spectrum, &mut out);
        assert!((out[0] - 5.0f32.ln()).abs() < 1e-6);
        assert!((out[1] - 0.5 * 1e-10f32.ln()).abs() < 1e-4);
    }

    #[test]
    fn log_magnitude_follows_the_contract_formula() {
        let spectrum = [
            Complex32::new(0.0f32, 0.0),
            Complex32::new(3.0, 4.0),
            Complex32::new(-1e-3, 2e-3),
            Complex32::new(1e4, -1e4),
        ];
        let mut out = [0.0f32; 4];
        log_magnitude(&spectrum, &mut out);
        for (z, y) in spectrum.iter().zip(out) {
            let (re, im) = (f64::from(z.re), f64::from(z.im));
            let expected = 0.5 * (re * re + im * im + 1e-10).ln();
            assert!((f64::from(y) - expected).abs() <= 1e-6 * expected.abs().max(1.0), "{z}: {y} vs {expected}");
        }
        assert!((out[0] - 0.5 * 1e-10f32.ln()).abs() < 1e-6, "silence floor {}", out[0]);
        assert!((out[1] - 5f32.ln()).abs() < 1e-6, "|3+4i| = 5 gives {}", out[1]);
    }

    #[test]
    fn magnitude_from_logmag_inverts_log_magnitude() {
        let spectrum: Vec<Complex32> =
            (0..64).map(|i| Complex32::new((i as f32 * 0.7).sin() * 10f32.powi(i % 6 - 3), (i as f32).cos())).collect();
        let mut logmag = vec![0.0; 64];
        let mut magnitude = vec![0.0; 64];
        log_magnitude(&spectrum, &mut logmag);
        magnitude_from_logmag(&logmag, &mut magnitude);
        for (z, m) in spectrum.iter().zip(&magnitude) {
            assert!((m - z.norm()).abs() <= 1e-5 * z.norm().max(1e-3), "{z}: {m} vs {}", z.norm());
        }
        let mut silent = [1.0f32];
        magnitude_from_logmag(&[0.5 * LOGMAG_EPS.ln()], &mut silent);
        assert!(silent[0] < 1e-6, "floor maps to ~0, got {}", silent[0]);
    }

    #[test]
    fn power_spectrum_is_squared_magnitude() {
        let mut out = [0.0f32; 2];
        power_spectrum(&[Complex32::new(3.0, 4.0), Complex32::new(-2.0, 0.0)], &mut out);
        assert_eq!(out, [25.0, 4.0]);
    }
}
