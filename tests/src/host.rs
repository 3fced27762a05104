//! A minimal CLAP host on clack-host: enough of a host to load the bundle, inspect and set
//! parameters, activate, process audio on its own audio thread while the test thread serves the
//! plugin's main-thread callbacks, save and load state, and tear everything down.

use anyhow::{anyhow, Context, Result};
use clack_extensions::audio_ports::{AudioPortFlags, AudioPortInfoBuffer, PluginAudioPorts};
use clack_extensions::latency::{HostLatency, HostLatencyImpl, PluginLatency};
use clack_extensions::log::{HostLog, HostLogImpl, LogSeverity};
use clack_extensions::params::{
    HostParams, HostParamsImplMainThread, HostParamsImplShared, ParamClearFlags, ParamInfoBuffer,
    ParamInfoFlags, ParamRescanFlags, PluginParams,
};
use clack_extensions::render::{PluginRender, RenderMode};
use clack_extensions::state::{HostState, HostStateImpl, PluginState};
use clack_host::events::event_types::ParamValueEvent;
use clack_host::prelude::*;
use std::cell::Cell;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// The host type: its handlers only record what the plugin asked for, for the tests to check.
pub struct TestHost;

/// Host callbacks any thread may make.
#[derive(Default)]
pub struct TestHostShared {
    /// The plugin asked for `on_main_thread` (nice-plug runs its GUI-thread tasks there).
    callback_requested: AtomicBool,
    /// The plugin asked to be deactivated and reactivated (e.g. its latency changed).
    restart_requests: AtomicU32,
    /// The plugin asked for a parameter flush.
    flush_requested: AtomicBool,
    /// What the plugin's editor asked of the window the host embeds it in (`clap.gui`).
    gui: GuiRequests,
}

impl SharedHandler<'_> for TestHostShared {
    fn request_restart(&self) {
        self.restart_requests.fetch_add(1, Ordering::SeqCst);
    }

    fn request_process(&self) {}

    fn request_callback(&self) {
        self.callback_requested.store(true, Ordering::SeqCst);
    }
}

impl HostLogImpl for TestHostShared {
    fn log(&self, severity: LogSeverity, message: &str) {
        eprintln!("[plugin log, {severity}] {message}");
    }
}

impl HostParamsImplShared for TestHostShared {
    fn request_flush(&self) {
        self.flush_requested.store(true, Ordering::SeqCst);
    }
}

/// Host callbacks the plugin makes on the main thread.
#[derive(Default)]
pub struct TestHostMainThread {
    /// Times the plugin said its latency changed.
    latency_changes: Cell<u32>,
    /// Times the plugin said its state changed.
    state_dirty: Cell<u32>,
}

impl MainThreadHandler<'_> for TestHostMainThread {}

impl HostLatencyImpl for TestHostMainThread {
    fn changed(&self) {
        self.latency_changes.set(self.latency_changes.get() + 1);
    }
}

impl HostStateImpl for TestHostMainThread {
    fn mark_dirty(&self) {
        self.state_dirty.set(self.state_dirty.get() + 1);
    }
}

impl HostParamsImplMainThread for TestHostMainThread {
    fn rescan(&self, _flags: ParamRescanFlags) {}

    fn clear(&self, _param_id: ClapId, _flags: ParamClearFlags) {}
}

impl HostHandlers for TestHost {
    type Shared<'a> = TestHostShared;
    type MainThread<'a> = TestHostMainThread;
    type AudioProcessor<'a> = ();

    fn declare_extensions(builder: &mut HostExtensions<Self>, _shared: &Self::Shared<'_>) {
        builder
            .register::<HostLog>()
            .register::<HostLatency>()
            .register::<HostParams>()
            .register::<HostState>()
            .register::<clack_extensions::gui::HostGui>();
    }
}

