//! The editor's controls are the host's parameters: an edit in the editor reaches the host as a
//! parameter gesture (begin, set, end), and a change made by the host shows in the editor. Run
//! headless: egui's `Context::run_ui` with simulated pointer and wheel events.

mod editor_host;

use std::sync::Arc;

use egui::{Event, Modifiers, MouseWheelSource, MouseWheelUnit, PointerButton, Pos2, RawInput, Rect, TouchPhase, Vec2};
use editor_host::{host_sets, shared, FakeHost, HostEvent};
use nice_plug::prelude::*;
use restyle::editor::{self, knob::knob_id, EditorView, Shared};

const SIZE: Vec2 = Vec2::new(920.0, 600.0);

/// One editor window, driven frame by frame.
struct Harness {
    ctx: egui::Context,
    view: EditorView,
    shared: Shared,
    host: Arc<FakeHost>,
    time: f64,
    modifiers: Modifiers,
    texts: Vec<String>,
    /// Where each text was drawn in the last frame.
    text_rects: Vec<(String, Rect)>,
    /// Everything the last frame painted.
    shapes: Vec<egui::epaint::ClippedShape>,
}

impl Harness {
    fn new() -> Self {
        Self::with(shared())
    }

    fn with(shared: Shared) -> Self {
        let host = Arc::new(FakeHost::new(&shared.params));
        let ctx = egui::Context::default();
        editor::theme::apply(&ctx);
        let mut harness = Self { ctx, view: EditorView::default(), shared, host, time: 0.0, modifiers: Modifiers::NONE, texts: Vec::new(), text_rects: Vec::new(), shapes: Vec::new() };
        harness.frame(vec![]);
        harness.frame(vec![]);
        harness.host.take_events();
        harness
    }

    fn frame(&mut self, mut events: Vec<Event>) {
        events.insert(0, Event::ModifiersChanged(self.modifiers));
        let input = RawInput {
            screen_rect: Some(Rect::from_min_size(Pos2::ZERO, SIZE)),
            time: Some(self.time),
            events,
            ..Default::default()
        };
        self.time += 1.0 / 60.0;
        let setter = ParamSetter::new(&*self.host);
        let (view, shared) = (&mut self.view, &self.shared);
        let mut output = self.ctx.run_ui(input, |ui| view.ui(ui, shared, &setter));
        // No renderer here to upload textures to.
        output.textures_delta.clear();
        self.text_rects = editor::shown_text_rects(&output.shapes);
        self.texts = self.text_rects.iter().map(|(text, _)| text.clone()).collect();
        self.shapes = output.shapes;
    }

    /// How many rectangles of `color` the last frame filled inside `area`.
    fn filled_rects(&self, area: Rect, color: egui::Color32) -> usize {
        fn walk(shape: &egui::Shape, area: Rect, color: egui::Color32, n: &mut usize) {
            match shape {
                egui::Shape::Rect(r) if r.fill == color && area.contains_rect(r.rect) => *n += 1,
                egui::Shape::Vec(shapes) => shapes.iter().for_each(|s| walk(s, area, color, n)),
                _ => {}
            }
        }
        let mut n = 0;
        self.shapes.iter().for_each(|clipped| walk(&clipped.shape, area, color, &mut n));
        n
    }

    fn rect_of(&self, id: egui::Id) -> Rect {
        self.ctx.read_response(id).unwrap_or_else(|| panic!("no widget with id {id:?} in the last frame")).rect
    }

    fn press(&self, pos: Pos2, pressed: bool) -> Event {
        Event::PointerButton { pos, button: PointerButton::Primary, pressed, modifiers: self.modifiers }
    }

    /// Presses at `from`, moves by `by` in `steps` frames, releases.
    fn drag(&mut self, from: Pos2, by: Vec2, steps: usize) {
        self.frame(vec![Event::PointerMoved(from)]);
        let press = self.press(from, true);
        self.frame(vec![press]);
        for i in 1..=steps {
            self.frame(vec![Event::PointerMoved(from + by * (i as f32 / steps as f32))]);
        }
        let release = self.press(from + by, false);
        self.frame(vec![release]);
        self.frame(vec![]);
    }

