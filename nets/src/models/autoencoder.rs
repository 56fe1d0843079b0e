//! Autoencoders (Hinton and Salakhutdinov 2006; Goodfellow, Bengio and Courville 2016,
//! ch. 14): an encoder maps `x` to a code `h`, a decoder maps `h` back to `x'`, and the
//! training loss is the reconstruction error `mean (x' - x)^2` plus optional terms.
//!
//! One [`AutoencoderConfig`] covers the classic variants:
//! - **linear / PCA**: sizes `[n, k]`, every activation the identity. With the squared error
//!   its optimum spans the same k-dimensional subspace as the top-k principal components
//!   (Baldi and Hornik 1989), which `tests/generative.rs` checks against an eigen-decomposition.
//! - **stacked, symmetric**: sizes `[n, h1, ..., k]`; the decoder mirrors the encoder. With
//!   [`AutoencoderConfig::tied`] the decoder's weights are the encoder's transposes (the same
//!   variables, so they stay tied through training; the decoder has only its own biases).
//! - **denoising** (Vincent, Larochelle, Bengio and Manzagol 2008): [`InputNoise`] corrupts
//!   the input in training only, and the loss compares the reconstruction with the clean input.
//! - **sparse** (Ng 2011, "Sparse autoencoder" lecture notes): [`Sparsity`] adds an L1 penalty
//!   on the code activations, or the KL divergence between a target activation `rho` and
//!   each code unit's mean activation `rho_hat_j` over the batch (sigmoid code layer):
//!   `sum_j rho log(rho / rho_hat_j) + (1 - rho) log((1 - rho) / (1 - rho_hat_j))`.
//!
//! Parameters: the encoder is an [`Mlp`] under `"enc"`, the untied decoder one under `"dec"`
//! (torch `nn.Sequential` names, e.g. `"enc.0.weight"`); a tied decoder has biases
//! `"dec.{k}.bias"` (zeros at init). Initialisation and noise are seeded.

use std::sync::Mutex;

use candle_core::{DType, Device, Module, ModuleT, Result, Tensor, Var};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::{standard_normals, Batch, Dataset};
use crate::mlp::{Activation, Mlp, MlpConfig};
use crate::train::objective::{check_dataset, check_input};
use crate::train::{Objective, Output, TrainError};

/// Input corruption for a denoising autoencoder, applied in training only.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum InputNoise {
    /// `x + std * N(0, 1)`, elementwise.
    Gaussian { std: f64 },
    /// Masking noise: each input set to 0 with probability `p` (no rescaling: the network
    /// must fill the missing pixels in).
    Mask { p: f64 },
}

/// A sparsity term on the code activations, added to the reconstruction loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Sparsity {
    /// `lambda * mean over the batch of sum_j |h_j|`.
    L1 { lambda: f64 },
    /// `weight * sum_j KL(target || mean activation of unit j)`; needs a sigmoid code layer.
    Kl { target: f64, weight: f64 },
}

/// The shape and options of an [`Autoencoder`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoencoderConfig {
    /// `[input, hidden..., code]`: at least two sizes, none zero.
    pub sizes: Vec<usize>,
    /// After each hidden layer of encoder and decoder.
    pub activation: Activation,
    /// After the encoder's last layer.
    pub code_activation: Activation,
    /// After the decoder's last layer (e.g. sigmoid for pixels in `[0, 1]`).
    pub output_activation: Activation,
    #[serde(default)]
    pub tied: bool,
    #[serde(default)]
    pub input_noise: Option<InputNoise>,
    #[serde(default)]
    pub sparsity: Option<Sparsity>,
}

impl AutoencoderConfig {
    /// A linear autoencoder `[input, code]` with no activations: the PCA autoencoder.
    pub fn linear(input: usize, code: usize) -> Self {
        Self {
            sizes: vec![input, code],
            activation: Activation::Identity,
            code_activation: Activation::Identity,
            output_activation: Activation::Identity,
            tied: false,
            input_noise: None,
            sparsity: None,
        }
    }

