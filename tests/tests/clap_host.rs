//! Host-level tests of the built CLAP plugin: what a DAW sees when it loads `Restyle.clap`.
//!
//! Needs the bundle: `cargo xtask bundle restyle --release` (or `RESTYLE_CLAP=<path>.clap`).

use anyhow::{Context, Result};
use restyle_tests::bundle::clap_plugin_path;
use restyle_tests::contract::{self, clap_param_id, Range};
use restyle_tests::host::{
    test_bundle, Bundle, ParamChange, ParamDesc, PluginUnderTest, UNLOAD_EACH_ENV_VAR,
};
use restyle_tests::signal::{
    awkward_block_sizes, best_matching_delay, max_error_against_delayed, peak_cross_correlation,
    rms, stereo_test_signal, stereo_white_noise,
};
use std::process::Command;

/// The largest block the tests activate with.
const MAX_BLOCK: u32 = 512;

/// `|output - delayed input|` allowed where the plugin must pass the dry signal through.
const DRY_TOLERANCE: f32 = 1e-5;

/// One second of audio at 48 kHz: many STFT hops and thousands of awkward blocks.
const SIGNAL_SECONDS: f64 = 1.0;

fn instantiate(bundle: &Bundle) -> Result<PluginUnderTest> {
    bundle.instantiate(contract::CLAP_ID)
}

/// The parameter with CLAP ID `id`, or an error listing what the plugin has.
fn find_by_id<'a>(params: &'a [ParamDesc], string_id: &str) -> Result<&'a ParamDesc> {
    let id = clap_param_id(string_id);
    params.iter().find(|p| p.id == id).with_context(|| {
        let names: Vec<_> = params
            .iter()
            .map(|p| format!("{} ({})", p.name, p.id))
            .collect();
        format!(
            "No parameter with string ID '{string_id}' (CLAP ID {id}); the plugin has {names:?}"
        )
    })
}

/// The parameter named `name`, or an error listing what the plugin has.
fn find_by_name<'a>(params: &'a [ParamDesc], name: &str) -> Result<&'a ParamDesc> {
    params.iter().find(|p| p.name == name).with_context(|| {
        let names: Vec<_> = params.iter().map(|p| p.name.as_str()).collect();
        format!("No parameter named '{name}'; the plugin has {names:?}")
    })
}

#[test]
fn bundle_exposes_one_plugin_named_restyle() -> Result<()> {
    let bundle = test_bundle()?;
    let descriptors = bundle.descriptors()?;

    assert_eq!(
        descriptors.len(),
        1,
        "expected exactly one plugin: {descriptors:?}"
    );
    let descriptor = &descriptors[0];
    assert_eq!(descriptor.id, contract::CLAP_ID);
    assert_eq!(descriptor.name, contract::NAME);
    assert!(
        !descriptor.vendor.is_empty(),
        "empty vendor: {descriptor:?}"
    );
    assert!(
        !descriptor.version.is_empty(),
        "empty version: {descriptor:?}"
    );
    assert!(
        descriptor.features.iter().any(|f| f == "audio-effect"),
        "an effect must list the 'audio-effect' feature: {:?}",
        descriptor.features
    );

    // An instance can be made and destroyed without ever being activated (plugin scanning).
    let plugin = instantiate(&bundle)?;
    assert!(!plugin.is_active());
    drop(plugin);
    Ok(())
}

#[test]
fn audio_ports_are_one_stereo_main_pair() -> Result<()> {
    let bundle = test_bundle()?;
    let mut plugin = instantiate(&bundle)?;

    for is_input in [true, false] {
        let ports = plugin.audio_ports(is_input)?;
        let side = if is_input { "input" } else { "output" };
        assert_eq!(ports.len(), 1, "expected one {side} port: {ports:?}");
        assert_eq!(
            ports[0].channel_count, 2,
            "the {side} port is not stereo: {ports:?}"
        );
        assert!(
            ports[0].is_main,
            "the {side} port is not the main port: {ports:?}"
        );
    }
    Ok(())
}

