//! The convolutional autoencoder (Masci, Meier, Ciresan and Schmidhuber 2011, "Stacked
//! convolutional auto-encoders for hierarchical feature extraction"; Géron, "Hands-on Machine
//! Learning", ch. 17): an encoder of strided convolutions halves the feature maps stage by
//! stage down to a code, and a decoder of transposed convolutions mirrors it back to the
//! image. The loss is the reconstruction error `mean (x' - x)^2`, as for the dense
//! [`super::Autoencoder`].
//!
//! Encoder stage `i`: `Conv2d(c_i -> c_{i+1}, k, stride 2, padding (k - 1) / 2)` then the
//! hidden activation, so a side `n` becomes `floor((n + 2p - k) / 2) + 1` (8 -> 4 -> 2 for
//! `k = 3`). Optionally the last feature map is flattened into a dense code of
//! [`ConvAutoencoderConfig::code_dim`] units (linear). Decoder: the dense layer back (with
//! the hidden activation), then per stage, in reverse, `ConvTranspose2d(c_{i+1} -> c_i, k,
//! stride 2, padding p, output_padding o)` with `o` in `{0, 1}` chosen so the side returns to
//! exactly `n` (the transposed convolution's output is `(n' - 1) 2 - 2p + k + o`), each
//! followed by the hidden activation except the last, which has the output activation
//! (sigmoid for pixels in `[0, 1]`).
//!
//! Images come as `[N, C, H, W]` or as flat rows `[N, C H W]` (a [`Dataset`]'s layout);
//! [`ConvAutoencoder::reconstruct`] answers in the layout it was given. Parameter names:
//! `enc.{i}.weight`/`bias` (Conv2d, torch's layout), `enc.code`, `dec.code` (dense, torch's
//! `Linear` layout) and `dec.{j}.weight`/`bias` (ConvTranspose2d, `j = 0` nearest the code).
//! [`ConvAutoencoder::seeded`] draws every parameter with torch's default initialisation
//! (`U(-1/sqrt(fan_in), 1/sqrt(fan_in))`) from a `ChaCha8Rng`: the same seed gives the same
//! weights, bit for bit.

use candle_core::{DType, Device, Module, ModuleT, Result, Tensor};
use candle_nn::{Linear, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use crate::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use crate::data::{Batch, Dataset};
use crate::mlp::Activation;
use crate::rnn::init::{fill_varmap, join, ParamInit, ParamSpec};
use crate::rnn::LayerError;
use crate::train::objective::check_dataset;
use crate::train::{Objective, Output, TrainError};

const NAME: &str = "ConvAutoencoder";

/// How the models of this module initialise their parameters (through [`ParamSpec`]s).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum InitScheme {
    /// torch's defaults: weights and biases `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`.
    TorchDefault,
    /// Radford, Metz and Chintala 2016 (DCGAN, section 4): weights `N(0, 0.02)`, biases 0.
    Dcgan,
}

impl InitScheme {
    fn weight(self, fan_in: usize) -> ParamInit {
        match self {
            InitScheme::TorchDefault => ParamInit::Uniform(1.0 / (fan_in as f64).sqrt()),
            InitScheme::Dcgan => ParamInit::Normal(0.02),
        }
    }

    fn bias(self, fan_in: usize) -> ParamInit {
        match self {
            InitScheme::TorchDefault => ParamInit::Uniform(1.0 / (fan_in as f64).sqrt()),
            InitScheme::Dcgan => ParamInit::Const(0.0),
        }
    }
}

/// The parameters of a [`Conv2d`] under `prefix`, with torch's names and shapes.
pub(crate) fn conv2d_specs(prefix: &str, c: &Conv2dConfig, init: InitScheme) -> Vec<ParamSpec> {
    let cg = c.in_channels / c.groups.max(1);
    let [kh, kw] = c.kernel_size;
    let fan_in = cg * kh * kw;
    let mut specs = vec![ParamSpec::new(
        join(prefix, "weight"),
        vec![c.out_channels, cg, kh, kw],
        init.weight(fan_in),
    )];
    if c.bias {
        specs.push(ParamSpec::new(join(prefix, "bias"), vec![c.out_channels], init.bias(fan_in)));
    }
    specs
}

