//! Host-level hardening of the built CLAP plugin: what hosts (and their users, disks and audio
//! interfaces) throw at `Restyle.clap`. Every common rate and block size, automation inside a
//! block, several instances at once, the host's bypass, broken saved state, broken audio, and
//! tearing an instance down while its inference thread is busy.
//!
//! Needs the bundle: `cargo xtask bundle restyle --release` (or `RESTYLE_CLAP=<path>.clap`).

use anyhow::{ensure, Context, Result};
use restyle_tests::contract::{self, clap_param_id};
use restyle_tests::host::{test_bundle, Bundle, ParamChange, PluginUnderTest};
use restyle_tests::signal::{awkward_block_sizes, max_error_against_delayed, rms, stereo_test_signal, third_octave_levels_db};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

/// `|output - delayed input|` allowed where the plugin must pass the dry signal through.
const DRY_TOLERANCE: f32 = 1e-5;

/// The rates hosts run at.
const SAMPLE_RATES: [f64; 6] = [44_100.0, 48_000.0, 88_200.0, 96_000.0, 176_400.0, 192_000.0];

/// Maximum block sizes from a single sample (some hosts' automation passes) to a bounce's 8192.
const MAX_BLOCKS: [u32; 5] = [1, 64, 512, 4096, 8192];

/// The resampler's kernel reaches this many samples of the lower rate either side
/// (`restyle_dsp::resample::TAPS_HALF`); resampling to and from the model rate adds at most two
/// such half widths, plus rounding, to the latency.
const RESAMPLER_HALF_WIDTH: f64 = 24.0;

/// The block size the single-configuration tests use; `pipeline_delay_hops(48 kHz, 512) = 4` in
/// the lowest latency mode.
const BLOCK: u32 = 512;

/// How long a deactivation or an instance's destruction may take, however busy the plugin is.
const TEARDOWN_LIMIT: Duration = Duration::from_secs(2);

/// The Style Mix, gains and bypass ramp over 10 ms (README: "mix and gains ramp over 10 ms").
const RAMP_SECONDS: f64 = 0.010;

fn id(string_id: &str) -> u32 {
    clap_param_id(string_id)
}

fn instantiate(bundle: &Bundle) -> Result<PluginUnderTest> {
    bundle.instantiate(contract::CLAP_ID)
}

/// The plugin's latency setting, saved in its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LatencyMode {
    Lowest,
    /// One hop more of pipeline delay.
    Safe,
}

/// `D`, the pipeline delay in hops: the largest host block, counted in model-rate samples, in
/// whole hops, at least one, plus one in the safe latency mode (docs/CONTRACT.md,
/// `restyle::engine::pipeline_delay`).
fn pipeline_delay_hops(sample_rate: f64, max_block: u32, mode: LatencyMode) -> u32 {
    let model_block = (u64::from(max_block) * contract::MODEL_SAMPLE_RATE as u64).div_ceil(sample_rate as u64);
    model_block.div_ceil(u64::from(contract::HOP_SAMPLES)).max(1) as u32 + u32::from(mode == LatencyMode::Safe)
}

/// The documented latency at the model rate: `255 + D * 128` samples.
fn model_rate_latency(sample_rate: f64, max_block: u32, mode: LatencyMode) -> u32 {
    contract::STFT_LATENCY_SAMPLES + pipeline_delay_hops(sample_rate, max_block, mode) * contract::HOP_SAMPLES
}

/// The latencies the documented formula allows at `sample_rate`: exactly `255 + D * 128` at the
/// model rate; elsewhere that many model samples in host samples, plus the two resamplers' delay
/// (more than nothing, at most two kernel half widths of the lower rate, in host samples, and two
/// samples of rounding).
fn allowed_latency(sample_rate: f64, max_block: u32, mode: LatencyMode) -> std::ops::RangeInclusive<u32> {
    let model = model_rate_latency(sample_rate, max_block, mode);
    if sample_rate == contract::MODEL_SAMPLE_RATE {
        return model..=model;
    }
    let ratio = sample_rate / contract::MODEL_SAMPLE_RATE;
    let core = f64::from(model) * ratio;
    let resampling = 2.0 * RESAMPLER_HALF_WIDTH * ratio.max(1.0) + 2.0;
    (core.floor() as u32 + 1)..=((core + resampling).ceil() as u32)
}

/// The first sample at which `a` and `b` differ in any bit on either channel.
fn first_difference(a: &[Vec<f32>; 2], b: &[Vec<f32>; 2]) -> Option<usize> {
    a.iter()
        .zip(b)
        .filter_map(|(a, b)| {
            let differs = a.iter().zip(b).position(|(x, y)| x.to_bits() != y.to_bits());
            differs.or((a.len() != b.len()).then(|| a.len().min(b.len())))
        })
        .min()
}

/// The largest `|a - b|` over `range` on either channel.
fn max_difference(a: &[Vec<f32>; 2], b: &[Vec<f32>; 2], range: std::ops::Range<usize>) -> f32 {
    a.iter()
        .zip(b)
        .flat_map(|(a, b)| a[range.clone()].iter().zip(&b[range.clone()]).map(|(x, y)| (x - y).abs()))
        .fold(0.0, f32::max)
}

/// `input` delayed by `delay` samples (silence before), as a plugin passing it through would give.
fn delayed(input: &[Vec<f32>; 2], delay: usize) -> [Vec<f32>; 2] {
    input.clone().map(|channel| {
        let mut out = vec![0.0; delay.min(channel.len())];
        out.extend_from_slice(&channel[..channel.len() - out.len()]);
        out
    })
}

/// The last sample at which `a` and `b` differ by more than `tolerance`, plus one (0 if never).
fn settled_from(a: &[Vec<f32>; 2], b: &[Vec<f32>; 2], tolerance: f32) -> usize {
    a.iter()
        .zip(b)
        .filter_map(|(a, b)| a.iter().zip(b).rposition(|(x, y)| (x - y).is_nan() || (x - y).abs() > tolerance))
        .max()
        .map_or(0, |n| n + 1)
}