#[test]
fn parameters_match_the_contract() -> Result<()> {
    let bundle = test_bundle()?;
    let mut plugin = instantiate(&bundle)?;
    let params = plugin.params()?;

    let specs = contract::param_specs();
    assert_eq!(
        params.len(),
        specs.len(),
        "the contract lists {} parameters, the plugin has {params:#?}",
        specs.len()
    );

    for spec in &specs {
        let param = find_by_id(&params, spec.string_id)?;
        let what = format!("parameter '{}' ({:?})", spec.string_id, param.name);

        match spec.name {
            Some(name) => assert_eq!(param.name, name, "{what}: wrong name"),
            None => assert!(!param.name.trim().is_empty(), "{what}: empty name"),
        }
        assert_eq!(param.min, 0.0, "{what}: CLAP minimum");
        let stepped = param
            .flags
            .contains(clack_extensions::params::ParamInfoFlags::IS_STEPPED);
        match spec.range {
            Range::Stepped { max } => {
                assert!(
                    stepped,
                    "{what}: should be stepped, flags {:?}",
                    param.flags
                );
                assert_eq!(param.max, max, "{what}: CLAP maximum");
            }
            Range::Continuous => {
                assert!(
                    !stepped,
                    "{what}: should be continuous, flags {:?}",
                    param.flags
                );
                assert_eq!(param.max, 1.0, "{what}: CLAP maximum");
            }
        }
        if let Some(default) = spec.default {
            assert!(
                (param.default - default).abs() < 1e-6,
                "{what}: default {} instead of {default}",
                param.default
            );
            let value = plugin.param_value(param.id)?;
            assert!(
                (value - default).abs() < 1e-6,
                "{what}: a fresh instance has value {value}, not the default {default}"
            );
        }
        let is_bypass = param
            .flags
            .contains(clack_extensions::params::ParamInfoFlags::IS_BYPASS);
        assert_eq!(
            is_bypass, spec.is_bypass,
            "{what}: bypass flag, flags {:?}",
            param.flags
        );
        assert!(
            param
                .flags
                .contains(clack_extensions::params::ParamInfoFlags::IS_AUTOMATABLE),
            "{what}: hosts must be able to automate it, flags {:?}",
            param.flags
        );
    }

    // Found by the name a user sees, "Style Mix" is the parameter with the stable ID `mix`.
    let mix = find_by_name(&params, "Style Mix")?;
    assert_eq!(
        mix.id,
        clap_param_id("mix"),
        "'Style Mix' must keep the string ID 'mix'"
    );
    Ok(())
}

