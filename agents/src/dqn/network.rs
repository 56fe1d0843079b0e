//! The Q-network: a torso (feature extractor) and a head (plain, dueling, distributional),
//! built on candle `Var`s for the batched gradient step.
//!
//! ```text
//! features = torso(obs)                                   Torso::Mlp: ReLU(linear) per hidden size
//! plain:     out = linear(features)                        [batch, actions * atoms]
//! dueling:   V = linear_v(features) [batch, 1, atoms],  A = linear_a(features) [batch, actions, atoms]
//!            out = V + A - agg_a A          agg = max (Wang et al. eq. 8) or mean (eq. 9)
//! ```
//!
//! `atoms = 1` gives Q-values; with the distributional head `out` holds per-action logits over
//! the C51 support (softmax over the last axis). The dueling aggregation is applied per atom,
//! to the logits, as in Rainbow.
//!
//! **Layout.** Each linear layer stores its weight as `[in, out]` and computes `x W + 1 b`
//! (the bias as a `[1, out]` row added through a `[batch, 1]` column of ones): no transposed
//! weight enters the graph and the bias gradient is a matrix product rather than a reduction
//! over the batch axis, both of which take candle's slow strided paths (`CANDLE-NOTES.md`).
//! Parameters are named `l{k}.weight` (`[in, out]`), `l{k}.bias` (`[1, out]`) and, for noisy
//! layers, `l{k}.weight_sigma` / `l{k}.bias_sigma`; the head's layers follow the torso's.
//!
//! **Noisy layers** ([`super::noisy`]): with `noisy`, every layer but the first is a
//! factorised NoisyLinear. The first layer reads raw observations and plays the role of
//! Rainbow's convolutional torso, which has no noise.
//!
//! **Initialisation** is drawn from `ChaCha8Rng::seed_from_u64(seed)` in layer order (weight,
//! then bias): torch's `nn.Linear` default `U(-1/sqrt(in), 1/sqrt(in))` for plain layers and
//! the means of noisy ones, `sigma0 / sqrt(in)` for the sigmas.

use super::config::Dueling;
use super::noisy::{initial_sigma, FactorisedNoise};
use crate::error::{AgentError, Result};
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The feature extractor.
///
/// Only [`Torso::Mlp`] exists now. A CNN torso for image observations plugs in as a second
/// variant: it maps `[batch, channels, height, width]` to `[batch, features]`, and the head
/// below is unchanged (its first layer's fan-in is the torso's feature count).
#[derive(Debug, Clone, PartialEq)]
pub enum Torso {
    /// ReLU layers of these hidden sizes on flat observations.
    Mlp { hidden: Vec<usize> },
}

/// The shape of a Q-network.
#[derive(Debug, Clone, PartialEq)]
pub struct NetShape {
    pub obs_dim: usize,
    pub n_actions: usize,
    /// 1 for Q-values, the support size for C51.
    pub atoms: usize,
    pub torso: Torso,
    pub dueling: Dueling,
    pub noisy: bool,
    pub sigma0: f64,
}

/// What a layer's output is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A hidden layer (ReLU after it).
    Hidden,
    /// The plain head (`actions * atoms` outputs).
    Q,
    /// The dueling value stream (`atoms` outputs).
    Value,
    /// The dueling advantage stream (`actions * atoms` outputs).
    Advantage,
}

/// One linear layer's variables and, when noisy, its current noise.
#[derive(Debug)]
pub struct Layer {
    pub role: Role,
    pub fan_in: usize,
    pub fan_out: usize,
    pub weight: Var,
    pub bias: Var,
    pub weight_sigma: Option<Var>,
    pub bias_sigma: Option<Var>,
    pub noise: Option<FactorisedNoise>,
    /// The noise as tensors `[in, out]` and `[1, out]`, rebuilt by [`QNet::resample_noise`].
    noise_tensors: Option<(Tensor, Tensor)>,
}

