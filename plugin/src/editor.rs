//! The plugin's editor (egui through nice-plug-egui): style selection with a blend knob per
//! style, style mix, input and output gain and bypass — each one the host parameter itself —
//! plus input/output meters, a live spectrogram of input and output, the style meter, the pack
//! selector and a status line with the engine's live figures.
//!
//! [`EditorView`] draws everything into an egui `Ui` and knows nothing about windows, so tests
//! drive it headless; [`RestyleEditor`] puts it in a resizable window whose size is kept in the
//! plugin state.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crossbeam::atomic::AtomicCell;
use egui::{Align2, Color32, CornerRadius, Id, Pos2, Rect, Sense, Stroke, Ui, Vec2};
use nice_plug::editor::dpi::{LogicalSize, NativeSize, Size};
use nice_plug::editor::{HostMethods, ParentWindowHandle, ResizeHint, SpawnedEditor};
use nice_plug::context::gui::GuiContext;
use nice_plug::prelude::{Editor, ParamSetter, TrackInfo};
use nice_plug_egui::resizable_window::ResizableWindow;
use nice_plug_egui::{EguiEditor, EguiEditorState, EguiNiceSettings, Frame, NiceEguiApp, RepaintNotifier};
use serde::{Deserialize, Serialize};

use crate::engine::{LatencyMode, MAX_CHANNELS};
use crate::model::MAX_STYLES;
use crate::params::RestyleParams;
use crate::onnx::Provider;
use crate::switch::PackRequest;
use crate::stats::{EngineStats, Status};

pub mod knob;
pub mod meter;
pub mod packs;
pub mod spectrogram;
pub mod status;
pub mod style_meter;
pub mod theme;
pub mod window;

use knob::Knob;

/// The editor's size when it first opens, in logical pixels.
pub const DEFAULT_SIZE: EditorSize = EditorSize { width: 920, height: 600 };
/// The smallest size at which everything still fits.
pub const MIN_SIZE: EditorSize = EditorSize { width: 760, height: 500 };
/// The largest size a saved state may ask for: an 8K screen.
pub const MAX_SIZE: EditorSize = EditorSize { width: 7680, height: 4320 };
/// How often the editor repaints while open, for the meters and the spectrogram (30 per second:
/// smooth enough, and light on a host that is busy with audio).
const FRAME_INTERVAL: Duration = Duration::from_millis(33);

/// The editor's size in logical pixels, as kept in the plugin state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditorSize {
    pub width: u32,
    pub height: u32,
}

/// The persisted editor size (`#[persist = "editor-state"]` in the parameters): written when the
/// window is resized, read when it opens.
pub type EditorSizeState = AtomicCell<EditorSize>;

pub fn default_size_state() -> Arc<EditorSizeState> {
    Arc::new(AtomicCell::new(DEFAULT_SIZE))
}

/// Asks the plugin to switch packs; the switch happens on a background thread (see
/// [`crate::switch`]).
pub type PackChooser = Arc<dyn Fn(PackRequest) + Send + Sync>;

/// What the editor reads: the parameters, the engine's live figures and its status in words.
#[derive(Clone)]
pub struct Shared {
    pub params: Arc<RestyleParams>,
    pub stats: Arc<EngineStats>,
    pub status: Arc<RwLock<Status>>,
    pub choose_pack: PackChooser,
}

/// The editor for [`crate::Restyle`]; `None` never happens but keeps the signature of
/// `Plugin::editor`.
pub fn create(
    params: Arc<RestyleParams>,
    stats: Arc<EngineStats>,
    status: Arc<RwLock<Status>>,
    choose_pack: PackChooser,
) -> Option<RestyleEditor> {
    Some(RestyleEditor { shared: Shared { params, stats, status, choose_pack }, open: Mutex::new(None) })
}

