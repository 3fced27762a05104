//! Streaming band-limited resampling between the host's rate and the model's, with a fixed,
//! known delay.
//!
//! The engine reports one latency to the host and mixes the wet signal with a dry copy delayed
//! by exactly that many samples, so the resampler must delay by a configured amount, identical
//! for every way the host splits its blocks, and never drift over hours. Hence:
//!
//! - **Time from integer counters.** Output `n` sits at input time `τ_n = (n − delay_out)·in/out`.
//!   With `in' = in/g`, `out' = out/g` (`g` the gcd) and `D = delay_out·in'` split into
//!   `ceil(D)` and `ceil(D) − D`, `τ_n·out' = (n·in' − ceil(D)) + (ceil(D) − D)`: the integer part
//!   is exact integer arithmetic, only a constant fraction below 1 is floating point.
//! - **Windowed sinc.** A Kaiser-windowed sinc (β = [`KAISER_BETA`]) with its cutoff at
//!   [`CUTOFF`] × the lower Nyquist, scaled by `out/in` when downsampling so it also removes what
//!   would alias. Its half width is [`TAPS_HALF`] samples of the lower rate, i.e. `M` input
//!   samples; the kernel is tabulated at [`PHASES`] phases per input sample, and each output
//!   interpolates linearly between the two phases around its fractional position.
//! - **Emitted as soon as computable.** Output `n` reads the `2M` inputs `floor(τ_n) − M + 1 ..=
//!   floor(τ_n) + M`, so it becomes computable when input `floor(τ_n) + M` has been pushed;
//!   inputs before index 0 are zero. The number of outputs computable after `T` inputs is
//!   [`Resampler::outputs_after`], a function of `T` alone.
//! - **Allocation-free.** Kernel table and input history are allocated in [`Resampler::new`];
//!   [`Resampler::process`] only reads and writes them and the caller's slices.
//!
//! Same-rate "resampling" is the identity (a delay line of a whole number of samples), so
//! 48 kHz → 48 kHz with delay 0 is an exact passthrough.

use std::f64::consts::PI;

/// Kernel half width in samples of the lower of the two rates (~0.5 ms at 48 kHz).
pub const TAPS_HALF: usize = 24;
/// Kaiser window shape: about 90 dB of stopband attenuation.
pub const KAISER_BETA: f64 = 8.6;
/// The filter's cutoff (its −6 dB point) as a fraction of the lower rate's Nyquist frequency.
/// With [`TAPS_HALF`] and [`KAISER_BETA`] the passband is flat to 1e-4 up to ~0.40 × the lower
/// rate (17.8 kHz at 44.1 kHz) and everything above ~0.55 × the lower rate is down ≥ 90 dB.
pub const CUTOFF: f64 = 0.92;
/// Tabulated kernel phases per input sample; linear interpolation between neighbours keeps the
/// kernel's error to a few 1e-6.
pub const PHASES: usize = 512;
/// How many input samples an unwritten output may lag behind the newest input when the caller
/// passes an `out` shorter than what is computable (see [`Resampler::process`]).
pub const MAX_BACKLOG: usize = 64;
/// Extra host samples [`round_trip_delay`] adds beyond strict causality, so rounding can never
/// leave the second stage one model sample short.
pub const SAFETY_MARGIN: f64 = 1.0;

/// A single-channel streaming resampler with a fixed delay.
pub struct Resampler {
    in_rate: u32,
    out_rate: u32,
    /// The configured delay, in output samples.
    delay_out: f64,
    /// `in_rate / gcd`: input time advanced per output, in units of `1 / out_step` input samples.
    in_step: i64,
    /// `out_rate / gcd`.
    out_step: i64,
    /// `ceil(delay_out · in_step)`: the whole part of the delay in units of `1 / out_step` inputs.
    delay_units: i64,
    /// `delay_units − delay_out · in_step`, in `[0, 1)`: the fractional remainder of those units.
    delay_rest: f64,
    /// Input samples the kernel reaches to the right of `floor(τ_n)` (`M`; 0 for same rate).
    right: i64,
    /// Kernel length in input samples (`2M`; 1 for same rate).
    taps: usize,
    /// Number of kernel phases tabulated per input sample.
    phases: usize,
    /// Row-major `(phases + 1) x taps`: row `p` holds the kernel for fractional position
    /// `p / phases`, oldest input first; the extra row lets every position interpolate.
    table: Vec<f32>,
    /// The newest `capacity` inputs, stored twice (`[i]` and `[i + capacity]`) so every kernel
    /// window is one contiguous slice; input `k` lives at slot `k mod capacity`.
    history: Vec<f32>,
    /// `taps + MAX_BACKLOG`.
    capacity: usize,
    /// Inputs pushed since construction or [`Self::reset`].
    pushed: u64,
    /// Outputs written since construction or [`Self::reset`] (including dropped ones).
    emitted: u64,
    /// Outputs skipped because the caller left them unwritten for more than [`MAX_BACKLOG`] inputs.
    dropped: u64,
}

