//! A seeded generator of synthetic shapes: small images holding rectangles and discs, with
//! each object's class and bounding box and a per-pixel class mask. The data set of the
//! localization and segmentation examples, small enough to train on in seconds on a CPU.
//!
//! Each image (`channels x height x width`, values around `[0, 1]`) starts black; then for
//! each of its objects (a count uniform in `objects[0]..=objects[1]`):
//!
//! * the class is a rectangle or a disc with probability 1/2 each;
//! * a rectangle has integer width and height uniform in `size[0]..=size[1]` pixels and a
//!   uniform integer position inside the image; a disc has a diameter `d` drawn the same way
//!   and a real centre uniform in `[d/2, W - d/2] x [d/2, H - d/2]`, and covers the pixels
//!   whose centres `(x + 0.5, y + 0.5)` lie within `d/2` of it;
//! * the object is placed where its box overlaps no earlier object's box, retrying up to
//!   [`PLACEMENT_TRIES`] positions; the last try is kept even if it overlaps (the later
//!   object is then painted over the earlier one, in the image and in the mask, while both
//!   boxes stay whole);
//! * its pixels take an intensity uniform in `intensity` (per channel for colour images)
//!   and the mask the class (0 background, 1 rectangle, 2 disc).
//!
//! Finally Gaussian noise of standard deviation `noise_std` is added to every pixel. Boxes
//! are the tight extent of the object's own pixels, in fractions of the image size
//! (`x / width`, `y / height`), centre form. Every draw comes from one
//! `ChaCha8Rng::seed_from_u64(seed)` in a fixed order: the same seed gives the same images,
//! bit for bit.

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::boxes::BoundingBox;
use super::{config_error, VisionError};
use crate::data::{standard_normal, Dataset};

/// How many positions an object tries before it accepts an overlap.
pub const PLACEMENT_TRIES: usize = 20;

/// The number of mask classes: background, rectangle, disc.
pub const NUM_CLASSES: usize = 3;

/// What an object is; its mask class is [`ShapeKind::class`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShapeKind {
    Rectangle,
    Disc,
}

impl ShapeKind {
    /// The mask class: 1 for a rectangle, 2 for a disc (0 is the background).
    pub fn class(self) -> u8 {
        match self {
            ShapeKind::Rectangle => 1,
            ShapeKind::Disc => 2,
        }
    }
}

/// One object of an image: its kind and its box in fractions of the image size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShapeObject {
    pub kind: ShapeKind,
    pub bbox: BoundingBox,
}

/// The settings of the generator; see the [module documentation](self).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShapesConfig {
    pub height: usize,
    pub width: usize,
    /// 1 (grayscale) or 3 (colour).
    pub channels: usize,
    /// Inclusive range of the number of objects per image.
    pub objects: [usize; 2],
    /// Inclusive range of a rectangle's side or a disc's diameter, in pixels.
    pub size: [usize; 2],
    /// Inclusive range of an object's intensity, in `[0, 1]`.
    pub intensity: [f32; 2],
    /// Standard deviation of the Gaussian noise added to every pixel (0 for none).
    pub noise_std: f32,
}

impl Default for ShapesConfig {
    /// 32x32 grayscale, 1 to 3 objects of 6 to 16 pixels, intensity 0.4 to 1, noise 0.05.
    fn default() -> Self {
        Self {
            height: 32,
            width: 32,
            channels: 1,
            objects: [1, 3],
            size: [6, 16],
            intensity: [0.4, 1.0],
            noise_std: 0.05,
        }
    }
}

impl ShapesConfig {
    /// Exactly one object per image of `side x side` pixels, sized 4 to `side / 2` pixels;
    /// the rest as [`Default`].
    pub fn single_object(side: usize) -> Self {
        Self { height: side, width: side, objects: [1, 1], size: [4, side / 2], ..Self::default() }
    }

