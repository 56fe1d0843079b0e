//! Observation and action spaces, as Gymnasium's `Discrete`, `Box` and `MultiDiscrete`.
//!
//! A space describes a set of values; it can test membership (`contains_*`), draw a
//! uniform-ish sample from a caller's seeded RNG (`sample`), and give the length of the
//! flattened vector (`flat_dim`, Gymnasium's `flatdim`: a `Discrete(n)` flattens to a
//! one-hot vector of length `n`).

use rand::Rng;
use rand_distr::{Distribution, Exp1, StandardNormal};

/// A set of observations or actions.
#[derive(Debug, Clone, PartialEq)]
pub enum Space {
    /// The integers `0..n` (Gymnasium's `Discrete(n)` with `start = 0`).
    Discrete { n: usize },
    /// A box of `f32` values with per-element bounds (`None` = unbounded in that direction).
    Box(BoxSpace),
    /// A tuple of independent discrete values, element `i` in `0..nvec[i]`
    /// (Gymnasium's `MultiDiscrete`, also used for a tuple of `Discrete`s such as Blackjack's).
    MultiDiscrete { nvec: Vec<usize> },
}

/// A box space: `shape`, and bounds `low[i] <= x[i] <= high[i]` on the flattened values.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxSpace {
    /// Lower bounds, one per element; `f32::NEG_INFINITY` where unbounded below.
    pub low: Vec<f32>,
    /// Upper bounds, one per element; `f32::INFINITY` where unbounded above.
    pub high: Vec<f32>,
    /// The shape of one value (row-major); its product equals `low.len()`.
    pub shape: Vec<usize>,
}

/// A value drawn from a [`Space`].
#[derive(Debug, Clone, PartialEq)]
pub enum SpaceSample {
    Discrete(usize),
    Box(Vec<f32>),
    MultiDiscrete(Vec<usize>),
}

impl BoxSpace {
    /// Writes a uniform sample (as [`Space::sample`] draws it) into `out`, which must hold
    /// [`BoxSpace::len`] values; nothing is allocated.
    pub fn sample_into<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f32]) {
        for (o, (&lo, &hi)) in out.iter_mut().zip(self.low.iter().zip(&self.high)) {
            *o = sample_interval(rng, lo, hi);
        }
    }

    /// A box with the given bounds and shape. Bounds must have `shape.product()` elements,
    /// and `low <= high` elementwise (checked by [`Space::validate`]).
    pub fn new(low: Vec<f32>, high: Vec<f32>, shape: Vec<usize>) -> Self {
        BoxSpace { low, high, shape }
    }

    /// A one-dimensional box `[low, high]^n` with the same bounds for every element.
    pub fn uniform(low: f32, high: f32, n: usize) -> Self {
        BoxSpace { low: vec![low; n], high: vec![high; n], shape: vec![n] }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.low.len()
    }

    /// True for a box with no elements.
    pub fn is_empty(&self) -> bool {
        self.low.is_empty()
    }
}

impl Space {
    /// `Discrete(n)`.
    pub fn discrete(n: usize) -> Self {
        Space::Discrete { n }
    }

    /// A one-dimensional box from per-element bounds.
    pub fn boxed(low: Vec<f32>, high: Vec<f32>) -> Self {
        let shape = vec![low.len()];
        Space::Box(BoxSpace { low, high, shape })
    }

    /// Gymnasium's `flatdim`: `n` for `Discrete(n)` (one-hot), the number of elements of a
    /// box, and the sum of `nvec` for `MultiDiscrete` (concatenated one-hots).
    pub fn flat_dim(&self) -> usize {
        match self {
            Space::Discrete { n } => *n,
            Space::Box(b) => b.len(),
            Space::MultiDiscrete { nvec } => nvec.iter().sum(),
        }
    }

    /// Number of `f32` values a value of this space occupies when written as numbers, not
    /// one-hot: 1 for `Discrete` (the index), the element count of a box, `nvec.len()` for
    /// `MultiDiscrete`. This is the layout of [`crate::FlatObs`] and the type-erased env.
    pub fn value_len(&self) -> usize {
        match self {
            Space::Discrete { .. } => 1,
            Space::Box(b) => b.len(),
            Space::MultiDiscrete { nvec } => nvec.len(),
        }
    }

    /// True if `index` is a member of a `Discrete` space (false for other spaces).
    pub fn contains_index(&self, index: usize) -> bool {
        matches!(self, Space::Discrete { n } if index < *n)
    }

    /// True if the values (in the [`Space::value_len`] layout) are a member of this space:
    /// finite or infinite values inside the bounds of a box (NaN is never inside), or
    /// whole numbers in range for the discrete spaces.
    pub fn contains_values(&self, values: &[f32]) -> bool {
        if values.len() != self.value_len() {
            return false;
        }
        let whole_below = |x: f32, n: usize| x >= 0.0 && x.fract() == 0.0 && (x as usize) < n;
        match self {
            Space::Discrete { n } => whole_below(values[0], *n),
            Space::Box(b) => values
                .iter()
                .zip(b.low.iter().zip(&b.high))
                .all(|(&x, (&lo, &hi))| x >= lo && x <= hi),
            Space::MultiDiscrete { nvec } => {
                values.iter().zip(nvec).all(|(&x, &n)| whole_below(x, n))
            }
        }
    }