impl Resampler {
    /// A resampler from `in_rate` to `out_rate` whose output `n` is the band-limited input
    /// evaluated at input time `(n − delay_out)·in_rate/out_rate`.
    ///
    /// `delay_out` is the group delay this stage adds, in output samples (may be fractional).
    ///
    /// # Panics
    /// If a rate is 0, if `delay_out` is below [`Self::min_delay`] (or not finite), or, for
    /// equal rates, if `delay_out` is not a whole number of samples.
    pub fn new(in_rate: u32, out_rate: u32, delay_out: f64) -> Self {
        assert!(in_rate > 0 && out_rate > 0, "sample rates must be positive");
        let min_delay = Self::min_delay(in_rate, out_rate);
        assert!(
            delay_out.is_finite() && delay_out >= min_delay - 1e-9,
            "delay {delay_out} is below the causal minimum {min_delay} for {in_rate} -> {out_rate} Hz"
        );
        let g = gcd(in_rate, out_rate);
        let (in_step, out_step) = (i64::from(in_rate / g), i64::from(out_rate / g));
        let delay = snap_to_integer(delay_out * in_step as f64);
        let delay_units = delay.ceil() as i64;

        let (right, taps, phases, table) = if in_rate == out_rate {
            assert!(delay_out.fract() == 0.0, "same-rate delay {delay_out} must be a whole number of samples");
            (0, 1, 1, vec![1.0; 2])
        } else {
            let half = half_width(in_rate, out_rate);
            let table = kernel_table(half, in_rate, out_rate);
            (half as i64, 2 * half, PHASES, table)
        };
        let capacity = taps + MAX_BACKLOG;
        Self {
            in_rate,
            out_rate,
            delay_out,
            in_step,
            out_step,
            delay_units,
            delay_rest: delay_units as f64 - delay,
            right,
            taps,
            phases,
            table,
            history: vec![0.0; 2 * capacity],
            capacity,
            pushed: 0,
            emitted: 0,
            dropped: 0,
        }
    }

    /// The smallest causal delay in output samples: with it, output `n` is computable as soon as
    /// input `floor(n·in/out)` has been pushed, i.e. the kernel's half width `M` (in input
    /// samples) expressed in output samples, `M·out/in`. Zero for equal rates.
    pub fn min_delay(in_rate: u32, out_rate: u32) -> f64 {
        if in_rate == out_rate {
            0.0
        } else {
            half_width(in_rate, out_rate) as f64 * f64::from(out_rate) / f64::from(in_rate)
        }
    }

    pub fn in_rate(&self) -> u32 {
        self.in_rate
    }

    pub fn out_rate(&self) -> u32 {
        self.out_rate
    }

    /// The delay this stage adds, in output samples, as configured.
    pub fn delay(&self) -> f64 {
        self.delay_out
    }

    /// Outputs skipped because a caller left them unwritten for more than [`MAX_BACKLOG`] input
    /// samples (0 for a caller that always gives `out` enough room).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// How many outputs are computable once `total_inputs` inputs have been pushed: the number
    /// of `n ≥ 0` whose kernel's newest input `floor(τ_n) + M` is below `total_inputs`.
    ///
    /// Exactly, `#{n ≥ 0 : n·in' < (total_inputs − M)·out' + ceil(delay_out·in')}`, which equals
    /// `max(0, ceil(total_inputs·out/in + delay_out − min_delay))`. A pure function of the
    /// configuration and `total_inputs`: block sizes never change it.
    pub fn outputs_after(&self, total_inputs: u64) -> u64 {
        let bound = (i128::from(total_inputs) - i128::from(self.right)) * i128::from(self.out_step)
            + i128::from(self.delay_units);
        if bound <= 0 {
            0
        } else {
            ((bound - 1) / i128::from(self.in_step) + 1) as u64
        }
    }

