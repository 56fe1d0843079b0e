//! The variational autoencoder (Kingma and Welling 2013, "Auto-encoding variational Bayes",
//! arXiv:1312.6114), dense version.
//!
//! The encoder maps `x` to the mean `mu` and log-variance `log sigma^2` of a diagonal
//! Gaussian `q(z | x)`; a code is drawn with the reparameterisation trick
//! `z = mu + sigma * eps`, `eps ~ N(0, I)` (so gradients flow through `mu` and `sigma`; the
//! noise comes from the model's seeded `ChaCha8Rng`); the decoder maps `z` to the logits of
//! a Bernoulli per pixel. The loss is the negative evidence lower bound per example,
//! averaged over the batch:
//!
//! `sum_pixels BCE(logits, x) + beta * KL(q(z | x) || N(0, I))`, with the closed form
//! `KL = -1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2)` (Kingma and Welling, appendix B).
//!
//! In evaluation (`train = false`) the code is `z = mu`, so validation losses are
//! deterministic. New digits: decode `z ~ N(0, I)` ([`Vae::sample`]).

use std::sync::Mutex;

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarMap;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::gan::bce_with_logits_per_row;
use crate::data::{standard_normals, Batch, Dataset};
use crate::mlp::{Activation, Mlp, MlpConfig};
use crate::train::objective::{check_dataset, check_input};
use crate::train::{Objective, Output, TrainError};

/// The shape of a [`Vae`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaeConfig {
    pub input: usize,
    /// Hidden sizes of the encoder; the decoder mirrors them.
    pub hidden: Vec<usize>,
    pub latent: usize,
    pub activation: Activation,
    /// The weight of the KL term (1 for the VAE; Higgins et al. 2017's beta-VAE otherwise).
    pub beta: f64,
}

/// The KL divergence `KL(N(mu, diag(exp(logvar))) || N(0, I))` per row: `[batch]`.
pub fn gaussian_kl(mu: &Tensor, logvar: &Tensor) -> Result<Tensor> {
    // -1/2 sum (1 + logvar - mu^2 - exp(logvar))
    let inner = ((logvar.affine(1.0, 1.0)? - mu.sqr()?)? - logvar.exp()?)?;
    inner.sum(1)?.affine(-0.5, 0.0)
}

/// A variational autoencoder; see the [module documentation](self).
#[derive(Debug)]
pub struct Vae {
    config: VaeConfig,
    encoder: Mlp,
    decoder: Mlp,
    rng: Mutex<ChaCha8Rng>,
}

impl Vae {
    /// Creates the parameters (`"encoder.*"`, `"decoder.*"`) in `varmap` from `seed`; the
    /// reparameterisation noise is drawn from `seed + 2`.
    pub fn seeded(config: &VaeConfig, varmap: &VarMap, device: &Device, seed: u64) -> Result<Self> {
        if config.input == 0
            || config.latent == 0
            || !(config.beta >= 0.0 && config.beta.is_finite())
        {
            candle_core::bail!("VAE needs input >= 1, latent >= 1 and beta >= 0, got {config:?}");
        }
        let mut sizes = vec![config.input];
        sizes.extend(&config.hidden);
        sizes.push(2 * config.latent);
        let enc = MlpConfig { activation: config.activation, ..MlpConfig::new(sizes) };
        let mut sizes = vec![config.latent];
        sizes.extend(config.hidden.iter().rev());
        sizes.push(config.input);
        let dec = MlpConfig { activation: config.activation, ..MlpConfig::new(sizes) };
        Ok(Self {
            config: config.clone(),
            encoder: Mlp::seeded(&enc, varmap, "encoder", DType::F32, device, seed)?,
            decoder: Mlp::seeded(
                &dec,
                varmap,
                "decoder",
                DType::F32,
                device,
                seed.wrapping_add(1),
            )?,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed.wrapping_add(2))),
        })
    }

    pub fn config(&self) -> &VaeConfig {
        &self.config
    }

    /// `(mu, logvar)`, each `[batch, latent]`.
    pub fn encode(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        check_input(x, self.config.input)?;
        let h = self.encoder.forward(x)?;
        let l = self.config.latent;
        Ok((h.narrow(1, 0, l)?, h.narrow(1, l, l)?))
    }

    /// Pixel logits for codes `z` `[batch, latent]`.
    pub fn decode_logits(&self, z: &Tensor) -> Result<Tensor> {
        check_input(z, self.config.latent)?;
        self.decoder.forward(z)
    }

    /// `[rows, latent]` standard normal draws from the model's generator.
    fn noise(&self, rows: usize, device: &Device) -> Result<Tensor> {
        let mut rng = self
            .rng
            .lock()
            .map_err(|_| candle_core::Error::Msg("VAE generator lock poisoned".into()))?;
        Tensor::from_vec(
            standard_normals(&mut *rng, rows * self.config.latent),
            (rows, self.config.latent),
            device,
        )
    }

    /// `z = mu + exp(logvar / 2) * eps` with seeded `eps`.
    pub fn reparameterize(&self, mu: &Tensor, logvar: &Tensor) -> Result<Tensor> {
        let eps = self.noise(mu.dim(0)?, mu.device())?;
        mu + (logvar.affine(0.5, 0.0)?.exp()? * eps)?
    }

    /// The mean reconstruction `sigmoid(decode(mu))` of `x`, in `[0, 1]`.
    pub fn reconstruct(&self, x: &Tensor) -> Result<Tensor> {
        let (mu, _) = self.encode(x)?;
        candle_nn::ops::sigmoid(&self.decode_logits(&mu)?)
    }

    /// `n` new images: the Bernoulli means `sigmoid(decode(z))`, `z ~ N(0, I)` from the
    /// model's generator; `[n, input]`, values in `[0, 1]`.
    pub fn sample(&self, n: usize, device: &Device) -> Result<Tensor> {
        let z = self.noise(n, device)?;
        candle_nn::ops::sigmoid(&self.decode_logits(&z)?)
    }

    /// The batch means of the reconstruction term and the KL term.
    pub fn loss_terms(&self, x: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        let (mu, logvar) = self.encode(x)?;
        let z = if train { self.reparameterize(&mu, &logvar)? } else { mu.clone() };
        let logits = self.decode_logits(&z)?;
        let recon = bce_with_logits_per_row(&logits, x)?.mean_all()?;
        let kl = gaussian_kl(&mu, &logvar)?.mean_all()?;
        Ok((recon, kl))
    }
}

impl Objective for Vae {
    /// The negative ELBO per example (reconstruction + beta * KL), batch mean.
    fn loss(&self, batch: &Batch, train: bool) -> Result<Output> {
        let (recon, kl) = self.loss_terms(&batch.x, train)?;
        Ok(Output { loss: (recon + (kl * self.config.beta)?)?, scores: None })
    }

    fn check(&self, data: &Dataset) -> std::result::Result<(), TrainError> {
        check_dataset(data, self.config.input, None)?;
        if let Some(v) = data.features().iter().find(|v| !(0.0..=1.0).contains(*v)) {
            return Err(TrainError::Input(format!(
                "a Bernoulli VAE needs inputs in [0, 1], found {v}"
            )));
        }
        Ok(())
    }
}
