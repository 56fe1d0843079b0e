//! GoogLeNet (Szegedy et al. 2015, "Going deeper with convolutions", table 1) as torchvision
//! builds it: every convolution a [`BasicConv2d`] (no bias, batch norm with eps 1e-3, ReLU),
//! no auxiliary classifiers, no input transform.
//!
//! `conv1` 64@7x7/2, `maxpool1` 3x3/2, `conv2` 64@1x1, `conv3` 192@3x3, `maxpool2` 3x3/2,
//! `inception3a`, `inception3b`, `maxpool3` 3x3/2, `inception4a` ... `inception4e`,
//! `maxpool4` 2x2/2, `inception5a`, `inception5b`, global average pooling, dropout (0.2,
//! torchvision's default; the paper used 0.4), `fc` to the classes. The max pools use
//! `ceil_mode`, so 224 goes 112, 56, 28, 14, 7. The inception modules are torchvision's
//! ([`Inception::torchvision`]: 3x3 where the paper has 5x5).
//! At 224x224x3 with 1000 classes: 6,624,904 parameters, named as torchvision's
//! (`conv1.conv.weight`, `inception3a.branch1.conv.weight`, `inception5b.branch4.1.bn.bias`,
//! `fc.weight`).

use candle_core::{Module, ModuleT, Result, Tensor};
use candle_nn::{Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use super::shape::traced;
use super::{check_config, image_batch, linear_parameters, model_error, ShapeTrace};
use crate::conv::blocks::se::linear;
use crate::conv::blocks::{BasicConv2d, Inception, InceptionConfig};
use crate::conv::{Conv2dConfig, GlobalAvgPool2d, MaxPool2d};
use crate::regularize::Dropout;

/// The input, classes and dropout of a [`GoogLeNet`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GoogLeNetConfig {
    /// `[channels, height, width]`.
    pub input: [usize; 3],
    pub num_classes: usize,
    /// The drop probability before `fc` (0.2).
    pub dropout: f64,
    /// Seeds the dropout masks.
    pub seed: u64,
}

/// Table 1's inception modules: name, then `#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5,
/// pool proj` (the input depth follows from the previous module).
const MODULES: [(&str, [usize; 6]); 9] = [
    ("inception3a", [64, 96, 128, 16, 32, 32]),
    ("inception3b", [128, 128, 192, 32, 96, 64]),
    ("inception4a", [192, 96, 208, 16, 48, 64]),
    ("inception4b", [160, 112, 224, 24, 64, 64]),
    ("inception4c", [128, 128, 256, 24, 64, 64]),
    ("inception4d", [112, 144, 288, 32, 64, 64]),
    ("inception4e", [256, 160, 320, 32, 128, 128]),
    ("inception5a", [256, 160, 320, 32, 128, 128]),
    ("inception5b", [384, 192, 384, 48, 128, 128]),
];

/// The max pools between the modules: after module `index`, its name, window and stride.
const POOLS: [(usize, &str, usize); 2] = [(1, "maxpool3", 3), (6, "maxpool4", 2)];

fn pool(k: usize) -> MaxPool2d {
    MaxPool2d { ceil_mode: true, ..MaxPool2d::new(k).stride(2) }
}

impl GoogLeNetConfig {
    /// torchvision's GoogLeNet for `input` and `num_classes`, dropout 0.2.
    pub fn new(input: [usize; 3], num_classes: usize) -> Self {
        Self { input, num_classes, dropout: 0.2, seed: 0 }
    }

    /// Checks the options and traces the shapes through the stem, modules and pools.
    pub fn trace(&self) -> Result<ShapeTrace> {
        check_config("GoogLeNet", self.input, self.num_classes)?;
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(model_error(
                "GoogLeNet",
                format!("dropout must be in [0, 1), got {}", self.dropout),
            ));
        }
        traced(self.input, |input| {
            let mut t = ShapeTrace::new("GoogLeNet", input);
            t.conv("conv1", 64, 7, 2, 3)?;
            t.pool("maxpool1", 3, 2, 0, true)?;
            t.conv("conv2", 64, 1, 1, 0)?;
            t.conv("conv3", 192, 3, 1, 1)?;
            t.pool("maxpool2", 3, 2, 0, true)?;
            for (i, (name, d)) in MODULES.iter().enumerate() {
                t.depth(name, d[0] + d[2] + d[4] + d[5]);
                if let Some(&(_, pool_name, k)) = POOLS.iter().find(|p| p.0 == i) {
                    t.pool(pool_name, k, 2, 0, true)?;
                }
            }
            Ok(t)
        })
    }
}

/// GoogLeNet; see the [module documentation](self).
#[derive(Debug)]
pub struct GoogLeNet {
    config: GoogLeNetConfig,
    stem: [BasicConv2d; 3],
    modules: Vec<Inception>,
    dropout: Dropout,
    fc: Linear,
}

impl GoogLeNet {
    pub fn new(config: GoogLeNetConfig, vb: VarBuilder) -> Result<Self> {
        config.trace()?;
        let stem = [
            BasicConv2d::new(
                Conv2dConfig::new(config.input[0], 64, 7).stride(2).padding(3),
                vb.pp("conv1"),
            )?,
            BasicConv2d::new(Conv2dConfig::new(64, 64, 1), vb.pp("conv2"))?,
            BasicConv2d::new(Conv2dConfig::new(64, 192, 3).padding(1), vb.pp("conv3"))?,
        ];
        let mut channels = 192;
        let mut modules = Vec::with_capacity(MODULES.len());
        for (name, d) in MODULES {
            let c = InceptionConfig {
                in_channels: channels,
                ch1x1: d[0],
                ch3x3_reduce: d[1],
                ch3x3: d[2],
                ch5x5_reduce: d[3],
                ch5x5: d[4],
                pool_proj: d[5],
            };
            modules.push(Inception::torchvision(c, vb.pp(name))?);
            channels = c.out_channels();
        }
        Ok(Self {
            stem,
            modules,
            dropout: Dropout::new(config.dropout, config.seed)?,
            fc: linear(channels, config.num_classes, vb.pp("fc"))?,
            config,
        })
    }

    pub fn config(&self) -> &GoogLeNetConfig {
        &self.config
    }

    /// The number of trainable parameters (6,624,904 at 224x224x3 with 1000 classes).
    pub fn parameter_count(&self) -> usize {
        self.stem.iter().map(BasicConv2d::parameter_count).sum::<usize>()
            + self.modules.iter().map(Inception::parameter_count).sum::<usize>()
            + linear_parameters(&self.fc)
    }
}

impl ModuleT for GoogLeNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let x = image_batch("GoogLeNet", x, self.config.input)?;
        let h = self.stem[0].forward_t(&x, train)?;
        let h = pool(3).forward(&h)?;
        let h = self.stem[1].forward_t(&h, train)?;
        let mut h = pool(3).forward(&self.stem[2].forward_t(&h, train)?)?;
        for (i, module) in self.modules.iter().enumerate() {
            h = module.forward_t(&h, train)?;
            if let Some(&(_, _, k)) = POOLS.iter().find(|p| p.0 == i) {
                h = pool(k).forward(&h)?;
            }
        }
        let h = self.dropout.forward_t(&GlobalAvgPool2d.forward(&h)?, train)?;
        self.fc.forward(&h)
    }
}
