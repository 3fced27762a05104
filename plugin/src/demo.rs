//! The demo clip embedded in the binary, so `cargo xtask demo` and a first try need no files:
//! nine seconds of Mozart (K. 80, first movement, bars 1–6) on General MIDI piano, rendered with
//! fluidsynth and the FluidR3 SoundFont at 48 kHz.

use anyhow::Result;

use crate::wav::{self, Audio};

const CLIP: &[u8] = include_bytes!("../assets/demo.wav");

pub fn clip() -> Result<Audio> {
    wav::read_bytes(CLIP, "the embedded demo clip")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_clip_decodes_to_nine_seconds_of_mono_48k() {
        let audio = super::clip().unwrap();
        assert_eq!((audio.sample_rate, audio.channels.len()), (48_000, 1));
        assert_eq!(audio.channels[0].len(), 9 * 48_000);
        let peak = audio.channels[0].iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!(peak > 0.5 && peak <= 1.0, "peak {peak}");
    }
}
