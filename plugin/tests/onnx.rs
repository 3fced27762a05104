//! The ONNX boundary against its specification: the Rust `ort` path gives what onnxruntime gives
//! in Python, frame after frame with state; broken, mislabelled or mis-shaped packs are refused
//! with a message that says what is wrong; and the engine runs an ONNX generator end to end.
//!
//! These tests need ONNX Runtime. They look for it as the plugin does (next to the test binary,
//! `ORT_DYLIB_PATH`, then `vendor/onnxruntime/`) and FAIL if it is missing: run
//! `cargo xtask fetch-ort`. The fixtures come from `tests/fixtures/make_fixtures.py`.

mod common;

use std::borrow::Cow;
use std::path::Path;
use std::time::Instant;

use common::{fixtures, noise, require_runtime, tiny_pack_with};
use std::sync::{Arc, RwLock};

use restyle::engine::{Controls, Engine, EngineConfig, LatencyMode, ModelSwap, Pacing};
use restyle::params::RestyleParams;
use restyle::stats::Status;
use restyle::switch::{PackRequest, Switcher};
use restyle::model::{FrameBatch, FrameModel, StyleWeights, MAX_STYLES};
use restyle::onnx::{OnnxClassifier, OnnxGenerator, Provider, StyleFeatures};
use restyle::pack::{Pack, PackError};
use restyle::stats::StatsSnapshot;
use serde_json::Value;

const BINS: usize = 513;

#[test]
fn the_runtime_says_which_library_it_loaded() {
    require_runtime();
    let runtime = restyle::runtime::runtime().unwrap();
    eprintln!("{}", runtime.describe());
    assert!(runtime.library.is_absolute() && runtime.library.is_file(), "{}", runtime.describe());
    let minor: u32 = runtime.version.split('.').nth(1).and_then(|m| m.parse().ok()).unwrap_or(0);
    assert!(runtime.version.starts_with("1.") && minor >= 22, "{}", runtime.describe());
}

