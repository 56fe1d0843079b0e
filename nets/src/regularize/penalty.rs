//! Weight penalties: L1 (lasso), L2 (ridge / weight decay) and elastic net, as a scalar
//! [`Tensor`] to add to a loss before `backward()`.
//!
//! - L1: `lambda * sum |w|`; its gradient is `lambda * sign(w)` (candle's `abs` backward takes
//!   `sign(0) = +1`, where torch takes 0).
//! - L2: `lambda * sum w^2`; its gradient is `2 * lambda * w`. Torch's `weight_decay` adds
//!   `weight_decay * w` to the gradient, which is the gradient of `weight_decay / 2 * sum w^2`:
//!   an L2 penalty with coefficient `lambda` equals `weight_decay = 2 * lambda` for plain SGD
//!   (not for Adam-type optimizers, whose decoupled decay, AdamW, differs; Loshchilov and
//!   Hutter 2019).
//! - Elastic net (Zou and Hastie 2005): `l1 * sum |w| + l2 * sum w^2`.
//!
//! The sums run over every element of every chosen parameter; choose the weights (usually
//! not the biases) yourself.

use candle_core::{Result, Tensor, Var};
use serde::{Deserialize, Serialize};

use super::non_negative;

/// Something that holds a tensor: [`Tensor`] and [`Var`], so that penalties take `&[Var]`
/// (from `VarMap::all_vars`) or `&[Tensor]` alike.
pub trait Param {
    fn tensor(&self) -> &Tensor;
}

impl Param for Tensor {
    fn tensor(&self) -> &Tensor {
        self
    }
}

impl Param for Var {
    fn tensor(&self) -> &Tensor {
        self.as_tensor()
    }
}

impl<P: Param + ?Sized> Param for &P {
    fn tensor(&self) -> &Tensor {
        (**self).tensor()
    }
}

/// A weight penalty. In JSON: `{"kind": "l2", "lambda": 1e-4}`,
/// `{"kind": "elastic_net", "l1": 1e-5, "l2": 1e-4}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Penalty {
    /// `lambda * sum |w|`.
    L1 { lambda: f64 },
    /// `lambda * sum w^2` (torch `weight_decay = 2 * lambda` under SGD).
    L2 { lambda: f64 },
    /// `l1 * sum |w| + l2 * sum w^2`.
    ElasticNet { l1: f64, l2: f64 },
}

impl Penalty {
    /// Checks the coefficients: finite and `>= 0`. The error names the field, e.g.
    /// `invalid L2 penalty lambda = -1: expected a finite number >= 0`.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Penalty::L1 { lambda } => non_negative("L1 penalty", "lambda", lambda),
            Penalty::L2 { lambda } => non_negative("L2 penalty", "lambda", lambda),
            Penalty::ElasticNet { l1, l2 } => {
                non_negative("elastic-net penalty", "l1", l1)?;
                non_negative("elastic-net penalty", "l2", l2)
            }
        }
    }

    /// The penalty over `params` as a scalar tensor (rank 0) in the dtype and on the device of
    /// the first parameter, differentiable with respect to every parameter. Invalid
    /// coefficients and an empty `params` are errors.
    pub fn apply<P: Param>(&self, params: &[P]) -> Result<Tensor> {
        self.validate()?;
        let (l1, l2) = match *self {
            Penalty::L1 { lambda } => (lambda, 0.0),
            Penalty::L2 { lambda } => (0.0, lambda),
            Penalty::ElasticNet { l1, l2 } => (l1, l2),
        };
        let first = params
            .first()
            .ok_or_else(|| candle_core::Error::Msg("penalty over no parameters".into()))?
            .tensor();
        let mut total: Option<Tensor> = None;
        for p in params {
            let w = p.tensor();
            let mut term: Option<Tensor> = None;
            if l1 != 0.0 {
                term = Some(w.abs()?.sum_all()?.affine(l1, 0.0)?);
            }
            if l2 != 0.0 {
                let t = w.sqr()?.sum_all()?.affine(l2, 0.0)?;
                term = Some(match term {
                    Some(a) => (a + t)?,
                    None => t,
                });
            }
            let Some(term) = term else { continue };
            let term = term.to_dtype(first.dtype())?;
            total = Some(match total {
                Some(a) => (a + term)?,
                None => term,
            });
        }
        match total {
            Some(t) => Ok(t),
            // All coefficients zero: a zero that is still connected to the parameters.
            None => first.sum_all()?.affine(0.0, 0.0),
        }
    }
}