/// The parameters of a [`ConvTranspose2d`] under `prefix` (weight `[in, out / groups, kH,
/// kW]`; torch takes the fan-in from `out / groups * kH * kW`).
pub(crate) fn conv_transpose2d_specs(
    prefix: &str,
    c: &ConvTranspose2dConfig,
    init: InitScheme,
) -> Vec<ParamSpec> {
    let og = c.out_channels / c.groups.max(1);
    let [kh, kw] = c.kernel_size;
    let fan_in = og * kh * kw;
    let mut specs = vec![ParamSpec::new(
        join(prefix, "weight"),
        vec![c.in_channels, og, kh, kw],
        init.weight(fan_in),
    )];
    if c.bias {
        specs.push(ParamSpec::new(join(prefix, "bias"), vec![c.out_channels], init.bias(fan_in)));
    }
    specs
}

/// The parameters of a dense layer `[outputs, inputs]` under `prefix` (torch's `Linear`).
pub(crate) fn linear_specs(
    prefix: &str,
    inputs: usize,
    outputs: usize,
    bias: bool,
    init: InitScheme,
) -> Vec<ParamSpec> {
    let mut specs =
        vec![ParamSpec::new(join(prefix, "weight"), vec![outputs, inputs], init.weight(inputs))];
    if bias {
        specs.push(ParamSpec::new(join(prefix, "bias"), vec![outputs], init.bias(inputs)));
    }
    specs
}

/// A dense layer loaded from `vb` (weight `[outputs, inputs]`, optional bias `[outputs]`).
pub(crate) fn load_linear(
    vb: &VarBuilder,
    inputs: usize,
    outputs: usize,
    bias: bool,
) -> Result<Linear> {
    let weight = vb.get((outputs, inputs), "weight")?;
    let bias = if bias { Some(vb.get(outputs, "bias")?) } else { None };
    Ok(Linear::new(weight, bias))
}

fn default_kernel() -> usize {
    3
}

fn sigmoid() -> Activation {
    Activation::Sigmoid
}

/// The shape and activations of a [`ConvAutoencoder`]. In JSON:
/// `{"input_shape": [1, 8, 8], "channels": [16, 32]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvAutoencoderConfig {
    /// `[channels, height, width]` of the images.
    pub input_shape: [usize; 3],
    /// The output channels of each encoder stage (each halves the feature maps); the decoder
    /// mirrors them. At least one, none zero.
    pub channels: Vec<usize>,
    /// The side of every kernel (default 3); the padding is `(k - 1) / 2`.
    #[serde(default = "default_kernel")]
    pub kernel_size: usize,
    /// A dense code of this many units after the last stage; `None` (the default) keeps the
    /// last feature map as the code.
    #[serde(default)]
    pub code_dim: Option<usize>,
    /// After every layer but the code and the output (default ReLU).
    #[serde(default)]
    pub activation: Activation,
    /// After the decoder's last layer (default sigmoid, for pixels in `[0, 1]`).
    #[serde(default = "sigmoid")]
    pub output_activation: Activation,
}

impl ConvAutoencoderConfig {
    /// Stages of `channels` for images of `input_shape`, 3x3 kernels, no dense code, ReLU,
    /// sigmoid output.
    pub fn new(input_shape: [usize; 3], channels: Vec<usize>) -> Self {
        Self {
            input_shape,
            channels,
            kernel_size: 3,
            code_dim: None,
            activation: Activation::Relu,
            output_activation: Activation::Sigmoid,
        }
    }

    fn padding(&self) -> usize {
        (self.kernel_size.saturating_sub(1)) / 2
    }