/// At Style Mix 0 the plugin is a pure delay: its output is its input, late by exactly the
/// latency it reports, at every block size.
fn check_style_mix_zero_is_dry_delayed_by_latency(sample_rate: f64) -> Result<()> {
    let bundle = test_bundle()?;
    let mut plugin = instantiate(&bundle)?;
    let mix = clap_param_id("mix");

    // A host applies a project's values before activating; the same value is also sent as an
    // event at the first sample, as automation would.
    plugin.set_params_while_inactive(&[(mix, 0.0)])?;
    assert_eq!(
        plugin.param_value(mix)?,
        0.0,
        "Style Mix did not take the flushed value"
    );

    let mut activated = plugin.activate(sample_rate, MAX_BLOCK)?;
    let latency = plugin.latency()?;
    assert!(latency > 0, "an STFT effect cannot have zero latency");
    assert!(
        latency <= contract::MAX_LATENCY_SAMPLES,
        "latency {latency} samples at {sample_rate} Hz exceeds {}",
        contract::MAX_LATENCY_SAMPLES
    );
    if sample_rate == contract::MODEL_SAMPLE_RATE {
        let extra = latency.checked_sub(contract::STFT_LATENCY_SAMPLES);
        assert!(
            extra.is_some_and(|extra| extra % contract::HOP_SAMPLES == 0),
            "at the model rate the latency must be {} + D * {} samples, got {latency}",
            contract::STFT_LATENCY_SAMPLES,
            contract::HOP_SAMPLES
        );
    }

    let len = (SIGNAL_SECONDS * sample_rate) as usize;
    let input = stereo_test_signal(sample_rate, len);
    let changes = [ParamChange {
        sample: 0,
        param_id: mix,
        value: 0.0,
    }];
    let restarts_before = plugin.restart_requests();
    let output = plugin.process(
        &mut activated,
        &input,
        awkward_block_sizes(MAX_BLOCK as usize),
        &changes,
    )?;

    assert_eq!(
        plugin.latency()?,
        latency,
        "the reported latency changed while processing"
    );
    assert_eq!(
        plugin.restart_requests(),
        restarts_before,
        "the plugin asked for a restart while processing (latency must be fixed at activation)"
    );

    for (channel, (dry, wet)) in input.iter().zip(&output).enumerate() {
        let (err, at) = max_error_against_delayed(dry, wet, latency as usize);
        if err.is_nan() || err > DRY_TOLERANCE {
            let probe = (len / 4).min(8192);
            let (best_delay, best_err) = best_matching_delay(
                &dry[..probe],
                &wet[..probe],
                2 * contract::MAX_LATENCY_SAMPLES as usize,
            );
            panic!(
                "channel {channel} at {sample_rate} Hz: output differs from the input delayed by \
                 the reported {latency} samples by {err} at sample {at} (tolerance \
                 {DRY_TOLERANCE}); the best matching delay is {best_delay} samples (error \
                 {best_err})"
            );
        }
    }

    plugin.deactivate(activated)?;
    assert!(!plugin.is_active());
    Ok(())
}

#[test]
fn style_mix_zero_outputs_dry_delayed_by_reported_latency_at_48k() -> Result<()> {
    check_style_mix_zero_is_dry_delayed_by_latency(48_000.0)
}

#[test]
fn style_mix_zero_outputs_dry_delayed_by_reported_latency_at_44k1() -> Result<()> {
    check_style_mix_zero_is_dry_delayed_by_latency(44_100.0)
}

/// The restyled (wet) signal is aligned with the dry one: at full Style Mix, the output
/// correlates best with the input delayed by exactly the reported latency. (The engine changes
/// magnitudes and keeps the input's phase, a zero-phase filter per frame, so the peak sits at the
/// delay; a misaligned wet path would comb-filter against the dry one at intermediate mixes.)
#[test]
fn restyled_output_is_aligned_with_the_reported_latency() -> Result<()> {
    let bundle = test_bundle()?;
    let mut plugin = instantiate(&bundle)?;
    let mix = clap_param_id("mix");
    plugin.set_params_while_inactive(&[(mix, 1.0)])?;
    // Offline (a DAW's export) so that every frame goes through the model: in real time, this
    // host's faster-than-real-time processing would make frames late, and late frames play dry.
    plugin.set_render_mode(true)?;
    let mut activated = plugin.activate(48_000.0, MAX_BLOCK)?;
    let latency = plugin.latency()? as usize;

    let input = stereo_white_noise(12_000, 0.25);
    let output = plugin.process(
        &mut activated,
        &input,
        awkward_block_sizes(MAX_BLOCK as usize),
        &[],
    )?;
    plugin.deactivate(activated)?;

    for (channel, (dry, wet)) in input.iter().zip(&output).enumerate() {
        let (lag, r) = peak_cross_correlation(dry, wet, contract::MAX_LATENCY_SAMPLES as usize);
        assert_eq!(
            lag, latency,
            "channel {channel}: the output correlates best with the input {lag} samples late \
             (r = {r:.3}), but the plugin reports {latency}"
        );
        assert!(
            r.abs() > 0.3,
            "channel {channel}: output hardly related to the input (r = {r:.3} at lag {lag})"
        );
        assert!(
            r.abs() < 0.999,
            "channel {channel}: the output is the dry input (r = {r:.6}): the model path did not run"
        );
    }
    Ok(())
}