fn tiny_pack() -> Pack {
    Pack::from_dir(&fixtures().join("tiny")).expect("the tiny fixture pack is valid")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A nested JSON array of numbers, flattened in row-major order.
fn flat(value: &Value) -> Vec<f32> {
    match value {
        Value::Array(items) => items.iter().flat_map(flat).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap() as f32],
        other => panic!("expected numbers, found {other}"),
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Streams the fixture's frames through the generator (a style per row, as the fixture was
/// made) and checks every frame's output and the final state against onnxruntime in Python,
/// within the fixture's `generator_tolerance` where it has one: an int8 graph's kernels differ
/// between CPUs (`INT8_KERNEL_TOL` in models/restyle_models/export.py).
fn check_generator_parity(pack: &Pack, fixture: &Value) {
    let tolerance = fixture.get("generator_tolerance").unwrap_or(&fixture["tolerance"]).as_f64().unwrap() as f32;
    let g = &fixture["generator"];
    let mut generator = OnnxGenerator::new(pack, Provider::Cpu).unwrap();
    let style = flat(&g["style"]);
    let frames = g["frames"].as_u64().unwrap() as usize;
    assert!(frames >= 3, "several frames, so the state is exercised");
    let mut worst = 0.0f32;
    for k in 0..frames {
        let logmag = flat(&g["logmag"][k]);
        let expected = flat(&g["logmag_out"][k]);
        let channels = logmag.len() / BINS;
        let mut out = vec![0.0; logmag.len()];
        generator.run_rows(&logmag, &style, channels, &mut out).unwrap();
        worst = worst.max(max_abs_diff(&out, &expected));
    }
    let state_err = max_abs_diff(generator.state(), &flat(&g["state_out_final"]));
    eprintln!("{}: {frames} frames, max abs error {worst:e} (logmag_out), {state_err:e} (state)", pack.name());
    assert!(worst <= tolerance, "logmag_out differs from onnxruntime (Python) by {worst} > {tolerance}");
    assert!(state_err <= tolerance, "state_out differs from onnxruntime (Python) by {state_err} > {tolerance}");
}

fn check_classifier_parity(pack: &Pack, fixture: &Value) {
    let tolerance = fixture["tolerance"].as_f64().unwrap() as f32;
    let c = &fixture["classifier"];
    let mut classifier = OnnxClassifier::new(pack, Provider::Cpu).unwrap();
    let features = flat(&c["features"]);
    let rows = c["features"].as_array().unwrap().len();
    let probs = classifier.run(&features, rows).unwrap();
    let err = max_abs_diff(&probs, &flat(&c["probs"]));
    assert!(err <= tolerance, "probs differ from onnxruntime (Python) by {err} > {tolerance}");
}

#[test]
fn tiny_generator_matches_python_onnxruntime_over_streamed_frames() {
    require_runtime();
    let pack = tiny_pack();
    check_generator_parity(&pack, &read_json(&fixtures().join("tiny/fixture.json")));
}

#[test]
fn tiny_classifier_matches_python_onnxruntime() {
    require_runtime();
    let pack = tiny_pack();
    check_classifier_parity(&pack, &read_json(&fixtures().join("tiny/fixture.json")));
}

#[test]
fn frame_model_interface_carries_state_resets_it_and_restarts_on_a_new_channel_count() {
    require_runtime();
    let pack = tiny_pack();
    let mut generator = OnnxGenerator::new(&pack, Provider::Cpu).unwrap();
    assert_eq!(generator.provider(), "cpu");
    assert_eq!(generator.styles(), ["Strings", "Flute", "Organ"]);
    let mut style: StyleWeights = [0.0; MAX_STYLES];
    style[0] = 1.0;
    let logmag = vec![-3.0f32; 2 * BINS];
    let run = |generator: &mut OnnxGenerator, channels: usize| {
        let mut out = vec![0.0; channels * BINS];
        generator.run(&FrameBatch { logmag: &logmag[..channels * BINS], channels, style: &style }, &mut out).unwrap();
        out
    };
    let first = run(&mut generator, 2);
    let second = run(&mut generator, 2);
    assert!(max_abs_diff(&first, &second) > 1e-3, "the state changes the next frame");
    generator.reset();
    assert_eq!(max_abs_diff(&run(&mut generator, 2), &first), 0.0, "reset starts from zero state");
    let mono = run(&mut generator, 1);
    assert_eq!(max_abs_diff(&mono, &first[..BINS]), 0.0, "a new channel count starts from zero state");
}

#[test]
fn classifier_features_match_the_training_pipeline_recipe() {
    let fixture = read_json(&fixtures().join("features.json"));
    let pack = tiny_pack();
    let mut features = StyleFeatures::new(&pack.manifest.classifier.features);
    let frames = fixture["frames"].as_u64().unwrap() as usize;
    let window = fixture["window_frames"].as_u64().unwrap() as usize;
    let expected = fixture["features"].as_array().unwrap();
    let tolerance = fixture["tolerance"].as_f64().unwrap() as f32;
    let mut out = vec![0.0; features.dim()];
    let mut worst = 0.0f32;
    for t in 0..frames {
        // The same formula as make_fixtures.py `synthetic_logmag`, in f64, rounded to f32.
        let logmag: Vec<f32> = (0..BINS)
            .map(|b| {
                let (t, b) = (t as f64, b as f64);
                (-6.0 + 3.0 * (0.013 * b * (t + 1.0)).sin() - 0.004 * b + 0.2 * t) as f32
            })
            .collect();
        features.push(&logmag);
        let ready = features.features(&mut out);
        assert_eq!(ready, t + 1 >= window, "features are ready once the window is full (frame {t})");
        if ready {
            worst = worst.max(max_abs_diff(&out, &flat(&expected[t + 1 - window])));
        }
    }
    eprintln!("classifier features: max abs error {worst:e} over {} windows", expected.len());
    assert!(worst <= tolerance, "features differ from the Python recipe by {worst} > {tolerance}");
}

#[test]
fn a_corrupt_model_file_is_a_clear_error_not_a_panic() {
    require_runtime();
    let mut source = restyle_dsp::noise::Xorshift::new(0x2545_f491);
    let garbage: Vec<u8> = (0..4096).map(|_| source.next_u64() as u8).collect();
    let dir = tiny_pack_with("corrupt", &[("generator.onnx", garbage)]);
    let pack = Pack::from_dir(&dir).expect("the manifest itself is fine");
    let error = OnnxGenerator::new(&pack, Provider::Auto).err().expect("a corrupt model is refused");
    assert!(matches!(error, PackError::Session { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.starts_with("pack 'tiny': ONNX Runtime cannot open the generator (generator.onnx)"), "{message}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_pack_whose_manifest_says_512_bins_is_refused_before_anything_runs() {
    let mut manifest = read_json(&fixtures().join("tiny/manifest.json"));
    manifest["generator"]["inputs"][0]["shape"] = serde_json::json!([-1, 512]);
    manifest["generator"]["outputs"][0]["shape"] = serde_json::json!([-1, 512]);
    let error = Pack::from_parts(
        "test",
        manifest.to_string().as_bytes(),
        Cow::Owned(std::fs::read(fixtures().join("impostors/bins512.onnx")).unwrap()),
        Cow::Owned(std::fs::read(fixtures().join("tiny/classifier.onnx")).unwrap()),
    )
    .expect_err("512 bins is refused");
    assert_eq!(error.to_string(), "pack 'tiny': the generator input 'logmag' has 512 bins, Restyle needs 513");
}

#[test]
fn a_model_with_512_bins_under_a_manifest_that_says_513_is_refused() {
    require_runtime();
    let model = std::fs::read(fixtures().join("impostors/bins512.onnx")).unwrap();
    let dir = tiny_pack_with("bins512", &[("generator.onnx", model)]);
    let error = OnnxGenerator::new(&Pack::from_dir(&dir).unwrap(), Provider::Cpu).err().expect("refused");
    assert!(matches!(error, PackError::Interface { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("generator file's input 'logmag' has 512 bins, Restyle needs 513"), "{message}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_manifest_that_lies_about_tensor_names_is_refused() {
    require_runtime();
    let model = std::fs::read(fixtures().join("impostors/renamed.onnx")).unwrap();
    let dir = tiny_pack_with("renamed", &[("generator.onnx", model)]);
    let error = OnnxGenerator::new(&Pack::from_dir(&dir).unwrap(), Provider::Cpu).err().expect("refused");
    let message = error.to_string();
    assert!(message.contains("file has no input 'logmag'") && message.contains("'spectrum'"), "{message}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A model with the right interface and NaN weights (a training run that diverged) is refused
/// when loaded, naming the problem, rather than loading and playing dry for good.
#[test]
fn a_generator_with_nan_weights_is_refused_when_loaded() {
    require_runtime();
    let model = std::fs::read(fixtures().join("impostors/nan_weights.onnx")).unwrap();
    let dir = tiny_pack_with("nan_weights", &[("generator.onnx", model)]);
    let error = OnnxGenerator::new(&Pack::from_dir(&dir).unwrap(), Provider::Cpu).err().expect("refused");
    assert!(matches!(error, PackError::Interface { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("gives NaN in bin 0 of a quiet test frame") && message.contains("not numbers"), "{message}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_missing_model_file_names_the_file() {
    let dir = tiny_pack_with("missing", &[]);
    std::fs::remove_file(dir.join("classifier.onnx")).unwrap();
    let message = Pack::from_dir(&dir).expect_err("refused").to_string();
    assert!(message.starts_with("pack 'tiny': cannot read") && message.contains("classifier.onnx"), "{message}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn asking_for_a_gpu_without_one_falls_back_to_the_cpu_and_says_why() {
    require_runtime();
    let generator = OnnxGenerator::new(&tiny_pack(), Provider::Gpu).unwrap();
    if generator.provider() == "cpu" {
        let note = generator.provider_note().expect("a note says why the GPU is not used");
        assert!(note.contains("cuda") && note.contains("directml"), "{note}");
    } else {
        assert_eq!(generator.provider_note(), None);
    }
}

/// One second of stereo noise through the engine in offline pacing; checks what every ONNX
/// generator must give and returns the engine's figures.
fn run_engine_on_noise(generator: OnnxGenerator) -> StatsSnapshot {
    let config = EngineConfig { sample_rate: 48_000, channels: 2, max_block: 512, pacing: Pacing::Offline, latency_mode: LatencyMode::Lowest };
    let mut engine = Engine::new(config, Box::new(generator)).unwrap();
    let controls = Controls::default();
    engine.jump_to(&controls);
    let len = 48_000;
    let mut channels: Vec<Vec<f32>> = (0..2u64).map(|c| noise(len, c + 3)).collect();
    for start in (0..len).step_by(512) {
        let end = (start + 512).min(len);
        let mut block: Vec<&mut [f32]> = channels.iter_mut().map(|c| &mut c[start..end]).collect();
        engine.process(&mut block, &controls);
    }
    let stats = engine.stats().snapshot();
    assert!(stats.frames_submitted >= 300, "{stats:?}");
    assert_eq!(stats.late_frames, 0, "{stats:?}");
    assert_eq!(stats.failed_frames, 0, "{stats:?}");
    assert!(channels.iter().flatten().all(|x| x.is_finite()), "output is finite");
    let energy: f32 = channels.iter().flatten().map(|x| x * x).sum();
    assert!(energy > 1.0, "the output is not silence ({energy})");
    stats
}

#[test]
fn engine_runs_the_onnx_generator_end_to_end_without_late_frames() {
    require_runtime();
    let started = Instant::now();
    let generator = OnnxGenerator::new(&tiny_pack(), Provider::Cpu).unwrap();
    let session_ms = started.elapsed().as_secs_f64() * 1000.0;
    let stats = run_engine_on_noise(generator);
    eprintln!(
        "tiny generator: session {session_ms:.1} ms, {} calls, mean {:.3} ms, max {:.3} ms per stereo frame",
        stats.inferences, stats.inference_ms_mean, stats.inference_ms_max
    );
}

#[test]
fn engine_runs_the_default_pack_end_to_end_without_late_frames() {
    require_runtime();
    let generator = OnnxGenerator::new(&Pack::embedded().unwrap(), Provider::Cpu).unwrap();
    let stats = run_engine_on_noise(generator);
    eprintln!("default pack: {} calls, mean {:.3} ms per stereo frame", stats.inferences, stats.inference_ms_mean);
}

/// The shipped pack, as built into the binary, against the fixture the pipeline exported with it.
#[test]
fn default_pack_matches_its_python_fixture() {
    require_runtime();
    let pack = Pack::embedded().unwrap();
    let fixture = read_json(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/packs/default/fixture.json"));
    check_generator_parity(&pack, &fixture);
    check_classifier_parity(&pack, &fixture);
}

/// A user pack folder with a good pack ("good", the tiny fixture) and a broken one ("bad").
fn user_pack_folder(test: &str) -> std::path::PathBuf {
    let packs = std::env::temp_dir().join(format!("restyle-user-packs-{test}-{}", std::process::id()));
    let good = tiny_pack_with(&format!("{test}-good"), &[]);
    let bad = tiny_pack_with(&format!("{test}-bad"), &[("generator.onnx", b"garbage".to_vec())]);
    std::fs::create_dir_all(&packs).unwrap();
    for (name, dir) in [("good", &good), ("bad", &bad)] {
        let target = packs.join(name);
        let _ = std::fs::remove_dir_all(&target);
        std::fs::rename(dir, &target).unwrap();
    }
    packs
}

fn switcher(packs: &Path) -> (Arc<RestyleParams>, Arc<RwLock<Status>>, Arc<ModelSwap>, Switcher) {
    let params = Arc::new(RestyleParams::default());
    let status = Arc::new(RwLock::new(Status::default()));
    let swap = Arc::new(ModelSwap::default());
    let switcher = Switcher::new(params.clone(), status.clone(), swap.clone(), Some(packs.to_path_buf()));
    (params, status, swap, switcher)
}

#[test]
fn a_saved_pack_that_is_refused_falls_back_to_the_built_in_pack_and_says_why() {
    require_runtime();
    let (params, _, _, switcher) = switcher(&user_pack_folder("saved"));
    *params.pack.write().unwrap() = Some("good".to_owned());
    let chosen = switcher.start(Provider::Cpu);
    assert!(chosen.problem.is_none(), "{:?}", chosen.problem);
    assert_eq!(chosen.models.generator.name(), "tiny");

    *params.pack.write().unwrap() = Some("bad".to_owned());
    let refused = switcher.start(Provider::Cpu);
    let problem = refused.problem.expect("the refusal is reported");
    assert!(problem.contains("pack 'bad' refused") && problem.contains("built-in"), "{problem}");
    assert_eq!(refused.provider, "cpu", "the built-in pack runs");
    assert_eq!(refused.models.generator.name(), "default");
    assert_eq!(params.pack.read().unwrap().as_deref(), Some("bad"), "the saved choice is kept for when the pack is back");
}

/// Runs `blocks` blocks of noise through `engine`; returns the output.
fn play(engine: &mut Engine, controls: &Controls, blocks: usize, seed: u64) -> Vec<f32> {
    let mut output = Vec::new();
    for b in 0..blocks {
        let mut channels: Vec<Vec<f32>> = (0..2u64).map(|c| noise(128, seed + 2 * b as u64 + c)).collect();
        let mut block: Vec<&mut [f32]> = channels.iter_mut().map(|c| c.as_mut_slice()).collect();
        engine.process(&mut block, controls);
        output.extend(channels.concat());
    }
    output
}

#[test]
fn packs_switch_while_playing_and_a_refused_one_leaves_the_running_pack() {
    require_runtime();
    let (params, status, swap, switcher) = switcher(&user_pack_folder("live"));
    let loaded = switcher.start(Provider::Cpu);
    let default_styles = loaded.models.generator.styles().len();
    let config = EngineConfig { sample_rate: 48_000, channels: 2, max_block: 128, pacing: Pacing::Offline, latency_mode: LatencyMode::Lowest };
    let mut engine = Engine::for_plugin(config, loaded.models, Arc::default(), swap).unwrap();
    let controls = Controls::default();
    engine.jump_to(&controls);
    play(&mut engine, &controls, 50, 1);

    // The editor picks "good": loaded off the audio thread, taken by the inference thread.
    *params.pack.write().unwrap() = Some("good".to_owned());
    switcher.switch(PackRequest(Some("good".to_owned())));
    let tiny_styles = tiny_pack().style_names().len();
    assert_ne!(tiny_styles, default_styles, "the test needs packs with different style counts");
    assert_eq!(status.read().unwrap().model, "tiny");
    assert_eq!(params.style_names.name(0), tiny_pack().style_names()[0]);
    let mut blocks = 0;
    let mut output = Vec::new();
    while engine.style_count() != tiny_styles {
        output.extend(play(&mut engine, &controls, 1, 100 + blocks));
        blocks += 1;
        assert!(blocks < 400, "the inference thread never took the new pack");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    output.extend(play(&mut engine, &controls, 100, 1000));
    assert!(output.iter().all(|y| y.is_finite()));
    let stats = engine.stats().snapshot();
    assert_eq!((stats.failed_frames, stats.late_frames), (0, 0), "{stats:?}");

    // A broken pack is refused: the choice goes back and the running pack plays on.
    *params.pack.write().unwrap() = Some("bad".to_owned());
    switcher.switch(PackRequest(Some("bad".to_owned())));
    let error = status.read().unwrap().error.clone().expect("the refusal is reported");
    assert!(error.contains("pack 'bad' refused") && error.contains("still running the good pack"), "{error}");
    assert_eq!(params.pack.read().unwrap().as_deref(), Some("good"));
    assert_eq!(status.read().unwrap().model, "tiny");
    let after = play(&mut engine, &controls, 100, 5000);
    assert!(after.iter().all(|y| y.is_finite()));
    assert_eq!(engine.style_count(), tiny_styles);
    assert_eq!(engine.stats().snapshot().failed_frames, 0);
}
