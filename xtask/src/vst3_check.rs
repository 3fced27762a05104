//! Checks the VST3 bundle in a real VST3 host: `tests/vst3/check_vst3.py` runs it in pedalboard
//! (Spotify's, on JUCE's VST3 hosting) from PyPI, in a virtual environment with pedalboard and
//! numpy only, on the CPU. The VST3 side of the CLAP host tests in `tests/tests/clap_*.rs`.

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Result};

use crate::venv;

/// Runs the check against `target/bundled/Restyle.vst3`; `args` go to the script (`-k automation`
/// runs only the checks whose name contains "automation").
pub fn check(root: &Path, args: &[String]) -> Result<()> {
    let bundle = root.join("target").join("bundled").join("Restyle.vst3");
    ensure!(
        bundle.is_dir(),
        "no VST3 bundle at {}: run `cargo xtask bundle restyle --release` first",
        bundle.display()
    );
    let python = venv::ensure_venv(root, "venv-vst3", &root.join("tests").join("vst3").join("requirements.txt"))?;
    // The plugin logs every activation: to a file, fresh for every run.
    let log = root.join("target").join("vst3-check.log");
    let _ = std::fs::remove_file(&log);
    let mut command = Command::new(&python);
    command.arg(root.join("tests").join("vst3").join("check_vst3.py")).arg(&bundle).arg("--plugin-log").arg(&log);
    venv::run(command.args(args), &format!("the VST3 check in pedalboard (the plugin's log: {})", log.display()))
}
