//! Streaming STFT analysis and overlap-add synthesis for any block size.
//!
//! Samples go in and come out one for one; every `hop` samples the newest `n_fft` samples of each
//! channel are windowed and transformed, a callback may rewrite the spectra, and the result is
//! inverse-transformed, windowed and overlap-added. With a callback that leaves the spectra alone
//! the output is the input delayed by exactly [`Stft::latency`] samples, whatever the block sizes.

use std::sync::Arc;

use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use crate::window::{WindowError, WindowPair, WindowShape};
use crate::Complex32;

/// Per-channel time-domain state.
struct Channel {
    /// The newest `n_fft` input samples, oldest first; new samples land in the last `hop` slots.
    input: Vec<f32>,
    /// Overlap-add accumulator covering the same `n_fft` samples as `input`.
    accumulator: Vec<f32>,
    /// The `hop` output samples finalised at the last frame, played out over the next hop.
    ready: Vec<f32>,
}

/// A multi-channel streaming STFT with plans, buffers and scratch made up front.
pub struct Stft {
    windows: WindowPair,
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
    channels: Vec<Channel>,
    /// One spectrum per channel, handed to the frame callback.
    spectra: Vec<Vec<Complex32>>,
    /// Time-domain work buffer (the FFTs use their input as scratch).
    frame: Vec<f32>,
    scratch: Vec<Complex32>,
    /// Samples received since the last frame, `0..hop`.
    position: usize,
    /// Frames processed since the last reset.
    frames: u64,
}

impl Stft {
    pub fn new(shape: WindowShape, n_fft: usize, hop: usize, channels: usize) -> Result<Self, WindowError> {
        let windows = WindowPair::new(shape, n_fft, hop)?;
        let mut planner = RealFftPlanner::<f32>::new();
        let forward = planner.plan_fft_forward(n_fft);
        let inverse = planner.plan_fft_inverse(n_fft);
        let scratch_len = forward.get_scratch_len().max(inverse.get_scratch_len());
        let bins = n_fft / 2 + 1;
        Ok(Self {
            windows,
            forward,
            inverse,
            channels: (0..channels)
                .map(|_| Channel {
                    input: vec![0.0; n_fft],
                    accumulator: vec![0.0; n_fft],
                    ready: vec![0.0; hop],
                })
                .collect(),
            spectra: vec![vec![Complex32::default(); bins]; channels],
            frame: vec![0.0; n_fft],
            scratch: vec![Complex32::default(); scratch_len],
            position: 0,
            frames: 0,
        })
    }

    pub fn windows(&self) -> &WindowPair {
        &self.windows
    }

    pub fn n_fft(&self) -> usize {
        self.windows.n_fft()
    }

    pub fn hop(&self) -> usize {
        self.windows.hop()
    }

    pub fn bins(&self) -> usize {
        self.n_fft() / 2 + 1
    }

    pub fn channels(&self) -> usize {
        self.channels.len()
    }

    /// The delay from input to output, in samples, with an identity callback.
    pub fn latency(&self) -> usize {
        self.windows.latency()
    }

    /// Index of the frame the next hop will produce (frame 0 is the first after a reset).
    pub fn next_frame(&self) -> u64 {
        self.frames
    }

    pub fn reset(&mut self) {
        for channel in &mut self.channels {
            channel.input.fill(0.0);
            channel.accumulator.fill(0.0);
            channel.ready.fill(0.0);
        }
        self.position = 0;
        self.frames = 0;
    }

    /// Processes one block in place. `block[c]` are the channel's samples (all the same length,
    /// `block.len() == self.channels()`). `on_frame(index, spectra)` is called once per hop with
    /// every channel's spectrum of the newest frame and may rewrite them.
    pub fn process<F>(&mut self, block: &mut [&mut [f32]], mut on_frame: F)
    where
        F: FnMut(u64, &mut [Vec<Complex32>]),
    {
        debug_assert_eq!(block.len(), self.channels.len());
        let len = block.first().map_or(0, |c| c.len());
        let (n_fft, hop) = (self.n_fft(), self.hop());
        let mut done = 0;
        while done < len {
            let run = (hop - self.position).min(len - done);
            for (channel, samples) in self.channels.iter_mut().zip(block.iter_mut()) {
                let samples = &mut samples[done..done + run];
                let slot = n_fft - hop + self.position;
                channel.input[slot..slot + run].copy_from_slice(samples);
                samples.copy_from_slice(&channel.ready[self.position..self.position + run]);
            }
            self.position += run;
            done += run;
            if self.position == hop {
                self.position = 0;
                self.hop_frame(&mut on_frame);
            }
        }
    }

