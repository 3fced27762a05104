//! The ONNX boundary: everything that knows about `ort` is here (and in [`crate::runtime`]).
//!
//! A session is made from a pack's bytes on one intra-op and one inter-op thread (a plugin leaves
//! the host's other cores alone), with every graph optimisation on, on the execution provider
//! asked for. Before a session is handed out, its real inputs and outputs are compared with the
//! pack's manifest, which has already been compared with the contract: a manifest that describes
//! some other model is refused, not believed.

use std::panic::{catch_unwind, AssertUnwindSafe};

use ort::ep::{self, ExecutionProvider};
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::Session;
use ort::value::{Outlet, TensorElementType, ValueType};

use crate::pack::{describe_shape_mismatch, ModelEntry, Pack, PackError, Role, TensorSpec, DYNAMIC};
use crate::runtime;

mod classifier;
mod features;
mod generator;
mod meter;

pub use classifier::OnnxClassifier;
pub use features::{StyleFeatures, FEATURES_PER_BAND};
pub use generator::OnnxGenerator;
pub use meter::PackStyleMeter;

/// Where the models should run (saved in the plugin state by its label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// The GPU if ONNX Runtime has a working GPU provider (CUDA, then DirectML), else the CPU.
    #[default]
    Auto,
    /// Always the CPU.
    Cpu,
    /// The GPU; if none works, the CPU with a note saying why.
    Gpu,
}

impl Provider {
    /// The setting's name, as `FromStr` reads it: "auto", "cpu" or "gpu".
    pub fn label(self) -> &'static str {
        match self {
            Provider::Auto => "auto",
            Provider::Cpu => "cpu",
            Provider::Gpu => "gpu",
        }
    }
}

impl std::str::FromStr for Provider {
    type Err = String;

    /// Reads a command-line or settings value: "auto", "cpu" or "gpu" (any case).
    fn from_str(text: &str) -> Result<Self, String> {
        crate::choice::parse(text, &[Provider::Auto, Provider::Cpu, Provider::Gpu], Provider::label, "execution provider")
    }
}

/// The GPU providers Restyle tries, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GpuProvider {
    Cuda,
    DirectMl,
}

impl GpuProvider {
    const ALL: [GpuProvider; 2] = [GpuProvider::Cuda, GpuProvider::DirectMl];

    /// The short name shown in the status line.
    fn label(self) -> &'static str {
        match self {
            GpuProvider::Cuda => "cuda",
            GpuProvider::DirectMl => "directml",
        }
    }

    /// Whether this ONNX Runtime library was built with the provider at all.
    fn compiled_in(self) -> bool {
        match self {
            GpuProvider::Cuda => ep::CUDA::is_available(),
            GpuProvider::DirectMl => ep::DirectML::is_available(),
        }
        .unwrap_or(false)
    }

    /// Adds the provider to a session; fails when its own libraries (CUDA, cuDNN, D3D12) or a
    /// device are missing.
    fn register(self, builder: &mut SessionBuilder) -> ort::Result<()> {
        match self {
            GpuProvider::Cuda => ep::CUDA::default().register(builder),
            GpuProvider::DirectMl => ep::DirectML::default().register(builder),
        }
    }
}

/// A session and the provider it actually runs on.
struct Opened {
    session: Session,
    /// "cpu", "cuda" or "directml".
    provider: &'static str,
    /// Why a GPU was not used where one was asked for (`None` where it was, or was not asked for).
    note: Option<String>,
}

/// Makes a session for one model of `pack` and checks its interface against the manifest.
/// `ort` turns some unexpected native answers into panics; one here becomes an error, so the
/// plugin passes audio through instead of taking the host down.
fn open(pack: &Pack, role: Role, provider: Provider) -> Result<Opened, PackError> {
    catch_unwind(AssertUnwindSafe(|| open_unguarded(pack, role, provider))).unwrap_or_else(|_| {
        Err(PackError::Session {
            pack: pack.manifest.name.clone(),
            model: role.label(),
            file: entry(pack, role).0.file.clone(),
            message: "ONNX Runtime failed unexpectedly (a panic in `ort`)".to_owned(),
        })
    })
}

/// The manifest entry and the bytes of one of the pack's models.
fn entry(pack: &Pack, role: Role) -> (&ModelEntry, &[u8]) {
    match role {
        Role::Generator => (&pack.manifest.generator, &pack.generator[..]),
        Role::Classifier => (&pack.manifest.classifier.model, &pack.classifier[..]),
    }
}