fn assert_finite(output: &[Vec<f32>; 2], what: &str) {
    for (channel, samples) in output.iter().enumerate() {
        if let Some(n) = samples.iter().position(|s| !s.is_finite()) {
            panic!("{what}: channel {channel} has non-finite output {} at sample {n}", samples[n]);
        }
    }
}

/// Every parameter's CLAP value, in the plugin's order.
fn param_values(plugin: &mut PluginUnderTest) -> Result<Vec<(String, f64)>> {
    let params = plugin.params()?;
    params.into_iter().map(|p| Ok((p.name, plugin.param_value(p.id)?))).collect()
}

/// One offline render: apply `settings` while inactive (the values a project opens with),
/// activate offline at `sample_rate` with blocks of at most `max_block`, process `input` in
/// `blocks` with `changes`, deactivate. Returns the output and the reported latency.
///
/// Every render activates afresh, so a render never inherits the smoothers' positions or the
/// parameter values automation left behind in the previous one.
fn render_offline(
    plugin: &mut PluginUnderTest,
    settings: &[(u32, f64)],
    sample_rate: f64,
    max_block: u32,
    input: &[Vec<f32>; 2],
    blocks: impl Iterator<Item = usize> + Send,
    changes: &[ParamChange],
) -> Result<([Vec<f32>; 2], usize)> {
    plugin.set_params_while_inactive(settings)?;
    plugin.set_render_mode(true)?;
    let mut activated = plugin.activate(sample_rate, max_block)?;
    let latency = plugin.latency()? as usize;
    let output = plugin.process(&mut activated, input, blocks, changes)?;
    plugin.deactivate(activated)?;
    Ok((output, latency))
}

/// The values every render below starts from: the defaults that matter, set explicitly, so that
/// automation in one render cannot leak into the next.
fn baseline() -> Vec<(u32, f64)> {
    let mut settings = vec![(id("style"), 0.0), (id("mix"), 1.0), (id("bypass"), 0.0)];
    settings.extend((1..=8).map(|slot| (id(&format!("blend_{slot}")), 0.0)));
    settings
}

/// 1. The whole activation matrix: at every rate and maximum block size, the latency the plugin
///    reports after activation is the documented one, stays the same while it processes blocks
///    of assorted sizes (1 included), and is the real delay: at Style Mix 0 the output is the
///    input delayed by exactly that many samples. The host hears of a new latency once, while
///    the plugin is being (re)activated, and never while it is active.
#[test]
fn every_rate_and_block_size_reports_the_latency_it_has() -> Result<()> {
    let bundle = test_bundle()?;
    let mut plugin = instantiate(&bundle)?;
    let mix = id("mix");
    plugin.set_params_while_inactive(&[(mix, 0.0)])?;

    let started = Instant::now();
    // A fresh instance has reported nothing yet.
    let mut previous = 0;
    eprintln!("  rate Hz  max block   D  latency  allowed          dry error   time");
    for sample_rate in SAMPLE_RATES {
        for max_block in MAX_BLOCKS {
            let cell = Instant::now();
            let what = format!("{sample_rate} Hz, blocks up to {max_block}");
            // CLAP allows the query only while active or being activated; before that the plugin
            // answers what it reported last, not something new.
            assert_eq!(plugin.latency()?, previous, "{what}: latency before activation");

            let (changes_before, restarts_before) = (plugin.latency_changes(), plugin.restart_requests());
            let mut activated = plugin.activate(sample_rate, max_block)?;
            let latency = plugin.latency()?;
            let allowed = allowed_latency(sample_rate, max_block, LatencyMode::Lowest);
            assert!(allowed.contains(&latency), "{what}: latency {latency}, the documented formula allows {allowed:?}");
            assert_eq!(
                plugin.latency_changes() - changes_before,
                u32::from(latency != previous),
                "{what}: the host must hear of a new latency ({previous} -> {latency}) exactly once, \
                 and of an unchanged one never"
            );

            // At least a few of the largest blocks after the latency has passed.
            let len = latency as usize + 3 * max_block as usize + 2048;
            let input = stereo_test_signal(sample_rate, len);
            let (changes_active, restarts_active) = (plugin.latency_changes(), plugin.restart_requests());
            let at_start = [ParamChange { sample: 0, param_id: mix, value: 0.0 }];
            let output = plugin.process(&mut activated, &input, awkward_block_sizes(max_block as usize), &at_start)?;
            assert_eq!(plugin.latency()?, latency, "{what}: the latency changed while processing");
            assert_eq!(plugin.latency_changes(), changes_active, "{what}: latency-changed while active");
            assert_eq!(plugin.restart_requests(), restarts_active, "{what}: restart requested while processing");

            let mut worst = 0.0f32;
            for (channel, (dry, wet)) in input.iter().zip(&output).enumerate() {
                let (err, at) = max_error_against_delayed(dry, wet, latency as usize);
                assert!(
                    err <= DRY_TOLERANCE,
                    "{what}: channel {channel} differs from the input delayed by the reported {latency} \
                     samples by {err} at sample {at}"
                );
                worst = worst.max(err);
            }
            plugin.deactivate(activated)?;
            assert_eq!(plugin.latency()?, latency, "{what}: latency after deactivation");
            eprintln!(
                "  {sample_rate:>7}  {max_block:>9}  {:>2}  {latency:>7}  {:<15}  {worst:>9.1e}  {:>5.0} ms \
                 (restarts {})",
                pipeline_delay_hops(sample_rate, max_block, LatencyMode::Lowest),
                format!("{allowed:?}"),
                cell.elapsed().as_secs_f64() * 1e3,
                plugin.restart_requests() - restarts_before,
            );
            previous = latency;
        }
    }
    let elapsed = started.elapsed();
    eprintln!("activation matrix: {} cells in {elapsed:.2?}", SAMPLE_RATES.len() * MAX_BLOCKS.len());
    Ok(())
}

