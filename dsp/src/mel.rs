//! Mel filterbank with the semantics of `librosa.filters.mel`.
//!
//! The training pipeline computes its mel features with librosa, so the plugin's classifier
//! features are only meaningful if this filterbank gives the same weights: both mel scales
//! (`htk=True` / `htk=False`) and both normalisations (`norm=None` / `norm='slaney'`) are
//! reproduced, computed in `f64` and stored as `f32` exactly as librosa does.
//!
//! Each triangular filter is stored as its run of non-zero weights, so [`MelFilterbank::apply`]
//! touches only the bins a band covers and never allocates.

/// Which Hz ↔ mel mapping spaces the band edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MelScale {
    /// `2595 log10(1 + f / 700)` (librosa `htk=True`).
    Htk,
    /// Slaney's Auditory Toolbox scale: linear below 1 kHz, logarithmic above (librosa's default).
    Slaney,
}

/// How each triangle is scaled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MelNorm {
    /// Peak weight 1 (librosa `norm=None`).
    None,
    /// Each triangle divided by half its width in Hz, so its area is about 1 (librosa `norm='slaney'`).
    Slaney,
}

/// Slaney scale: width of one mel in the linear region, in Hz.
const SLANEY_HZ_PER_MEL: f64 = 200.0 / 3.0;
/// Slaney scale: where the linear region ends and the log region begins, in Hz.
const SLANEY_MIN_LOG_HZ: f64 = 1000.0;
/// Slaney scale: the mel value at [`SLANEY_MIN_LOG_HZ`] (= 15).
const SLANEY_MIN_LOG_MEL: f64 = SLANEY_MIN_LOG_HZ / SLANEY_HZ_PER_MEL;

/// Slaney scale: natural-log step per mel in the log region (27 mels per factor of 6.4).
fn slaney_log_step() -> f64 {
    6.4f64.ln() / 27.0
}

impl MelScale {
    /// Frequency in Hz to mels (librosa `hz_to_mel`).
    pub fn hz_to_mel(self, hz: f64) -> f64 {
        match self {
            MelScale::Htk => 2595.0 * (1.0 + hz / 700.0).log10(),
            MelScale::Slaney if hz >= SLANEY_MIN_LOG_HZ => {
                SLANEY_MIN_LOG_MEL + (hz / SLANEY_MIN_LOG_HZ).ln() / slaney_log_step()
            }
            MelScale::Slaney => hz / SLANEY_HZ_PER_MEL,
        }
    }

    /// Mels to frequency in Hz (librosa `mel_to_hz`).
    pub fn mel_to_hz(self, mel: f64) -> f64 {
        match self {
            MelScale::Htk => 700.0 * (10f64.powf(mel / 2595.0) - 1.0),
            MelScale::Slaney if mel >= SLANEY_MIN_LOG_MEL => {
                SLANEY_MIN_LOG_HZ * (slaney_log_step() * (mel - SLANEY_MIN_LOG_MEL)).exp()
            }
            MelScale::Slaney => SLANEY_HZ_PER_MEL * mel,
        }
    }
}

/// One triangular band: its non-zero weights start at FFT bin `first_bin`.
#[derive(Clone, Debug)]
struct Band {
    first_bin: usize,
    /// Range of this band's weights in [`MelFilterbank::weights`].
    start: usize,
    len: usize,
}

/// A bank of `n_mels` triangular filters over the `n_fft / 2 + 1` bins of a real FFT.
#[derive(Clone, Debug)]
pub struct MelFilterbank {
    /// Number of FFT bins [`Self::apply`] expects, `n_fft / 2 + 1`.
    n_bins: usize,
    bands: Vec<Band>,
    /// Every band's non-zero weights, back to back.
    weights: Vec<f32>,
}

