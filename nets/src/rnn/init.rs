//! Reproducible initialisation shared by the sequence and attention layers.
//!
//! candle's CPU RNG cannot be seeded, so every layer here lists its parameters as
//! [`ParamSpec`]s (torch name, shape, distribution) and [`fill_varmap`] draws their values
//! from `ChaCha8Rng::seed_from_u64(seed)` in the listed order, row-major, writing them into a
//! [`VarMap`]. The layer is then loaded from that `VarMap` like from any checkpoint: the same
//! seed gives bit-identical weights.

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How one parameter is initialised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamInit {
    /// Uniform on `[-bound, bound)`.
    Uniform(f64),
    /// Every element equal to this value.
    Const(f64),
    /// Standard normal times `std` (Box–Muller on the seeded generator).
    Normal(f64),
}

/// One parameter: its full name (with prefix), shape and initialisation.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: ParamInit,
}

impl ParamSpec {
    pub fn new(name: impl Into<String>, shape: Vec<usize>, init: ParamInit) -> Self {
        Self { name: name.into(), shape, init }
    }
}

/// Joins a prefix and a name with a dot (`"enc" + "weight"` = `"enc.weight"`); an empty
/// prefix gives the name itself.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Draws every parameter of `specs`, in order, from `ChaCha8Rng::seed_from_u64(seed)` and
/// stores it in `varmap` (replacing the value of an existing variable of that name).
pub fn fill_varmap(
    varmap: &VarMap,
    specs: &[ParamSpec],
    seed: u64,
    dtype: DType,
    device: &Device,
) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut data =
        varmap.data().lock().map_err(|_| candle_core::Error::Msg("VarMap lock poisoned".into()))?;
    for spec in specs {
        let n: usize = spec.shape.iter().product();
        let values: Vec<f64> = match spec.init {
            ParamInit::Uniform(b) => {
                (0..n).map(|_| b * (2.0 * rng.random::<f64>() - 1.0)).collect()
            }
            ParamInit::Const(v) => vec![v; n],
            ParamInit::Normal(std) => (0..n)
                .map(|_| {
                    let u1: f64 = 1.0 - rng.random::<f64>();
                    let u2: f64 = rng.random::<f64>();
                    std * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
                })
                .collect(),
        };
        let t = Tensor::from_vec(values, spec.shape.clone(), device)?.to_dtype(dtype)?;
        match data.get(&spec.name) {
            Some(var) => var
                .set(&t)
                .map_err(|e| candle_core::Error::Msg(format!("setting {}: {e}", spec.name)))?,
            None => {
                data.insert(spec.name.clone(), Var::from_tensor(&t)?);
            }
        }
    }
    Ok(())
}
