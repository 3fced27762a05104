//! A fixed integer delay, used to keep the dry signal aligned with the processed one.

/// Delays one channel by a fixed number of samples.
pub struct DelayLine {
    buffer: Vec<f32>,
    position: usize,
}

impl DelayLine {
    pub fn new(delay: usize) -> Self {
        Self { buffer: vec![0.0; delay], position: 0 }
    }

    pub fn delay(&self) -> usize {
        self.buffer.len()
    }

    /// Writes `input` and puts the samples from `delay` samples ago into `output`.
    pub fn process(&mut self, input: &[f32], output: &mut [f32]) {
        if self.buffer.is_empty() {
            output.copy_from_slice(input);
            return;
        }
        for (x, y) in input.iter().zip(output.iter_mut()) {
            *y = std::mem::replace(&mut self.buffer[self.position], *x);
            self.position += 1;
            if self.position == self.buffer.len() {
                self.position = 0;
            }
        }
    }

    pub fn reset(&mut self) {
        self.buffer.fill(0.0);
        self.position = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_by_exactly_the_delay_across_blocks() {
        for delay in [0, 1, 5, 300] {
            let mut line = DelayLine::new(delay);
            let input: Vec<f32> = (1..=1000).map(|i| i as f32).collect();
            let mut output = vec![0.0; 1000];
            for (x, y) in input.chunks(37).zip(output.chunks_mut(37)) {
                line.process(x, y);
            }
            for n in 0..1000 {
                let expected = if n >= delay { input[n - delay] } else { 0.0 };
                assert_eq!(output[n], expected, "delay {delay}, sample {n}");
            }
        }
    }
}
