//! The deep convolutional GAN (Radford, Metz and Chintala 2016, "Unsupervised representation
//! learning with deep convolutional generative adversarial networks", ICLR): the networks of
//! a GAN made of strided convolutions, transposed convolutions and batch norm. It is trained
//! by the same [`Gan`] as the dense GAN (the two-phase iteration and the replay of past fakes
//! of [`super::gan`]); this module only builds the networks.
//!
//! Following the paper's guidelines (section 3):
//!
//! * **generator**: `z` `[latent]` is projected by a dense layer onto a small feature map
//!   `[g_0, H / 2^m, W / 2^m]` (batch norm, ReLU), then `m` transposed convolutions (kernel 4,
//!   stride 2, padding 1) each double the side; all but the last are followed by batch norm
//!   and ReLU, the last outputs the image's channels through the output activation. The
//!   paper uses tanh with images scaled to `[-1, 1]`; the default here is a sigmoid, since
//!   the data sets of [`crate::data`] hold pixels in `[0, 1]`.
//! * **discriminator**: strided convolutions (kernel 4, stride 2, padding 1: the side halves)
//!   with LeakyReLU(0.2), batch norm after every convolution but the first (the paper leaves
//!   the discriminator's input layer without it), then a dense layer to one logit. No
//!   pooling anywhere: the networks learn their own down- and up-sampling.
//! * **initialisation**: every weight from `N(0, 0.02)`, biases zero, batch-norm scales one;
//!   convolutions followed by batch norm have no bias (batch norm's shift replaces it).
//!
//! Images travel flat (`[N, C H W]`, the layout of a [`crate::data::Dataset`] and of the
//! replay buffer) between [`Gan`] and the networks, which reshape them to `[N, C, H, W]`.
//! Parameter names: `generator.project`, `generator.project_bn`, `generator.up.{i}`,
//! `generator.bn.{i}`; `discriminator.conv.{i}`, `discriminator.bn.{i}` (`i >= 1`),
//! `discriminator.logit`, each with torch's leaf names (`weight`, `bias`, `running_mean`,
//! `running_var`).