    fn click(&mut self, at: Pos2) {
        self.frame(vec![Event::PointerMoved(at)]);
        let (down, up) = (self.press(at, true), self.press(at, false));
        self.frame(vec![down, up]);
        self.frame(vec![]);
    }

    /// Where `text` was drawn last in the last frame: on top, where a popup is.
    fn text_at(&self, text: &str) -> Pos2 {
        let found = self.text_rects.iter().rev().find(|(t, _)| t == text);
        found.unwrap_or_else(|| panic!("{text:?} is not shown: {:?}", self.texts)).1.center()
    }

    fn shows(&self, text: &str) -> bool {
        self.texts.iter().any(|t| t == text)
    }
}

/// The gestures must come as one begin, some sets, one end, all for `id`.
fn assert_one_gesture(events: &[HostEvent], id: &str) {
    assert!(!events.is_empty(), "the host heard nothing");
    assert_eq!(events.first(), Some(&HostEvent::Begin(id.to_owned())), "{events:?}");
    assert_eq!(events.last(), Some(&HostEvent::End(id.to_owned())), "{events:?}");
    let sets = events.iter().filter(|e| matches!(e, HostEvent::Set(p, _) if p == id)).count();
    assert!(sets >= 1, "no value was sent: {events:?}");
    assert_eq!(sets + 2, events.len(), "stray events: {events:?}");
}

#[test]
fn dragging_a_knob_up_sets_the_host_parameter_in_one_gesture() {
    let mut h = Harness::new();
    let knob = h.rect_of(knob_id(&h.shared.params.input_gain));
    let before = h.shared.params.input_gain.unmodulated_normalized_value();
    // Press, move 50 points up in five frames (checking the value floats by the pointer), release.
    let from = knob.center();
    h.frame(vec![Event::PointerMoved(from)]);
    let press = h.press(from, true);
    h.frame(vec![press]);
    for i in 1..=5 {
        h.frame(vec![Event::PointerMoved(from + Vec2::new(0.0, -10.0 * i as f32))]);
        let value = h.shared.params.input_gain.to_string();
        assert!(h.texts.iter().filter(|t| **t == value).count() >= 2, "{value} under the knob and beside the pointer: {:?}", h.texts);
    }
    let release = h.press(from + Vec2::new(0.0, -50.0), false);
    h.frame(vec![release]);
    h.frame(vec![]);
    let after = h.shared.params.input_gain.unmodulated_normalized_value();
    // 200 points for the whole range: 50 points up is a quarter of it.
    assert!((after - before - 0.25).abs() < 0.03, "normalized {before} -> {after}");
    assert_one_gesture(&h.host.take_events(), "in_gain");
    assert!(h.shows(&h.shared.params.input_gain.to_string()), "the knob does not show its new value");
}

#[test]
fn shift_drag_is_ten_times_finer() {
    let mut h = Harness::new();
    h.modifiers = Modifiers::SHIFT;
    let knob = h.rect_of(knob_id(&h.shared.params.output_gain));
    let before = h.shared.params.output_gain.unmodulated_normalized_value();
    h.drag(knob.center(), Vec2::new(0.0, -50.0), 5);
    let after = h.shared.params.output_gain.unmodulated_normalized_value();
    assert!((after - before - 0.025).abs() < 0.005, "normalized {before} -> {after}");
    assert_one_gesture(&h.host.take_events(), "out_gain");
}