/// Offline rendering is deterministic: the same input and settings give the same bits, from the
/// same instance again and from another instance. The sample-accuracy tests below compare renders
/// bit for bit and rely on this.
#[test]
fn offline_render_is_bit_identical_run_to_run() -> Result<()> {
    let bundle = test_bundle()?;
    let input = stereo_test_signal(48_000.0, 24_000);
    let settings = [baseline(), vec![(id("style"), 2.0), (id("blend_4"), 0.5), (id("mix"), 0.8)]].concat();
    let render = |plugin: &mut PluginUnderTest| {
        render_offline(plugin, &settings, 48_000.0, BLOCK, &input, awkward_block_sizes(BLOCK as usize), &[])
    };

    let mut plugin = instantiate(&bundle)?;
    let (first, latency) = render(&mut plugin)?;
    let (again, _) = render(&mut plugin)?;
    let (other, _) = render(&mut instantiate(&bundle)?)?;
    assert_finite(&first, "offline render");
    let wet_level = rms(&first[0][latency..]);
    assert!(wet_level > 1e-3, "the render is silent (RMS {wet_level})");
    assert_eq!(first_difference(&first, &again), None, "the same instance renders differently the second time");
    assert_eq!(first_difference(&first, &other), None, "another instance renders differently");
    Ok(())
}

/// 2a. A Style Mix change is sample-accurate: at an odd sample inside a block, it leaves every
///     earlier output sample exactly as it was, changes the output from that very sample on, and
///     ends at the dry signal (Style Mix 0), aligned with the reported latency.
#[test]
fn style_mix_automation_takes_effect_at_its_exact_sample() -> Result<()> {
    let bundle = test_bundle()?;
    let mut plugin = instantiate(&bundle)?;
    let input = stereo_test_signal(48_000.0, 16_384);
    // Block 8 (of 512 samples), sample 203 of it.
    let at = 8 * BLOCK as usize + 203;
    let change = [ParamChange { sample: at, param_id: id("mix"), value: 0.0 }];

    for (name, blocks) in [("blocks of 512", vec![BLOCK as usize]), ("awkward blocks", awkward_block_sizes(512).take(10).collect())] {
        let (reference, latency) =
            render_offline(&mut plugin, &baseline(), 48_000.0, BLOCK, &input, blocks.iter().copied().cycle(), &[])?;
        let (changed, _) =
            render_offline(&mut plugin, &baseline(), 48_000.0, BLOCK, &input, blocks.iter().copied().cycle(), &change)?;
        assert_finite(&changed, name);

        assert_eq!(
            first_difference(&reference, &changed),
            Some(at),
            "{name}: a Style Mix change at sample {at} must leave every earlier sample bit for bit as it \
             was and change the output from sample {at} on"
        );
        // Style Mix 0 is the dry signal, aligned: reached after the ramp, and kept.
        let dry = delayed(&input, latency);
        let settled = settled_from(&changed, &dry, DRY_TOLERANCE);
        eprintln!(
            "{name}: Style Mix 1 -> 0 at sample {at}: dry (within {DRY_TOLERANCE}) from sample {settled}, {:.1} ms later",
            (settled - at) as f64 / 48.0
        );
        assert!(settled > at, "{name}: the output was dry before the change");
        assert!(
            settled - at <= 4800,
            "{name}: Style Mix 0 did not give the dry signal within 100 ms of the change (only from sample {settled})"
        );
    }
    Ok(())
}

/// 2b. The Style Mix ramp is the documented 10 ms, whatever blocks the host sends: the output of
///     an offline render does not depend on how the host cuts it into blocks. (The engine
///     smooths the mix with a linear ramp over 10 ms; it must not restart that ramp with every
///     block, or a host with small blocks gets a slower, exponential glide and a different
///     bounce.)
#[test]
fn style_mix_ramp_does_not_depend_on_the_block_size() -> Result<()> {
    let bundle = test_bundle()?;
    let mut plugin = instantiate(&bundle)?;
    let input = stereo_test_signal(48_000.0, 16_384);
    let at = 8 * BLOCK as usize + 203;
    let change = [ParamChange { sample: at, param_id: id("mix"), value: 0.0 }];
    let ramp = (RAMP_SECONDS * 48_000.0).round() as usize;

    let (wet, latency) =
        render_offline(&mut plugin, &baseline(), 48_000.0, BLOCK, &input, std::iter::repeat(BLOCK as usize), &[])?;
    let dry = delayed(&input, latency);
    let mut renders = Vec::new();
    for (name, block) in [("blocks of 512", 512), ("blocks of 64", 64), ("blocks of 16", 16)] {
        let (output, _) =
            render_offline(&mut plugin, &baseline(), 48_000.0, BLOCK, &input, std::iter::repeat(block), &change)?;
        let settled = settled_from(&output, &dry, DRY_TOLERANCE);
        eprintln!("{name}: Style Mix 1 -> 0 at {at} reaches the dry signal {} samples later", settled - at);
        renders.push((name, output, settled));
    }
    // The wet and dry signals were identical in every sample before; now the mix between them.
    for (name, output, settled) in &renders {
        // The sample `i` after the change mixes `1 - (i + 1) / ramp` of the wet signal in.
        let mut worst = (0.0f32, 0);
        for i in 0..ramp {
            let n = at + i;
            let mix = 1.0 - (i + 1) as f32 / ramp as f32;
            for c in 0..2 {
                let expected = wet[c][n] * mix + dry[c][n] * (1.0 - mix);
                let err = (output[c][n] - expected).abs();
                if err > worst.0 {
                    worst = (err, i);
                }
            }
        }
        assert!(
            worst.0 <= 1e-5 && *settled <= at + ramp,
            "{name}: the Style Mix ramp is not the linear 10 ms ({ramp} samples) ramp: {} off at {} samples \
             into it, and dry only {} samples after the change. (engine.rs `Engine::process` calls \
             `Smoother::set_target` every block, which restarts the ramp from wherever it is)",
            worst.0,
            worst.1,
            settled - at
        );
    }
    Ok(())
}

