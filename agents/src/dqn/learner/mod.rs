//! [`HostLearner`]: DQN's whole gradient step for the MLP and the CNN (MinAtar) torsos in
//! plain Rust over preallocated host buffers, the default on CPU (`learner = "auto"`).
//!
//! **Why.** The zoo's CartPole step (4-256-256-2 at batch 64) is about 34 MFLOP of matrix
//! products. Through candle's autograd it takes 0.8 ms on one core while the optimizer state
//! is normal and 1.9 ms once it holds subnormals (below), the rest being graph building and
//! an allocation per intermediate. Here the step is the products through `gemm` and a few
//! fused loops: 0.45-0.5 ms, of which the products are about two thirds. MinAtar's network
//! (a 3x3 convolution with 16 filters on `4x10x10`, 128 hidden units, batch 32; about 40
//! MFLOP) takes 0.84 ms here against 2.8 ms through candle, and as Rainbow (noisy dueling
//! C51) 2.3 ms against 5.1 ms (`benches/dqn_step.rs`, one core).
//!
//! **What one step does** (the same mathematics as the candle path,
//! [`Dqn::gradient_step`](super::Dqn::gradient_step), checked against it by
//! `agents/tests/dqn_learner.rs`):
//!
//! ```text
//! fresh factorised noise (online layers, then target layers; noisy nets only)
//! W_eff = mu + sigma . f(e_in) f(e_out)^T,  b_eff = mu_b + sigma_b . f(e_out)    (noisy layers)
//! CNN torso: im2col of s and s'; each pass starts with the convolution, ReLU     [conv]
//! online forward on s (activations kept), target forward on s', online forward on s' (double)
//! head: out = x W + b, or dueling out = A + (V - max_a A | mean_a A)             [dense]
//! loss and d loss / d out: TD (Huber or squared) or C51 cross-entropy, IS weights, mean [loss]
//! backward through the head and the ReLU layers: dW = x^T dz, db = sum dz, dx = dz W^T;
//!   noisy layers: d mu = dW_eff, d sigma = dW_eff . f(e_in) f(e_out)^T
//!   CNN torso: through the ReLU into the convolution: dW = dy cols^T, db = sum dy  [conv]
//! clip the global L2 norm: g *= max_norm / (norm + 1e-6) when below 1     (torch / nets)
//! optimizer step per variable with nets' fused update rules (Adam or RMSprop)
//! ```
//!
//! **Subnormal moments.** A weight whose gradient is exactly zero (an input that is always
//! zero, a ReLU unit that never fires) has its optimizer moments decay geometrically into the
//! subnormal range, where x86 arithmetic is about a hundred times slower: the zoo CartPole
//! step went from 1.3 to 4 ms. nets' fused update rules write such state as zero
//! ([`deeprl_nets::optim::update::flush`]), for this learner as for candle's path.
//!
//! **Where the weights live.** While this learner trains, it owns the online and target
//! weights and the optimizer state as flat `f32` vectors, in [`QNet::vars`]' order (the
//! convolution's `conv.weight` `[filters, channels, 3, 3]` and `conv.bias`, then per layer:
//! weight `[in, out]`, bias, then the sigmas of a noisy layer). The agent writes them
//! into its `QNet` variables only when those are looked at (checkpoints, the `online()` /
//! `target()` accessors) and reads them back after it lent them out ([`HostLearner::load`],
//! [`HostLearner::store`]). The optimizer state goes into checkpoints in the fused
//! `Optim`'s [`SavedState`](deeprl_nets::optim::SavedState) form, so either path resumes from the other's checkpoint.
//!
//! **Allocation.** Every buffer is sized at construction for the configured batch; the
//! optimizer's moment buffers on the first step. After that the learner allocates nothing
//! itself; the `gemm` crate (0.19) allocates its packing scratch inside each product (one or
//! two blocks, freed before it returns: at most two per product, nothing kept), which no
//! caller can supply. The unit test below checks the learner with the products as plain
//! loops; `agents/tests/dqn_learner.rs` checks the bound with `gemm`.

mod conv;
mod dense;
mod loss;
mod passes;
mod state;

