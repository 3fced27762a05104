//! A scrolling spectrogram built in the editor: every frame it samples the engine's published
//! spectrum (64 log-spaced bands, in dB relative to a full-scale sine) into a history, newest on
//! the right, and shows it as a texture.

use std::collections::VecDeque;

use egui::{Align2, Color32, ColorImage, Pos2, Rect, Stroke, TextureHandle, TextureOptions};

use super::theme;
use crate::stats::{Spectrum, SPECTRUM_BANDS};

/// Columns of history: at [`COLUMNS_PER_SECOND`], about 4 seconds.
pub const HISTORY: usize = 256;
/// How often a column is taken, whatever the editor's frame rate.
pub const COLUMNS_PER_SECOND: f64 = 60.0;
/// The displayed range in dB (relative to a full-scale sine).
pub const FLOOR_DB: f32 = -90.0;
pub const CEILING_DB: f32 = -15.0;
/// The frequencies the bands span (as the engine publishes them), for the axis labels.
const RANGE_HZ: (f32, f32) = (40.0, 20_000.0);

/// One column: the band levels in dB, lowest band first.
pub type Column = [f32; SPECTRUM_BANDS];

/// Reads a published spectrum.
pub fn sample(spectrum: &Spectrum) -> Column {
    std::array::from_fn(|b| spectrum.0[b].load(std::sync::atomic::Ordering::Relaxed))
}

/// The history of one signal.
#[derive(Debug, Clone)]
pub struct History {
    columns: VecDeque<Column>,
}

impl Default for History {
    fn default() -> Self {
        Self { columns: VecDeque::with_capacity(HISTORY) }
    }
}

impl History {
    /// Appends the newest column, dropping the oldest once the history is full.
    pub fn push(&mut self, column: Column) {
        if self.columns.len() == HISTORY {
            self.columns.pop_front();
        }
        self.columns.push_back(column);
    }

    pub fn len(&self) -> usize {
        self.columns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// Column `i` counted from the newest (0), if there is one.
    pub fn newest(&self, i: usize) -> Option<&Column> {
        self.columns.len().checked_sub(i + 1).and_then(|k| self.columns.get(k))
    }
}

/// Pushes `count` columns that glide from the history's newest column to `column`.
fn push_interpolated(history: &mut History, column: Column, count: usize) {
    let previous = history.newest(0).copied().unwrap_or(column);
    for k in 1..=count {
        let t = k as f32 / count as f32;
        history.push(std::array::from_fn(|b| previous[b] + (column[b] - previous[b]) * t));
    }
}

/// The colour of a level: background at the floor, through the accent, to near white at the top.
pub fn colormap(db: f32) -> Color32 {
    let t = if db.is_finite() { ((db - FLOOR_DB) / (CEILING_DB - FLOOR_DB)).clamp(0.0, 1.0) } else { 0.0 };
    let stops = [
        (0.0, theme::PANEL),
        (0.5, Color32::from_rgb(0x0e, 0x2e, 0x3a)),
        (0.85, theme::ACCENT),
        (1.0, Color32::from_rgb(0xf4, 0xff, 0xf8)),
    ];
    for pair in stops.windows(2) {
        let ((t0, c0), (t1, c1)) = (pair[0], pair[1]);
        if t <= t1 {
            return theme::mix(c0, c1, (t - t0) / (t1 - t0));
        }
    }
    stops[stops.len() - 1].1
}

/// Both spectrograms (input above, output below), their timing and their textures.
#[derive(Default)]
pub struct Spectrograms {
    pub input: History,
    pub output: History,
    last_column_at: Option<f64>,
    texture: Option<TextureHandle>,
}

impl Spectrograms {
    /// Takes the columns due at time `now` (seconds): one per 1/[`COLUMNS_PER_SECOND`] since the
    /// last, so the history keeps real time however slowly the editor is drawn. When a frame is
    /// late the missing columns are interpolated from the previous spectrum to this one. Returns
    /// how many columns it took.
    pub fn sample(&mut self, now: f64, input: &Spectrum, output: &Spectrum) -> usize {
        let period = 1.0 / COLUMNS_PER_SECOND;
        let due = match self.last_column_at {
            Some(at) if now >= at => ((now - at) / period + 0.05).floor() as usize,
            _ => 1,
        };
        // Past a quarter second (a stalled window) the gap is not worth drawing.
        let due = due.min((COLUMNS_PER_SECOND / 4.0) as usize);
        if due > 0 {
            let (column_in, column_out) = (sample(input), sample(output));
            push_interpolated(&mut self.input, column_in, due);
            push_interpolated(&mut self.output, column_out, due);
            let last = self.last_column_at.filter(|at| now >= *at && now - at < 0.25).unwrap_or(now - period * due as f64);
            self.last_column_at = Some(last + period * due as f64);
        }
        due
    }