/// The host-facing editor. A fresh egui editor is made each time the window opens, at the size
/// kept in the plugin state (which a host may have restored after the plugin was created).
pub struct RestyleEditor {
    shared: Shared,
    /// The egui editor of the window that is open (or was last open), for its live size.
    open: Mutex<Option<EguiEditor<EditorApp>>>,
}

fn resize_hint() -> ResizeHint {
    ResizeHint::resizable().with_min_logical_size(LogicalSize::new(MIN_SIZE.width as f32, MIN_SIZE.height as f32))
}

impl RestyleEditor {
    fn saved_size(&self) -> EditorSize {
        let size = self.shared.params.editor_state.load();
        EditorSize { width: size.width.max(MIN_SIZE.width), height: size.height.max(MIN_SIZE.height) }
    }
}

impl Editor for RestyleEditor {
    type Handle = window::Handle;

    fn spawn(
        &self,
        parent: Option<ParentWindowHandle>,
        wait_for_parent: bool,
        fallback_scale_factor: Option<f64>,
        gui_context: GuiContext,
        host: Option<HostMethods>,
    ) -> Result<SpawnedEditor<Self::Handle>, Box<dyn std::error::Error>> {
        let size = self.saved_size();
        let state = EguiEditorState::from_size(LogicalSize::new(size.width as f64, size.height as f64), 1.0);
        let settings = EguiNiceSettings::new().with_tile("Restyle").with_resize_hint(resize_hint());
        let (exit_signal, exited) = window::exit_channel();
        let app = EditorApp { shared: self.shared.clone(), view: EditorView::default(), gui: None, exit_signal: Some(exit_signal) };
        let editor = nice_plug_egui::create_egui_editor(state, RepaintNotifier::new(), settings, app)
            .ok_or("nice-plug-egui made no editor")?;
        let spawned = editor.spawn(parent, wait_for_parent, fallback_scale_factor, gui_context, host)?;
        if let Ok(mut open) = self.open.lock() {
            *open = Some(editor);
        }
        Ok(window::spawned(spawned, exited))
    }

    fn size(&self) -> NativeSize<u32> {
        if let Some(editor) = self.open.lock().ok().as_ref().and_then(|open| open.as_ref()) {
            return editor.size();
        }
        let size = self.saved_size();
        NativeSize::from_size(Size::Logical(LogicalSize::new(size.width as f64, size.height as f64)), 1.0)
    }

    fn resize_hint(&self) -> ResizeHint {
        resize_hint()
    }

    fn track_info_updated(&self, info: TrackInfo) {
        if let Some(editor) = self.open.lock().ok().as_ref().and_then(|open| open.as_ref()) {
            editor.track_info_updated(info);
        }
    }
}

/// The egui app of one open window.
pub struct EditorApp {
    shared: Shared,
    view: EditorView,
    /// Set when the window opens: the way to the host's parameters.
    gui: Option<GuiContext>,
    /// Handed to the window's thread when the window is built (see [`window`]).
    exit_signal: Option<window::ExitSignal>,
}

impl NiceEguiApp for EditorApp {
    fn build(
        &mut self,
        egui_ctx: egui::Context,
        nice_gui_ctx: GuiContext,
        frame: &mut Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        theme::apply(&egui_ctx);
        frame.set_clear_color(theme::BACKGROUND.into());
        self.gui = Some(nice_gui_ctx);
        self.view = EditorView::default();
        if let Some(signal) = self.exit_signal.take() {
            signal.arm();
        }
        Ok(())
    }

    fn ui(&mut self, ui: &mut Ui, _frame: &mut Frame) {
        let Some(gui) = &self.gui else { return };
        let setter = gui.param_setter();
        let (view, shared) = (&mut self.view, &self.shared);
        ResizableWindow::new("restyle-editor")
            .min_size(Vec2::new(MIN_SIZE.width as f32, MIN_SIZE.height as f32))
            .show(ui, |ui| view.ui(ui, shared, &setter));
        ui.ctx().request_repaint_after(FRAME_INTERVAL);
    }

