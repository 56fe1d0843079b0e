//! Image augmentation for training batches: random shifts, horizontal flips, random crops
//! resized back to the full image, and Gaussian pixel noise (Simard, Steinkraus and Platt
//! 2003; Krizhevsky, Sutskever and Hinton 2012). Applied by [`fit`](crate::train::fit()) to
//! training batches only, never to validation or test data.
//!
//! Each image of a batch draws its own transformation from the augmenter's `ChaCha8Rng`,
//! in the order: crop, flip, shift, noise. Pixels moved in from outside are 0 (background);
//! noisy pixels are clamped to `[clamp.0, clamp.1]`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{standard_normal, DataError, ImageShape};

/// The transformations and their strengths. All off by default.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    /// Largest shift in pixels along each axis (uniform in `-max_shift..=max_shift`).
    pub max_shift: usize,
    /// Mirror left-right with probability 1/2 (not for digits, whose meaning changes).
    pub flip_horizontal: bool,
    /// Crop a random square-ish window of side `s * side`, `s` uniform in `[min_crop, 1]`,
    /// and resize it back (nearest neighbour). `1.0` disables.
    pub min_crop: f64,
    /// Standard deviation of Gaussian noise added to each pixel; 0 disables.
    pub noise_std: f64,
    /// The pixel range noise is clamped to.
    pub clamp: (f32, f32),
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            max_shift: 0,
            flip_horizontal: false,
            min_crop: 1.0,
            noise_std: 0.0,
            clamp: (0.0, 1.0),
        }
    }
}

/// An augmenter: a config, its generator and a scratch image.
#[derive(Debug, Clone)]
pub struct Augment {
    config: AugmentConfig,
    rng: ChaCha8Rng,
    scratch: Vec<f32>,
}

impl Augment {
    /// Checks the config (`min_crop` in `(0, 1]`, `noise_std >= 0`, `clamp.0 <= clamp.1`)
    /// and seeds the generator.
    pub fn new(config: AugmentConfig, seed: u64) -> Result<Self, DataError> {
        if !(config.min_crop > 0.0 && config.min_crop <= 1.0) {
            return Err(DataError::Invalid(format!(
                "augment min_crop = {}: expected (0, 1]",
                config.min_crop
            )));
        }
        if !(config.noise_std >= 0.0 && config.noise_std.is_finite()) {
            return Err(DataError::Invalid(format!(
                "augment noise_std = {}: expected >= 0",
                config.noise_std
            )));
        }
        if config.clamp.0 > config.clamp.1 || config.clamp.0.is_nan() || config.clamp.1.is_nan() {
            return Err(DataError::Invalid(format!(
                "augment clamp {:?}: expected low <= high",
                config.clamp
            )));
        }
        Ok(Self { config, rng: ChaCha8Rng::seed_from_u64(seed), scratch: Vec::new() })
    }

    /// The config.
    pub fn config(&self) -> &AugmentConfig {
        &self.config
    }

    /// Transforms every image of `batch` (rows of `shape.height * shape.width` pixels) in
    /// place. Errors when `batch` is not a whole number of images.
    pub fn apply(&mut self, batch: &mut [f32], shape: ImageShape) -> Result<(), DataError> {
        let (h, w) = (shape.height, shape.width);
        let dim = h * w;
        if dim == 0 || !batch.len().is_multiple_of(dim) {
            return Err(DataError::Invalid(format!(
                "augment: {} values are not whole {h}x{w} images",
                batch.len()
            )));
        }
        let c = self.config;
        self.scratch.resize(dim, 0.0);
        for img in batch.chunks_exact_mut(dim) {
            if c.min_crop < 1.0 {
                let s = self.rng.random_range(c.min_crop..=1.0);
                let (ch, cw) = (
                    ((s * h as f64).round() as usize).max(1),
                    ((s * w as f64).round() as usize).max(1),
                );
                let (top, left) =
                    (self.rng.random_range(0..=h - ch), self.rng.random_range(0..=w - cw));
                for r in 0..h {
                    for col in 0..w {
                        let (sr, sc) = (top + r * ch / h, left + col * cw / w);
                        self.scratch[r * w + col] = img[sr * w + sc];
                    }
                }
                img.copy_from_slice(&self.scratch);
            }
            if c.flip_horizontal && self.rng.random::<bool>() {
                img.chunks_exact_mut(w).for_each(|row| row.reverse());
            }
            if c.max_shift > 0 {
                let m = c.max_shift as i64;
                let (dy, dx) = (self.rng.random_range(-m..=m), self.rng.random_range(-m..=m));
                for r in 0..h as i64 {
                    for col in 0..w as i64 {
                        let (sr, sc) = (r - dy, col - dx);
                        let inside = (0..h as i64).contains(&sr) && (0..w as i64).contains(&sc);
                        self.scratch[(r * w as i64 + col) as usize] =
                            if inside { img[(sr * w as i64 + sc) as usize] } else { 0.0 };
                    }
                }
                img.copy_from_slice(&self.scratch);
            }
            if c.noise_std > 0.0 {
                for p in img.iter_mut() {
                    let v = *p + (c.noise_std * standard_normal(&mut self.rng)) as f32;
                    *p = v.clamp(c.clamp.0, c.clamp.1);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: ImageShape = ImageShape { height: 3, width: 3 };

    #[test]
    fn flips_and_shifts_move_pixels() {
        let img: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut a =
            Augment::new(AugmentConfig { flip_horizontal: true, ..Default::default() }, 0).unwrap();
        let mut seen_flip = false;
        for _ in 0..20 {
            let mut x = img.clone();
            a.apply(&mut x, S).unwrap();
            assert!(x == img || x == [3., 2., 1., 6., 5., 4., 9., 8., 7.]);
            seen_flip |= x != img;
        }
        assert!(seen_flip);
        let mut a = Augment::new(AugmentConfig { max_shift: 1, ..Default::default() }, 3).unwrap();
        for _ in 0..20 {
            let mut x = img.clone();
            a.apply(&mut x, S).unwrap();
            // A shift by at most one keeps the centre pixel's value somewhere in the image
            // and every value is an original pixel or the zero fill.
            assert!(x.contains(&5.0));
            assert!(x.iter().all(|v| *v == 0.0 || img.contains(v)));
        }
    }

    #[test]
    fn noise_is_seeded_and_clamped() {
        let cfg = AugmentConfig { noise_std: 0.5, min_crop: 0.5, ..Default::default() };
        let run = |seed| {
            let mut x = vec![0.5f32; 18];
            Augment::new(cfg, seed).unwrap().apply(&mut x, S).unwrap();
            x
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
        assert!(run(1).iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(Augment::new(cfg, 0).unwrap().apply(&mut [0.0; 10], S).is_err());
        assert!(Augment::new(AugmentConfig { min_crop: 0.0, ..cfg }, 0).is_err());
    }
}
