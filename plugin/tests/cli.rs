//! The `restyle` command line: render, info, and clear failures.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::noise;

fn restyle(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_restyle")).args(args).output().expect("run restyle")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn write_wav(path: &Path, sample_rate: u32, channels: &[Vec<f32>], int16: bool) {
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate,
        bits_per_sample: if int16 { 16 } else { 32 },
        sample_format: if int16 { hound::SampleFormat::Int } else { hound::SampleFormat::Float },
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for n in 0..channels[0].len() {
        for c in channels {
            if int16 {
                writer.write_sample((c[n] * 32767.0) as i16).unwrap();
            } else {
                writer.write_sample(c[n]).unwrap();
            }
        }
    }
    writer.finalize().unwrap();
}

fn read_wav(path: &Path) -> (hound::WavSpec, Vec<f32>) {
    let reader = hound::WavReader::open(path).unwrap();
    let spec = reader.spec();
    (spec, reader.into_samples::<f32>().map(Result::unwrap).collect())
}

#[test]
fn render_json_reports_the_figures_and_writes_aligned_audio() {
    let input = scratch("in_stereo.wav");
    let output = scratch("out_stereo.wav");
    let audio = vec![noise(44_100, 1), noise(44_100, 2)];
    write_wav(&input, 44_100, &audio, false);
    let out = restyle(&["render", input.to_str().unwrap(), "-o", output.to_str().unwrap(), "--mix", "0", "--block", "100", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    for key in ["latency_samples", "sample_rate", "channels", "frames", "late_frames", "provider", "seconds", "realtime_factor"] {
        assert!(report.get(key).is_some(), "missing {key} in {report}");
    }
    assert_eq!(report["sample_rate"], 44_100);
    assert_eq!(report["channels"], 2);
    assert_eq!(report["frames"], 44_100);
    assert!(report["latency_samples"].as_u64().unwrap() > 0);
    let (spec, samples) = read_wav(&output);
    assert_eq!((spec.channels, spec.sample_rate), (2, 44_100));
    assert_eq!(samples.len(), 2 * 44_100);
    // At style-mix 0 the aligned output is the input itself.
    let err = samples.chunks(2).zip(0..).map(|(f, n)| (f[0] - audio[0][n]).abs().max((f[1] - audio[1][n]).abs())).fold(0.0, f32::max);
    assert!(err < 1e-6, "error {err}");
}

#[test]
fn render_accepts_16_bit_mono_and_styles_by_name() {
    let input = scratch("in_mono16.wav");
    let output = scratch("out_mono16.wav");
    write_wav(&input, 48_000, &[noise(48_000, 3)], true);
    let out = restyle(&["render", input.to_str().unwrap(), "-o", output.to_str().unwrap(), "--style", "strings", "--blend", "Organ=0.5,Flute=0.25"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (spec, samples) = read_wav(&output);
    assert_eq!(spec.channels, 1);
    assert_eq!(samples.len(), 48_000);
    assert!(samples.iter().all(|s| s.is_finite()));
}

#[test]
fn a_corrupt_pack_passes_audio_through_and_says_why() {
    let pack = scratch("corrupt_pack");
    std::fs::create_dir_all(&pack).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny");
    for file in ["manifest.json", "classifier.onnx"] {
        std::fs::copy(fixture.join(file), pack.join(file)).unwrap();
    }
    std::fs::write(pack.join("generator.onnx"), b"not an ONNX model at all").unwrap();
    let input = scratch("in_corrupt.wav");
    let output = scratch("out_corrupt.wav");
    let audio = noise(24_000, 8);
    write_wav(&input, 48_000, std::slice::from_ref(&audio), false);
    let out = restyle(&["render", input.to_str().unwrap(), "-o", output.to_str().unwrap(), "--pack", pack.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["provider"], "none");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("passing audio through") && stderr.contains("generator"), "{stderr}");
    let (_, samples) = read_wav(&output);
    let err = samples.iter().zip(&audio).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(err < 1e-4, "passthrough is the input: error {err}");
}

#[test]
fn unreadable_input_and_bad_options_fail_clearly() {
    let missing = restyle(&["render", "/nonexistent.wav", "-o", "/tmp/x.wav"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read /nonexistent.wav"));

    let garbage = scratch("garbage.wav");
    std::fs::write(&garbage, b"RIFF but not really a wave file").unwrap();
    let out = restyle(&["render", garbage.to_str().unwrap(), "-o", "/tmp/x.wav"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("as WAV"));

    let unknown = restyle(&["render", "a.wav", "-o", "b.wav", "--frobnicate"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("--frobnicate"));

    let input = scratch("in_style.wav");
    write_wav(&input, 48_000, &[noise(4800, 4)], false);
    let out = restyle(&["render", input.to_str().unwrap(), "-o", "/tmp/x.wav", "--style", "polka"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown style 'polka'"));
}

#[test]
fn info_json_describes_latency_and_styles() {
    let out = restyle(&["info", "--json"]);
    assert!(out.status.success());
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["latency_samples"], 383);
    assert_eq!(info["provider"], "cpu", "{info}");
    assert!(info["problem"].is_null(), "the default pack loads: {info}");
    let styles: Vec<&str> = info["styles"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(styles.contains(&"Strings") && styles.len() >= 6, "{styles:?}");
}