    /// Room `out` needs in the next [`Self::process`] call for it to write every computable
    /// output: the current backlog plus `ceil(input_len·out/in)`.
    pub fn max_output(&self, input_len: usize) -> usize {
        let fresh = (input_len as u64 * self.out_step as u64).div_ceil(self.in_step as u64);
        (self.outputs_after(self.pushed) - self.emitted + fresh) as usize
    }

    /// Pushes `input` and writes, in order, the outputs that are computable into `out`; returns
    /// how many were written.
    ///
    /// With `out.len() >= self.max_output(input.len())` every computable output is written, so
    /// after `T` inputs in total exactly [`Self::outputs_after`]`(T)` outputs have come out,
    /// however the input was split. A shorter `out` is allowed: outputs that do not fit wait and
    /// are written first by later calls, as long as they lag the newest input by at most
    /// [`MAX_BACKLOG`] input samples (older ones are skipped and counted in [`Self::dropped`]).
    /// The values of the output sequence never depend on the block sizes.
    pub fn process(&mut self, input: &[f32], out: &mut [f32]) -> usize {
        let mut written = self.emit(out);
        for &x in input {
            self.push(x);
            written += self.emit(&mut out[written..]);
        }
        written
    }

    /// Forgets all input and restarts the output count, as if newly constructed.
    pub fn reset(&mut self) {
        self.history.fill(0.0);
        self.pushed = 0;
        self.emitted = 0;
        self.dropped = 0;
    }

    fn push(&mut self, x: f32) {
        let slot = (self.pushed % self.capacity as u64) as usize;
        self.history[slot] = x;
        self.history[slot + self.capacity] = x;
        self.pushed += 1;
    }

    /// Writes computable outputs into `out` until it is full; returns how many.
    ///
    /// Output `n` is computable when its newest input `floor(τ_n) + M` has been pushed, which
    /// holds exactly for `n < outputs_after(pushed)`.
    fn emit(&mut self, out: &mut [f32]) -> usize {
        let mut written = 0;
        while written < out.len() {
            let (newest, frac) = self.locate(self.emitted);
            if newest >= self.pushed as i64 {
                break;
            }
            self.emitted += 1;
            if newest < 0 {
                // The whole window lies before the first input.
                out[written] = 0.0;
            } else if self.pushed as i64 - 1 - newest > MAX_BACKLOG as i64 {
                // Part of this output's window has been overwritten: skip it rather than play
                // wrong samples.
                self.dropped += 1;
                continue;
            } else {
                out[written] = self.evaluate(newest, frac);
            }
            written += 1;
        }
        written
    }

    /// Output `n`'s newest input index `floor(τ_n) + M` and the fraction `τ_n − floor(τ_n)`.
    fn locate(&self, n: u64) -> (i64, f64) {
        let units = n as i64 * self.in_step - self.delay_units;
        let base = units.div_euclid(self.out_step);
        let frac = (units.rem_euclid(self.out_step) as f64 + self.delay_rest) / self.out_step as f64;
        (base + self.right, frac)
    }

    /// The kernel at fractional position `frac` applied to the `taps` inputs ending at `newest`.
    fn evaluate(&self, newest: i64, frac: f64) -> f32 {
        let oldest = newest + 1 - self.taps as i64;
        let slot = oldest.rem_euclid(self.capacity as i64) as usize;
        let window = &self.history[slot..slot + self.taps];
        let position = frac * self.phases as f64;
        let phase = (position as usize).min(self.phases - 1);
        let blend = (position - phase as f64) as f32;
        let row = |p: usize| &self.table[p * self.taps..(p + 1) * self.taps];
        let at_phase = dot(window, row(phase));
        let at_next = dot(window, row(phase + 1));
        at_phase + blend * (at_next - at_phase)
    }
}