/// A plugin descriptor's fields, copied out of the library.
#[derive(Debug, Clone)]
pub struct Descriptor {
    pub id: String,
    pub name: String,
    pub vendor: String,
    pub version: String,
    pub features: Vec<String>,
}

/// A loaded `.clap` library. Instances keep the library loaded as long as they live.
pub struct Bundle {
    entry: PluginEntry,
    path: PathBuf,
}

impl Bundle {
    /// Load the CLAP library at `path` and initialize its entry point.
    pub fn load(path: &Path) -> Result<Self> {
        // SAFETY: loading a library runs its initializers; the file is the plugin under test,
        // which the test trusts as much as any host trusts a plugin.
        let entry = unsafe { PluginEntry::load(path) }
            .with_context(|| format!("Could not load the CLAP entry of '{}'", path.display()))?;
        Ok(Self {
            entry,
            path: path.to_owned(),
        })
    }

    /// Every plugin the library's factory lists.
    pub fn descriptors(&self) -> Result<Vec<Descriptor>> {
        let factory = self
            .entry
            .get_plugin_factory()
            .with_context(|| format!("'{}' has no plugin factory", self.path.display()))?;
        let text = |s: Option<&std::ffi::CStr>| {
            s.map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        Ok(factory
            .plugin_descriptors()
            .map(|d| Descriptor {
                id: text(d.id()),
                name: text(d.name()),
                vendor: text(d.vendor()),
                version: text(d.version()),
                features: d
                    .features()
                    .map(|f| f.to_string_lossy().into_owned())
                    .collect(),
            })
            .collect())
    }

    /// Create and initialize an instance of the plugin with ID `plugin_id`.
    pub fn instantiate(&self, plugin_id: &str) -> Result<PluginUnderTest> {
        let host_info = HostInfo::new(
            "restyle-tests",
            "Restyle developers",
            "https://example.invalid/restyle",
            env!("CARGO_PKG_VERSION"),
        )?;
        let id = CString::new(plugin_id)?;
        let instance = PluginInstance::<TestHost>::new(
            |_| TestHostShared::default(),
            |_| TestHostMainThread::default(),
            &self.entry,
            &id,
            &host_info,
        )
        .with_context(|| format!("Could not instantiate '{plugin_id}'"))?;
        Ok(PluginUnderTest { instance })
    }
}

/// Set to `1` to load (and unload) the library once per test instead of once per process.
pub const UNLOAD_EACH_ENV_VAR: &str = "RESTYLE_TESTS_UNLOAD_EACH";

/// The library a test uses: shared by the whole test process, or the test's own.
pub enum TestBundle {
    /// Loaded once and kept loaded until the process exits, as a DAW keeps a plugin library
    /// loaded for a session.
    Shared(&'static Bundle),
    /// Loaded for one test and unloaded when it ends, as a host does after scanning.
    Own(Bundle),
}

impl std::ops::Deref for TestBundle {
    type Target = Bundle;

