//! `cargo xtask ...`: the project's build tasks.
//!
//! - `bundle`: nice-plug's bundler (CLAP + VST3 + the standalone binary), then the ONNX Runtime
//!   library copied into every bundle so that the plugin finds it beside its own binary.
//! - `fetch-ort`: the ONNX Runtime library from its PyPI wheel into `vendor/onnxruntime/`.
//! - `vst3-check`: the built VST3 bundle in a real host, pedalboard (also part of `test`).
//!
//! nice-plug's other commands (`bundle-universal`, `known-packages`) are passed through to it
//! unchanged. A new command is one more arm in `main`'s match and a line in `usage`.

mod bundle;
mod demo;
mod ort_lib;
mod pack_check;
mod system;
mod venv;
mod vst3_check;

use anyhow::{Context, Result};
use std::path::PathBuf;

/// The name this tool is called by, as the usage message shows it.
const COMMAND_NAME: &str = "cargo xtask";

fn usage() -> String {
    format!(
        "Usage:
  {COMMAND_NAME} bundle <package> [--release]          build and bundle (CLAP, VST3), then
  {COMMAND_NAME} bundle -p <p1> -p <p2> [--release]    copy the ONNX Runtime library into each
  {COMMAND_NAME} fetch-ort                             fetch libonnxruntime {version} into {vendor}/
  {COMMAND_NAME} vst3-check [-k <name>]                check the built VST3 bundle in pedalboard, a
                                                     real host (-k: only the checks named so)
  {COMMAND_NAME} bundle-universal | known-packages     nice-plug-xtask's commands, passed through
  {COMMAND_NAME} help                                  this message

  `bundle` accepts every `cargo build` option (`--profile`, `--target`, ...).",
        version = ort_lib::ORT_VERSION,
        vendor = ort_lib::VENDOR_DIR,
    )
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        anyhow::bail!("Missing command\n\n{}", usage());
    };

    match command.as_str() {
        "fetch-ort" => {
            let root = workspace_root()?;
            let library = ort_lib::ensure(&root)?;
            eprintln!("ONNX Runtime library at '{}'", library.display());
            Ok(())
        }
        "bundle" => {
            let root = workspace_root()?;
            // Fetch before building, so that a missing library fails fast and not after a build.
            let library = ort_lib::ensure(&root)?;
            nice_plug_xtask::main_with_args(COMMAND_NAME, args.iter().cloned())?;
            bundle::copy_runtime_into_bundles(&root, &args[1..], &library)
        }
        "vst3-check" => vst3_check::check(&workspace_root()?, &args[1..]),
        // Both run the default pack, which needs the library: a fresh clone has none yet.
        "demo" => {
            let root = workspace_root()?;
            ort_lib::ensure(&root)?;
            demo::run(&root)
        }
        "bench" => {
            ort_lib::ensure(&workspace_root()?)?;
            cargo(&["bench", "-p", "restyle", "--bench", "engine", "--bench", "inference"])
        }
        "test" => {
            let root = workspace_root()?;
            system::ensure_packages()?;
            let library = ort_lib::ensure(&root)?;
            let bundle_args = ["bundle", "restyle", "--release"].map(String::from);
            nice_plug_xtask::main_with_args(COMMAND_NAME, bundle_args.iter().cloned())?;
            bundle::copy_runtime_into_bundles(&root, &bundle_args[1..], &library)?;
            pack_check::check(&root)?;
            vst3_check::check(&root, &[])?;
            cargo(&["test", "--workspace"])
        }
        "help" | "-h" | "--help" => {
            println!("{}", usage());
            Ok(())
        }
        // nice-plug's other commands, unchanged (no ONNX Runtime copy: macOS only or no build).
        "bundle-universal" | "known-packages" => {
            nice_plug_xtask::main_with_args(COMMAND_NAME, args.iter().cloned())
        }
        other => anyhow::bail!("Unknown command '{other}'\n\n{}", usage()),
    }
}

/// Runs the cargo that runs this tool, with `args`, failing if it fails.
fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = std::process::Command::new(&cargo)
        .args(args)
        .status()
        .with_context(|| format!("cannot run {cargo}"))?;
    anyhow::ensure!(status.success(), "`cargo {}` failed ({status})", args.join(" "));
    Ok(())
}

/// The workspace root, which every path in this tool is relative to. It is also made the current
/// directory, as nice-plug-xtask expects.
fn workspace_root() -> Result<PathBuf> {
    nice_plug_xtask::chdir_workspace_root()?;
    std::env::current_dir().context("Could not read the current directory")
}
