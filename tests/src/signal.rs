//! Test signals and the comparisons the tests make on them.

use std::f64::consts::TAU;

/// A deterministic stereo test signal: per channel, two sines plus white noise at about -12 dBFS
/// peak. The channels differ (a swap is caught) and the noise makes every delay unambiguous.
pub fn stereo_test_signal(sample_rate: f64, len: usize) -> [Vec<f32>; 2] {
    let mut rng = Lcg(0x5eed_1234_abcd_0001);
    let channel = |f1: f64, f2: f64, rng: &mut Lcg| -> Vec<f32> {
        (0..len)
            .map(|n| {
                let t = n as f64 / sample_rate;
                let tone = 0.1 * (TAU * f1 * t).sin() + 0.05 * (TAU * f2 * t).sin();
                (tone + 0.1 * rng.next_bipolar()) as f32
            })
            .collect()
    };
    let left = channel(220.0, 1375.0, &mut rng);
    let right = channel(330.0, 2750.0, &mut rng);
    [left, right]
}

/// A tiny linear congruential generator: reproducible noise without a dependency.
struct Lcg(u64);

impl Lcg {
    /// Uniform in `[-1, 1)`.
    fn next_bipolar(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

/// The largest `|output[n] - input[n - delay]|` over the whole output, with `input[m] = 0` for
/// `m < 0` (a delay line starts silent), and the index where it occurs.
pub fn max_error_against_delayed(input: &[f32], output: &[f32], delay: usize) -> (f32, usize) {
    let mut worst = (0.0f32, 0usize);
    for (n, &out) in output.iter().enumerate() {
        let expected = if n >= delay { input[n - delay] } else { 0.0 };
        let err = (out - expected).abs();
        // NaN counts as the worst error of all.
        if err.is_nan() || err > worst.0 {
            worst = (err, n);
            if err.is_nan() {
                break;
            }
        }
    }
    worst
}

/// The delay in `0..=max_delay` under which `output` matches `input` best (least worst-case
/// error), for a diagnostic when the reported latency is not the real one.
pub fn best_matching_delay(input: &[f32], output: &[f32], max_delay: usize) -> (usize, f32) {
    (0..=max_delay)
        .map(|delay| (delay, max_error_against_delayed(input, output, delay).0))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("the delay range is never empty")
}

/// Deterministic white noise, uniform in `[-amplitude, amplitude)`, different per channel.
pub fn stereo_white_noise(len: usize, amplitude: f32) -> [Vec<f32>; 2] {
    let mut rng = Lcg(0x0dd_ba11_cafe_f00d);
    let mut channel = || -> Vec<f32> {
        (0..len)
            .map(|_| amplitude * rng.next_bipolar() as f32)
            .collect()
    };
    let left = channel();
    let right = channel();
    [left, right]
}

/// The lag in `0..=max_lag` at which `output` correlates most strongly (in absolute value) with
/// `input`, and that normalized correlation (`-1 ..= 1`). For a zero-phase filter (a real gain
/// per frequency bin) applied after a delay, the peak sits exactly at the delay.
pub fn peak_cross_correlation(input: &[f32], output: &[f32], max_lag: usize) -> (usize, f64) {
    let y = &output[max_lag..];
    let energy = |s: &[f32]| s.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>();
    let y_energy = energy(y);
    // `x` is the input window that lines up with `y` at lag `lag`; its energy slides with it.
    let mut x_energy = energy(&input[max_lag..]);
    let mut best = (0, 0.0f64);
    for lag in 0..=max_lag {
        let x = &input[max_lag - lag..input.len() - lag];
        if lag > 0 {
            let entering = f64::from(x[0]);
            let leaving = f64::from(input[input.len() - lag]);
            x_energy += entering * entering - leaving * leaving;
        }
        let dot: f64 = y
            .iter()
            .zip(x)
            .map(|(&a, &b)| f64::from(a) * f64::from(b))
            .sum();
        let norm = (y_energy * x_energy.max(0.0)).sqrt();
        let r = if norm > 0.0 { dot / norm } else { 0.0 };
        if r.abs() > best.1.abs() {
            best = (lag, r);
        }
    }
    best
}

/// Root mean square of `samples`.
pub fn rms(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// The average level of `samples` in third-octave bands from 100 Hz to 12.5 kHz, in dB: what a
/// signal sounds like, without its phase. Hann-windowed frames of 2048 samples, half overlapped.
pub fn third_octave_levels_db(samples: &[f32], sample_rate: f64) -> Vec<f64> {
    const FRAME: usize = 2048;
    let fft = realfft::RealFftPlanner::<f64>::new().plan_fft_forward(FRAME);
    let window: Vec<f64> = (0..FRAME).map(|n| 0.5 - 0.5 * (TAU * n as f64 / FRAME as f64).cos()).collect();
    let mut power = vec![0.0; FRAME / 2 + 1];
    let (mut input, mut spectrum) = (fft.make_input_vec(), fft.make_output_vec());
    for frame in samples.windows(FRAME).step_by(FRAME / 2) {
        for ((x, &s), w) in input.iter_mut().zip(frame).zip(&window) {
            *x = f64::from(s) * w;
        }
        fft.process(&mut input, &mut spectrum).expect("buffers of the planned length");
        power.iter_mut().zip(&spectrum).for_each(|(p, c)| *p += c.norm_sqr());
    }
    let bin_hz = sample_rate / FRAME as f64;
    (0..=21)
        .map(|band| {
            let centre = 100.0 * 2f64.powf(band as f64 / 3.0);
            let (low, high) = (centre / 2f64.powf(1.0 / 6.0), centre * 2f64.powf(1.0 / 6.0));
            let bins = (low / bin_hz).ceil() as usize..=((high / bin_hz).floor() as usize).min(FRAME / 2);
            let sum: f64 = power[bins].iter().sum();
            10.0 * (sum + 1e-30).log10()
        })
        .collect()
}

/// Block sizes that cycle through awkward lengths (1, odd, the maximum) so that a plugin which
/// assumes a fixed block size, or forgets its state across blocks, fails.
pub fn awkward_block_sizes(max_block: usize) -> impl Iterator<Item = usize> {
    [
        max_block,
        1,
        37,
        256,
        max_block - 1,
        128,
        300,
        2,
        max_block,
        63,
    ]
    .into_iter()
    .map(move |size| size.clamp(1, max_block))
    .cycle()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delayed_copy_has_zero_error_at_its_delay_only() {
        let [input, _] = stereo_test_signal(48_000.0, 4000);
        let delay = 300;
        let output: Vec<f32> = (0..input.len())
            .map(|n| if n >= delay { input[n - delay] } else { 0.0 })
            .collect();
        assert_eq!(max_error_against_delayed(&input, &output, delay).0, 0.0);
        assert!(max_error_against_delayed(&input, &output, delay + 1).0 > 0.01);
        assert_eq!(best_matching_delay(&input, &output, 1000), (delay, 0.0));
    }

    #[test]
    fn cross_correlation_peaks_at_the_delay_of_a_filtered_copy() {
        let [input, _] = stereo_white_noise(8000, 0.5);
        let delay = 123;
        // A symmetric (zero-phase) smoothing filter centred on the delay.
        let output: Vec<f32> = (0..input.len())
            .map(|n| {
                let at = |k: isize| {
                    let m = n as isize - delay as isize + k;
                    if m >= 0 && (m as usize) < input.len() {
                        input[m as usize]
                    } else {
                        0.0
                    }
                };
                0.25 * at(-1) + 0.5 * at(0) + 0.25 * at(1)
            })
            .collect();
        let (lag, r) = peak_cross_correlation(&input, &output, 1000);
        assert_eq!(lag, delay);
        assert!(r > 0.7, "correlation {r}");
    }

    #[test]
    fn nan_output_is_the_worst_error() {
        let input = vec![0.0f32; 8];
        let mut output = vec![0.0f32; 8];
        output[5] = f32::NAN;
        let (err, at) = max_error_against_delayed(&input, &output, 0);
        assert!(err.is_nan());
        assert_eq!(at, 5);
    }

    #[test]
    fn test_signal_is_stereo_distinct_and_below_full_scale() {
        let [left, right] = stereo_test_signal(48_000.0, 48_000);
        assert!(left.iter().chain(&right).all(|s| s.abs() < 0.5));
        assert!(rms(&left) > 0.05 && rms(&right) > 0.05);
        assert!(left.iter().zip(&right).any(|(l, r)| (l - r).abs() > 0.1));
    }
}
