//! The properties the `manifest` fuzz target checks on each input
//! (fuzz/fuzz_targets/manifest.rs); `plugin/tests/fuzz_corpus.rs` replays the corpus through them
//! on every test run.

use std::collections::HashSet;

use restyle::model::MAX_STYLES;
use restyle::onnx::{StyleFeatures, FEATURES_PER_BAND};
use restyle::pack::{
    Manifest, ModelEntry, TensorSpec, BINS, DYNAMIC, FEATURE, FORMAT_VERSION, MAX_MEL_BANDS, MAX_STATE_VALUES,
    MAX_WINDOW_FRAMES, WINDOW,
};

/// `Manifest::parse` on arbitrary bytes: it never panics, and a manifest it accepts gives the
/// engine only what the engine runs (docs/CONTRACT.md) with sizes it can allocate; the style
/// meter's feature extractor built from it gives finite features.
pub fn check(bytes: &[u8]) {
    let Ok(manifest) = Manifest::parse("fuzz", bytes) else { return };
    check_signal(&manifest);
    let styles = check_styles(&manifest);
    check_generator(&manifest, styles);
    check_classifier(&manifest, styles);
}

fn check_signal(m: &Manifest) {
    assert_eq!(m.format_version, FORMAT_VERSION);
    assert_eq!((m.sample_rate, m.n_fft, m.hop), (48_000, 1024, 128));
    assert_eq!((m.window.as_str(), m.feature.as_str()), (WINDOW, FEATURE));
}

/// One to eight styles (a slot and a blend knob each), named, no two alike.
fn check_styles(m: &Manifest) -> i64 {
    assert!((1..=MAX_STYLES).contains(&m.n_styles()), "{} styles", m.n_styles());
    let mut seen = HashSet::new();
    for style in &m.styles {
        assert!(!style.name.trim().is_empty());
        assert!(seen.insert(style.name.trim().to_lowercase()), "{:?} twice", style.name);
    }
    m.n_styles() as i64
}

/// A file name the pack's folder can be joined with without leaving it.
fn check_file(entry: &ModelEntry) {
    let file = entry.file.as_str();
    assert!(!file.is_empty() && file != "." && file != ".." && !file.contains(['/', '\0']), "{file:?}");
}

fn shape<'a>(specs: &'a [TensorSpec], name: &str) -> &'a [i64] {
    &specs.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no tensor {name}")).shape
}

fn check_generator(m: &Manifest, styles: i64) {
    let g = &m.generator;
    check_file(g);
    assert_eq!(g.role, "generator");
    assert_eq!((g.inputs.len(), g.outputs.len()), (3, 2));
    assert_eq!(shape(&g.inputs, "logmag"), [DYNAMIC, BINS]);
    assert_eq!(shape(&g.inputs, "style"), [DYNAMIC, styles]);
    assert_eq!(shape(&g.outputs, "logmag_out"), [DYNAMIC, BINS]);
    let state = m.state_shape();
    assert_eq!(state, shape(&g.inputs, "state_in"));
    assert_eq!(state, shape(&g.outputs, "state_out"));
    assert!(g.state_shape.as_deref().is_none_or(|declared| declared == state));
    assert!(state.len() >= 2 && state[0] == DYNAMIC, "{state:?}");
    // What OnnxGenerator allocates per channel: the product of the tail, which must not overflow.
    let values = state[1..].iter().try_fold(1usize, |n, &d| {
        assert!(d > 0, "{state:?}");
        n.checked_mul(d as usize)
    });
    assert!(values.is_some_and(|n| n <= MAX_STATE_VALUES), "{state:?}");
}

fn check_classifier(m: &Manifest, styles: i64) {
    let c = &m.classifier;
    check_file(&c.model);
    assert_eq!(c.model.role, "classifier");
    let recipe = &c.features;
    assert!((1..=MAX_MEL_BANDS).contains(&recipe.mel.n_mels));
    assert!((2..=MAX_WINDOW_FRAMES).contains(&recipe.window_frames));
    assert_eq!(recipe.dim, FEATURES_PER_BAND * recipe.mel.n_mels);
    assert_eq!((c.model.inputs.len(), c.model.outputs.len()), (1, 1));
    assert_eq!(shape(&c.model.inputs, "features"), [DYNAMIC, recipe.dim as i64]);
    assert_eq!(shape(&c.model.outputs, "probs"), [DYNAMIC, styles]);
    let mel = &recipe.mel;
    assert!(0.0 <= mel.fmin_hz && mel.fmin_hz < mel.fmax_hz && mel.fmax_hz <= 24_000.0, "{mel:?}");
    assert!(recipe.log.eps > 0.0 && recipe.log.eps.is_finite());

    // The style meter's extractor, as the inference thread builds and feeds it.
    let mut features = StyleFeatures::new(recipe);
    assert_eq!(features.dim(), recipe.dim);
    let mut out = vec![0.0; features.dim()];
    for t in 0..recipe.window_frames {
        let frame: Vec<f32> = (0..BINS as usize).map(|b| -4.0 + 3.0 * ((b * (t + 1)) as f32 * 0.01).sin()).collect();
        features.push(&frame);
    }
    assert!(features.features(&mut out), "the window is full");
    assert!(out.iter().all(|x| x.is_finite()), "{recipe:?}: {out:?}");
}