    /// Checks the space itself: `n > 0`, bounds of matching length and shape, `low <= high`,
    /// no NaN bounds. Returns a description of the first problem.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Space::Discrete { n } if *n == 0 => Err("Discrete space with n = 0".into()),
            Space::Discrete { .. } => Ok(()),
            Space::MultiDiscrete { nvec } if nvec.contains(&0) => {
                Err(format!("MultiDiscrete space with a zero in nvec {nvec:?}"))
            }
            Space::MultiDiscrete { .. } => Ok(()),
            Space::Box(b) => {
                let n: usize = b.shape.iter().product();
                if b.low.len() != n || b.high.len() != n {
                    return Err(format!(
                        "Box of shape {:?} ({n} elements) has {} low and {} high bounds",
                        b.shape,
                        b.low.len(),
                        b.high.len()
                    ));
                }
                match b
                    .low
                    .iter()
                    .zip(&b.high)
                    .position(|(lo, hi)| lo.is_nan() || hi.is_nan() || lo > hi)
                {
                    Some(i) => Err(format!(
                        "Box bound {i} is invalid: low {} high {}",
                        b.low[i], b.high[i]
                    )),
                    None => Ok(()),
                }
            }
        }
    }

    /// Draws a value with the caller's RNG, as Gymnasium does: uniform for discrete spaces
    /// and bounded box elements, `low + Exp(1)` / `high - Exp(1)` for half-bounded ones and
    /// `N(0, 1)` for unbounded ones.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> SpaceSample {
        match self {
            Space::Discrete { n } => SpaceSample::Discrete(rng.random_range(0..*n)),
            Space::MultiDiscrete { nvec } => {
                SpaceSample::MultiDiscrete(nvec.iter().map(|&n| rng.random_range(0..n)).collect())
            }
            Space::Box(b) => {
                let mut values = vec![0.0; b.len()];
                b.sample_into(rng, &mut values);
                SpaceSample::Box(values)
            }
        }
    }

    /// Short human-readable form, e.g. `Discrete(2)` or `Box([-1.0, -1.0], [1.0, 1.0], (2,))`.
    pub fn describe(&self) -> String {
        match self {
            Space::Discrete { n } => format!("Discrete({n})"),
            Space::MultiDiscrete { nvec } => format!("MultiDiscrete({nvec:?})"),
            Space::Box(b) => {
                let bound = |v: &[f32]| {
                    let first = v.first().copied().unwrap_or(0.0);
                    if v.iter().all(|&x| x == first) {
                        format!("{first}")
                    } else {
                        format!("{v:?}")
                    }
                };
                format!("Box({}, {}, {:?})", bound(&b.low), bound(&b.high), b.shape)
            }
        }
    }
}

impl std::fmt::Display for Space {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

fn sample_interval<R: Rng + ?Sized>(rng: &mut R, lo: f32, hi: f32) -> f32 {
    match (lo.is_finite(), hi.is_finite()) {
        (true, true) => {
            let u: f32 = rng.random();
            (lo + (hi - lo) * u).min(hi)
        }
        (true, false) => lo + Distribution::<f32>::sample(&Exp1, rng),
        (false, true) => hi - Distribution::<f32>::sample(&Exp1, rng),
        (false, false) => Distribution::<f32>::sample(&StandardNormal, rng),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn discrete_contains_and_samples_inside() {
        let space = Space::discrete(3);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut seen = [false; 3];
        for _ in 0..200 {
            let SpaceSample::Discrete(i) = space.sample(&mut rng) else { panic!("not discrete") };
            assert!(space.contains_index(i));
            seen[i] = true;
        }
        assert_eq!(seen, [true; 3]);
        assert!(!space.contains_index(3));
        assert!(space.contains_values(&[2.0]));
        assert!(!space.contains_values(&[1.5]));
        assert!(!space.contains_values(&[3.0]));
        assert_eq!(space.flat_dim(), 3);
        assert_eq!(space.value_len(), 1);
    }

    #[test]
    fn box_samples_respect_bounds_and_seed() {
        let inf = f32::INFINITY;
        let space = Space::boxed(vec![-1.0, 0.0, -inf, -inf], vec![1.0, inf, 2.0, inf]);
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..100).map(|_| space.sample(&mut rng)).collect::<Vec<_>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        for s in &a {
            let SpaceSample::Box(v) = s else { panic!("not a box sample") };
            assert!(space.contains_values(v), "{v:?}");
        }
        assert!(!space.contains_values(&[f32::NAN, 0.0, 0.0, 0.0]));
        assert!(!space.contains_values(&[0.0, 0.0, 0.0]));
        assert_eq!(space.flat_dim(), 4);
    }

    #[test]
    fn validate_names_the_problem() {
        assert!(Space::discrete(0).validate().unwrap_err().contains("n = 0"));
        let bad = Space::boxed(vec![1.0], vec![0.0]);
        assert!(bad.validate().unwrap_err().contains("bound 0"));
        let shape = Space::Box(BoxSpace::new(vec![0.0; 3], vec![1.0; 3], vec![2, 2]));
        assert!(shape.validate().unwrap_err().contains("4 elements"));
        assert!(Space::MultiDiscrete { nvec: vec![32, 11, 2] }.validate().is_ok());
    }
}
