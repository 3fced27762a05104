//! Pack manifests on arbitrary bytes; the properties checked are in `fuzz/checks/manifest.rs`.
//!
//! Run from the repository root (cargo-fuzz: `cargo install cargo-fuzz`; a nightly toolchain):
//!
//! ```sh
//! cargo +nightly fuzz run manifest -- -max_total_time=180
//! ```
//!
//! It starts from `fuzz/corpus/manifest/seed-*` (the real packs' manifests); the inputs it finds
//! are written beside them (ignored by git), a failing input to `fuzz/artifacts/manifest/`.
//! Replay one with `cargo +nightly fuzz run manifest fuzz/artifacts/manifest/<file>`, or copy it
//! into the corpus: `cargo test --test fuzz_corpus` replays the whole corpus on stable.

#![no_main]

#[path = "../checks/manifest.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| checks::check(bytes));