use super::config::{DqnConfig, Dueling, Loss};
use super::distributional::project_batch;
use super::network::{QNet, Role, Torso};
use super::noisy::FactorisedNoise;
use crate::error::{AgentError, Result};
use conv::{Conv, ConvActivations};
use deeprl_nets::optim::{OptimizerConfig, ParamState};
use deeprl_replay::Batch;
use passes::{forward, materialize};
use rand::Rng;
use std::ops::Range;

/// One dense layer: its shape and where its values sit in the flat vectors.
#[derive(Debug, Clone)]
struct Dense {
    role: Role,
    fan_in: usize,
    fan_out: usize,
    /// `[in, out]`; the bias follows it directly, then the sigmas of a noisy layer.
    weight: Range<usize>,
    bias: Range<usize>,
    /// `weight_sigma` and `bias_sigma` of a noisy layer.
    sigma: Option<(Range<usize>, Range<usize>)>,
    /// The noisy layer's effective weight and bias in the `eff_*` buffers (same layout).
    eff: Option<Range<usize>>,
}

/// The buffers of one forward pass (`[batch, width]` each).
#[derive(Debug, Clone, Default)]
struct Activations {
    /// Pre-activations of the hidden layers (the ReLU mask of the backward).
    z: Vec<Vec<f32>>,
    /// Outputs of the hidden layers.
    h: Vec<Vec<f32>>,
    value: Vec<f32>,
    adv: Vec<f32>,
    /// The dueling aggregate `agg_a A`, `[batch, atoms]`.
    agg: Vec<f32>,
    /// The head's output `[batch, actions * atoms]`.
    out: Vec<f32>,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// The weights were updated.
    Stepped { loss: f64, q_mean: f64 },
    /// The loss is not finite; nothing was updated. `q_finite`: whether the online
    /// Q-values of the taken actions were finite.
    NonFiniteLoss { loss: f64, q_finite: bool },
    /// The gradient's norm is not finite (clipping on); nothing was updated.
    NonFiniteGradNorm { loss: f64, norm: f64 },
}

/// The host learner (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct HostLearner {
    batch: usize,
    n_actions: usize,
    atoms: usize,
    dueling: Dueling,
    huber: bool,
    double: bool,
    /// The C51 support (empty for Q-values).
    support: Vec<f32>,
    max_grad_norm: f64,
    optimizer: OptimizerConfig,
    /// The CNN torso's convolution (`None` for the MLP torso).
    conv: Option<Conv>,
    layers: Vec<Dense>,
    /// Each variable's values, in [`QNet::vars`]' order.
    vars: Vec<Range<usize>>,
    online: Vec<f32>,
    target: Vec<f32>,
    grad: Vec<f32>,
    states: Vec<ParamState<f32>>,
    /// Per layer, the noise of noisy layers (online and target nets).
    online_noise: Vec<Option<FactorisedNoise>>,
    target_noise: Vec<Option<FactorisedNoise>>,
    eff_online: Vec<f32>,
    eff_target: Vec<f32>,
    /// Forward passes: online on s, target on s', online on s' (double DQN).
    on_obs: Activations,
    target_next: Activations,
    online_next: Activations,
    /// The CNN torso: the im2col of `s` and of `s'` (`[K, batch P]`), the convolution of the
    /// online net on `s` (kept for the backward), the one of the other passes (reused), and
    /// the product's scratch `[filters, batch P]`.
    cols_obs: Vec<f32>,
    cols_next: Vec<f32>,
    conv_obs: ConvActivations,
    conv_next: ConvActivations,
    conv_scratch: Vec<f32>,
    d_out: Vec<f32>,
    d_value: Vec<f32>,
    d_adv: Vec<f32>,
    /// Two `[batch, widest]` buffers for the gradients of the dense layers' inputs (widest:
    /// the widest hidden layer, or the convolution's features).
    d_hidden: [Vec<f32>; 2],
    targets: Vec<f32>,
    probs: Vec<f32>,
    priorities: Vec<f32>,
}

fn shape_error(what: String) -> AgentError {
    AgentError::Shape(format!("host learner: {what}"))
}

