//! Loading ONNX Runtime, once per process, from an absolute path.
//!
//! `ort` is built with `load-dynamic`: nothing links against `libonnxruntime` at build time, so a
//! plugin without the library still loads in the host and passes audio through. The library is
//! looked for, in order:
//! 1. next to the plugin's own binary (found with `dladdr` / `GetModuleHandleExW` on a function
//!    of this crate, since a plugin is a library inside someone else's process and
//!    `current_exe()` would name the host),
//! 2. at `ORT_DYLIB_PATH` (a file, or a folder holding one of the names below),
//! 3. in the project's `vendor/onnxruntime/` (where `cargo xtask fetch-ort` puts it for
//!    development and tests).
//!
//! Loading by absolute path keeps two plugins in one host from sharing (and fighting over) one
//! copy picked by the dynamic linker. Each candidate is opened and its version checked here
//! before `ort` sees it, because `ort` remembers the first library it loads for the rest of the
//! process, and panics (or worse) on a library that is not ONNX Runtime.

use std::ffi::CStr;
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;

/// The library file names to look for in a folder, most specific first.
#[cfg(target_os = "linux")]
pub const LIBRARY_NAMES: &[&str] = &["libonnxruntime.so.1.31.1", "libonnxruntime.so"];
#[cfg(target_os = "macos")]
pub const LIBRARY_NAMES: &[&str] = &["libonnxruntime.1.31.1.dylib", "libonnxruntime.dylib"];
#[cfg(windows)]
pub const LIBRARY_NAMES: &[&str] = &["onnxruntime.dll"];
#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
pub const LIBRARY_NAMES: &[&str] = &["libonnxruntime.so"];

/// The environment variable that points at a library (or a folder with one), as in `ort`.
pub const DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// What to run so that the development library exists (shown when nothing loads).
pub const FETCH_HINT: &str = "run `cargo xtask fetch-ort` (or put libonnxruntime 1.31 next to the plugin)";

/// The loaded ONNX Runtime: where it came from, and the environment every session is made in.
pub struct Runtime {
    /// The library's absolute path, for the status line and bug reports.
    pub library: PathBuf,
    /// Which place in the search order it was found in ("next to the plugin", ...).
    pub origin: &'static str,
    /// ONNX Runtime's own version string, e.g. "1.31.1".
    pub version: String,
    /// `ort` allows one environment per process; it lives as long as the process.
    pub environment: Environment,
}

impl Runtime {
    /// One line for the status line and the log: "ONNX Runtime 1.31.1 (next to the plugin: /path)".
    pub fn describe(&self) -> String {
        format!("ONNX Runtime {} ({}: {})", self.version, self.origin, self.library.display())
    }
}

/// One place the library may be, with the reason it is searched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub origin: &'static str,
    pub path: PathBuf,
}

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The process's ONNX Runtime, loaded on first use. The error lists every place tried and why
/// each failed; it is meant for the status line and the log, after which the plugin passes audio
/// through.
pub fn runtime() -> Result<&'static Runtime, &'static str> {
    RUNTIME.get_or_init(|| load(&candidates())).as_ref().map_err(String::as_str)
}

/// Every place to look, in order (see the module documentation).
pub fn candidates() -> Vec<Candidate> {
    let mut found = Vec::new();
    if let Some(folder) = own_binary_folder() {
        found.extend(in_folder("next to the plugin", &folder));
    }
    if let Some(path) = std::env::var_os(DYLIB_ENV).filter(|p| !p.is_empty()).map(PathBuf::from) {
        if path.is_dir() {
            found.extend(in_folder(DYLIB_ENV, &path));
        } else {
            found.push(Candidate { origin: DYLIB_ENV, path });
        }
    }
    let vendor = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("vendor").join("onnxruntime");
    found.extend(in_folder("the project's vendor/onnxruntime", &vendor));
    found
}

fn in_folder(origin: &'static str, folder: &Path) -> impl Iterator<Item = Candidate> {
    let folder = folder.to_path_buf();
    LIBRARY_NAMES.iter().map(move |name| Candidate { origin, path: folder.join(name) })
}

/// Tries `candidates` in order and initialises `ort` with the first that is a compatible ONNX
/// Runtime. The error names every candidate and why it was passed over.
///
/// `ort` keeps the first library it loads for the whole process; call this through [`runtime`]
/// except to test the search itself with candidates that cannot load.
pub fn load(candidates: &[Candidate]) -> Result<Runtime, String> {
    let mut tried = String::new();
    for candidate in candidates {
        let place = format!("\n  - {} ({})", candidate.path.display(), candidate.origin);
        match probe(&candidate.path) {
            Err(why) => {
                let _ = write!(tried, "{place}: {why}");
            }
            // Once `ort` has been handed a library it may keep it for the process: a failure
            // here ends the search.
            Ok((library, version)) => {
                return match init(&library, &version) {
                    Ok(environment) => Ok(Runtime { library, origin: candidate.origin, version, environment }),
                    Err(why) => Err(format!("ONNX Runtime could not be started. Places tried:{tried}{place}: {why}")),
                };
            }
        }
    }
    if candidates.is_empty() {
        tried.push_str("\n  - (nowhere to look)");
    }
    Err(format!("ONNX Runtime could not be loaded; {FETCH_HINT}. Places tried:{tried}"))
}