    fn deref(&self) -> &Bundle {
        match self {
            TestBundle::Shared(bundle) => bundle,
            TestBundle::Own(bundle) => bundle,
        }
    }
}

/// The plugin under test (`clap_plugin_path()`): shared by default, the test's own when
/// `RESTYLE_TESTS_UNLOAD_EACH=1`. A library that crashes its host when unloaded takes the whole
/// test process down, so unloading is tested separately, in a child process.
pub fn test_bundle() -> Result<TestBundle> {
    if std::env::var(UNLOAD_EACH_ENV_VAR).as_deref() == Ok("1") {
        return Ok(TestBundle::Own(Bundle::load(
            &crate::bundle::clap_plugin_path()?,
        )?));
    }

    static BUNDLE: OnceLock<Result<Bundle, String>> = OnceLock::new();
    BUNDLE
        .get_or_init(|| {
            crate::bundle::clap_plugin_path()
                .and_then(|path| Bundle::load(&path))
                .map_err(|err| format!("{err:#}"))
        })
        .as_ref()
        .map(TestBundle::Shared)
        .map_err(|err| anyhow!("{err}"))
}

/// A parameter as the plugin describes it to the host.
#[derive(Debug, Clone)]
pub struct ParamDesc {
    pub id: u32,
    pub name: String,
    pub module: String,
    pub min: f64,
    pub max: f64,
    pub default: f64,
    pub flags: ParamInfoFlags,
}

/// An audio port as the plugin describes it to the host.
#[derive(Debug, Clone)]
pub struct PortDesc {
    pub name: String,
    pub channel_count: u32,
    pub is_main: bool,
}

/// A parameter change at an absolute sample position of a processed signal.
#[derive(Debug, Clone, Copy)]
pub struct ParamChange {
    /// The sample, counted from the start of the signal, at which the value takes effect.
    pub sample: usize,
    pub param_id: u32,
    /// The CLAP value (normalized for continuous nice-plug parameters).
    pub value: f64,
}

/// An activated plugin's audio processor, owned by the test between `process` calls.
pub struct Activated {
    /// `None` only while a `process` call has it on the audio thread.
    processor: Option<StoppedPluginAudioProcessor<TestHost>>,
    max_block: usize,
    /// Samples processed since activation: CLAP's `steady_time`.
    steady_time: u64,
}

/// One plugin instance and the host calls the tests make on it.
pub struct PluginUnderTest {
    instance: PluginInstance<TestHost>,
}

impl PluginUnderTest {
    /// One of the plugin's extensions, or an error that names the missing one.
    fn extension<E>(&mut self, name: &str) -> Result<E>
    where
        E: clack_host::extensions::Extension<
            ExtensionSide = clack_host::extensions::PluginExtensionSide,
        >,
    {
        self.instance
            .plugin_handle()
            .get_extension::<E>()
            .with_context(|| format!("The plugin does not implement the CLAP {name} extension"))
    }

    /// All parameters, in the plugin's order.
    pub fn params(&mut self) -> Result<Vec<ParamDesc>> {
        let params: PluginParams = self.extension("params")?;
        let handle = self.instance.plugin_handle();
        let count = params.count(&handle);
        let mut buffer = ParamInfoBuffer::new();
        (0..count)
            .map(|index| {
                let info = params
                    .get_info(&handle, index, &mut buffer)
                    .with_context(|| format!("params.get_info({index}) failed"))?;
                Ok(ParamDesc {
                    id: info.id.get(),
                    name: String::from_utf8_lossy(info.name).into_owned(),
                    module: String::from_utf8_lossy(info.module).into_owned(),
                    min: info.min_value,
                    max: info.max_value,
                    default: info.default_value,
                    flags: info.flags,
                })
            })
            .collect()
    }

    /// The current CLAP value of parameter `param_id`.
    pub fn param_value(&mut self, param_id: u32) -> Result<f64> {
        let params: PluginParams = self.extension("params")?;
        let id = ClapId::from_raw(param_id).context("Invalid CLAP parameter ID")?;
        params
            .get_value(&self.instance.plugin_handle(), id)
            .with_context(|| format!("params.get_value({param_id}) failed"))
    }

    /// Set parameters through `params.flush` while the plugin is inactive, the way a host applies
    /// a project's values before activating.
    pub fn set_params_while_inactive(&mut self, changes: &[(u32, f64)]) -> Result<()> {
        self.flush_params(changes).map(drop)
    }

    /// Switch between real-time and offline (export) rendering; takes effect at the next
    /// activation. Offline, a plugin may take as long as it needs per block, so the whole model
    /// path runs instead of late frames falling back to dry.
    pub fn set_render_mode(&mut self, offline: bool) -> Result<()> {
        let render: PluginRender = self.extension("render")?;
        let mode = if offline {
            RenderMode::Offline
        } else {
            RenderMode::Realtime
        };
        render
            .set(&self.instance.plugin_handle(), mode)
            .map_err(|_| anyhow!("render.set({mode:?}) was refused"))
    }