    /// The picture: [`HISTORY`] columns wide, input bands over output bands, newest on the right,
    /// highest band on top.
    pub fn image(&self) -> ColorImage {
        let height = 2 * SPECTRUM_BANDS + 1;
        let mut pixels = vec![theme::PANEL; HISTORY * height];
        for (row_offset, history) in [(0, &self.input), (SPECTRUM_BANDS + 1, &self.output)] {
            for age in 0..history.len() {
                let Some(column) = history.newest(age) else { break };
                let x = HISTORY - 1 - age;
                for (band, db) in column.iter().enumerate() {
                    let y = row_offset + SPECTRUM_BANDS - 1 - band;
                    pixels[y * HISTORY + x] = colormap(*db);
                }
            }
        }
        for x in 0..HISTORY {
            pixels[SPECTRUM_BANDS * HISTORY + x] = theme::BACKGROUND;
        }
        ColorImage::new([HISTORY, height], pixels)
    }

    /// Paints the spectrograms into `rect`, with frequency marks and the two signals' names.
    pub fn paint(&mut self, ui: &egui::Ui, rect: Rect) {
        let image = self.image();
        let options = TextureOptions::LINEAR;
        let texture = match &mut self.texture {
            Some(texture) => {
                texture.set(image, options);
                texture.clone()
            }
            None => {
                let texture = ui.ctx().load_texture("restyle-spectrogram", image, options);
                self.texture = Some(texture.clone());
                texture
            }
        };
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 4.0, theme::PANEL);
        let axis_w = 40.0;
        let plot = Rect::from_min_max(Pos2::new(rect.left() + axis_w, rect.top()), rect.max);
        painter.image(texture.id(), plot, Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)), Color32::WHITE);

        let half = plot.height() / (2.0 * SPECTRUM_BANDS as f32 + 1.0) * SPECTRUM_BANDS as f32;
        let (lo, hi) = RANGE_HZ;
        for (row, name) in [(0.0, "Input"), (1.0, "Output")] {
            let top = plot.top() + row * (plot.height() - half);
            for (hz, label) in [(100.0, "100"), (1000.0, "1k"), (10_000.0, "10k")] {
                let fraction = (hz / lo).ln() / (hi / lo).ln();
                let y = top + half * (1.0 - fraction);
                painter.line_segment([Pos2::new(plot.left(), y), Pos2::new(plot.right(), y)], Stroke::new(1.0, Color32::from_white_alpha(12)));
                painter.text(Pos2::new(plot.left() - 6.0, y), Align2::RIGHT_CENTER, label, egui::FontId::monospace(9.0), theme::TEXT_FAINT);
            }
            // The signal's name on a small plate over the oldest end of the picture.
            let galley = painter.layout_job(theme::caption_job(name, theme::TEXT));
            let plate = Rect::from_min_size(Pos2::new(plot.left() + 6.0, top + 5.0), galley.size() + egui::vec2(10.0, 4.0));
            painter.rect_filled(plate, 3.0, Color32::from_black_alpha(150));
            painter.galley(plate.min + egui::vec2(5.0, 2.0), galley, theme::TEXT);
        }
        painter.rect_stroke(rect, 4.0, Stroke::new(1.0, theme::LINE), egui::StrokeKind::Inside);
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spectrum(db: f32) -> Spectrum {
        let s = Spectrum::default();
        s.0.iter().for_each(|band| band.store(db, std::sync::atomic::Ordering::Relaxed));
        s
    }

    #[test]
    fn the_history_keeps_real_time_and_interpolates_slow_frames() {
        let mut s = Spectrograms::default();
        assert_eq!(s.sample(0.0, &spectrum(-80.0), &spectrum(-80.0)), 1);
        // Too early for the next column.
        assert_eq!(s.sample(0.005, &spectrum(-20.0), &spectrum(-20.0)), 0);
        // Four columns late: four columns, gliding from -80 to -20 dB.
        assert_eq!(s.sample(4.0 / COLUMNS_PER_SECOND, &spectrum(-20.0), &spectrum(-20.0)), 4);
        let glide: Vec<f32> = (0..4).rev().map(|age| s.input.newest(age).unwrap()[0]).collect();
        assert_eq!(glide, vec![-65.0, -50.0, -35.0, -20.0]);
        for k in 0..2 * HISTORY {
            s.sample(1.0 + k as f64 / COLUMNS_PER_SECOND, &spectrum(-30.0), &spectrum(-30.0));
        }
        assert_eq!(s.output.len(), HISTORY);
    }

    #[test]
    fn louder_is_brighter_and_the_newest_column_is_on_the_right() {
        let brightness = |c: Color32| c.r() as u32 + c.g() as u32 + c.b() as u32;
        let levels = [-120.0, FLOOR_DB, -60.0, -40.0, -20.0, CEILING_DB, 0.0];
        for pair in levels.windows(2) {
            assert!(brightness(colormap(pair[0])) <= brightness(colormap(pair[1])), "{pair:?}");
        }
        assert_eq!(colormap(f32::NAN), colormap(FLOOR_DB));

        let mut s = Spectrograms::default();
        s.sample(0.0, &spectrum(CEILING_DB), &spectrum(FLOOR_DB));
        let image = s.image();
        assert_eq!(image.size, [HISTORY, 2 * SPECTRUM_BANDS + 1]);
        assert_eq!(image.pixels[HISTORY - 1], colormap(CEILING_DB), "input, top band, newest column");
        assert_eq!(image.pixels[0], theme::PANEL, "no history yet on the left");
    }
}
