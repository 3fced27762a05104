//! Model packs: a generator, a style classifier and the manifest that describes both.
//!
//! The manifest is the contract between the training pipeline (`models/`, which writes it) and
//! the engine (`docs/CONTRACT.md`). Everything in it is checked before a model runs, and once the
//! ONNX sessions exist their real tensor names, types and shapes are checked against it too (see
//! [`crate::onnx`]), so a pack made for another STFT, another feature or another style list is
//! refused with a message a musician can act on instead of producing noise.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::engine::{HOP, MODEL_RATE, N_FFT};
use crate::model::MAX_STYLES;
use crate::onnx::FEATURES_PER_BAND;

/// The manifest format this build reads.
pub const FORMAT_VERSION: u32 = 1;
/// The analysis window pair of the contract.
pub const WINDOW: &str = "asymmetric";
/// The generator's feature: `0.5 * ln(re^2 + im^2 + 1e-10)` per bin.
pub const FEATURE: &str = "logmag_ln_eps1e-10";
/// The spectrum size the generator reads and writes.
pub const BINS: i64 = (N_FFT / 2 + 1) as i64;
/// Larger files are refused before they are read: the shipped int8 generator is about 1 MB, so
/// this is a corrupt or wrong file, and reading it would stall the host.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// A dimension the model leaves open (the batch), as ONNX Runtime and the manifest write it.
pub const DYNAMIC: i64 = -1;

/// The most values one channel's generator state may have (4 MiB of float32; the default pack's
/// has 256). The engine allocates the state the manifest declares, so a larger declaration is
/// refused before anything of that size exists.
pub const MAX_STATE_VALUES: usize = 1 << 20;
/// The most mel bands the classifier's features may have: more bands than the spectrum has bins
/// would be empty, and the style meter keeps every band of every frame of its window.
pub const MAX_MEL_BANDS: usize = BINS as usize;
/// The longest feature window, in frames (5.5 s at 48 kHz, hop 128), for the same reason.
pub const MAX_WINDOW_FRAMES: usize = 2048;

