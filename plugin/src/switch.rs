//! Switching the model pack while the plugin plays.
//!
//! The editor asks for a pack; a background thread loads and checks it (file reading and session
//! building take far longer than an audio block, so never on the audio thread); the inference
//! thread takes the new models between two frames and fades over to them (see
//! [`ModelSwap`]). A pack that is refused changes nothing: the running pack keeps playing, the
//! choice goes back to it, and the status line says why.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use crate::engine::ModelSwap;
use crate::loader::{self, Loaded};
use crate::onnx::Provider;
use crate::params::RestyleParams;
use crate::stats::Status;

/// A pack the editor asked for: `None` is the built-in pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackRequest(pub Option<String>);

/// Everything a switch touches. One per plugin instance, kept across activations.
pub struct Switcher {
    params: Arc<RestyleParams>,
    status: Arc<RwLock<Status>>,
    swap: Arc<ModelSwap>,
    /// The user's pack folder (`None` without a home folder).
    pack_dir: Option<PathBuf>,
    /// The pack running now, to go back to when a requested one is refused.
    running: Mutex<Option<String>>,
}

impl Switcher {
    pub fn new(params: Arc<RestyleParams>, status: Arc<RwLock<Status>>, swap: Arc<ModelSwap>, pack_dir: Option<PathBuf>) -> Self {
        Self { params, status, swap, pack_dir, running: Mutex::default() }
    }

    /// The models to (re)start the engine with: the pack saved in the state, or the built-in
    /// one with the reason when it is refused. An offer meant for the old engine is void.
    pub fn start(&self, provider: Provider) -> Loaded {
        let chosen = self.params.pack.read().map(|p| p.clone()).unwrap_or_default();
        let exact = loader::load_exact_in(self.pack_dir.as_deref(), chosen.as_deref(), provider);
        let (loaded, running) = match &chosen {
            Some(name) if exact.provider == "none" => (loader::built_in_instead(name, exact.problem, provider), None),
            _ => (exact, chosen),
        };
        self.swap.withdraw();
        if let Ok(mut current) = self.running.lock() {
            *current = running;
        }
        loaded
    }

    /// Loads the requested pack and hands it to the running engine, or refuses it. Runs on a
    /// background thread.
    pub fn switch(&self, PackRequest(pack): PackRequest) {
        let provider = self.params.provider.read().map(|p| *p).unwrap_or_default();
        let Loaded { models, provider, problem } = loader::load_exact_in(self.pack_dir.as_deref(), pack.as_deref(), provider);
        let shown = |pack: &Option<String>| pack.clone().unwrap_or_else(|| "built-in".to_owned());
        let Ok(mut running) = self.running.lock() else { return };
        if provider == "none" {
            let why = problem.unwrap_or_default();
            if let Ok(mut chosen) = self.params.pack.write() {
                chosen.clone_from(&running);
            }
            if let Ok(mut status) = self.status.write() {
                status.error = Some(format!("pack '{}' refused ({why}); still running the {} pack", shown(&pack), shown(&running)));
            }
            return;
        }
        let styles = models.generator.styles().to_vec();
        let model = models.generator.name().to_owned();
        self.swap.offer(models);
        self.params.style_names.set(&styles);
        if let Ok(mut status) = self.status.write() {
            *status = Status { model, provider: provider.to_owned(), styles, latency_mode: status.latency_mode, error: problem };
        }
        *running = pack;
    }
}