    fn resized(&mut self, new_size: nice_plug_egui::baseview::WindowSize) {
        let logical = new_size.logical;
        self.shared.params.editor_state.store(EditorSize {
            width: (logical.width.round() as u32).max(MIN_SIZE.width),
            height: (logical.height.round() as u32).max(MIN_SIZE.height),
        });
    }

    fn editor_closed(&mut self) {
        self.gui = None;
    }
}

/// egui ids of the controls that are not knobs, so tests can find them.
pub fn style_button_id(slot: usize) -> Id {
    Id::unique(("restyle-style", slot))
}

pub fn bypass_button_id() -> Id {
    Id::unique("restyle-bypass")
}

/// Everything the editor shows, drawn into whatever `Ui` it is given; the state it keeps between
/// frames is the displays' history (spectrogram, peak holds, smoothed style meter, pack list).
#[derive(Default)]
pub struct EditorView {
    pub spectrograms: spectrogram::Spectrograms,
    input_hold: meter::PeakHold,
    output_hold: meter::PeakHold,
    confidence: style_meter::Smoothed,
    packs: packs::PackList,
}

/// The style names of the current pack (at least one, at most [`MAX_STYLES`]).
pub fn style_names(shared: &Shared) -> Vec<String> {
    let from_status = shared.status.try_read().map(|s| s.styles.clone()).unwrap_or_default();
    let mut names = if from_status.is_empty() { vec![shared.params.style_names.name(0)] } else { from_status };
    names.truncate(MAX_STYLES);
    names
}

/// The editor's layout, computed from the window's rectangle.
struct Layout {
    header: Rect,
    input_meter: Rect,
    output_meter: Rect,
    styles: Rect,
    mix: Rect,
    spectrogram: Rect,
    status: Rect,
}

impl Layout {
    fn new(full: Rect) -> Self {
        let margin = 16.0;
        let inner = full.shrink(margin);
        let status_h = 26.0;
        let status = Rect::from_min_max(Pos2::new(full.left(), full.bottom() - status_h), full.max);
        let spectrogram_h = (full.height() * 0.28).clamp(110.0, 260.0);
        let spectrogram = Rect::from_min_max(
            Pos2::new(inner.left(), status.top() - 12.0 - spectrogram_h),
            Pos2::new(inner.right(), status.top() - 12.0),
        );
        let header = Rect::from_min_size(inner.min, Vec2::new(inner.width(), 36.0));
        let middle = Rect::from_min_max(Pos2::new(inner.left(), header.bottom() + 14.0), Pos2::new(inner.right(), spectrogram.top() - 14.0));
        let meter_w = 56.0;
        let input_meter = Rect::from_min_max(middle.min, Pos2::new(middle.left() + meter_w, middle.bottom()));
        let output_meter = Rect::from_min_max(Pos2::new(middle.right() - meter_w, middle.top()), middle.max);
        let cards = Rect::from_min_max(Pos2::new(input_meter.right() + 14.0, middle.top()), Pos2::new(output_meter.left() - 14.0, middle.bottom()));
        let mix_w = (cards.width() * 0.3).clamp(190.0, 250.0);
        let mix = Rect::from_min_max(Pos2::new(cards.right() - mix_w, cards.top()), cards.max);
        let styles = Rect::from_min_max(cards.min, Pos2::new(mix.left() - 12.0, cards.bottom()));
        Self { header, input_meter, output_meter, styles, mix, spectrogram, status }
    }
}

fn card(painter: &egui::Painter, rect: Rect, caption: &str) -> Rect {
    painter.rect_filled(rect, 8.0, theme::mix(theme::BACKGROUND, theme::PANEL, 0.7));
    painter.rect_stroke(rect, 8.0, Stroke::new(1.0, theme::mix(theme::PANEL, theme::LINE, 0.5)), egui::StrokeKind::Inside);
    let galley = painter.layout_job(theme::caption_job(caption, theme::TEXT_DIM));
    painter.galley(rect.min + Vec2::new(14.0, 11.0), galley, theme::TEXT_DIM);
    Rect::from_min_max(rect.min + Vec2::new(14.0, 32.0), rect.max - Vec2::new(14.0, 12.0))
}