/// `lambda * sum |w|` over `params`; see [`Penalty::L1`].
pub fn l1<P: Param>(params: &[P], lambda: f64) -> Result<Tensor> {
    Penalty::L1 { lambda }.apply(params)
}

/// `lambda * sum w^2` over `params`; see [`Penalty::L2`].
pub fn l2<P: Param>(params: &[P], lambda: f64) -> Result<Tensor> {
    Penalty::L2 { lambda }.apply(params)
}

/// `l1 * sum |w| + l2 * sum w^2` over `params`; see [`Penalty::ElasticNet`].
pub fn elastic_net<P: Param>(params: &[P], l1: f64, l2: f64) -> Result<Tensor> {
    Penalty::ElasticNet { l1, l2 }.apply(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor, Var};

    fn vars() -> (Var, Var) {
        let dev = Device::Cpu;
        let a = Var::from_vec(vec![1.5f64, -2.0, 0.25, -0.5], (2, 2), &dev).unwrap();
        let b = Var::from_vec(vec![-3.0f64, 4.0], 2, &dev).unwrap();
        (a, b)
    }

    fn values(t: &Tensor) -> Vec<f64> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn values_on_hand_inputs() {
        let (a, b) = vars();
        let ps = [a, b];
        // sum |w| = 1.5 + 2 + 0.25 + 0.5 + 3 + 4 = 11.25; sum w^2 = 2.25+4+0.0625+0.25+9+16 = 31.5625
        let v = l1(&ps, 0.1).unwrap().to_scalar::<f64>().unwrap();
        assert!((v - 1.125).abs() < 1e-12);
        let v = l2(&ps, 0.01).unwrap().to_scalar::<f64>().unwrap();
        assert!((v - 0.315625).abs() < 1e-12);
        let v = elastic_net(&ps, 0.1, 0.01).unwrap().to_scalar::<f64>().unwrap();
        assert!((v - 1.440625).abs() < 1e-12);
        let tensors: Vec<Tensor> = ps.iter().map(|v| v.as_tensor().clone()).collect();
        assert_eq!(l1(&tensors, 0.1).unwrap().dims(), &[] as &[usize]);
    }

    #[test]
    fn gradients_are_lambda_sign_and_two_lambda_w() {
        let (a, b) = vars();
        let (lam1, lam2) = (0.3, 0.7);
        let ps = [a.clone(), b.clone()];
        let grads = l1(&ps, lam1).unwrap().backward().unwrap();
        for v in [&a, &b] {
            let g = values(grads.get(v).unwrap());
            let want: Vec<f64> = values(v).iter().map(|w| lam1 * w.signum()).collect();
            assert_eq!(g, want);
        }
        let grads = l2(&ps, lam2).unwrap().backward().unwrap();
        for v in [&a, &b] {
            let g = values(grads.get(v).unwrap());
            let want: Vec<f64> = values(v).iter().map(|w| 2.0 * lam2 * w).collect();
            for (g, w) in g.iter().zip(&want) {
                assert!((g - w).abs() < 1e-12, "{g} vs {w}");
            }
        }
        let grads = elastic_net(&ps, lam1, lam2).unwrap().backward().unwrap();
        let g = values(grads.get(&a).unwrap());
        let want: Vec<f64> =
            values(&a).iter().map(|w| lam1 * w.signum() + 2.0 * lam2 * w).collect();
        for (g, w) in g.iter().zip(&want) {
            assert!((g - w).abs() < 1e-12, "{g} vs {w}");
        }
    }

    #[test]
    fn invalid_coefficients_name_the_field() {
        let (a, _) = vars();
        let err = l2(&[&a], -1.0).unwrap_err().to_string();
        assert!(err.contains("L2 penalty lambda = -1"), "{err}");
        let err = elastic_net(&[&a], 0.1, f64::NAN).unwrap_err().to_string();
        assert!(err.contains("elastic-net penalty l2 = NaN"), "{err}");
        let err = l1(&[&a], f64::INFINITY).unwrap_err().to_string();
        assert!(err.contains("L1 penalty lambda"), "{err}");
        let none: [Var; 0] = [];
        assert!(l1(&none, 0.1).is_err());
    }

    #[test]
    fn serde_round_trip() {
        let p: Penalty =
            serde_json::from_str(r#"{"kind": "elastic_net", "l1": 1e-5, "l2": 1e-4}"#).unwrap();
        assert_eq!(p, Penalty::ElasticNet { l1: 1e-5, l2: 1e-4 });
        let s = serde_json::to_string(&Penalty::L2 { lambda: 0.5 }).unwrap();
        assert_eq!(s, r#"{"kind":"l2","lambda":0.5}"#);
    }
}
