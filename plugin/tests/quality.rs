//! End to end: test-split phrases (pieces the default pack never trained on) rendered by the
//! plugin's own engine toward every other style, and judged in Rust with the pack's classifier
//! the way the training pipeline's evaluation judges them. `models/restyle_models/phrases.py`
//! cut the phrases and recorded that evaluation's figures for them in `expected.json`.
//!
//! Two things must hold: the engine delivers what the pipeline measured (the same distance to
//! the target and the same classifier verdicts, pair by pair), and every restyled phrase is
//! nearer its target than the input was, and heard as the target more often. The figures are
//! printed beside the quality targets of the model-pipeline issue; the default pack does not
//! meet those yet (models/REPORT.md), so they are reported here, not asserted.

use std::path::{Path, PathBuf};

use restyle::engine::{Controls, LatencyMode, Pacing, HOP, N_FFT};
use restyle::loader::load_default;
use restyle::model::MAX_STYLES;
use restyle::onnx::{OnnxClassifier, Provider};
use restyle::pack::Pack;
use restyle::params::style_weights;
use restyle::render::{render, BlockSizes, RenderSettings};
use restyle_dsp::features::log_magnitude;
use restyle_dsp::stft::Stft;
use restyle_dsp::window::WindowShape;
use serde_json::Value;

/// Issue 3's targets, as fractions of the unchanged input's figure or as shares.
const TARGET_LSD_OF_INPUT: f64 = 0.45;
const TARGET_SHARE: f64 = 0.95;

/// How far the engine's figures may be from the pipeline's. Its render differs from the
/// pipeline's resynthesis by float rounding (f32 FFTs against numpy's f64), which moves a pair's
/// distance by hundredths of a dB and flips a borderline classifier window now and then, and by
/// the CPU: onnxruntime's int8 kernels are not the same arithmetic everywhere (export.py,
/// `INT8_KERNEL_TOL`). On an AVX2-only CPU the pipeline itself, against its figures from the
/// exporting machine, moved 4 of 60 pairs by more than 0.1 dB (at most 0.40) and a pair's share
/// by at most 0.086, while the means moved by 0.020 dB and 0.0005: so a pair gets the CPU's
/// margin and the means stay tight, which a wrong analysis or resynthesis would break.
const INPUT_LSD_TOLERANCE_DB: f64 = 0.1;
const PAIR_LSD_TOLERANCE_DB: f64 = 0.5;
const MEAN_LSD_TOLERANCE_DB: f64 = 0.05;
const PAIR_SHARE_TOLERANCE: f64 = 0.15;
const MEAN_SHARE_TOLERANCE: f64 = 0.02;

fn phrases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/phrases")
}

/// FNV-1a, 64 bits (as phrases.py computes it): which generator the figures were measured on.
fn fnv1a64(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The contract's log-magnitude frames of a mono 48 kHz signal, as the pipeline's
/// `signal.stft_frames` frames it: frame `k` once `(k + 1) * hop` samples have arrived.
fn logmag_frames(audio: &[f32]) -> Vec<Vec<f32>> {
    let mut stft = Stft::new(WindowShape::Asymmetric, N_FFT, HOP, 1).expect("the contract's STFT");
    let mut frames = Vec::new();
    let mut buffer = audio.to_vec();
    stft.process(&mut [&mut buffer[..]], |_, spectra| {
        let mut logmag = vec![0.0; spectra[0].len()];
        log_magnitude(&spectra[0], &mut logmag);
        frames.push(logmag);
    });
    frames
}

/// The evaluation's log-spectral distance: per frame the RMS over bins of the dB difference,
/// both sides floored, averaged over the frames where the target has sound.
fn lsd_db(output: &[Vec<f32>], target: &[Vec<f32>], floor: f32, voiced: f32) -> f64 {
    let db = 20.0 / std::f64::consts::LN_10;
    let per_frame = output.iter().zip(target).filter(|(_, t)| t.iter().cloned().fold(f32::MIN, f32::max) > voiced).map(|(o, t)| {
        let sum: f64 = o.iter().zip(t).map(|(a, b)| (f64::from(a.max(floor) - b.max(floor)) * db).powi(2)).sum();
        (sum / o.len() as f64).sqrt()
    });
    let (sum, count) = per_frame.fold((0.0, 0usize), |(s, n), d| (s + d, n + 1));
    assert!(count > 0, "no voiced target frames");
    sum / count as f64
}

/// The pack's classifier on consecutive windows of `window` frames, silent windows left out:
/// the style each remaining window is heard as.
fn heard_as(classifier: &mut OnnxClassifier, pack: &Pack, frames: &[Vec<f32>], silence: f32) -> Vec<usize> {
    let mut features = OnnxClassifier::features(pack);
    let window = pack.manifest.classifier.features.window_frames;
    let mut rows = Vec::new();
    let mut row = vec![0.0; features.dim()];
    for (k, frame) in frames.iter().enumerate() {
        features.push(frame);
        // The mean log-mel block comes first: a window whose loudest band is below the silence
        // floor has no style to hear.
        if (k + 1) % window == 0 && features.features(&mut row) && row[..features.dim() / 4].iter().cloned().fold(f32::MIN, f32::max) > silence {
            rows.extend_from_slice(&row);
        }
    }
    let n = rows.len() / row.len();
    if n == 0 {
        return Vec::new();
    }
    let probs = classifier.run(&rows, n).expect("the classifier runs");
    probs
        .chunks_exact(pack.manifest.n_styles())
        .map(|p| p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i))
        .collect()
}

