//! A small repeatable pseudo-random source (xorshift64) for test signals and simulated hosts:
//! the same seed gives the same sequence on every machine, without a dependency.

pub struct Xorshift(u64);

impl Xorshift {
    pub fn new(seed: u64) -> Self {
        // Spread small seeds over the state; zero is the one state xorshift cannot leave.
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `[-0.5, 0.5)`.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

/// `len` samples of white noise in `[-0.5, 0.5)`.
pub fn white_noise(len: usize, seed: u64) -> Vec<f32> {
    let mut source = Xorshift::new(seed);
    (0..len).map(|_| source.next_f32()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_repeatable_bounded_and_roughly_uniform() {
        let a = white_noise(100_000, 7);
        assert_eq!(a, white_noise(100_000, 7));
        assert_ne!(a, white_noise(100_000, 8));
        assert!(a.iter().all(|x| (-0.5..0.5).contains(x)));
        let mean = a.iter().sum::<f32>() / a.len() as f32;
        let variance = a.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / a.len() as f32;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((variance - 1.0 / 12.0).abs() < 0.002, "variance {variance}");
    }
}