impl MelFilterbank {
    /// Builds the filterbank librosa would build with
    /// `librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max,
    /// htk=(scale == Htk), norm=(None | 'slaney'))`.
    ///
    /// `f_max` is in Hz; pass `sample_rate / 2` for librosa's default. Bands narrower than one
    /// FFT bin come out empty (all zero), as in librosa.
    pub fn new(
        sample_rate: f32,
        n_fft: usize,
        n_mels: usize,
        f_min: f32,
        f_max: f32,
        scale: MelScale,
        norm: MelNorm,
    ) -> Self {
        let n_bins = n_fft / 2 + 1;
        let sample_rate = f64::from(sample_rate);
        let bin_hz: Vec<f64> = (0..n_bins).map(|b| b as f64 * sample_rate / n_fft as f64).collect();
        let edges_hz = mel_band_edges(n_mels, f64::from(f_min), f64::from(f_max), scale);

        let mut bands = Vec::with_capacity(n_mels);
        let mut weights = Vec::new();
        for m in 0..n_mels {
            let (lower, centre, upper) = (edges_hz[m], edges_hz[m + 1], edges_hz[m + 2]);
            let area_norm = match norm {
                MelNorm::None => 1.0,
                MelNorm::Slaney => 2.0 / (upper - lower),
            };
            let start = weights.len();
            let mut first_bin = 0;
            for (b, &hz) in bin_hz.iter().enumerate() {
                // Same expression order as librosa: rising edge, falling edge, clipped at 0.
                let rising = -(lower - hz) / (centre - lower);
                let falling = (upper - hz) / (upper - centre);
                let weight = 0f64.max(rising.min(falling)) as f32;
                if weight > 0.0 {
                    if weights.len() == start {
                        first_bin = b;
                    }
                    // librosa stores the triangle as f32 first, then scales it in f64.
                    weights.push((f64::from(weight) * area_norm) as f32);
                }
            }
            bands.push(Band { first_bin, start, len: weights.len() - start });
        }
        Self { n_bins, bands, weights }
    }

    pub fn n_mels(&self) -> usize {
        self.bands.len()
    }

    pub fn n_bins(&self) -> usize {
        self.n_bins
    }

    /// Band `mel`'s first non-zero FFT bin and its non-zero weights (empty for an empty band).
    pub fn band(&self, mel: usize) -> (usize, &[f32]) {
        let band = &self.bands[mel];
        (band.first_bin, &self.weights[band.start..band.start + band.len])
    }

    /// `out[m] = Σ_b W[m][b] · spectrum[b]`: mel energies from a power (or magnitude) spectrum.
    ///
    /// # Panics
    /// If `spectrum` does not have [`Self::n_bins`] values or `out` does not have [`Self::n_mels`].
    pub fn apply(&self, spectrum: &[f32], out: &mut [f32]) {
        assert_eq!(spectrum.len(), self.n_bins, "spectrum must have n_fft / 2 + 1 bins");
        assert_eq!(out.len(), self.bands.len(), "out must have n_mels values");
        for (band, y) in self.bands.iter().zip(out.iter_mut()) {
            let weights = &self.weights[band.start..band.start + band.len];
            let bins = &spectrum[band.first_bin..band.first_bin + band.len];
            *y = weights.iter().zip(bins).map(|(w, x)| w * x).sum();
        }
    }
}

