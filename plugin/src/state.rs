//! Saved state, checked before nice-plug applies it.
//!
//! Hosts hand back whatever they stored: a session from another version, a preset a user edited
//! by hand, bytes from a broken disk. nice-plug refuses what is not JSON of its state's shape (the
//! host sees the load fail and the plugin keeps what it had); this module repairs what is, so that
//! no value outside a parameter's range, no unknown field and no path outside the user's pack
//! folder ever reaches the plugin. Every repair is reported in words.

use std::collections::BTreeMap;

use nice_plug::plugin::ParamValue;
use nice_plug::prelude::*;

use crate::editor::{EditorSize, MAX_SIZE, MIN_SIZE};
use crate::engine::LatencyMode;
use crate::loader;
use crate::onnx::Provider;
use crate::params::RestyleParams;

/// The persisted fields, by the names `params.rs` gives them.
const PACK_FIELD: &str = "pack";
const PROVIDER_FIELD: &str = "provider";
const EDITOR_FIELD: &str = "editor-state";
const LATENCY_FIELD: &str = "latency";

/// Repairs `state` in place: parameters unknown, of the wrong type or not finite are dropped
/// (they keep their current value), values outside a parameter's range are clamped into it,
/// unknown or unreadable fields are dropped, a pack name that is not a plain folder name becomes
/// the built-in pack and an editor size is clamped to what a screen can show. Returns what was
/// repaired, one sentence each; empty for a state this version of the plugin saved.
pub fn sanitize(state: &mut PluginState) -> Vec<String> {
    let mut problems = Vec::new();
    let params = RestyleParams::default();
    let ranges: BTreeMap<String, ParamPtr> = params.param_map().into_iter().map(|(id, ptr, _)| (id, ptr)).collect();
    state.params.retain(|id, value| match ranges.get(id) {
        // SAFETY: the pointers point into `params`, which lives until the end of this function.
        Some(param) => match unsafe { repair_value(*param, value) } {
            Ok(None) => true,
            Ok(Some(repaired)) => {
                problems.push(format!("parameter '{id}': {repaired}"));
                true
            }
            Err(refused) => {
                problems.push(format!("parameter '{id}' ignored: {refused}"));
                false
            }
        },
        None => {
            problems.push(format!("unknown parameter '{id}' ignored"));
            false
        }
    });
    state.fields.retain(|name, json| match repair_field(name, json) {
        Ok(None) => true,
        Ok(Some(repaired)) => {
            problems.push(format!("field '{name}': {repaired}"));
            true
        }
        Err(refused) => {
            problems.push(format!("field '{name}' ignored: {refused}"));
            false
        }
    });
    problems
}

/// `Ok(None)` for a good value, `Ok(Some(what))` after clamping it, `Err(why)` to drop it.
///
/// # Safety
/// `param` must point to a live parameter.
unsafe fn repair_value(param: ParamPtr, value: &mut ParamValue) -> Result<Option<String>, String> {
    // Into the range and back: the parameter's own range clamps, and steps round.
    let clamp = |plain: f32| unsafe { param.preview_plain(param.preview_normalized(plain)) };
    match (param, &mut *value) {
        (ParamPtr::FloatParam(_), ParamValue::F32(v)) => {
            if !v.is_finite() {
                return Err(format!("{v} is not a number"));
            }
            // The range's ends, not a round trip through it: that is not exact on skewed ranges
            // (gains), and would move good values.
            let (low, high) = unsafe { (param.preview_plain(0.0), param.preview_plain(1.0)) };
            let clamped = v.clamp(low, high);
            Ok((clamped != *v).then(|| {
                let note = format!("{v} is out of range, set to {clamped}");
                *v = clamped;
                note
            }))
        }
        (ParamPtr::IntParam(_), ParamValue::I32(v)) => {
            let clamped = clamp(*v as f32).round() as i32;
            Ok((clamped != *v).then(|| {
                let note = format!("{v} is out of range, set to {clamped}");
                *v = clamped;
                note
            }))
        }
        (ParamPtr::BoolParam(_), ParamValue::Bool(_)) => Ok(None),
        (_, other) => Err(format!("{other:?} is not a value of this parameter's type")),
    }
}