/// 2c. A blend knob reaches the audio through the STFT frames: the first frame analysed after the
///     change is the first with the new style weights. That frame's last sample is the change's
///     own or one of the `hop - 1` after it, and its synthesis window covers the last `2 * hop - 1`
///     samples it analysed, so the earliest output sample it touches is that last sample
///     `- (2 * hop - 2)`, plus the latency. The change must leave every output sample before
///     `change + latency - (2 * hop - 2)` exactly as it was, and must show up within one hop
///     after that.
#[test]
fn blend_automation_takes_effect_at_the_next_frame_and_never_earlier() -> Result<()> {
    let bundle = test_bundle()?;
    let mut plugin = instantiate(&bundle)?;
    let input = stereo_test_signal(48_000.0, 24_000);
    let hop = contract::HOP_SAMPLES as usize;
    let window_reach = 2 * hop - 2;

    for at in [8 * BLOCK as usize + 77, 8 * BLOCK as usize + 128, 8 * BLOCK as usize + 129, 20 * BLOCK as usize + 1] {
        let change = [ParamChange { sample: at, param_id: id("blend_3"), value: 1.0 }];
        let (reference, latency) =
            render_offline(&mut plugin, &baseline(), 48_000.0, BLOCK, &input, awkward_block_sizes(512), &[])?;
        let (changed, _) =
            render_offline(&mut plugin, &baseline(), 48_000.0, BLOCK, &input, awkward_block_sizes(512), &change)?;
        assert_finite(&changed, "blend automation");
        let first = first_difference(&reference, &changed).with_context(|| {
            format!("a blend change at sample {at} did not change the output at all")
        })?;
        let earliest = at + latency - window_reach;
        eprintln!(
            "blend_3 0 -> 1 at sample {at}: first changed output sample {first} = change + latency - {}",
            (at + latency) as isize - first as isize
        );
        assert!(first >= at, "a blend change at sample {at} changed output sample {first}, before it");
        assert!(
            (earliest..earliest + hop).contains(&first),
            "a blend change at sample {at} first changed output sample {first}; with latency {latency} the \
             first frame analysed after it reaches the output at {earliest}..{}",
            earliest + hop
        );
        // And it is an audible change, not a rounding difference: 20 ms after the style glide.
        let later = first + 960..first + 960 + 4800;
        let change_level = max_difference(&reference, &changed, later.clone());
        let level = reference[0][later].iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(change_level > 0.01 * level, "the blend change is inaudible: {change_level} against a peak of {level}");
    }
    Ok(())
}

/// 3. Several instances in one process, active at once and processing at the same time on their
///    own threads, each give exactly what they give alone: no shared state between instances, no
///    instance slowed into playing frames dry (offline, a frame waits for its result).
#[test]
fn concurrent_instances_render_as_they_do_alone() -> Result<()> {
    const INSTANCES: usize = 4;
    let bundle = test_bundle()?;
    let bundle: &Bundle = &bundle;
    let input = stereo_test_signal(48_000.0, 24_000);
    // Processing alone: one instance at a time, the others active and idle.
    let alone = Mutex::new(());
    let all_active = Barrier::new(INSTANCES);
    let all_alone_done = Barrier::new(INSTANCES);

    // Per instance: its output alone, its output beside the others, and how long that took.
    type Rendered = ([Vec<f32>; 2], [Vec<f32>; 2], Duration);
    let results: Vec<Result<Rendered>> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..INSTANCES)
            .map(|i| {
                let (input, alone, all_active, all_alone_done) = (&input, &alone, &all_active, &all_alone_done);
                // Each thread is its instance's main thread: CLAP instances never change threads.
                scope.spawn(move || -> Result<_> {
                    // Different settings and block sizes per instance.
                    let max_block = [BLOCK, 256, 100, 333][i % 4];
                    let setup = || -> Result<_> {
                        let mut plugin = instantiate(bundle)?;
                        let settings = [
                            baseline(),
                            vec![(id("style"), i as f64), (id("blend_6"), 0.25 * i as f64), (id("mix"), 1.0 - 0.1 * i as f64)],
                        ]
                        .concat();
                        plugin.set_params_while_inactive(&settings)?;
                        plugin.set_render_mode(true)?;
                        let activated = plugin.activate(48_000.0, max_block)?;
                        Ok((plugin, activated_blocks(max_block), activated))
                    };
                    let setup = setup();
                    // Wait for every instance even if this one failed, so the others never hang.
                    all_active.wait();
                    let (mut plugin, blocks, mut activated) = match setup {
                        Ok(setup) => setup,
                        Err(err) => {
                            all_alone_done.wait();
                            return Err(err);
                        }
                    };
                    let solo = {
                        let _only_me = alone.lock().unwrap_or_else(|e| e.into_inner());
                        plugin.process(&mut activated, input, blocks.clone().into_iter().cycle(), &[])
                    };
                    all_alone_done.wait();
                    let solo = solo?;
                    let started = Instant::now();
                    let together = plugin.process(&mut activated, input, blocks.into_iter().cycle(), &[])?;
                    let took = started.elapsed();
                    plugin.deactivate(activated)?;
                    Ok((solo, together, took))
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("an instance's thread panicked")).collect()
    });

    let mut outputs = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        let (solo, together, took) = result.with_context(|| format!("instance {i}"))?;
        assert_finite(&together, &format!("instance {i}"));
        eprintln!("instance {i}: {:.2?} for {} samples while all {INSTANCES} ran", took, input[0].len());
        assert_eq!(
            first_difference(&solo, &together),
            None,
            "instance {i} rendered differently while the other instances ran at the same time"
        );
        outputs.push(together);
    }
    // The instances' settings differ, so their outputs must too (else the comparison proves little).
    for i in 0..INSTANCES {
        for j in i + 1..INSTANCES {
            assert!(first_difference(&outputs[i], &outputs[j]).is_some(), "instances {i} and {j} gave the same output");
        }
    }
    Ok(())
}

/// Block sizes up to `max_block` for the concurrency test: 1 and odd sizes included.
fn activated_blocks(max_block: u32) -> Vec<usize> {
    awkward_block_sizes(max_block as usize).take(10).collect()
}

