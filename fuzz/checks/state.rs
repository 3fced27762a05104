//! The properties the `state` fuzz target checks on each input (fuzz/fuzz_targets/state.rs);
//! `plugin/tests/fuzz_corpus.rs` replays the corpus through them on every test run.

use nice_plug::plugin::{ParamValue, PluginState};
use restyle::editor::{EditorSize, MAX_SIZE, MIN_SIZE};
use restyle::engine::LatencyMode;
use restyle::onnx::Provider;

/// The gain parameters' range, −24 to +24 dB, with room for the f32 rounding of the dB formula.
const GAIN_RANGE: (f32, f32) = (0.063_095_73 * (1.0 - 1e-5), 15.848_932 * (1.0 + 1e-5));

/// Saved plugin state on arbitrary bytes, as nice-plug would deserialize it, through
/// `restyle::state::sanitize`: it never panics; a second pass finds nothing to repair; every
/// parameter left is one of the plugin's, of its type and in its range, and every field left is
/// one the plugin reads, readable, with a pack name that stays inside the pack folder and an
/// editor size a screen can show.
pub fn check(bytes: &[u8]) {
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
            "latency" => {
                serde_json::from_str::<LatencyMode>(json).expect("a readable latency field");
            }
            "editor-state" => {
                let size: EditorSize = serde_json::from_str(json).expect("a readable editor size");
                assert!((MIN_SIZE.width..=MAX_SIZE.width).contains(&size.width), "{size:?}");
                assert!((MIN_SIZE.height..=MAX_SIZE.height).contains(&size.height), "{size:?}");
            }
            other => panic!("field {other:?} kept"),
        }
    }
}

/// `blend_1` … `blend_8`.
fn is_blend(id: &str) -> bool {
    id.strip_prefix("blend_")
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|n| (1..=8).contains(&n) && id.len() == 7)
}
