//! Python virtual environments under `target/` for the checks that run Python: each made once
//! from the system's Python (`$PYTHON`, else `python3`) and kept in step with a pinned
//! requirements file. CI never installs more than a check needs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{ensure, Context, Result};

/// The copy of the requirements file that the environment was last installed from: pip runs
/// again only when the file has changed (or the last install failed), so a check reruns offline.
const INSTALLED_REQUIREMENTS: &str = "installed-requirements.txt";

/// The python of the virtual environment `target/<name>`, made if missing, with the packages of
/// `requirements` installed.
pub fn ensure_venv(root: &Path, name: &str, requirements: &Path) -> Result<PathBuf> {
    let venv = root.join("target").join(name);
    let python = venv.join("bin").join("python");
    if !python.is_file() {
        let system_python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let what = format!("creating the virtual environment {}", venv.display());
        run(Command::new(system_python).args(["-m", "venv"]).arg(&venv), &what)?;
    }
    let wanted = std::fs::read(requirements).with_context(|| format!("cannot read {}", requirements.display()))?;
    let stamp = venv.join(INSTALLED_REQUIREMENTS);
    if std::fs::read(&stamp).ok().as_ref() != Some(&wanted) {
        let what = format!("installing {} into {}", requirements.display(), venv.display());
        run(Command::new(&python).args(["-m", "pip", "install", "--quiet", "-r"]).arg(requirements), &what)?;
        std::fs::write(&stamp, &wanted).with_context(|| format!("cannot write {}", stamp.display()))?;
    }
    Ok(python)
}

/// Runs `command`, failing with `what` if it fails.
pub fn run(command: &mut Command, what: &str) -> Result<()> {
    let status = command.status().with_context(|| format!("cannot run {command:?}"))?;
    ensure!(status.success(), "{what} failed ({status})");
    Ok(())
}
