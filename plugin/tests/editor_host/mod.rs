//! A stand-in for the host, for the editor tests: it applies parameter changes from the editor
//! the way nice-plug's wrappers do and records the gestures (begin / set / end) it was sent.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use nice_plug::prelude::*;
use restyle::editor::Shared;
use restyle::params::RestyleParams;
use restyle::stats::{EngineStats, Status};

/// One call the editor made to the host.
#[derive(Debug, Clone, PartialEq)]
pub enum HostEvent {
    Begin(String),
    Set(String, f32),
    End(String),
    /// The editor asked the host to deactivate and reactivate the plugin.
    Restart,
}

pub struct FakeHost {
    ids: HashMap<ParamPtr, String>,
    pub events: Mutex<Vec<HostEvent>>,
}

impl FakeHost {
    pub fn new(params: &RestyleParams) -> Self {
        let ids = params.param_map().into_iter().map(|(id, ptr, _)| (ptr, id)).collect();
        Self { ids, events: Mutex::new(Vec::new()) }
    }

    fn id(&self, param: ParamPtr) -> String {
        self.ids.get(&param).cloned().unwrap_or_else(|| "<unknown parameter>".to_owned())
    }

    pub fn take_events(&self) -> Vec<HostEvent> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }
}

impl GuiContextInner for FakeHost {
    fn plugin_api(&self) -> PluginApi {
        PluginApi::Clap
    }

    unsafe fn raw_begin_set_parameter(&self, param: ParamPtr) {
        self.events.lock().unwrap().push(HostEvent::Begin(self.id(param)));
    }

    unsafe fn raw_set_parameter_normalized(&self, param: ParamPtr, normalized: f32) {
        // What the wrappers do: set the value, then tell the host.
        unsafe { param._internal_set_normalized_value(normalized) };
        self.events.lock().unwrap().push(HostEvent::Set(self.id(param), normalized));
    }

    unsafe fn raw_end_set_parameter(&self, param: ParamPtr) {
        self.events.lock().unwrap().push(HostEvent::End(self.id(param)));
    }

    fn get_state(&self) -> PluginState {
        unimplemented!("the editor does not read the plugin state")
    }

    fn set_state(&self, _state: PluginState) {}

    fn request_restart(&self) {
        self.events.lock().unwrap().push(HostEvent::Restart);
    }
}

/// A change made by the host (automation, a preset): the value changes without the editor.
pub fn host_sets(param: &impl Param, normalized: f32) {
    unsafe { param.as_ptr()._internal_set_normalized_value(normalized) };
}

/// The shared state of a plugin instance with the default tone model's styles.
pub fn shared() -> Shared {
    let params = Arc::new(RestyleParams::default());
    let styles: Vec<String> = ["Bright", "Warm", "Hollow", "Radio"].map(String::from).to_vec();
    params.style_names.set(&styles);
    let status = Status { model: "tone curves".to_owned(), provider: "cpu".to_owned(), styles, error: None, ..Status::default() };
    Shared {
        params,
        stats: Arc::new(EngineStats::default()),
        status: Arc::new(RwLock::new(status)),
        choose_pack: Arc::new(|_| {}),
    }
}