impl EditorView {
    /// Draws the whole editor into `ui`'s rectangle; every control edits its host parameter
    /// through `setter`.
    pub fn ui(&mut self, ui: &mut Ui, shared: &Shared, setter: &ParamSetter) {
        let full = ui.max_rect();
        let now = ui.input(|i| i.time);
        ui.painter().rect_filled(full, 0.0, theme::BACKGROUND);
        let layout = Layout::new(full);
        let params = &shared.params;
        let stats = &shared.stats;
        let styles = style_names(shared);

        self.header(ui, layout.header, shared, setter);

        // Meters at the sides.
        let input_peaks = [stats.input_peak[0].load(Relaxed), stats.input_peak[1].load(Relaxed)];
        let output_peaks = [stats.output_peak[0].load(Relaxed), stats.output_peak[1].load(Relaxed)];
        let input_held = self.input_hold.update(input_peaks, now);
        let output_held = self.output_hold.update(output_peaks, now);
        let channels = match stats.channels.load(Relaxed) {
            0 => MAX_CHANNELS,
            n => (n as usize).min(MAX_CHANNELS),
        };
        meter::paint(ui.painter(), layout.input_meter, "IN", input_peaks, input_held, channels, true);
        meter::paint(ui.painter(), layout.output_meter, "OUT", output_peaks, output_held, channels, false);
        ui.interact(layout.input_meter, Id::unique("restyle-input-meter"), Sense::hover())
            .on_hover_text("Input level (peak, dBFS), after the input gain is applied inside the engine's path");
        ui.interact(layout.output_meter, Id::unique("restyle-output-meter"), Sense::hover())
            .on_hover_text("Output level (peak, dBFS)");

        self.styles_card(ui, layout.styles, shared, setter, &styles, now);
        self.mix_card(ui, layout.mix, params, setter);

        self.spectrograms.sample(now, &stats.spectrum_in, &stats.spectrum_out);
        self.spectrograms.paint(ui, layout.spectrogram);
        ui.interact(layout.spectrogram, Id::unique("restyle-spectrogram"), Sense::hover())
            .on_hover_text("Spectrogram of the input (top) and the output (bottom), newest on the right, 40 Hz – 20 kHz");

        self.status_line(ui, layout.status, shared);
    }

    fn header(&mut self, ui: &mut Ui, rect: Rect, shared: &Shared, setter: &ParamSetter) {
        let painter = ui.painter();
        let mut title = egui::text::LayoutJob::default();
        title.append(
            "RESTYLE",
            0.0,
            egui::TextFormat { font_id: theme::title_font(), color: theme::ACCENT, extra_letter_spacing: 3.0, ..Default::default() },
        );
        let title = painter.layout_job(title);
        let title_w = title.size().x;
        painter.galley(Pos2::new(rect.left(), rect.center().y - title.size().y / 2.0), title, theme::ACCENT);
        painter.text(
            Pos2::new(rect.left() + title_w + 14.0, rect.center().y + 1.0),
            Align2::LEFT_CENTER,
            "neural style transfer",
            theme::label_font(),
            theme::TEXT_DIM,
        );

        // Bypass, at the right.
        let bypass_rect = Rect::from_min_size(Pos2::new(rect.right() - 96.0, rect.center().y - 15.0), Vec2::new(96.0, 30.0));
        self.bypass_button(ui, bypass_rect, &shared.params, setter);

        // The pack selector, left of it.
        let pack_rect = Rect::from_min_size(Pos2::new(bypass_rect.left() - 16.0 - 230.0, rect.center().y - 15.0), Vec2::new(230.0, 30.0));
        self.pack_selector(ui, pack_rect, shared, setter);
    }

