//! The generative adversarial network (Goodfellow et al. 2014, "Generative adversarial
//! nets", NeurIPS), with the training iteration of Géron's "Hands-on Machine Learning"
//! (ch. 17): each iteration
//!
//! 1. trains the **discriminator** on a batch of `n` real images labelled 1 and `n` fakes
//!    `G(z)` labelled 0 (binary cross-entropy on logits; the fakes are detached), and
//! 2. trains the **generator** through the frozen discriminator: `n` new fakes labelled 1
//!    (the non-saturating loss `-log D(G(z))`). Only the generator's variables are handed to
//!    its optimizer, so the discriminator's weights do not change in this phase (the test
//!    checks it), and the discriminator runs in evaluation mode, so its batch-norm running
//!    statistics do not move either (Keras does the same for a non-trainable batch norm).
//!
//! Mode collapse remedy: **experience replay** of past fakes (Shrivastava et al. 2017,
//! "Learning from simulated and unsupervised images through adversarial training", the
//! history of refined images): a ring buffer keeps recent fakes, and a fraction of each
//! discriminator batch's fakes is drawn from it, so the discriminator keeps penalising modes
//! the generator has left and the generator cannot cycle between them.
//!
//! The iteration and the replay are written once, in [`Gan`], over any pair of networks
//! that implements [`GanNetworks`]: the dense networks of this module ([`DenseGan`], built
//! from a [`GanConfig`]) and the convolutional ones of [`super::dcgan`]. A configuration that
//! implements [`GanSpec`] builds its networks and says how to train them, so
//! `Gan::seeded(&config, ...)` gives a dense GAN for a [`GanConfig`] and a DCGAN for a
//! [`super::dcgan::DcganConfig`].
//!
//! Training and evaluation modes (batch norm, in the DCGAN): in the discriminator phase both
//! networks run in training mode (batch statistics, and the running statistics move); in the
//! generator phase the generator runs in training mode and the frozen discriminator in
//! evaluation mode. Sampling and judging ([`Gan::generate`], [`Gan::generate_from`],
//! [`Gan::discriminate`]) use evaluation mode (running statistics), so a sample depends on
//! its own latent vector only, not on the rest of its batch.
//!
//! Parameters live under `"generator"` and `"discriminator"` in one `VarMap`; initialisation,
//! latent noise and replay sampling are seeded.

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{Optimizer, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::standard_normals;
use crate::mlp::{Activation, Mlp, MlpConfig};
use crate::optim::{Optim, OptimizerConfig};
use crate::train::objective::check_input;
use crate::train::trainable_vars;

/// Binary cross-entropy with logits per element, numerically stable:
/// `max(x, 0) - x y + log(1 + exp(-|x|))` (torch's `BCEWithLogitsLoss`), summed per row:
/// `[batch]`.
pub fn bce_with_logits_per_row(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let softplus = logits.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
    ((logits.relu()? - (logits * targets)?)? + softplus)?.sum(1)
}

/// The mean binary cross-entropy with logits over all elements.
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let cols = logits.dim(1)? as f64;
    bce_with_logits_per_row(logits, targets)?.mean_all()?.affine(1.0 / cols, 0.0)
}

/// Experience replay of past fakes for the discriminator.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FakeReplay {
    /// Fakes kept (a ring buffer).
    pub capacity: usize,
    /// Fraction of each discriminator batch's fakes drawn from the buffer, in `[0, 1]`.
    pub fraction: f64,
}

/// How a [`Gan`] trains its networks, whatever they are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GanTraining {
    pub generator_optimizer: OptimizerConfig,
    pub discriminator_optimizer: OptimizerConfig,
    pub replay: Option<FakeReplay>,
}

/// A generator and a discriminator that [`Gan`] can train. Images travel as flat rows
/// `[n, data_dim]` (as a [`crate::data::Dataset`] holds them); a convolutional network
/// reshapes them itself.
pub trait GanNetworks {
    /// The configuration the networks were built from.
    type Config;

    fn config(&self) -> &Self::Config;

    /// The size of a latent vector.
    fn latent(&self) -> usize;

    /// The size of a flat image.
    fn data_dim(&self) -> usize;

    /// `G(z)`: latent vectors `[n, latent]` to images `[n, data_dim]`; `train` selects batch
    /// statistics (and updates the running ones) where the generator has batch norm.
    fn generate(&self, z: &Tensor, train: bool) -> Result<Tensor>;

    /// `D(x)`: images `[n, data_dim]` to logits `[n, 1]`; `train` as for `generate`.
    fn discriminate(&self, x: &Tensor, train: bool) -> Result<Tensor>;
}

/// A GAN configuration: builds its networks and says how to train them.
pub trait GanSpec {
    type Networks: GanNetworks;

    /// The optimizers and the replay (checked by [`Gan::seeded`]; `build` checks the rest).
    fn training(&self) -> GanTraining;

