//! Where the built plugin bundles are.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Overrides the path of the CLAP plugin under test.
pub const CLAP_ENV_VAR: &str = "RESTYLE_CLAP";

/// The bundle's name, from `bundler.toml` (`[restyle] name = "Restyle"`).
pub const BUNDLE_NAME: &str = "Restyle";

/// The ONNX Runtime library `cargo xtask bundle` puts beside the plugin binary in every bundle
/// (the same name as `xtask/src/ort_lib.rs`'s `LIBRARY_FILE_NAME`).
pub const ORT_LIBRARY_FILE_NAME: &str = "libonnxruntime.so.1.31.1";

/// The VST3 bundle's folder for this machine's binaries (Linux x86-64).
pub const VST3_ARCH_DIR: &str = "x86_64-linux";

/// The workspace root (this crate lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits inside the workspace")
        .to_owned()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set (relative to the workspace root), else
/// `<root>/target`.
pub fn target_dir() -> PathBuf {
    let root = workspace_root();
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// The CLAP plugin to test: `$RESTYLE_CLAP`, else `target/bundled/Restyle.clap`. A missing file
/// is an error that says how to build it.
pub fn clap_plugin_path() -> Result<PathBuf> {
    let (path, origin) = match std::env::var_os(CLAP_ENV_VAR) {
        Some(path) => (PathBuf::from(path), format!("${CLAP_ENV_VAR}")),
        None => (
            target_dir()
                .join("bundled")
                .join(format!("{BUNDLE_NAME}.clap")),
            String::from("the default bundle path"),
        ),
    };
    if !path.exists() {
        anyhow::bail!(
            "No CLAP plugin at '{}' ({origin}). Build it first with\n\n    \
             cargo xtask bundle restyle --release\n\nor set {CLAP_ENV_VAR} to a .clap file.",
            path.display()
        );
    }
    path.canonicalize()
        .with_context(|| format!("Could not resolve '{}'", path.display()))
}

/// The VST3 bundle `cargo xtask bundle` made, beside the default CLAP path.
pub fn vst3_bundle_path() -> PathBuf {
    target_dir()
        .join("bundled")
        .join(format!("{BUNDLE_NAME}.vst3"))
}