/// 4. The host's bypass, switched inside blocks: before it, nothing changes; once the crossfade
///    is over the output is the input delayed by the unchanged latency, untouched by the gains;
///    switched off again, the output is exactly what it would have been without the bypass.
#[test]
fn bypass_gives_the_aligned_dry_signal_and_comes_back() -> Result<()> {
    let bundle = test_bundle()?;
    let mut plugin = instantiate(&bundle)?;
    let input = stereo_test_signal(48_000.0, 48_000);
    // Gains that bypass must ignore: +6 dB in, -9 dB out (as CLAP values of the skewed range).
    let settings = [baseline(), vec![(id("in_gain"), 0.62), (id("out_gain"), 0.4), (id("mix"), 0.9)]].concat();
    let (on, off) = (10_000 + 33, 30_000 + 91);
    let switches = [
        ParamChange { sample: on, param_id: id("bypass"), value: 1.0 },
        ParamChange { sample: off, param_id: id("bypass"), value: 0.0 },
    ];
    // The bypass crossfade is the 10 ms ramp; allow for a restart at the next block boundary.
    let crossfade = 2 * (RAMP_SECONDS * 48_000.0).round() as usize + BLOCK as usize;

    plugin.set_render_mode(true)?;
    for (name, blocks) in [("blocks of 512", vec![BLOCK as usize]), ("awkward blocks", activated_blocks(BLOCK))] {
        let (reference, latency) =
            render_offline(&mut plugin, &settings, 48_000.0, BLOCK, &input, blocks.iter().copied().cycle(), &[])?;

        plugin.set_params_while_inactive(&settings)?;
        let mut activated = plugin.activate(48_000.0, BLOCK)?;
        let (restarts, latency_changes) = (plugin.restart_requests(), plugin.latency_changes());
        assert_eq!(plugin.latency()? as usize, latency);
        let bypassed = plugin.process(&mut activated, &input, blocks.iter().copied().cycle(), &switches)?;
        assert_eq!(plugin.latency()? as usize, latency, "{name}: bypass changed the latency");
        assert_eq!(plugin.restart_requests(), restarts, "{name}: bypass asked for a restart");
        assert_eq!(plugin.latency_changes(), latency_changes, "{name}: bypass changed the latency");
        plugin.deactivate(activated)?;
        assert_finite(&bypassed, name);

        assert_eq!(first_difference(&reference, &bypassed), Some(on), "{name}: bypass must act from sample {on} on");
        let dry = delayed(&input, latency);
        let dry_from = on + settled_from(&split_at(&bypassed, on, off), &split_at(&dry, on, off), DRY_TOLERANCE);
        let back_from = off + settled_from(&tail(&bypassed, off), &tail(&reference, off), 0.0);
        eprintln!(
            "{name}: bypass on at {on}: dry from {dry_from} ({:.1} ms); off at {off}: as never bypassed from \
             {back_from} ({:.1} ms)",
            (dry_from - on) as f64 / 48.0,
            (back_from - off) as f64 / 48.0
        );
        assert!(
            dry_from <= on + crossfade,
            "{name}: bypassed output is not the dry input delayed by {latency} within {crossfade} samples of \
             switching it on (only from sample {dry_from})"
        );
        assert!(
            back_from <= off + crossfade,
            "{name}: after bypass, the output is not what it is without bypass within {crossfade} samples \
             (only from sample {back_from})"
        );
        let restyled = max_difference(&bypassed, &dry, back_from..input[0].len());
        assert!(restyled > 0.01, "{name}: the output after bypass is still dry (max difference {restyled})");
    }
    Ok(())
}

/// Samples `from..to` of both channels.
fn split_at(signal: &[Vec<f32>; 2], from: usize, to: usize) -> [Vec<f32>; 2] {
    [signal[0][from..to].to_vec(), signal[1][from..to].to_vec()]
}

/// Samples `from..` of both channels.
fn tail(signal: &[Vec<f32>; 2], from: usize) -> [Vec<f32>; 2] {
    [signal[0][from..].to_vec(), signal[1][from..].to_vec()]
}

/// A CLAP state stream the way nice-plug writes one: the JSON's length (u64, little endian), then
/// the JSON.
fn clap_state(json: &str) -> Vec<u8> {
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(json.as_bytes());
    bytes
}

/// The JSON text of persisted field `name` in a saved CLAP state (fields are stored as JSON
/// strings inside the state's JSON), unescaped; `None` if the state has no such field.
fn saved_field(state: &[u8], name: &str) -> Option<String> {
    let json = std::str::from_utf8(state.get(8..)?).ok()?;
    let fields = &json[json.find("\"fields\":")?..];
    let start = fields.find(&format!("\"{name}\":\""))? + name.len() + 4;
    let mut value = String::new();
    let mut chars = fields[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => value.push(chars.next()?),
            '"' => return Some(value),
            c => value.push(c),
        }
    }
    None
}

/// Deterministic bytes for the "random bytes" state.
fn noise_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (x >> 56) as u8
        })
        .collect()
}

