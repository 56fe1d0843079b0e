//! The recurrent (sequence-to-sequence) autoencoder (Srivastava, Mansimov and Salakhutdinov
//! 2015, "Unsupervised learning of video representations using LSTMs", the reconstruction
//! model; Géron, "Hands-on Machine Learning", ch. 17): a recurrent encoder reads a sequence
//! `[N, T, F]` into one vector, the code, and a recurrent decoder writes the sequence back
//! from it.
//!
//! * Encoder: an LSTM or GRU stack (batch-first) over the sequence; its top layer's last
//!   hidden state `h_T` `[N, H]` is the code (Keras' `return_sequences=False`), optionally
//!   mapped by a linear layer to [`RecurrentAutoencoderConfig::code_dim`] units.
//! * Decoder: the code repeated at every one of the `T` steps (Keras' `RepeatVector`) is the
//!   input of a second recurrent stack, whose outputs `[N, T, H]` go through one dense layer
//!   shared by all steps (Keras' `TimeDistributed(Dense)`) and the output activation back to
//!   `[N, T, F]`.
//!
//! The loss is the mean squared error over steps and features. Sequences of different
//! lengths are padded to `T` and given with their lengths
//! ([`RecurrentAutoencoder::reconstruction_loss`]): the encoder stops at each sequence's
//! last valid step (the masking of [`Rnn::forward_masked`], the same code as the unpadded
//! sequence would give), the decoder's padded steps are set to zero, and the loss averages
//! over the valid steps only.
//!
//! Parameters: `encoder.rnn.*` and `decoder.rnn.*` with torch's `nn.LSTM`/`nn.GRU` names
//! (`weight_ih_l0`, ...), `encoder.code.*` (with a dense code) and `decoder.output.*`
//! (`Linear` layout), all drawn with torch's default initialisation from
//! `ChaCha8Rng::seed_from_u64(seed)`.

use candle_core::{DType, Device, Module, ModuleT, Result, Tensor};
use candle_nn::{Linear, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use super::conv_autoencoder::{linear_specs, load_linear, InitScheme};
use crate::data::{Batch, Dataset};
use crate::mlp::Activation;
use crate::rnn::init::fill_varmap;
use crate::rnn::{CellKind, LayerError, Rnn, RnnConfig};
use crate::train::objective::check_dataset;
use crate::train::{Objective, Output, TrainError};

const NAME: &str = "RecurrentAutoencoder";

/// The recurrent cell of both stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RecurrentCell {
    /// torch's `nn.LSTM` (on CPU the fused kernel of [`crate::rnn::fused_lstm`] when no
    /// lengths are given).
    #[default]
    Lstm,
    /// torch's `nn.GRU`.
    Gru,
}

impl RecurrentCell {
    fn kind(self) -> CellKind {
        match self {
            RecurrentCell::Lstm => CellKind::Lstm { peephole: false },
            RecurrentCell::Gru => CellKind::Gru,
        }
    }
}

fn one() -> usize {
    1
}

fn sigmoid() -> Activation {
    Activation::Sigmoid
}

/// The shape of a [`RecurrentAutoencoder`]. In JSON:
/// `{"features": 8, "steps": 8, "hidden": 64}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecurrentAutoencoderConfig {
    /// `F`, the features of one step.
    pub features: usize,
    /// `T` of the flat rows `[N, T F]` that [`Objective::loss`] reads (a data set's
    /// layout); the tensor methods take any `T >= 1`.
    pub steps: usize,
    #[serde(default)]
    pub cell: RecurrentCell,
    /// The hidden size of both stacks.
    pub hidden: usize,
    /// Layers of each stack (default 1).
    #[serde(default = "one")]
    pub num_layers: usize,
    /// A linear code of this size after the encoder; `None` (the default) keeps `h_T`.
    #[serde(default)]
    pub code_dim: Option<usize>,
    /// After the time-distributed output layer (default sigmoid, for values in `[0, 1]`).
    #[serde(default = "sigmoid")]
    pub output_activation: Activation,
}

impl RecurrentAutoencoderConfig {
    /// One LSTM layer of `hidden` units per stack, no dense code, sigmoid output.
    pub fn new(features: usize, steps: usize, hidden: usize) -> Self {
        Self {
            features,
            steps,
            cell: RecurrentCell::Lstm,
            hidden,
            num_layers: 1,
            code_dim: None,
            output_activation: Activation::Sigmoid,
        }
    }

    /// Checks every size; errors name the field.
    pub fn validate(&self) -> Result<()> {
        let fields = [
            ("features", self.features),
            ("steps", self.steps),
            ("hidden", self.hidden),
            ("num_layers", self.num_layers),
        ];
        if let Some((field, v)) = fields.iter().find(|(_, v)| *v == 0) {
            return Err(LayerError::config(NAME, field, v, "a positive size").into());
        }
        if self.code_dim == Some(0) {
            return Err(LayerError::config(NAME, "code_dim", 0, "a positive size or none").into());
        }
        Ok(())
    }