    fn bypass_button(&self, ui: &mut Ui, rect: Rect, params: &RestyleParams, setter: &ParamSetter) {
        let response = ui.interact(rect, bypass_button_id(), Sense::click());
        let on = params.bypass.value();
        if response.clicked() {
            setter.begin_set_parameter(&params.bypass);
            setter.set_parameter(&params.bypass, !on);
            setter.end_set_parameter(&params.bypass);
        }
        let on = params.bypass.value();
        let (fill, stroke, text) = if on {
            (theme::ACCENT, theme::ACCENT, theme::BACKGROUND)
        } else if response.hovered() {
            (theme::RAISED, theme::ACCENT_DIM, theme::TEXT)
        } else {
            (theme::RAISED, theme::LINE, theme::TEXT_DIM)
        };
        let painter = ui.painter();
        painter.rect_filled(rect, 15.0, fill);
        painter.rect_stroke(rect, 15.0, Stroke::new(1.0, stroke), egui::StrokeKind::Inside);
        let dot = Pos2::new(rect.left() + 16.0, rect.center().y);
        painter.circle_filled(dot, 3.5, if on { theme::BACKGROUND } else { theme::TEXT_FAINT });
        painter.text(Pos2::new(rect.center().x + 7.0, rect.center().y), Align2::CENTER_CENTER, if on { "BYPASSED" } else { "BYPASS" }, theme::caption_font(), text);
        response.on_hover_text("Bypass: the dry signal, delayed by the plugin's latency so it stays aligned (host parameter)");
    }

