//! The Q-network: a torso (feature extractor) and a head (plain, dueling, distributional),
//! built on candle `Var`s for the batched gradient step.
//!
//! ```text
//! features = torso(obs)          Torso::Mlp: ReLU(linear) per hidden size
//!                                 Torso::Cnn: flatten(ReLU(conv2d(obs))), then the MLP's layers
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
//! **CNN torso** ([`Torso::Cnn`]): the network of the MinAtar paper (Young & Tian 2019,
//! section 4): one `3x3` convolution, stride 1, no padding, with `filters` output channels
//! and a ReLU, on observations `[channels, height, width]` (stored flat, channel-major, in the
//! replay); its output is flattened (`filters * (height - 2) * (width - 2)` features, 1024 for
//! MinAtar's 10x10 grid and 16 filters) into the dense layers. The convolution is
//! [`deeprl_nets::conv::Conv2d`] (im2col + GEMM on CPU); its variables are `conv.weight`
//! `[filters, channels, 3, 3]` and `conv.bias` `[filters]` (torch's names and layout).
//!
//! **Noisy layers** ([`super::noisy`]): with `noisy`, every dense layer but the first is a
//! factorised NoisyLinear with the MLP torso; the first layer reads raw observations and plays
//! the role of Rainbow's convolutional torso, which has no noise. With the CNN torso the
//! convolution is that noiseless torso and every dense layer is noisy (as in Rainbow).
//!
//! **Initialisation** is drawn from `ChaCha8Rng::seed_from_u64(seed)` in layer order (weight,
//! then bias; the convolution first): torch's default `U(-1/sqrt(in), 1/sqrt(in))` for plain
//! layers (`in = channels * 9` for the convolution) and the means of noisy ones,
//! `sigma0 / sqrt(in)` for the sigmas.