    /// The latency the plugin reports, in samples.
    pub fn latency(&mut self) -> Result<u32> {
        let latency: PluginLatency = self.extension("latency")?;
        Ok(latency.get(&self.instance.plugin_handle()))
    }

    /// The input (`is_input`) or output audio ports.
    pub fn audio_ports(&mut self, is_input: bool) -> Result<Vec<PortDesc>> {
        let ports: PluginAudioPorts = self.extension("audio-ports")?;
        let handle = self.instance.plugin_handle();
        let mut buffer = AudioPortInfoBuffer::new();
        (0..ports.count(&handle, is_input))
            .map(|index| {
                let info = ports
                    .get(&handle, index, is_input, &mut buffer)
                    .with_context(|| format!("audio_ports.get({index}, {is_input}) failed"))?;
                Ok(PortDesc {
                    name: String::from_utf8_lossy(info.name).into_owned(),
                    channel_count: info.channel_count,
                    is_main: info.flags.contains(AudioPortFlags::IS_MAIN),
                })
            })
            .collect()
    }

    /// The plugin's state, as a host saves it into a project.
    pub fn save_state(&mut self) -> Result<Vec<u8>> {
        let state: PluginState = self.extension("state")?;
        let mut bytes = Vec::new();
        state
            .save(&self.instance.plugin_handle(), &mut bytes)
            .map_err(|e| anyhow!("state.save failed: {e:?}"))?;
        Ok(bytes)
    }

    /// Restore a state that [`save_state`][Self::save_state] returned.
    pub fn load_state(&mut self, bytes: &[u8]) -> Result<()> {
        let state: PluginState = self.extension("state")?;
        state
            .load(
                &self.instance.plugin_handle(),
                &mut std::io::Cursor::new(bytes),
            )
            .map_err(|e| anyhow!("state.load failed: {e:?}"))?;
        self.run_main_thread_callbacks();
        Ok(())
    }

    /// Activate for `sample_rate` with blocks of 1 to `max_block` samples.
    pub fn activate(&mut self, sample_rate: f64, max_block: u32) -> Result<Activated> {
        let configuration = PluginAudioConfiguration {
            sample_rate,
            min_frames_count: 1,
            max_frames_count: max_block,
        };
        let restarts_before = self.restart_requests();
        let mut processor = self
            .instance
            .activate(|_, _| (), configuration)
            .with_context(|| format!("activate({sample_rate} Hz, max {max_block}) failed"))?;
        self.run_main_thread_callbacks();

        // nice-plug reports a latency set in `Plugin::activate` only after activation, by asking
        // for a restart (deactivate + activate), during which it tells the host the latency
        // changed. Hosts serve that restart, so this host does too, once.
        if self.restart_requests() != restarts_before {
            self.instance.deactivate(processor);
            processor = self
                .instance
                .activate(|_, _| (), configuration)
                .with_context(|| format!("reactivate({sample_rate} Hz) after a restart failed"))?;
            self.run_main_thread_callbacks();
        }

        Ok(Activated {
            processor: Some(processor),
            max_block: max_block as usize,
            steady_time: 0,
        })
    }

    /// Deactivate, taking the audio processor back.
    pub fn deactivate(&mut self, activated: Activated) -> Result<()> {
        match activated.processor {
            Some(processor) => self.instance.deactivate(processor),
            None => self
                .instance
                .try_deactivate()
                .context("deactivate failed")?,
        }
        self.run_main_thread_callbacks();
        Ok(())
    }

    /// Whether the plugin is active.
    pub fn is_active(&self) -> bool {
        self.instance.is_active()
    }

