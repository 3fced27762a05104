//! The pack selector's list: the embedded default pack and the packs (folders) in the user's
//! model folder, `$XDG_DATA_HOME/restyle/packs` or `~/.local/share/restyle/packs`.

use std::path::{Path, PathBuf};

use crate::loader::user_pack_dir;
use std::time::{Duration, Instant};

/// The name the selector shows for the pack built into the plugin.
pub const DEFAULT_PACK: &str = "Default";

/// How often the folder is looked at again while the editor is open.
const RESCAN: Duration = Duration::from_secs(3);

/// The names of the folders in `dir`, sorted; empty if it cannot be read.
pub fn scan(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| !name.starts_with('.'))
        .collect();
    names.sort_by_key(|n| n.to_lowercase());
    names
}

/// The packs on offer, refreshed now and then while the editor is open.
#[derive(Debug, Default)]
pub struct PackList {
    pub dir: Option<PathBuf>,
    pub names: Vec<String>,
    scanned: Option<Instant>,
}

impl PackList {
    pub fn refresh_if_stale(&mut self) {
        if self.scanned.is_none_or(|at| at.elapsed() >= RESCAN) {
            self.dir = user_pack_dir();
            self.names = self.dir.as_deref().map(scan).unwrap_or_default();
            self.scanned = Some(Instant::now());
        }
    }
}