/// Everything that can be wrong with a pack, worded for the person who chose it.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("pack '{pack}': cannot read {path}: {source}")]
    Read { pack: String, path: PathBuf, source: std::io::Error },
    #[error("pack '{pack}': {file} is {bytes} bytes; the limit is {MAX_FILE_BYTES} bytes, so this is not a Restyle model")]
    TooLarge { pack: String, file: String, bytes: u64 },
    #[error("pack '{pack}': manifest.json is not valid: {source}")]
    Manifest { pack: String, source: serde_json::Error },
    #[error("pack '{pack}': {problem}")]
    Unsupported { pack: String, problem: String },
    #[error("pack '{pack}': the {model} {problem}")]
    Interface { pack: String, model: &'static str, problem: String },
    #[error("pack '{pack}': ONNX Runtime cannot open the {model} ({file}): {message}")]
    Session { pack: String, model: &'static str, file: String, message: String },
    #[error("{0}")]
    NoRuntime(String),
}

/// `manifest.json`. Fields this build does not use (training details, metrics, ...) are allowed
/// and ignored, so the pipeline can add to it without breaking older plugins.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub name: String,
    pub sample_rate: u32,
    pub n_fft: usize,
    pub hop: usize,
    pub window: String,
    pub feature: String,
    pub styles: Vec<Style>,
    pub generator: ModelEntry,
    pub classifier: ClassifierEntry,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Style {
    pub name: String,
    /// The General MIDI program its training data was rendered with (informational).
    #[serde(default)]
    pub program: Option<u8>,
}

/// One ONNX file of the pack and the interface it claims to have.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelEntry {
    /// File name inside the pack folder (no folders: a pack cannot point outside itself).
    pub file: String,
    pub role: String,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    /// The generator's state shape, `[-1, ...]` (the same as `state_in`).
    #[serde(default)]
    pub state_shape: Option<Vec<i64>>,
    /// How the weights are stored, e.g. "dynamic_int8" (shown by `restyle info`).
    #[serde(default)]
    pub quantization: Option<String>,
    /// Parameter count (shown by `restyle info`).
    #[serde(default)]
    pub params: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TensorSpec {
    pub name: String,
    /// Dimensions, `-1` where the model accepts any size (the batch).
    pub shape: Vec<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ClassifierEntry {
    #[serde(flatten)]
    pub model: ModelEntry,
    /// How to compute the classifier's input from the generator's log-magnitudes.
    pub features: FeatureRecipe,
}

/// The classifier's feature recipe (models/restyle_models/signal.py `classifier_features`):
/// per frame, `ln(mel(power) + eps)` and the band peakiness; over the last `window_frames`
/// frames, the mean log-mel, mean rise, mean fall and mean peakiness: `4 * n_mels` values.
#[derive(Debug, Clone, Deserialize)]
pub struct FeatureRecipe {
    pub mel: MelRecipe,
    pub log: LogRecipe,
    pub window_frames: usize,
    pub dim: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MelRecipe {
    pub n_mels: usize,
    /// "slaney" or "htk".
    pub scale: String,
    /// "slaney" or "none".
    pub norm: String,
    pub fmin_hz: f32,
    pub fmax_hz: f32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogRecipe {
    pub eps: f32,
}

/// A model pack in memory: the manifest and the bytes of both models.
#[derive(Debug, Clone)]
pub struct Pack {
    pub manifest: Manifest,
    pub generator: Cow<'static, [u8]>,
    pub classifier: Cow<'static, [u8]>,
    /// Where the pack came from ("built-in" or its folder), for messages.
    pub source: String,
}

/// Which of the pack's two models a check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Generator,
    Classifier,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Generator => "generator",
            Role::Classifier => "style classifier",
        }
    }
}

impl Pack {
    /// The default pack, built into the binary from `models/packs/default/`.
    pub fn embedded() -> Result<Self, PackError> {
        macro_rules! pack_file {
            ($name:literal) => {
                include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/packs/default/", $name))
            };
        }
        Self::from_parts(
            "built-in",
            pack_file!("manifest.json"),
            Cow::Borrowed(pack_file!("generator.onnx")),
            Cow::Borrowed(pack_file!("classifier.onnx")),
        )
    }

    /// A pack from a folder with `manifest.json` and the files it names.
    pub fn from_dir(folder: &Path) -> Result<Self, PackError> {
        let source = folder.display().to_string();
        // Validated before the models are read: the file names it gives are plain names.
        let manifest = Manifest::parse(&source, &read_limited(&source, &folder.join("manifest.json"))?)?;
        let pack = manifest.name.clone();
        let generator = read_limited(&pack, &folder.join(&manifest.generator.file))?;
        let classifier = read_limited(&pack, &folder.join(&manifest.classifier.model.file))?;
        let pack = Self { manifest, generator: Cow::Owned(generator), classifier: Cow::Owned(classifier), source };
        pack.check_sizes()?;
        Ok(pack)
    }

    /// A pack from its parts (the embedded pack, or a pack delivered some other way).
    pub fn from_parts(
        source: &str,
        manifest: &[u8],
        generator: Cow<'static, [u8]>,
        classifier: Cow<'static, [u8]>,
    ) -> Result<Self, PackError> {
        let manifest = Manifest::parse(source, manifest)?;
        let pack = Self { manifest, generator, classifier, source: source.to_owned() };
        pack.check_sizes()?;
        Ok(pack)
    }

    /// The pack's name, from its manifest.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The style names, in slot order.
    pub fn style_names(&self) -> Vec<String> {
        self.manifest.styles.iter().map(|s| s.name.clone()).collect()
    }

    fn check_sizes(&self) -> Result<(), PackError> {
        for (entry, bytes) in [(&self.manifest.generator, &self.generator), (&self.manifest.classifier.model, &self.classifier)] {
            check_size(&self.manifest.name, &entry.file, bytes.len() as u64)?;
        }
        Ok(())
    }
}

/// Reads a file after checking its size, so a huge file is refused without being read.
fn read_limited(pack: &str, path: &Path) -> Result<Vec<u8>, PackError> {
    let read_error = |source| PackError::Read { pack: pack.to_owned(), path: path.to_path_buf(), source };
    let bytes = std::fs::metadata(path).map_err(read_error)?.len();
    check_size(pack, &path.display().to_string(), bytes)?;
    std::fs::read(path).map_err(read_error)
}

fn check_size(pack: &str, file: &str, bytes: u64) -> Result<(), PackError> {
    if bytes > MAX_FILE_BYTES {
        return Err(PackError::TooLarge { pack: pack.to_owned(), file: file.to_owned(), bytes });
    }
    if bytes == 0 {
        return Err(PackError::Unsupported { pack: pack.to_owned(), problem: format!("{file} is empty") });
    }
    Ok(())
}

/// A manifest names files inside its own folder only.
fn safe_file_name<'a>(pack: &str, file: &'a str) -> Result<&'a str, PackError> {
    let plain = !file.is_empty() && Path::new(file).file_name().is_some_and(|name| name == file) && file != "..";
    if plain {
        Ok(file)
    } else {
        Err(PackError::Unsupported { pack: pack.to_owned(), problem: format!("the manifest names the file '{file}', which is not a plain file name in the pack's folder") })
    }
}

