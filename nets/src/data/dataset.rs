//! An in-memory data set of feature rows with optional class labels, its seeded
//! train/validation split, and seeded mini-batching.

use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::DataError;

/// The height and width of the images a row holds (row-major, one channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageShape {
    pub height: usize,
    pub width: usize,
}

/// `len` rows of `dim` `f32` features (row-major, one contiguous buffer), with an optional
/// class label per row and an optional image shape (`height * width == dim`).
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    features: Vec<f32>,
    labels: Option<Vec<u32>>,
    dim: usize,
    image: Option<ImageShape>,
}

impl Dataset {
    /// A data set of `features.len() / dim` rows. Errors when `dim` is zero, the features
    /// are not a whole number of rows, a feature is not finite, or the labels are not one
    /// per row.
    pub fn new(
        features: Vec<f32>,
        dim: usize,
        labels: Option<Vec<u32>>,
    ) -> Result<Self, DataError> {
        if dim == 0 {
            return Err(DataError::Invalid("a data set needs dim >= 1, got 0".into()));
        }
        if !features.len().is_multiple_of(dim) {
            return Err(DataError::Invalid(format!(
                "{} feature values are not a whole number of rows of {dim}",
                features.len()
            )));
        }
        if let Some(i) = features.iter().position(|x| !x.is_finite()) {
            return Err(DataError::Invalid(format!(
                "feature {} of row {} is {}, expected a finite number",
                i % dim,
                i / dim,
                features[i]
            )));
        }
        let len = features.len() / dim;
        if let Some(l) = &labels {
            if l.len() != len {
                return Err(DataError::Invalid(format!(
                    "{} labels for {len} rows: expected one label per row",
                    l.len()
                )));
            }
        }
        Ok(Self { features, labels, dim, image: None })
    }

    /// The same data, declared as `height x width` images; errors unless `height * width`
    /// equals the row size.
    pub fn with_image_shape(mut self, height: usize, width: usize) -> Result<Self, DataError> {
        if height * width != self.dim {
            return Err(DataError::Invalid(format!(
                "image shape {height}x{width} does not match rows of {} features",
                self.dim
            )));
        }
        self.image = Some(ImageShape { height, width });
        Ok(self)
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.features.len() / self.dim
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// The number of features per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The image shape, when declared.
    pub fn image_shape(&self) -> Option<ImageShape> {
        self.image
    }

    /// All features, row-major.
    pub fn features(&self) -> &[f32] {
        &self.features
    }

    /// The labels, when the data set has them.
    pub fn labels(&self) -> Option<&[u32]> {
        self.labels.as_deref()
    }

    /// Row `i` (panics if `i >= len()`, as slice indexing does).
    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * self.dim..(i + 1) * self.dim]
    }

    /// `1 + ` the largest label (0 without labels or rows).
    pub fn num_classes(&self) -> usize {
        self.labels.as_ref().and_then(|l| l.iter().max()).map_or(0, |&m| m as usize + 1)
    }

    /// Every feature multiplied by `scale` (e.g. `1 / 16` for the digits).
    pub fn scaled(mut self, scale: f32) -> Self {
        self.features.iter_mut().for_each(|x| *x *= scale);
        self
    }

    /// The rows at `indices`, in that order; an index out of range is an error.
    pub fn subset(&self, indices: &[usize]) -> Result<Self, DataError> {
        let len = self.len();
        if let Some(&i) = indices.iter().find(|&&i| i >= len) {
            return Err(DataError::Invalid(format!("row index {i} out of range for {len} rows")));
        }
        let mut features = Vec::with_capacity(indices.len() * self.dim);
        for &i in indices {
            features.extend_from_slice(self.row(i));
        }
        let labels = self.labels.as_ref().map(|l| indices.iter().map(|&i| l[i]).collect());
        Ok(Self { features, labels, dim: self.dim, image: self.image })
    }

    /// A seeded random split: the rows are shuffled by `ChaCha8Rng::seed_from_u64(seed)`
    /// and the last `round(fraction * len)` go to the second set (validation or test),
    /// the rest to the first. `fraction` must be in `(0, 1)` and leave both sets non-empty.
    pub fn split(&self, fraction: f64, seed: u64) -> Result<(Self, Self), DataError> {
        let len = self.len();
        let n_second = (fraction * len as f64).round() as usize;
        if !(fraction > 0.0 && fraction < 1.0) || n_second == 0 || n_second >= len {
            return Err(DataError::Invalid(format!(
                "split fraction {fraction} of {len} rows must leave both parts non-empty"
            )));
        }
        let mut order: Vec<usize> = (0..len).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let (a, b) = order.split_at(len - n_second);
        Ok((self.subset(a)?, self.subset(b)?))
    }

    /// All rows as one `[len, dim]` tensor and the labels as `[len]` `u32`.
    pub fn tensors(&self, device: &Device) -> candle_core::Result<Batch> {
        let x = Tensor::from_slice(&self.features, (self.len(), self.dim), device)?;
        let labels = match &self.labels {
            Some(l) => Some(Tensor::from_slice(l, l.len(), device)?),
            None => None,
        };
        Ok(Batch { x, labels })
    }

    /// Mini-batches of `batch_size` rows over one pass, in an order shuffled by `rng` (or in
    /// order when `rng` is `None`); the last batch may be smaller. `batch_size` must be >= 1.
    pub fn batches<'a>(
        &'a self,
        batch_size: usize,
        rng: Option<&mut ChaCha8Rng>,
    ) -> Result<Batches<'a>, DataError> {
        if batch_size == 0 {
            return Err(DataError::Invalid("batch_size must be >= 1, got 0".into()));
        }
        let mut order: Vec<usize> = (0..self.len()).collect();
        if let Some(rng) = rng {
            order.shuffle(rng);
        }
        Ok(Batches { data: self, order, batch_size, next: 0 })
    }
}

