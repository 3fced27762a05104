//! The ONNX Runtime shared library the plugin loads at run time (`ort` with `load-dynamic`).
//!
//! It comes from the official PyPI wheel `onnxruntime==ORT_VERSION`: a wheel is a zip file, and
//! the library sits in it at `onnxruntime/capi/`. It is kept in the project-local, git-ignored
//! `vendor/onnxruntime/` so that a fetch happens once per checkout.

use anyhow::{Context, Result};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The ONNX Runtime version the plugin is built and tested against.
pub const ORT_VERSION: &str = "1.31.1";

/// Where the library is kept, relative to the workspace root.
pub const VENDOR_DIR: &str = "vendor/onnxruntime";

/// The library's file name in the wheel, in the vendor folder and in every bundle. The plugin
/// loads exactly this name from the folder of its own binary.
#[cfg(target_os = "linux")]
pub const LIBRARY_FILE_NAME: &str = "libonnxruntime.so.1.31.1";
#[cfg(target_os = "macos")]
pub const LIBRARY_FILE_NAME: &str = "libonnxruntime.1.31.1.dylib";
#[cfg(target_os = "windows")]
pub const LIBRARY_FILE_NAME: &str = "onnxruntime.dll";

/// An unversioned link to the library in the vendor folder, for tools that want the usual name
/// (`ORT_DYLIB_PATH=vendor/onnxruntime/libonnxruntime.so`). Not copied into bundles.
#[cfg(target_os = "linux")]
const UNVERSIONED_LINK_NAME: Option<&str> = Some("libonnxruntime.so");
#[cfg(target_os = "macos")]
const UNVERSIONED_LINK_NAME: Option<&str> = Some("libonnxruntime.dylib");
#[cfg(target_os = "windows")]
const UNVERSIONED_LINK_NAME: Option<&str> = None;

/// Set this to the path of an already downloaded `onnxruntime-ORT_VERSION-*.whl` to skip pip.
const WHEEL_ENV_VAR: &str = "RESTYLE_ORT_WHEEL";

/// Set this to the Python interpreter that runs pip (default `python3`).
const PYTHON_ENV_VAR: &str = "PYTHON";

/// The vendored library's path, fetching it first if it is not there yet. Idempotent: a library
/// that is already in place is left alone.
pub fn ensure(workspace_root: &Path) -> Result<PathBuf> {
    let vendor_dir = workspace_root.join(VENDOR_DIR);
    let library = vendor_dir.join(LIBRARY_FILE_NAME);

    if !is_shared_library(&library)? {
        fetch(&vendor_dir, &library)?;
    }
    link_unversioned_name(&vendor_dir)?;

    Ok(library)
}

/// Whether `path` is a plausible shared library: it exists and starts with the platform's
/// binary magic. A truncated or foreign file is fetched again.
fn is_shared_library(path: &Path) -> Result<bool> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(err) => {
            return Err(err).with_context(|| format!("Could not read '{}'", path.display()))
        }
    };

    const ELF_MAGIC: &[u8] = b"\x7fELF";
    const MACH_O_64_MAGIC: &[u8] = &[0xcf, 0xfa, 0xed, 0xfe];
    const FAT_MACH_O_MAGIC: &[u8] = &[0xca, 0xfe, 0xba, 0xbe];
    const PE_MAGIC: &[u8] = b"MZ";
    // The real library is tens of megabytes; anything under a megabyte is a broken download.
    const MIN_LIBRARY_BYTES: usize = 1 << 20;

    let magic_ok = bytes.starts_with(ELF_MAGIC)
        || bytes.starts_with(MACH_O_64_MAGIC)
        || bytes.starts_with(FAT_MACH_O_MAGIC)
        || bytes.starts_with(PE_MAGIC);
    Ok(magic_ok && bytes.len() >= MIN_LIBRARY_BYTES)
}

/// Download the wheel (or take the one `RESTYLE_ORT_WHEEL` names) and extract the library to
/// `library`. The file is written under a temporary name and renamed into place, so an
/// interrupted fetch never leaves a half-written library behind.
fn fetch(vendor_dir: &Path, library: &Path) -> Result<()> {
    fs::create_dir_all(vendor_dir)
        .with_context(|| format!("Could not create '{}'", vendor_dir.display()))?;

    let download_dir = vendor_dir.join(".download");
    let wheel = match std::env::var_os(WHEEL_ENV_VAR) {
        Some(wheel) => PathBuf::from(wheel),
        None => download_wheel(&download_dir)?,
    };

    eprintln!("Extracting '{}' from '{}'", wheel_member(), wheel.display());
    let partial = vendor_dir.join(format!("{LIBRARY_FILE_NAME}.partial"));
    extract_member(&wheel, &wheel_member(), &partial)?;
    make_executable(&partial)?;
    fs::rename(&partial, library).with_context(|| {
        format!(
            "Could not move '{}' to '{}'",
            partial.display(),
            library.display()
        )
    })?;

    if download_dir.exists() {
        fs::remove_dir_all(&download_dir)
            .with_context(|| format!("Could not remove '{}'", download_dir.display()))?;
    }
    if !is_shared_library(library)? {
        anyhow::bail!(
            "'{}' was extracted from '{}' but is not a shared library",
            library.display(),
            wheel.display()
        );
    }

    Ok(())
}

