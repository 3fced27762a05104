//! The audio thread never allocates: every call to `Engine::process` and `Engine::reset` runs
//! under `assert_no_alloc`, which aborts the test on any allocation or deallocation.

mod common;

use assert_no_alloc::{assert_no_alloc, AllocDisabler};
use common::*;
use restyle::engine::{Controls, Pacing};
use restyle::model::{ToneModel, MAX_STYLES};
use restyle::params::style_weights;
use restyle::render::BlockSizes;

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

#[test]
fn processing_with_changing_parameters_never_allocates() {
    for sample_rate in [48_000, 44_100, 96_000] {
        let mut controls = Controls::default();
        let model = Box::new(ToneModel::new(48_000.0, 513));
        let mut engine = engine(sample_rate, 2, 1024, Pacing::RealTime, model, &controls);
        let seconds = 4;
        let mut input: Vec<Vec<f32>> = (0..2).map(|c| noise(sample_rate as usize * seconds, c)).collect();
        let len = input[0].len();
        let mut start = 0;
        for (i, size) in (BlockSizes::Random { max: 1024, seed: 3 }).iter().enumerate() {
            if start >= len {
                break;
            }
            let end = (start + size).min(len);
            // Parameter changes every few blocks: style, blends, mix, gains, bypass.
            let mut blends = [0.0; MAX_STYLES];
            blends[(i / 7) % 4] = (i % 5) as f32 / 4.0;
            controls.style = style_weights(i / 11 % 4, &blends, 4);
            controls.mix = (i % 9) as f32 / 8.0;
            controls.input_gain = 0.5 + (i % 3) as f32 * 0.5;
            controls.output_gain = 1.0 + (i % 2) as f32;
            controls.bypass = i % 50 > 45;
            let (left, right) = input.split_at_mut(1);
            let mut block = [&mut left[0][start..end], &mut right[0][start..end]];
            assert_no_alloc(|| {
                engine.process(&mut block, &controls);
                if i == 400 {
                    engine.reset();
                }
            });
            start = end;
        }
        assert!(engine.stats().snapshot().frames_submitted > 1000);
        assert!(input.iter().flatten().all(|y| y.is_finite()));
    }
}