use super::config::Dueling;
use super::noisy::{initial_sigma, FactorisedNoise};
use crate::error::{AgentError, Result};
use candle_core::{DType, Device, Module, Tensor, Var, D};
use candle_nn::{VarBuilder, VarMap};
use deeprl_nets::conv::{Conv2d, Conv2dConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// The feature extractor.
///
/// Both map observations to `[batch, features]`; the head after them is the same (its first
/// layer's fan-in is the torso's feature count).
#[derive(Debug, Clone, PartialEq)]
pub enum Torso {
    /// ReLU layers of these hidden sizes on flat observations.
    Mlp { hidden: Vec<usize> },
    /// A `kernel x kernel` convolution (stride 1, no padding) with `filters` output channels
    /// and a ReLU on `[channels, height, width]` observations, flattened, then ReLU layers of
    /// the `hidden` sizes (see the [module docs](self)).
    Cnn {
        channels: usize,
        height: usize,
        width: usize,
        filters: usize,
        kernel: usize,
        hidden: Vec<usize>,
    },
}

impl Torso {
    /// The MinAtar paper's torso (Young & Tian 2019): 16 filters of `3x3`, stride 1.
    pub fn minatar(image: [usize; 3], hidden: Vec<usize>) -> Self {
        let [channels, height, width] = image;
        Torso::Cnn { channels, height, width, filters: 16, kernel: 3, hidden }
    }

    /// The hidden sizes of the dense layers.
    pub fn hidden(&self) -> &[usize] {
        match self {
            Torso::Mlp { hidden } | Torso::Cnn { hidden, .. } => hidden,
        }
    }

    /// The convolution's output `[filters, height', width']`, `None` for the MLP torso or a
    /// kernel larger than the image.
    pub fn conv_output(&self) -> Option<[usize; 3]> {
        match *self {
            Torso::Mlp { .. } => None,
            Torso::Cnn { height, width, filters, kernel, .. } => {
                if kernel == 0 || kernel > height || kernel > width {
                    return None;
                }
                Some([filters, height - kernel + 1, width - kernel + 1])
            }
        }
    }
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
        let mut out = Vec::new();
        let mut fan_in = match self.torso.conv_output() {
            Some([f, h, w]) => f * h * w,
            None => self.obs_dim,
        };
        for &h in self.torso.hidden() {
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

/// The convolution of [`Torso::Cnn`]: its variables and two views of them, one recording
/// the graph (training) and one on detached tensors sharing the variables' storage (targets,
/// acting). `Var::set` (optimizer steps, target updates, checkpoint loads) writes in place,
/// so both views always see the current weights.
pub struct ConvTorso {
    pub weight: Var,
    pub bias: Var,
    tracked: Conv2d,
    detached: Conv2d,
    /// `[channels, height, width]` of one observation.
    image: [usize; 3],
}

/// A Q-network on candle variables (see the [module docs](self)).
pub struct QNet {
    pub shape: NetShape,
    /// The convolution of the CNN torso (`None` with the MLP torso).
    pub conv: Option<ConvTorso>,
    pub layers: Vec<Layer>,
    pub varmap: VarMap,
    device: Device,
}

/// torch's default `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, drawn from `rng`.
fn uniform(rng: &mut ChaCha8Rng, fan_in: usize, n: usize) -> Vec<f32> {
    let bound = 1.0 / (fan_in as f64).sqrt();
    (0..n).map(|_| (bound * (2.0 * rng.random::<f64>() - 1.0)) as f32).collect()
}

/// Draws the convolution of a [`Torso::Cnn`] from `rng`, registers `conv.weight` and
/// `conv.bias` in `varmap`, and builds its two views (`None` for the MLP torso).
fn conv_torso(
    torso: &Torso,
    rng: &mut ChaCha8Rng,
    varmap: &VarMap,
    device: &Device,
) -> Result<Option<ConvTorso>> {
    let Torso::Cnn { channels, height, width, filters, kernel, .. } = *torso else {
        return Ok(None);
    };
    if channels == 0 || filters == 0 || torso.conv_output().is_none() {
        return Err(AgentError::Shape(format!(
            "CNN torso: a {kernel}x{kernel} convolution with {filters} filters does not fit \
             observations [{channels}, {height}, {width}]"
        )));
    }
    let fan_in = channels * kernel * kernel;
    let w = uniform(rng, fan_in, filters * fan_in);
    let b = uniform(rng, fan_in, filters);
    let weight =
        Var::from_tensor(&Tensor::from_vec(w, (filters, channels, kernel, kernel), device)?)?;
    let bias = Var::from_tensor(&Tensor::from_vec(b, filters, device)?)?;
    {
        let mut data = varmap.data().lock().map_err(|_| lock_err())?;
        data.insert("conv.weight".into(), weight.clone());
        data.insert("conv.bias".into(), bias.clone());
    }
    let config = Conv2dConfig::new(channels, filters, kernel);
    let tracked =
        Conv2d::new(config, VarBuilder::from_varmap(varmap, DType::F32, device).pp("conv"))?;
    let views: HashMap<String, Tensor> = [
        ("weight".to_string(), weight.as_tensor().detach()),
        ("bias".to_string(), bias.as_tensor().detach()),
    ]
    .into();
    let detached = Conv2d::new(config, VarBuilder::from_tensors(views, DType::F32, device))?;
    Ok(Some(ConvTorso { weight, bias, tracked, detached, image: [channels, height, width] }))
}

impl QNet {
    /// A network initialised from `seed` (see the [module docs](self)).
    pub fn new(shape: NetShape, seed: u64, device: &Device) -> Result<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let varmap = VarMap::new();
        let conv = conv_torso(&shape.torso, &mut rng, &varmap, device)?;
        let mut layers = Vec::new();
        for (k, (role, fan_in, fan_out)) in shape.layers().into_iter().enumerate() {
            let noisy = shape.noisy && (k > 0 || conv.is_some());
            let w = uniform(&mut rng, fan_in, fan_in * fan_out);
            let b = uniform(&mut rng, fan_in, fan_out);
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
        let mut net = QNet { shape, conv, layers, varmap, device: device.clone() };
        net.set_noise_tensors()?;
        Ok(net)
    }

    /// The trainable variables in a fixed order (the convolution's weight and bias, then layer
    /// by layer: weight, bias, then sigmas).
    pub fn vars(&self) -> Vec<Var> {
        let mut vars = Vec::new();
        if let Some(c) = &self.conv {
            vars.push(c.weight.clone());
            vars.push(c.bias.clone());
        }
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

    /// The network's output `[batch, actions, atoms]` for observations `[batch, obs_dim]`
    /// (flat; the CNN torso reshapes them to `[batch, channels, height, width]`).
    /// `ones` is a `[batch, 1]` column of ones (kept by the caller to avoid reallocating it).
    /// With `track = false` the weights enter detached: no graph is recorded. Noisy layers use
    /// their current noise.
    pub fn forward(&self, obs: &Tensor, ones: &Tensor, track: bool) -> Result<Tensor> {
        self.forward_with(obs, ones, track, true)
    }

    /// [`QNet::forward`], with `noise = false` evaluating noisy layers at their mean weights.
    pub fn forward_with(
        &self,
        obs: &Tensor,
        ones: &Tensor,
        track: bool,
        noise: bool,
    ) -> Result<Tensor> {
        let p = |v: &Var| if track { v.as_tensor().clone() } else { v.as_tensor().detach() };
        let linear = |l: &Layer, x: &Tensor| -> Result<Tensor> {
            let (mut w, mut b) = (p(&l.weight), p(&l.bias));
            if let (true, Some(ws), Some(bs), Some((nw, nb))) =
                (noise, &l.weight_sigma, &l.bias_sigma, &l.noise_tensors)
            {
                w = (w + (p(ws) * nw)?)?;
                b = (b + (p(bs) * nb)?)?;
            }
            Ok((x.matmul(&w)? + ones.matmul(&b)?)?)
        };
        let batch = obs.dim(0)?;
        let (a, n) = (self.shape.n_actions, self.shape.atoms);
        let mut h = match &self.conv {
            None => obs.clone(),
            Some(c) => {
                let [ch, hh, ww] = c.image;
                let x = obs.reshape((batch, ch, hh, ww))?;
                let conv = if track { &c.tracked } else { &c.detached };
                conv.forward(&x)?.relu()?.flatten_from(1)?
            }
        };
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