    fn pack_selector(&mut self, ui: &mut Ui, rect: Rect, shared: &Shared, setter: &ParamSetter) {
        self.packs.refresh_if_stale();
        let chosen = shared.params.pack.read().map(|p| p.clone()).unwrap_or_default();
        let shown = match &chosen {
            None => packs::DEFAULT_PACK.to_owned(),
            Some(name) if self.packs.names.contains(name) => name.clone(),
            Some(name) => format!("{name} (missing)"),
        };
        let painter = ui.painter();
        painter.text(Pos2::new(rect.left() - 10.0, rect.center().y), Align2::RIGHT_CENTER, "PACK", theme::caption_font(), theme::TEXT_DIM);
        let mut selection = chosen.clone();
        let running_on = shared.params.provider.read().map(|p| *p).unwrap_or_default();
        let mut provider = running_on;
        let latency_setting = shared.params.latency_mode.read().map(|m| *m).unwrap_or_default();
        let latency_running = shared.status.try_read().map(|s| s.latency_mode).unwrap_or(latency_setting);
        let mut latency = latency_setting;
        ui.scope_builder(egui::UiBuilder::new().max_rect(rect), |ui| {
            ui.spacing_mut().interact_size.y = rect.height();
            egui::ComboBox::from_id_salt("restyle-pack")
                .width(rect.width())
                .height(320.0)
                .selected_text(shown)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut selection, None, format!("{} (built in)", packs::DEFAULT_PACK));
                    for name in &self.packs.names {
                        ui.selectable_value(&mut selection, Some(name.clone()), name);
                    }
                    ui.separator();
                    let folder = self.packs.dir.as_ref().map_or("no home folder".to_owned(), |d| d.display().to_string());
                    ui.label(egui::RichText::new(format!("Packs are folders in\n{folder}")).small().color(theme::TEXT_DIM));
                    ui.separator();
                    choice_row(ui, "Runs on", &mut provider, [
                        (Provider::Auto, "Auto", "A GPU when ONNX Runtime has one (CUDA, DirectML), else the CPU"),
                        (Provider::Cpu, "CPU", "Always the CPU: one thread, the lowest and steadiest latency"),
                        (Provider::Gpu, "GPU", "The GPU; if none starts, the CPU, with the reason in the status line"),
                    ]);
                    ui.separator();
                    choice_row(ui, "Latency", &mut latency, [
                        (LatencyMode::Lowest, "Lowest", "The least latency the host's block size allows"),
                        (LatencyMode::Safe, "Safe", "2.7 ms more: each frame has a hop longer to come back, so a busy machine plays fewer frames unstyled"),
                    ]);
                    if latency_setting != latency_running {
                        ui.label(egui::RichText::new("Applies when the host restarts the plugin").small().color(theme::WARNING));
                    }
                })
                .response
                .on_hover_text("The model pack: the built-in default, or one of your own packs");
        });
        if provider != running_on {
            if let Ok(mut setting) = shared.params.provider.write() {
                *setting = provider;
            }
        }
        if latency != latency_setting {
            if let Ok(mut setting) = shared.params.latency_mode.write() {
                *setting = latency;
            }
            // The engine takes the mode at activation, where the host hears the new latency.
            setter.raw_context.request_restart();
        }
        if selection != chosen || provider != running_on {
            if let Ok(mut pack) = shared.params.pack.write() {
                pack.clone_from(&selection);
            }
            (shared.choose_pack)(PackRequest(selection));
        }
    }

    fn styles_card(&mut self, ui: &mut Ui, rect: Rect, shared: &Shared, setter: &ParamSetter, styles: &[String], now: f64) {
        let content = card(ui.painter(), rect, "Style");
        let params = &shared.params;
        let n = styles.len().max(1);
        let button_h = 30.0;
        let bars_h = 34.0;
        // The knobs take the room between the style buttons and the style meter: as big as it
        // allows (up to 150 points), a little above its middle when there is room to spare.
        let room_top = content.top() + button_h + 30.0;
        let room = content.bottom() - bars_h - 8.0 - room_top;
        let dial = (room - 40.0).min(content.width() / n as f32 - 8.0).clamp(24.0, 150.0);
        let column_w = (content.width() / n as f32).min(dial.max(102.0) + 16.0);
        let knob_h = dial + 40.0;
        let knobs_top = room_top + ((room - knob_h) / 2.0).max(0.0) * 0.6;
        let knobs_bottom = knobs_top + knob_h;
        let group_w = column_w * n as f32;
        let left = content.center().x - group_w / 2.0;
        let selected = params.style.value().max(0) as usize;

        let painter = ui.painter().clone();
        let blend_caption = painter.layout_job(theme::caption_job("Blend", theme::TEXT_DIM));
        painter.galley(Pos2::new(rect.left() + 14.0, knobs_top - 20.0), blend_caption, theme::TEXT_DIM);
        // The style meter: what the pack's classifier hears in the output. A pack without a
        // classifier gets the style weights the knobs ask for instead, and the caption says so.
        let confidences: Vec<f32> = (0..n).map(|i| shared.stats.style_confidence[i].load(Relaxed)).collect();
        let classifier = style_meter::has_classifier(&confidences);
        let bars = if classifier {
            confidences
        } else {
            let blends: [f32; MAX_STYLES] = std::array::from_fn(|i| params.blends[i].amount.value());
            crate::params::style_weights(selected, &blends, n)[..n].to_vec()
        };
        let shown = self.confidence.update(&bars, now).to_vec();
        let caption = if classifier { "Style meter · the output as the classifier hears it" } else { "Style weights · no classifier in this pack" };
        let meter_caption = painter.layout_job(theme::caption_job(caption, theme::TEXT_DIM));
        painter.galley(Pos2::new(rect.left() + 14.0, content.bottom() - bars_h - 4.0), meter_caption, theme::TEXT_DIM);

        for (slot, name) in styles.iter().enumerate() {
            let x0 = left + slot as f32 * column_w;
            let column = Rect::from_min_max(Pos2::new(x0 + 4.0, content.top()), Pos2::new(x0 + column_w - 4.0, content.bottom()));

            // The style selector: one button per style of the pack.
            let button = Rect::from_min_size(column.min, Vec2::new(column.width(), button_h));
            let response = ui.interact(button, style_button_id(slot), Sense::click());
            if response.clicked() && slot != selected {
                setter.begin_set_parameter(&params.style);
                setter.set_parameter(&params.style, slot as i32);
                setter.end_set_parameter(&params.style);
            }
            let is_selected = params.style.value().max(0) as usize == slot;
            let (fill, stroke, text) = if is_selected {
                (theme::ACCENT_DIM, theme::ACCENT, theme::TEXT)
            } else if response.hovered() {
                (theme::mix(theme::RAISED, theme::TEXT, 0.05), theme::ACCENT_DIM, theme::TEXT)
            } else {
                (theme::RAISED, theme::LINE, theme::TEXT_DIM)
            };
            painter.rect_filled(button, CornerRadius::same(6), fill);
            painter.rect_stroke(button, CornerRadius::same(6), Stroke::new(1.0, stroke), egui::StrokeKind::Inside);
            let label = painter.layout(name.clone(), theme::label_font(), text, column.width() - 8.0);
            painter.galley(button.center() - label.size() / 2.0, label, text);
            response.on_hover_text(format!("Restyle toward {name} (the Style parameter)"));

            // Its blend knob underneath.
            let knob_rect = Rect::from_min_max(Pos2::new(column.left(), knobs_top), Pos2::new(column.right(), knobs_bottom));
            Knob::new(&params.blends[slot].amount, setter)
                .label(name.clone())
                .help("Adds this style to the selected one; the weights are normalised, so several styles morph into each other")
                .show(ui, knob_rect);

            // And what the classifier hears in the output.
            let bar = Rect::from_min_max(Pos2::new(column.left(), content.bottom() - bars_h + 12.0), Pos2::new(column.right(), content.bottom()));
            style_meter::paint_bar(&painter, bar, shown.get(slot).copied().unwrap_or(0.0), is_selected);
        }
        ui.interact(
            Rect::from_min_max(Pos2::new(content.left(), content.bottom() - bars_h), content.max),
            Id::unique("restyle-style-meter"),
            Sense::hover(),
        )
        .on_hover_text(if classifier {
            "Style meter: how sure the pack's classifier is that the output is each style"
        } else {
            "Style weights: how much of each style the generator is asked for (the selected style plus the blends, normalised). \
             This pack has no classifier to measure the output"
        });
    }

    fn mix_card(&mut self, ui: &mut Ui, rect: Rect, params: &RestyleParams, setter: &ParamSetter) {
        let content = card(ui.painter(), rect, "Mix & gain");
        // Style Mix large on top, the gains under it; the group sits a little above the middle
        // when the card is taller than it needs.
        let h = content.height();
        let small_h = (h * 0.36).clamp(84.0, 130.0);
        let big_h = (h - small_h - 12.0).min(content.width() * 0.75 + 40.0).min(230.0);
        let top = content.top() + ((h - big_h - 12.0 - small_h) / 2.0).max(0.0) * 0.5;
        let mix_rect = Rect::from_min_size(Pos2::new(content.left(), top), Vec2::new(content.width(), big_h));
        Knob::new(&params.mix, setter)
            .help("Restyled against dry: the dry signal is delayed to line up. Automate it, or ride it live")
            .show(ui, mix_rect);
        let small_top = mix_rect.bottom() + 12.0;
        let half = content.width() / 2.0;
        let in_rect = Rect::from_min_size(Pos2::new(content.left(), small_top), Vec2::new(half, small_h));
        let out_rect = Rect::from_min_size(Pos2::new(content.left() + half, small_top), Vec2::new(half, small_h));
        Knob::new(&params.input_gain, setter).label("Input").bipolar().help("Level into the engine (both the restyled and the dry path)").show(ui, in_rect);
        Knob::new(&params.output_gain, setter).label("Output").bipolar().help("Level out of the plugin").show(ui, out_rect);
    }

    fn status_line(&self, ui: &mut Ui, rect: Rect, shared: &Shared) {
        let status = shared.status.try_read().map(|s| s.clone()).unwrap_or_default();
        let line = status::StatusLine::new(&shared.stats, &status);
        let painter = ui.painter();
        painter.rect_filled(rect, 0.0, theme::PANEL);
        painter.line_segment([rect.left_top(), rect.right_top()], Stroke::new(1.0, theme::LINE));

        let y = rect.center().y;
        let mut x = rect.left() + 16.0;
        let running = status.error.is_none() && !status.provider.is_empty();
        let dot = if status.error.is_some() { theme::WARNING } else if running { theme::ACCENT } else { theme::TEXT_FAINT };
        painter.circle_filled(Pos2::new(x + 3.0, y), 3.5, dot);
        x += 14.0;
        let segment = |text: &str, color: Color32, x: &mut f32| {
            let galley = painter.layout_no_wrap(text.to_owned(), theme::value_font(), color);
            let w = galley.size().x;
            painter.galley(Pos2::new(*x, y - galley.size().y / 2.0), galley, color);
            *x += w + 18.0;
        };
        segment(&line.provider, theme::TEXT, &mut x);
        segment(&line.model, theme::TEXT_DIM, &mut x);
        segment(&line.inference, theme::TEXT_DIM, &mut x);
        segment(&line.late, theme::TEXT_DIM, &mut x);
        segment(&line.latency, theme::TEXT_DIM, &mut x);
        if let Some(error) = &line.error {
            let width = (rect.right() - 16.0 - x).max(40.0);
            let mut job = egui::text::LayoutJob::single_section(
                error.clone(),
                egui::TextFormat { font_id: theme::value_font(), color: theme::WARNING, ..Default::default() },
            );
            job.wrap = egui::text::TextWrapping::truncate_at_width(width);
            let galley = painter.layout_job(job);
            painter.galley(Pos2::new(x, y - galley.size().y / 2.0), galley, theme::WARNING);
        }
        let tip = match &line.error {
            Some(error) => format!("{error}\n\nExecution provider, model, inference time per call, frames played dry because inference was late, and the latency reported to the host."),
            None => "Execution provider, model, inference time per call, frames played dry because inference was late, and the latency reported to the host.".to_owned(),
        };
        ui.interact(rect, Id::unique("restyle-status"), Sense::hover()).on_hover_text(tip);
    }
}

