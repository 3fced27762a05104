//! Saved plugin state on arbitrary bytes; the properties checked are in `fuzz/checks/state.rs`.
//!
//! Run from the repository root (cargo-fuzz: `cargo install cargo-fuzz`; a nightly toolchain):
//!
//! ```sh
//! cargo +nightly fuzz run state -- -max_total_time=180
//! ```
//!
//! It starts from `fuzz/corpus/state/seed-*` (a state the plugin saves, one that needs every kind
//! of repair); the inputs it finds are written beside them (ignored by git), a failing input to
//! `fuzz/artifacts/state/`. Replay one with `cargo +nightly fuzz run state <file>`, or copy it
//! into the corpus: `cargo test --test fuzz_corpus` replays the whole corpus on stable.

#![no_main]

#[path = "../checks/state.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| checks::check(bytes));