    /// Checks sizes, noise and sparsity settings; errors name the field.
    pub fn validate(&self) -> Result<()> {
        let bad =
            |f: &str, v: f64, e: &str| Err(crate::regularize::invalid("autoencoder", f, v, e));
        if self.sizes.len() < 2 || self.sizes.contains(&0) {
            candle_core::bail!(
                "autoencoder sizes must be at least [input, code], none zero, got {:?}",
                self.sizes
            );
        }
        match self.input_noise {
            Some(InputNoise::Gaussian { std }) if !(std >= 0.0 && std.is_finite()) => {
                return bad("input_noise.std", std, "a finite number >= 0")
            }
            Some(InputNoise::Mask { p }) if !(0.0..1.0).contains(&p) => {
                return bad("input_noise.p", p, "a probability in [0, 1)")
            }
            _ => {}
        }
        match self.sparsity {
            Some(Sparsity::L1 { lambda }) if !(lambda >= 0.0 && lambda.is_finite()) => {
                bad("sparsity.lambda", lambda, "a finite number >= 0")
            }
            Some(Sparsity::Kl { target, .. }) if !(target > 0.0 && target < 1.0) => {
                bad("sparsity.target", target, "a probability in (0, 1)")
            }
            Some(Sparsity::Kl { weight, .. }) if !(weight >= 0.0 && weight.is_finite()) => {
                bad("sparsity.weight", weight, "a finite number >= 0")
            }
            Some(Sparsity::Kl { .. }) if self.code_activation != Activation::Sigmoid => {
                candle_core::bail!(
                    "autoencoder KL sparsity needs code_activation sigmoid (activations in (0, 1))"
                )
            }
            _ => Ok(()),
        }
    }
}

/// The decoder: its own MLP, or the encoder's weights transposed plus its own biases.
#[derive(Debug)]
enum Decoder {
    Untied(Mlp),
    Tied { biases: Vec<Tensor> },
}

/// An autoencoder; see the [module documentation](self).
#[derive(Debug)]
pub struct Autoencoder {
    config: AutoencoderConfig,
    encoder: Mlp,
    decoder: Decoder,
    noise_rng: Mutex<ChaCha8Rng>,
}

impl Autoencoder {
    /// Creates and initialises the parameters in `varmap` from `seed` (the encoder from
    /// `seed`, an untied decoder from `seed + 1`, the noise from `seed + 2`).
    pub fn seeded(
        config: &AutoencoderConfig,
        varmap: &VarMap,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        config.validate()?;
        let enc_config = MlpConfig {
            activation: config.activation,
            output_activation: config.code_activation,
            ..MlpConfig::new(config.sizes.clone())
        };
        let encoder = Mlp::seeded(&enc_config, varmap, "enc", DType::F32, device, seed)?;
        let decoder = if config.tied {
            let mut data = varmap
                .data()
                .lock()
                .map_err(|_| candle_core::Error::Msg("VarMap lock poisoned".into()))?;
            let mut biases = Vec::new();
            for (k, &size) in config.sizes.iter().rev().skip(1).enumerate() {
                let var = Var::zeros(size, DType::F32, device)?;
                biases.push(var.as_tensor().clone());
                data.insert(format!("dec.{k}.bias"), var);
            }
            Decoder::Tied { biases }
        } else {
            let sizes: Vec<usize> = config.sizes.iter().rev().copied().collect();
            let dec_config = MlpConfig {
                activation: config.activation,
                output_activation: config.output_activation,
                ..MlpConfig::new(sizes)
            };
            Decoder::Untied(Mlp::seeded(
                &dec_config,
                varmap,
                "dec",
                DType::F32,
                device,
                seed.wrapping_add(1),
            )?)
        };
        let noise_rng = Mutex::new(ChaCha8Rng::seed_from_u64(seed.wrapping_add(2)));
        Ok(Self { config: config.clone(), encoder, decoder, noise_rng })
    }

    pub fn config(&self) -> &AutoencoderConfig {
        &self.config
    }

    /// The input size.
    pub fn input_dim(&self) -> usize {
        self.config.sizes[0]
    }

    /// The code size.
    pub fn code_dim(&self) -> usize {
        self.config.sizes[self.config.sizes.len() - 1]
    }

    /// The code of `x` `[batch, input]` (no noise).
    pub fn encode(&self, x: &Tensor) -> Result<Tensor> {
        check_input(x, self.input_dim())?;
        self.encoder.forward(x)
    }

