//! Peak level meters: one bar per channel, a peak-hold line and a dB scale.

use egui::{Align2, Painter, Pos2, Rect, Stroke};

use super::theme;

/// The meters' range in dBFS.
pub const FLOOR_DB: f32 = -60.0;
pub const CEILING_DB: f32 = 6.0;
/// How long a peak-hold line stays before it falls, in seconds.
const HOLD_SECONDS: f64 = 1.5;
/// Scale marks, in dBFS.
const MARKS: [f32; 7] = [6.0, 0.0, -6.0, -12.0, -24.0, -36.0, -48.0];

/// `gain` (linear) as dBFS, floored at [`FLOOR_DB`] - 1.
pub fn gain_to_db(gain: f32) -> f32 {
    if gain > 0.0 && gain.is_finite() { (20.0 * gain.log10()).max(FLOOR_DB - 1.0) } else { FLOOR_DB - 1.0 }
}

/// Where `db` sits on the meter: 0 at the floor, 1 at the ceiling.
pub fn db_to_fraction(db: f32) -> f32 {
    ((db - FLOOR_DB) / (CEILING_DB - FLOOR_DB)).clamp(0.0, 1.0)
}

/// A meter's state between frames: the held peak of each channel and when it was set.
#[derive(Debug, Clone)]
pub struct PeakHold {
    held: [(f32, f64); 2],
}

impl Default for PeakHold {
    fn default() -> Self {
        Self { held: [(FLOOR_DB - 1.0, f64::NEG_INFINITY); 2] }
    }
}

impl PeakHold {
    /// Takes this frame's peaks (linear) at time `now` (seconds) and returns the held levels in dB.
    pub fn update(&mut self, peaks: [f32; 2], now: f64) -> [f32; 2] {
        for ((held_db, at), peak) in self.held.iter_mut().zip(peaks) {
            let db = gain_to_db(peak);
            if db >= *held_db || now - *at > HOLD_SECONDS {
                *held_db = db;
                *at = now;
            }
        }
        [self.held[0].0, self.held[1].0]
    }
}

/// Paints a stereo meter (`channels` bars) with its name on top and the held peak as a figure
/// underneath. `scale_on_left` puts the dB figures on the side facing the window's edge.
pub fn paint(painter: &Painter, rect: Rect, name: &str, peaks: [f32; 2], held_db: [f32; 2], channels: usize, scale_on_left: bool) {
    let name_h = 18.0;
    let readout_h = 18.0;
    painter.text(Pos2::new(rect.center().x, rect.top()), Align2::CENTER_TOP, name, theme::caption_font(), theme::TEXT_DIM);

    let scale_w = 22.0;
    let bars_area = Rect::from_min_max(Pos2::new(rect.left(), rect.top() + name_h), Pos2::new(rect.right(), rect.bottom() - readout_h));
    let (scale, bars) = if scale_on_left {
        (
            Rect::from_min_max(bars_area.min, Pos2::new(bars_area.left() + scale_w, bars_area.bottom())),
            Rect::from_min_max(Pos2::new(bars_area.left() + scale_w, bars_area.top()), bars_area.max),
        )
    } else {
        (
            Rect::from_min_max(Pos2::new(bars_area.right() - scale_w, bars_area.top()), bars_area.max),
            Rect::from_min_max(bars_area.min, Pos2::new(bars_area.right() - scale_w, bars_area.bottom())),
        )
    };
    painter.rect_filled(bars, 3.0, theme::PANEL);

    let y_of = |db: f32| bars.bottom() - db_to_fraction(db) * bars.height();
    for mark in MARKS {
        let y = y_of(mark);
        let color = if mark == 0.0 { theme::TEXT_DIM } else { theme::TEXT_FAINT };
        let (x, align) = if scale_on_left { (scale.right() - 4.0, Align2::RIGHT_CENTER) } else { (scale.left() + 4.0, Align2::LEFT_CENTER) };
        painter.text(Pos2::new(x, y), align, if mark > 0.0 { format!("+{}", mark as i32) } else { format!("{}", mark as i32) }, egui::FontId::monospace(9.0), color);
        painter.line_segment([Pos2::new(bars.left(), y), Pos2::new(bars.right(), y)], Stroke::new(1.0, theme::BACKGROUND));
    }

    let channels = channels.clamp(1, 2);
    let gap = 3.0;
    let inner = bars.shrink(3.0);
    let bar_w = (inner.width() - gap * (channels as f32 - 1.0)) / channels as f32;
    let zero_y = y_of(0.0);
    for ch in 0..channels {
        let left = inner.left() + ch as f32 * (bar_w + gap);
        let level_y = y_of(gain_to_db(peaks[ch])).max(inner.top());
        if level_y < inner.bottom() {
            let bar = Rect::from_min_max(Pos2::new(left, level_y), Pos2::new(left + bar_w, inner.bottom()));
            // The accent below 0 dBFS, the warning colour above it.
            let safe = Rect::from_min_max(Pos2::new(bar.left(), bar.top().max(zero_y)), bar.max);
            painter.rect_filled(safe, 1.5, theme::ACCENT);
            if bar.top() < zero_y {
                painter.rect_filled(Rect::from_min_max(bar.min, Pos2::new(bar.right(), zero_y)), 1.5, theme::WARNING);
            }
        }
        let hold_y = y_of(held_db[ch]).max(inner.top());
        if held_db[ch] > FLOOR_DB {
            let color = if held_db[ch] > 0.0 { theme::WARNING } else { theme::TEXT };
            painter.line_segment([Pos2::new(left, hold_y), Pos2::new(left + bar_w, hold_y)], Stroke::new(2.0, color));
        }
    }

    let loudest = held_db[..channels].iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let readout = if loudest > FLOOR_DB { format!("{loudest:.1}") } else { "-inf".to_owned() };
    let color = if loudest > 0.0 { theme::WARNING } else { theme::TEXT_DIM };
    painter.text(Pos2::new(bars.center().x, rect.bottom() - readout_h + 4.0), Align2::CENTER_TOP, readout, theme::value_font(), color);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_onto_the_scale() {
        assert_eq!(gain_to_db(1.0), 0.0);
        assert!((gain_to_db(0.5) + 6.02).abs() < 0.01);
        assert_eq!(gain_to_db(0.0), FLOOR_DB - 1.0);
        assert_eq!(gain_to_db(f32::NAN), FLOOR_DB - 1.0);
        assert_eq!(db_to_fraction(FLOOR_DB), 0.0);
        assert_eq!(db_to_fraction(CEILING_DB), 1.0);
        assert_eq!(db_to_fraction(100.0), 1.0);
    }

    #[test]
    fn a_peak_is_held_then_falls() {
        let mut hold = PeakHold::default();
        assert_eq!(hold.update([0.0, 0.0], 0.0)[0], FLOOR_DB - 1.0);
        assert_eq!(hold.update([1.0, 0.0], 0.1)[0], 0.0);
        // Quieter for a while: the peak stays...
        assert_eq!(hold.update([0.1, 0.0], 1.0)[0], 0.0);
        // ...until the hold time has passed.
        assert!((hold.update([0.1, 0.0], 1.7)[0] + 20.0).abs() < 0.01);
    }
}
