//! Log compression of mel energies and MFCCs (orthonormal DCT-II of the log-mel vector).
//!
//! The classifier's features are computed by the training pipeline with librosa / scipy; these
//! reproduce `librosa.power_to_db(S, ref=1.0, amin, top_db=None)` (or a natural log with an
//! additive floor) and `scipy.fft.dct(x, type=2, norm='ortho')[:n_mfcc]`, which is what
//! `librosa.feature.mfcc(S=log_mel, n_mfcc, dct_type=2, norm='ortho')` computes.

use std::f64::consts::PI;

/// librosa's default `amin` for `power_to_db`: the power floor before taking decibels.
pub const LIBROSA_AMIN: f32 = 1e-10;

/// How mel energies are compressed before the DCT (or before the classifier sees them).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LogScale {
    /// `ln(x + eps)`: natural log with an additive floor; smooth at 0, what most PyTorch
    /// pipelines use (e.g. `torch.log(mel + 1e-6)`).
    Natural { eps: f32 },
    /// `10 log10(max(x, amin))`: decibels of a power with a hard floor, like
    /// `librosa.power_to_db(x, ref=1.0, amin=amin, top_db=None)` (use [`LIBROSA_AMIN`]).
    Decibel { amin: f32 },
}

impl LogScale {
    /// Compresses one value.
    pub fn apply(self, x: f32) -> f32 {
        match self {
            LogScale::Natural { eps } => (x + eps).ln(),
            LogScale::Decibel { amin } => 10.0 * x.max(amin).log10(),
        }
    }
}

/// `out[i] = scale.apply(mel[i])`.
///
/// # Panics
/// If the slices differ in length.
pub fn log_mel(mel: &[f32], scale: LogScale, out: &mut [f32]) {
    assert_eq!(mel.len(), out.len(), "log_mel: input and output lengths differ");
    for (y, &x) in out.iter_mut().zip(mel) {
        *y = scale.apply(x);
    }
}

/// Mel-frequency cepstral coefficients: the first `n_mfcc` outputs of an orthonormal DCT-II
/// of a log-mel vector, through a matrix computed once.
#[derive(Clone, Debug)]
pub struct Mfcc {
    n_mels: usize,
    /// Row-major `n_mfcc x n_mels` DCT-II basis with orthonormal scaling:
    /// `basis[k][n] = s_k cos(π k (2n + 1) / (2 n_mels))`, `s_0 = sqrt(1/n_mels)`, `s_k = sqrt(2/n_mels)`.
    basis: Vec<f32>,
}

impl Mfcc {
    /// # Panics
    /// If `n_mfcc > n_mels` (the DCT has only `n_mels` coefficients) or `n_mels == 0`.
    pub fn new(n_mels: usize, n_mfcc: usize) -> Self {
        assert!(n_mels > 0, "Mfcc needs at least one mel band");
        assert!(n_mfcc <= n_mels, "Mfcc: n_mfcc ({n_mfcc}) > n_mels ({n_mels})");
        let size = n_mels as f64;
        let basis = (0..n_mfcc)
            .flat_map(|k| {
                let scale = if k == 0 { (1.0 / size).sqrt() } else { (2.0 / size).sqrt() };
                (0..n_mels).map(move |n| (scale * (PI * k as f64 * (2 * n + 1) as f64 / (2.0 * size)).cos()) as f32)
            })
            .collect();
        Self { n_mels, basis }
    }

    pub fn n_mels(&self) -> usize {
        self.n_mels
    }

    pub fn n_mfcc(&self) -> usize {
        self.basis.len() / self.n_mels
    }

    /// `out[k] = Σ_n basis[k][n] · log_mel[n]` for `k < n_mfcc`.
    ///
    /// # Panics
    /// If `log_mel` does not have `n_mels` values or `out` does not have `n_mfcc`.
    pub fn apply(&self, log_mel: &[f32], out: &mut [f32]) {
        assert_eq!(log_mel.len(), self.n_mels, "Mfcc::apply: log_mel must have n_mels values");
        assert_eq!(out.len(), self.n_mfcc(), "Mfcc::apply: out must have n_mfcc values");
        for (row, y) in self.basis.chunks_exact(self.n_mels).zip(out.iter_mut()) {
            *y = row.iter().zip(log_mel).map(|(b, x)| b * x).sum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `x[i] = 3 sin(0.37 i) + 0.1 i`, the input of the scipy reference below.
    fn test_vector(len: usize) -> Vec<f32> {
        (0..len).map(|i| 3.0 * (0.37 * i as f64).sin() as f32 + 0.1 * i as f32).collect()
    }

    #[test]
    fn dct_matches_scipy_orthonormal_dct_ii() {
        // Produced with scipy 1.17.1: scipy.fft.dct(x, type=2, norm='ortho')[:13] for the
        // 40-value test vector (librosa.feature.mfcc(S=x[:, None], n_mfcc=13) agrees).
        let expected = [
            14.193142089874847,
            -6.249548097149921,
            3.20595139895007,
            0.797071485547356,
            9.388647928549414,
            -7.781800911512461,
            -4.1895197637089465,
            -0.9256205107652349,
            -1.3731199112628358,
            -0.4397900214250231,
            -0.7303129092288365,
            -0.26514189630500845,
            -0.46040525300820123,
        ];
        let mfcc = Mfcc::new(40, 13);
        let mut out = [0.0f32; 13];
        mfcc.apply(&test_vector(40), &mut out);
        for (k, (&y, &e)) in out.iter().zip(&expected).enumerate() {
            assert!((f64::from(y) - e).abs() <= 1e-5 * e.abs().max(1.0), "c{k}: {y} vs {e}");
        }
    }

    #[test]
    fn full_dct_is_orthonormal_so_energy_is_preserved() {
        let n = 32;
        let mfcc = Mfcc::new(n, n);
        let x = test_vector(n);
        let mut c = vec![0.0; n];
        mfcc.apply(&x, &mut c);
        let energy = |v: &[f32]| v.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>();
        let (ex, ec) = (energy(&x), energy(&c));
        assert!((ex - ec).abs() <= 1e-5 * ex, "Parseval: {ex} vs {ec}");
    }

    #[test]
    fn constant_log_mel_has_only_a_dc_coefficient() {
        let mfcc = Mfcc::new(40, 20);
        let mut c = [0.0f32; 20];
        mfcc.apply(&[2.0; 40], &mut c);
        assert!((c[0] - 2.0 * 40f32.sqrt()).abs() < 1e-5, "c0 = {}", c[0]);
        assert!(c[1..].iter().all(|v| v.abs() < 1e-5), "{c:?}");
    }

    #[test]
    fn log_scales_follow_their_formulas() {
        let mel = [0.0, 1e-12, 1.0, 100.0];
        let mut out = [0.0; 4];
        log_mel(&mel, LogScale::Decibel { amin: LIBROSA_AMIN }, &mut out);
        let expected_db = [-100.0, -100.0, 0.0, 20.0];
        for (y, e) in out.iter().zip(expected_db) {
            assert!((y - e).abs() < 1e-4, "dB: {y} vs {e}");
        }
        log_mel(&mel, LogScale::Natural { eps: 1e-6 }, &mut out);
        let expected_ln = [1e-6f64.ln(), (1e-6f64 + 1e-12).ln(), (1.0f64 + 1e-6).ln(), (100.0f64 + 1e-6).ln()];
        for (y, e) in out.iter().zip(expected_ln) {
            assert!((f64::from(*y) - e).abs() < 1e-5, "ln: {y} vs {e}");
        }
    }
}