    /// Checks the configuration and returns the feature-map shapes `[c, h, w]`: the input's,
    /// then each encoder stage's output. Errors name the field.
    pub fn feature_shapes(&self) -> Result<Vec<[usize; 3]>> {
        let bad = |field: &str, value: String, expected: &str| -> candle_core::Error {
            LayerError::config(NAME, field, value, expected).into()
        };
        if self.input_shape.contains(&0) {
            return Err(bad(
                "input_shape",
                format!("{:?}", self.input_shape),
                "three positive sizes [channels, height, width]",
            ));
        }
        if self.channels.is_empty() || self.channels.contains(&0) {
            return Err(bad(
                "channels",
                format!("{:?}", self.channels),
                "at least one stage, no zero channel count",
            ));
        }
        if self.kernel_size < 2 {
            return Err(bad("kernel_size", self.kernel_size.to_string(), "at least 2"));
        }
        if self.code_dim == Some(0) {
            return Err(bad("code_dim", "0".into(), "a positive size or none"));
        }
        let (k, p) = (self.kernel_size, self.padding());
        let mut shapes = vec![self.input_shape];
        for (i, &c) in self.channels.iter().enumerate() {
            let [_, h, w] = shapes[i];
            if h + 2 * p < k || w + 2 * p < k {
                return Err(bad(
                    "input_shape",
                    format!("{:?}", self.input_shape),
                    &format!(
                        "images large enough for {} stride-2 stages of kernel {k}: stage {i} \
                         gets {h}x{w} feature maps",
                        self.channels.len()
                    ),
                ));
            }
            shapes.push([c, (h + 2 * p - k) / 2 + 1, (w + 2 * p - k) / 2 + 1]);
        }
        Ok(shapes)
    }

    /// The flat size of an image, `C H W`.
    pub fn input_dim(&self) -> usize {
        self.input_shape.iter().product()
    }

    /// The encoder stage `i`'s convolution.
    fn encoder_conv(&self, i: usize, shapes: &[[usize; 3]]) -> Conv2dConfig {
        Conv2dConfig::new(shapes[i][0], shapes[i + 1][0], self.kernel_size)
            .stride(2)
            .padding(self.padding())
    }

    /// The transposed convolution that undoes encoder stage `i`, sized to give back exactly
    /// `shapes[i]`.
    fn decoder_conv(&self, i: usize, shapes: &[[usize; 3]]) -> ConvTranspose2dConfig {
        let (k, p) = (self.kernel_size, self.padding());
        let ([c_in, h_in, w_in], [c_out, h_out, w_out]) = (shapes[i], shapes[i + 1]);
        // (n' - 1) 2 - 2p + k is n or n - 1 (see the module documentation).
        let op = |n: usize, n_out: usize| n + 2 * p - ((n_out - 1) * 2 + k);
        ConvTranspose2dConfig {
            stride: [2, 2],
            padding: [p, p],
            output_padding: [op(h_in, h_out), op(w_in, w_out)],
            ..ConvTranspose2dConfig::new(c_out, c_in, k)
        }
    }

    /// Every parameter with its initialisation, in the order [`ConvAutoencoder::seeded`]
    /// draws them.
    fn param_specs(&self, shapes: &[[usize; 3]]) -> Vec<ParamSpec> {
        let init = InitScheme::TorchDefault;
        let stages = self.channels.len();
        let mut specs = Vec::new();
        for i in 0..stages {
            specs.extend(conv2d_specs(&format!("enc.{i}"), &self.encoder_conv(i, shapes), init));
        }
        if let Some(code) = self.code_dim {
            let flat: usize = shapes[stages].iter().product();
            specs.extend(linear_specs("enc.code", flat, code, true, init));
            specs.extend(linear_specs("dec.code", code, flat, true, init));
        }
        for j in 0..stages {
            let conv = self.decoder_conv(stages - 1 - j, shapes);
            specs.extend(conv_transpose2d_specs(&format!("dec.{j}"), &conv, init));
        }
        specs
    }
}

/// A convolutional autoencoder; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct ConvAutoencoder {
    config: ConvAutoencoderConfig,
    /// The input's shape, then each encoder stage's output shape.
    shapes: Vec<[usize; 3]>,
    encoder: Vec<Conv2d>,
    code: Option<(Linear, Linear)>,
    decoder: Vec<ConvTranspose2d>,
}

