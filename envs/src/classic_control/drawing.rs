//! Geometry shared by the classic-control pictures.
//!
//! Gymnasium draws these envs with pygame in a y-up world (it flips the surface vertically at
//! the end); the helpers here take the same y-up coordinates and map them onto the y-down
//! [`crate::render::Canvas`], so the drawing code reads like Gymnasium's.

use crate::render::{Canvas, Rgb};

pub(crate) const WHITE: Rgb = [255, 255, 255];
pub(crate) const BLACK: Rgb = [0, 0, 0];

/// A canvas whose points are given y-up, as pygame's before `transform.flip(.., False, True)`.
pub(crate) struct FlippedCanvas {
    pub(crate) canvas: Canvas,
    height: f32,
}

impl FlippedCanvas {
    /// A white `width x height` canvas.
    pub(crate) fn new(width: u32, height: u32) -> Self {
        FlippedCanvas { canvas: Canvas::new(width, height, WHITE), height: height as f32 }
    }

    fn map(&self, (x, y): (f64, f64)) -> (f32, f32) {
        (x as f32, self.height - y as f32)
    }

    /// Fills a polygon given by y-up points.
    pub(crate) fn polygon(&mut self, points: &[(f64, f64)], color: Rgb) {
        let mapped: Vec<(f32, f32)> = points.iter().map(|&p| self.map(p)).collect();
        self.canvas.polygon(&mapped, color);
    }

    /// Fills a circle centred at a y-up point.
    pub(crate) fn circle(&mut self, centre: (f64, f64), radius: f64, color: Rgb) {
        let (x, y) = self.map(centre);
        self.canvas.circle(x, y, radius as f32, color);
    }

    /// Draws a line between two y-up points.
    pub(crate) fn line(&mut self, from: (f64, f64), to: (f64, f64), width: f32, color: Rgb) {
        let (a, b) = (self.map(from), self.map(to));
        self.canvas.line(a, b, width, color);
    }

    /// Draws an open polyline through y-up points.
    pub(crate) fn polyline(&mut self, points: &[(f64, f64)], width: f32, color: Rgb) {
        let mapped: Vec<(f32, f32)> = points.iter().map(|&p| self.map(p)).collect();
        self.canvas.polyline(&mapped, width, color);
    }
}

/// pygame's `Vector2(p).rotate_rad(angle)`: counter-clockwise rotation in y-up coordinates.
pub(crate) fn rotate((x, y): (f64, f64), angle: f64) -> (f64, f64) {
    let (s, c) = angle.sin_cos();
    (x * c - y * s, x * s + y * c)
}

/// The corners `(l, b), (l, t), (r, t), (r, b)` rotated by `angle` and moved to `origin`, the
/// way Gymnasium builds its cart, pole and link polygons.
pub(crate) fn box_corners(
    [l, r, t, b]: [f64; 4],
    angle: f64,
    origin: (f64, f64),
) -> [(f64, f64); 4] {
    [(l, b), (l, t), (r, t), (r, b)].map(|c| {
        let (x, y) = rotate(c, angle);
        (x + origin.0, y + origin.1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_is_counter_clockwise_and_flip_puts_y_up() {
        let (x, y) = rotate((1.0, 0.0), std::f64::consts::FRAC_PI_2);
        assert!(x.abs() < 1e-12 && (y - 1.0).abs() < 1e-12);
        let mut c = FlippedCanvas::new(10, 10);
        c.polygon(&[(0.0, 0.0), (10.0, 0.0), (10.0, 3.0), (0.0, 3.0)], BLACK);
        let f = c.canvas.into_frame();
        assert_eq!(f.pixel(5, 9), BLACK);
        assert_eq!(f.pixel(5, 1), WHITE);
    }
}