    /// The reconstruction of codes `h` `[batch, code]`.
    pub fn decode(&self, h: &Tensor) -> Result<Tensor> {
        check_input(h, self.code_dim())?;
        match &self.decoder {
            Decoder::Untied(mlp) => mlp.forward(h),
            Decoder::Tied { biases } => {
                let weights = self.encoder.linears();
                let n = biases.len();
                let mut x = h.clone();
                for (k, b) in biases.iter().enumerate() {
                    // The encoder's layer n-1-k computes h W^T + b; its transpose maps back: x W.
                    x = x.matmul(weights[n - 1 - k].weight())?.broadcast_add(b)?;
                    let act = if k + 1 < n {
                        self.config.activation
                    } else {
                        self.config.output_activation
                    };
                    x = act.forward(&x)?;
                }
                Ok(x)
            }
        }
    }

    /// `decode(encode(x))`, no noise.
    pub fn reconstruct(&self, x: &Tensor) -> Result<Tensor> {
        self.decode(&self.encode(x)?)
    }

    /// The decoder's weights in the layout `[out, in]` of its layers, in order: for a tied
    /// decoder, the encoder's weights transposed.
    pub fn decoder_weights(&self) -> Result<Vec<Tensor>> {
        match &self.decoder {
            Decoder::Untied(mlp) => Ok(mlp.linears().iter().map(|l| l.weight().clone()).collect()),
            Decoder::Tied { .. } => {
                self.encoder.linears().iter().rev().map(|l| l.weight().t()).collect()
            }
        }
    }

    /// The encoder's weights `[out, in]`, in order.
    pub fn encoder_weights(&self) -> Vec<Tensor> {
        self.encoder.linears().iter().map(|l| l.weight().clone()).collect()
    }

    /// `x` corrupted by the configured noise (a copy of `x` without noise).
    pub fn corrupt(&self, x: &Tensor) -> Result<Tensor> {
        let Some(noise) = self.config.input_noise else { return Ok(x.clone()) };
        let n = x.elem_count();
        let mut rng = self
            .noise_rng
            .lock()
            .map_err(|_| candle_core::Error::Msg("noise generator lock poisoned".into()))?;
        let noise = match noise {
            InputNoise::Gaussian { std } => {
                let z = Tensor::from_vec(standard_normals(&mut *rng, n), x.shape(), x.device())?;
                return x + z.affine(std, 0.0)?.to_dtype(x.dtype())?;
            }
            InputNoise::Mask { p } => {
                (0..n).map(|_| if rng.random::<f64>() >= p { 1f32 } else { 0.0 }).collect()
            }
        };
        x.mul(&Tensor::from_vec::<_, f32>(noise, x.shape(), x.device())?.to_dtype(x.dtype())?)
    }

    /// The code and the reconstruction, with input noise when `train`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        let input = if train { self.corrupt(x)? } else { x.clone() };
        let h = self.encode(&input)?;
        let r = self.decode(&h)?;
        Ok((h, r))
    }

    /// The sparsity term for codes `h`, or `None`.
    pub fn sparsity_loss(&self, h: &Tensor) -> Result<Option<Tensor>> {
        match self.config.sparsity {
            None => Ok(None),
            Some(Sparsity::L1 { lambda }) => Ok(Some((h.abs()?.sum(1)?.mean_all()? * lambda)?)),
            Some(Sparsity::Kl { target, weight }) => {
                let rho_hat = h.mean(0)?.clamp(1e-6f32, 1.0 - 1e-6)?;
                // rho log(rho / q) = -rho log q + rho log rho, and likewise for 1 - rho.
                let (r, r1) = (target, 1.0 - target);
                let a = rho_hat.log()?.affine(-r, r * r.ln())?;
                let b = rho_hat.affine(-1.0, 1.0)?.log()?.affine(-r1, r1 * r1.ln())?;
                Ok(Some(((a + b)?.sum_all()? * weight)?))
            }
        }
    }
}

impl Objective for Autoencoder {
    /// `mean (x' - x)^2` against the clean input, plus the sparsity term.
    fn loss(&self, batch: &Batch, train: bool) -> Result<Output> {
        let (h, r) = self.forward_t(&batch.x, train)?;
        let mut loss = candle_nn::loss::mse(&r, &batch.x)?;
        if let Some(s) = self.sparsity_loss(&h)? {
            loss = (loss + s)?;
        }
        Ok(Output { loss, scores: None })
    }