fn open_unguarded(pack: &Pack, role: Role, provider: Provider) -> Result<Opened, PackError> {
    // `Pack`'s fields are public, so it may not have come through a validating constructor.
    pack.manifest.validate()?;
    let runtime = runtime::runtime().map_err(|e| PackError::NoRuntime(e.to_owned()))?;
    let (entry, bytes) = entry(pack, role);
    let session_error = |message: String| PackError::Session {
        pack: pack.manifest.name.clone(),
        model: role.label(),
        file: entry.file.clone(),
        message,
    };
    let mut skipped = Vec::new();
    if provider != Provider::Cpu {
        for gpu in GpuProvider::ALL {
            if !gpu.compiled_in() {
                skipped.push(format!("{}: not in this ONNX Runtime build", gpu.label()));
                continue;
            }
            let attempt = builder(&runtime.environment).and_then(|mut builder| {
                gpu.register(&mut builder).map_err(|e| e.to_string())?;
                builder.commit_from_memory(bytes).map_err(|e| e.to_string())
            });
            match attempt {
                Ok(session) => {
                    check_session(&session, entry).map_err(|problem| interface_error(pack, role, problem))?;
                    return Ok(Opened { session, provider: gpu.label(), note: None });
                }
                Err(why) => skipped.push(format!("{}: {why}", gpu.label())),
            }
        }
    }
    let session = builder(&runtime.environment)
        .and_then(|mut builder| builder.commit_from_memory(bytes).map_err(|e| e.to_string()))
        .map_err(session_error)?;
    check_session(&session, entry).map_err(|problem| interface_error(pack, role, problem))?;
    let note = (provider == Provider::Gpu).then(|| format!("no GPU provider worked ({}); running on the CPU", skipped.join("; ")));
    Ok(Opened { session, provider: "cpu", note })
}

pub(super) fn interface_error(pack: &Pack, role: Role, problem: String) -> PackError {
    PackError::Interface { pack: pack.manifest.name.clone(), model: role.label(), problem }
}

/// A session builder with Restyle's settings: one thread each way, all graph optimisations.
fn builder(environment: &ort::environment::Environment) -> Result<SessionBuilder, String> {
    let text = |e: ort::Error<SessionBuilder>| e.to_string();
    Session::builder(environment)
        .map_err(|e| e.to_string())?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(text)?
        .with_intra_threads(1)
        .map_err(text)?
        .with_inter_threads(1)
        .map_err(text)?
        .with_parallel_execution(false)
        .map_err(text)
}

/// The session's real interface must be the manifest's: the same input and output names, all
/// float32, the same ranks, a dynamic batch, and the manifest's fixed sizes (a dimension the
/// model leaves open accepts them).
fn check_session(session: &Session, entry: &ModelEntry) -> Result<(), String> {
    for (kind, declared, actual) in [("input", &entry.inputs, session.inputs()), ("output", &entry.outputs, session.outputs())] {
        let actual_names = || actual.iter().map(|o| format!("'{}'", o.name())).collect::<Vec<_>>().join(", ");
        if actual.len() != declared.len() {
            return Err(format!("file has the {kind}s {}, but the manifest lists {}", actual_names(), declared.len()));
        }
        for spec in declared {
            let outlet = actual
                .iter()
                .find(|o| o.name() == spec.name)
                .ok_or_else(|| format!("file has no {kind} '{}' (the manifest says so; the file has {})", spec.name, actual_names()))?;
            check_outlet(kind, spec, outlet)?;
        }
    }
    Ok(())
}

fn check_outlet(kind: &str, spec: &TensorSpec, outlet: &Outlet) -> Result<(), String> {
    let ValueType::Tensor { ty, shape, .. } = outlet.dtype() else {
        return Err(format!("file's {kind} '{}' is not a tensor", spec.name));
    };
    if *ty != TensorElementType::Float32 {
        return Err(format!("file's {kind} '{}' holds {ty:?} values, Restyle exchanges float32", spec.name));
    }
    let dims: &[i64] = shape;
    let agrees = dims.len() == spec.shape.len()
        && dims.iter().zip(&spec.shape).all(|(&actual, &declared)| {
            if declared == DYNAMIC {
                actual == DYNAMIC
            } else {
                actual == declared || actual == DYNAMIC
            }
        });
    if agrees {
        Ok(())
    } else {
        Err(format!("file's {}", describe_shape_mismatch(kind, &spec.name, dims, &spec.shape)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_settings_read_back_what_they_write() {
        for provider in [Provider::Auto, Provider::Cpu, Provider::Gpu] {
            assert_eq!(provider.label().parse::<Provider>(), Ok(provider));
        }
        assert_eq!(" GPU ".parse::<Provider>(), Ok(Provider::Gpu));
        assert!("tpu".parse::<Provider>().unwrap_err().contains("auto, cpu or gpu"));
    }
}