/// One mini-batch: `x` is `[batch, dim]` `f32`, `labels` `[batch]` `u32` when the data set
/// has labels.
#[derive(Debug, Clone)]
pub struct Batch {
    pub x: Tensor,
    pub labels: Option<Tensor>,
}

/// An iterator over the mini-batches of one pass, as host buffers (see
/// [`Dataset::batches`]); [`Batches::next_into`] fills reusable buffers.
#[derive(Debug)]
pub struct Batches<'a> {
    data: &'a Dataset,
    order: Vec<usize>,
    batch_size: usize,
    next: usize,
}

impl Batches<'_> {
    /// The number of batches in the pass.
    pub fn count(&self) -> usize {
        self.order.len().div_ceil(self.batch_size)
    }

    /// Writes the next batch's rows into `x` and labels into `labels` (cleared first; left
    /// empty without labels) and returns the number of rows, or `None` at the end.
    pub fn next_into(&mut self, x: &mut Vec<f32>, labels: &mut Vec<u32>) -> Option<usize> {
        if self.next >= self.order.len() {
            return None;
        }
        let end = (self.next + self.batch_size).min(self.order.len());
        x.clear();
        labels.clear();
        for &i in &self.order[self.next..end] {
            x.extend_from_slice(self.data.row(i));
            if let Some(l) = &self.data.labels {
                labels.push(l[i]);
            }
        }
        let n = end - self.next;
        self.next = end;
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: usize) -> Dataset {
        let f = (0..n * 2).map(|v| v as f32).collect();
        Dataset::new(f, 2, Some((0..n as u32).collect())).unwrap()
    }

    #[test]
    fn split_is_seeded_disjoint_and_complete() {
        let d = toy(10);
        let (a, b) = d.split(0.3, 5).unwrap();
        assert_eq!((a.len(), b.len()), (7, 3));
        let (a2, _) = d.split(0.3, 5).unwrap();
        assert_eq!(a, a2);
        let mut all: Vec<u32> =
            a.labels().unwrap().iter().chain(b.labels().unwrap()).copied().collect();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        // Rows travel with their labels.
        for i in 0..b.len() {
            assert_eq!(b.row(i)[0], 2.0 * b.labels().unwrap()[i] as f32);
        }
        assert!(d.split(0.0, 1).is_err() && d.split(0.01, 1).is_err());
    }

    #[test]
    fn batches_cover_every_row_once_in_a_seeded_order() {
        let d = toy(10);
        let order = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut it = d.batches(4, Some(&mut rng)).unwrap();
            assert_eq!(it.count(), 3);
            let (mut x, mut l, mut seen, mut sizes) = (vec![], vec![], vec![], vec![]);
            while let Some(n) = it.next_into(&mut x, &mut l) {
                sizes.push(n);
                seen.extend_from_slice(&l);
            }
            assert_eq!(sizes, [4, 4, 2]);
            seen
        };
        let a = order(1);
        assert_eq!(a, order(1));
        assert_ne!(a, order(2));
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(Dataset::new(vec![1.0; 5], 2, None)
            .unwrap_err()
            .to_string()
            .contains("whole number"));
        let e = Dataset::new(vec![1.0; 4], 2, Some(vec![0])).unwrap_err().to_string();
        assert!(e.contains("1 labels for 2 rows"), "{e}");
        assert!(toy(2).with_image_shape(2, 2).is_err());
        assert!(toy(2).batches(0, None).is_err());
        let e = Dataset::new(vec![1.0, f32::NAN], 2, None).unwrap_err().to_string();
        assert!(e.contains("row 0"), "{e}");
    }
}
