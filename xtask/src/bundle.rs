//! Put the ONNX Runtime library into the bundles nice-plug-xtask made, beside the plugin binary.
//!
//! The plugin finds the folder of its own binary with `dladdr` and loads the library from there
//! by absolute path, so the library has to sit in that folder:
//!
//! | format | plugin binary (Linux) | library copied to |
//! |---|---|---|
//! | CLAP | `target/bundled/Restyle.clap` (a single file) | `target/bundled/` |
//! | VST3 | `target/bundled/Restyle.vst3/Contents/x86_64-linux/Restyle.so` | that `x86_64-linux/` |
//! | standalone | `target/bundled/Restyle` | `target/bundled/` (shared with CLAP) |
//!
//! A single-file CLAP plugin has no folder of its own, so its library is a second file beside it:
//! install both `Restyle.clap` and `libonnxruntime.so.1.31.1` into the same CLAP folder (e.g.
//! `~/.clap/`). A VST3 bundle is self-contained: copy the whole `Restyle.vst3` folder. On macOS
//! both CLAP and VST3 are bundles and the library goes to `Contents/MacOS/`.

use anyhow::{Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

use crate::ort_lib::LIBRARY_FILE_NAME;

/// Copy `library` into every bundle that `cargo xtask bundle <bundle_args>` produced.
/// `bundle_args` are the arguments after `bundle`, exactly as nice-plug-xtask received them.
pub fn copy_runtime_into_bundles(
    workspace_root: &Path,
    bundle_args: &[String],
    library: &Path,
) -> Result<()> {
    let (packages, cargo_args) = split_bundle_args(bundle_args)?;
    if let Some(target) = cross_compile_target(&cargo_args) {
        if !is_host_target(&target) {
            anyhow::bail!(
                "Bundled for '{target}', but the ONNX Runtime library in '{}' is for this machine; \
                 copy the library for '{target}' into the bundles by hand",
                library.display()
            );
        }
    }

    let bundle_dir = target_dir(workspace_root)?.join("bundled");
    let bundler_config = load_bundler_config(workspace_root)?;

    for package in &packages {
        let name = bundle_name(&bundler_config, package);
        let destinations = library_destinations(&bundle_dir, &name)?;
        if destinations.is_empty() {
            anyhow::bail!(
                "Found no CLAP or VST3 bundle named '{name}' in '{}' to put the ONNX Runtime \
                 library into",
                bundle_dir.display()
            );
        }
        for destination in destinations {
            let copied = destination.join(LIBRARY_FILE_NAME);
            copy_atomically(library, &copied)?;
            eprintln!("Copied the ONNX Runtime library to '{}'", copied.display());
        }
    }

    Ok(())
}

/// The packages and the remaining `cargo build` arguments, split the way nice-plug-xtask splits
/// them: either one leading package name, or one or more leading `-p <package>` pairs.
fn split_bundle_args(args: &[String]) -> Result<(Vec<String>, Vec<String>)> {
    let mut packages = Vec::new();
    let mut rest = args;
    if rest.first().map(String::as_str) == Some("-p") {
        while rest.first().map(String::as_str) == Some("-p") {
            let package = rest.get(1).context("Missing package name after -p")?;
            packages.push(package.clone());
            rest = &rest[2..];
        }
    } else {
        let package = rest.first().context("Missing package name")?;
        packages.push(package.clone());
        rest = &rest[1..];
    }

    Ok((packages, rest.to_vec()))
}

/// The value of the last `--target` option, if any (`--target x` or `--target=x`).
fn cross_compile_target(cargo_args: &[String]) -> Option<String> {
    let mut target = None;
    for (index, arg) in cargo_args.iter().enumerate() {
        if arg == "--target" {
            target = cargo_args.get(index + 1).cloned();
        } else if let Some(value) = arg.strip_prefix("--target=") {
            target = Some(value.to_owned());
        }
    }
    target
}

/// Whether a target triple names the machine this runs on (the library was fetched for it).
fn is_host_target(triple: &str) -> bool {
    let arch_matches = triple.starts_with(std::env::consts::ARCH);
    let os_matches = match std::env::consts::OS {
        "linux" => triple.contains("-linux-"),
        "macos" => triple.contains("-apple-darwin"),
        "windows" => triple.contains("-windows-"),
        _ => false,
    };
    arch_matches && os_matches
}

/// Cargo's target directory (`CARGO_TARGET_DIR` and `build.target-dir` respected).
fn target_dir(workspace_root: &Path) -> Result<PathBuf> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(workspace_root.join("Cargo.toml"))
        .no_deps()
        .exec()
        .context("Could not run `cargo metadata` to find the target directory")?;
    Ok(metadata.target_directory.into_std_path_buf())
}