/// As [`repair_value`], for a persisted field's JSON text.
fn repair_field(name: &str, json: &mut String) -> Result<Option<String>, String> {
    match name {
        PACK_FIELD => {
            let pack: Option<String> = serde_json::from_str(json).map_err(|e| e.to_string())?;
            match pack {
                Some(name) if !loader::is_pack_name(&name) => {
                    *json = "null".to_owned();
                    Ok(Some(format!("{name:?} is not a pack folder name; using the built-in pack")))
                }
                _ => Ok(None),
            }
        }
        PROVIDER_FIELD => serde_json::from_str::<Provider>(json).map(|_| None).map_err(|e| e.to_string()),
        LATENCY_FIELD => serde_json::from_str::<LatencyMode>(json).map(|_| None).map_err(|e| e.to_string()),
        EDITOR_FIELD => {
            let size: EditorSize = serde_json::from_str(json).map_err(|e| e.to_string())?;
            let clamped = EditorSize {
                width: size.width.clamp(MIN_SIZE.width, MAX_SIZE.width),
                height: size.height.clamp(MIN_SIZE.height, MAX_SIZE.height),
            };
            if clamped == size {
                return Ok(None);
            }
            *json = serde_json::to_string(&clamped).map_err(|e| e.to_string())?;
            Ok(Some(format!(
                "editor size {}×{} clamped to {}×{}",
                size.width, size.height, clamped.width, clamped.height
            )))
        }
        _ => Err("not a field of this plugin".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved() -> PluginState {
        serde_json::from_str(
            r#"{"version":"0.1.0","params":{"mix":{"f32":0.5},"in_gain":{"f32":1.5310874},"out_gain":{"f32":0.063095726},"style":{"i32":2},"bypass":{"bool":false}},
               "fields":{"pack":"\"strings\"","provider":"\"cpu\"","latency":"\"safe\"","editor-state":"{\"width\":900,\"height\":600}"}}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_state_the_plugin_saved_needs_no_repair() {
        let mut state = saved();
        let before = format!("{state:?}");
        assert_eq!(sanitize(&mut state), Vec::<String>::new());
        assert_eq!(format!("{state:?}"), before);
    }

    #[test]
    fn out_of_range_values_are_clamped_and_foreign_ones_dropped() {
        let mut state = saved();
        state.params.insert("mix".into(), ParamValue::F32(1e30));
        state.params.insert("style".into(), ParamValue::I32(-7));
        state.params.insert("in_gain".into(), ParamValue::F32(f32::INFINITY));
        state.params.insert("bypass".into(), ParamValue::F32(1.0));
        state.params.insert("gain_of_another_plugin".into(), ParamValue::F32(1.0));
        let problems = sanitize(&mut state);
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(matches!(state.params["mix"], ParamValue::F32(v) if v == 1.0));
        assert!(matches!(state.params["style"], ParamValue::I32(0)));
        for dropped in ["in_gain", "bypass", "gain_of_another_plugin"] {
            assert!(!state.params.contains_key(dropped), "{dropped} kept: {state:?}");
        }
    }

    #[test]
    fn a_pack_path_that_leaves_the_pack_folder_becomes_the_built_in_pack() {
        for hostile in ["../../etc", "/etc", "a/b", "", ".", "..", "nul\u{0}byte"] {
            let mut state = saved();
            state.fields.insert(PACK_FIELD.into(), serde_json::to_string(&Some(hostile)).unwrap());
            let problems = sanitize(&mut state);
            assert_eq!(problems.len(), 1, "{hostile:?}: {problems:?}");
            assert_eq!(state.fields[PACK_FIELD], "null");
        }
    }

    #[test]
    fn unreadable_fields_are_dropped_and_sizes_clamped() {
        let mut state = saved();
        state.fields.insert(PROVIDER_FIELD.into(), "\"quantum\"".into());
        state.fields.insert(LATENCY_FIELD.into(), "\"zero\"".into());
        state.fields.insert(EDITOR_FIELD.into(), "{\"width\":4000000000,\"height\":1}".into());
        state.fields.insert("secret".into(), "1".into());
        let problems = sanitize(&mut state);
        assert_eq!(problems.len(), 4, "{problems:?}");
        for dropped in [PROVIDER_FIELD, LATENCY_FIELD, "secret"] {
            assert!(!state.fields.contains_key(dropped), "{dropped} kept: {state:?}");
        }
        let size: EditorSize = serde_json::from_str(&state.fields[EDITOR_FIELD]).unwrap();
        assert_eq!(size, EditorSize { width: MAX_SIZE.width, height: MIN_SIZE.height });
    }
}