/// Dot product with eight independent partial sums, which the compiler can keep in SIMD
/// registers (a single running sum would serialise every addition).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut partial = [0.0f32; LANES];
    for (x, y) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        for lane in 0..LANES {
            partial[lane] += x[lane] * y[lane];
        }
    }
    let split = a.len() - a.len() % LANES;
    let tail: f32 = a[split..].iter().zip(&b[split..]).map(|(x, y)| x * y).sum();
    partial.iter().sum::<f32>() + tail
}

/// The two stage delays and the total latency for host → model → host resampling around an
/// inner engine that delays by `inner_latency_model_samples` model-rate samples and turns each
/// model sample in into one out.
///
/// Returns `(delay_a, delay_b, total)`: stage A (`host_rate → model_rate`) gets
/// `delay_a = min_delay(host, model) = M_A·model/host` model samples (`M_A` = A's half width in
/// host samples), stage B (`model_rate → host_rate`) gets
/// `delay_b = total − M_A − inner·host/model` host samples, and
/// `total = ceil(M_A + (inner + M_B)·host/model + SAFETY_MARGIN)` host samples
/// (`M_B` = B's half width in model samples), so that
/// `delay_a·host/model + inner·host/model + delay_b = total`, a whole number.
///
/// Why this streams one host sample out per host sample in: B's output `m` reads model samples
/// up to index `floor((m − delay_b)·model/host) + M_B`, and A has produced model sample `j`
/// once host input `floor((j − delay_a)·host/model) + M_A` is in (the inner engine turns each
/// model sample in into one out, so it shifts the signal but not the counts). With
/// `delay_a·host/model = M_A` and `delay_b ≥ M_B·host/model + SAFETY_MARGIN`, output `m` needs
/// host inputs up to index `m − SAFETY_MARGIN` only. So after `T` host samples B always has at
/// least `T` outputs computable, from the very first sample on (the first `total` are the zeros
/// before the signal arrives). It may have a few more (when the host rate is above the model
/// rate, A's outputs come in bursts); a caller that gives B an `out` of exactly one slot per host
/// sample gets it filled every time, and the extra outputs wait for the next call (see
/// [`Resampler::process`]).
///
/// Equal rates need no resampling: `(0.0, 0.0, inner_latency_model_samples)`.
pub fn round_trip_delay(host_rate: u32, model_rate: u32, inner_latency_model_samples: usize) -> (f64, f64, usize) {
    if host_rate == model_rate {
        return (0.0, 0.0, inner_latency_model_samples);
    }
    let host_per_model = f64::from(host_rate) / f64::from(model_rate);
    let half_a = half_width(host_rate, model_rate) as f64;
    let half_b = half_width(model_rate, host_rate) as f64;
    let inner = inner_latency_model_samples as f64;
    let delay_a = Resampler::min_delay(host_rate, model_rate);
    // The 1e-9 keeps a total that is a whole number up to rounding from being pushed up by one.
    let total = (half_a + (inner + half_b) * host_per_model + SAFETY_MARGIN - 1e-9).ceil();
    let delay_b = total - half_a - inner * host_per_model;
    (delay_a, delay_b, total as usize)
}

/// The kernel's half width `M` in input samples: [`TAPS_HALF`] samples of the lower rate.
fn half_width(in_rate: u32, out_rate: u32) -> usize {
    if in_rate > out_rate {
        (TAPS_HALF as u64 * u64::from(in_rate)).div_ceil(u64::from(out_rate)) as usize
    } else {
        TAPS_HALF
    }
}

/// Tabulates the windowed-sinc kernel for `half` input samples either side, `PHASES + 1` rows
/// of `2·half` taps. Row `p`, tap `j` is the kernel at distance `u = p/PHASES + half − 1 − j`
/// input samples from the output's position. Each row is scaled to sum to exactly 1 so DC passes
/// unchanged whatever the phase.
fn kernel_table(half: usize, in_rate: u32, out_rate: u32) -> Vec<f32> {
    // Cutoff in cycles per input sample, twice: the sinc's zero-crossing rate.
    let ratio = (f64::from(out_rate) / f64::from(in_rate)).min(1.0);
    let bandwidth = CUTOFF * ratio;
    let taps = 2 * half;
    let norm = bessel_i0(KAISER_BETA);
    let mut table = Vec::with_capacity((PHASES + 1) * taps);
    for p in 0..=PHASES {
        let row_start = table.len();
        for j in 0..taps {
            let u = p as f64 / PHASES as f64 + half as f64 - 1.0 - j as f64;
            let x = (u / half as f64).clamp(-1.0, 1.0);
            let window = bessel_i0(KAISER_BETA * (1.0 - x * x).sqrt()) / norm;
            table.push(bandwidth * sinc(bandwidth * u) * window);
        }
        let row = &mut table[row_start..];
        let sum: f64 = row.iter().sum();
        row.iter_mut().for_each(|c| *c /= sum);
    }
    table.into_iter().map(|c| c as f32).collect()
}