use candle_core::{DType, Device, Module, ModuleT, Result, Tensor};
use candle_nn::{Linear, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use super::conv_autoencoder::{
    conv2d_specs, conv_transpose2d_specs, linear_specs, load_linear, InitScheme,
};
use super::gan::{FakeReplay, Gan, GanNetworks, GanSpec, GanTraining};
use crate::conv::{BatchNorm, Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use crate::mlp::Activation;
use crate::optim::OptimizerConfig;
use crate::rnn::init::{fill_varmap, join, ParamInit, ParamSpec};
use crate::rnn::LayerError;

const NAME: &str = "DCGAN";

/// A GAN with the convolutional networks of this module.
pub type Dcgan = Gan<DcganNetworks>;

fn sigmoid() -> Activation {
    Activation::Sigmoid
}

fn leaky_slope() -> f64 {
    0.2
}

/// The networks and training of a [`Dcgan`]. In JSON (with the optimizers):
/// `{"latent": 16, "image_shape": [1, 8, 8], "generator_channels": [64, 32],
/// "discriminator_channels": [32, 64], ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DcganConfig {
    pub latent: usize,
    /// `[channels, height, width]` of the images; height and width must be multiples of
    /// `2^m`, `m` the number of generator stages.
    pub image_shape: [usize; 3],
    /// The generator's feature-map channels from the projected map up, one transposed
    /// convolution (doubling the side) per entry; `[64, 32]` for 8x8 images: `64x2x2 ->
    /// 32x4x4 -> Cx8x8`.
    pub generator_channels: Vec<usize>,
    /// The output channels of the discriminator's strided convolutions (each halves the
    /// side); `[32, 64]` for 8x8 images: `32x4x4 -> 64x2x2 -> logit`.
    pub discriminator_channels: Vec<usize>,
    /// After the generator's last layer (default sigmoid, for pixels in `[0, 1]`).
    #[serde(default = "sigmoid")]
    pub output_activation: Activation,
    /// The discriminator's LeakyReLU slope (default 0.2, the paper's).
    #[serde(default = "leaky_slope")]
    pub leaky_slope: f64,
    pub generator_optimizer: OptimizerConfig,
    pub discriminator_optimizer: OptimizerConfig,
    #[serde(default)]
    pub replay: Option<FakeReplay>,
}

/// Kernel 4, stride 2, padding 1: the side doubles (transposed) or halves (direct).
const K: usize = 4;

impl DcganConfig {
    /// Checks the sizes and returns the side `[h, w]` of the generator's projected map and of
    /// the discriminator's last feature map; errors name the field.
    fn geometry(&self) -> Result<([usize; 2], [usize; 2])> {
        let bad = |field: &str, value: String, expected: String| -> candle_core::Error {
            LayerError::config(NAME, field, value, &expected).into()
        };
        let [_, h, w] = self.image_shape;
        if self.latent == 0 {
            return Err(bad("latent", "0".into(), "a positive size".into()));
        }
        if self.image_shape.contains(&0) {
            let v = format!("{:?}", self.image_shape);
            return Err(bad("image_shape", v, "three positive sizes [C, H, W]".into()));
        }
        for (field, channels) in [
            ("generator_channels", &self.generator_channels),
            ("discriminator_channels", &self.discriminator_channels),
        ] {
            if channels.is_empty() || channels.contains(&0) {
                let v = format!("{channels:?}");
                return Err(bad(field, v, "at least one layer, no zero channel count".into()));
            }
        }
        if !(self.leaky_slope.is_finite() && self.leaky_slope >= 0.0) {
            let v = self.leaky_slope.to_string();
            return Err(bad("leaky_slope", v, "a finite number >= 0".into()));
        }
        let scale = 1usize.checked_shl(self.generator_channels.len() as u32).unwrap_or(0);
        if scale == 0 || h % scale != 0 || w % scale != 0 {
            return Err(bad(
                "image_shape",
                format!("{:?}", self.image_shape),
                format!(
                    "height and width multiples of 2^{} for {} generator stages",
                    self.generator_channels.len(),
                    self.generator_channels.len()
                ),
            ));
        }
        let (mut dh, mut dw) = (h, w);
        for _ in &self.discriminator_channels {
            if dh < 2 || dw < 2 {
                return Err(bad(
                    "discriminator_channels",
                    format!("{:?}", self.discriminator_channels),
                    format!("no more stride-2 layers than {h}x{w} images allow (one per halving)"),
                ));
            }
            (dh, dw) = (dh / 2, dw / 2);
        }
        Ok(([h / scale, w / scale], [dh, dw]))
    }

    fn up_conv(&self, i: usize) -> ConvTranspose2dConfig {
        let g = &self.generator_channels;
        let last = i + 1 == g.len();
        let out = if last { self.image_shape[0] } else { g[i + 1] };
        ConvTranspose2dConfig {
            stride: [2, 2],
            padding: [1, 1],
            bias: last,
            ..ConvTranspose2dConfig::new(g[i], out, K)
        }
    }

    fn down_conv(&self, i: usize) -> Conv2dConfig {
        let d = &self.discriminator_channels;
        let input = if i == 0 { self.image_shape[0] } else { d[i - 1] };
        Conv2dConfig::new(input, d[i], K).stride(2).padding(1).bias(i == 0)
    }

    fn generator_specs(&self, base: [usize; 2]) -> Vec<ParamSpec> {
        let init = InitScheme::Dcgan;
        let projected = self.generator_channels[0] * base[0] * base[1];
        let mut specs = linear_specs("generator.project", self.latent, projected, false, init);
        specs.extend(batch_norm_specs("generator.project_bn", self.generator_channels[0]));
        for i in 0..self.generator_channels.len() {
            let conv = self.up_conv(i);
            specs.extend(conv_transpose2d_specs(&format!("generator.up.{i}"), &conv, init));
            if !conv.bias {
                specs.extend(batch_norm_specs(&format!("generator.bn.{i}"), conv.out_channels));
            }
        }
        specs
    }

    fn discriminator_specs(&self, last: [usize; 2]) -> Vec<ParamSpec> {
        let init = InitScheme::Dcgan;
        let mut specs = Vec::new();
        for (i, &c) in self.discriminator_channels.iter().enumerate() {
            specs.extend(conv2d_specs(
                &format!("discriminator.conv.{i}"),
                &self.down_conv(i),
                init,
            ));
            if i > 0 {
                specs.extend(batch_norm_specs(&format!("discriminator.bn.{i}"), c));
            }
        }
        let flat =
            self.discriminator_channels[self.discriminator_channels.len() - 1] * last[0] * last[1];
        specs.extend(linear_specs("discriminator.logit", flat, 1, true, init));
        specs
    }
}

/// A batch norm's parameters and buffers: scale 1, shift 0, running mean 0, variance 1.
fn batch_norm_specs(prefix: &str, channels: usize) -> Vec<ParamSpec> {
    [("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)]
        .into_iter()
        .map(|(leaf, v)| ParamSpec::new(join(prefix, leaf), vec![channels], ParamInit::Const(v)))
        .collect()
}

/// The DCGAN generator; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct DcganGenerator {
    project: Linear,
    project_bn: BatchNorm,
    /// `[g_0, h, w]` of the projected map.
    base: [usize; 3],
    /// Each transposed convolution with its batch norm (none for the last).
    ups: Vec<(ConvTranspose2d, Option<BatchNorm>)>,
    output_activation: Activation,
}

impl DcganGenerator {
    fn load(config: &DcganConfig, base: [usize; 2], vb: &VarBuilder) -> Result<Self> {
        let g0 = config.generator_channels[0];
        let project = load_linear(&vb.pp("project"), config.latent, g0 * base[0] * base[1], false)?;
        let project_bn = BatchNorm::new_2d(g0, vb.pp("project_bn"))?;
        let ups = (0..config.generator_channels.len())
            .map(|i| {
                let c = config.up_conv(i);
                let conv = ConvTranspose2d::new(c, vb.pp(format!("up.{i}")))?;
                let bn = (!c.bias)
                    .then(|| BatchNorm::new_2d(c.out_channels, vb.pp(format!("bn.{i}"))))
                    .transpose()?;
                Ok((conv, bn))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            project,
            project_bn,
            base: [g0, base[0], base[1]],
            ups,
            output_activation: config.output_activation,
        })
    }
}

impl ModuleT for DcganGenerator {
    /// Latent vectors `[N, latent]` to images `[N, C, H, W]`.
    fn forward_t(&self, z: &Tensor, train: bool) -> Result<Tensor> {
        let n = z.dim(0)?;
        let [c, h, w] = self.base;
        let x = self.project.forward(z)?.reshape((n, c, h, w))?;
        let mut x = self.project_bn.forward_t(&x, train)?.relu()?;
        for (conv, bn) in &self.ups {
            x = conv.forward(&x)?;
            x = match bn {
                Some(bn) => bn.forward_t(&x, train)?.relu()?,
                None => self.output_activation.forward(&x)?,
            };
        }
        Ok(x)
    }
}

/// The DCGAN discriminator; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct DcganDiscriminator {
    /// Each strided convolution with its batch norm (none for the first).
    downs: Vec<(Conv2d, Option<BatchNorm>)>,
    logit: Linear,
    slope: f64,
}

impl DcganDiscriminator {
    fn load(config: &DcganConfig, last: [usize; 2], vb: &VarBuilder) -> Result<Self> {
        let d = &config.discriminator_channels;
        let downs = (0..d.len())
            .map(|i| {
                let conv = Conv2d::new(config.down_conv(i), vb.pp(format!("conv.{i}")))?;
                let bn = (i > 0)
                    .then(|| BatchNorm::new_2d(d[i], vb.pp(format!("bn.{i}"))))
                    .transpose()?;
                Ok((conv, bn))
            })
            .collect::<Result<Vec<_>>>()?;
        let flat = d[d.len() - 1] * last[0] * last[1];
        let logit = load_linear(&vb.pp("logit"), flat, 1, true)?;
        Ok(Self { downs, logit, slope: config.leaky_slope })
    }
}

impl ModuleT for DcganDiscriminator {
    /// Images `[N, C, H, W]` to logits `[N, 1]`.
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = x.clone();
        for (conv, bn) in &self.downs {
            x = conv.forward(&x)?;
            if let Some(bn) = bn {
                x = bn.forward_t(&x, train)?;
            }
            x = candle_nn::ops::leaky_relu(&x, self.slope)?;
        }
        self.logit.forward(&x.flatten_from(1)?)
    }
}