    /// Checks every field; the error names it.
    pub fn validate(&self) -> Result<(), VisionError> {
        let bad = |m: String| Err(config_error("shapes config", m));
        if self.height < 4 || self.width < 4 {
            return bad(format!(
                "height = {}, width = {}: expected at least 4 pixels each",
                self.height, self.width
            ));
        }
        if self.channels != 1 && self.channels != 3 {
            return bad(format!("channels = {}: expected 1 or 3", self.channels));
        }
        if self.objects[0] > self.objects[1] {
            return bad(format!("objects = {:?}: expected min <= max", self.objects));
        }
        let side = self.height.min(self.width);
        if self.size[0] < 2 || self.size[0] > self.size[1] || self.size[1] > side {
            return bad(format!(
                "size = {:?}: expected 2 <= min <= max <= {side} (the image's smaller side)",
                self.size
            ));
        }
        let [lo, hi] = self.intensity;
        if !(0.0..=1.0).contains(&lo) || !(0.0..=1.0).contains(&hi) || lo > hi {
            return bad(format!("intensity = {:?}: expected 0 <= min <= max <= 1", self.intensity));
        }
        if !(self.noise_std >= 0.0 && self.noise_std.is_finite()) {
            return bad(format!("noise_std = {}: expected a finite number >= 0", self.noise_std));
        }
        Ok(())
    }

    /// Values per image: `channels * height * width`.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }
}

/// A generated data set: images `[n, c, h, w]`, the objects of each image, and masks
/// `[n, h, w]` of classes.
#[derive(Debug, Clone, PartialEq)]
pub struct Shapes {
    config: ShapesConfig,
    images: Vec<f32>,
    masks: Vec<u8>,
    objects: Vec<Vec<ShapeObject>>,
}

/// An object's pixel rectangle `[x0, x1) x [y0, y1)`.
type PixelBox = [usize; 4];

fn overlaps(a: &PixelBox, b: &PixelBox) -> bool {
    a[0] < b[1] && b[0] < a[1] && a[2] < b[3] && b[2] < a[3]
}

/// The pixels of one object, drawn from `rng`.
fn draw_object(
    config: &ShapesConfig,
    kind: ShapeKind,
    rng: &mut ChaCha8Rng,
) -> Vec<(usize, usize)> {
    let (h, w) = (config.height, config.width);
    let [lo, hi] = config.size;
    match kind {
        ShapeKind::Rectangle => {
            let (rw, rh) = (rng.random_range(lo..=hi), rng.random_range(lo..=hi));
            let (x0, y0) = (rng.random_range(0..=w - rw), rng.random_range(0..=h - rh));
            (y0..y0 + rh).flat_map(|y| (x0..x0 + rw).map(move |x| (y, x))).collect()
        }
        ShapeKind::Disc => {
            let r = rng.random_range(lo..=hi) as f32 / 2.0;
            let cx = rng.random_range(r..=w as f32 - r);
            let cy = rng.random_range(r..=h as f32 - r);
            let mut pixels = Vec::new();
            for y in 0..h {
                for x in 0..w {
                    let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
                    if dx * dx + dy * dy <= r * r {
                        pixels.push((y, x));
                    }
                }
            }
            pixels
        }
    }
}

fn pixel_box(pixels: &[(usize, usize)]) -> PixelBox {
    let mut b = [usize::MAX, 0, usize::MAX, 0];
    for &(y, x) in pixels {
        b = [b[0].min(x), b[1].max(x + 1), b[2].min(y), b[3].max(y + 1)];
    }
    b
}