/// 5. Broken saved state through `clap.state.load`: a state that is not nice-plug's JSON is
///    refused and changes nothing (every parameter, and the state saved afterwards, as before);
///    the plugin then still processes normally. A state of the right shape with hostile values
///    loads with every value clamped into range, foreign entries dropped and the pack back to the
///    built-in one.
#[test]
fn broken_state_is_refused_and_hostile_state_is_repaired() -> Result<()> {
    let bundle = test_bundle()?;
    let mut plugin = instantiate(&bundle)?;
    // Values that are all not the defaults, so that a load that resets anything shows.
    let prior = [
        (id("style"), 3.0),
        (id("blend_2"), 0.5),
        (id("mix"), 0.25),
        (id("in_gain"), 0.3),
        (id("out_gain"), 0.7),
        (id("bypass"), 0.0),
    ];
    plugin.set_params_while_inactive(&prior)?;
    let saved = plugin.save_state()?;
    let json = std::str::from_utf8(&saved[8..]).context("the saved state is not UTF-8 JSON")?.to_owned();
    ensure!(u64::from_le_bytes(saved[..8].try_into()?) as usize == json.len(), "unexpected state framing");

    let nested = |depth: usize, open: &str, close: &str| {
        format!(r#"{{"params":{{"mix":{}{}}},"fields":{{}}}}"#, open.repeat(depth), close.repeat(depth))
    };
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("an empty stream", Vec::new()),
        ("half a length", saved[..4].to_vec()),
        ("a length and no JSON", saved[..8].to_vec()),
        ("the state cut in half", saved[..saved.len() / 2].to_vec()),
        ("the state less its last byte", saved[..saved.len() - 1].to_vec()),
        ("a declared length shorter than the JSON", {
            let mut s = saved.clone();
            s[..8].copy_from_slice(&((json.len() / 2) as u64).to_le_bytes());
            s
        }),
        ("random bytes", noise_bytes(4096, 1)),
        ("a length, then random bytes", [1000u64.to_le_bytes().to_vec(), noise_bytes(1000, 2)].concat()),
        ("a declared length of 2^64 - 1", [u64::MAX.to_le_bytes().to_vec(), json.as_bytes().to_vec()].concat()),
        ("a declared length of 1 TiB", [(1u64 << 40).to_le_bytes().to_vec(), json.as_bytes().to_vec()].concat()),
        ("a declared 256 MiB and half the JSON", {
            [(1u64 << 28).to_le_bytes().to_vec(), json.as_bytes()[..json.len() / 2].to_vec()].concat()
        }),
        ("a JSON array", clap_state("[1,2,3]")),
        ("JSON null", clap_state("null")),
        ("a JSON string", clap_state(r#""params""#)),
        ("an empty JSON object", clap_state("{}")),
        ("params as an array", clap_state(r#"{"params":[],"fields":{}}"#)),
        ("an untyped value", clap_state(r#"{"params":{"mix":0.5},"fields":{}}"#)),
        ("a value of an unknown type", clap_state(r#"{"params":{"mix":{"f64":0.5}},"fields":{}}"#)),
        ("an integer out of i32", clap_state(r#"{"params":{"style":{"i32":99999999999}},"fields":{}}"#)),
        ("a field that is not a string", clap_state(r#"{"params":{},"fields":{"pack":5}}"#)),
        ("JSON with trailing garbage", clap_state(&format!("{json}}}}}"))),
        ("invalid UTF-8", clap_state("{\"params\":{},\"fields\":{\"pack\":\"\u{1}\"}}").into_iter().map(|b| if b == 1 { 0xff } else { b }).collect()),
        ("100 000 nested arrays", clap_state(&nested(100_000, "[", "]"))),
        ("100 000 nested objects", clap_state(&nested(100_000, r#"{"a":"#, "}"))),
    ];

    let params_before = param_values(&mut plugin)?;
    let check_refused = |plugin: &mut PluginUnderTest, bad: &[(&str, Vec<u8>)], when: &str| -> Result<()> {
        for (name, blob) in bad {
            let result = plugin.load_state(blob);
            assert!(result.is_err(), "{when}: {name} ({} bytes) was accepted as a state", blob.len());
            assert_eq!(param_values(plugin)?, params_before, "{when}: refusing {name} changed parameters");
            assert!(plugin.save_state()? == saved, "{when}: refusing {name} changed the saved state");
        }
        Ok(())
    };
    let started = Instant::now();
    check_refused(&mut plugin, &bad, "inactive")?;
    eprintln!("{} broken states refused in {:.2?}", bad.len(), started.elapsed());

    // Active and processing: refused states change nothing there either, and audio goes on.
    plugin.set_render_mode(false)?;
    let mut activated = plugin.activate(48_000.0, BLOCK)?;
    let input = stereo_test_signal(48_000.0, 12_000);
    let before = plugin.process(&mut activated, &input, awkward_block_sizes(BLOCK as usize), &[])?;
    check_refused(&mut plugin, &bad, "active")?;
    let after = plugin.process(&mut activated, &input, awkward_block_sizes(BLOCK as usize), &[])?;
    for (what, output) in [("before the broken states", &before), ("after them", &after)] {
        assert_finite(output, what);
        let level = rms(&output[0][plugin.latency()? as usize..]);
        assert!(level > 1e-3, "silent output {what} (RMS {level})");
    }

    // The right shape, hostile values: repaired, not refused.
    let hostile = r#"{"version":"0.0.0-evil","params":{
        "mix":{"f32":1e30},"style":{"i32":-7},"in_gain":{"bool":true},"out_gain":{"f32":1e39},
        "blend_2":{"f32":-5},"blend_4":{"f32":0.25},"bypass":{"f32":1},
        "gain_of_another_plugin":{"f32":1},"":{"i32":0}},
        "fields":{"pack":"\"../../etc\"","editor-state":"{\"width\":4000000000,\"height\":4000000000}",
        "provider":"\"quantum\"","secret":"{\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}"}}"#;
    let provider_before = saved_field(&saved, "provider");
    plugin.load_state(&clap_state(hostile)).context("a state of the right shape with hostile values was refused")?;
    let expected = [
        ("mix", 1.0, "1e30 clamped to 100 %"),
        ("style", 0.0, "-7 clamped to the first slot"),
        ("blend_2", 0.0, "-5 clamped to 0 %"),
        ("blend_4", 0.25, "a valid value loads"),
        ("in_gain", 0.3, "a bool for a float is dropped: the value stays"),
        ("out_gain", 0.7, "1e39 is infinite as f32 and dropped: the value stays"),
        ("bypass", 0.0, "a float for a bool is dropped: the value stays"),
    ];
    for (string_id, value, why) in expected {
        let got = plugin.param_value(id(string_id))?;
        assert!((got - value).abs() < 1e-6, "after the hostile state '{string_id}' is {got}, expected {value}: {why}");
    }
    let resaved = plugin.save_state()?;
    let text = String::from_utf8_lossy(&resaved[8..]).into_owned();
    assert_eq!(saved_field(&resaved, "pack").as_deref(), Some("null"), "the pack must fall back to the built-in one: {text}");
    assert_eq!(
        saved_field(&resaved, "editor-state").as_deref(),
        Some(r#"{"width":7680,"height":4320}"#),
        "the editor size must be clamped to the largest screen: {text}"
    );
    assert_eq!(saved_field(&resaved, "provider"), provider_before, "an unknown provider must be ignored: {text}");
    for foreign in ["secret", "gain_of_another_plugin", "\"\":", "etc"] {
        assert!(!text.contains(foreign), "'{foreign}' survived into the saved state: {text}");
    }
    let restyled = plugin.process(&mut activated, &input, awkward_block_sizes(BLOCK as usize), &[])?;
    assert_finite(&restyled, "after the hostile state");
    plugin.deactivate(activated)?;
    Ok(())
}

/// How far the third-octave spectrum of the output may be from the clean render's, a second after
/// broken input, for the plugin to count as recovered.
const RECOVERED_SPECTRUM_DB: f64 = 6.0;

/// A stretch of broken input: where it starts, how long it is, and its sample at each offset.
type Span<'a> = (usize, usize, &'a dyn Fn(usize) -> f32);

/// 6. Broken audio: blocks of NaN, infinities, denormals, ±1e6 and full-scale DC in the input.
///    The output is finite at every sample and never louder than the loudest input times a small
///    factor. Non-finite samples are exactly a moment of silence: the render is the same, bit for
///    bit, as with zeros in their place. The finite garbage is processed, and once normal audio
///    is back it sounds about as it would have without it: its level and third-octave spectrum.
///    Not the same samples: the default model is recurrent and never forgets its past exactly (a
///    moment of silence, or of another tune, changes its output waveform for good by some
///    15–20 % RMS, its third-octave spectrum by about 3 dB), so the test compares what is heard,
///    within [`RECOVERED_SPECTRUM_DB`].
#[test]
fn broken_audio_gives_finite_bounded_output_and_recovers() -> Result<()> {
    let bundle = test_bundle()?;
    let mut plugin = instantiate(&bundle)?;
    let rate = 48_000.0;
    let len = 96_000;
    let clean = stereo_test_signal(rate, len);
    let with = |spans: &[Span]| {
        let mut signal = clean.clone();
        for &(from, count, value) in spans {
            for channel in &mut signal {
                for (n, x) in channel[from..from + count].iter_mut().enumerate() {
                    *x = value(n);
                }
            }
        }
        signal
    };
    let silence = |_: usize| 0.0f32;
    let nonfinite: [Span; 5] = [
        (4_000, 512, &|_| f32::NAN),
        (6_000, 300, &|_| f32::INFINITY),
        (7_000, 300, &|_| f32::NEG_INFINITY),
        (8_000, 1_000, &|n| if n % 2 == 0 { f32::INFINITY } else { f32::NAN }),
        (9_500, 3, &|_| f32::NAN),
    ];
    let garbage: [Span; 3] = [
        (10_000, 4_096, &|n| if n % 2 == 0 { 1e-40 } else { -1e-40 }),
        (15_000, 4_096, &|n| if (n / 37) % 2 == 0 { 1e6 } else { -1e6 }),
        (20_000, 4_096, &|_| 1.0),
    ];
    let silenced = |spans: &[Span]| -> Vec<Span> {
        spans.iter().map(|&(from, count, _)| (from, count, &silence as &dyn Fn(usize) -> f32)).collect()
    };
    let mut all_bad = nonfinite.to_vec();
    all_bad.extend_from_slice(&garbage);
    let broken = with(&all_bad);
    let last_bad = all_bad.iter().map(|&(from, count, _)| from + count).max().unwrap_or(0);
    let loudest_input = broken.iter().flatten().filter(|x| x.is_finite()).fold(0.0f32, |m, x| m.max(x.abs()));

    let render = |plugin: &mut PluginUnderTest, input: &[Vec<f32>; 2], offline: bool| -> Result<([Vec<f32>; 2], usize)> {
        plugin.set_params_while_inactive(&baseline())?;
        plugin.set_render_mode(offline)?;
        let mut activated = plugin.activate(rate, BLOCK)?;
        let latency = plugin.latency()? as usize;
        let output = plugin.process(&mut activated, input, awkward_block_sizes(BLOCK as usize), &[])?;
        plugin.deactivate(activated)?;
        Ok((output, latency))
    };

    let (reference, latency) = render(&mut plugin, &clean, true)?;
    let window = last_bad + latency + rate as usize..len;
    let level = rms(&reference[0][window.clone()]);
    for offline in [true, false] {
        let mode = if offline { "offline" } else { "real time" };
        let (output, _) = render(&mut plugin, &broken, offline)?;
        assert_finite(&output, mode);
        let loudest_output = output.iter().flatten().fold(0.0f32, |m, x| m.max(x.abs()));
        eprintln!(
            "{mode}: loudest finite input {loudest_input:e}, loudest output {loudest_output:e} ({:.2}x)",
            loudest_output / loudest_input
        );
        assert!(
            loudest_output <= 4.0 * loudest_input,
            "{mode}: output peak {loudest_output} for an input peak of {loudest_input}"
        );
        let recovered = rms(&output[0][window.clone()]);
        assert!(recovered > 0.5 * level, "{mode}: a second after the bad input RMS {recovered}, clean {level}");
    }

    // Offline (reproducible): non-finite samples are silence, exactly.
    let (output, _) = render(&mut plugin, &with(&nonfinite), true)?;
    let (zeros, _) = render(&mut plugin, &with(&silenced(&nonfinite)), true)?;
    ensure!(
        first_difference(&output, &zeros).is_none(),
        "NaN and infinite input is not rendered as silence: the outputs first differ at sample {:?}",
        first_difference(&output, &zeros)
    );

    // ... and the finite garbage leaves no more trace than silence in its place: the same level,
    // and the same sound (third-octave spectrum), as the clean render.
    let (garbage_out, _) = render(&mut plugin, &with(&garbage), true)?;
    let (silence_out, _) = render(&mut plugin, &with(&silenced(&garbage)), true)?;
    for c in 0..2 {
        let bands = |output: &[Vec<f32>; 2]| third_octave_levels_db(&output[c][window.clone()], rate);
        let clean_bands = bands(&reference);
        let loudest = clean_bands.iter().copied().fold(f64::MIN, f64::max);
        let deviation = |output: &[Vec<f32>; 2]| {
            bands(output)
                .iter()
                .zip(&clean_bands)
                .filter(|(_, &clean)| clean > loudest - 40.0)
                .map(|(level, clean)| (level - clean).abs())
                .fold(0.0, f64::max)
        };
        let (after_garbage, after_silence) = (deviation(&garbage_out), deviation(&silence_out));
        let level_ratio = rms(&garbage_out[c][window.clone()]) / rms(&reference[c][window.clone()]);
        eprintln!(
            "channel {c}, a second after the last bad sample: third-octave levels within {after_garbage:.2} dB of the \
             clean render's ({after_silence:.2} dB with silence in place of the garbage); RMS {level_ratio:.3} of the clean"
        );
        // A state stuck at silence or saturation would be tens of dB off; the model's own memory of
        // a changed past is a few dB (see above), whatever the past was.
        assert!(
            after_garbage <= RECOVERED_SPECTRUM_DB,
            "channel {c}: a second after the bad input the spectrum is {after_garbage:.2} dB off the clean render's \
             (silence in its place: {after_silence:.2} dB)"
        );
        assert!((0.7..1.4).contains(&level_ratio), "channel {c}: level {level_ratio} of the clean render's");
    }
    Ok(())
}

/// 7. Deactivating, and destroying, an instance whose inference thread is busy (a burst of
///    blocks processed as fast as the host can, with the largest pipeline) returns promptly.
#[test]
fn deactivate_and_destroy_return_promptly_while_inference_is_busy() -> Result<()> {
    let bundle = test_bundle()?;
    for (sample_rate, max_block, block) in [(48_000.0, 8192u32, 8192usize), (44_100.0, 4096, 64), (96_000.0, 512, 1)] {
        let what = format!("{sample_rate} Hz, blocks of {block} (max {max_block})");
        let mut plugin = instantiate(&bundle)?;
        let mut activated = plugin.activate(sample_rate, max_block)?;
        // In real time: the host does not wait for the model, so the frames pile up behind it.
        let input = stereo_test_signal(sample_rate, if block == 1 { 24_000 } else { 96_000 });
        let started = Instant::now();
        let output = plugin.process(&mut activated, &input, std::iter::repeat(block), &[])?;
        let burst = started.elapsed();
        assert_finite(&output, &what);

        let started = Instant::now();
        plugin.deactivate(activated)?;
        let deactivate = started.elapsed();
        let started = Instant::now();
        drop(plugin);
        let destroy = started.elapsed();
        eprintln!(
            "{what}: {} samples in {burst:.2?}, then deactivate {deactivate:.2?}, destroy {destroy:.2?}",
            input[0].len()
        );
        assert!(deactivate <= TEARDOWN_LIMIT, "{what}: deactivate took {deactivate:?}");
        assert!(destroy <= TEARDOWN_LIMIT, "{what}: destroying the instance took {destroy:?}");
    }

    // Destroyed without ever processing, right after activation (a host's scan or a quick undo).
    let mut plugin = instantiate(&bundle)?;
    let activated = plugin.activate(48_000.0, 8192)?;
    let started = Instant::now();
    plugin.deactivate(activated)?;
    drop(plugin);
    let teardown = started.elapsed();
    eprintln!("activate, then straight away deactivate and destroy: {teardown:.2?}");
    assert!(teardown <= TEARDOWN_LIMIT, "deactivate and destroy right after activation took {teardown:?}");
    Ok(())
}

/// 8. The latency mode a project was saved with: a fresh instance saves the lowest; a state with
///    the safe mode loads, is saved back as it came, and makes every activation report one hop
///    more than the lowest mode allows, which is the real delay of the dry path. The host hears
///    of it at activation only.
#[test]
fn a_saved_safe_latency_mode_reports_one_hop_more_and_it_is_exact() -> Result<()> {
    let bundle = test_bundle()?;
    let mut plugin = instantiate(&bundle)?;
    let saved = plugin.save_state()?;
    assert_eq!(saved_field(&saved, "latency").as_deref(), Some("\"lowest\""), "a fresh instance's latency mode");
    let json = std::str::from_utf8(&saved[8..]).context("the saved state is not UTF-8 JSON")?;
    let safe = json.replace(r#""latency":"\"lowest\"""#, r#""latency":"\"safe\"""#);
    ensure!(safe != json, "no latency field to change in {json}");
    plugin.load_state(&clap_state(&safe)).context("a state with the safe latency mode was refused")?;
    assert_eq!(saved_field(&plugin.save_state()?, "latency").as_deref(), Some("\"safe\""), "saved back");

    let mix = id("mix");
    plugin.set_params_while_inactive(&[(mix, 0.0)])?;
    eprintln!("  rate Hz  max block   D  latency  allowed (safe)  lowest allows");
    for sample_rate in [44_100.0, 48_000.0, 96_000.0] {
        for max_block in [64, 512] {
            let what = format!("{sample_rate} Hz, blocks up to {max_block}, safe mode");
            let mut activated = plugin.activate(sample_rate, max_block)?;
            let latency = plugin.latency()?;
            let allowed = allowed_latency(sample_rate, max_block, LatencyMode::Safe);
            let lowest = allowed_latency(sample_rate, max_block, LatencyMode::Lowest);
            eprintln!(
                "  {sample_rate:>7}  {max_block:>9}  {:>2}  {latency:>7}  {:<14}  {lowest:?}",
                pipeline_delay_hops(sample_rate, max_block, LatencyMode::Safe),
                format!("{allowed:?}")
            );
            assert!(allowed.contains(&latency), "{what}: latency {latency}, the documented formula allows {allowed:?}");
            assert!(latency > *lowest.end(), "{what}: latency {latency} is within the lowest mode's {lowest:?}");

            let input = stereo_test_signal(sample_rate, latency as usize + 3 * max_block as usize + 4096);
            let changes = plugin.latency_changes();
            let at_start = [ParamChange { sample: 0, param_id: mix, value: 0.0 }];
            let output = plugin.process(&mut activated, &input, awkward_block_sizes(max_block as usize), &at_start)?;
            assert_eq!(plugin.latency_changes(), changes, "{what}: latency-changed while active");
            for (channel, (dry, wet)) in input.iter().zip(&output).enumerate() {
                let (err, at) = max_error_against_delayed(dry, wet, latency as usize);
                assert!(err <= DRY_TOLERANCE, "{what}: channel {channel} is off the input delayed by {latency} by {err} at {at}");
            }
            plugin.deactivate(activated)?;
        }
    }
    Ok(())
}
