//! Shared helpers for Restyle's integration tests: a small CLAP host on clack-host that loads the
//! built bundle, the numbers the plugin promises (docs/CONTRACT.md), and test signals.
//!
//! The tests under `tests/tests/` need a built bundle: run `cargo xtask bundle restyle --release`
//! first, or point `RESTYLE_CLAP` at a `.clap` file.

pub mod bundle;
pub mod contract;
pub mod gui;
pub mod host;
pub mod signal;
