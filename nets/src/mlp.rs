//! A multilayer perceptron built from a serialisable [`MlpConfig`], with parameters named as
//! in torch's `nn.Sequential` and a seeded, reproducible initialisation.
//!
//! # Layout and parameter names
//!
//! The network is the torch module
//! `nn.Sequential(Linear, act, [Dropout], Linear, act, [Dropout], ..., Linear, out_act)`:
//! each hidden layer is a Linear, the hidden activation, then dropout when
//! [`MlpConfig::dropout`] is set; the last Linear is followed by the output activation and
//! never by dropout. Every module takes one index, so the Linear layers are at indices
//! `0, 2, 4, ...` without dropout and `0, 3, 6, ...` with it, and their parameters are named
//! `"{i}.weight"` (`[out, in]`) and `"{i}.bias"` (`[out]`), under an optional prefix
//! (`"actor.0.weight"`), so a torch `state_dict` of the same `nn.Sequential` maps one to one
//! (an `Identity` activation is counted as a module, as `nn.Identity()` would be).
//!
//! # Reproducible initialisation
//!
//! candle's CPU RNG cannot be seeded, so [`Mlp::seeded`] draws every initial value from our
//! own `ChaCha8Rng::seed_from_u64(seed)` (stream 0), layer by layer, weight then bias, in
//! row-major order, and writes them into a [`VarMap`] through [`Tensor::from_vec`]: the same
//! seed gives bit-identical weights. Dropout layer `k` (0-based) draws its masks from the same
//! seed on stream `k + 1`. [`Mlp::load`] builds from parameters a [`VarBuilder`] already holds
//! (a checkpoint or an initialised `VarMap`).

use candle_core::{DType, Device, Module, ModuleT, Result, Tensor, Var};
use candle_nn::{Linear, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::regularize::Dropout;

/// An elementwise activation, with torch's definitions. In JSON: `"relu"`, `"tanh"`,
/// `{"elu": 1.0}`, `{"leaky_relu": 0.01}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    Relu,
    Tanh,
    Sigmoid,
    /// `x` for `x > 0`, else `alpha * (exp(x) - 1)` (torch default `alpha = 1`).
    Elu(f64),
    /// `x` for `x > 0`, else `negative_slope * x` (torch default 0.01).
    LeakyRelu(f64),
    /// The exact (erf) GELU, torch's `nn.GELU()` default.
    Gelu,
    /// `x * sigmoid(x)` (SiLU / swish).
    Silu,
    Identity,
}

impl Module for Activation {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match *self {
            Activation::Relu => xs.relu(),
            Activation::Tanh => xs.tanh(),
            Activation::Sigmoid => candle_nn::ops::sigmoid(xs),
            Activation::Elu(alpha) => xs.elu(alpha),
            Activation::LeakyRelu(slope) => candle_nn::ops::leaky_relu(xs, slope),
            Activation::Gelu => xs.gelu_erf(),
            Activation::Silu => xs.silu(),
            Activation::Identity => Ok(xs.clone()),
        }
    }
}

/// How [`Mlp::seeded`] initialises the Linear layers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum MlpInit {
    /// torch's `nn.Linear` default: weight and bias from `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`
    /// (Kaiming-uniform with `a = sqrt(5)`).
    #[default]
    TorchDefault,
    /// Glorot and Bengio 2010: weight from `U(-b, b)`, `b = gain * sqrt(6 / (fan_in +
    /// fan_out))`; bias zero.
    XavierUniform { gain: f64 },
}

/// The shape and behaviour of an [`Mlp`]. In JSON:
/// `{"sizes": [4, 256, 256, 2], "activation": "tanh", "dropout": 0.1}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpConfig {
    /// Input size, hidden sizes, output size: at least two sizes, none zero.
    pub sizes: Vec<usize>,
    /// The activation after each hidden layer (default ReLU).
    #[serde(default)]
    pub activation: Activation,
    /// The activation after the last layer (default identity).
    #[serde(default = "identity")]
    pub output_activation: Activation,
    /// The initialisation used by [`Mlp::seeded`].
    #[serde(default)]
    pub init: MlpInit,
    /// Dropout probability after each hidden activation, in `[0, 1)`; `None` for none.
    #[serde(default)]
    pub dropout: Option<f64>,
}

fn identity() -> Activation {
    Activation::Identity
}

fn msg(s: String) -> candle_core::Error {
    candle_core::Error::Msg(s)
}

impl MlpConfig {
    /// A config with these sizes, ReLU hidden activations, identity output, torch's default
    /// init and no dropout.
    pub fn new(sizes: Vec<usize>) -> Self {
        Self {
            sizes,
            activation: Activation::Relu,
            output_activation: Activation::Identity,
            init: MlpInit::TorchDefault,
            dropout: None,
        }
    }

