//! The pack's style classifier: features `[B, F]` to style probabilities `[B, S]`. The editor's
//! style meter shows its output on the processed signal.

use anyhow::{ensure, Context, Result};
use ort::session::Session;
use ort::value::TensorRef;

use super::{open, Provider, StyleFeatures};
use crate::pack::{Pack, PackError, Role};

pub struct OnnxClassifier {
    session: Session,
    n_features: usize,
    n_styles: usize,
    provider: &'static str,
}

impl OnnxClassifier {
    /// Opens the pack's classifier on `provider`, after checking it against the manifest.
    pub fn new(pack: &Pack, provider: Provider) -> Result<Self, PackError> {
        let opened = open(pack, Role::Classifier, provider)?;
        Ok(Self {
            session: opened.session,
            n_features: pack.manifest.classifier.features.dim,
            n_styles: pack.manifest.n_styles(),
            provider: opened.provider,
        })
    }

    /// A feature extractor for this pack's recipe.
    pub fn features(pack: &Pack) -> StyleFeatures {
        StyleFeatures::new(&pack.manifest.classifier.features)
    }

    /// The execution provider in use: "cpu", "cuda" or "directml".
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// Style probabilities `[batch, S]` (row after row) for `batch` feature vectors.
    pub fn run(&mut self, features: &[f32], batch: usize) -> Result<Vec<f32>> {
        ensure!(batch > 0 && features.len() == batch * self.n_features, "the classifier needs {} features per row, got {} values for {batch} row(s)", self.n_features, features.len());
        let outputs = self
            .session
            .run(ort::inputs!["features" => TensorRef::from_array_view(([batch, self.n_features], features))?])
            .context("running the style classifier")?;
        let (_, probs) = outputs["probs"].try_extract_tensor::<f32>().context("reading probs")?;
        ensure!(probs.len() == batch * self.n_styles, "the classifier returned {} values for {} expected", probs.len(), batch * self.n_styles);
        Ok(probs.to_vec())
    }
}
