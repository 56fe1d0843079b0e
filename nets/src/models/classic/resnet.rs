//! ResNet (He, Zhang, Ren and Sun 2016, "Deep residual learning for image recognition",
//! table 1) with basic residual units, and SE-ResNet (Hu, Shen and Sun 2018,
//! "Squeeze-and-excitation networks", figure 3) when the units carry SE gates.
//!
//! * Stem: [`ResNetStem::ImageNet`] is `conv1` 7x7/2 (padding 3, no bias), `bn1`, ReLU,
//!   3x3/2 max pool (padding 1); [`ResNetStem::Small`] is the paper's CIFAR-10 stem
//!   (section 4.2): `conv1` 3x3/1 (padding 1, no bias), `bn1`, ReLU, no pool.
//! * Stages `layer1`, `layer2`, ...: stage `i` has `units[i]` [`ResidualUnit`]s of
//!   `widths[i]` maps; the first unit of every stage but the first halves the map with
//!   stride 2, and a 1x1 projection shortcut (option B) wherever the shape changes.
//! * Global average pooling, `fc` to the classes.
//!
//! ResNet-34 ([`ResNetConfig::resnet34`]) has 3, 4, 6 and 3 units of 64, 128, 256 and 512
//! maps: 21,797,672 parameters at 224x224x3 with 1000 classes, named as torchvision's
//! `resnet34` (`conv1.weight`, `bn1.*`, `layer1.0.conv1.weight`, `layer2.0.downsample.0.weight`,
//! `fc.weight`). With `se_ratio` (16 in the paper) each unit's residual branch is gated
//! before the addition, the gate's parameters under `layerI.J.se.` (`fc1`, `fc2`).
//! The CIFAR-style ResNet-20 of the paper is `Small`, widths 16/32/64, 3 units each (with
//! projection rather than zero-padding shortcuts).

use candle_core::{Module, ModuleT, Result, Tensor};
use candle_nn::{Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use super::shape::traced;
use super::{check_config, image_batch, linear_parameters, model_error, ShapeTrace};
use crate::conv::blocks::se::linear;
use crate::conv::blocks::ResidualUnit;
use crate::conv::{BatchNorm, Conv2d, Conv2dConfig, GlobalAvgPool2d, MaxPool2d};

/// The first layers of a [`ResNet`], before the residual stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ResNetStem {
    /// 7x7/2 convolution, batch norm, ReLU, 3x3/2 max pool (ImageNet models): the map
    /// shrinks 4 times.
    #[default]
    ImageNet,
    /// 3x3/1 convolution, batch norm, ReLU (the CIFAR-10 models): the map keeps its size.
    Small,
}

/// The input, classes and layout of a [`ResNet`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResNetConfig {
    /// `[channels, height, width]`.
    pub input: [usize; 3],
    pub num_classes: usize,
    pub stem: ResNetStem,
    /// The stem's output depth (64 for ImageNet models, 16 for the CIFAR ones).
    pub stem_width: usize,
    /// The depth of each stage.
    pub widths: Vec<usize>,
    /// The number of residual units of each stage.
    pub units: Vec<usize>,
    /// SE-ResNet: a squeeze-and-excitation gate with this reduction ratio in every unit.
    pub se_ratio: Option<usize>,
}

impl ResNetConfig {
    /// ResNet-34: ImageNet stem, 3, 4, 6 and 3 units of 64, 128, 256 and 512 maps.
    pub fn resnet34(input: [usize; 3], num_classes: usize) -> Self {
        Self {
            input,
            num_classes,
            stem: ResNetStem::ImageNet,
            stem_width: 64,
            widths: vec![64, 128, 256, 512],
            units: vec![3, 4, 6, 3],
            se_ratio: None,
        }
    }

    /// SE-ResNet-34: ResNet-34 with a squeeze-and-excitation gate (reduction 16) in every
    /// unit.
    pub fn se_resnet34(input: [usize; 3], num_classes: usize) -> Self {
        Self { se_ratio: Some(16), ..Self::resnet34(input, num_classes) }
    }

    /// The paper's CIFAR-10 layout with `n` units per stage (ResNet-`6n+2`): small stem of
    /// 16 maps, stages of 16, 32 and 64 maps.
    pub fn cifar(input: [usize; 3], num_classes: usize, n: usize) -> Self {
        Self {
            input,
            num_classes,
            stem: ResNetStem::Small,
            stem_width: 16,
            widths: vec![16, 32, 64],
            units: vec![n; 3],
            se_ratio: None,
        }
    }

