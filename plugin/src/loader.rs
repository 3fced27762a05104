//! Turns a model pack into the models the engine runs, or into a passthrough with the reason in
//! words: a missing ONNX Runtime library or a refused pack never stops the plugin.

use std::path::Path;

use crate::model::{IdentityModel, Models};
use crate::onnx::{OnnxGenerator, PackStyleMeter, Provider};
use crate::pack::{Pack, PackError};

/// Models ready for the engine, and what the status line says about them.
pub struct Loaded {
    pub models: Models,
    /// The execution provider in use ("cpu", "cuda", "directml"), or "none" when passing through.
    pub provider: &'static str,
    /// Why audio passes through, or a note on the provider (a GPU that fell back to the CPU).
    pub problem: Option<String>,
}

/// The pack built into the binary.
pub fn load_default(provider: Provider) -> Loaded {
    load(Pack::embedded(), provider)
}

/// A pack from a folder of the user's.
pub fn load_dir(folder: &Path, provider: Provider) -> Loaded {
    load(Pack::from_dir(folder), provider)
}

fn load(pack: Result<Pack, PackError>, provider: Provider) -> Loaded {
    let styles = pack.as_ref().map(|p| p.style_names()).unwrap_or_default();
    let opened = pack.and_then(|pack| {
        let generator = OnnxGenerator::new(&pack, provider)?;
        let meter = PackStyleMeter::new(&pack, provider)?;
        Ok((generator, meter))
    });
    match opened {
        Ok((generator, meter)) => Loaded {
            provider: generator.provider(),
            problem: generator.provider_note().map(str::to_owned),
            models: Models { generator: Box::new(generator), meter: Some(Box::new(meter)) },
        },
        Err(error) => Loaded {
            models: Box::new(IdentityModel::with_styles(styles)).into(),
            provider: "none",
            problem: Some(format!("passing audio through: {error}")),
        },
    }
}