/// The two networks of a [`Dcgan`], with their configuration.
#[derive(Debug, Clone)]
pub struct DcganNetworks {
    config: DcganConfig,
    generator: DcganGenerator,
    discriminator: DcganDiscriminator,
}

impl DcganNetworks {
    pub fn generator(&self) -> &DcganGenerator {
        &self.generator
    }

    pub fn discriminator(&self) -> &DcganDiscriminator {
        &self.discriminator
    }
}

impl GanNetworks for DcganNetworks {
    type Config = DcganConfig;

    fn config(&self) -> &DcganConfig {
        &self.config
    }

    fn latent(&self) -> usize {
        self.config.latent
    }

    fn data_dim(&self) -> usize {
        self.config.image_shape.iter().product()
    }

    fn generate(&self, z: &Tensor, train: bool) -> Result<Tensor> {
        if z.rank() != 2 || z.dim(1)? != self.config.latent || z.dim(0)? == 0 {
            let expected = format!("[N, {}] with N >= 1", self.config.latent);
            return Err(LayerError::shape(NAME, "latent", expected, z.shape()).into());
        }
        self.generator.forward_t(z, train)?.flatten_from(1)
    }

    fn discriminate(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let [c, h, w] = self.config.image_shape;
        match *x.dims() {
            [n, d] if n > 0 && d == c * h * w => {
                self.discriminator.forward_t(&x.reshape((n, c, h, w))?, train)
            }
            _ => Err(LayerError::shape(
                NAME,
                "images",
                format!("flat [N, {}] = [N, C H W] with N >= 1", c * h * w),
                x.shape(),
            )
            .into()),
        }
    }
}

impl GanSpec for DcganConfig {
    type Networks = DcganNetworks;

    fn training(&self) -> GanTraining {
        GanTraining {
            generator_optimizer: self.generator_optimizer,
            discriminator_optimizer: self.discriminator_optimizer,
            replay: self.replay,
        }
    }

    /// The generator's parameters from `seed`, the discriminator's from `seed + 1`.
    fn build(&self, varmap: &VarMap, device: &Device, seed: u64) -> Result<DcganNetworks> {
        let (base, last) = self.geometry()?;
        let dtype = DType::F32;
        fill_varmap(varmap, &self.generator_specs(base), seed, dtype, device)?;
        fill_varmap(varmap, &self.discriminator_specs(last), seed.wrapping_add(1), dtype, device)?;
        let vb = VarBuilder::from_varmap(varmap, dtype, device);
        Ok(DcganNetworks {
            config: self.clone(),
            generator: DcganGenerator::load(self, base, &vb.pp("generator"))?,
            discriminator: DcganDiscriminator::load(self, last, &vb.pp("discriminator"))?,
        })
    }
}