    /// Creates and initialises the networks in `varmap` from `seed`, the generator's
    /// variables under `"generator"` and the discriminator's under `"discriminator"`.
    fn build(&self, varmap: &VarMap, device: &Device, seed: u64) -> Result<Self::Networks>;
}

/// The shape and training of a dense [`Gan`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GanConfig {
    pub latent: usize,
    pub data_dim: usize,
    pub generator_hidden: Vec<usize>,
    pub discriminator_hidden: Vec<usize>,
    pub generator_optimizer: OptimizerConfig,
    pub discriminator_optimizer: OptimizerConfig,
    #[serde(default)]
    pub replay: Option<FakeReplay>,
}

/// Losses of one iteration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GanStep {
    pub discriminator_loss: f64,
    pub generator_loss: f64,
}

/// The dense networks: a generator MLP with ReLU hidden layers and a sigmoid output in
/// `[0, 1]`, a discriminator MLP with LeakyReLU(0.2) hidden layers and one logit.
#[derive(Debug)]
pub struct DenseGan {
    config: GanConfig,
    generator: Mlp,
    discriminator: Mlp,
}

impl GanNetworks for DenseGan {
    type Config = GanConfig;

    fn config(&self) -> &GanConfig {
        &self.config
    }

    fn latent(&self) -> usize {
        self.config.latent
    }

    fn data_dim(&self) -> usize {
        self.config.data_dim
    }

    fn generate(&self, z: &Tensor, _train: bool) -> Result<Tensor> {
        self.generator.forward(z)
    }

    fn discriminate(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
        self.discriminator.forward(x)
    }
}

impl GanSpec for GanConfig {
    type Networks = DenseGan;

    fn training(&self) -> GanTraining {
        GanTraining {
            generator_optimizer: self.generator_optimizer,
            discriminator_optimizer: self.discriminator_optimizer,
            replay: self.replay,
        }
    }

    /// The generator from `seed`, the discriminator from `seed + 1`.
    fn build(&self, varmap: &VarMap, device: &Device, seed: u64) -> Result<DenseGan> {
        if self.latent == 0 || self.data_dim == 0 {
            candle_core::bail!("GAN needs latent >= 1 and data_dim >= 1");
        }
        let mut g = vec![self.latent];
        g.extend(&self.generator_hidden);
        g.push(self.data_dim);
        let g = MlpConfig { output_activation: Activation::Sigmoid, ..MlpConfig::new(g) };
        let mut d = vec![self.data_dim];
        d.extend(&self.discriminator_hidden);
        d.push(1);
        let d = MlpConfig { activation: Activation::LeakyRelu(0.2), ..MlpConfig::new(d) };
        let generator = Mlp::seeded(&g, varmap, "generator", DType::F32, device, seed)?;
        let discriminator =
            Mlp::seeded(&d, varmap, "discriminator", DType::F32, device, seed.wrapping_add(1))?;
        Ok(DenseGan { config: self.clone(), generator, discriminator })
    }
}

/// A GAN with its two optimizers and the replay buffer; see the
/// [module documentation](self). `Gan` alone is the dense GAN.
#[derive(Debug)]
pub struct Gan<N: GanNetworks = DenseGan> {
    networks: N,
    replay_config: Option<FakeReplay>,
    generator_opt: Optim,
    discriminator_opt: Optim,
    discriminator_vars: Vec<Var>,
    rng: ChaCha8Rng,
    replay: Vec<f32>,
    replay_next: usize,
}

impl<N: GanNetworks> Gan<N> {
    /// Creates the networks of `config` in `varmap` from `seed` (see [`GanSpec::build`]) and
    /// their optimizers; the latent noise and the replay draw from `seed + 2`.
    pub fn seeded<C>(config: &C, varmap: &VarMap, device: &Device, seed: u64) -> Result<Self>
    where
        C: GanSpec<Networks = N>,
    {
        let training = config.training();
        if let Some(r) = training.replay {
            if r.capacity == 0 || !(0.0..=1.0).contains(&r.fraction) {
                candle_core::bail!(
                    "GAN replay needs capacity >= 1 and fraction in [0, 1], got {r:?}"
                );
            }
        }
        let networks = config.build(varmap, device, seed)?;
        // Each optimizer gets its own network's variables: the other network is frozen.
        let gen_vars = trainable_vars(varmap, &["discriminator".into()])?;
        let disc_vars = trainable_vars(varmap, &["generator".into()])?;
        Ok(Self {
            networks,
            replay_config: training.replay,
            generator_opt: Optim::new(gen_vars, training.generator_optimizer)?,
            discriminator_opt: Optim::new(disc_vars.clone(), training.discriminator_optimizer)?,
            discriminator_vars: disc_vars,
            rng: ChaCha8Rng::seed_from_u64(seed.wrapping_add(2)),
            replay: Vec::new(),
            replay_next: 0,
        })
    }

    pub fn config(&self) -> &N::Config {
        self.networks.config()
    }

    pub fn networks(&self) -> &N {
        &self.networks
    }