/// The `n_mels + 2` band edges in Hz, equally spaced in mels from `f_min` to `f_max`, computed
/// like `np.linspace` in librosa's `mel_frequencies` (the last edge is exactly `f_max`'s mel).
fn mel_band_edges(n_mels: usize, f_min: f64, f_max: f64, scale: MelScale) -> Vec<f64> {
    let count = n_mels + 2;
    let (lo, hi) = (scale.hz_to_mel(f_min), scale.hz_to_mel(f_max));
    let step = (hi - lo) / (count - 1) as f64;
    (0..count).map(|i| if i + 1 == count { hi } else { i as f64 * step + lo }).map(|mel| scale.mel_to_hz(mel)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One reference filter value from librosa.
    struct Expected {
        mel: usize,
        first_bin: usize,
        last_bin: usize,
        /// `(bin, weight)` pairs.
        values: [(usize, f64); 3],
    }

    /// The references are librosa's `f32` weights printed as `f64`, so they keep full precision.
    fn assert_close(actual: f32, expected: f64, rel: f64, what: &str) {
        let tol = rel * expected.abs();
        assert!((f64::from(actual) - expected).abs() <= tol, "{what}: {actual} vs {expected}");
    }

    fn check_against_librosa(bank: &MelFilterbank, expected: &[Expected]) {
        for e in expected {
            let (first, weights) = bank.band(e.mel);
            assert_eq!(first, e.first_bin, "mel {} first bin", e.mel);
            assert_eq!(first + weights.len() - 1, e.last_bin, "mel {} last bin", e.mel);
            for &(bin, value) in &e.values {
                assert_close(weights[bin - first], value, 1e-6, &format!("mel {} bin {bin}", e.mel));
            }
        }
    }

    /// `x[b] = b % 7 + 1`, the test vector the reference `W @ x` values were computed from.
    fn ramp_spectrum(n_bins: usize) -> Vec<f32> {
        (0..n_bins).map(|b| (b % 7 + 1) as f32).collect()
    }

    fn check_apply(bank: &MelFilterbank, expected: &[(usize, f64)]) {
        let x = ramp_spectrum(bank.n_bins());
        let mut y = vec![0.0; bank.n_mels()];
        bank.apply(&x, &mut y);
        for &(m, value) in expected {
            assert_close(y[m], value, 1e-5, &format!("apply mel {m}"));
        }
    }

    // The reference numbers below were produced with librosa 0.11.0 / numpy (float32 output):
    //   W = librosa.filters.mel(sr=..., n_fft=..., n_mels=..., fmin=..., fmax=..., htk=..., norm=...)
    //   first/last non-zero bin of W[m], W[m, b] for the listed b, and
    //   (W @ x)[m] with x = (np.arange(n_bins) % 7 + 1).astype(np.float32).

    #[test]
    fn slaney_scale_slaney_norm_matches_librosa_defaults() {
        // sr=22050, n_fft=2048, n_mels=128 (librosa's defaults otherwise).
        let bank = MelFilterbank::new(22050.0, 2048, 128, 0.0, 11025.0, MelScale::Slaney, MelNorm::Slaney);
        check_against_librosa(
            &bank,
            &[
                Expected {
                    mel: 0,
                    first_bin: 1,
                    last_bin: 4,
                    values: [(1, 0.016182852908968925), (2, 0.03236570581793785), (2, 0.03236570581793785)],
                },
                Expected {
                    mel: 1,
                    first_bin: 3,
                    last_bin: 7,
                    values: [(3, 0.00977923534810543), (4, 0.025962088257074356), (5, 0.03539370372891426)],
                },
                Expected {
                    mel: 64,
                    first_bin: 182,
                    last_bin: 191,
                    values: [(182, 0.0010807637590914965), (183, 0.004899886902421713), (187, 0.01727883145213127)],
                },
                Expected {
                    mel: 127,
                    first_bin: 971,
                    last_bin: 1023,
                    values: [(971, 7.184815331129357e-06), (972, 0.00014095657388679683), (997, 0.0034852505195885897)],
                },
            ],
        );
        check_apply(
            &bank,
            &[(0, 0.3094593286514282), (1, 0.5187935829162598), (64, 0.396864652633667), (127, 0.3714069128036499)],
        );
    }

    #[test]
    fn htk_scale_without_norm_matches_librosa() {
        // sr=48000, n_fft=1024, n_mels=40, fmin=0, fmax=None, htk=True, norm=None.
        let bank = MelFilterbank::new(48000.0, 1024, 40, 0.0, 24000.0, MelScale::Htk, MelNorm::None);
        check_against_librosa(
            &bank,
            &[
                Expected {
                    mel: 0,
                    first_bin: 1,
                    last_bin: 2,
                    values: [(1, 0.7374679446220398), (2, 0.5645997524261475), (1, 0.7374679446220398)],
                },
                Expected {
                    mel: 1,
                    first_bin: 2,
                    last_bin: 4,
                    values: [(2, 0.43540024757385254), (3, 0.8978016376495361), (3, 0.8978016376495361)],
                },
                Expected {
                    mel: 20,
                    first_bin: 71,
                    last_bin: 86,
                    values: [(71, 0.12953925132751465), (72, 0.2592024803161621), (78, 0.9659132957458496)],
                },
                Expected {
                    mel: 39,
                    first_bin: 428,
                    last_bin: 511,
                    values: [(428, 0.0019101864891126752), (429, 0.026777958497405052), (468, 0.9966210126876831)],
                },
            ],
        );
        check_apply(
            &bank,
            &[(0, 3.1687350273132324), (1, 6.287423133850098), (20, 31.967422485351562), (39, 168.35647583007812)],
        );
    }

    #[test]
    fn slaney_scale_without_norm_and_band_limits_matches_librosa() {
        // sr=48000, n_fft=1024, n_mels=40, fmin=20, fmax=16000, htk=False, norm=None.
        let bank = MelFilterbank::new(48000.0, 1024, 40, 20.0, 16000.0, MelScale::Slaney, MelNorm::None);
        check_against_librosa(
            &bank,
            &[
                Expected {
                    mel: 0,
                    first_bin: 1,
                    last_bin: 4,
                    values: [(1, 0.3003610670566559), (2, 0.8242466449737549), (2, 0.8242466449737549)],
                },
                Expected {
                    mel: 1,
                    first_bin: 3,
                    last_bin: 6,
                    values: [(3, 0.34813225269317627), (4, 0.8720178604125977), (4, 0.8720178604125977)],
                },
                Expected {
                    mel: 20,
                    first_bin: 50,
                    last_bin: 59,
                    values: [(50, 0.17653103172779083), (51, 0.38696086406707764), (54, 0.9833583235740662)],
                },
                Expected {
                    mel: 39,
                    first_bin: 284,
                    last_bin: 341,
                    values: [(284, 0.006861051544547081), (285, 0.04331112653017044), (311, 0.9910131096839905)],
                },
            ],
        );
        check_apply(
            &bank,
            &[(0, 6.320843696594238), (1, 9.938674926757812), (20, 21.541419982910156), (39, 114.92970275878906)],
        );
    }

    #[test]
    fn htk_scale_slaney_norm_matches_librosa() {
        // sr=44100, n_fft=2048, n_mels=64, fmin=50, fmax=14000, htk=True, norm='slaney'.
        let bank = MelFilterbank::new(44100.0, 2048, 64, 50.0, 14000.0, MelScale::Htk, MelNorm::Slaney);
        check_against_librosa(
            &bank,
            &[
                Expected {
                    mel: 0,
                    first_bin: 3,
                    last_bin: 5,
                    values: [(3, 0.011558620259165764), (4, 0.027055826038122177), (4, 0.027055826038122177)],
                },
                Expected {
                    mel: 1,
                    first_bin: 4,
                    last_bin: 7,
                    values: [(4, 0.0007237506215460598), (5, 0.016280243173241615), (6, 0.021536879241466522)],
                },
                Expected {
                    mel: 32,
                    first_bin: 119,
                    last_bin: 132,
                    values: [(119, 0.0007271328358910978), (120, 0.0016376711428165436), (125, 0.006190362386405468)],
                },
                Expected {
                    mel: 63,
                    first_bin: 591,
                    last_bin: 650,
                    values: [(591, 3.021043085027486e-05), (592, 8.350521238753572e-05), (620, 0.0015353835187852383)],
                },
            ],
        );
        check_apply(
            &bank,
            &[(0, 0.24613749980926514), (1, 0.2587348222732544), (32, 0.18690207600593567), (63, 0.1858685165643692)],
        );
    }

    #[test]
    fn scales_round_trip_and_hit_their_anchor_points() {
        for scale in [MelScale::Htk, MelScale::Slaney] {
            for hz in [0.0, 20.0, 700.0, 999.9, 1000.0, 1000.1, 8000.0, 24000.0] {
                let back = scale.mel_to_hz(scale.hz_to_mel(hz));
                assert!((back - hz).abs() <= 1e-9 * hz.max(1.0), "{scale:?} {hz} -> {back}");
            }
        }
        // HTK: 1000 mel at ~1000 Hz by construction; Slaney: 15 mel at exactly 1 kHz, 27 mels per x6.4.
        assert!((MelScale::Htk.hz_to_mel(1000.0) - 1000.0).abs() < 0.1);
        assert!((MelScale::Slaney.hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
        assert!((MelScale::Slaney.hz_to_mel(6400.0) - 42.0).abs() < 1e-12);
    }

    #[test]
    fn unnormalised_triangles_peak_at_most_one_and_slaney_norm_gives_unit_area() {
        let sample_rate = 48000.0;
        let n_fft = 1024;
        let bin_hz = sample_rate / n_fft as f32;
        let plain = MelFilterbank::new(sample_rate, n_fft, 40, 0.0, 24000.0, MelScale::Slaney, MelNorm::None);
        let area = MelFilterbank::new(sample_rate, n_fft, 40, 0.0, 24000.0, MelScale::Slaney, MelNorm::Slaney);
        for m in 0..40 {
            let (_, w) = plain.band(m);
            let peak = w.iter().copied().fold(0.0, f32::max);
            assert!(peak <= 1.0 && peak > 0.4, "band {m} peak {peak}");
            // Wide bands sample their triangle finely enough for the Riemann sum to be ~1.
            let (_, w) = area.band(m);
            if w.len() >= 8 {
                let integral: f32 = w.iter().sum::<f32>() * bin_hz;
                assert!((integral - 1.0).abs() < 0.02, "band {m} area {integral}");
            }
        }
    }
}
