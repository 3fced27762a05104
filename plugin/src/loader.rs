//! Turns a model pack into the models the engine runs, or into a passthrough with the reason in
//! words: a missing ONNX Runtime library or a refused pack never stops the plugin.

use std::path::{Path, PathBuf};

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

/// The user's pack folder, whether or not it exists yet.
pub fn user_pack_dir() -> Option<PathBuf> {
    pack_dir_from(std::env::var_os("XDG_DATA_HOME").map(PathBuf::from), std::env::var_os("HOME").map(PathBuf::from))
}

/// `$XDG_DATA_HOME/restyle/packs` when set (and absolute, as the XDG spec asks), else
/// `$HOME/.local/share/restyle/packs`.
pub fn pack_dir_from(xdg_data_home: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
    let data = xdg_data_home.filter(|p| p.is_absolute()).or_else(|| home.map(|h| h.join(".local/share")))?;
    Some(data.join("restyle").join("packs"))
}

/// The built-in pack, running because pack `name` was refused for `problem`; the status says
/// both.
pub fn built_in_instead(name: &str, problem: Option<String>, provider: Provider) -> Loaded {
    let mut fallback = load_default(provider);
    let note = format!("pack '{name}' refused ({}); running the built-in pack", problem.unwrap_or_default());
    fallback.problem = Some(match fallback.problem {
        Some(also) => format!("{note}; {also}"),
        None => note,
    });
    fallback
}

/// The pack `pack` names (`None`: the built-in one, else a folder name in the user's pack folder
/// `pack_dir`) and nothing else: a refused pack gives a passthrough with the reason (provider
/// "none"), for the caller to decide what runs instead.
pub fn load_exact_in(pack_dir: Option<&Path>, pack: Option<&str>, provider: Provider) -> Loaded {
    let Some(name) = pack else { return load_default(provider) };
    match pack_dir {
        _ if !is_pack_name(name) => Loaded {
            models: Box::new(IdentityModel::default()).into(),
            provider: "none",
            problem: Some("not a folder name in the pack folder".to_owned()),
        },
        Some(folder) => load_dir(&folder.join(name), provider),
        None => Loaded {
            models: Box::new(IdentityModel::default()).into(),
            provider: "none",
            problem: Some("no home folder to look for packs in".to_owned()),
        },
    }
}

/// Whether `name` names a folder directly inside the pack folder: one plain path component, so
/// that a name from a saved state can never reach outside it.
pub fn is_pack_name(name: &str) -> bool {
    let mut components = Path::new(name).components();
    matches!((components.next(), components.next()), (Some(std::path::Component::Normal(_)), None))
        && !name.contains(['/', '\\', '\0'])
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
