//! The style meter: how sure the pack's classifier is that the output sounds like each style.

use egui::{Align2, Pos2, Rect, Vec2};

use super::theme;

/// Smooths the classifier's confidences for display, so the bars move without flicker.
#[derive(Debug, Clone, Default)]
pub struct Smoothed {
    values: Vec<f32>,
    last: Option<f64>,
}

impl Smoothed {
    /// Time constant of the display smoothing, in seconds.
    const TAU: f64 = 0.15;

    /// Moves the displayed values toward `target` (0–1 each) at time `now` (seconds).
    pub fn update(&mut self, target: &[f32], now: f64) -> &[f32] {
        let dt = self.last.map_or(1.0, |last| (now - last).max(0.0));
        self.last = Some(now);
        let k = (1.0 - (-dt / Self::TAU).exp()) as f32;
        self.values.resize(target.len(), 0.0);
        for (v, t) in self.values.iter_mut().zip(target) {
            let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
            *v += (t - *v) * k;
        }
        &self.values
    }
}

/// Whether the engine publishes confidences at all: a pack without a classifier leaves them all
/// at exactly 0 (a softmax never does), and the meter then says so instead of showing 0 %.
pub fn has_classifier(confidences: &[f32]) -> bool {
    confidences.iter().any(|c| *c > 0.0)
}

/// Paints one style's share (0–1) as a horizontal bar with its percentage; `target` marks the
/// style the user selected.
pub fn paint_bar(painter: &egui::Painter, rect: Rect, confidence: f32, target: bool) {
    let bar_h = 6.0;
    let track = Rect::from_min_size(Pos2::new(rect.left(), rect.center().y - bar_h / 2.0), Vec2::new(rect.width() - 36.0, bar_h));
    painter.rect_filled(track, 3.0, theme::PANEL);
    let fill = Rect::from_min_size(track.min, Vec2::new(track.width() * confidence.clamp(0.0, 1.0), bar_h));
    let color = if target { theme::ACCENT } else { theme::mix(theme::ACCENT, theme::TEXT_FAINT, 0.65) };
    if fill.width() > 0.5 {
        painter.rect_filled(fill, 3.0, color);
    }
    let text_color = if target { theme::TEXT } else { theme::TEXT_DIM };
    painter.text(
        Pos2::new(rect.right(), rect.center().y),
        Align2::RIGHT_CENTER,
        format!("{:.0}%", confidence.clamp(0.0, 1.0) * 100.0),
        theme::value_font(),
        text_color,
    );
}