impl HostLearner {
    /// A learner with the weights of `online` and `target` (either torso), the loss and
    /// optimizer of `config`, for batches of `config.batch_size`; `support` is the C51 support
    /// (empty without the distributional head).
    pub fn new(
        online: &QNet,
        target: &QNet,
        config: &DqnConfig,
        support: Vec<f32>,
    ) -> Result<Self> {
        let (batch, shape) = (config.batch_size, &online.shape);
        let (mut layers, mut vars, mut offset, mut eff_len) = (vec![], vec![], 0, 0);
        let mut take = |len: usize, vars: &mut Vec<Range<usize>>| {
            vars.push(offset..offset + len);
            offset += len;
            offset - len..offset
        };
        let conv = match (&shape.torso, &online.conv) {
            (Torso::Mlp { .. }, None) => None,
            (&Torso::Cnn { channels, height, width, filters, kernel, .. }, Some(_)) => {
                let taps = channels * kernel * kernel;
                let weight = take(filters * taps, &mut vars);
                let bias = take(filters, &mut vars);
                Some(Conv { channels, height, width, filters, kernel, weight, bias })
            }
            (torso, _) => {
                return Err(shape_error(format!(
                    "the network's torso {torso:?} and its convolution variables disagree"
                )))
            }
        };
        let mut widest = conv.as_ref().map_or(0, Conv::features);
        for l in &online.layers {
            let (fan_in, fan_out) = (l.fan_in, l.fan_out);
            let weight = take(fan_in * fan_out, &mut vars);
            let bias = take(fan_out, &mut vars);
            let sigma = match (&l.weight_sigma, &l.bias_sigma) {
                (Some(_), Some(_)) => {
                    Some((take(fan_in * fan_out, &mut vars), take(fan_out, &mut vars)))
                }
                _ => None,
            };
            let eff = sigma.as_ref().map(|_| {
                eff_len += fan_in * fan_out + fan_out;
                eff_len - fan_in * fan_out - fan_out..eff_len
            });
            if l.role == Role::Hidden {
                widest = widest.max(fan_out);
            }
            layers.push(Dense { role: l.role, fan_in, fan_out, weight, bias, sigma, eff });
        }
        let hidden: Vec<usize> =
            layers.iter().filter(|l| l.role == Role::Hidden).map(|l| l.fan_out).collect();
        let (a, n) = (shape.n_actions, shape.atoms);
        let acts = || Activations {
            z: hidden.iter().map(|&h| vec![0.0; batch * h]).collect(),
            h: hidden.iter().map(|&h| vec![0.0; batch * h]).collect(),
            value: vec![0.0; batch * n],
            adv: vec![0.0; batch * a * n],
            agg: vec![0.0; batch * n],
            out: vec![0.0; batch * a * n],
        };
        let noise: Vec<Option<FactorisedNoise>> = layers
            .iter()
            .map(|l| l.sigma.as_ref().map(|_| FactorisedNoise::zeros(l.fan_in, l.fan_out)))
            .collect();
        let optimizer = config.optimizer_config();
        let conv_acts =
            || conv.as_ref().map_or_else(ConvActivations::default, |c| c.activations(batch));
        let (conv_obs, conv_next) = (conv_acts(), conv_acts());
        let (cols, conv_scratch) = conv.as_ref().map_or((0, 0), |c| {
            (c.taps() * batch * c.positions(), c.filters * batch * c.positions())
        });
        let mut learner = HostLearner {
            batch,
            n_actions: a,
            atoms: n,
            dueling: shape.dueling,
            huber: config.loss == Loss::Huber,
            double: config.double,
            support,
            max_grad_norm: config.max_grad_norm,
            optimizer,
            conv,
            states: vars.iter().map(|r| ParamState::new(r.len())).collect(),
            vars,
            layers,
            online: vec![0.0; offset],
            target: vec![0.0; offset],
            grad: vec![0.0; offset],
            online_noise: noise.clone(),
            target_noise: noise,
            eff_online: vec![0.0; eff_len],
            eff_target: vec![0.0; eff_len],
            on_obs: acts(),
            target_next: acts(),
            online_next: if config.double { acts() } else { Activations::default() },
            cols_obs: vec![0.0; cols],
            cols_next: vec![0.0; cols],
            conv_obs,
            conv_next,
            conv_scratch: vec![0.0; conv_scratch],
            d_out: vec![0.0; batch * a * n],
            d_value: vec![0.0; batch * n],
            d_adv: vec![0.0; batch * a * n],
            d_hidden: [vec![0.0; batch * widest], vec![0.0; batch * widest]],
            targets: vec![0.0; batch * n],
            probs: vec![0.0; n],
            priorities: vec![0.0; batch],
        };
        learner.load(online, target)?;
        Ok(learner)
    }