    /// Checks the sizes, the dropout probability and the init gain; errors name the problem.
    pub fn validate(&self) -> Result<()> {
        if self.sizes.len() < 2 {
            return Err(msg(format!(
                "MLP sizes must list at least an input and an output size, got {:?}",
                self.sizes
            )));
        }
        if let Some(i) = self.sizes.iter().position(|&s| s == 0) {
            return Err(msg(format!("MLP sizes[{i}] is zero in {:?}", self.sizes)));
        }
        if let Some(p) = self.dropout {
            if !(0.0..1.0).contains(&p) {
                return Err(crate::regularize::invalid(
                    "MLP",
                    "dropout",
                    p,
                    "a probability in [0, 1)",
                ));
            }
        }
        if let MlpInit::XavierUniform { gain } = self.init {
            crate::regularize::non_negative("MLP init", "gain", gain)?;
        }
        Ok(())
    }

    /// The `nn.Sequential` index of each Linear layer: `0, 2, 4, ...`, or `0, 3, 6, ...` with
    /// dropout.
    pub fn linear_indices(&self) -> Vec<usize> {
        let stride = if self.dropout.is_some() { 3 } else { 2 };
        (0..self.sizes.len().saturating_sub(1)).map(|k| k * stride).collect()
    }

    /// The number of parameters: `sum (in * out + out)` over the layers.
    pub fn num_parameters(&self) -> usize {
        self.sizes.windows(2).map(|w| w[0] * w[1] + w[1]).sum()
    }
}

fn name(prefix: &str, index: usize, what: &str) -> String {
    if prefix.is_empty() {
        format!("{index}.{what}")
    } else {
        format!("{prefix}.{index}.{what}")
    }
}

/// A multilayer perceptron; see the [module documentation](self) for layout and names.
/// Implements [`ModuleT`]: `forward_t(x, true)` applies dropout, `forward_t(x, false)` (and
/// [`Mlp::forward`]) does not.
#[derive(Debug)]
pub struct Mlp {
    linears: Vec<Linear>,
    dropouts: Vec<Option<Dropout>>,
    activation: Activation,
    output_activation: Activation,
}

impl Mlp {
    /// Builds from parameters `vb` already holds, named `"{i}.weight"` / `"{i}.bias"` under
    /// `vb`'s prefix; a missing parameter or a wrong shape is an error. Dropout layers draw
    /// from `dropout_seed` (layer `k` on stream `k + 1`).
    pub fn load(config: &MlpConfig, vb: VarBuilder, dropout_seed: u64) -> Result<Self> {
        config.validate()?;
        let n = config.sizes.len() - 1;
        let mut linears = Vec::with_capacity(n);
        let mut dropouts = Vec::with_capacity(n);
        for (k, (w, &i)) in config.sizes.windows(2).zip(&config.linear_indices()).enumerate() {
            let (fan_in, fan_out) = (w[0], w[1]);
            let get = |what: &str, shape: &[usize]| {
                let key = format!("{i}.{what}");
                if !vb.contains_tensor(&key) {
                    return Err(msg(format!(
                        "MLP parameter {} is missing",
                        name(&vb.prefix(), i, what)
                    )));
                }
                vb.get(shape, &key)
            };
            let weight = get("weight", &[fan_out, fan_in])?;
            let bias = get("bias", &[fan_out])?;
            linears.push(Linear::new(weight, Some(bias)));
            let hidden = k + 1 < n;
            dropouts.push(match (hidden, config.dropout) {
                (true, Some(p)) => Some(Dropout::with_stream(p, dropout_seed, k as u64 + 1)?),
                _ => None,
            });
        }
        Ok(Self {
            linears,
            dropouts,
            activation: config.activation,
            output_activation: config.output_activation,
        })
    }