#[test]
fn sample_accurate_automation_keeps_output_finite() -> Result<()> {
    let bundle = test_bundle()?;
    let mut plugin = instantiate(&bundle)?;
    // Offline, so that the model runs on every frame while the style moves under it.
    plugin.set_render_mode(true)?;
    let mut activated = plugin.activate(48_000.0, MAX_BLOCK)?;
    let latency = plugin.latency()? as usize;

    let id = clap_param_id;
    let len = 48_000;
    let input = stereo_test_signal(48_000.0, len);

    // Several changes inside single blocks (blocks of 512 here), jumps between extremes, every
    // parameter touched; the last value of each is checked afterwards.
    let mut changes = Vec::new();
    let mut at = |sample: usize, string_id: &str, value: f64| {
        changes.push(ParamChange {
            sample,
            param_id: id(string_id),
            value,
        });
    };
    for block in 0..(len / 512) {
        let base = block * 512;
        let phase = block % 4;
        at(base + 3, "mix", [0.0, 1.0, 0.5, 0.25][phase]);
        at(base + 17, "mix", [1.0, 0.0, 0.75, 0.9][phase]);
        at(base + 200, "style", (block % 8) as f64);
        at(base + 201, "blend_1", [0.0, 1.0, 0.3, 0.6][phase]);
        at(base + 202, "blend_5", [1.0, 0.0, 0.7, 0.2][phase]);
        at(base + 350, "in_gain", [0.5, 0.9, 0.1, 0.6][phase]);
        at(base + 351, "out_gain", [0.5, 0.2, 0.8, 0.4][phase]);
        at(base + 511, "mix", [0.6, 0.1, 1.0, 0.0][phase]);
    }
    // Bypass on for a stretch in the middle, inside blocks.
    at(20_000 + 100, "bypass", 1.0);
    at(24_000 + 7, "bypass", 0.0);
    // The final values.
    at(len - 300, "mix", 0.4);
    at(len - 299, "style", 5.0);
    at(len - 298, "blend_3", 0.8);
    at(len - 297, "out_gain", 0.45);

    let output = plugin.process(
        &mut activated,
        &input,
        std::iter::repeat(MAX_BLOCK as usize),
        &changes,
    )?;

    for (channel, samples) in output.iter().enumerate() {
        if let Some(n) = samples.iter().position(|s| !s.is_finite()) {
            panic!(
                "channel {channel}: non-finite output {} at sample {n}",
                samples[n]
            );
        }
        let level = rms(&samples[latency..]);
        assert!(
            level > 1e-3,
            "channel {channel}: output is silent (RMS {level})"
        );
    }

    for (string_id, expected) in [
        ("mix", 0.4),
        ("style", 5.0),
        ("blend_3", 0.8),
        ("out_gain", 0.45),
    ] {
        let value = plugin.param_value(id(string_id))?;
        assert!(
            (value - expected).abs() < 1e-5,
            "'{string_id}' is {value} after automation ended at {expected}"
        );
    }
    assert_eq!(plugin.param_value(id("bypass"))?, 0.0, "bypass stayed on");

    plugin.deactivate(activated)?;
    Ok(())
}

