//! The max-norm constraint (Srebro, Rennie and Jaakkola 2005, "Maximum-margin matrix
//! factorization"; used with dropout by Srivastava et al. 2014, section 5.1): after each
//! optimizer step, every row of a weight matrix (the incoming weights of one output unit,
//! candle's `Linear` weight being `[out, in]`) is projected onto the ball `||w_row||_2 <= r`:
//!
//! `w_row <- w_row * r / ||w_row||_2` where `||w_row||_2 > r`; rows within the ball are left
//! bit-for-bit unchanged.
//!
//! Unlike `torch.renorm` (which divides by `norm + 1e-7`) and Keras' `MaxNorm`
//! (`norm + epsilon`), there is no epsilon: a projected row has norm `r` up to rounding.

use candle_core::{Result, Var};
use serde::{Deserialize, Serialize};

use super::invalid;

/// Max-norm constraint with radius `r > 0` on the rows of rank-2 weights.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxNorm {
    /// The largest allowed L2 norm of a row.
    pub r: f64,
}

impl MaxNorm {
    /// A constraint of radius `r`: finite and `> 0`, else an error naming `r`.
    pub fn new(r: f64) -> Result<Self> {
        let c = Self { r };
        c.validate()?;
        Ok(c)
    }

    /// Checks that `r` is finite and `> 0`.
    pub fn validate(&self) -> Result<()> {
        if self.r.is_finite() && self.r > 0.0 {
            Ok(())
        } else {
            Err(invalid("max-norm", "r", self.r, "a finite number > 0"))
        }
    }

    /// Projects each row of `var` (rank 2, `[out, in]`) onto the ball of radius `r`, writing
    /// the result back with [`Var::set`]. Not part of any graph: call it after the optimizer
    /// step, outside the loss.
    pub fn apply(&self, var: &Var) -> Result<()> {
        self.validate()?;
        let w = var.as_tensor().detach();
        if w.rank() != 2 {
            return Err(candle_core::Error::Msg(format!(
                "max-norm applies to rank-2 weights [out, in], got shape {:?}",
                w.dims()
            )));
        }
        let norms = w.sqr()?.sum_keepdim(1)?.sqrt()?;
        // r / max(norm, r): exactly 1 for rows with norm <= r (and for zero rows).
        let r = norms.ones_like()?.affine(self.r, 0.0)?;
        let factor = r.div(&norms.maximum(&r)?)?;
        var.set(&w.broadcast_mul(&factor)?)
    }

    /// [`MaxNorm::apply`] to each of `vars`.
    pub fn apply_all(&self, vars: &[Var]) -> Result<()> {
        vars.iter().try_for_each(|v| self.apply(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn rows_over_r_are_rescaled_others_untouched() {
        let rows = vec![
            3.0f64, 4.0, 0.0, /* norm 5 */ 0.6, 0.8, 0.0, /* norm 1 */ 0.0, 0.0, 0.0,
        ];
        let v = Var::from_vec(rows, (3, 3), &Device::Cpu).unwrap();
        MaxNorm::new(2.0).unwrap().apply(&v).unwrap();
        let w: Vec<Vec<f64>> = v.as_tensor().to_vec2().unwrap();
        let want = [[1.2, 1.6, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 0.0]];
        for (i, (got, want)) in w.iter().zip(&want).enumerate() {
            for (g, e) in got.iter().zip(want) {
                if i == 0 {
                    assert!((g - e).abs() < 1e-12, "{g} vs {e}");
                } else {
                    assert_eq!(g, e, "row {i} must be untouched");
                }
            }
        }
        let n0 = (w[0][0] * w[0][0] + w[0][1] * w[0][1]).sqrt();
        assert!((n0 - 2.0).abs() < 1e-12);
    }

    #[test]
    fn f32_rows_projected() {
        let v = Var::from_tensor(&Tensor::new(&[[6.0f32, 8.0], [0.1, 0.2]], &Device::Cpu).unwrap())
            .unwrap();
        MaxNorm { r: 1.0 }.apply_all(std::slice::from_ref(&v)).unwrap();
        let w: Vec<Vec<f32>> = v.as_tensor().to_vec2().unwrap();
        assert!((w[0][0] - 0.6).abs() < 1e-6 && (w[0][1] - 0.8).abs() < 1e-6);
        assert_eq!(w[1], vec![0.1, 0.2]);
    }

    #[test]
    fn invalid_radius_and_rank_are_errors() {
        for r in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = MaxNorm::new(r).unwrap_err().to_string();
            assert!(err.contains("max-norm r"), "{err}");
        }
        let v = Var::from_vec(vec![1.0f64, 2.0], 2, &Device::Cpu).unwrap();
        let err = MaxNorm::new(1.0).unwrap().apply(&v).unwrap_err().to_string();
        assert!(err.contains("rank-2"), "{err}");
    }
}