    /// Initialises the parameters in `varmap` (named under `prefix`, `""` for none) from
    /// `ChaCha8Rng::seed_from_u64(seed)` per [`MlpConfig::init`], then builds the network on
    /// them. Existing variables of the same names are overwritten (with a shape check);
    /// missing ones are created. The same seed gives bit-identical parameters.
    pub fn seeded(
        config: &MlpConfig,
        varmap: &VarMap,
        prefix: &str,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        config.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        {
            let mut data = varmap.data().lock().map_err(|_| msg("VarMap lock poisoned".into()))?;
            for (w, &i) in config.sizes.windows(2).zip(&config.linear_indices()) {
                let (fan_in, fan_out) = (w[0], w[1]);
                let (wb, bb) = match config.init {
                    MlpInit::TorchDefault => {
                        let b = 1.0 / (fan_in as f64).sqrt();
                        (b, b)
                    }
                    MlpInit::XavierUniform { gain } => {
                        (gain * (6.0 / (fan_in + fan_out) as f64).sqrt(), 0.0)
                    }
                };
                for (what, shape, bound) in
                    [("weight", vec![fan_out, fan_in], wb), ("bias", vec![fan_out], bb)]
                {
                    let n: usize = shape.iter().product();
                    let values: Vec<f64> =
                        (0..n).map(|_| bound * (2.0 * rng.random::<f64>() - 1.0)).collect();
                    let t = Tensor::from_vec(values, shape, device)?.to_dtype(dtype)?;
                    let key = name(prefix, i, what);
                    match data.get(&key) {
                        Some(var) => var.set(&t).map_err(|e| msg(format!("setting {key}: {e}")))?,
                        None => {
                            data.insert(key, Var::from_tensor(&t)?);
                        }
                    }
                }
            }
        }
        let vb = VarBuilder::from_varmap(varmap, dtype, device);
        let vb = if prefix.is_empty() { vb } else { vb.pp(prefix) };
        Self::load(config, vb, seed)
    }

    /// The Linear layers, in order (weights `[out, in]`, e.g. for [`crate::regularize::MaxNorm`]
    /// through their `VarMap` variables, or for penalties).
    pub fn linears(&self) -> &[Linear] {
        &self.linears
    }

    /// The output without dropout (evaluation mode).
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.forward_t(xs, false)
    }
}

