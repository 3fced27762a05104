//! Saved plugin state on arbitrary bytes: what nice-plug would deserialize, through
//! `restyle::state::sanitize` (plugin/src/state.rs). It never panics; a second pass finds nothing
//! to repair (the repair is idempotent); every parameter left is one of the plugin's, of its type
//! and in its range (docs/CONTRACT.md), and every field left is one the plugin reads, readable,
//! with a pack name that stays inside the pack folder and an editor size a screen can show.
//!
//! Run from the repository root (cargo-fuzz: `cargo install cargo-fuzz`; a nightly toolchain):
//!
//! ```sh
//! cargo +nightly fuzz run state -- -max_total_time=180
//! ```
//!
//! It starts from `fuzz/corpus/state/seed-*` (a state the plugin saves, one that needs every kind
//! of repair); the inputs it finds are written beside them (ignored by git), a failing input to
//! `fuzz/artifacts/state/`. Replay one with `cargo +nightly fuzz run state <file>`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nice_plug::plugin::{ParamValue, PluginState};
use restyle::editor::{EditorSize, MAX_SIZE, MIN_SIZE};
use restyle::onnx::Provider;

/// The gain parameters' range, −24 to +24 dB, with room for the f32 rounding of the dB formula.
const GAIN_RANGE: (f32, f32) = (0.063_095_73 * (1.0 - 1e-5), 15.848_932 * (1.0 + 1e-5));

fuzz_target!(|bytes: &[u8]| {
    let Ok(mut state) = serde_json::from_slice::<PluginState>(bytes) else { return };
    restyle::state::sanitize(&mut state);
    let again = restyle::state::sanitize(&mut state);
    assert!(again.is_empty(), "a second pass repaired {again:?} in {state:?}");

    for (id, value) in &state.params {
        let in_range = match (id.as_str(), value) {
            ("style", ParamValue::I32(slot)) => (0..=7).contains(slot),
            ("bypass", ParamValue::Bool(_)) => true,
            ("mix", ParamValue::F32(v)) => (0.0..=1.0).contains(v),
            ("in_gain" | "out_gain", ParamValue::F32(v)) => (GAIN_RANGE.0..=GAIN_RANGE.1).contains(v),
            (blend, ParamValue::F32(v)) if is_blend(blend) => (0.0..=1.0).contains(v),
            _ => false,
        };
        assert!(in_range, "parameter {id} = {value:?} kept");
    }
    for (name, json) in &state.fields {
        match name.as_str() {
            "pack" => {
                let pack: Option<String> = serde_json::from_str(json).expect("a readable pack field");
                assert!(pack.as_deref().is_none_or(restyle::loader::is_pack_name), "pack {pack:?} kept");
            }
            "provider" => {
                serde_json::from_str::<Provider>(json).expect("a readable provider field");
            }
            "editor-state" => {
                let size: EditorSize = serde_json::from_str(json).expect("a readable editor size");
                assert!((MIN_SIZE.width..=MAX_SIZE.width).contains(&size.width), "{size:?}");
                assert!((MIN_SIZE.height..=MAX_SIZE.height).contains(&size.height), "{size:?}");
            }
            other => panic!("field {other:?} kept"),
        }
    }
});

/// `blend_1` … `blend_8`.
fn is_blend(id: &str) -> bool {
    id.strip_prefix("blend_")
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|n| (1..=8).contains(&n) && id.len() == 7)
}