    /// Serve a pending `request_callback`, as a host's event loop does.
    pub fn run_main_thread_callbacks(&mut self) {
        let requested = self
            .instance
            .access_shared_handler(|h| h.callback_requested.swap(false, Ordering::SeqCst));
        if requested {
            self.instance.call_on_main_thread_callback();
        }
    }

    /// How often the plugin asked for a restart (deactivate + activate) so far.
    pub fn restart_requests(&self) -> u32 {
        self.instance
            .access_shared_handler(|h| h.restart_requests.load(Ordering::SeqCst))
    }

    /// How often the plugin reported a latency change so far.
    pub fn latency_changes(&self) -> u32 {
        self.instance.access_handler(|h| h.latency_changes.get())
    }

    /// Process a stereo signal on an audio thread in blocks of `block_sizes` (cycled as needed,
    /// each at most the activation's maximum), with `changes` delivered as sample-accurate
    /// `CLAP_EVENT_PARAM_VALUE` events. The test thread serves main-thread callbacks meanwhile.
    /// Output buffers start as NaN for every block, so samples a plugin fails to write show up.
    pub fn process(
        &mut self,
        activated: &mut Activated,
        input: &[Vec<f32>; 2],
        block_sizes: impl Iterator<Item = usize> + Send,
        changes: &[ParamChange],
    ) -> Result<[Vec<f32>; 2]> {
        anyhow::ensure!(
            input[0].len() == input[1].len(),
            "channels differ in length"
        );
        let mut changes = changes.to_vec();
        changes.sort_by_key(|c| c.sample);

        // The processor travels to the audio thread and comes back with the output, as in a real
        // host; meanwhile this (main) thread answers the plugin's `request_callback`s.
        let processor = activated
            .processor
            .take()
            .context("The audio processor was lost by an earlier failed process call")?;
        let max_block = activated.max_block;
        let steady_time = activated.steady_time;
        let (processor, result) = std::thread::scope(|scope| {
            let audio_thread = std::thread::Builder::new()
                .name(String::from("restyle-tests audio"))
                .spawn_scoped(scope, move || {
                    run_audio_thread(
                        processor,
                        input,
                        block_sizes,
                        &changes,
                        max_block,
                        steady_time,
                    )
                })
                .expect("could not spawn the audio thread");
            while !audio_thread.is_finished() {
                self.run_main_thread_callbacks();
                std::thread::sleep(Duration::from_millis(1));
            }
            audio_thread.join().expect("the audio thread panicked")
        });
        activated.processor = Some(processor);
        self.run_main_thread_callbacks();

        let output = result?;
        activated.steady_time += input[0].len() as u64;
        Ok(output)
    }
}

/// The audio thread's work for [`PluginUnderTest::process`]: start processing, run every block,
/// stop processing. Gives the processor back whatever happens.
fn run_audio_thread(
    processor: StoppedPluginAudioProcessor<TestHost>,
    input: &[Vec<f32>; 2],
    block_sizes: impl Iterator<Item = usize>,
    changes: &[ParamChange],
    max_block: usize,
    steady_time: u64,
) -> (StoppedPluginAudioProcessor<TestHost>, Result<[Vec<f32>; 2]>) {
    let mut started = match processor.start_processing() {
        Ok(started) => started,
        Err(err) => {
            return (
                err.into_stopped_processor(),
                Err(anyhow!("start_processing failed")),
            );
        }
    };
    let result = process_blocks(
        &mut started,
        input,
        block_sizes,
        changes,
        max_block,
        steady_time,
    );
    (started.stop_processing(), result)
}

fn process_blocks(
    processor: &mut StartedPluginAudioProcessor<TestHost>,
    input: &[Vec<f32>; 2],
    block_sizes: impl Iterator<Item = usize>,
    changes: &[ParamChange],
    max_block: usize,
    steady_time: u64,
) -> Result<[Vec<f32>; 2]> {
    let total = input[0].len();
    let mut output = [Vec::with_capacity(total), Vec::with_capacity(total)];

    // Everything the loop needs is allocated here, as a real host's audio thread would.
    let mut input_ports = AudioPorts::with_capacity(2, 1);
    let mut output_ports = AudioPorts::with_capacity(2, 1);
    let mut in_block = [vec![0.0f32; max_block], vec![0.0f32; max_block]];
    let mut out_block = [vec![0.0f32; max_block], vec![0.0f32; max_block]];
    let mut in_events = EventBuffer::with_capacity(changes.len());
    let mut out_events = EventBuffer::with_capacity(256);
    let mut next_change = 0;

    let mut start = 0;
    for (block_index, size) in block_sizes.enumerate() {
        if start >= total {
            break;
        }
        anyhow::ensure!(
            (1..=max_block).contains(&size),
            "block size {size} outside 1..={max_block}"
        );
        let len = size.min(total - start);

        for (block, signal) in in_block.iter_mut().zip(input) {
            block[..len].copy_from_slice(&signal[start..start + len]);
        }
        for block in &mut out_block {
            block[..len].fill(f32::NAN);
        }
        in_events.clear();
        while next_change < changes.len() && changes[next_change].sample < start + len {
            let change = changes[next_change];
            let time = change.sample.saturating_sub(start) as u32;
            let id = ClapId::from_raw(change.param_id).context("Invalid CLAP parameter ID")?;
            in_events.push(&ParamValueEvent::new(
                time,
                id,
                Pckn::match_all(),
                change.value,
            ));
            next_change += 1;
        }
        out_events.clear();

        {
            let input_audio = input_ports.with_input_buffers([AudioPortBuffer {
                latency: 0,
                channels: AudioPortBufferType::f32_input_only(
                    in_block
                        .iter_mut()
                        .map(|b| InputChannel::variable(&mut b[..len])),
                ),
            }]);
            let mut output_audio = output_ports.with_output_buffers([AudioPortBuffer {
                latency: 0,
                channels: AudioPortBufferType::f32_output_only(
                    out_block.iter_mut().map(|b| &mut b[..len]),
                ),
            }]);
            processor
                .process(
                    &input_audio,
                    &mut output_audio,
                    &in_events.as_input(),
                    &mut out_events.as_output(),
                    Some(steady_time + start as u64),
                    None,
                )
                .with_context(|| {
                    format!(
                        "process() failed in block {block_index} (samples {start}..{})",
                        start + len
                    )
                })?;
        }

        for (signal, block) in output.iter_mut().zip(&out_block) {
            signal.extend_from_slice(&block[..len]);
        }
        start += len;
    }
    anyhow::ensure!(
        start == total,
        "the block sizes ran out after {start} of {total} samples"
    );

    Ok(output)
}

// The editor (`clap.gui`), and parameter flushes that bring back what the plugin sends.
//
// nice-plug's CLAP wrapper asks nothing more of a host for its editor on Linux than `clap.gui`
// (it unwraps the host's `clap.host.gui` when the editor is created) and `request_callback`:
// baseview runs the editor's X11 event loop on a thread of its own and hands the host only its
// resize and closed notifications through `on_main_thread`. It uses neither `timer-support` nor
// `posix-fd-support`, so this host has neither.

/// What the plugin's editor asked of the window the host embeds it in.
#[derive(Default)]
struct GuiRequests {
    /// Times the plugin said its editor window was closed or lost (`gui.closed`).
    closed: AtomicU32,
    /// The sizes, in pixels, the editor asked its parent window to take (`gui.request_resize`).
    resize_requests: std::sync::Mutex<Vec<(u32, u32)>>,
}

impl clack_extensions::gui::HostGuiImpl for TestHostShared {
    fn resize_hints_changed(&self) {}