    /// The size of one code.
    pub fn code_size(&self) -> usize {
        self.code_dim.unwrap_or(self.hidden)
    }

    fn encoder_rnn(&self) -> RnnConfig {
        RnnConfig::new(self.cell.kind(), self.features, self.hidden)
            .with_layers(self.num_layers)
            .with_batch_first(true)
    }

    fn decoder_rnn(&self) -> RnnConfig {
        RnnConfig::new(self.cell.kind(), self.code_size(), self.hidden)
            .with_layers(self.num_layers)
            .with_batch_first(true)
    }
}

/// A recurrent autoencoder; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct RecurrentAutoencoder {
    config: RecurrentAutoencoderConfig,
    encoder: Rnn,
    code: Option<Linear>,
    decoder: Rnn,
    output: Linear,
}

impl RecurrentAutoencoder {
    /// Creates the parameters in `varmap` from `ChaCha8Rng::seed_from_u64(seed)` (replacing
    /// variables of the same names) and builds the model on them.
    pub fn seeded(
        config: &RecurrentAutoencoderConfig,
        varmap: &VarMap,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        config.validate()?;
        let init = InitScheme::TorchDefault;
        let mut specs = config.encoder_rnn().param_specs("encoder.rnn");
        if let Some(code) = config.code_dim {
            specs.extend(linear_specs("encoder.code", config.hidden, code, true, init));
        }
        specs.extend(config.decoder_rnn().param_specs("decoder.rnn"));
        specs.extend(linear_specs("decoder.output", config.hidden, config.features, true, init));
        fill_varmap(varmap, &specs, seed, dtype, device)?;
        Self::load(config, VarBuilder::from_varmap(varmap, dtype, device))
    }

    /// Builds the model from parameters `vb` holds (a checkpoint or an initialised map).
    pub fn load(config: &RecurrentAutoencoderConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        let encoder = Rnn::load(config.encoder_rnn(), vb.pp("encoder.rnn"))?;
        let code = match config.code_dim {
            Some(code) => Some(load_linear(&vb.pp("encoder.code"), config.hidden, code, true)?),
            None => None,
        };
        let decoder = Rnn::load(config.decoder_rnn(), vb.pp("decoder.rnn"))?;
        let output = load_linear(&vb.pp("decoder.output"), config.hidden, config.features, true)?;
        Ok(Self { config: config.clone(), encoder, code, decoder, output })
    }

    pub fn config(&self) -> &RecurrentAutoencoderConfig {
        &self.config
    }

    /// Errors unless `x` is `[N, T, F]` with `N, T >= 1`; returns `(N, T)`.
    fn check_sequences(&self, x: &Tensor) -> Result<(usize, usize)> {
        match *x.dims() {
            [n, t, f] if n > 0 && t > 0 && f == self.config.features => Ok((n, t)),
            _ => Err(LayerError::shape(
                NAME,
                "input",
                format!("[N, T, {}] with N, T >= 1", self.config.features),
                x.shape(),
            )
            .into()),
        }
    }

    /// The codes `[N, code_size]` of sequences `x` `[N, T, F]`.
    pub fn encode(&self, x: &Tensor) -> Result<Tensor> {
        self.encode_masked(x, None)
    }

    /// As [`encode`](Self::encode) for padded sequences: sequence `n` ends after
    /// `lengths[n]` steps (`None`: all `T`).
    pub fn encode_masked(&self, x: &Tensor, lengths: Option<&[usize]>) -> Result<Tensor> {
        self.check_sequences(x)?;
        let h = self.encoder.forward_masked(x, None, lengths)?.last()?;
        match &self.code {
            Some(dense) => dense.forward(&h),
            None => Ok(h),
        }
    }

    /// `steps` steps `[N, steps, F]` decoded from codes `[N, code_size]`.
    pub fn decode(&self, code: &Tensor, steps: usize) -> Result<Tensor> {
        let k = self.config.code_size();
        let n = match *code.dims() {
            [n, d] if n > 0 && d == k && steps > 0 => n,
            _ => {
                return Err(LayerError::shape(
                    NAME,
                    "code",
                    format!("[N, {k}] with N >= 1, and steps >= 1 (got {steps})"),
                    code.shape(),
                )
                .into())
            }
        };
        let repeated = code.unsqueeze(1)?.broadcast_as((n, steps, k))?.contiguous()?;
        let hidden = self.decoder.forward(&repeated, None)?.output; // [N, T, H]
        let flat = hidden.reshape((n * steps, self.config.hidden))?;
        let out = self.config.output_activation.forward(&self.output.forward(&flat)?)?;
        out.reshape((n, steps, self.config.features))
    }

