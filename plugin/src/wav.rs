//! WAV in and out for the renderer: any common integer or float format in, 32-bit float out.

use std::io::{Read, Seek};
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::engine::MAX_CHANNELS;

/// Deinterleaved audio: `channels[c][n]`.
pub struct Audio {
    pub sample_rate: u32,
    pub channels: Vec<Vec<f32>>,
}

pub fn read(path: &Path) -> Result<Audio> {
    let reader = hound::WavReader::open(path).with_context(|| format!("cannot read {} as WAV", path.display()))?;
    decode(reader, &path.display().to_string())
}

/// Decodes WAV bytes held in memory (the embedded demo clip).
pub fn read_bytes(bytes: &[u8], name: &str) -> Result<Audio> {
    let reader = hound::WavReader::new(std::io::Cursor::new(bytes)).with_context(|| format!("cannot read {name} as WAV"))?;
    decode(reader, name)
}

fn decode<R: Read + Seek>(reader: hound::WavReader<R>, name: &str) -> Result<Audio> {
    let spec = reader.spec();
    let count = spec.channels as usize;
    if count == 0 || count > MAX_CHANNELS {
        bail!("{name} has {count} channels; Restyle renders mono or stereo");
    }
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.into_samples::<f32>().collect::<Result<_, _>>(),
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            reader.into_samples::<i32>().map(|s| s.map(|s| s as f32 * scale)).collect::<Result<_, _>>()
        }
    }
    .with_context(|| format!("{name} is damaged"))?;
    let mut channels = vec![Vec::with_capacity(samples.len() / count); count];
    for frame in samples.chunks_exact(count) {
        for (channel, &s) in channels.iter_mut().zip(frame) {
            channel.push(s);
        }
    }
    Ok(Audio { sample_rate: spec.sample_rate, channels })
}

pub fn write(path: &Path, audio: &Audio) -> Result<()> {
    let spec = hound::WavSpec {
        channels: audio.channels.len() as u16,
        sample_rate: audio.sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut writer = hound::WavWriter::create(path, spec).with_context(|| format!("cannot create {}", path.display()))?;
    let frames = audio.channels.first().map_or(0, Vec::len);
    for n in 0..frames {
        for channel in &audio.channels {
            writer.write_sample(channel[n])?;
        }
    }
    writer.finalize().with_context(|| format!("cannot finish writing {}", path.display()))
}
