//! Gradient clipping over a `GradStore`, as `torch.nn.utils.clip_grad_norm_` and
//! `clip_grad_value_`.

use candle_core::backprop::GradStore;
use candle_core::{bail, DType, Result, Tensor, Var};

/// Scales the gradients of `vars` so that their global L2 norm (over all of them together)
/// is at most `max_norm`, and returns the norm before clipping. As torch, the factor is
/// `max_norm / (norm + 1e-6)`, applied only when it is below 1. Variables without a gradient
/// are skipped.
pub fn clip_grad_norm(grads: &mut GradStore, vars: &[Var], max_norm: f64) -> Result<f64> {
    if !(max_norm.is_finite() && max_norm > 0.0) {
        bail!("invalid max_norm = {max_norm}: expected a positive number")
    }
    // Sum the squares on the gradients' device and read one number back (one sync, not one
    // per variable).
    let mut total: Option<Tensor> = None;
    for var in vars {
        if let Some(g) = grads.get(var) {
            let squares = g.sqr()?.sum_all()?.to_dtype(DType::F64)?;
            total = Some(match total {
                Some(t) => (t + squares)?,
                None => squares,
            });
        }
    }
    let norm = match total {
        Some(t) => t.to_scalar::<f64>()?.sqrt(),
        None => 0.0,
    };
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        for var in vars {
            if let Some(g) = grads.remove(var) {
                grads.insert(var, g.affine(coef, 0.0)?);
            }
        }
    }
    Ok(norm)
}

/// Clamps every gradient value of `vars` into `[-clip_value, clip_value]`.
pub fn clip_grad_value(grads: &mut GradStore, vars: &[Var], clip_value: f64) -> Result<()> {
    if !(clip_value.is_finite() && clip_value >= 0.0) {
        bail!("invalid clip_value = {clip_value}: expected a number >= 0")
    }
    for var in vars {
        if let Some(g) = grads.remove(var) {
            grads.insert(var, g.clamp(-clip_value, clip_value)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn setup() -> (Vec<Var>, GradStore) {
        let a = Var::new(&[1.0f32, 2.0], &Device::Cpu).unwrap();
        let b = Var::new(&[[0.5f32]], &Device::Cpu).unwrap();
        // Gradients 3a = (3, 6) and 4b = (2): global norm sqrt(9 + 36 + 4) = 7.
        let loss = (a.as_tensor().sqr().unwrap().sum_all().unwrap().affine(1.5, 0.0).unwrap()
            + b.as_tensor().sqr().unwrap().sum_all().unwrap().affine(2.0, 0.0).unwrap())
        .unwrap();
        let grads = loss.backward().unwrap();
        (vec![a, b], grads)
    }

    fn grad_values(grads: &GradStore, vars: &[Var]) -> Vec<f32> {
        vars.iter()
            .flat_map(|v| grads.get(v).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .collect()
    }

    #[test]
    fn the_global_norm_is_returned_and_clipped() {
        let (vars, mut grads) = setup();
        let norm = clip_grad_norm(&mut grads, &vars, 3.5).unwrap();
        assert!((norm - 7.0).abs() < 1e-6);
        let coef = 3.5 / (7.0 + 1e-6);
        let expected: Vec<f32> = [3.0, 6.0, 2.0].iter().map(|g| (g * coef) as f32).collect();
        assert_eq!(grad_values(&grads, &vars), expected);
        // Under the limit nothing changes.
        let (vars, mut grads) = setup();
        assert!((clip_grad_norm(&mut grads, &vars, 10.0).unwrap() - 7.0).abs() < 1e-6);
        assert_eq!(grad_values(&grads, &vars), vec![3.0, 6.0, 2.0]);
        assert!(clip_grad_norm(&mut grads, &vars, -1.0).is_err());
    }

    #[test]
    fn values_are_clamped() {
        let (vars, mut grads) = setup();
        clip_grad_value(&mut grads, &vars, 2.5).unwrap();
        assert_eq!(grad_values(&grads, &vars), vec![2.5, 2.5, 2.0]);
        assert!(clip_grad_value(&mut grads, &vars, f64::NAN).is_err());
    }
}
