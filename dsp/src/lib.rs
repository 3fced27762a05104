//! Pure DSP for Restyle: everything here is testable with plain arrays; no plugin, no ONNX, no
//! threads. Constructors allocate; the methods the audio thread calls never do.

pub mod delay;
pub mod features;
pub mod stft;
pub mod window;
pub mod mel;
pub mod mfcc;
pub mod noise;
pub mod ramp;
pub mod resample;

pub use realfft::num_complex::Complex32;