    /// Recorded and refused: the tests' host window keeps the size it was made with, and a
    /// refusal tells the plugin to go back to its previous size.
    fn request_resize(&self, new_size: clack_extensions::gui::GuiSize) -> Result<(), HostError> {
        if let Ok(mut requests) = self.gui.resize_requests.lock() {
            requests.push((new_size.width, new_size.height));
        }
        Err(HostError::Message(
            "the test host's window has a fixed size",
        ))
    }

    fn request_show(&self) -> Result<(), HostError> {
        Err(HostError::Message("the test host shows the editor itself"))
    }

    fn request_hide(&self) -> Result<(), HostError> {
        Err(HostError::Message("the test host hides the editor itself"))
    }

    fn closed(&self, _was_destroyed: bool) {
        self.gui.closed.fetch_add(1, Ordering::SeqCst);
    }
}

/// A parameter event the plugin sends the host: its own edits (from its editor), each change
/// inside a gesture, so the host can record them as automation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamOutput {
    GestureBegin {
        param_id: u32,
    },
    /// The new CLAP value (normalized for continuous nice-plug parameters).
    Value {
        param_id: u32,
        value: f64,
    },
    GestureEnd {
        param_id: u32,
    },
}

impl ParamOutput {
    pub fn param_id(&self) -> u32 {
        match *self {
            ParamOutput::GestureBegin { param_id }
            | ParamOutput::Value { param_id, .. }
            | ParamOutput::GestureEnd { param_id } => param_id,
        }
    }
}

/// The parameter events among `events`, in order; any other kind is an error.
fn param_outputs(events: &EventBuffer) -> Result<Vec<ParamOutput>> {
    use clack_host::events::spaces::CoreEventSpace;

    let id = |id: Option<ClapId>| id.map_or(u32::MAX, ClapId::get);
    events
        .iter()
        .map(|event| match event.as_core_event() {
            Some(CoreEventSpace::ParamGestureBegin(e)) => Ok(ParamOutput::GestureBegin {
                param_id: id(e.param_id()),
            }),
            Some(CoreEventSpace::ParamValue(e)) => Ok(ParamOutput::Value {
                param_id: id(e.param_id()),
                value: e.value(),
            }),
            Some(CoreEventSpace::ParamGestureEnd(e)) => Ok(ParamOutput::GestureEnd {
                param_id: id(e.param_id()),
            }),
            _ => Err(anyhow!(
                "the plugin sent an event that is not a parameter event: {:?}",
                event.header()
            )),
        })
        .collect()
}

impl PluginUnderTest {
    /// Whether the plugin can show its editor with window API `api`, embedded in a host window
    /// (`is_floating == false`) or in a window of its own.
    pub fn gui_is_api_supported(
        &mut self,
        api: clack_extensions::gui::GuiApiType<'_>,
        is_floating: bool,
    ) -> Result<bool> {
        let gui: clack_extensions::gui::PluginGui = self.extension("gui")?;
        let configuration = clack_extensions::gui::GuiConfiguration {
            api_type: api,
            is_floating,
        };
        Ok(gui.is_api_supported(&self.instance.plugin_handle(), configuration))
    }