/// `bundler.toml`, or an empty table when there is none (nice-plug-xtask's rule).
fn load_bundler_config(workspace_root: &Path) -> Result<toml::Table> {
    let path = workspace_root.join("bundler.toml");
    if !path.exists() {
        return Ok(toml::Table::new());
    }
    let text = fs::read_to_string(&path)
        .with_context(|| format!("Could not read '{}'", path.display()))?;
    text.parse::<toml::Table>()
        .with_context(|| format!("Could not parse '{}'", path.display()))
}

/// The bundle's file name: `bundler.toml`'s `[package] name`, else the package name.
fn bundle_name(config: &toml::Table, package: &str) -> String {
    config
        .get(package)
        .and_then(|section| section.get("name"))
        .and_then(|name| name.as_str())
        .unwrap_or(package)
        .to_owned()
}

/// The folders that hold a plugin binary of the bundles named `name`: see the module's table.
fn library_destinations(bundle_dir: &Path, name: &str) -> Result<Vec<PathBuf>> {
    let mut destinations = Vec::new();

    let clap = bundle_dir.join(format!("{name}.clap"));
    if clap.is_file() {
        destinations.push(bundle_dir.to_owned());
    } else if clap.is_dir() {
        destinations.push(clap.join("Contents").join("MacOS"));
    }

    // `Contents/<arch>-linux/`, `Contents/MacOS/` or `Contents/<arch>-win/`: every architecture
    // folder that nice-plug-xtask filled.
    let vst3_contents = bundle_dir.join(format!("{name}.vst3")).join("Contents");
    if vst3_contents.is_dir() {
        let entries = fs::read_dir(&vst3_contents)
            .with_context(|| format!("Could not list '{}'", vst3_contents.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("Could not list '{}'", vst3_contents.display()))?
                .path();
            if path.is_dir() && path.file_name().is_some_and(|n| n != "Resources") {
                destinations.push(path);
            }
        }
    }

    Ok(destinations)
}

/// Copy `from` to `to` through a temporary file and a rename: a host that has the old library
/// mapped keeps its (unchanged) copy instead of seeing the file rewritten under it.
fn copy_atomically(from: &Path, to: &Path) -> Result<()> {
    let file_name = to.file_name().context("Destination has no file name")?;
    let partial = to.with_file_name(format!("{}.partial", file_name.to_string_lossy()));
    fs::copy(from, &partial).with_context(|| {
        format!(
            "Could not copy '{}' to '{}'",
            from.display(),
            partial.display()
        )
    })?;
    fs::rename(&partial, to).with_context(|| {
        format!(
            "Could not move '{}' to '{}'",
            partial.display(),
            to.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn one_package_then_cargo_args() {
        let (packages, rest) = split_bundle_args(&strings(&["restyle", "--release"])).unwrap();
        assert_eq!(packages, ["restyle"]);
        assert_eq!(rest, ["--release"]);
    }

    #[test]
    fn several_packages_with_p() {
        let args = strings(&["-p", "a", "-p", "b", "--profile", "bench"]);
        let (packages, rest) = split_bundle_args(&args).unwrap();
        assert_eq!(packages, ["a", "b"]);
        assert_eq!(rest, ["--profile", "bench"]);
    }

    #[test]
    fn missing_package_is_an_error() {
        assert!(split_bundle_args(&[]).is_err());
        assert!(split_bundle_args(&strings(&["-p"])).is_err());
    }

    #[test]
    fn last_target_option_wins() {
        let args = strings(&["--target", "a", "--release", "--target=b"]);
        assert_eq!(cross_compile_target(&args).as_deref(), Some("b"));
        assert_eq!(cross_compile_target(&strings(&["--release"])), None);
    }

    #[test]
    fn bundle_name_comes_from_bundler_toml() {
        let config: toml::Table = "[restyle]\nname = \"Restyle\"\n".parse().unwrap();
        assert_eq!(bundle_name(&config, "restyle"), "Restyle");
        assert_eq!(bundle_name(&config, "other"), "other");
    }
}
