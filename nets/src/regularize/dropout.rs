//! Inverted dropout (Srivastava, Hinton, Krizhevsky, Sutskever and Salakhutdinov 2014,
//! "Dropout: a simple way to prevent neural networks from overfitting", JMLR 15) drawn from a
//! seeded generator, and Monte Carlo dropout (Gal and Ghahramani 2016, "Dropout as a Bayesian
//! approximation", ICML).
//!
//! In training each element is zeroed with probability `p` and the kept ones are scaled by
//! `1 / (1 - p)`, so the expected output equals the input and evaluation is the identity
//! (torch's `nn.Dropout`). The mask comes from a [`ChaCha8Rng`] owned by the layer, not from
//! candle's unseedable thread RNG, so the same seed gives the same masks, bit for bit.

use std::sync::Mutex;

use candle_core::{ModuleT, Result, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::invalid;

/// Inverted dropout with its own seeded generator. Implements [`ModuleT`]:
/// `forward_t(x, true)` drops, `forward_t(x, false)` is the identity.
///
/// Element `i` is kept when the `i`-th uniform draw `u` in `[0, 1)` (row-major order of the
/// input) satisfies `u >= p`; each forward in training advances the generator by one draw
/// per element. The mask is `1 / (1 - p)` or `0`, built on the host with
/// [`Tensor::from_vec`] and moved to the input's device and dtype; the output is
/// `x * mask`, so the gradient with respect to `x` is the mask.
#[derive(Debug)]
pub struct Dropout {
    p: f64,
    rng: Mutex<ChaCha8Rng>,
}

impl Dropout {
    /// Dropout with drop probability `p` in `[0, 1)`, its masks drawn from
    /// `ChaCha8Rng::seed_from_u64(seed)` (stream 0).
    pub fn new(p: f64, seed: u64) -> Result<Self> {
        Self::with_stream(p, seed, 0)
    }

    /// As [`Dropout::new`], on ChaCha stream `stream`: layers sharing one seed draw
    /// independent masks on distinct streams.
    pub fn with_stream(p: f64, seed: u64, stream: u64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(invalid("dropout", "p", p, "a probability in [0, 1)"));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        Ok(Self { p, rng: Mutex::new(rng) })
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// The next mask for `n` elements: `1 / (1 - p)` where kept, `0` where dropped.
    fn mask(&self, n: usize) -> Result<Vec<f64>> {
        let scale = 1.0 / (1.0 - self.p);
        let mut rng = self
            .rng
            .lock()
            .map_err(|_| candle_core::Error::Msg("dropout generator lock poisoned".into()))?;
        Ok((0..n).map(|_| if rng.random::<f64>() >= self.p { scale } else { 0.0 }).collect())
    }
}

impl ModuleT for Dropout {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        if !train || self.p == 0.0 {
            return Ok(xs.clone());
        }
        let mask = Tensor::from_vec(self.mask(xs.elem_count())?, xs.shape(), xs.device())?
            .to_dtype(xs.dtype())?;
        xs.mul(&mask)
    }
}

/// The mean and standard deviation of a model's output over Monte Carlo dropout passes.
#[derive(Debug, Clone)]
pub struct McEstimate {
    /// Elementwise mean over the passes, the shape of one output.
    pub mean: Tensor,
    /// Elementwise **population** standard deviation over the passes (divided by `N`, not
    /// `N - 1`), the shape of one output.
    pub std: Tensor,
}

/// Monte Carlo dropout (Gal and Ghahramani 2016): runs `model` `n` times on `xs` with
/// dropout kept on (`forward_t(xs, true)`) and returns the elementwise mean and population
/// standard deviation `sqrt(mean((y - mean)^2))` of the outputs. The mean estimates the
/// predictive mean, the std the model (epistemic) uncertainty.
///
/// The outputs are detached: no graph is built through the passes. Every module that
/// behaves differently in training runs in training mode, so use it on models whose only
/// train-time behaviour is dropout (not batch norm). `n` must be at least 1.
pub fn mc_dropout<M: ModuleT + ?Sized>(model: &M, xs: &Tensor, n: usize) -> Result<McEstimate> {
    if n == 0 {
        return Err(candle_core::Error::Msg(
            "MC dropout needs at least one pass, got n = 0".into(),
        ));
    }
    let outs = (0..n)
        .map(|_| model.forward_t(xs, true).map(|y| y.detach()))
        .collect::<Result<Vec<_>>>()?;
    // Shifted two-pass moments around the first pass: numerically stable, and exact when
    // every pass gives the same output (the mean is that output and the std exactly 0).
    let d = Tensor::stack(&outs, 0)?.broadcast_sub(&outs[0])?;
    let d_mean = d.mean(0)?;
    let std = d.broadcast_sub(&d_mean)?.sqr()?.mean(0)?.sqrt()?;
    let mean = (&outs[0] + d_mean)?;
    Ok(McEstimate { mean, std })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Module, Var};

    fn ones(n: usize) -> Tensor {
        Tensor::ones(n, DType::F64, &Device::Cpu).unwrap()
    }

    #[test]
    fn kept_fraction_and_scale() {
        let n = 100_000;
        for p in [0.1, 0.5, 0.8] {
            let d = Dropout::new(p, 7).unwrap();
            let x = Tensor::arange(1u32, n as u32 + 1, &Device::Cpu)
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap();
            let y: Vec<f64> = d.forward_t(&x, true).unwrap().to_vec1().unwrap();
            let xv: Vec<f64> = x.to_vec1().unwrap();
            let scale = 1.0 / (1.0 - p);
            let mut kept = 0usize;
            for (x, y) in xv.iter().zip(&y) {
                if *y != 0.0 {
                    assert_eq!(*y, x * scale);
                    kept += 1;
                }
            }
            // Binomial(n, 1 - p): within 5 standard deviations.
            let m = n as f64;
            let sd = (m * p * (1.0 - p)).sqrt();
            assert!((kept as f64 - m * (1.0 - p)).abs() < 5.0 * sd, "p = {p}: kept {kept}");
        }
    }

    #[test]
    fn kept_values_scaled_exactly_in_f32() {
        let d = Dropout::new(0.3, 1).unwrap();
        let x = Tensor::new(&[[1.7f32, -0.3, 2.5], [0.1, 9.0, -4.0]], &Device::Cpu).unwrap();
        let y: Vec<Vec<f32>> = d.forward_t(&x, true).unwrap().to_vec2().unwrap();
        let scale = (1.0 / (1.0 - 0.3f64)) as f32;
        for (xr, yr) in x.to_vec2::<f32>().unwrap().iter().zip(&y) {
            for (x, y) in xr.iter().zip(yr) {
                assert!(*y == 0.0 || *y == x * scale);
            }
        }
    }

    #[test]
    fn eval_is_identity_and_p_zero_keeps_all() {
        let d = Dropout::new(0.9, 3).unwrap();
        let x = Tensor::new(&[1.0f64, 2.0, 3.0], &Device::Cpu).unwrap();
        assert_eq!(d.forward_t(&x, false).unwrap().to_vec1::<f64>().unwrap(), vec![1.0, 2.0, 3.0]);
        let d = Dropout::new(0.0, 3).unwrap();
        assert_eq!(d.forward_t(&x, true).unwrap().to_vec1::<f64>().unwrap(), vec![1.0, 2.0, 3.0]);
    }

    #[test]
    fn same_seed_same_masks_other_seed_or_stream_differs() {
        let run = |seed, stream| {
            let d = Dropout::with_stream(0.5, seed, stream).unwrap();
            let a: Vec<f64> = d.forward_t(&ones(256), true).unwrap().to_vec1().unwrap();
            let b: Vec<f64> = d.forward_t(&ones(256), true).unwrap().to_vec1().unwrap();
            (a, b)
        };
        let (a1, b1) = run(42, 0);
        let (a2, b2) = run(42, 0);
        assert_eq!((&a1, &b1), (&a2, &b2));
        assert_ne!(a1, b1, "consecutive masks differ");
        assert_ne!(run(43, 0).0, a1);
        assert_ne!(run(42, 1).0, a1);
        assert_eq!(
            Dropout::new(0.5, 42)
                .unwrap()
                .forward_t(&ones(256), true)
                .unwrap()
                .to_vec1::<f64>()
                .unwrap(),
            a1
        );
    }

    #[test]
    fn gradient_is_the_scaled_mask() {
        let p = 0.25;
        let d = Dropout::new(p, 11).unwrap();
        let x = Var::from_vec(
            (0..64).map(|i| i as f64 * 0.1 - 3.0).collect::<Vec<_>>(),
            (8, 8),
            &Device::Cpu,
        )
        .unwrap();
        let y = d.forward_t(&x, true).unwrap();
        let grads = y.sum_all().unwrap().backward().unwrap();
        let g: Vec<f64> = grads.get(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        // Same seed, same first mask.
        let mask = Dropout::new(p, 11).unwrap().mask(64).unwrap();
        assert_eq!(g, mask);
        assert!(g.iter().all(|&v| v == 0.0 || v == 1.0 / (1.0 - p)));
    }

    #[test]
    fn invalid_p_is_an_error() {
        for p in [-0.1, 1.0, 1.5, f64::NAN] {
            let err = Dropout::new(p, 0).unwrap_err().to_string();
            assert!(err.contains("dropout p"), "{err}");
        }
    }

    /// `Dropout(p)` then a fixed linear layer.
    struct Tiny {
        drop: Dropout,
        lin: candle_nn::Linear,
    }

    impl ModuleT for Tiny {
        fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
            self.lin.forward(&self.drop.forward_t(xs, train)?)
        }
    }

    fn tiny(p: f64) -> Tiny {
        let dev = Device::Cpu;
        let w = Tensor::new(&[[0.5f64, -1.0, 2.0, 0.25], [1.5, 0.75, -0.5, 1.0]], &dev).unwrap();
        let b = Tensor::new(&[0.1f64, -0.2], &dev).unwrap();
        Tiny { drop: Dropout::new(p, 5).unwrap(), lin: candle_nn::Linear::new(w, Some(b)) }
    }

    #[test]
    fn mc_dropout_p_zero_is_deterministic() {
        let m = tiny(0.0);
        let x =
            Tensor::new(&[[1.0f64, 2.0, -1.0, 0.5], [0.0, -3.0, 1.0, 2.0]], &Device::Cpu).unwrap();
        let det: Vec<Vec<f64>> = m.forward_t(&x, false).unwrap().to_vec2().unwrap();
        let est = mc_dropout(&m, &x, 10).unwrap();
        assert_eq!(est.mean.to_vec2::<f64>().unwrap(), det);
        assert!(est.std.flatten_all().unwrap().to_vec1::<f64>().unwrap().iter().all(|&s| s == 0.0));
    }

    #[test]
    fn mc_dropout_std_positive_and_mean_converges() {
        let m = tiny(0.3);
        let x = Tensor::new(&[[1.0f64, 2.0, -1.0, 0.5]], &Device::Cpu).unwrap();
        let det: Vec<f64> =
            m.forward_t(&x, false).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let err_at = |n| {
            let est = mc_dropout(&m, &x, n).unwrap();
            let mean: Vec<f64> = est.mean.flatten_all().unwrap().to_vec1().unwrap();
            let std: Vec<f64> = est.std.flatten_all().unwrap().to_vec1().unwrap();
            assert!(std.iter().all(|&s| s > 0.0), "{std:?}");
            // The mean of n i.i.d. passes: within 5 standard errors of the expectation.
            for ((m, d), s) in mean.iter().zip(&det).zip(&std) {
                assert!((m - d).abs() < 5.0 * s / (n as f64).sqrt(), "n = {n}: {m} vs {d}");
            }
            mean.iter().zip(&det).map(|(m, d)| (m - d).abs()).fold(0.0, f64::max)
        };
        let e_small = err_at(20);
        let e_large = err_at(20_000);
        assert!(e_large < 0.05, "{e_large}");
        assert!(e_large < e_small, "{e_large} vs {e_small}");
        assert!(mc_dropout(&m, &x, 0).is_err());
    }
}