impl Shapes {
    /// `n` images drawn from `ChaCha8Rng::seed_from_u64(seed)`; see the
    /// [module documentation](self).
    pub fn generate(config: &ShapesConfig, n: usize, seed: u64) -> Result<Self, VisionError> {
        config.validate()?;
        if n == 0 {
            return Err(VisionError::Input("a shapes data set needs n >= 1 images".into()));
        }
        let (c, h, w) = (config.channels, config.height, config.width);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut images = vec![0f32; n * c * h * w];
        let mut masks = vec![0u8; n * h * w];
        let mut objects = Vec::with_capacity(n);
        for i in 0..n {
            let image = &mut images[i * c * h * w..(i + 1) * c * h * w];
            let mask = &mut masks[i * h * w..(i + 1) * h * w];
            let count = rng.random_range(config.objects[0]..=config.objects[1]);
            let mut placed: Vec<PixelBox> = Vec::with_capacity(count);
            let mut image_objects = Vec::with_capacity(count);
            for _ in 0..count {
                let kind =
                    if rng.random::<bool>() { ShapeKind::Rectangle } else { ShapeKind::Disc };
                let mut pixels = draw_object(config, kind, &mut rng);
                for _ in 1..PLACEMENT_TRIES {
                    if !placed.iter().any(|p| overlaps(p, &pixel_box(&pixels))) {
                        break;
                    }
                    pixels = draw_object(config, kind, &mut rng);
                }
                let pb = pixel_box(&pixels);
                placed.push(pb);
                let colour: Vec<f32> = (0..c)
                    .map(|_| rng.random_range(config.intensity[0]..=config.intensity[1]))
                    .collect();
                for &(y, x) in &pixels {
                    mask[y * w + x] = kind.class();
                    for (ch, &v) in colour.iter().enumerate() {
                        image[(ch * h + y) * w + x] = v;
                    }
                }
                let bbox = BoundingBox::from_corners(
                    pb[0] as f32 / w as f32,
                    pb[2] as f32 / h as f32,
                    pb[1] as f32 / w as f32,
                    pb[3] as f32 / h as f32,
                )?;
                image_objects.push(ShapeObject { kind, bbox });
            }
            if config.noise_std > 0.0 {
                for v in image.iter_mut() {
                    *v += config.noise_std * standard_normal(&mut rng) as f32;
                }
            }
            objects.push(image_objects);
        }
        Ok(Self { config: config.clone(), images, masks, objects })
    }