impl ModuleT for Mlp {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let n = self.linears.len();
        let mut h = xs.clone();
        for (k, (lin, drop)) in self.linears.iter().zip(&self.dropouts).enumerate() {
            h = lin.forward(&h)?;
            if k + 1 < n {
                h = self.activation.forward(&h)?;
                if let Some(d) = drop {
                    h = d.forward_t(&h, train)?;
                }
            } else {
                h = self.output_activation.forward(&h)?;
            }
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu() -> Device {
        Device::Cpu
    }

    fn snapshot(varmap: &VarMap) -> Vec<(String, Vec<f32>)> {
        let data = varmap.data().lock().unwrap();
        let mut v: Vec<_> = data
            .iter()
            .map(|(k, var)| (k.clone(), var.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    #[test]
    fn parameter_count_and_names() {
        let config = MlpConfig::new(vec![4, 256, 256, 2]);
        assert_eq!(config.num_parameters(), 67_586);
        let vm = VarMap::new();
        Mlp::seeded(&config, &vm, "", DType::F32, &cpu(), 0).unwrap();
        let count: usize = vm.all_vars().iter().map(|v| v.elem_count()).sum();
        assert_eq!(count, 67_586);
        let names: Vec<String> = snapshot(&vm).into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight"]);

        let config = MlpConfig { dropout: Some(0.1), ..config };
        assert_eq!(config.linear_indices(), [0, 3, 6]);
        let vm = VarMap::new();
        Mlp::seeded(&config, &vm, "actor", DType::F32, &cpu(), 0).unwrap();
        let names: Vec<String> = snapshot(&vm).into_iter().map(|(k, _)| k).collect();
        assert_eq!(names[..2], ["actor.0.bias", "actor.0.weight"]);
        assert_eq!(names[4..], ["actor.6.bias", "actor.6.weight"]);
    }

    #[test]
    fn same_seed_bit_identical_weights_within_bounds() {
        let config = MlpConfig::new(vec![3, 16, 2]);
        let (a, b, c) = (VarMap::new(), VarMap::new(), VarMap::new());
        Mlp::seeded(&config, &a, "", DType::F32, &cpu(), 7).unwrap();
        Mlp::seeded(&config, &b, "", DType::F32, &cpu(), 7).unwrap();
        Mlp::seeded(&config, &c, "", DType::F32, &cpu(), 8).unwrap();
        let (sa, sb, sc) = (snapshot(&a), snapshot(&b), snapshot(&c));
        let bits = |s: &[(String, Vec<f32>)]| -> Vec<u32> {
            s.iter().flat_map(|(_, v)| v.iter().map(|x| x.to_bits())).collect()
        };
        assert_eq!(bits(&sa), bits(&sb));
        assert_ne!(bits(&sa), bits(&sc));
        for (k, v) in &sa {
            let fan_in = if k.starts_with('0') { 3.0f32 } else { 16.0 };
            let bound = 1.0 / fan_in.sqrt();
            assert!(v.iter().all(|x| x.abs() <= bound), "{k}");
            assert!(v.iter().any(|x| x.abs() > 0.5 * bound), "{k} spans its range");
        }
        // Re-seeding an existing map overwrites it with the same values.
        Mlp::seeded(&config, &c, "", DType::F32, &cpu(), 7).unwrap();
        assert_eq!(bits(&snapshot(&c)), bits(&sa));
    }

    #[test]
    fn forward_matches_hand_computation_and_load_reuses_vars() {
        let config = MlpConfig {
            activation: Activation::Tanh,
            output_activation: Activation::Sigmoid,
            ..MlpConfig::new(vec![2, 3, 1])
        };
        let vm = VarMap::new();
        let mlp = Mlp::seeded(&config, &vm, "", DType::F64, &cpu(), 1).unwrap();
        let get = |k: &str| vm.data().lock().unwrap()[k].as_tensor().clone();
        let x = Tensor::new(&[[0.5f64, -1.0]], &cpu()).unwrap();
        let h =
            x.matmul(&get("0.weight").t().unwrap()).unwrap().broadcast_add(&get("0.bias")).unwrap();
        let y = h.tanh().unwrap().matmul(&get("2.weight").t().unwrap()).unwrap();
        let y = candle_nn::ops::sigmoid(&y.broadcast_add(&get("2.bias")).unwrap()).unwrap();
        let got: Vec<Vec<f64>> = mlp.forward(&x).unwrap().to_vec2().unwrap();
        assert_eq!(got, y.to_vec2::<f64>().unwrap());

        // Loading from the same map shares the variables: a set is seen by both.
        let loaded =
            Mlp::load(&config, VarBuilder::from_varmap(&vm, DType::F64, &cpu()), 0).unwrap();
        vm.data().lock().unwrap()["2.bias"]
            .set(&Tensor::new(&[100.0f64], &cpu()).unwrap())
            .unwrap();
        assert_eq!(loaded.forward(&x).unwrap().to_vec2::<f64>().unwrap(), vec![vec![1.0]]);
        assert_eq!(mlp.forward(&x).unwrap().to_vec2::<f64>().unwrap(), vec![vec![1.0]]);
    }

    #[test]
    fn gradients_reach_every_parameter() {
        let config = MlpConfig { dropout: Some(0.2), ..MlpConfig::new(vec![3, 8, 8, 2]) };
        let vm = VarMap::new();
        let mlp = Mlp::seeded(&config, &vm, "", DType::F32, &cpu(), 3).unwrap();
        let x = Tensor::ones((5, 3), DType::F32, &cpu()).unwrap();
        let loss = mlp.forward_t(&x, true).unwrap().sqr().unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        for v in vm.all_vars() {
            assert!(grads.get(&v).is_some());
        }
        // Dropout masks are seeded too: two identically seeded nets agree in training mode.
        let vm2 = VarMap::new();
        let mlp2 = Mlp::seeded(&config, &vm2, "", DType::F32, &cpu(), 3).unwrap();
        mlp2.forward_t(&x, true).unwrap(); // catch up with the pass above
        let a: Vec<Vec<f32>> = mlp.forward_t(&x, true).unwrap().to_vec2().unwrap();
        let b: Vec<Vec<f32>> = mlp2.forward_t(&x, true).unwrap().to_vec2().unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn invalid_configs_name_the_problem() {
        let vm = VarMap::new();
        let err =
            |c: MlpConfig| Mlp::seeded(&c, &vm, "", DType::F32, &cpu(), 0).unwrap_err().to_string();
        assert!(err(MlpConfig::new(vec![4])).contains("at least an input and an output"));
        assert!(err(MlpConfig::new(vec![4, 0, 2])).contains("sizes[1] is zero"));
        let e = err(MlpConfig { dropout: Some(1.0), ..MlpConfig::new(vec![4, 2]) });
        assert!(e.contains("MLP dropout = 1"), "{e}");
        let empty = VarMap::new();
        let e = Mlp::load(
            &MlpConfig::new(vec![4, 2]),
            VarBuilder::from_varmap(&empty, DType::F32, &cpu()).pp("q"),
            0,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("q.0.weight is missing"), "{e}");
    }

    #[test]
    fn config_serde() {
        let c: MlpConfig = serde_json::from_str(
            r#"{"sizes": [4, 64, 2], "activation": {"leaky_relu": 0.1}, "dropout": 0.1,
                "init": {"kind": "xavier_uniform", "gain": 1.0}}"#,
        )
        .unwrap();
        assert_eq!(c.activation, Activation::LeakyRelu(0.1));
        assert_eq!(c.output_activation, Activation::Identity);
        assert_eq!(c.init, MlpInit::XavierUniform { gain: 1.0 });
        let back: MlpConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}
