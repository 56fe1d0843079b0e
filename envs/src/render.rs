//! RGB frames and the small drawing kit the built-in envs render with (on tiny-skia).

use tiny_skia::{Color, FillRule, Paint, PathBuilder, Pixmap, Rect, Stroke, Transform};

/// An RGB picture: `rgb` holds `width * height * 3` bytes, row-major, top row first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Frame {
    /// The colour of pixel `(x, y)` (x to the right, y down).
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = ((y * self.width + x) * 3) as usize;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

/// An RGB colour.
pub type Rgb = [u8; 3];

/// A drawing surface with an opaque background; coordinates in pixels, y pointing down.
pub struct Canvas {
    pixmap: Pixmap,
}

impl Canvas {
    /// A `width x height` canvas filled with `background`. Sizes are clamped to at least 1.
    pub fn new(width: u32, height: u32, background: Rgb) -> Self {
        let mut pixmap = Pixmap::new(width.max(1), height.max(1)).expect("non-zero canvas size");
        pixmap.fill(Color::from_rgba8(background[0], background[1], background[2], 255));
        Canvas { pixmap }
    }

    /// Canvas width in pixels.
    pub fn width(&self) -> u32 {
        self.pixmap.width()
    }

    /// Canvas height in pixels.
    pub fn height(&self) -> u32 {
        self.pixmap.height()
    }

    fn paint(color: Rgb) -> Paint<'static> {
        let mut paint = Paint::default();
        paint.set_color_rgba8(color[0], color[1], color[2], 255);
        paint.anti_alias = true;
        paint
    }

    /// Fills an axis-aligned rectangle (nothing is drawn for a degenerate one).
    pub fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, color: Rgb) {
        if let Some(r) = Rect::from_xywh(x, y, w, h) {
            self.pixmap.fill_rect(r, &Self::paint(color), Transform::identity(), None);
        }
    }

    /// Fills a circle.
    pub fn circle(&mut self, cx: f32, cy: f32, radius: f32, color: Rgb) {
        if let Some(path) = PathBuilder::from_circle(cx, cy, radius) {
            let paint = Self::paint(color);
            self.pixmap.fill_path(&path, &paint, FillRule::Winding, Transform::identity(), None);
        }
    }

    /// Fills a closed polygon.
    pub fn polygon(&mut self, points: &[(f32, f32)], color: Rgb) {
        let mut pb = PathBuilder::new();
        for (i, &(x, y)) in points.iter().enumerate() {
            if i == 0 {
                pb.move_to(x, y);
            } else {
                pb.line_to(x, y);
            }
        }
        pb.close();
        if let Some(path) = pb.finish() {
            let paint = Self::paint(color);
            self.pixmap.fill_path(&path, &paint, FillRule::Winding, Transform::identity(), None);
        }
    }

    /// Draws a line segment or an open polyline of the given width.
    pub fn polyline(&mut self, points: &[(f32, f32)], width: f32, color: Rgb) {
        let mut pb = PathBuilder::new();
        for (i, &(x, y)) in points.iter().enumerate() {
            if i == 0 {
                pb.move_to(x, y);
            } else {
                pb.line_to(x, y);
            }
        }
        if let Some(path) = pb.finish() {
            let stroke = Stroke { width, ..Stroke::default() };
            self.pixmap.stroke_path(
                &path,
                &Self::paint(color),
                &stroke,
                Transform::identity(),
                None,
            );
        }
    }

    /// Draws a line segment.
    pub fn line(&mut self, from: (f32, f32), to: (f32, f32), width: f32, color: Rgb) {
        self.polyline(&[from, to], width, color);
    }

    /// Writes a number with a 3x5 pixel font scaled by `scale`, top-left corner at `(x, y)`.
    pub fn number(&mut self, x: f32, y: f32, scale: f32, value: u32, color: Rgb) {
        for (k, ch) in value.to_string().bytes().enumerate() {
            let glyph = DIGITS[(ch - b'0') as usize];
            let ox = x + k as f32 * 4.0 * scale;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..3 {
                    if bits & (0b100 >> col) != 0 {
                        self.rect(
                            ox + col as f32 * scale,
                            y + row as f32 * scale,
                            scale,
                            scale,
                            color,
                        );
                    }
                }
            }
        }
    }

    /// The finished RGB frame.
    pub fn into_frame(self) -> Frame {
        let (width, height) = (self.pixmap.width(), self.pixmap.height());
        // The background is opaque, so premultiplied RGBA equals RGB with alpha 255.
        let rgb = self.pixmap.data().chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
        Frame { width, height, rgb }
    }
}

/// 3x5 glyphs of the digits 0-9, one row of 3 bits per entry, top row first.
const DIGITS: [[u8; 5]; 10] = [
    [0b111, 0b101, 0b101, 0b101, 0b111],
    [0b010, 0b110, 0b010, 0b010, 0b111],
    [0b111, 0b001, 0b111, 0b100, 0b111],
    [0b111, 0b001, 0b111, 0b001, 0b111],
    [0b101, 0b101, 0b111, 0b001, 0b001],
    [0b111, 0b100, 0b111, 0b001, 0b111],
    [0b111, 0b100, 0b111, 0b101, 0b111],
    [0b111, 0b001, 0b010, 0b010, 0b010],
    [0b111, 0b101, 0b111, 0b101, 0b111],
    [0b111, 0b101, 0b111, 0b001, 0b111],
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_land_where_drawn() {
        let mut c = Canvas::new(20, 10, [255, 255, 255]);
        c.rect(0.0, 0.0, 5.0, 5.0, [255, 0, 0]);
        c.circle(15.0, 5.0, 3.0, [0, 0, 255]);
        let f = c.into_frame();
        assert_eq!((f.width, f.height, f.rgb.len()), (20, 10, 600));
        assert_eq!(f.pixel(2, 2), [255, 0, 0]);
        assert_eq!(f.pixel(15, 5), [0, 0, 255]);
        assert_eq!(f.pixel(10, 8), [255, 255, 255]);
    }
}