/// Opens `path` on its own and reads the version, so a missing file, a file that is not a
/// library, or an ONNX Runtime too old for `ort` is reported without `ort` ever seeing it.
/// Returns the absolute path and the version.
fn probe(path: &Path) -> Result<(PathBuf, String), String> {
    if !path.exists() {
        return Err("no such file".to_owned());
    }
    let library = path.canonicalize().map_err(|e| format!("cannot resolve the path: {e}"))?;
    // SAFETY: opening a library runs its initialisers; ONNX Runtime's are benign, and a file that
    // is not a library is refused by the loader before any code runs.
    let lib = unsafe { libloading::Library::new(&library) }.map_err(|e| format!("cannot open it: {e}"))?;
    // SAFETY: the signature is ONNX Runtime's `const OrtApiBase* OrtGetApiBase(void)`.
    let get_api_base = unsafe { lib.get::<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase>(b"OrtGetApiBase\0") }
        .map_err(|_| "not ONNX Runtime (no OrtGetApiBase)".to_owned())?;
    // SAFETY: OrtGetApiBase returns a pointer to a static table or null.
    let base = unsafe { get_api_base() };
    if base.is_null() {
        return Err("OrtGetApiBase returned nothing".to_owned());
    }
    // SAFETY: `base` is the library's static OrtApiBase; GetVersionString returns a static C string.
    let version = unsafe { CStr::from_ptr(((*base).GetVersionString)()) }.to_string_lossy().into_owned();
    let minor = version.split('.').nth(1).and_then(|m| m.parse::<u32>().ok()).unwrap_or(0);
    if !version.starts_with("1.") || minor < ort::MINOR_VERSION {
        return Err(format!("version {version}; Restyle needs ONNX Runtime 1.{} or newer", ort::MINOR_VERSION));
    }
    Ok((library, version))
}

/// Hands the checked library to `ort` and creates the process's environment. `ort` panics on
/// some failures instead of returning them; a panic here becomes an error, not a dead host.
fn init(library: &Path, version: &str) -> Result<Environment, String> {
    let built = catch_unwind(AssertUnwindSafe(|| {
        ort::init_from(library)
            .map_err(|e| e.to_string())?
            .with_name("restyle")
            .with_telemetry(false)
            .build()
            .map_err(|e| e.to_string())
    }));
    match built {
        Ok(Ok(environment)) => Ok(environment),
        Ok(Err(e)) => Err(format!("ONNX Runtime {version} failed to start: {e}")),
        Err(_) => Err(format!("ONNX Runtime {version} panicked while starting")),
    }
}

/// The folder of the binary this code is in: the plugin's `.clap` / `.so` / `.dll` inside a
/// host, or the executable for the command-line renderer and tests.
#[cfg(unix)]
fn own_binary_folder() -> Option<PathBuf> {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let address = own_binary_folder as fn() -> Option<PathBuf> as *const libc::c_void;
    // SAFETY: dladdr only reads the address and fills `info`; dli_fname stays valid while the
    // object is loaded, and this code is in it.
    let found = unsafe { libc::dladdr(address, &mut info) } != 0 && !info.dli_fname.is_null();
    let path = if found {
        let name = unsafe { CStr::from_ptr(info.dli_fname) };
        PathBuf::from(OsStr::from_bytes(name.to_bytes()))
    } else {
        std::env::current_exe().ok()?
    };
    // The main executable may be reported by the name it was started with, possibly relative.
    let path = path.canonicalize().or_else(|_| std::env::current_exe()).ok()?;
    path.parent().map(Path::to_path_buf)
}

#[cfg(windows)]
fn own_binary_folder() -> Option<PathBuf> {
    use std::ffi::OsString;
    use std::os::windows::ffi::OsStringExt;
    use windows_sys::Win32::Foundation::HMODULE;
    use windows_sys::Win32::System::LibraryLoader::{
        GetModuleFileNameW, GetModuleHandleExW, GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS,
        GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
    };

    let mut module: HMODULE = std::ptr::null_mut();
    let address = own_binary_folder as fn() -> Option<PathBuf> as *const u16;
    let flags = GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT;
    // SAFETY: asks which module contains `address`; the handle is not reference-counted.
    if unsafe { GetModuleHandleExW(flags, address, &mut module) } == 0 {
        return std::env::current_exe().ok()?.parent().map(Path::to_path_buf);
    }
    let mut buffer = vec![0u16; 32_768];
    // SAFETY: writes at most `buffer.len()` UTF-16 units into `buffer`.
    let len = unsafe { GetModuleFileNameW(module, buffer.as_mut_ptr(), buffer.len() as u32) } as usize;
    if len == 0 {
        return None;
    }
    PathBuf::from(OsString::from_wide(&buffer[..len])).parent().map(Path::to_path_buf)
}

#[cfg(not(any(unix, windows)))]
fn own_binary_folder() -> Option<PathBuf> {
    std::env::current_exe().ok()?.parent().map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_start_next_to_this_binary_and_end_in_vendor() {
        let found = candidates();
        let own = own_binary_folder().expect("this test binary has a folder");
        assert_eq!(found[0].path, own.join(LIBRARY_NAMES[0]));
        assert!(found.last().unwrap().path.ends_with(Path::new("vendor/onnxruntime").join(LIBRARY_NAMES[LIBRARY_NAMES.len() - 1])));
    }

    #[test]
    fn a_file_that_is_not_a_library_is_refused_with_the_reason() {
        let dir = std::env::temp_dir().join(format!("restyle-runtime-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = dir.join(LIBRARY_NAMES[0]);
        std::fs::write(&fake, b"definitely not ELF").unwrap();
        let missing = dir.join("missing").join(LIBRARY_NAMES[0]);
        let error = load(&[
            Candidate { origin: "fake", path: fake.clone() },
            Candidate { origin: "absent", path: missing.clone() },
        ])
        .err()
        .expect("nothing loadable");
        assert!(error.contains(&fake.display().to_string()) && error.contains("cannot open it"), "{error}");
        assert!(error.contains(&missing.display().to_string()) && error.contains("no such file"), "{error}");
        assert!(error.contains("cargo xtask fetch-ort"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
