//! The look: a dark theme with one accent colour, and the type sizes the editor uses.

use egui::{Color32, FontFamily, FontId, Stroke, TextStyle, Theme, Visuals};

/// The window's background.
pub const BACKGROUND: Color32 = Color32::from_rgb(0x12, 0x14, 0x19);
/// Panels (the spectrogram, the meters' troughs, the style cards) sit one step above it.
pub const PANEL: Color32 = Color32::from_rgb(0x1a, 0x1d, 0x24);
/// Raised surfaces: knob bodies, buttons.
pub const RAISED: Color32 = Color32::from_rgb(0x25, 0x29, 0x32);
/// Hairlines and knob tracks.
pub const LINE: Color32 = Color32::from_rgb(0x33, 0x38, 0x44);
pub const TEXT: Color32 = Color32::from_rgb(0xdd, 0xe1, 0xe8);
pub const TEXT_DIM: Color32 = Color32::from_rgb(0x86, 0x8d, 0x9c);
pub const TEXT_FAINT: Color32 = Color32::from_rgb(0x56, 0x5c, 0x6a);
/// The one accent colour: values, the selected style, the live signal.
pub const ACCENT: Color32 = Color32::from_rgb(0x38, 0xd9, 0xc0);
/// The accent at low strength, for fills behind accent strokes.
pub const ACCENT_DIM: Color32 = Color32::from_rgb(0x1b, 0x4f, 0x4a);
/// Only for what is wrong: a clipping meter and an error in the status line.
pub const WARNING: Color32 = Color32::from_rgb(0xff, 0x6b, 0x5e);

/// Captions above groups of controls ("STYLE", "BLEND").
pub fn caption_font() -> FontId {
    FontId::proportional(10.5)
}

/// Labels under knobs, meter names.
pub fn label_font() -> FontId {
    FontId::proportional(12.5)
}

/// Values and figures: monospace, so digits do not jump while they change.
pub fn value_font() -> FontId {
    FontId::monospace(11.5)
}

pub fn title_font() -> FontId {
    FontId::proportional(21.0)
}

/// Applies the theme to a context; called once when the editor window opens.
pub fn apply(ctx: &egui::Context) {
    ctx.set_theme(Theme::Dark);
    ctx.set_visuals_of(Theme::Dark, visuals());
    ctx.all_styles_mut(|style| {
        style.text_styles = [
            (TextStyle::Small, FontId::new(10.0, FontFamily::Proportional)),
            (TextStyle::Body, FontId::new(13.0, FontFamily::Proportional)),
            (TextStyle::Button, FontId::new(13.0, FontFamily::Proportional)),
            (TextStyle::Heading, FontId::new(20.0, FontFamily::Proportional)),
            (TextStyle::Monospace, FontId::new(12.0, FontFamily::Monospace)),
        ]
        .into();
        style.spacing.button_padding = egui::vec2(10.0, 5.0);
        style.spacing.item_spacing = egui::vec2(8.0, 6.0);
        style.interaction.tooltip_delay = 0.35;
    });
}

fn visuals() -> Visuals {
    let mut v = Visuals::dark();
    v.panel_fill = BACKGROUND;
    v.window_fill = PANEL;
    v.extreme_bg_color = BACKGROUND;
    v.faint_bg_color = PANEL;
    v.override_text_color = None;
    v.selection.bg_fill = ACCENT_DIM;
    v.selection.stroke = Stroke::new(1.0, ACCENT);
    v.hyperlink_color = ACCENT;
    v.window_stroke = Stroke::new(1.0, LINE);
    v.popup_shadow = egui::epaint::Shadow::NONE;
    v.window_shadow = egui::epaint::Shadow::NONE;

    let w = &mut v.widgets;
    w.noninteractive.bg_fill = PANEL;
    w.noninteractive.weak_bg_fill = PANEL;
    w.noninteractive.bg_stroke = Stroke::new(1.0, LINE);
    w.noninteractive.fg_stroke = Stroke::new(1.0, TEXT_DIM);
    w.inactive.bg_fill = RAISED;
    w.inactive.weak_bg_fill = RAISED;
    w.inactive.bg_stroke = Stroke::new(1.0, LINE);
    w.inactive.fg_stroke = Stroke::new(1.0, TEXT);
    w.hovered.bg_fill = Color32::from_rgb(0x2e, 0x33, 0x3e);
    w.hovered.weak_bg_fill = Color32::from_rgb(0x2e, 0x33, 0x3e);
    w.hovered.bg_stroke = Stroke::new(1.0, ACCENT_DIM);
    w.hovered.fg_stroke = Stroke::new(1.0, TEXT);
    w.active.bg_fill = ACCENT_DIM;
    w.active.weak_bg_fill = ACCENT_DIM;
    w.active.bg_stroke = Stroke::new(1.0, ACCENT);
    w.active.fg_stroke = Stroke::new(1.0, TEXT);
    w.open = w.active;
    v
}

/// `a` and `b` mixed: `t = 0` is `a`, `t = 1` is `b`.
pub fn mix(a: Color32, b: Color32, t: f32) -> Color32 {
    let t = t.clamp(0.0, 1.0);
    let lerp = |x: u8, y: u8| (x as f32 + (y as f32 - x as f32) * t).round() as u8;
    Color32::from_rgb(lerp(a.r(), b.r()), lerp(a.g(), b.g()), lerp(a.b(), b.b()))
}

/// A caption in small spaced capitals.
pub fn caption_job(text: &str, color: Color32) -> egui::text::LayoutJob {
    let mut job = egui::text::LayoutJob::default();
    job.append(
        &text.to_uppercase(),
        0.0,
        egui::TextFormat { font_id: caption_font(), color, extra_letter_spacing: 1.2, ..Default::default() },
    );
    job
}