    /// The model's name in messages: "ResNet-34", "SE-ResNet-34", or "ResNet"/"SE-ResNet"
    /// with the number of weighted layers (`2 * units + 2`).
    pub fn name(&self) -> String {
        let depth = 2 * self.units.iter().sum::<usize>() + 2;
        let se = if self.se_ratio.is_some() { "SE-" } else { "" };
        format!("{se}ResNet-{depth}")
    }

    /// Checks the layout and traces the shapes (after the stem, then after each unit).
    pub fn trace(&self) -> Result<ShapeTrace> {
        let name = self.name();
        check_config(&name, self.input, self.num_classes)?;
        if self.widths.is_empty()
            || self.widths.len() != self.units.len()
            || self.widths.contains(&0)
            || self.units.contains(&0)
            || self.stem_width == 0
            || self.se_ratio == Some(0)
        {
            return Err(model_error(
                &name,
                format!(
                    "need as many positive widths as positive unit counts, a positive stem \
                     width and SE ratio, got widths {:?}, units {:?}, stem width {}, SE ratio \
                     {:?}",
                    self.widths, self.units, self.stem_width, self.se_ratio
                ),
            ));
        }
        traced(self.input, |input| {
            let mut t = ShapeTrace::new(&name, input);
            match self.stem {
                ResNetStem::ImageNet => {
                    t.conv("conv1", self.stem_width, 7, 2, 3)?;
                    t.pool("maxpool", 3, 2, 1, false)?;
                }
                ResNetStem::Small => t.conv("conv1", self.stem_width, 3, 1, 1)?,
            }
            for (s, (&width, &units)) in self.widths.iter().zip(&self.units).enumerate() {
                for u in 0..units {
                    let stride = if s > 0 && u == 0 { 2 } else { 1 };
                    t.conv(&format!("layer{}.{u}", s + 1), width, 3, stride, 1)?;
                }
            }
            Ok(t)
        })
    }
}

/// A ResNet or SE-ResNet; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct ResNet {
    config: ResNetConfig,
    name: String,
    conv1: Conv2d,
    bn1: BatchNorm,
    maxpool: Option<MaxPool2d>,
    units: Vec<ResidualUnit>,
    fc: Linear,
}

impl ResNet {
    pub fn new(config: ResNetConfig, vb: VarBuilder) -> Result<Self> {
        config.trace()?;
        let (k, s, p, maxpool) = match config.stem {
            ResNetStem::ImageNet => (7, 2, 3, Some(MaxPool2d::new(3).stride(2).padding(1))),
            ResNetStem::Small => (3, 1, 1, None),
        };
        let conv1 = Conv2d::new(
            Conv2dConfig::new(config.input[0], config.stem_width, k)
                .stride(s)
                .padding(p)
                .bias(false),
            vb.pp("conv1"),
        )?;
        let bn1 = BatchNorm::new_2d(config.stem_width, vb.pp("bn1"))?;
        let mut units = Vec::new();
        let mut channels = config.stem_width;
        for (s, (&width, &n)) in config.widths.iter().zip(&config.units).enumerate() {
            for u in 0..n {
                let stride = if s > 0 && u == 0 { 2 } else { 1 };
                let vb_unit = vb.pp(format!("layer{}", s + 1)).pp(u.to_string());
                let mut unit = ResidualUnit::new(channels, width, stride, vb_unit.clone())?;
                if let Some(ratio) = config.se_ratio {
                    unit = unit.with_se(ratio, vb_unit)?;
                }
                units.push(unit);
                channels = width;
            }
        }
        let fc = linear(channels, config.num_classes, vb.pp("fc"))?;
        Ok(Self { name: config.name(), config, conv1, bn1, maxpool, units, fc })
    }

    pub fn config(&self) -> &ResNetConfig {
        &self.config
    }

    /// The number of trainable parameters (21,797,672 for ResNet-34 at 224x224x3 with 1000
    /// classes); batch-norm running statistics are buffers, not counted.
    pub fn parameter_count(&self) -> usize {
        self.conv1.parameter_count()
            + self.bn1.parameter_count()
            + self.units.iter().map(ResidualUnit::parameter_count).sum::<usize>()
            + linear_parameters(&self.fc)
    }
}

impl ModuleT for ResNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let x = image_batch(&self.name, x, self.config.input)?;
        let mut h = self.bn1.forward_conv_relu_t(&self.conv1, &x, train)?;
        if let Some(pool) = &self.maxpool {
            h = pool.forward(&h)?;
        }
        for unit in &self.units {
            h = unit.forward_t(&h, train)?;
        }
        self.fc.forward(&GlobalAvgPool2d.forward(&h)?)
    }
}