    fn check(&self, data: &Dataset) -> std::result::Result<(), TrainError> {
        check_dataset(data, self.input_dim(), None)
    }
}

impl ModuleT for Autoencoder {
    /// The reconstruction (with input noise when `train`).
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        Ok(Autoencoder::forward_t(self, xs, train)?.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kl_sparsity_matches_hand_computation() {
        let config = AutoencoderConfig {
            code_activation: Activation::Sigmoid,
            sparsity: Some(Sparsity::Kl { target: 0.1, weight: 2.0 }),
            ..AutoencoderConfig::linear(3, 2)
        };
        let ae = Autoencoder::seeded(&config, &VarMap::new(), &Device::Cpu, 0).unwrap();
        let h = Tensor::new(&[[0.2f32, 0.5], [0.4, 0.5]], &Device::Cpu).unwrap();
        let kl = |q: f64| 0.1 * (0.1 / q).ln() + 0.9 * (0.9 / (1.0 - q)).ln();
        let expected = 2.0 * (kl(0.3) + kl(0.5));
        let got: f32 = ae.sparsity_loss(&h).unwrap().unwrap().to_scalar().unwrap();
        assert!((got as f64 - expected).abs() < 1e-5, "{got} vs {expected}");
        let bad = AutoencoderConfig { code_activation: Activation::Relu, ..config };
        assert!(Autoencoder::seeded(&bad, &VarMap::new(), &Device::Cpu, 0)
            .unwrap_err()
            .to_string()
            .contains("sigmoid"));
    }

    #[test]
    fn l1_sparsity_and_input_noise() {
        let config = AutoencoderConfig {
            sparsity: Some(Sparsity::L1 { lambda: 0.5 }),
            input_noise: Some(InputNoise::Mask { p: 0.25 }),
            ..AutoencoderConfig::linear(3, 2)
        };
        let ae = Autoencoder::seeded(&config, &VarMap::new(), &Device::Cpu, 0).unwrap();
        let h = Tensor::new(&[[1.0f32, -2.0], [0.0, 3.0]], &Device::Cpu).unwrap();
        // 0.5 * mean over rows of (3, 3).
        let got: f32 = ae.sparsity_loss(&h).unwrap().unwrap().to_scalar().unwrap();
        assert_eq!(got, 1.5);
        let x = Tensor::ones((1000, 3), DType::F32, &Device::Cpu).unwrap();
        let kept: f32 = ae.corrupt(&x).unwrap().mean_all().unwrap().to_scalar().unwrap();
        assert!((kept - 0.75).abs() < 0.03, "{kept}");
        let g =
            AutoencoderConfig { input_noise: Some(InputNoise::Gaussian { std: 0.5 }), ..config };
        let ae = Autoencoder::seeded(&g, &VarMap::new(), &Device::Cpu, 0).unwrap();
        let d = (ae.corrupt(&x).unwrap() - &x).unwrap();
        let var: f32 = d.sqr().unwrap().mean_all().unwrap().to_scalar().unwrap();
        assert!((var - 0.25).abs() < 0.02, "{var}");
        // Evaluation mode never corrupts.
        let (_, r1) = ae.forward_t(&x, false).unwrap();
        let (_, r2) = ae.forward_t(&x, false).unwrap();
        assert_eq!(r1.to_vec2::<f32>().unwrap(), r2.to_vec2::<f32>().unwrap());
    }

    #[test]
    fn tied_decoder_has_only_biases() {
        let config = AutoencoderConfig { tied: true, ..AutoencoderConfig::linear(4, 2) };
        let vm = VarMap::new();
        let ae = Autoencoder::seeded(&config, &vm, &Device::Cpu, 0).unwrap();
        let mut names: Vec<String> = vm.data().lock().unwrap().keys().cloned().collect();
        names.sort();
        assert_eq!(names, ["dec.0.bias", "enc.0.bias", "enc.0.weight"]);
        assert_eq!(ae.decoder_weights().unwrap()[0].dims(), [4, 2]);
        let x = Tensor::ones((3, 4), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(ae.reconstruct(&x).unwrap().dims(), [3, 4]);
        let e = ae
            .encode(&Tensor::ones((3, 5), DType::F32, &Device::Cpu).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("[batch, 4]"), "{e}");
    }
}