    /// Create the editor for embedding with `api`, at scale 1 (X11 counts in physical pixels),
    /// and return its size in pixels: what the host makes the parent window.
    pub fn gui_create_embedded(
        &mut self,
        api: clack_extensions::gui::GuiApiType<'_>,
    ) -> Result<(u32, u32)> {
        let gui: clack_extensions::gui::PluginGui = self.extension("gui")?;
        let configuration = clack_extensions::gui::GuiConfiguration {
            api_type: api,
            is_floating: false,
        };
        gui.create(&self.instance.plugin_handle(), configuration)
            .map_err(|e| anyhow!("gui.create({api:?}, embedded) failed: {e:?}"))?;
        // A plugin may ignore the scale on X11; a refusal is no error.
        let _ = gui.set_scale(&self.instance.plugin_handle(), 1.0);
        let size = gui
            .get_size(&self.instance.plugin_handle())
            .context("gui.get_size gave no size after gui.create")?;
        self.run_main_thread_callbacks();
        Ok((size.width, size.height))
    }

    /// Embed the created editor in the X11 window `window` (a window ID, as in `clap_window`).
    pub fn gui_set_parent_x11(&mut self, window: u32) -> Result<()> {
        let gui: clack_extensions::gui::PluginGui = self.extension("gui")?;
        let handle = clack_extensions::gui::Window::from_x11_handle(window.into());
        // SAFETY: an X11 window is named by an ID, not a pointer: one that goes away before
        // `gui_destroy` makes the plugin's X requests fail, it cannot make memory invalid.
        unsafe { gui.set_parent(&self.instance.plugin_handle(), handle) }
            .map_err(|e| anyhow!("gui.set_parent(x11 window {window:#x}) failed: {e:?}"))?;
        self.run_main_thread_callbacks();
        Ok(())
    }