/// The library's path inside the wheel.
fn wheel_member() -> String {
    format!("onnxruntime/capi/{LIBRARY_FILE_NAME}")
}

/// `pip download` the wheel for this platform into `download_dir` and return its path.
fn download_wheel(download_dir: &Path) -> Result<PathBuf> {
    if download_dir.exists() {
        fs::remove_dir_all(download_dir)
            .with_context(|| format!("Could not clear '{}'", download_dir.display()))?;
    }
    fs::create_dir_all(download_dir)
        .with_context(|| format!("Could not create '{}'", download_dir.display()))?;

    let python = std::env::var(PYTHON_ENV_VAR).unwrap_or_else(|_| String::from("python3"));
    let requirement = format!("onnxruntime=={ORT_VERSION}");
    eprintln!("Downloading {requirement} from PyPI with {python} -m pip");
    let status = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .arg(&requirement)
        .arg("-d")
        .arg(download_dir)
        .status()
        .with_context(|| {
            format!("Could not run '{python} -m pip' (set {PYTHON_ENV_VAR} to another interpreter)")
        })?;
    if !status.success() {
        anyhow::bail!(
            "'{python} -m pip download {requirement}' failed ({status}). It needs PyPI; offline, \
             set {WHEEL_ENV_VAR} to a downloaded onnxruntime-{ORT_VERSION} wheel."
        );
    }

    let prefix = format!("onnxruntime-{ORT_VERSION}-");
    let entries = fs::read_dir(download_dir)
        .with_context(|| format!("Could not list '{}'", download_dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("Could not list '{}'", download_dir.display()))?
            .path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with(&prefix) && name.ends_with(".whl") {
            return Ok(path);
        }
    }

    anyhow::bail!(
        "pip succeeded but left no '{prefix}*.whl' in '{}'",
        download_dir.display()
    )
}

/// Copy the zip member `member` of `archive` to `destination`.
fn extract_member(archive: &Path, member: &str, destination: &Path) -> Result<()> {
    let file = fs::File::open(archive)
        .with_context(|| format!("Could not open '{}'", archive.display()))?;
    let mut zip = zip::ZipArchive::new(io::BufReader::new(file))
        .with_context(|| format!("'{}' is not a zip archive", archive.display()))?;
    let mut entry = zip
        .by_name(member)
        .with_context(|| format!("'{}' has no '{member}'", archive.display()))?;

    let mut out = fs::File::create(destination)
        .with_context(|| format!("Could not create '{}'", destination.display()))?;
    io::copy(&mut entry, &mut out).with_context(|| {
        format!(
            "Could not extract '{member}' from '{}' to '{}'",
            archive.display(),
            destination.display()
        )
    })?;
    out.sync_all()
        .with_context(|| format!("Could not write '{}'", destination.display()))
}

/// Shared libraries are mapped executable; give the file the usual `rwxr-xr-x`.
fn make_executable(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("Could not make '{}' executable", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Point `vendor/onnxruntime/libonnxruntime.so` at the versioned file (a relative symlink).
fn link_unversioned_name(vendor_dir: &Path) -> Result<()> {
    let Some(link_name) = UNVERSIONED_LINK_NAME else {
        return Ok(());
    };
    let link = vendor_dir.join(link_name);

    #[cfg(unix)]
    {
        if fs::read_link(&link).is_ok_and(|target| target == Path::new(LIBRARY_FILE_NAME)) {
            return Ok(());
        }
        if fs::symlink_metadata(&link).is_ok() {
            fs::remove_file(&link)
                .with_context(|| format!("Could not replace '{}'", link.display()))?;
        }
        std::os::unix::fs::symlink(LIBRARY_FILE_NAME, &link)
            .with_context(|| format!("Could not create the link '{}'", link.display()))?;
    }
    #[cfg(not(unix))]
    let _ = link;

    Ok(())
}