impl Manifest {
    /// Reads `manifest.json` from its bytes and checks it ([`Manifest::validate`]), touching no
    /// file (the `manifest` fuzz target runs exactly this). `source` names the pack in errors
    /// until the manifest has given its name.
    pub fn parse(source: &str, bytes: &[u8]) -> Result<Self, PackError> {
        let manifest: Self =
            serde_json::from_slice(bytes).map_err(|error| PackError::Manifest { pack: source.to_owned(), source: error })?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks everything the manifest promises against what Restyle can run: format, signal
    /// settings, styles, and the tensor interface of both models (docs/CONTRACT.md).
    pub fn validate(&self) -> Result<(), PackError> {
        let pack = || self.name.clone();
        let unsupported = |problem: String| PackError::Unsupported { pack: pack(), problem };
        if self.format_version != FORMAT_VERSION {
            return Err(unsupported(format!(
                "it is in manifest format {}, this version of Restyle reads format {FORMAT_VERSION}",
                self.format_version
            )));
        }
        for file in [&self.generator.file, &self.classifier.model.file] {
            safe_file_name(&self.name, file)?;
        }
        let settings: [(&str, String, String); 5] = [
            ("sample rate", self.sample_rate.to_string(), MODEL_RATE.to_string()),
            ("FFT size", self.n_fft.to_string(), N_FFT.to_string()),
            ("hop", self.hop.to_string(), HOP.to_string()),
            ("window", self.window.clone(), WINDOW.to_owned()),
            ("feature", self.feature.clone(), FEATURE.to_owned()),
        ];
        for (what, found, needed) in settings {
            if found != needed {
                return Err(unsupported(format!("it was made for a {what} of {found}, Restyle needs {needed}")));
            }
        }
        self.validate_styles().map_err(unsupported)?;
        self.validate_generator().map_err(|problem| PackError::Interface { pack: pack(), model: Role::Generator.label(), problem })?;
        self.validate_classifier().map_err(|problem| PackError::Interface { pack: pack(), model: Role::Classifier.label(), problem })
    }

    /// The number of styles, `S` in the contract.
    pub fn n_styles(&self) -> usize {
        self.styles.len()
    }

    /// The generator's state shape `[-1, ...]` (validated: the tail is fixed and positive, with
    /// at most [`MAX_STATE_VALUES`] values).
    pub fn state_shape(&self) -> &[i64] {
        self.generator.inputs.iter().find(|t| t.name == "state_in").map_or(&[], |t| &t.shape)
    }

    fn validate_styles(&self) -> Result<(), String> {
        let n = self.styles.len();
        if !(1..=MAX_STYLES).contains(&n) {
            return Err(format!("it has {n} styles; Restyle offers 1 to {MAX_STYLES}"));
        }
        let mut seen = HashSet::new();
        for style in &self.styles {
            let name = style.name.trim();
            if name.is_empty() {
                return Err("one of its styles has no name".to_owned());
            }
            if !seen.insert(name.to_lowercase()) {
                return Err(format!("the style name '{name}' appears twice"));
            }
        }
        Ok(())
    }

    fn validate_generator(&self) -> Result<(), String> {
        let entry = &self.generator;
        check_role(entry, "generator")?;
        let s = self.styles.len() as i64;
        let state = entry
            .inputs
            .iter()
            .find(|t| t.name == "state_in")
            .ok_or("has no input 'state_in' (its streaming state)")?
            .shape
            .clone();
        if state.len() < 2 || state[0] != DYNAMIC || state[1..].iter().any(|&d| d <= 0) {
            return Err(format!("state 'state_in' has shape {state:?}; Restyle needs [-1, ...] with fixed positive sizes after the batch"));
        }
        // Multiplied without overflow (the sizes are positive): `None` is more than any limit.
        let values = state[1..].iter().try_fold(1usize, |n, &d| n.checked_mul(usize::try_from(d).ok()?));
        if values.is_none_or(|n| n > MAX_STATE_VALUES) {
            return Err(format!(
                "state 'state_in' has shape {state:?}: more than the {MAX_STATE_VALUES} values per channel Restyle allows"
            ));
        }
        check_interface(
            entry,
            &[("logmag", vec![DYNAMIC, BINS]), ("style", vec![DYNAMIC, s]), ("state_in", state.clone())],
            &[("logmag_out", vec![DYNAMIC, BINS]), ("state_out", state.clone())],
        )?;
        match &entry.state_shape {
            Some(declared) if *declared != state => {
                Err(format!("declares state_shape {declared:?} but its state input has shape {state:?}"))
            }
            _ => Ok(()),
        }
    }

    fn validate_classifier(&self) -> Result<(), String> {
        let entry = &self.classifier.model;
        check_role(entry, "classifier")?;
        let recipe = &self.classifier.features;
        let mel = &recipe.mel;
        // The recipe's sizes first: they bound `dim` before it becomes a tensor dimension.
        if !(1..=MAX_MEL_BANDS).contains(&mel.n_mels) {
            return Err(format!("features use {} mel bands; Restyle computes 1 to {MAX_MEL_BANDS}", mel.n_mels));
        }
        if recipe.dim != FEATURES_PER_BAND * mel.n_mels {
            return Err(format!(
                "features have {} values from {} mel bands; Restyle computes {FEATURES_PER_BAND} per band (mean level, rise, fall and peakiness)",
                recipe.dim, mel.n_mels
            ));
        }
        if !(2..=MAX_WINDOW_FRAMES).contains(&recipe.window_frames) {
            return Err(format!("features average {} frames; Restyle averages 2 to {MAX_WINDOW_FRAMES}", recipe.window_frames));
        }
        let f = recipe.dim as i64;
        check_interface(entry, &[("features", vec![DYNAMIC, f])], &[("probs", vec![DYNAMIC, self.styles.len() as i64])])?;
        if !["slaney", "htk"].contains(&mel.scale.as_str()) || !["slaney", "none"].contains(&mel.norm.as_str()) {
            return Err(format!("uses a '{}' mel scale with '{}' normalisation, which Restyle does not compute", mel.scale, mel.norm));
        }
        let nyquist = MODEL_RATE as f32 / 2.0;
        if !(mel.fmin_hz >= 0.0 && mel.fmin_hz < mel.fmax_hz && mel.fmax_hz <= nyquist) {
            return Err(format!("uses mel bands from {} Hz to {} Hz, outside 0 to {nyquist} Hz", mel.fmin_hz, mel.fmax_hz));
        }
        if !(recipe.log.eps > 0.0 && recipe.log.eps.is_finite()) {
            return Err(format!("takes the log with a floor of {}, which must be positive", recipe.log.eps));
        }
        Ok(())
    }
}

fn check_role(entry: &ModelEntry, role: &str) -> Result<(), String> {
    if entry.role == role {
        Ok(())
    } else {
        Err(format!("is marked as a '{}' in the manifest", entry.role))
    }
}

/// The manifest's tensors must be exactly the contract's: same names, same shapes.
fn check_interface(entry: &ModelEntry, inputs: &[(&str, Vec<i64>)], outputs: &[(&str, Vec<i64>)]) -> Result<(), String> {
    for (kind, declared, needed) in [("input", &entry.inputs, inputs), ("output", &entry.outputs, outputs)] {
        for (name, shape) in needed {
            let spec = declared
                .iter()
                .find(|t| t.name == *name)
                .ok_or_else(|| format!("has no {kind} '{name}' (it has {})", names(declared)))?;
            if spec.shape != *shape {
                return Err(describe_shape_mismatch(kind, name, &spec.shape, shape));
            }
        }
        if declared.len() != needed.len() {
            return Err(format!("has the {kind}s {}; Restyle feeds exactly {}", names(declared), needed.iter().map(|(n, _)| format!("'{n}'")).collect::<Vec<_>>().join(", ")));
        }
    }
    Ok(())
}

/// "the generator expects 512 bins, Restyle needs 513" where that is what differs.
pub(crate) fn describe_shape_mismatch(kind: &str, name: &str, found: &[i64], needed: &[i64]) -> String {
    let what = match name {
        "logmag" | "logmag_out" => Some("bins"),
        "style" | "probs" => Some("styles"),
        "features" => Some("features"),
        _ => None,
    };
    match what {
        Some(what) if found.len() == 2 && needed.len() == 2 && found[0] == needed[0] => {
            format!("{kind} '{name}' has {} {what}, Restyle needs {}", found[1], needed[1])
        }
        _ => format!("{kind} '{name}' has shape {found:?}, Restyle needs {needed:?}"),
    }
}

fn names(specs: &[TensorSpec]) -> String {
    if specs.is_empty() {
        return "none".to_owned();
    }
    specs.iter().map(|t| format!("'{}'", t.name)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> serde_json::Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny/manifest.json");
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn validate(manifest: serde_json::Value) -> Result<(), PackError> {
        serde_json::from_value::<Manifest>(manifest).unwrap().validate()
    }

    #[test]
    fn the_fixture_manifest_is_valid() {
        validate(tiny()).unwrap();
    }

    #[test]
    fn a_generator_with_512_bins_is_refused_naming_the_bins() {
        let mut m = tiny();
        m["generator"]["inputs"][0]["shape"] = serde_json::json!([-1, 512]);
        let error = validate(m).unwrap_err().to_string();
        assert_eq!(error, "pack 'tiny': the generator input 'logmag' has 512 bins, Restyle needs 513");
    }

    #[test]
    fn wrong_signal_settings_are_refused() {
        for (field, value, needle) in [
            ("hop", serde_json::json!(256), "hop of 256, Restyle needs 128"),
            ("sample_rate", serde_json::json!(44100), "sample rate of 44100"),
            ("feature", serde_json::json!("logmel"), "feature of logmel"),
            ("format_version", serde_json::json!(2), "manifest format 2"),
        ] {
            let mut m = tiny();
            m[field] = value;
            let error = validate(m).unwrap_err().to_string();
            assert!(error.contains(needle), "{error}");
        }
    }

    #[test]
    fn styles_must_be_named_uniquely_and_fit_the_knobs() {
        let mut m = tiny();
        m["styles"][1]["name"] = serde_json::json!("strings");
        assert!(validate(m).unwrap_err().to_string().contains("'strings' appears twice"));
        let mut m = tiny();
        m["styles"] = serde_json::json!((0..9).map(|i| serde_json::json!({"name": format!("S{i}")})).collect::<Vec<_>>());
        assert!(validate(m).unwrap_err().to_string().contains("9 styles"));
    }

    #[test]
    fn the_style_input_must_match_the_style_list() {
        let mut m = tiny();
        m["styles"].as_array_mut().unwrap().pop();
        let error = validate(m).unwrap_err().to_string();
        assert!(error.contains("input 'style' has 3 styles, Restyle needs 2"), "{error}");
    }

    #[test]
    fn state_out_must_match_state_in() {
        let mut m = tiny();
        m["generator"]["outputs"][1]["shape"] = serde_json::json!([-1, 2, 5]);
        let error = validate(m).unwrap_err().to_string();
        assert!(error.contains("output 'state_out' has shape [-1, 2, 5], Restyle needs [-1, 2, 2]"), "{error}");
    }

    #[test]
    fn oversized_and_empty_files_are_refused_by_size_alone() {
        let error = check_size("tiny", "generator.onnx", MAX_FILE_BYTES + 1).unwrap_err().to_string();
        assert!(error.starts_with("pack 'tiny': generator.onnx is 67108865 bytes; the limit is 67108864"), "{error}");
        assert!(check_size("tiny", "generator.onnx", 0).unwrap_err().to_string().contains("generator.onnx is empty"));
        assert!(check_size("tiny", "generator.onnx", MAX_FILE_BYTES).is_ok());
    }

    #[test]
    fn declared_sizes_that_would_allocate_without_bound_are_refused() {
        for (shape, needle) in [
            (serde_json::json!([-1, 2147483648i64, 2147483648i64]), "more than the 1048576 values"),
            (serde_json::json!([-1, 1025, 1024]), "more than the 1048576 values"),
            (serde_json::json!([-1, i64::MAX, i64::MAX, 2]), "more than the 1048576 values"),
        ] {
            let mut m = tiny();
            m["generator"]["inputs"][2]["shape"] = shape.clone();
            m["generator"]["outputs"][1]["shape"] = shape.clone();
            m["generator"]["state_shape"] = shape;
            let error = validate(m).unwrap_err().to_string();
            assert!(error.contains(needle), "{error}");
        }
        let mut m = tiny();
        m["classifier"]["features"]["mel"]["n_mels"] = serde_json::json!(u64::MAX / 2);
        m["classifier"]["features"]["dim"] = serde_json::json!(u64::MAX);
        let error = validate(m).unwrap_err().to_string();
        assert!(error.contains("features use 9223372036854775807 mel bands; Restyle computes 1 to 513"), "{error}");
        let mut m = tiny();
        m["classifier"]["features"]["window_frames"] = serde_json::json!(1u64 << 40);
        let error = validate(m).unwrap_err().to_string();
        assert!(error.contains("features average 1099511627776 frames; Restyle averages 2 to 2048"), "{error}");
    }

    #[test]
    fn a_manifest_that_names_a_file_outside_its_folder_is_refused() {
        let mut m = tiny();
        m["classifier"]["file"] = serde_json::json!("../classifier.onnx");
        let error = validate(m).unwrap_err().to_string();
        assert!(error.contains("names the file '../classifier.onnx', which is not a plain file name"), "{error}");
    }

    #[test]
    fn a_manifest_cannot_point_outside_its_folder() {
        let mut m = tiny();
        m["generator"]["file"] = serde_json::json!("../../secret.onnx");
        let manifest = serde_json::from_value::<Manifest>(m).unwrap();
        assert!(safe_file_name("tiny", &manifest.generator.file).is_err());
        assert!(safe_file_name("tiny", "generator.onnx").is_ok());
    }
}