    /// `decode(encode(x))` `[N, T, F]`.
    pub fn reconstruct(&self, x: &Tensor) -> Result<Tensor> {
        self.reconstruct_masked(x, None)
    }

    /// As [`reconstruct`](Self::reconstruct) for padded sequences; padded steps are zero.
    pub fn reconstruct_masked(&self, x: &Tensor, lengths: Option<&[usize]>) -> Result<Tensor> {
        let (_, t) = self.check_sequences(x)?;
        let r = self.decode(&self.encode_masked(x, lengths)?, t)?;
        match lengths {
            None => Ok(r),
            Some(lens) => r.broadcast_mul(&step_mask(lens, t, r.dtype(), r.device())?),
        }
    }

    /// The mean squared error between `x` `[N, T, F]` and its reconstruction over the valid
    /// steps (all of them when `lengths` is `None`): `sum_{n, t < len_n, f} (x' - x)^2 /
    /// (F sum_n len_n)`. At least one step must be valid.
    pub fn reconstruction_loss(&self, x: &Tensor, lengths: Option<&[usize]>) -> Result<Tensor> {
        let r = self.reconstruct_masked(x, lengths)?;
        let Some(lens) = lengths else { return candle_nn::loss::mse(&r, x) };
        let valid: usize = lens.iter().sum();
        if valid == 0 {
            return Err(LayerError::input(NAME, "every sequence has length 0").into());
        }
        let mask = step_mask(lens, x.dim(1)?, x.dtype(), x.device())?;
        let sq = (r - x.broadcast_mul(&mask)?)?.sqr()?.sum_all()?;
        sq.affine(1.0 / (valid * self.config.features) as f64, 0.0)
    }

    /// Flat rows `[N, T F]` as sequences `[N, T, F]` with `T = steps` of the configuration.
    fn rows_as_sequences(&self, x: &Tensor) -> Result<Tensor> {
        let (t, f) = (self.config.steps, self.config.features);
        match *x.dims() {
            [n, d] if n > 0 && d == t * f => x.reshape((n, t, f)),
            _ => Err(LayerError::shape(
                NAME,
                "batch",
                format!("flat rows [N, {}] = [N, steps * features]", t * f),
                x.shape(),
            )
            .into()),
        }
    }
}

/// `[N, T, 1]` of ones at the valid steps, zeros at the padded ones.
fn step_mask(lengths: &[usize], t: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    let n = lengths.len();
    let values: Vec<f32> =
        lengths.iter().flat_map(|&l| (0..t).map(move |s| if s < l { 1.0 } else { 0.0 })).collect();
    Tensor::from_vec(values, (n, t, 1), device)?.to_dtype(dtype)
}

impl Objective for RecurrentAutoencoder {
    /// The reconstruction error of flat rows read as `steps` steps of `features`.
    fn loss(&self, batch: &Batch, _train: bool) -> Result<Output> {
        let x = self.rows_as_sequences(&batch.x)?;
        Ok(Output { loss: self.reconstruction_loss(&x, None)?, scores: None })
    }

    fn check(&self, data: &Dataset) -> std::result::Result<(), TrainError> {
        check_dataset(data, self.config.steps * self.config.features, None)
    }
}

impl ModuleT for RecurrentAutoencoder {
    /// The reconstruction of `[N, T, F]` (training and evaluation behave the same).
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Result<Tensor> {
        self.reconstruct(xs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_name_the_field() {
        let base = RecurrentAutoencoderConfig::new(8, 8, 16);
        for (config, field) in [
            (RecurrentAutoencoderConfig { features: 0, ..base.clone() }, "features"),
            (RecurrentAutoencoderConfig { steps: 0, ..base.clone() }, "steps"),
            (RecurrentAutoencoderConfig { hidden: 0, ..base.clone() }, "hidden"),
            (RecurrentAutoencoderConfig { num_layers: 0, ..base.clone() }, "num_layers"),
            (RecurrentAutoencoderConfig { code_dim: Some(0), ..base.clone() }, "code_dim"),
        ] {
            let e =
                RecurrentAutoencoder::seeded(&config, &VarMap::new(), DType::F32, &Device::Cpu, 0)
                    .unwrap_err()
                    .to_string();
            assert!(e.contains(NAME) && e.contains(field), "{field}: {e}");
        }
    }

    #[test]
    fn step_mask_marks_valid_prefixes() {
        let m = step_mask(&[2, 0, 3], 3, DType::F32, &Device::Cpu).unwrap();
        let m: Vec<f32> = m.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(m, [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    }
}