#[test]
fn double_click_resets_a_knob_to_its_default() {
    let mut h = Harness::new();
    host_sets(&h.shared.params.blends[1].amount, 0.7);
    h.frame(vec![]);
    let knob = h.rect_of(knob_id(&h.shared.params.blends[1].amount));
    h.frame(vec![Event::PointerMoved(knob.center())]);
    let events = vec![h.press(knob.center(), true), h.press(knob.center(), false)];
    h.frame(events.clone());
    h.frame(events);
    h.frame(vec![]);
    assert_eq!(h.shared.params.blends[1].amount.value(), 0.0);
    assert_one_gesture(&h.host.take_events(), "blend_2");
    assert!(h.shows("0 %"));
}

#[test]
fn scrolling_over_a_knob_steps_it() {
    let mut h = Harness::new();
    host_sets(&h.shared.params.mix, 0.5);
    h.frame(vec![]);
    let knob = h.rect_of(knob_id(&h.shared.params.mix));
    h.frame(vec![Event::PointerMoved(knob.center())]);
    let wheel = |lines: f32| Event::MouseWheel {
        unit: MouseWheelUnit::Line,
        delta: Vec2::new(0.0, lines),
        phase: TouchPhase::Move,
        source: MouseWheelSource::Wheel,
        modifiers: Modifiers::NONE,
    };
    h.frame(vec![wheel(1.0)]);
    h.frame(vec![wheel(1.0)]);
    h.frame(vec![]);
    let after = h.shared.params.mix.unmodulated_normalized_value();
    assert!((after - 0.54).abs() < 1e-4, "mix {after}");
    let events = h.host.take_events();
    assert_eq!(events.iter().filter(|e| matches!(e, HostEvent::Begin(_))).count(), 2, "{events:?}");
    assert_eq!(events.iter().filter(|e| matches!(e, HostEvent::End(_))).count(), 2, "{events:?}");
}

#[test]
fn a_host_change_shows_in_the_editor() {
    let mut h = Harness::new();
    assert!(h.shows("100 %"), "Style Mix should start at 100 %: {:?}", h.texts);
    host_sets(&h.shared.params.mix, 0.25);
    host_sets(&h.shared.params.output_gain, h.shared.params.output_gain.preview_normalized(nice_plug::util::db_to_gain(6.0)));
    h.frame(vec![]);
    assert!(h.shows("25 %"), "{:?}", h.texts);
    assert!(h.shows("6.0 dB"), "{:?}", h.texts);
    assert!(!h.shows("100 %"));
    assert!(h.host.take_events().is_empty(), "showing a value must not send it back to the host");
}

#[test]
fn the_style_selector_offers_the_packs_styles_and_sets_the_style_parameter() {
    let mut h = Harness::new();
    for name in ["Bright", "Warm", "Hollow", "Radio"] {
        assert!(h.texts.iter().filter(|t| *t == name).count() >= 2, "{name}: a button and a knob label: {:?}", h.texts);
    }
    // One blend knob per style of the pack, no more.
    assert!(h.ctx.read_response(knob_id(&h.shared.params.blends[3].amount)).is_some());
    assert!(h.ctx.read_response(knob_id(&h.shared.params.blends[4].amount)).is_none());

    let button = h.rect_of(editor::style_button_id(2));
    h.click(button.center());
    assert_eq!(h.shared.params.style.value(), 2);
    assert_one_gesture(&h.host.take_events(), "style");

    // A pack with two styles: two knobs.
    h.shared.status.write().unwrap().styles.truncate(2);
    h.frame(vec![]);
    h.frame(vec![]);
    assert!(h.ctx.read_response(knob_id(&h.shared.params.blends[2].amount)).is_none());
}

#[test]
fn the_bypass_button_toggles_the_host_bypass() {
    let mut h = Harness::new();
    assert!(h.shows("BYPASS"));
    let button = h.rect_of(editor::bypass_button_id());
    h.click(button.center());
    assert!(h.shared.params.bypass.value());
    assert_one_gesture(&h.host.take_events(), "bypass");
    assert!(h.shows("BYPASSED"));
    host_sets(&h.shared.params.bypass, 0.0);
    h.frame(vec![]);
    assert!(h.shows("BYPASS"));
}