/// A small caption over a row of mutually exclusive choices, each with its hover text.
fn choice_row<T: PartialEq + Copy, const N: usize>(ui: &mut Ui, caption: &str, value: &mut T, choices: [(T, &str, &str); N]) {
    ui.label(egui::RichText::new(caption).small().color(theme::TEXT_DIM));
    ui.horizontal(|ui| {
        for (choice, label, tip) in choices {
            ui.selectable_value(value, choice, label).on_hover_text(tip);
        }
    });
}

/// The texts of every text shape in an egui output, for tests: what the editor shows in words.
pub fn shown_texts(shapes: &[egui::epaint::ClippedShape]) -> Vec<String> {
    shown_text_rects(shapes).into_iter().map(|(text, _)| text).collect()
}

/// [`shown_texts`], with where each text is drawn: for tests that click on a label.
pub fn shown_text_rects(shapes: &[egui::epaint::ClippedShape]) -> Vec<(String, Rect)> {
    fn walk(shape: &egui::Shape, out: &mut Vec<(String, Rect)>) {
        match shape {
            egui::Shape::Text(text) => out.push((text.galley.text().to_owned(), text.visual_bounding_rect())),
            egui::Shape::Vec(shapes) => shapes.iter().for_each(|s| walk(s, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for clipped in shapes {
        walk(&clipped.shape, &mut out);
    }
    out
}
