//! The "optical recognition of handwritten digits" set (Alpaydin and Kaynak 1998, UCI
//! Machine Learning Repository, CC BY 4.0; the copy scikit-learn ships as `load_digits`):
//! 1,797 grayscale images of 8x8 pixels with values 0..=16 and a label 0..=9.
//!
//! The project commits it as `data/digits.csv.gz` (one row per image: the 64 pixels row by
//! row, then the label); see `data/README.md`.

use std::path::{Path, PathBuf};

use super::csv::{parse_csv, read_text, CsvOptions};
use super::{DataError, Dataset};

/// Number of images in the set.
pub const DIGITS_LEN: usize = 1797;
/// Image side in pixels.
pub const DIGITS_SIDE: usize = 8;
/// Largest pixel value.
pub const DIGITS_MAX: f32 = 16.0;

/// The path of the committed file, `data/digits.csv.gz` at the workspace root (found from
/// this crate's manifest directory at compile time).
pub fn default_digits_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/digits.csv.gz")
}

/// Loads the digits from a gzipped (or plain) CSV as an 8x8-image [`Dataset`] with labels,
/// pixels scaled to `[0, 1]` (divided by 16). Checks the row size, the pixel range and the
/// label range.
pub fn load_digits(path: impl AsRef<Path>) -> Result<Dataset, DataError> {
    let path = path.as_ref();
    let what = path.display().to_string();
    let data = parse_csv(&read_text(path)?, &what, CsvOptions { header: false, label_last: true })?;
    if data.dim() != DIGITS_SIDE * DIGITS_SIDE {
        return Err(DataError::Invalid(format!(
            "{what}: rows of {} pixels, expected 64",
            data.dim()
        )));
    }
    if let Some(i) = data.features().iter().position(|&p| !(0.0..=DIGITS_MAX).contains(&p)) {
        return Err(DataError::Invalid(format!(
            "{what}: pixel {} of image {} is {}, expected 0..=16",
            i % 64,
            i / 64,
            data.features()[i]
        )));
    }
    if data.num_classes() > 10 {
        return Err(DataError::Invalid(format!(
            "{what}: label {} outside 0..=9",
            data.num_classes() - 1
        )));
    }
    data.scaled(1.0 / DIGITS_MAX).with_image_shape(DIGITS_SIDE, DIGITS_SIDE)
}

/// [`load_digits`] from [`default_digits_path`].
pub fn digits() -> Result<Dataset, DataError> {
    load_digits(default_digits_path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_digits_load() {
        let d = digits().unwrap();
        assert_eq!((d.len(), d.dim(), d.num_classes()), (DIGITS_LEN, 64, 10));
        // The first image is a zero; scikit-learn's digits.images[0][0] = [0, 0, 5, 13, 9, 1, 0, 0].
        assert_eq!(d.labels().unwrap()[0], 0);
        let first: Vec<f32> = d.row(0)[..8].iter().map(|p| p * 16.0).collect();
        assert_eq!(first, [0.0, 0.0, 5.0, 13.0, 9.0, 1.0, 0.0, 0.0]);
        let mut counts = [0usize; 10];
        d.labels().unwrap().iter().for_each(|&l| counts[l as usize] += 1);
        assert!(counts.iter().all(|&c| (174..=183).contains(&c)), "{counts:?}");
    }
}