#[test]
fn the_status_line_reports_provider_timing_late_frames_latency_and_errors() {
    use std::sync::atomic::Ordering::Relaxed;
    let mut h = Harness::new();
    let stats = &h.shared.stats;
    stats.latency_samples.store(383, Relaxed);
    stats.sample_rate.store(48_000, Relaxed);
    stats.frames_submitted.store(1000, Relaxed);
    stats.late_frames.store(3, Relaxed);
    stats.record_inference(0.10);
    stats.record_inference(0.30);
    h.frame(vec![]);
    for expected in ["CPU", "tone curves", "0.20 ms mean · 0.30 ms max", "3 late frames (0.3 %)", "latency 383 samples · 8.0 ms"] {
        assert!(h.shows(expected), "{expected:?} not in {:?}", h.texts);
    }
    h.shared.status.write().unwrap().error = Some("libonnxruntime not found".to_owned());
    h.frame(vec![]);
    assert!(h.texts.iter().any(|t| t.contains("libonnxruntime not found")), "{:?}", h.texts);
}

#[test]
fn meters_and_spectrogram_follow_the_engine() {
    use std::sync::atomic::Ordering::Relaxed;
    let mut h = Harness::new();
    h.shared.stats.input_peak[0].store(0.5, Relaxed);
    for band in 0..restyle::stats::SPECTRUM_BANDS {
        h.shared.stats.spectrum_out.0[band].store(if band == 20 { -10.0 } else { -120.0 }, Relaxed);
    }
    let before = h.view.spectrograms.output.len();
    for _ in 0..10 {
        h.frame(vec![]);
    }
    assert!(h.view.spectrograms.output.len() >= before + 9, "the spectrogram does not scroll");
    let newest = h.view.spectrograms.output.newest(0).unwrap();
    assert_eq!(newest[20], -10.0);
    assert!(h.shows("-6.0"), "input meter readout: {:?}", h.texts);
}

/// A meter has a bar per channel of the running engine: two for a stereo track (and before any
/// engine ran), one for a mono track.
#[test]
fn the_meters_show_a_bar_per_channel() {
    use restyle::editor::theme;
    use std::sync::atomic::Ordering::Relaxed;
    let mut h = Harness::new();
    for peak in [&h.shared.stats.input_peak, &h.shared.stats.output_peak] {
        peak.iter().for_each(|p| p.store(0.5, Relaxed));
    }
    for (channels, bars) in [(0, 2), (2, 2), (1, 1)] {
        h.shared.stats.channels.store(channels, Relaxed);
        h.frame(vec![]);
        for meter in ["restyle-input-meter", "restyle-output-meter"] {
            let area = h.rect_of(egui::Id::unique(meter));
            assert_eq!(h.filled_rects(area, theme::ACCENT), bars, "{meter} with {channels} channel(s)");
        }
    }
}