/// `sin(πx) / (πx)`.
fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        (PI * x).sin() / (PI * x)
    }
}

/// Modified Bessel function of the first kind, order 0, by its power series (converges fast for
/// the arguments a Kaiser window needs, up to [`KAISER_BETA`]).
fn bessel_i0(x: f64) -> f64 {
    let quarter_x2 = x * x / 4.0;
    let (mut sum, mut term, mut k) = (1.0, 1.0, 1.0);
    while term > 1e-17 * sum {
        term *= quarter_x2 / (k * k);
        sum += term;
        k += 1.0;
    }
    sum
}

/// Rounds `x` to the nearest whole number when it is one up to floating-point error, so that
/// delays computed as products of rates (e.g. `M·out/in · in`) split into exact parts.
fn snap_to_integer(x: f64) -> f64 {
    let nearest = x.round();
    if (x - nearest).abs() <= 1e-9 * x.abs().max(1.0) {
        nearest
    } else {
        x
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rate pairs the engine meets (host ↔ the 48 kHz model rate) and a few others.
    const PAIRS: [(u32, u32); 9] = [
        (44_100, 48_000),
        (48_000, 44_100),
        (96_000, 48_000),
        (48_000, 96_000),
        (88_200, 48_000),
        (192_000, 48_000),
        (48_000, 192_000),
        (22_050, 48_000),
        (48_000, 22_050),
    ];

    /// Deterministic pseudo-random numbers (a 64-bit LCG), so tests need no extra crates.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            self.0 >> 33
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Runs `input` through a fresh resampler in blocks of the given sizes (cycled), giving
    /// `out` always enough room.
    fn run_in_blocks(resampler: &mut Resampler, input: &[f32], sizes: &mut dyn FnMut() -> usize) -> Vec<f32> {
        let mut output = Vec::new();
        let mut scratch = vec![0.0; resampler.max_output(input.len())];
        let mut start = 0;
        while start < input.len() {
            let end = (start + sizes()).min(input.len());
            let written = resampler.process(&input[start..end], &mut scratch);
            output.extend_from_slice(&scratch[..written]);
            assert_eq!(output.len() as u64, resampler.outputs_after(end as u64), "output count after {end} inputs");
            start = end;
        }
        output
    }

    fn resample_all(in_rate: u32, out_rate: u32, delay: f64, input: &[f32]) -> Vec<f32> {
        let mut resampler = Resampler::new(in_rate, out_rate, delay);
        run_in_blocks(&mut resampler, input, &mut || 4096)
    }

    fn sine(freq: f64, rate: u32, len: usize, shift: f64) -> Vec<f32> {
        (0..len).map(|n| (2.0 * PI * freq * (n as f64 - shift) / f64::from(rate)).sin() as f32).collect()
    }

    #[test]
    fn sine_matches_the_analytic_sine_at_the_delayed_times() {
        for (in_rate, out_rate) in PAIRS {
            let delay = Resampler::min_delay(in_rate, out_rate) + 3.3;
            let input = sine(1000.0, in_rate, in_rate as usize / 4, 0.0);
            let output = resample_all(in_rate, out_rate, delay, &input);
            let expected = sine(1000.0, out_rate, output.len(), delay);
            // Skip the warm-up (the kernel still reaching into the zeros before the signal)
            // and the end (where input stops).
            let warm_up = (delay + 2.0 * Resampler::min_delay(in_rate, out_rate)) as usize + 1;
            let error =
                output[warm_up..].iter().zip(&expected[warm_up..]).map(|(y, e)| (y - e).abs()).fold(0.0, f32::max);
            println!("{in_rate} -> {out_rate}: max error {error:.2e}");
            // The brief asks for 1e-3; the kernel does ~3e-5, so hold it to 1e-4.
            assert!(error <= 1e-4, "{in_rate} -> {out_rate}: max error {error}");
        }
    }

    #[test]
    fn output_is_bit_identical_whatever_the_block_sizes() {
        for (in_rate, out_rate) in [(44_100, 48_000), (48_000, 44_100), (96_000, 48_000), (48_000, 96_000)] {
            let delay = Resampler::min_delay(in_rate, out_rate) + 0.77;
            let mut noise = Lcg(7);
            let input: Vec<f32> = (0..20_000).map(|_| noise.below(2001) as f32 / 1000.0 - 1.0).collect();
            let reference = resample_all(in_rate, out_rate, delay, &input);
            for size in [1usize, 7, 64] {
                let mut resampler = Resampler::new(in_rate, out_rate, delay);
                let output = run_in_blocks(&mut resampler, &input, &mut || size);
                assert!(output == reference, "{in_rate} -> {out_rate}, blocks of {size}");
            }
            let mut sizes = Lcg(99);
            let mut resampler = Resampler::new(in_rate, out_rate, delay);
            let output = run_in_blocks(&mut resampler, &input, &mut || sizes.below(700) as usize);
            assert!(output == reference, "{in_rate} -> {out_rate}, random blocks (including empty ones)");
        }
    }

    #[test]
    fn short_output_buffers_delay_outputs_but_do_not_change_them() {
        let input = sine(3000.0, 48_000, 5000, 0.0);
        let delay = Resampler::min_delay(48_000, 96_000) + 1.5;
        let reference = resample_all(48_000, 96_000, delay, &input);
        let mut resampler = Resampler::new(48_000, 96_000, delay);
        let mut output = Vec::new();
        for &x in &input {
            // Two outputs per input are computable; take one per call, then catch up at the end.
            let mut one = [0.0];
            let written = resampler.process(&[x], &mut one);
            output.extend_from_slice(&one[..written]);
            if output.len() % 50 == 0 {
                let mut rest = vec![0.0; resampler.max_output(0)];
                let written = resampler.process(&[], &mut rest);
                output.extend_from_slice(&rest[..written]);
            }
        }
        assert_eq!(resampler.dropped(), 0);
        assert!(output == reference[..output.len()], "deferred outputs differ");
    }

    #[test]
    fn impulse_peaks_at_input_time_times_ratio_plus_delay() {
        // (in, out, i0, delay): i0·out/in + delay is a whole number of output samples.
        for (in_rate, out_rate, i0, delay) in [
            (44_100u32, 48_000u32, 441usize, 30.0),
            (48_000, 44_100, 480, 25.0),
            (96_000, 48_000, 1000, 25.0),
            (48_000, 96_000, 1000, 60.0),
            (192_000, 48_000, 4000, 40.0),
        ] {
            let mut input = vec![0.0f32; 4 * i0];
            input[i0] = 1.0;
            let output = resample_all(in_rate, out_rate, delay, &input);
            let expected = (i0 as f64 * f64::from(out_rate) / f64::from(in_rate) + delay) as usize;
            let peak = (0..output.len()).max_by(|&a, &b| output[a].total_cmp(&output[b])).unwrap_or(0);
            assert_eq!(peak, expected, "{in_rate} -> {out_rate}");
            // A linear-phase kernel centred on the peak: its neighbours are equal.
            let (left, right) = (output[peak - 1], output[peak + 1]);
            assert!((left - right).abs() < 1e-5, "{in_rate} -> {out_rate}: asymmetric {left} vs {right}");
        }
    }

    /// Pushes host samples through stage A, an inner integer delay at the model rate, and
    /// stage B, `chunk()` samples at a time, giving B exactly one output slot per host sample;
    /// checks B fills every slot and returns the output.
    fn round_trip(
        host: u32,
        model: u32,
        inner: usize,
        input: &[f32],
        chunk: &mut dyn FnMut() -> usize,
    ) -> (Vec<f32>, usize) {
        let (delay_a, delay_b, total) = round_trip_delay(host, model, inner);
        let mut a = Resampler::new(host, model, delay_a);
        let mut b = Resampler::new(model, host, delay_b);
        let mut line = std::collections::VecDeque::from(vec![0.0f32; inner]);
        let mut model_buf = vec![0.0; a.max_output(input.len())];
        let mut output = vec![0.0; input.len()];
        let mut start = 0;
        while start < input.len() {
            let end = (start + chunk().max(1)).min(input.len());
            let produced = a.process(&input[start..end], &mut model_buf);
            for x in &mut model_buf[..produced] {
                line.push_back(*x);
                *x = line.pop_front().unwrap_or(0.0);
            }
            let written = b.process(&model_buf[..produced], &mut output[start..end]);
            assert_eq!(written, end - start, "{host} <-> {model}: B short after {end} host samples");
            // B never starves, and its surplus stays far inside the backlog it can hold.
            let computable = b.outputs_after(a.outputs_after(end as u64));
            if host == model {
                assert_eq!(computable, end as u64, "same rate: exactly one out per one in");
            } else {
                assert!(computable > end as u64, "{host} <-> {model}: no safety margin after {end} host samples");
            }
            let surplus = computable - end as u64;
            assert!(surplus <= u64::from(host.div_ceil(model)) + 2, "{host} <-> {model}: surplus {surplus}");
            start = end;
        }
        assert_eq!(b.dropped(), 0);
        (output, total)
    }

    #[test]
    fn round_trip_streams_one_output_per_input_from_the_first_sample() {
        let hosts = [44_100u32, 48_000, 88_200, 96_000, 192_000, 22_050, 32_000, 8_000];
        for host in hosts {
            for inner in [0usize, 1, 383, 640] {
                let input = sine(440.0, host, 3000, 0.0);
                let (output, total) = round_trip(host, 48_000, inner, &input, &mut || 1);
                // Engine-like chunks give the same samples, and they are the input delayed by `total`.
                let mut chunks = Lcg(u64::from(host) + inner as u64);
                let (chunked, _) = round_trip(host, 48_000, inner, &input, &mut || chunks.below(200) as usize);
                assert!(chunked == output, "{host}, inner {inner}: chunking changed the output");
                let error =
                    (total + 300..input.len()).map(|n| (output[n] - input[n - total]).abs()).fold(0.0, f32::max);
                assert!(error < 2e-4, "{host}, inner {inner}: error {error}");
                let (delay_a, delay_b, _) = round_trip_delay(host, 48_000, inner);
                let stages = delay_a * f64::from(host) / 48_000.0 + inner as f64 * f64::from(host) / 48_000.0 + delay_b;
                assert!((stages - total as f64).abs() < 1e-9, "{host}: stage delays sum to {stages}, not {total}");
                if host != 48_000 {
                    assert!(delay_b >= Resampler::min_delay(48_000, host) + SAFETY_MARGIN - 1e-9);
                }
            }
        }
        assert_eq!(round_trip_delay(48_000, 48_000, 640), (0.0, 0.0, 640));
    }

    #[test]
    fn round_trip_44k1_restores_impulse_position_and_band_limited_signal() {
        let host = 44_100;
        for inner in [0usize, 640] {
            let mut chunks = Lcg(5);
            let mut random_chunks = || chunks.below(300) as usize;
            let i0 = 1000;
            let mut impulse = vec![0.0f32; 4000];
            impulse[i0] = 1.0;
            let (output, total) = round_trip(host, 48_000, inner, &impulse, &mut random_chunks);
            let peak = (0..output.len()).max_by(|&a, &b| output[a].total_cmp(&output[b])).unwrap_or(0);
            assert_eq!(peak, i0 + total, "inner {inner}: impulse peak");

            let freqs = [100.0, 1000.0, 5000.0, 11_000.0, 15_000.0, 17_900.0];
            let signal = |n: usize| {
                freqs.iter().map(|f| (2.0 * PI * f * n as f64 / 44_100.0 + f / 1e4).sin()).sum::<f64>()
                    / freqs.len() as f64
            };
            let input: Vec<f32> = (0..20_000).map(|n| signal(n) as f32).collect();
            let (output, total) = round_trip(host, 48_000, inner, &input, &mut random_chunks);
            let warm_up = total + 200;
            let error = (warm_up..input.len()).map(|n| (output[n] - input[n - total]).abs()).fold(0.0, f32::max);
            println!("44.1k round trip, inner {inner}: latency {total}, max error {error:.2e}");
            // Two passes through the filter, 17.9 kHz near its passband edge: ~1e-4 measured.
            assert!(error <= 5e-4, "inner {inner}: round-trip error {error}");
        }
    }

    #[test]
    fn same_rate_is_an_exact_passthrough_or_whole_sample_delay() {
        let mut noise = Lcg(3);
        let input: Vec<f32> = (0..1000).map(|_| noise.below(1000) as f32 / 999.0 - 0.5).collect();
        assert_eq!(Resampler::min_delay(48_000, 48_000), 0.0);
        let mut sizes = Lcg(11);
        let mut passthrough = Resampler::new(48_000, 48_000, 0.0);
        let output = run_in_blocks(&mut passthrough, &input, &mut || sizes.below(50) as usize);
        assert!(output == input, "48 kHz -> 48 kHz with delay 0 changed the signal");
        // A whole-sample delay: five zeros, then the input; all of it is out once it is in.
        let delayed = resample_all(48_000, 48_000, 5.0, &input);
        assert_eq!(delayed[..5], [0.0; 5]);
        assert!(delayed[5..] == input[..], "48 kHz -> 48 kHz with delay 5 is not a pure delay");
    }

    #[test]
    fn downsampling_attenuates_a_30khz_tone_by_at_least_60_db() {
        let input = sine(30_000.0, 96_000, 96_000 / 4, 0.0);
        let output = resample_all(96_000, 48_000, Resampler::min_delay(96_000, 48_000), &input);
        let rms = |x: &[f32]| (x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
        let steady = &output[200..output.len() - 200];
        let attenuation_db = 20.0 * (rms(&input) / rms(steady)).log10();
        println!("30 kHz at 96 kHz -> 48 kHz: attenuated by {attenuation_db:.1} dB");
        assert!(attenuation_db >= 60.0, "only {attenuation_db:.1} dB");
    }

    #[test]
    fn dc_passes_with_unit_gain() {
        for (in_rate, out_rate) in PAIRS {
            let output = resample_all(in_rate, out_rate, Resampler::min_delay(in_rate, out_rate), &[1.0; 2000]);
            let settled = &output[output.len() / 4..output.len() / 2];
            assert!(settled.iter().all(|y| (y - 1.0).abs() < 1e-5), "{in_rate} -> {out_rate}");
        }
    }

    #[test]
    fn outputs_after_follows_its_closed_form_and_does_not_drift_over_hours() {
        for (in_rate, out_rate) in PAIRS {
            for extra in [0.0, 0.25, 1.0, 7.5] {
                let min_delay = Resampler::min_delay(in_rate, out_rate);
                let resampler = Resampler::new(in_rate, out_rate, min_delay + extra);
                for total in [0u64, 1, 2, 3, 100, 4097] {
                    let closed =
                        (total as f64 * f64::from(out_rate) / f64::from(in_rate) + extra - 1e-9).ceil().max(0.0);
                    assert_eq!(
                        resampler.outputs_after(total),
                        closed as u64,
                        "{in_rate} -> {out_rate} +{extra}, T = {total}"
                    );
                }
                // Ten hours: the count is still exactly T·out/in (+ the extra delay, rounded up).
                let ten_hours = u64::from(in_rate) * 36_000;
                assert_eq!(resampler.outputs_after(ten_hours), u64::from(out_rate) * 36_000 + extra.ceil() as u64);
            }
        }
    }

    #[test]
    fn reset_starts_over() {
        let input = sine(500.0, 44_100, 3000, 0.0);
        let delay = Resampler::min_delay(44_100, 48_000);
        let mut resampler = Resampler::new(44_100, 48_000, delay);
        let first = run_in_blocks(&mut resampler, &input, &mut || 128);
        resampler.reset();
        let second = run_in_blocks(&mut resampler, &input, &mut || 128);
        assert!(first == second);
    }

    #[test]
    #[should_panic(expected = "below the causal minimum")]
    fn a_delay_below_the_minimum_is_refused() {
        let _ = Resampler::new(44_100, 48_000, Resampler::min_delay(44_100, 48_000) - 0.5);
    }
}
