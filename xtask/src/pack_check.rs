//! Checks the committed model packs with the pipeline's own checker (`models/check_pack.py`),
//! in a virtual environment with only numpy and onnxruntime: CI never installs PyTorch and never
//! retrains.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::venv;

pub fn check(root: &Path) -> Result<()> {
    let python = venv::ensure_venv(root, "venv-pack-check", &root.join("models").join("requirements-check.txt"))?;
    let checker = root.join("models").join("check_pack.py");
    let packs = root.join("models").join("packs");
    for entry in std::fs::read_dir(&packs).with_context(|| format!("cannot list {}", packs.display()))? {
        let pack = entry?.path();
        if pack.is_dir() {
            venv::run(Command::new(&python).arg(&checker).arg(&pack), &format!("checking {}", pack.display()))?;
        }
    }
    Ok(())
}