impl NetShape {
    /// The layers as `(role, fan_in, fan_out)`, torso first.
    pub fn layers(&self) -> Vec<(Role, usize, usize)> {
        let Torso::Mlp { hidden } = &self.torso;
        let mut out = Vec::new();
        let mut fan_in = self.obs_dim;
        for &h in hidden {
            out.push((Role::Hidden, fan_in, h));
            fan_in = h;
        }
        let q = self.n_actions * self.atoms;
        match self.dueling {
            Dueling::None => out.push((Role::Q, fan_in, q)),
            Dueling::Max | Dueling::Mean => {
                out.push((Role::Value, fan_in, self.atoms));
                out.push((Role::Advantage, fan_in, q));
            }
        }
        out
    }
}

fn lock_err() -> AgentError {
    AgentError::Shape("VarMap lock poisoned".into())
}

/// A Q-network on candle variables (see the [module docs](self)).
pub struct QNet {
    pub shape: NetShape,
    pub layers: Vec<Layer>,
    pub varmap: VarMap,
    device: Device,
}

impl QNet {
    /// A network initialised from `seed` (see the [module docs](self)).
    pub fn new(shape: NetShape, seed: u64, device: &Device) -> Result<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let varmap = VarMap::new();
        let mut layers = Vec::new();
        for (k, (role, fan_in, fan_out)) in shape.layers().into_iter().enumerate() {
            let noisy = shape.noisy && k > 0;
            let bound = 1.0 / (fan_in as f64).sqrt();
            let mut uniform = |n: usize| -> Vec<f32> {
                (0..n).map(|_| (bound * (2.0 * rng.random::<f64>() - 1.0)) as f32).collect()
            };
            let w = uniform(fan_in * fan_out);
            let b = uniform(fan_out);
            let var = |data: Vec<f32>, rows: usize, name: String| -> Result<Var> {
                let t = Tensor::from_vec(data, (rows, fan_out), device)?;
                let v = Var::from_tensor(&t)?;
                varmap.data().lock().map_err(|_| lock_err())?.insert(name, v.clone());
                Ok(v)
            };
            let weight = var(w, fan_in, format!("l{k}.weight"))?;
            let bias = var(b, 1, format!("l{k}.bias"))?;
            let (weight_sigma, bias_sigma, noise) = if noisy {
                let s = initial_sigma(shape.sigma0, fan_in);
                (
                    Some(var(vec![s; fan_in * fan_out], fan_in, format!("l{k}.weight_sigma"))?),
                    Some(var(vec![s; fan_out], 1, format!("l{k}.bias_sigma"))?),
                    Some(FactorisedNoise::zeros(fan_in, fan_out)),
                )
            } else {
                (None, None, None)
            };
            layers.push(Layer {
                role,
                fan_in,
                fan_out,
                weight,
                bias,
                weight_sigma,
                bias_sigma,
                noise,
                noise_tensors: None,
            });
        }
        let mut net = QNet { shape, layers, varmap, device: device.clone() };
        net.set_noise_tensors()?;
        Ok(net)
    }

    /// The trainable variables in a fixed order (layer by layer: weight, bias, then sigmas).
    pub fn vars(&self) -> Vec<Var> {
        let mut vars = Vec::new();
        for l in &self.layers {
            vars.push(l.weight.clone());
            vars.push(l.bias.clone());
            vars.extend(l.weight_sigma.iter().cloned());
            vars.extend(l.bias_sigma.iter().cloned());
        }
        vars
    }

    /// Draws fresh factorised noise for every noisy layer (no-op without noisy layers).
    pub fn resample_noise<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Result<()> {
        let mut any = false;
        for l in &mut self.layers {
            if let Some(n) = &mut l.noise {
                n.resample(rng);
                any = true;
            }
        }
        if any {
            self.set_noise_tensors()?;
        }
        Ok(())
    }

    fn set_noise_tensors(&mut self) -> Result<()> {
        let mut scratch = Vec::new();
        for l in &mut self.layers {
            if let Some(n) = &l.noise {
                n.weight_noise(&mut scratch);
                let w = Tensor::from_slice(&scratch, (l.fan_in, l.fan_out), &self.device)?;
                let b = Tensor::from_slice(&n.output, (1, l.fan_out), &self.device)?;
                l.noise_tensors = Some((w, b));
            }
        }
        Ok(())
    }

    /// Copies every variable of `other` (same shape) into this network: `tau = 1`, or
    /// `self <- tau other + (1 - tau) self` (Polyak averaging).
    pub fn update_from(&self, other: &QNet, tau: f64) -> Result<()> {
        for (mine, theirs) in self.vars().iter().zip(other.vars()) {
            if mine.dims() != theirs.dims() {
                return Err(AgentError::Shape(format!(
                    "target update: shapes {:?} and {:?} differ",
                    mine.dims(),
                    theirs.dims()
                )));
            }
            if tau >= 1.0 {
                mine.set(theirs.as_tensor())?;
            } else {
                let blended = ((theirs.as_tensor() * tau)? + (mine.as_tensor() * (1.0 - tau))?)?;
                mine.set(&blended)?;
            }
        }
        Ok(())
    }

    /// The network's output `[batch, actions, atoms]` for observations `[batch, obs_dim]`.
    /// `ones` is a `[batch, 1]` column of ones (kept by the caller to avoid reallocating it).
    /// With `track = false` the weights enter detached: no graph is recorded.
    pub fn forward(&self, obs: &Tensor, ones: &Tensor, track: bool) -> Result<Tensor> {
        let p = |v: &Var| if track { v.as_tensor().clone() } else { v.as_tensor().detach() };
        let linear = |l: &Layer, x: &Tensor| -> Result<Tensor> {
            let (mut w, mut b) = (p(&l.weight), p(&l.bias));
            if let (Some(ws), Some(bs), Some((nw, nb))) =
                (&l.weight_sigma, &l.bias_sigma, &l.noise_tensors)
            {
                w = (w + (p(ws) * nw)?)?;
                b = (b + (p(bs) * nb)?)?;
            }
            Ok((x.matmul(&w)? + ones.matmul(&b)?)?)
        };
        let batch = obs.dim(0)?;
        let (a, n) = (self.shape.n_actions, self.shape.atoms);
        let mut h = obs.clone();
        let mut value = None;
        let mut out = None;
        for l in &self.layers {
            match l.role {
                Role::Hidden => h = linear(l, &h)?.relu()?,
                Role::Q => out = Some(linear(l, &h)?.reshape((batch, a, n))?),
                Role::Value => value = Some(linear(l, &h)?.reshape((batch, 1, n))?),
                Role::Advantage => {
                    let adv = linear(l, &h)?.reshape((batch, a, n))?;
                    let agg = match self.shape.dueling {
                        Dueling::Max => adv.max_keepdim(1)?,
                        _ => adv.mean_keepdim(1)?,
                    };
                    let v = value.take().ok_or_else(|| {
                        AgentError::Shape("dueling head: advantage before value".into())
                    })?;
                    out = Some(adv.broadcast_add(&(v - agg)?)?);
                }
            }
        }
        out.ok_or_else(|| AgentError::Shape("Q-network without a head".into()))
    }

    /// A `[batch, 1]` column of ones on the network's device.
    pub fn ones(&self, batch: usize) -> Result<Tensor> {
        Ok(Tensor::ones((batch, 1), DType::F32, &self.device)?)
    }
}

/// Reduces `[batch, actions, atoms]` logits to expected Q-values `[batch, actions]` on the
/// support `z` (`[atoms]`), or squeezes `[batch, actions, 1]` Q-values.
pub fn q_values(out: &Tensor, support: Option<&Tensor>) -> Result<Tensor> {
    Ok(match support {
        None => out.squeeze(D::Minus1)?,
        Some(z) => candle_nn::ops::softmax(out, D::Minus1)?.broadcast_mul(z)?.sum(D::Minus1)?,
    })
}
