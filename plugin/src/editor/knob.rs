//! A rotary knob that *is* a host parameter: every change goes through the [`ParamSetter`]
//! (begin, set, end), so the host records automation and the knob always shows the parameter's
//! current value, whoever changed it.
//!
//! Conventions: drag up/right to increase (hold Shift for fine control), scroll, double-click (or
//! Ctrl-click) to return to the default. The value and its unit sit under the knob and float
//! beside the pointer while dragging; hovering shows what the control does.

use std::f32::consts::PI;

use egui::{Align2, Color32, Event, Id, LayerId, MouseWheelUnit, Order, Pos2, Rect, Response, Sense, Shape, Stroke, Ui, Vec2};
use nice_plug::prelude::{Param, ParamSetter};

use super::theme;

/// Change in normalized value per point dragged.
pub const DRAG_SPEED: f32 = 1.0 / 200.0;
/// The same with Shift held: ten times finer.
pub const FINE_DRAG_SPEED: f32 = DRAG_SPEED / 10.0;
/// Change in normalized value per scroll-wheel notch (a tenth of that with Shift).
pub const SCROLL_STEP: f32 = 0.02;
/// Points of smooth (touchpad) scrolling that count as one notch.
const POINTS_PER_NOTCH: f32 = 40.0;
/// The knob's sweep: from 7:30 round to 4:30, 270 degrees.
const START_ANGLE: f32 = 0.75 * PI;
const SWEEP: f32 = 1.5 * PI;

/// The egui id of the knob for `param`: stable across frames and editor sessions, so tests can
/// find a knob's rectangle with `Context::read_response`.
pub fn knob_id(param: &impl Param) -> Id {
    Id::unique(("restyle-knob", param.name()))
}

/// A knob for one parameter, painted into a rectangle the caller lays out.
pub struct Knob<'a, P: Param> {
    param: &'a P,
    setter: &'a ParamSetter<'a>,
    label: String,
    help: &'a str,
    /// Draw the value arc from the default value (gains) rather than from the minimum.
    bipolar: bool,
    enabled: bool,
}

impl<'a, P: Param> Knob<'a, P> {
    pub fn new(param: &'a P, setter: &'a ParamSetter<'a>) -> Self {
        Self { param, setter, label: param.name().to_owned(), help: "", bipolar: false, enabled: true }
    }

    /// The name under the knob (the parameter's name by default).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// What the control does, for the tooltip.
    pub fn help(mut self, help: &'a str) -> Self {
        self.help = help;
        self
    }

    pub fn bipolar(mut self) -> Self {
        self.bipolar = true;
        self
    }

    /// A disabled knob still shows its value but takes no input (the style beyond the pack).
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// The value as the host shows it, with its unit.
    fn value_text(&self) -> String {
        self.param.normalized_value_to_string(self.param.modulated_normalized_value(), true)
    }

    /// Handles input and paints the knob, its label and its value inside `rect`.
    pub fn show(self, ui: &mut Ui, rect: Rect) -> Response {
        let id = knob_id(self.param);
        let label_h = 16.0;
        let value_h = 16.0;
        let dial_size = (rect.height() - label_h - value_h - 4.0).min(rect.width() - 8.0).max(16.0);
        let dial = Rect::from_center_size(Pos2::new(rect.center().x, rect.top() + dial_size / 2.0), Vec2::splat(dial_size));
        let sense = if self.enabled { Sense::click_and_drag() } else { Sense::hover() };
        let mut response = ui.interact(dial, id, sense);
        if self.enabled {
            self.handle_input(ui, &mut response, id);
        }

        let painter = ui.painter();
        let normalized = self.param.modulated_normalized_value();
        let hot = response.hovered() || response.dragged();
        paint_dial(painter, dial, normalized, self.bipolar.then(|| self.param.default_normalized_value()), hot, self.enabled);

        let label_pos = Pos2::new(rect.center().x, dial.bottom() + 4.0);
        let label_color = if self.enabled { theme::TEXT } else { theme::TEXT_FAINT };
        painter.text(label_pos, Align2::CENTER_TOP, &self.label, theme::label_font(), label_color);
        let value_color = if !self.enabled {
            theme::TEXT_FAINT
        } else if hot {
            theme::ACCENT
        } else {
            theme::TEXT_DIM
        };
        painter.text(label_pos + Vec2::new(0.0, label_h), Align2::CENTER_TOP, self.value_text(), theme::value_font(), value_color);

        if response.dragged() {
            // The value beside the pointer while dragging, above everything else.
            let painter = ui.ctx().layer_painter(LayerId::new(Order::Tooltip, id.with("drag-value")));
            let anchor = Pos2::new(dial.right() + 6.0, dial.center().y);
            let galley = painter.layout_no_wrap(self.value_text(), theme::value_font(), theme::TEXT);
            let bubble = Rect::from_min_size(anchor - Vec2::new(0.0, galley.size().y / 2.0 + 4.0), galley.size() + Vec2::new(12.0, 8.0));
            painter.rect_filled(bubble, 4.0, theme::RAISED);
            painter.rect_stroke(bubble, 4.0, Stroke::new(1.0, theme::ACCENT), egui::StrokeKind::Inside);
            painter.galley(bubble.min + Vec2::new(6.0, 4.0), galley, theme::TEXT);
        } else if self.enabled {
            let help = if self.help.is_empty() { String::new() } else { format!("{}\n\n", self.help) };
            let tip = format!(
                "{}: {}\n{help}Drag to change (Shift: fine), scroll, double-click to reset to {}.",
                self.param.name(),
                self.value_text(),
                self.param.normalized_value_to_string(self.param.default_normalized_value(), true),
            );
            response = response.on_hover_text(tip);
        }
        response
    }

