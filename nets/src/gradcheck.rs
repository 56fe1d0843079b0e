//! Finite-difference gradient checks: the gradient candle's backward pass computes for a
//! scalar function of some `f64` variables, against central differences
//! `(f(x + h e_i) - f(x - h e_i)) / 2h`. Used to test every layer that has no reference data.

use candle_core::{DType, Result, Tensor, Var};

/// The largest disagreement found by [`check_gradients`].
#[derive(Debug, Clone, PartialEq)]
pub struct GradCheck {
    /// Index of the variable and of the element where the error is largest.
    pub worst: (usize, usize),
    /// `|analytic - numeric| / (atol + rtol |numeric|)` at the worst element (<= 1 passes).
    pub worst_ratio: f64,
    /// The analytic and numeric gradient there.
    pub analytic: f64,
    pub numeric: f64,
}

impl GradCheck {
    /// True when every element was within tolerance.
    pub fn passed(&self) -> bool {
        self.worst_ratio <= 1.0
    }
}

/// Compares the backward-pass gradient of `f` (which must return a scalar, or any tensor
/// whose sum is taken) with central differences of step `h`, element by element, for every
/// variable in `vars` (all `f64`). Tolerance per element: `atol + rtol * |numeric|`.
///
/// With `h = 1e-6` in `f64`, smooth functions agree to about `1e-8`; kinks (ReLU, max
/// pooling) need inputs away from them.
pub fn check_gradients(
    vars: &[Var],
    f: impl Fn() -> Result<Tensor>,
    h: f64,
    atol: f64,
    rtol: f64,
) -> Result<GradCheck> {
    for v in vars {
        if v.dtype() != DType::F64 {
            candle_core::bail!("gradient checks need f64 variables, got {:?}", v.dtype())
        }
    }
    let loss = f()?.sum_all()?;
    let grads = loss.backward()?;
    let mut report = GradCheck { worst: (0, 0), worst_ratio: 0.0, analytic: 0.0, numeric: 0.0 };
    for (vi, var) in vars.iter().enumerate() {
        let analytic = match grads.get(var) {
            Some(g) => g.flatten_all()?.to_vec1::<f64>()?,
            None => vec![0.0; var.elem_count()],
        };
        let shape = var.shape().clone();
        let original = var.flatten_all()?.to_vec1::<f64>()?;
        let mut values = original.clone();
        for i in 0..values.len() {
            let mut eval = |x: f64| -> Result<f64> {
                values[i] = x;
                var.set(&Tensor::from_slice(&values, shape.clone(), var.device())?)?;
                f()?.sum_all()?.to_scalar::<f64>()
            };
            let numeric = (eval(original[i] + h)? - eval(original[i] - h)?) / (2.0 * h);
            values[i] = original[i];
            let ratio = (analytic[i] - numeric).abs() / (atol + rtol * numeric.abs());
            if ratio.is_nan() || ratio > report.worst_ratio {
                report = GradCheck {
                    worst: (vi, i),
                    worst_ratio: ratio,
                    analytic: analytic[i],
                    numeric,
                };
            }
        }
        var.set(&Tensor::from_slice(&original, shape, var.device())?)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn catches_a_right_and_a_wrong_gradient() {
        let x = Var::new(&[0.3f64, -1.2, 2.0], &Device::Cpu).unwrap();
        let ok = check_gradients(
            std::slice::from_ref(&x),
            || x.as_tensor().sqr()?.sin(),
            1e-6,
            1e-8,
            1e-6,
        )
        .unwrap();
        assert!(ok.passed(), "{ok:?}");
        // detach() hides the dependence of the second factor: the backward pass is wrong.
        let bad = check_gradients(
            std::slice::from_ref(&x),
            || x.as_tensor().mul(&x.as_tensor().detach()),
            1e-6,
            1e-8,
            1e-6,
        )
        .unwrap();
        assert!(!bad.passed(), "{bad:?}");
    }
}
