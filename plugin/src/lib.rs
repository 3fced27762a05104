//! Restyle: real-time neural music style transfer, as a CLAP and VST3 plugin.
//!
//! This file is the plugin: its struct, the host glue and the process callback. The audio path
//! itself is [`engine`], which the command-line renderer drives too.

use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};

use nice_plug::prelude::*;

pub mod choice;
pub mod demo;
pub mod editor;
pub mod engine;
pub mod loader;
pub mod model;
pub mod onnx;
pub mod pack;
pub mod params;
pub mod priority;
pub mod render;
pub mod runtime;
pub mod soak;
pub mod state;
pub mod stats;
pub mod switch;
pub mod wav;
mod worker;

use engine::{Engine, EngineConfig, ModelSwap, Pacing};
use params::RestyleParams;
use stats::{EngineStats, Status};
use switch::{PackRequest, Switcher};

pub struct Restyle {
    params: Arc<RestyleParams>,
    /// Live figures from whichever engine is running, kept across activations for the editor.
    stats: Arc<EngineStats>,
    status: Arc<RwLock<Status>>,
    /// Models for a pack chosen while the engine runs, on their way to its inference thread.
    swap: Arc<ModelSwap>,
    switcher: Arc<Switcher>,
    /// Made in `activate()` for the host's rate, layout and block size; `None` while inactive or
    /// if it could not be built, in which case audio passes through untouched.
    engine: Option<Engine>,
}

impl Default for Restyle {
    fn default() -> Self {
        let params = Arc::new(RestyleParams::default());
        let status = Arc::default();
        let swap = Arc::default();
        let switcher = Arc::new(Switcher::new(params.clone(), Arc::clone(&status), Arc::clone(&swap), loader::user_pack_dir()));
        Self { params, stats: Arc::default(), status, swap, switcher, engine: None }
    }
}

impl Restyle {
    fn set_status(&self, status: Status) {
        if let Ok(mut current) = self.status.write() {
            *current = status;
        }
    }
}

impl Plugin for Restyle {
    const NAME: &'static str = "Restyle";
    const VENDOR: &'static str = "Restyle developers";
    const URL: &'static str = env!("CARGO_PKG_HOMEPAGE");
    const EMAIL: &'static str = "restyle@example.invalid";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[
        AudioIOLayout {
            main_input_channels: NonZeroU32::new(2),
            main_output_channels: NonZeroU32::new(2),
            ..AudioIOLayout::const_default()
        },
        AudioIOLayout {
            main_input_channels: NonZeroU32::new(1),
            main_output_channels: NonZeroU32::new(1),
            ..AudioIOLayout::const_default()
        },
    ];

    const SAMPLE_ACCURATE_AUTOMATION: bool = true;

    type Editor = editor::RestyleEditor;
    type SysExMessage = ();
    type BackgroundTask = PackRequest;

    fn filter_state(state: &mut PluginState) {
        for problem in state::sanitize(state) {
            nice_warn!("restyle: saved state repaired: {problem}");
        }
    }

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn task_executor(&mut self) -> TaskExecutor<Self> {
        let switcher = self.switcher.clone();
        Box::new(move |request| switcher.switch(request))
    }

    fn editor(&mut self, async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        let choose_pack = Arc::new(move |request| async_executor.execute_background(request));
        editor::create(self.params.clone(), self.stats.clone(), self.status.clone(), choose_pack)
    }

    fn activate(
        &mut self,
        layout: &AudioIOLayout,
        buffer_config: &BufferConfig,
        context: &mut impl ActivateContext<Self>,
    ) -> bool {
        let config = EngineConfig {
            sample_rate: buffer_config.sample_rate.round() as u32,
            channels: layout.main_output_channels.map_or(2, NonZeroU32::get) as usize,
            max_block: buffer_config.max_buffer_size.max(1) as usize,
            pacing: match buffer_config.process_mode {
                ProcessMode::Offline => Pacing::Offline,
                ProcessMode::Realtime | ProcessMode::Buffered => Pacing::RealTime,
            },
            latency_mode: self.params.latency_mode.read().map(|m| *m).unwrap_or_default(),
        };
        // Drop the old engine (and its thread) before starting a new one.
        self.engine = None;
        let provider = self.params.provider.read().map(|p| *p).unwrap_or_default();
        let loaded = self.switcher.start(provider);
        if let Some(problem) = &loaded.problem {
            nice_warn!("restyle: {problem}");
        }
        match Engine::for_plugin(config, loaded.models, self.stats.clone(), self.swap.clone()) {
            Ok(mut engine) => {
                self.params.style_names.set(engine.styles());
                self.set_status(Status {
                    model: engine.model_name().to_owned(),
                    provider: loaded.provider.to_owned(),
                    styles: engine.styles().to_vec(),
                    latency_mode: config.latency_mode,
                    error: loaded.problem,
                });
                engine.jump_to(&self.params.controls(engine.styles().len()));
                context.set_latency_samples(engine.latency() as u32);
                nice_log!(
                    "restyle: {} Hz, {} channel(s), blocks up to {}, {} latency mode: latency {} samples, model '{}'",
                    config.sample_rate,
                    config.channels,
                    config.max_block,
                    config.latency_mode.label(),
                    engine.latency(),
                    engine.model_name()
                );
                self.engine = Some(engine);
            }
            Err(error) => {
                let message = format!("cannot start the engine, passing audio through: {error:#}");
                nice_error!("restyle: {message}");
                self.set_status(Status { error: Some(message), ..Status::default() });
                context.set_latency_samples(0);
            }
        }
        true
    }

    fn reset(&mut self) {
        if let Some(engine) = &mut self.engine {
            engine.reset();
        }
    }

    fn deactivate(&mut self) {
        self.engine = None;
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        _context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        if let Some(engine) = &mut self.engine {
            let controls = self.params.controls(engine.style_count());
            engine.process(buffer.as_slice(), &controls);
        }
        ProcessStatus::Normal
    }
}

impl ClapPlugin for Restyle {
    const CLAP_ID: &'static str = "com.restyle.restyle";
    const CLAP_DESCRIPTION: Option<&'static str> = Some("Re-voices audio toward a chosen musical style");
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] =
        &[ClapFeature::AudioEffect, ClapFeature::Stereo, ClapFeature::Mono, ClapFeature::Filter];
}

impl Vst3Plugin for Restyle {
    const VST3_CLASS_ID: [u8; 16] = *b"RestyleStyleXfr1";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] = &[Vst3SubCategory::Fx, Vst3SubCategory::Filter];
}

nice_export_clap!(Restyle);
nice_export_vst3!(Restyle);