    /// One gradient step on `b` (a batch of the configured size), drawing the noisy layers'
    /// noise from `noise_rng` (see the [module docs](self)).
    pub fn step<R: Rng + ?Sized>(&mut self, b: &Batch, noise_rng: &mut R) -> Result<Outcome> {
        let bs = self.batch;
        let obs_len = match (&self.conv, self.layers.first()) {
            (Some(c), _) => c.input_len(),
            (None, Some(l)) => l.fan_in,
            (None, None) => 0,
        };
        if b.rewards.len() != bs || b.obs.len() != bs * obs_len || b.next_obs.len() != b.obs.len() {
            return Err(shape_error(format!(
                "a batch of {} experiences with {} observation values ({} next), expected {bs} \
                 experiences of {obs_len} values",
                b.rewards.len(),
                b.obs.len(),
                b.next_obs.len()
            )));
        }
        for noise in self.online_noise.iter_mut().chain(self.target_noise.iter_mut()).flatten() {
            noise.resample(noise_rng);
        }
        materialize(&self.layers, &self.online, &self.online_noise, &mut self.eff_online);
        materialize(&self.layers, &self.target, &self.target_noise, &mut self.eff_target);
        let shape = (self.n_actions, self.atoms, self.dueling);
        let (layers, conv) = (&self.layers, self.conv.as_ref());
        // The dense layers' input of each pass: the observations, or the convolution's output
        // (the columns of s' serve both passes on s').
        if let Some(c) = conv {
            c.im2col(bs, &b.obs, &mut self.cols_obs);
            c.im2col(bs, &b.next_obs, &mut self.cols_next);
            let (cols, scratch) = (&self.cols_obs, &mut self.conv_scratch);
            c.forward(bs, &self.online, cols, scratch, &mut self.conv_obs);
        }
        let x = if conv.is_some() { &self.conv_obs.h[..] } else { &b.obs[..] };
        forward(layers, &self.online, &self.eff_online, shape, bs, x, &mut self.on_obs);
        let nets = [
            (true, &self.target, &self.eff_target, &mut self.target_next),
            (self.double, &self.online, &self.eff_online, &mut self.online_next),
        ];
        for (wanted, params, eff, acts) in nets {
            if !wanted {
                continue;
            }
            if let Some(c) = conv {
                let (cols, scratch) = (&self.cols_next, &mut self.conv_scratch);
                c.forward(bs, params, cols, scratch, &mut self.conv_next);
            }
            let x = if conv.is_some() { &self.conv_next.h[..] } else { &b.next_obs[..] };
            forward(layers, params, eff, shape, bs, x, acts);
        }
        let value = if self.support.is_empty() {
            let next_online = self.double.then_some(&self.online_next.out[..]);
            loss::td(
                self.huber,
                self.n_actions,
                &self.on_obs.out,
                &self.target_next.out,
                next_online,
                b,
                &mut self.d_out,
                &mut self.priorities,
            )
        } else {
            let chooser = if self.double { &self.online_next.out } else { &self.target_next.out };
            project_batch(
                &self.support,
                &self.target_next.out,
                chooser,
                self.n_actions,
                &b.rewards,
                &b.discounts,
                &mut self.probs,
                &mut self.targets,
            );
            loss::c51(
                &self.support,
                self.n_actions,
                &self.on_obs.out,
                &self.targets,
                b,
                &mut self.probs,
                &mut self.d_out,
                &mut self.priorities,
            )
        };
        let loss = value.loss as f64;
        if !loss.is_finite() {
            return Ok(Outcome::NonFiniteLoss { loss, q_finite: value.q_finite });
        }
        self.backward(&b.obs);
        if self.max_grad_norm > 0.0 {
            // nets::optim::clip_grad_norm: per-variable f32 sums of squares, added in f64.
            let total: f64 =
                self.vars.iter().map(|r| dense::sum_of_squares(&self.grad[r.clone()]) as f64).sum();
            let norm = total.sqrt();
            if !norm.is_finite() {
                return Ok(Outcome::NonFiniteGradNorm { loss, norm });
            }
            let coef = self.max_grad_norm / (norm + 1e-6);
            if coef < 1.0 {
                let coef = coef as f32;
                self.grad.iter_mut().for_each(|g| *g *= coef);
            }
        }
        for (range, state) in self.vars.iter().zip(&mut self.states) {
            let (p, g) = (&mut self.online[range.clone()], &self.grad[range.clone()]);
            self.optimizer.update(p, g, state).map_err(|e| shape_error(e.to_string()))?;
        }
        Ok(Outcome::Stepped { loss, q_mean: value.q_mean as f64 })
    }
}