    /// The discriminator's variables, batch-norm statistics included (for checking they
    /// stay put in the generator step).
    pub fn discriminator_vars(&self) -> &[Var] {
        &self.discriminator_vars
    }

    /// The number of fakes in the replay buffer.
    pub fn replay_len(&self) -> usize {
        self.replay.len() / self.networks.data_dim()
    }

    /// `n` latent vectors `z ~ N(0, I)` `[n, latent]`, drawn from the GAN's seeded random
    /// number generator.
    pub fn sample_latent(&mut self, n: usize, device: &Device) -> Result<Tensor> {
        let latent = self.networks.latent();
        Tensor::from_vec(standard_normals(&mut self.rng, n * latent), (n, latent), device)
    }

    /// `n` generated images `[n, data_dim]` from new latent vectors, in evaluation mode (in
    /// the graph: detach to keep them).
    pub fn generate(&mut self, n: usize, device: &Device) -> Result<Tensor> {
        let z = self.sample_latent(n, device)?;
        self.networks.generate(&z, false)
    }

    /// The images of the latent vectors `z` `[n, latent]`, in evaluation mode: each row
    /// depends on its own latent vector only.
    pub fn generate_from(&self, z: &Tensor) -> Result<Tensor> {
        check_input(z, self.networks.latent())?;
        self.networks.generate(z, false)
    }

    /// The discriminator's logits `[batch, 1]`, in evaluation mode.
    pub fn discriminate(&self, x: &Tensor) -> Result<Tensor> {
        check_input(x, self.networks.data_dim())?;
        self.networks.discriminate(x, false)
    }

    /// Phase 1: one discriminator step on `real` (labelled 1) and as many fakes (labelled 0),
    /// some from the replay buffer when configured. Returns the loss.
    pub fn discriminator_step(&mut self, real: &Tensor) -> Result<f64> {
        check_input(real, self.networks.data_dim())?;
        let (n, device) = (real.dim(0)?, real.device().clone());
        let z = self.sample_latent(n, &device)?;
        let fake = self.networks.generate(&z, true)?.detach();
        let fake = match self.replay_config {
            Some(r) => self.mix_replay(fake, r)?,
            None => fake,
        };
        let x = Tensor::cat(&[real, &fake], 0)?;
        let y = Tensor::cat(
            &[
                Tensor::ones((n, 1), DType::F32, &device)?,
                Tensor::zeros((n, 1), DType::F32, &device)?,
            ],
            0,
        )?;
        let loss = bce_with_logits(&self.networks.discriminate(&x, true)?, &y)?;
        self.discriminator_opt.backward_step(&loss)?;
        loss.to_scalar::<f32>().map(f64::from)
    }

    /// Phase 2: one generator step through the frozen discriminator (in evaluation mode),
    /// `n` fakes labelled 1.
    pub fn generator_step(&mut self, n: usize, device: &Device) -> Result<f64> {
        let z = self.sample_latent(n, device)?;
        let fake = self.networks.generate(&z, true)?;
        let loss = bce_with_logits(
            &self.networks.discriminate(&fake, false)?,
            &Tensor::ones((n, 1), DType::F32, device)?,
        )?;
        self.generator_opt.backward_step(&loss)?;
        loss.to_scalar::<f32>().map(f64::from)
    }

    /// One iteration: [`discriminator_step`](Self::discriminator_step) then
    /// [`generator_step`](Self::generator_step) with the same batch size.
    pub fn train_step(&mut self, real: &Tensor) -> Result<GanStep> {
        let discriminator_loss = self.discriminator_step(real)?;
        let generator_loss = self.generator_step(real.dim(0)?, &real.device().clone())?;
        Ok(GanStep { discriminator_loss, generator_loss })
    }

    /// Replaces `round(fraction * n)` of the fresh fakes by random past ones (once the
    /// buffer holds at least `n`), then stores the fresh fakes in the ring buffer.
    fn mix_replay(&mut self, fake: Tensor, r: FakeReplay) -> Result<Tensor> {
        let dim = self.networks.data_dim();
        let n = fake.dim(0)?;
        let fresh: Vec<f32> = fake.flatten_all()?.to_vec1()?;
        let mut out = fresh.clone();
        let stored = self.replay_len();
        if stored >= n {
            let k = (r.fraction * n as f64).round() as usize;
            for row in 0..k {
                let j = self.rng.random_range(0..stored);
                out[row * dim..(row + 1) * dim]
                    .copy_from_slice(&self.replay[j * dim..(j + 1) * dim]);
            }
        }
        for row in fresh.chunks_exact(dim) {
            if self.replay_len() < r.capacity {
                self.replay.extend_from_slice(row);
            } else {
                let at = self.replay_next * dim;
                self.replay[at..at + dim].copy_from_slice(row);
            }
            self.replay_next = (self.replay_next + 1) % r.capacity;
        }
        Tensor::from_vec(out, (n, dim), fake.device())
    }
}
