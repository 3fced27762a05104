//! Checks the committed model packs with the pipeline's own checker (`models/check_pack.py`),
//! in a virtual environment with only numpy and onnxruntime: CI never installs PyTorch and never
//! retrains.

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context, Result};

fn run(program: &Path, args: &[&str], what: &str) -> Result<()> {
    let status = Command::new(program).args(args).status().with_context(|| format!("cannot run {}", program.display()))?;
    ensure!(status.success(), "{what} failed ({status})");
    Ok(())
}

pub fn check(root: &Path) -> Result<()> {
    let venv = root.join("target").join("venv-pack-check");
    let python = venv.join("bin").join("python");
    if !python.is_file() {
        let system_python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
        run(Path::new(&system_python), &["-m", "venv", &venv.to_string_lossy()], "creating the pack-check virtual environment")?;
    }
    let requirements = root.join("models").join("requirements-check.txt");
    run(&python, &["-m", "pip", "install", "--quiet", "-r", &requirements.to_string_lossy()], "installing numpy and onnxruntime")?;
    let packs = root.join("models").join("packs");
    for entry in std::fs::read_dir(&packs).with_context(|| format!("cannot list {}", packs.display()))? {
        let pack = entry?.path();
        if pack.is_dir() {
            let checker = root.join("models").join("check_pack.py");
            run(&python, &[&checker.to_string_lossy(), &pack.to_string_lossy()], &format!("checking {}", pack.display()))?;
        }
    }
    Ok(())
}