    /// Show the embedded editor.
    pub fn gui_show(&mut self) -> Result<()> {
        let gui: clack_extensions::gui::PluginGui = self.extension("gui")?;
        gui.show(&self.instance.plugin_handle())
            .map_err(|e| anyhow!("gui.show failed: {e:?}"))?;
        self.run_main_thread_callbacks();
        Ok(())
    }

    /// Destroy the editor (its window goes; the plugin stays).
    pub fn gui_destroy(&mut self) -> Result<()> {
        let gui: clack_extensions::gui::PluginGui = self.extension("gui")?;
        gui.destroy(&self.instance.plugin_handle());
        self.run_main_thread_callbacks();
        Ok(())
    }

    /// Times the plugin said its editor window was closed or lost (`gui.closed`).
    pub fn gui_closed_reports(&self) -> u32 {
        self.instance
            .access_shared_handler(|h| h.gui.closed.load(Ordering::SeqCst))
    }

    /// The sizes the editor asked its parent window to take, oldest first.
    pub fn gui_resize_requests(&self) -> Vec<(u32, u32)> {
        self.instance.access_shared_handler(|h| {
            h.gui
                .resize_requests
                .lock()
                .map(|r| r.clone())
                .unwrap_or_default()
        })
    }

    /// `params.flush` while inactive, as a host does when the plugin is not processing: `changes`
    /// go in as param-value events (the host's edits), and what the plugin sends back (its own
    /// edits, e.g. from its editor) comes out.
    pub fn flush_params(&mut self, changes: &[(u32, f64)]) -> Result<Vec<ParamOutput>> {
        let params: PluginParams = self.extension("params")?;
        let mut events = EventBuffer::with_capacity(changes.len());
        for &(param_id, value) in changes {
            events.push(&ParamValueEvent::new(
                0,
                ClapId::from_raw(param_id).context("Invalid CLAP parameter ID")?,
                Pckn::match_all(),
                value,
            ));
        }
        let mut out_events = EventBuffer::with_capacity(256);
        let mut handle = self
            .instance
            .inactive_plugin_handle()
            .context("flush_params called on an active plugin (there process() carries events)")?;
        params.flush(&mut handle, &events.as_input(), &mut out_events.as_output());
        self.run_main_thread_callbacks();
        param_outputs(&out_events)
    }

    /// Serve what the plugin asked of the main thread since the last call, as a host's event
    /// loop does while the plugin is inactive: its `on_main_thread` callback, and a parameter
    /// flush when it asked for one (`request_flush`, which nice-plug's editor sends with every
    /// edit). Returns the parameter events the flush brought back.
    pub fn serve_main_thread_requests(&mut self) -> Result<Vec<ParamOutput>> {
        self.run_main_thread_callbacks();
        let flush = self
            .instance
            .access_shared_handler(|h| h.flush_requested.swap(false, Ordering::SeqCst));
        if flush {
            self.flush_params(&[])
        } else {
            Ok(Vec::new())
        }
    }
}