    fn hop_frame<F>(&mut self, on_frame: &mut F)
    where
        F: FnMut(u64, &mut [Vec<Complex32>]),
    {
        let (n_fft, hop) = (self.n_fft(), self.hop());
        for (channel, spectrum) in self.channels.iter().zip(self.spectra.iter_mut()) {
            for ((f, x), w) in self.frame.iter_mut().zip(&channel.input).zip(self.windows.analysis()) {
                *f = x * w;
            }
            // Lengths are fixed at construction, so the FFT cannot fail.
            let _ = self.forward.process_with_scratch(&mut self.frame, spectrum, &mut self.scratch);
        }
        on_frame(self.frames, &mut self.spectra);
        self.frames += 1;
        let latency = self.latency();
        for (channel, spectrum) in self.channels.iter_mut().zip(self.spectra.iter_mut()) {
            // A real signal's DC and Nyquist bins are real; the inverse FFT insists on it.
            spectrum[0].im = 0.0;
            if let Some(last) = spectrum.last_mut() {
                last.im = 0.0;
            }
            let _ = self.inverse.process_with_scratch(spectrum, &mut self.frame, &mut self.scratch);
            for ((acc, y), w) in channel.accumulator.iter_mut().zip(&self.frame).zip(self.windows.synthesis()) {
                *acc += y * w;
            }
            let start = n_fft - latency;
            channel.ready.copy_from_slice(&channel.accumulator[start..start + hop]);
            channel.accumulator.copy_within(hop.., 0);
            channel.accumulator[n_fft - hop..].fill(0.0);
            channel.input.copy_within(hop.., 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::white_noise as noise;

    /// Runs `input` through an identity STFT in blocks of `sizes` (cycled) and checks the output
    /// is the input delayed by the latency.
    fn assert_reconstructs(shape: WindowShape, n_fft: usize, hop: usize, sizes: &[usize]) {
        let mut stft = Stft::new(shape, n_fft, hop, 2).unwrap();
        let latency = stft.latency();
        let input = [noise(8000, 1), noise(8000, 2)];
        let mut output = input.clone();
        let (mut start, mut i) = (0, 0);
        while start < input[0].len() {
            let len = sizes[i % sizes.len()].min(input[0].len() - start);
            let (left, right) = output.split_at_mut(1);
            let mut block = [&mut left[0][start..start + len], &mut right[0][start..start + len]];
            stft.process(&mut block, |_, _| {});
            start += len;
            i += 1;
        }
        for c in 0..2 {
            let err = (latency..input[c].len())
                .map(|n| (output[c][n] - input[c][n - latency]).abs())
                .fold(0.0, f32::max);
            assert!(err < 1e-5, "{shape:?} {n_fft}/{hop} blocks {sizes:?}: error {err}");
            assert!(output[c][..latency].iter().all(|&y| y.abs() < 1e-6));
        }
    }

    #[test]
    fn perfect_reconstruction_for_every_supported_configuration() {
        for (shape, n_fft, hop) in [
            (WindowShape::Asymmetric, 1024, 128),
            (WindowShape::Asymmetric, 1024, 256),
            (WindowShape::Asymmetric, 2048, 128),
            (WindowShape::Asymmetric, 512, 64),
            (WindowShape::SqrtHann, 1024, 256),
            (WindowShape::SqrtHann, 1024, 128),
            (WindowShape::SqrtHann, 512, 128),
        ] {
            assert_reconstructs(shape, n_fft, hop, &[1, 7, 64, 513, 4096, 3, 300]);
        }
    }

    #[test]
    fn block_size_does_not_change_the_output() {
        for sizes in [&[1][..], &[7], &[128], &[4096], &[5, 1000, 1, 77]] {
            assert_reconstructs(WindowShape::Asymmetric, 1024, 128, sizes);
        }
    }

    #[test]
    fn impulse_comes_out_at_the_latency() {
        let mut stft = Stft::new(WindowShape::Asymmetric, 1024, 128, 1).unwrap();
        let mut x = vec![0.0f32; 2048];
        x[100] = 1.0;
        stft.process(&mut [&mut x[..]], |_, _| {});
        let peak = x.iter().enumerate().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).unwrap();
        assert_eq!(peak.0, 100 + 255);
        assert!((peak.1 - 1.0).abs() < 1e-5);
    }

    #[test]
    fn callback_sees_every_frame_in_order_and_can_rewrite_spectra() {
        let mut stft = Stft::new(WindowShape::Asymmetric, 1024, 128, 1).unwrap();
        let mut x = noise(128 * 20, 3);
        let mut seen = Vec::new();
        stft.process(&mut [&mut x[..]], |index, spectra| {
            seen.push(index);
            spectra[0].iter_mut().for_each(|b| *b = Complex32::default());
        });
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
        assert!(x.iter().all(|&y| y == 0.0), "zeroed spectra must give silence");
    }
}
