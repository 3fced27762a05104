//! The host-visible parameters. Their IDs are stable: hosts save sessions and automation by ID.
//!
//! The engine smooths every value itself (so the plugin and the renderer behave the same), so no
//! parameter here has a smoother of its own.

use std::sync::{Arc, RwLock};

use nice_plug::prelude::*;

use crate::editor::{self, EditorSizeState};
use crate::engine::{Controls, LatencyMode};
use crate::model::{StyleWeights, MAX_STYLES};
use crate::onnx::Provider;

/// The current pack's style names, for the parameters' display text. Written when a model is
/// loaded, read by hosts and the editor; never touched by the audio thread.
#[derive(Default)]
pub struct StyleNames(RwLock<Vec<String>>);

impl StyleNames {
    pub fn set(&self, names: &[String]) {
        if let Ok(mut current) = self.0.write() {
            *current = names.to_vec();
        }
    }

    /// The name of slot `slot`, or "Style N" if the pack has no such style (or the names are
    /// being replaced right now).
    pub fn name(&self, slot: usize) -> String {
        self.0
            .try_read()
            .ok()
            .and_then(|names| names.get(slot).cloned())
            .unwrap_or_else(|| format!("Style {}", slot + 1))
    }
}

#[derive(Params)]
pub struct RestyleParams {
    /// The style the audio is restyled towards (a slot in the pack's style list).
    #[id = "style"]
    pub style: IntParam,

    /// One knob per style slot, adding that style to the blend.
    #[nested(array, group = "Blend")]
    pub blends: [BlendParam; MAX_STYLES],

    /// Dry/restyled balance; the dry signal is delayed to line up with the restyled one.
    #[id = "mix"]
    pub mix: FloatParam,

    #[id = "in_gain"]
    pub input_gain: FloatParam,

    #[id = "out_gain"]
    pub output_gain: FloatParam,

    /// The host's bypass: the latency-aligned dry signal, with a short crossfade.
    #[id = "bypass"]
    pub bypass: BoolParam,

    pub style_names: Arc<StyleNames>,

    /// The editor's size in logical pixels, kept in the plugin state so that a session reopens
    /// with the editor as the user left it.
    #[persist = "editor-state"]
    pub editor_state: Arc<EditorSizeState>,

    /// The model pack chosen in the editor: `None` for the embedded default, or the name of a
    /// folder in the user's pack folder (see `editor::packs`).
    #[persist = "pack"]
    pub pack: Arc<RwLock<Option<String>>>,

    /// Where the models run: auto (a GPU when ONNX Runtime has one), CPU or GPU. Set in the
    /// editor's pack menu, which reloads the pack on the new provider.
    #[persist = "provider"]
    pub provider: Arc<RwLock<Provider>>,

    /// Lowest latency, or one hop more for a busy machine. Set in the editor's pack menu, which
    /// asks the host to restart the plugin: the engine takes it at activation, where the host
    /// hears the new latency.
    #[persist = "latency"]
    pub latency_mode: Arc<RwLock<LatencyMode>>,
}

#[derive(Params)]
pub struct BlendParam {
    #[id = "blend"]
    pub amount: FloatParam,
}

fn gain_param(name: &str) -> FloatParam {
    FloatParam::new(
        name,
        util::db_to_gain(0.0),
        FloatRange::Skewed {
            min: util::db_to_gain(-24.0),
            max: util::db_to_gain(24.0),
            factor: FloatRange::gain_skew_factor(-24.0, 24.0),
        },
    )
    .with_unit(" dB")
    .with_value_to_string(formatters::v2s_f32_gain_to_db(1))
    .with_string_to_value(formatters::s2v_f32_gain_to_db())
}

impl Default for RestyleParams {
    fn default() -> Self {
        let style_names = Arc::new(StyleNames::default());
        let names = style_names.clone();
        Self {
            style: IntParam::new("Style", 0, IntRange::Linear { min: 0, max: MAX_STYLES as i32 - 1 })
                .with_value_to_string(Arc::new(move |slot| names.name(slot.max(0) as usize))),
            blends: std::array::from_fn(|slot| BlendParam {
                amount: FloatParam::new(format!("Blend {}", slot + 1), 0.0, FloatRange::Linear { min: 0.0, max: 1.0 })
                    .with_unit(" %")
                    .with_value_to_string(formatters::v2s_f32_percentage(0))
                    .with_string_to_value(formatters::s2v_f32_percentage()),
            }),
            mix: FloatParam::new("Style Mix", 1.0, FloatRange::Linear { min: 0.0, max: 1.0 })
                .with_unit(" %")
                .with_value_to_string(formatters::v2s_f32_percentage(0))
                .with_string_to_value(formatters::s2v_f32_percentage()),
            input_gain: gain_param("Input Gain"),
            output_gain: gain_param("Output Gain"),
            bypass: BoolParam::new("Bypass", false).make_bypass(),
            style_names,
            editor_state: editor::default_size_state(),
            pack: Arc::new(RwLock::new(None)),
            provider: Arc::default(),
            latency_mode: Arc::default(),
        }
    }
}

impl RestyleParams {
    /// The engine's controls for the current parameter values, for a pack of `styles` styles.
    pub fn controls(&self, styles: usize) -> Controls {
        let blends: [f32; MAX_STYLES] = std::array::from_fn(|i| self.blends[i].amount.value());
        Controls {
            style: style_weights(self.style.value().max(0) as usize, &blends, styles),
            mix: self.mix.value(),
            input_gain: self.input_gain.value(),
            output_gain: self.output_gain.value(),
            bypass: self.bypass.value(),
        }
    }
}

/// `onehot(selected) + blends`, limited to the pack's `styles` and normalised to sum 1.
pub fn style_weights(selected: usize, blends: &[f32; MAX_STYLES], styles: usize) -> StyleWeights {
    let styles = styles.clamp(1, MAX_STYLES);
    let mut weights = StyleWeights::default();
    for (w, b) in weights.iter_mut().zip(blends).take(styles) {
        *w = if b.is_finite() { b.clamp(0.0, 1.0) } else { 0.0 };
    }
    weights[selected.min(styles - 1)] += 1.0;
    let sum: f32 = weights.iter().sum();
    weights.iter_mut().for_each(|w| *w /= sum);
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_the_selected_style_plus_blends_normalised() {
        let mut blends = [0.0; MAX_STYLES];
        assert_eq!(style_weights(2, &blends, 4)[2], 1.0);
        blends[1] = 1.0;
        let w = style_weights(0, &blends, 4);
        assert_eq!((w[0], w[1]), (0.5, 0.5));
        // Blends beyond the pack and a selection beyond it are ignored / clamped.
        blends[6] = 1.0;
        let w = style_weights(7, &blends, 4);
        assert_eq!((w[1], w[3], w[6]), (0.5, 0.5, 0.0));
        assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn parameter_ids_are_stable() {
        let params = RestyleParams::default();
        let ids: Vec<String> = params.param_map().into_iter().map(|(id, _, _)| id).collect();
        let mut expected = vec!["style".to_owned()];
        expected.extend((1..=MAX_STYLES).map(|i| format!("blend_{i}")));
        expected.extend(["mix", "in_gain", "out_gain", "bypass"].map(String::from));
        assert_eq!(ids, expected);
    }
}