fn read_mono(path: &Path) -> Vec<f32> {
    let audio = restyle::wav::read(path).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!((audio.sample_rate, audio.channels.len()), (48_000, 1), "{}", path.display());
    audio.channels.into_iter().next().unwrap()
}

struct Figures {
    lsd_db: f64,
    share: f64,
}

#[test]
fn the_engine_restyles_unseen_phrases_as_the_pipeline_measured() {
    let dir = phrases_dir();
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).expect("expected.json"))
        .expect("expected.json is JSON");
    let pack = Pack::embedded().expect("the default pack");
    let fingerprint = format!("{:016x}", fnv1a64(&pack.generator));
    assert_eq!(
        (expected["generator"]["bytes"].as_u64(), expected["generator"]["fnv1a64"].as_str()),
        (Some(pack.generator.len() as u64), Some(fingerprint.as_str())),
        "expected.json was measured on another generator: rerun `python -m restyle_models.phrases` (models/)"
    );
    let styles = pack.style_names();
    let names: Vec<&str> = expected["styles"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(names, styles, "the fixture's styles are the pack's, in slot order");
    let number = |key: &str| expected[key].as_f64().unwrap_or_else(|| panic!("expected.json has no {key}")) as f32;
    let (floor, voiced, silence) = (number("lsd_floor"), number("voiced_logmag"), number("silence_logmel"));
    let mut classifier = OnnxClassifier::new(&pack, Provider::Cpu).expect("the pack's classifier");

    let mut engine_figures = Vec::new();
    let mut worst = (0.0f64, 0.0f64);
    println!("{:<10} {:>8} -> {:<8} {:>9} {:>9} {:>9} {:>7} {:>7} {:>7}", "phrase", "source", "target", "LSD in", "engine", "pipeline", "share", "engine", "pipeln");
    for pair in expected["pairs"].as_array().expect("pairs") {
        let text = |key: &str| pair[key].as_str().unwrap().to_owned();
        let (item, source, target) = (text("item"), text("source"), text("target"));
        let slot = styles.iter().position(|s| *s == target).expect("a style of the pack");
        let input = read_mono(&dir.join(format!("{item}_{source}.wav")));
        let truth = logmag_frames(&read_mono(&dir.join(format!("{item}_{target}.wav"))));

        // The plugin on a mono track, bounced offline, as a DAW renders it.
        let loaded = load_default(Provider::Cpu);
        assert!(loaded.problem.is_none(), "{:?}", loaded.problem);
        let controls = Controls { style: style_weights(slot, &[0.0; MAX_STYLES], styles.len()), ..Controls::default() };
        let settings = RenderSettings { controls, blocks: BlockSizes::Fixed(128), pacing: Pacing::Offline, paced: false, latency_mode: LatencyMode::Lowest };
        let (output, report) = render(std::slice::from_ref(&input), 48_000, &settings, loaded.models, loaded.provider, |_| {}).expect("the render");
        assert_eq!((report.late_frames, report.failed_frames), (0, 0), "{item} {source} -> {target}");
        let restyled = logmag_frames(&output[0]);

        let engine = Figures {
            lsd_db: lsd_db(&restyled, &truth, floor, voiced),
            share: {
                let heard = heard_as(&mut classifier, &pack, &restyled, silence);
                assert!(!heard.is_empty(), "{item} {source} -> {target}: no window with sound");
                heard.iter().filter(|&&s| s == slot).count() as f64 / heard.len() as f64
            },
        };
        let input_lsd = lsd_db(&logmag_frames(&input), &truth, floor, voiced);
        let pipeline = &pair["model"];
        let (pipeline_lsd, pipeline_share) = (pipeline["lsd_db"].as_f64().unwrap(), pipeline["target_share"].as_f64().unwrap());
        println!(
            "{item:<10} {source:>8} -> {target:<8} {input_lsd:>9.2} {:>9.2} {pipeline_lsd:>9.2} {:>7.3} {:>7.3} {pipeline_share:>7.3}",
            engine.lsd_db,
            pair["input"]["target_share"].as_f64().unwrap(),
            engine.share
        );
        let what = format!("{item}, {source} -> {target}");
        assert!(
            (input_lsd - pair["input"]["lsd_db"].as_f64().unwrap()).abs() <= INPUT_LSD_TOLERANCE_DB,
            "{what}: the input's distance to the target is {input_lsd:.3} dB here and {} in the pipeline: the analysis differs",
            pair["input"]["lsd_db"]
        );
        assert!(
            (engine.lsd_db - pipeline_lsd).abs() <= PAIR_LSD_TOLERANCE_DB,
            "{what}: the engine's render is {:.3} dB from the target, the pipeline measured {pipeline_lsd:.3} dB",
            engine.lsd_db
        );
        assert!(
            (engine.share - pipeline_share).abs() <= PAIR_SHARE_TOLERANCE,
            "{what}: heard as the target in {:.3} of windows here, {pipeline_share:.3} in the pipeline",
            engine.share
        );
        assert!(engine.lsd_db < input_lsd, "{what}: the render ({:.2} dB) is no nearer the target than the input ({input_lsd:.2} dB)", engine.lsd_db);
        worst = (worst.0.max((engine.lsd_db - pipeline_lsd).abs()), worst.1.max((engine.share - pipeline_share).abs()));
        engine_figures.push((engine, input_lsd, pair["input"]["target_share"].as_f64().unwrap()));
    }

    let n = engine_figures.len() as f64;
    let mean = |f: &dyn Fn(&(Figures, f64, f64)) -> f64| engine_figures.iter().map(f).sum::<f64>() / n;
    let (lsd, input_lsd) = (mean(&|f| f.0.lsd_db), mean(&|f| f.1));
    let (share, input_share) = (mean(&|f| f.0.share), mean(&|f| f.2));
    let pipeline_share = expected["mean"]["model"]["target_share"].as_f64().unwrap();
    let pipeline_lsd = expected["mean"]["model"]["lsd_db"].as_f64().unwrap();
    println!(
        "{} pairs: LSD {lsd:.2} dB = {:.3} x the input's {input_lsd:.2} (target <= {TARGET_LSD_OF_INPUT}); heard as the target \
         in {share:.3} of windows, the input in {input_share:.3} (target >= {TARGET_SHARE}); pipeline share {pipeline_share:.3}; \
         largest differences from the pipeline: {:.3} dB, share {:.3}",
        engine_figures.len(),
        lsd / input_lsd,
        worst.0,
        worst.1
    );
    assert!(engine_figures.len() >= 30, "every source -> target pair of at least one phrase");
    assert!((lsd - pipeline_lsd).abs() <= MEAN_LSD_TOLERANCE_DB, "mean LSD {lsd:.3} dB here, {pipeline_lsd:.3} in the pipeline");
    assert!((share - pipeline_share).abs() <= MEAN_SHARE_TOLERANCE, "mean share {share:.3} here, {pipeline_share:.3} in the pipeline");
    assert!(share > input_share + 0.2, "the renders are heard as their target in {share:.3} of windows, the inputs in {input_share:.3}");
}
