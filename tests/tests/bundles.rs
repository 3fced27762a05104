//! The bundles `cargo xtask bundle restyle --release` makes: each carries the ONNX Runtime
//! library beside the plugin binary, where the plugin's `dladdr` lookup finds it.

use anyhow::{Context, Result};
use restyle_tests::bundle::{
    clap_plugin_path, vst3_bundle_path, BUNDLE_NAME, CLAP_ENV_VAR, ORT_LIBRARY_FILE_NAME,
    VST3_ARCH_DIR,
};
use std::path::Path;

/// Whether `path` is an ELF shared object of a plausible size (not a stub or a pointer file).
fn assert_is_shared_library(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "'{}' is missing: `cargo xtask bundle` copies it there",
            path.display()
        )
    })?;
    assert!(
        bytes.starts_with(b"\x7fELF"),
        "'{}' is not an ELF file",
        path.display()
    );
    assert!(
        bytes.len() > 1 << 20,
        "'{}' is only {} bytes",
        path.display(),
        bytes.len()
    );
    Ok(())
}

#[test]
fn clap_plugin_has_the_onnx_runtime_library_beside_it() -> Result<()> {
    let clap = clap_plugin_path()?;
    let folder = clap
        .parent()
        .context("the CLAP plugin has no parent folder")?;
    assert_is_shared_library(&folder.join(ORT_LIBRARY_FILE_NAME))
}

#[test]
fn vst3_bundle_has_the_plugin_and_the_onnx_runtime_library() -> Result<()> {
    if std::env::var_os(CLAP_ENV_VAR).is_some() {
        // Testing a CLAP plugin from elsewhere: there is no VST3 bundle that belongs to it.
        return Ok(());
    }
    let binaries = vst3_bundle_path().join("Contents").join(VST3_ARCH_DIR);
    assert_is_shared_library(&binaries.join(format!("{BUNDLE_NAME}.so")))?;
    assert_is_shared_library(&binaries.join(ORT_LIBRARY_FILE_NAME))
}
