//! The fuzz targets' corpus (fuzz/corpus), replayed on stable through the same checks the
//! targets make (fuzz/checks), so that every test run holds what fuzzing once found and the
//! checks keep compiling as the plugin changes; and the default pack's manifest, which must not
//! only hold the properties but be accepted.

#[path = "../../fuzz/checks/manifest.rs"]
mod manifest;
#[path = "../../fuzz/checks/state.rs"]
mod state;

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every file in `fuzz/corpus/<target>`, seeds first, at least `seeds` of them named `seed-*`.
fn corpus(target: &str, seeds: usize) -> Vec<(String, Vec<u8>)> {
    let dir = root().join("fuzz").join("corpus").join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a readable corpus entry").path();
            let name = path.file_name().expect("a file name").to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        })
        .collect();
    files.sort_by_key(|(name, _)| (!name.starts_with("seed-"), name.clone()));
    let found = files.iter().filter(|(name, _)| name.starts_with("seed-")).count();
    assert!(found >= seeds, "{} has {found} seeds, expected {seeds}", dir.display());
    files
}

fn replay(target: &str, seeds: usize, check: fn(&[u8])) {
    for (name, bytes) in corpus(target, seeds) {
        if std::panic::catch_unwind(|| check(&bytes)).is_err() {
            panic!("fuzz/corpus/{target}/{name} breaks the {target} fuzz target's checks");
        }
    }
}

#[test]
fn the_state_corpus_holds_the_state_targets_properties() {
    replay("state", 2, state::check);
}

#[test]
fn the_manifest_corpus_holds_the_manifest_targets_properties() {
    replay("manifest", 3, manifest::check);
}

#[test]
fn the_default_packs_manifest_is_accepted_and_holds_the_properties() {
    let path = root().join("models").join("packs").join("default").join("manifest.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if let Err(err) = restyle::pack::Manifest::parse("default", &bytes) {
        panic!("the default pack's manifest is refused: {err}");
    }
    manifest::check(&bytes);
}

#[test]
fn the_seed_of_a_saved_state_keeps_every_field() {
    let (_, bytes) = corpus("state", 2).into_iter().find(|(name, _)| name == "seed-saved.json").expect("seed-saved.json");
    let mut saved: nice_plug::plugin::PluginState = serde_json::from_slice(&bytes).expect("the seed reads");
    let repairs = restyle::state::sanitize(&mut saved);
    assert!(repairs.is_empty(), "a state the plugin saves was repaired: {repairs:?}");
    let mut fields: Vec<&str> = saved.fields.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["editor-state", "latency", "pack", "provider"]);
}
