//! Builds the default model pack into the binary when it exists.
//!
//! `include_bytes!` fails to compile on a missing file, and the default pack is produced by the
//! training pipeline (`models/`), possibly after the code. So this script sets the cfg
//! `restyle_default_pack` only when every file of the pack is there; without it
//! `Pack::embedded()` reports that no default pack was built in.

use std::path::Path;

/// The files `Pack::embedded()` includes, relative to the pack folder.
const PACK_FILES: [&str; 3] = ["manifest.json", "generator.onnx", "classifier.onnx"];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(restyle_default_pack)");
    let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/packs/default");
    println!("cargo::rerun-if-changed={}", pack.display());
    for file in PACK_FILES {
        println!("cargo::rerun-if-changed={}", pack.join(file).display());
    }
    if PACK_FILES.iter().all(|file| pack.join(file).is_file()) {
        println!("cargo::rustc-cfg=restyle_default_pack");
    }
}