impl ConvAutoencoder {
    /// Creates the parameters in `varmap` from `ChaCha8Rng::seed_from_u64(seed)` (replacing
    /// variables of the same names) and builds the model on them.
    pub fn seeded(
        config: &ConvAutoencoderConfig,
        varmap: &VarMap,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        let shapes = config.feature_shapes()?;
        fill_varmap(varmap, &config.param_specs(&shapes), seed, dtype, device)?;
        Self::load(config, VarBuilder::from_varmap(varmap, dtype, device))
    }

    /// Builds the model from parameters `vb` holds (a checkpoint or an initialised map).
    pub fn load(config: &ConvAutoencoderConfig, vb: VarBuilder) -> Result<Self> {
        let shapes = config.feature_shapes()?;
        let stages = config.channels.len();
        let encoder = (0..stages)
            .map(|i| Conv2d::new(config.encoder_conv(i, &shapes), vb.pp(format!("enc.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        let code = match config.code_dim {
            Some(code) => {
                let flat: usize = shapes[stages].iter().product();
                Some((
                    load_linear(&vb.pp("enc.code"), flat, code, true)?,
                    load_linear(&vb.pp("dec.code"), code, flat, true)?,
                ))
            }
            None => None,
        };
        let decoder = (0..stages)
            .map(|j| {
                let conv = config.decoder_conv(stages - 1 - j, &shapes);
                ConvTranspose2d::new(conv, vb.pp(format!("dec.{j}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { config: config.clone(), shapes, encoder, code, decoder })
    }

    pub fn config(&self) -> &ConvAutoencoderConfig {
        &self.config
    }

    /// The shape of one code without the batch axis: `[code_dim]`, or the last feature map
    /// `[C, h, w]`.
    pub fn code_shape(&self) -> Vec<usize> {
        match self.config.code_dim {
            Some(d) => vec![d],
            None => self.shapes[self.shapes.len() - 1].to_vec(),
        }
    }

    /// `x` as images `[N, C, H, W]`, and whether it came as flat rows; errors name the model
    /// and both shapes.
    fn as_images(&self, x: &Tensor) -> Result<(Tensor, bool)> {
        let [c, h, w] = self.config.input_shape;
        match *x.dims() {
            [n, d] if n > 0 && d == c * h * w => Ok((x.reshape((n, c, h, w))?, true)),
            [n, xc, xh, xw] if n > 0 && [xc, xh, xw] == [c, h, w] => Ok((x.clone(), false)),
            _ => Err(LayerError::shape(
                NAME,
                "input",
                format!("[N, {c}, {h}, {w}] or flat [N, {}] with N >= 1", c * h * w),
                x.shape(),
            )
            .into()),
        }
    }

    /// The codes of `x` (`[N, C, H, W]` or `[N, C H W]`): `[N, code_dim]` or `[N, C', h, w]`.
    pub fn encode(&self, x: &Tensor) -> Result<Tensor> {
        let (mut h, _) = self.as_images(x)?;
        for conv in &self.encoder {
            h = self.config.activation.forward(&conv.forward(&h)?)?;
        }
        match &self.code {
            Some((enc, _)) => enc.forward(&h.flatten_from(1)?),
            None => Ok(h),
        }
    }

    /// The images `[N, C, H, W]` of codes shaped as [`encode`](Self::encode) returns them (a
    /// feature-map code may also come flat, `[N, C' h w]`).
    pub fn decode(&self, code: &Tensor) -> Result<Tensor> {
        let [c, h, w] = self.shapes[self.shapes.len() - 1];
        let mut x = match (&self.code, code.dims()) {
            (Some((_, dec)), &[n, d]) if n > 0 && Some(d) == self.config.code_dim => {
                self.config.activation.forward(&dec.forward(code)?)?.reshape((n, c, h, w))?
            }
            (None, &[n, d]) if n > 0 && d == c * h * w => code.reshape((n, c, h, w))?,
            (None, &[n, xc, xh, xw]) if n > 0 && [xc, xh, xw] == [c, h, w] => code.clone(),
            _ => {
                let expected = match self.config.code_dim {
                    Some(d) => format!("[N, {d}] with N >= 1"),
                    None => format!("[N, {c}, {h}, {w}] or flat [N, {}] with N >= 1", c * h * w),
                };
                return Err(LayerError::shape(NAME, "code", expected, code.shape()).into());
            }
        };
        let last = self.decoder.len() - 1;
        for (j, conv) in self.decoder.iter().enumerate() {
            let act =
                if j == last { self.config.output_activation } else { self.config.activation };
            x = act.forward(&conv.forward(&x)?)?;
        }
        Ok(x)
    }

    /// `decode(encode(x))`, in `x`'s layout (images or flat rows).
    pub fn reconstruct(&self, x: &Tensor) -> Result<Tensor> {
        let (_, flat) = self.as_images(x)?;
        let r = self.decode(&self.encode(x)?)?;
        if flat {
            r.flatten_from(1)
        } else {
            Ok(r)
        }
    }
}

impl Objective for ConvAutoencoder {
    /// `mean (x' - x)^2` over the batch's flat rows.
    fn loss(&self, batch: &Batch, _train: bool) -> Result<Output> {
        let r = self.reconstruct(&batch.x)?;
        Ok(Output { loss: candle_nn::loss::mse(&r, &batch.x)?, scores: None })
    }

    fn check(&self, data: &Dataset) -> std::result::Result<(), TrainError> {
        check_dataset(data, self.config.input_dim(), None)
    }
}

impl ModuleT for ConvAutoencoder {
    /// The reconstruction (training and evaluation behave the same).
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Result<Tensor> {
        self.reconstruct(xs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_halve_and_the_decoder_gives_the_size_back() {
        for (side, k, expected) in [
            (8, 3, vec![8, 4, 2]),
            (28, 3, vec![28, 14, 7]),
            (7, 3, vec![7, 4, 2]),
            (9, 4, vec![9, 4, 2]),
            (8, 5, vec![8, 4, 2]),
        ] {
            let config = ConvAutoencoderConfig {
                kernel_size: k,
                ..ConvAutoencoderConfig::new([1, side, side], vec![2, 3])
            };
            let shapes = config.feature_shapes().unwrap();
            assert_eq!(shapes.iter().map(|s| s[1]).collect::<Vec<_>>(), expected);
            let ae = ConvAutoencoder::seeded(&config, &VarMap::new(), DType::F32, &Device::Cpu, 0)
                .unwrap();
            let x = Tensor::zeros((2, 1, side, side), DType::F32, &Device::Cpu).unwrap();
            assert_eq!(ae.reconstruct(&x).unwrap().dims(), [2, 1, side, side], "side {side} k {k}");
        }
    }

    #[test]
    fn config_errors_name_the_field() {
        let cases = [
            (ConvAutoencoderConfig::new([1, 0, 8], vec![4]), "input_shape"),
            (ConvAutoencoderConfig::new([1, 8, 8], vec![]), "channels"),
            (ConvAutoencoderConfig::new([1, 8, 8], vec![4, 0]), "channels"),
            (
                ConvAutoencoderConfig {
                    kernel_size: 1,
                    ..ConvAutoencoderConfig::new([1, 8, 8], vec![4])
                },
                "kernel_size",
            ),
            (
                ConvAutoencoderConfig {
                    code_dim: Some(0),
                    ..ConvAutoencoderConfig::new([1, 8, 8], vec![4])
                },
                "code_dim",
            ),
            (
                ConvAutoencoderConfig {
                    kernel_size: 4,
                    ..ConvAutoencoderConfig::new([1, 4, 4], vec![2, 2, 2])
                },
                "input_shape",
            ),
        ];
        for (config, field) in cases {
            let e = ConvAutoencoder::seeded(&config, &VarMap::new(), DType::F32, &Device::Cpu, 0)
                .unwrap_err()
                .to_string();
            assert!(e.contains(NAME) && e.contains(field), "{field}: {e}");
        }
    }
}
