//! The hot paths of the feature and resampling code never allocate: every call below runs under
//! `assert_no_alloc`, which aborts the test on any allocation or deallocation. Constructors run
//! outside it (they are allowed to allocate).

use assert_no_alloc::{assert_no_alloc, AllocDisabler};
use restyle_dsp::features::{log_magnitude, magnitude_from_logmag, power_spectrum};
use restyle_dsp::mel::{MelFilterbank, MelNorm, MelScale};
use restyle_dsp::mfcc::{log_mel, LogScale, Mfcc};
use restyle_dsp::resample::{round_trip_delay, Resampler};
use restyle_dsp::Complex32;

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

#[test]
fn resampling_never_allocates_after_construction() {
    for host in [44_100u32, 96_000, 48_000, 192_000] {
        let (delay_a, delay_b, _) = round_trip_delay(host, 48_000, 640);
        let mut down = Resampler::new(host, 48_000, delay_a);
        let mut up = Resampler::new(48_000, host, delay_b);
        let input: Vec<f32> = (0..20_000).map(|n| (n as f32 * 0.01).sin()).collect();
        let mut model = vec![0.0; down.max_output(1024)];
        let mut output = vec![0.0; 1024];
        let sizes = [1usize, 1024, 7, 333, 64, 0, 512];
        assert_no_alloc(|| {
            let mut start = 0;
            for size in sizes.iter().cycle() {
                let end = (start + size).min(input.len());
                let produced = down.process(&input[start..end], &mut model);
                let written = up.process(&model[..produced], &mut output[..end - start]);
                assert_eq!(written, end - start);
                start = end;
                if start == input.len() {
                    break;
                }
            }
            down.reset();
            up.reset();
        });
    }
}

#[test]
fn feature_extraction_never_allocates_after_construction() {
    let bank = MelFilterbank::new(48_000.0, 1024, 40, 0.0, 24_000.0, MelScale::Slaney, MelNorm::Slaney);
    let mfcc = Mfcc::new(40, 20);
    let spectrum: Vec<Complex32> = (0..513).map(|b| Complex32::new((b as f32).sin(), 0.5)).collect();
    let (mut logmag, mut magnitude, mut power) = (vec![0.0; 513], vec![0.0; 513], vec![0.0; 513]);
    let (mut mel, mut log, mut coefficients) = (vec![0.0; 40], vec![0.0; 40], vec![0.0; 20]);
    assert_no_alloc(|| {
        log_magnitude(&spectrum, &mut logmag);
        magnitude_from_logmag(&logmag, &mut magnitude);
        power_spectrum(&spectrum, &mut power);
        bank.apply(&power, &mut mel);
        log_mel(&mel, LogScale::Decibel { amin: 1e-10 }, &mut log);
        mfcc.apply(&log, &mut coefficients);
    });
    assert!(coefficients.iter().all(|c| c.is_finite()));
}
