//! The style meter: the pack's classifier listening to the generator's output.

use anyhow::Result;

use super::{OnnxClassifier, Provider, StyleFeatures};
use crate::model::StyleMeter;
use crate::pack::{Pack, PackError};

/// The classifier runs once every this many frames (about 23 times a second at 48 kHz, hop 128):
/// often enough for a meter, a sixteenth of the cost of running it every frame.
const EVERY_FRAMES: usize = 16;

pub struct PackStyleMeter {
    classifier: OnnxClassifier,
    features: StyleFeatures,
    buffer: Vec<f32>,
    frames: usize,
}

impl PackStyleMeter {
    pub fn new(pack: &Pack, provider: Provider) -> Result<Self, PackError> {
        let features = OnnxClassifier::features(pack);
        Ok(Self {
            classifier: OnnxClassifier::new(pack, provider)?,
            buffer: vec![0.0; features.dim()],
            features,
            frames: 0,
        })
    }
}

impl StyleMeter for PackStyleMeter {
    fn push(&mut self, logmag: &[f32], confidences: &mut [f32]) -> Result<bool> {
        self.features.push(logmag);
        self.frames += 1;
        if !self.frames.is_multiple_of(EVERY_FRAMES) || !self.features.features(&mut self.buffer) {
            return Ok(false);
        }
        let probs = self.classifier.run(&self.buffer, 1)?;
        confidences.fill(0.0);
        confidences.iter_mut().zip(&probs).for_each(|(c, p)| *c = *p);
        Ok(true)
    }

    fn reset(&mut self) {
        self.features.reset();
        self.frames = 0;
    }
}