    pub fn config(&self) -> &ShapesConfig {
        &self.config
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Always false: [`Shapes::generate`] needs at least one image.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// All images, `[n, c, h, w]` row-major.
    pub fn images(&self) -> &[f32] {
        &self.images
    }

    /// Image `i` (`[c, h, w]`); `None` when out of range.
    pub fn image(&self, i: usize) -> Option<&[f32]> {
        let len = self.config.image_len();
        self.images.get(i * len..(i + 1) * len)
    }

    /// All masks, `[n, h, w]` row-major, classes 0 (background), 1, 2.
    pub fn masks(&self) -> &[u8] {
        &self.masks
    }

    /// The mask of image `i` (`[h, w]`); `None` when out of range.
    pub fn mask(&self, i: usize) -> Option<&[u8]> {
        let len = self.config.height * self.config.width;
        self.masks.get(i * len..(i + 1) * len)
    }

    /// The objects of every image, in painting order.
    pub fn objects(&self) -> &[Vec<ShapeObject>] {
        &self.objects
    }

    /// The images as one `[n, c, h, w]` tensor.
    pub fn images_tensor(&self, device: &Device) -> candle_core::Result<Tensor> {
        let c = &self.config;
        Tensor::from_slice(&self.images, (self.len(), c.channels, c.height, c.width), device)
    }

    /// The box of every image's single object; errors naming the first image with no object
    /// or several.
    pub fn single_boxes(&self) -> Result<Vec<BoundingBox>, VisionError> {
        self.objects
            .iter()
            .enumerate()
            .map(|(i, objs)| match objs.as_slice() {
                [one] => Ok(one.bbox),
                _ => Err(VisionError::Input(format!(
                    "image {i} has {} objects, localization needs exactly one per image \
                     (ShapesConfig::objects = [1, 1])",
                    objs.len()
                ))),
            })
            .collect()
    }

    /// Rows `[image (c h w values) | cx, cy, w, h]` of the single object of each image, for
    /// [`fit`](crate::train::fit()) and [`Localizer`](super::Localizer).
    pub fn localization_dataset(&self) -> Result<Dataset, VisionError> {
        let boxes = self.single_boxes()?;
        let len = self.config.image_len();
        let mut rows = Vec::with_capacity(self.len() * (len + 4));
        for (image, b) in self.images.chunks_exact(len).zip(&boxes) {
            rows.extend_from_slice(image);
            rows.extend_from_slice(&b.centre_form());
        }
        Ok(Dataset::new(rows, len + 4, None)?)
    }

    /// Rows `[image (c h w values) | mask (h w classes as f32)]`, for
    /// [`fit`](crate::train::fit()) and [`Fcn`](super::Fcn).
    pub fn segmentation_dataset(&self) -> Result<Dataset, VisionError> {
        let len = self.config.image_len();
        let mlen = self.config.height * self.config.width;
        let mut rows = Vec::with_capacity(self.len() * (len + mlen));
        for (image, mask) in self.images.chunks_exact(len).zip(self.masks.chunks_exact(mlen)) {
            rows.extend_from_slice(image);
            rows.extend(mask.iter().map(|&m| f32::from(m)));
        }
        Ok(Dataset::new(rows, len + mlen, None)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_masks_and_images_agree() {
        let config = ShapesConfig { noise_std: 0.0, ..ShapesConfig::default() };
        let s = Shapes::generate(&config, 40, 3).unwrap();
        let (h, w) = (config.height, config.width);
        let mut seen = [0usize; 3];
        for i in 0..s.len() {
            let mask = s.mask(i).unwrap();
            let image = s.image(i).unwrap();
            let objs = &s.objects()[i];
            assert!((1..=3).contains(&objs.len()));
            for y in 0..h {
                for x in 0..w {
                    let m = mask[y * w + x];
                    seen[m as usize] += 1;
                    // Without noise, a pixel is lit exactly where the mask has an object.
                    assert_eq!(m == 0, image[y * w + x] == 0.0, "image {i} pixel ({y}, {x})");
                    if m > 0 {
                        // Every object pixel lies inside the box of an object of its class.
                        let (fx, fy) = ((x as f32 + 0.5) / w as f32, (y as f32 + 0.5) / h as f32);
                        assert!(objs.iter().any(|o| {
                            let [x0, y0, x1, y1] = o.bbox.corners();
                            o.kind.class() == m && fx > x0 && fx < x1 && fy > y0 && fy < y1
                        }));
                    }
                }
            }
            for o in objs {
                let px = o.bbox.width() * w as f32;
                assert!((2.0 - 1e-4..=16.0 + 1e-4).contains(&px), "{o:?}");
            }
        }
        assert!(seen.iter().all(|&n| n > 0), "{seen:?}");
    }

    #[test]
    fn same_seed_same_data() {
        let c = ShapesConfig { channels: 3, ..ShapesConfig::default() };
        let a = Shapes::generate(&c, 5, 9).unwrap();
        assert_eq!(a, Shapes::generate(&c, 5, 9).unwrap());
        assert_ne!(a.images(), Shapes::generate(&c, 5, 10).unwrap().images());
        assert_eq!(a.images().len(), 5 * 3 * 32 * 32);
        assert_eq!(a.images_tensor(&Device::Cpu).unwrap().dims(), [5, 3, 32, 32]);
    }

    #[test]
    fn packed_rows_hold_image_then_target() {
        let c = ShapesConfig::single_object(16);
        let s = Shapes::generate(&c, 3, 1).unwrap();
        let d = s.localization_dataset().unwrap();
        assert_eq!((d.len(), d.dim()), (3, 256 + 4));
        assert_eq!(&d.row(2)[..256], s.image(2).unwrap());
        assert_eq!(d.row(2)[256..], s.objects()[2][0].bbox.centre_form());
        let d = s.segmentation_dataset().unwrap();
        assert_eq!(d.dim(), 512);
        assert_eq!(d.row(1)[256 + 17], f32::from(s.mask(1).unwrap()[17]));
        let multi = Shapes::generate(&ShapesConfig { objects: [2, 2], ..c }, 2, 0).unwrap();
        let e = multi.localization_dataset().unwrap_err().to_string();
        assert!(e.contains("image 0 has 2 objects"), "{e}");
    }

    #[test]
    fn bad_configs_are_errors() {
        let d = ShapesConfig::default();
        let cases = [
            (ShapesConfig { channels: 2, ..d.clone() }, "channels = 2"),
            (ShapesConfig { objects: [3, 1], ..d.clone() }, "objects"),
            (ShapesConfig { size: [4, 40], ..d.clone() }, "size"),
            (ShapesConfig { size: [1, 4], ..d.clone() }, "size"),
            (ShapesConfig { intensity: [0.5, 1.5], ..d.clone() }, "intensity"),
            (ShapesConfig { noise_std: -1.0, ..d.clone() }, "noise_std"),
            (ShapesConfig { height: 2, ..d.clone() }, "height"),
        ];
        for (c, field) in cases {
            let e = Shapes::generate(&c, 1, 0).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
        assert!(Shapes::generate(&d, 0, 0).is_err());
    }
}
