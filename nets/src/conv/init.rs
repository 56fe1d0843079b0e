//! Seeded, reproducible initialisation of every convolutional layer and block in a
//! [`VarMap`], with torch's default distributions.
//!
//! candle's CPU RNG cannot be seeded, so the `VarBuilder` initialisers the layers use on
//! creation are not reproducible. [`torch_default_init`] overwrites every variable of a map
//! from a `ChaCha8Rng::seed_from_u64(seed)`, visiting the names in sorted order and each
//! tensor in row-major order, so the same seed gives bit-identical weights:
//!
//! * batch-norm buffers and affine parameters (a name `P.weight`/`P.bias` with a sibling
//!   `P.running_mean`): `running_mean` 0, `running_var` 1, `weight` 1, `bias` 0;
//! * any other `weight` of rank >= 2 (convolutions, transposed convolutions, linear layers):
//!   `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` with `fan_in = prod(shape[1..])`, torch's
//!   Kaiming-uniform with `a = sqrt(5)`;
//! * a `bias` next to such a weight: the same bound.

use candle_core::{Result, Tensor};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::geometry::layer_error;

/// Overwrites every variable of `map`; see the [module documentation](self). A `bias`
/// without a sibling weight, or a rank-1 `weight` outside a batch norm, is an error.
pub fn torch_default_init(map: &VarMap, seed: u64) -> Result<()> {
    let data = map.data().lock().map_err(|_| layer_error("init", "poisoned VarMap".into()))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for name in names {
        let var = &data[name];
        let (prefix, leaf) = name.rsplit_once('.').unwrap_or(("", name.as_str()));
        let sibling = |s: &str| {
            if prefix.is_empty() {
                s.to_string()
            } else {
                format!("{prefix}.{s}")
            }
        };
        let is_bn = data.contains_key(&sibling("running_mean"));
        let n = var.elem_count();
        let values: Vec<f64> = match (leaf, is_bn) {
            ("running_mean", _) | ("bias", true) => vec![0.0; n],
            ("running_var", _) | ("weight", true) => vec![1.0; n],
            ("weight", false) | ("bias", false) => {
                let weight =
                    data.get(&sibling("weight")).filter(|w| w.rank() >= 2).ok_or_else(|| {
                        layer_error("init", format!("{name}: no weight of rank >= 2 beside it"))
                    })?;
                let fan_in: usize = weight.dims()[1..].iter().product();
                let bound = 1.0 / (fan_in as f64).sqrt();
                (0..n).map(|_| rng.random_range(-bound..bound)).collect()
            }
            _ => continue,
        };
        let t = Tensor::from_vec(values, var.shape(), var.device())?.to_dtype(var.dtype())?;
        var.set(&t)?;
    }
    Ok(())
}