#[test]
fn the_editor_size_is_kept_in_the_plugin_state() {
    let shared = shared();
    let fields = shared.params.serialize_fields();
    assert!(fields.contains_key("editor-state") && fields.contains_key("pack"), "{fields:?}");
    let mut restored = fields.clone();
    restored.insert("editor-state".to_owned(), r#"{"width":1200,"height":800}"#.to_owned());
    restored.insert("pack".to_owned(), r#""Choir""#.to_owned());
    shared.params.deserialize_fields(&restored);
    assert_eq!(shared.params.editor_state.load(), editor::EditorSize { width: 1200, height: 800 });
    assert_eq!(shared.params.pack.read().unwrap().as_deref(), Some("Choir"));
    let ed = editor::create(shared.params.clone(), shared.stats.clone(), shared.status.clone(), shared.choose_pack.clone()).unwrap();
    let size = Editor::size(&ed);
    assert_eq!((size.width, size.height), (1200, 800));
    assert!(Editor::resize_hint(&ed).can_resize);
}

#[test]
fn the_pack_list_is_default_plus_the_folders_in_the_user_pack_folder() {
    use editor::packs::scan;
    use restyle::loader::pack_dir_from;
    use std::path::PathBuf;
    assert_eq!(pack_dir_from(Some("/x".into()), Some("/home/u".into())), Some(PathBuf::from("/x/restyle/packs")));
    assert_eq!(pack_dir_from(None, Some("/home/u".into())), Some(PathBuf::from("/home/u/.local/share/restyle/packs")));
    assert_eq!(pack_dir_from(Some("relative".into()), Some("/home/u".into())), Some(PathBuf::from("/home/u/.local/share/restyle/packs")));
    let dir = std::env::temp_dir().join(format!("restyle-packs-{}", std::process::id()));
    for name in ["strings", "Brass", ".hidden"] {
        std::fs::create_dir_all(dir.join(name)).unwrap();
    }
    std::fs::write(dir.join("notes.txt"), "not a pack").unwrap();
    assert_eq!(scan(&dir), vec!["Brass".to_owned(), "strings".to_owned()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(scan(&dir).is_empty());

    let h = Harness::new();
    assert!(h.shows("Default"), "{:?}", h.texts);
}

/// The pack menu also says where the models run: choosing CPU sets the saved setting and asks
/// the plugin to reload the running pack on it (the switch itself is tested in tests/onnx.rs).
#[test]
fn the_pack_menu_sets_where_the_models_run_and_reloads_the_pack() {
    use restyle::onnx::Provider;
    use restyle::switch::PackRequest;
    use std::sync::Mutex;
    let requests = Arc::new(Mutex::new(Vec::new()));
    let mut shared = shared();
    let heard = requests.clone();
    shared.choose_pack = Arc::new(move |request| heard.lock().unwrap().push(request));
    let mut h = Harness::with(shared);
    let menu = h.text_at("Default");
    h.click(menu);
    // A popup is measured in its first frame and placed in the next.
    h.frame(vec![]);
    assert!(h.shows("Runs on"), "the menu is open: {:?}", h.texts);
    let cpu = h.text_at("CPU");
    h.click(cpu);
    assert_eq!(*h.shared.params.provider.read().unwrap(), Provider::Cpu);
    assert_eq!(*requests.lock().unwrap(), vec![PackRequest(None)]);
    assert!(h.host.take_events().is_empty(), "no host parameter changes");
}

/// The pack menu's latency choice is saved and asks the host for a restart, since the engine
/// takes it at activation; until the running engine has it, the menu says so.
#[test]
fn the_pack_menu_sets_the_latency_mode_and_asks_the_host_to_restart() {
    use restyle::engine::LatencyMode;
    let mut h = Harness::new();
    let menu = h.text_at("Default");
    h.click(menu);
    h.frame(vec![]);
    assert!(h.shows("Latency") && h.shows("Safe"), "the menu is open: {:?}", h.texts);
    assert!(!h.shows("Applies when the host restarts the plugin"), "{:?}", h.texts);
    let safe = h.text_at("Safe");
    h.click(safe);
    assert_eq!(*h.shared.params.latency_mode.read().unwrap(), LatencyMode::Safe);
    assert_eq!(h.host.take_events(), vec![HostEvent::Restart]);
    let reopen = |h: &mut Harness| {
        if !h.shows("Latency") {
            let menu = h.text_at("Default");
            h.click(menu);
            h.frame(vec![]);
        }
        assert!(h.shows("Latency"), "the menu is open: {:?}", h.texts);
    };
    reopen(&mut h);
    assert!(h.shows("Applies when the host restarts the plugin"), "{:?}", h.texts);
    // The host restarted the plugin: the running engine has the mode the setting asks for.
    h.shared.status.write().unwrap().latency_mode = LatencyMode::Safe;
    h.frame(vec![]);
    reopen(&mut h);
    assert!(!h.shows("Applies when the host restarts the plugin"), "{:?}", h.texts);
    assert!(h.host.take_events().is_empty(), "one restart per change");
}