#[cfg(test)]
mod tests {
    use super::dense::PLAIN_PRODUCTS;
    use crate::dqn::{Dqn, DqnConfig, Dueling, TorsoKind};
    use crate::{Agent, BuildContext, Transition};
    use candle_core::Device;
    use deeprl_envs::ActionRef;

    /// Sampling, the forward and backward passes, the loss, clipping, the optimizer update and
    /// the priorities reuse the agent's and the learner's buffers: with the products as plain
    /// loops, a step allocates nothing once the optimizer's moments exist.
    #[test]
    fn a_step_allocates_nothing_besides_the_products_scratch() {
        let plain = DqnConfig {
            net_arch: vec![16, 16],
            batch_size: 8,
            learning_starts: 1_000_000,
            ..DqnConfig::default()
        };
        let rainbow =
            DqnConfig { dueling: Dueling::Max, max_grad_norm: 0.1, ..DqnConfig::rainbow() };
        let rainbow = DqnConfig { atoms: 5, ..DqnConfig { net_arch: vec![16, 16], ..rainbow } };
        let rainbow = DqnConfig { batch_size: 8, learning_starts: 1_000_000, ..rainbow };
        let cnn = |c: &DqnConfig| DqnConfig { torso: TorsoKind::Cnn, ..c.clone() };
        let cases = [
            ("CartPole-v1", plain.clone()),
            ("CartPole-v1", rainbow.clone()),
            ("MinAtar/Breakout-v1", cnn(&plain)),
            ("MinAtar/Breakout-v1", cnn(&rainbow)),
        ];
        for (env_id, config) in cases {
            let env = deeprl_envs::make(env_id).unwrap();
            let ctx = BuildContext {
                env_id,
                env: &*env,
                seed: 0,
                device: Device::Cpu,
                total_steps: None,
            };
            let mut agent = Dqn::new("dqn", config, &ctx).unwrap();
            assert!(agent.uses_host_learner());
            let obs: Vec<f32> = (0..env.obs_len()).map(|i| (i % 3) as f32 * 0.5 - 0.2).collect();
            for k in 0..50 {
                let t = Transition {
                    obs: &obs,
                    action: ActionRef::Discrete(k % 2),
                    reward: 1.0,
                    next_obs: &obs,
                    terminated: k % 9 == 8,
                    truncated: false,
                };
                agent.observe(&t).unwrap();
            }
            PLAIN_PRODUCTS.with(|p| p.set(true));
            agent.gradient_step().unwrap();
            let info = allocation_counter::measure(|| {
                for _ in 0..3 {
                    agent.gradient_step().unwrap();
                }
            });
            PLAIN_PRODUCTS.with(|p| p.set(false));
            assert_eq!(info.count_total, 0, "{env_id}: {info:?}");
        }
    }
}
