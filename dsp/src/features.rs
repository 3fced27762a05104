//! The features the generator reads and writes (see `docs/CONTRACT.md`).

use crate::Complex32;

/// Floor inside the logarithm: -115 dB below a full-scale bin, and no `ln(0)`.
pub const LOGMAG_EPS: f32 = 1e-10;

/// `out[b] = 0.5 * ln(re² + im² + LOGMAG_EPS)`: the natural log of each bin's magnitude.
pub fn log_magnitude(spectrum: &[Complex32], out: &mut [f32]) {
    for (o, x) in out.iter_mut().zip(spectrum) {
        *o = 0.5 * (x.norm_sqr() + LOGMAG_EPS).ln();
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
}