#[test]
fn state_round_trips_through_save_and_load() -> Result<()> {
    let bundle = test_bundle()?;
    let id = clap_param_id;
    let non_defaults = [
        (id("style"), 3.0),
        (id("blend_2"), 0.5),
        (id("mix"), 0.25),
        (id("out_gain"), 0.3),
    ];

    let mut original = instantiate(&bundle)?;
    original.set_params_while_inactive(&non_defaults)?;
    let saved = original.save_state()?;
    assert!(!saved.is_empty(), "the saved state is empty");

    // A fresh instance (a project being reopened) takes the state...
    let mut restored = instantiate(&bundle)?;
    for &(param_id, value) in &non_defaults {
        assert_ne!(
            restored.param_value(param_id)?,
            value,
            "test values must not be defaults"
        );
    }
    restored.load_state(&saved)?;
    for &(param_id, value) in &non_defaults {
        let got = restored.param_value(param_id)?;
        assert!(
            (got - value).abs() < 1e-6,
            "parameter {param_id} is {got} after loading, saved as {value}"
        );
    }

    // ...and saves exactly the same bytes again.
    let resaved = restored.save_state()?;
    assert!(
        saved == resaved,
        "state does not round-trip:\n saved: {}\n again: {}",
        String::from_utf8_lossy(&saved),
        String::from_utf8_lossy(&resaved)
    );

    // Loading while active (a host restoring a preset during playback) works too, and the
    // instance still processes afterwards.
    let mut activated = restored.activate(48_000.0, MAX_BLOCK)?;
    restored.load_state(&saved)?;
    let input = stereo_test_signal(48_000.0, 4096);
    let output = restored.process(
        &mut activated,
        &input,
        awkward_block_sizes(MAX_BLOCK as usize),
        &[],
    )?;
    assert!(
        output.iter().flatten().all(|s| s.is_finite()),
        "non-finite output after load"
    );
    restored.deactivate(activated)?;
    assert_eq!(
        restored.save_state()?,
        saved,
        "state changed by activation and processing"
    );
    Ok(())
}

#[test]
fn activates_again_after_deactivation() -> Result<()> {
    let bundle = test_bundle()?;
    let mut plugin = instantiate(&bundle)?;
    let input = stereo_test_signal(48_000.0, 2048);

    for (sample_rate, max_block) in [(48_000.0, MAX_BLOCK), (44_100.0, 64), (48_000.0, MAX_BLOCK)] {
        let mut activated = plugin.activate(sample_rate, max_block)?;
        assert!(plugin.is_active());
        let output = plugin.process(
            &mut activated,
            &input,
            awkward_block_sizes(max_block as usize),
            &[],
        )?;
        assert!(
            output.iter().flatten().all(|s| s.is_finite()),
            "non-finite output at {sample_rate} Hz, max block {max_block}"
        );
        plugin.deactivate(activated)?;
        assert!(!plugin.is_active());
    }
    Ok(())
}

/// A host unloads a plugin library when its last instance is gone (scanning does it all the
/// time) while the threads that called into it live on. A library that leaves thread-local
/// destructors behind (Rust's std registers them with pthread keys) crashes the host when such a
/// thread exits. This runs the other tests again in a child process, each test loading and
/// unloading the library itself, on several threads.
#[test]
fn library_can_be_unloaded_while_host_threads_live_on() -> Result<()> {
    if std::env::var(UNLOAD_EACH_ENV_VAR).is_ok() {
        return Ok(()); // this is the child
    }
    clap_plugin_path()?;
    let exe = std::env::current_exe().context("Could not find the test executable")?;
    let output = Command::new(&exe)
        .args(["--skip", "library_can_be_unloaded", "--test-threads=2"])
        .env(UNLOAD_EACH_ENV_VAR, "1")
        .output()
        .with_context(|| format!("Could not run '{}'", exe.display()))?;

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail = |text: &str| {
        text.lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    };
    #[cfg(unix)]
    let crashed = std::os::unix::process::ExitStatusExt::signal(&output.status).is_some();
    #[cfg(not(unix))]
    let crashed = false;
    assert!(
        !crashed,
        "the test process crashed ({}) when the tests unload the plugin library after each test. \
         The library's thread-local destructors outlive it: link the cdylib with \
         `-Wl,-z,nodelete` so that it is never unmapped (plugin/build.rs: \
         `println!(\"cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete\")` on Linux).\n\
         --- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        tail(&stdout),
        tail(&stderr)
    );
    assert!(
        output.status.success(),
        "with the library unloaded after each test, the tests failed ({}):\n{}\n{}",
        output.status,
        tail(&stdout),
        tail(&stderr)
    );
    Ok(())
}