    fn handle_input(&self, ui: &Ui, response: &mut Response, id: Id) {
        let drag_id = id.with("drag-normalized");
        let (shift, command) = ui.input(|i| (i.modifiers.shift, i.modifiers.command));

        if response.double_clicked() || (response.clicked() && command) {
            self.setter.begin_set_parameter(self.param);
            self.setter.set_parameter(self.param, self.param.default_plain_value());
            self.setter.end_set_parameter(self.param);
            response.mark_changed();
            return;
        }

        if response.drag_started() {
            self.setter.begin_set_parameter(self.param);
            // Accumulate an unsnapped value, so stepped parameters and fine drags both work.
            ui.data_mut(|d| d.insert_temp(drag_id, self.param.unmodulated_normalized_value()));
        }
        if response.dragged() {
            let delta = response.drag_delta();
            let speed = if shift { FINE_DRAG_SPEED } else { DRAG_SPEED };
            let start = ui.data(|d| d.get_temp::<f32>(drag_id)).unwrap_or_else(|| self.param.unmodulated_normalized_value());
            let target = (start + (delta.x - delta.y) * speed).clamp(0.0, 1.0);
            ui.data_mut(|d| d.insert_temp(drag_id, target));
            self.set_normalized(target);
            response.mark_changed();
        }
        if response.drag_stopped() {
            self.setter.end_set_parameter(self.param);
            ui.data_mut(|d| d.remove::<f32>(drag_id));
        }

        if response.hovered() && !response.dragged() {
            let notches = ui.input(|i| {
                i.events
                    .iter()
                    .map(|event| match event {
                        Event::MouseWheel { unit, delta, .. } => {
                            // Shift turns vertical wheels sideways on some systems: use both axes.
                            let amount = delta.y + delta.x;
                            match unit {
                                MouseWheelUnit::Point => amount / POINTS_PER_NOTCH,
                                MouseWheelUnit::Line => amount,
                                MouseWheelUnit::Page => amount * 10.0,
                            }
                        }
                        _ => 0.0,
                    })
                    .sum::<f32>()
            });
            if notches != 0.0 {
                let step = if shift { SCROLL_STEP / 10.0 } else { SCROLL_STEP };
                let target = (self.param.unmodulated_normalized_value() + notches * step).clamp(0.0, 1.0);
                self.setter.begin_set_parameter(self.param);
                self.set_normalized(target);
                self.setter.end_set_parameter(self.param);
                response.mark_changed();
            }
        }
    }

    fn set_normalized(&self, normalized: f32) {
        let plain = self.param.preview_plain(normalized);
        if plain != self.param.modulated_plain_value() {
            self.setter.set_parameter(self.param, plain);
        }
    }
}

/// The angle of a normalized value on the dial (screen coordinates: y down, clockwise).
fn angle(normalized: f32) -> f32 {
    START_ANGLE + normalized.clamp(0.0, 1.0) * SWEEP
}

fn arc_points(center: Pos2, radius: f32, from: f32, to: f32) -> Vec<Pos2> {
    let (from, to) = if from <= to { (from, to) } else { (to, from) };
    let steps = (((to - from) / (2.0 * PI)) * 96.0).ceil().max(2.0) as usize;
    (0..=steps)
        .map(|i| {
            let a = from + (to - from) * i as f32 / steps as f32;
            center + radius * Vec2::new(a.cos(), a.sin())
        })
        .collect()
}

/// Paints a dial: a track, the value arc in the accent colour (from `origin` when given), the
/// knob body and its pointer.
pub fn paint_dial(painter: &egui::Painter, dial: Rect, normalized: f32, origin: Option<f32>, hot: bool, enabled: bool) {
    let center = dial.center();
    let radius = dial.width() / 2.0;
    let track_radius = radius - 3.0;
    let width = (radius * 0.13).clamp(2.5, 5.0);
    painter.add(Shape::line(arc_points(center, track_radius, angle(0.0), angle(1.0)), Stroke::new(width, theme::LINE)));
    let accent = if enabled { theme::ACCENT } else { theme::TEXT_FAINT };
    let from = angle(origin.unwrap_or(0.0));
    let to = angle(normalized);
    if (to - from).abs() > 0.01 {
        painter.add(Shape::line(arc_points(center, track_radius, from, to), Stroke::new(width, accent)));
    }
    let body_radius = track_radius - width - 3.0;
    let body = if hot { theme::mix(theme::RAISED, theme::TEXT, 0.06) } else { theme::RAISED };
    painter.circle_filled(center, body_radius, body);
    painter.circle_stroke(center, body_radius, Stroke::new(1.0, theme::mix(theme::RAISED, Color32::WHITE, 0.08)));
    let dir = Vec2::new(to.cos(), to.sin());
    let pointer_color = if enabled { theme::TEXT } else { theme::TEXT_FAINT };
    painter.line_segment([center + dir * body_radius * 0.35, center + dir * body_radius * 0.85], Stroke::new(2.0, pointer_color));
}
