//! Xception (Chollet 2017, "Xception: deep learning with depthwise separable convolutions",
//! figure 5): two regular convolutions, then depthwise separable convolutions in residual
//! blocks, every convolution followed by batch normalisation.
//!
//! * Entry flow: `conv1` 32@3x3/2 (no padding), `bn1`, ReLU, `conv2` 64@3x3, `bn2`, ReLU;
//!   `block1` (64 to 128 maps), `block2` (to 256), `block3` (to 728): each two separable
//!   3x3 convolutions with batch norms (ReLU before each, except before `block1`'s first),
//!   a 3x3/2 max pool (padding 1), and a 1x1/2 convolution with batch norm as shortcut.
//! * Middle flow: `block4` ... `block11` (eight by default), each three times ReLU,
//!   separable 3x3 (728 maps), batch norm, with the identity as shortcut.
//! * Exit flow: `block12` (separable 728 then 1024, max pool, projection shortcut), `conv3`
//!   separable 1536, `bn3`, ReLU, `conv4` separable 2048, `bn4`, ReLU, global average
//!   pooling, `fc` to the classes.
//!
//! Separable convolutions have no bias (Keras' `use_bias=False`); block parameters are named
//! `blockI.sepJ.depthwise.weight`, `blockI.sepJ.pointwise.weight`, `blockI.bnJ.*` (J from
//! 1), `blockI.skip.weight`, `blockI.skipbn.*`. torchvision has no Xception; at 299x299x3
//! with 1000 classes it has the paper's 22,855,952 parameters (section 4.7, "22.9M"), the
//! count of the PyTorch port in `pretrainedmodels`, whose names differ.

use candle_core::{Module, ModuleT, Result, Tensor};
use candle_nn::{Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use super::shape::traced;
use super::{check_config, image_batch, linear_parameters, ShapeTrace};
use crate::conv::blocks::se::linear;
use crate::conv::blocks::{SeparableConv2d, SeparableConv2dConfig};
use crate::conv::{relu, BatchNorm, Conv2d, Conv2dConfig, GlobalAvgPool2d, MaxPool2d};

/// The input, classes and middle-flow length of an [`Xception`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct XceptionConfig {
    /// `[channels, height, width]`; the paper's is `[3, 299, 299]`.
    pub input: [usize; 3],
    pub num_classes: usize,
    /// The number of middle-flow blocks (8 in the paper).
    pub middle_blocks: usize,
}

/// The strided blocks: name, input depth, the separable convolutions' output depths, and
/// whether the block opens with a ReLU.
const ENTRY: [(&str, usize, [usize; 2], bool); 3] = [
    ("block1", 64, [128, 128], false),
    ("block2", 128, [256, 256], true),
    ("block3", 256, [728, 728], true),
];
const EXIT: (usize, [usize; 2]) = (728, [728, 1024]);

impl XceptionConfig {
    /// The paper's Xception (eight middle blocks) for `input` and `num_classes`.
    pub fn new(input: [usize; 3], num_classes: usize) -> Self {
        Self { input, num_classes, middle_blocks: 8 }
    }

    /// Checks the options and traces the shapes through the flows.
    pub fn trace(&self) -> Result<ShapeTrace> {
        check_config("Xception", self.input, self.num_classes)?;
        traced(self.input, |input| {
            let mut t = ShapeTrace::new("Xception", input);
            t.conv("conv1", 32, 3, 2, 0)?;
            t.conv("conv2", 64, 3, 1, 0)?;
            for (name, _, out, _) in ENTRY {
                t.depth(name, out[1]);
                t.pool(&format!("{name}.pool"), 3, 2, 1, false)?;
            }
            let last = 4 + self.middle_blocks;
            t.depth(&format!("block{last}"), EXIT.1[1]);
            t.pool(&format!("block{last}.pool"), 3, 2, 1, false)?;
            t.depth("conv4", 2048);
            Ok(t)
        })
    }
}

/// One Xception block: `[ReLU], sep, bn, (ReLU, sep, bn)...`, then a max pool when it
/// strides, plus the shortcut (a 1x1 strided projection with batch norm, or the identity).
#[derive(Debug, Clone)]
struct Block {
    start_with_relu: bool,
    layers: Vec<(SeparableConv2d, BatchNorm)>,
    pool: Option<MaxPool2d>,
    skip: Option<(Conv2d, BatchNorm)>,
}

fn separable(i: usize, o: usize, vb: VarBuilder) -> Result<SeparableConv2d> {
    SeparableConv2d::new(
        SeparableConv2dConfig { bias: false, ..SeparableConv2dConfig::new(i, o, 3) },
        vb,
    )
}

impl Block {
    /// `outs` separable convolutions from `in_channels`; strided (pool and projection) or not.
    fn new(
        in_channels: usize,
        outs: &[usize],
        strided: bool,
        start_with_relu: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        let mut layers = Vec::with_capacity(outs.len());
        let mut c = in_channels;
        for (j, &o) in outs.iter().enumerate() {
            let sep = separable(c, o, vb.pp(format!("sep{}", j + 1)))?;
            layers.push((sep, BatchNorm::new_2d(o, vb.pp(format!("bn{}", j + 1)))?));
            c = o;
        }
        let skip = if strided {
            let conv = Conv2dConfig::new(in_channels, c, 1).stride(2).bias(false);
            Some((Conv2d::new(conv, vb.pp("skip"))?, BatchNorm::new_2d(c, vb.pp("skipbn"))?))
        } else {
            None
        };
        let pool = strided.then(|| MaxPool2d::new(3).stride(2).padding(1));
        Ok(Self { start_with_relu, layers, pool, skip })
    }

    fn parameter_count(&self) -> usize {
        let layers: usize =
            self.layers.iter().map(|(s, bn)| s.parameter_count() + bn.parameter_count()).sum();
        layers + self.skip.as_ref().map_or(0, |(c, bn)| c.parameter_count() + bn.parameter_count())
    }
}

impl ModuleT for Block {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = x.clone();
        for (j, (sep, bn)) in self.layers.iter().enumerate() {
            if j > 0 || self.start_with_relu {
                h = relu(&h)?;
            }
            h = bn.forward_t(&sep.forward(&h)?, train)?;
        }
        if let Some(pool) = &self.pool {
            h = pool.forward(&h)?;
        }
        let shortcut = match &self.skip {
            Some((conv, bn)) => bn.forward_t(&conv.forward(x)?, train)?,
            None => x.clone(),
        };
        h + shortcut
    }
}

/// Xception; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Xception {
    config: XceptionConfig,
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    blocks: Vec<Block>,
    conv3: SeparableConv2d,
    bn3: BatchNorm,
    conv4: SeparableConv2d,
    bn4: BatchNorm,
    fc: Linear,
}

impl Xception {
    pub fn new(config: XceptionConfig, vb: VarBuilder) -> Result<Self> {
        config.trace()?;
        let conv = |i, o, s, name: &str| {
            Conv2d::new(Conv2dConfig::new(i, o, 3).stride(s).bias(false), vb.pp(name))
        };
        let mut blocks = Vec::with_capacity(4 + config.middle_blocks);
        for (name, i, outs, start_with_relu) in ENTRY {
            blocks.push(Block::new(i, &outs, true, start_with_relu, vb.pp(name))?);
        }
        for k in 0..config.middle_blocks {
            blocks.push(Block::new(728, &[728; 3], false, true, vb.pp(format!("block{}", k + 4)))?);
        }
        let last = format!("block{}", 4 + config.middle_blocks);
        blocks.push(Block::new(EXIT.0, &EXIT.1, true, true, vb.pp(last))?);
        Ok(Self {
            config,
            conv1: conv(config.input[0], 32, 2, "conv1")?,
            bn1: BatchNorm::new_2d(32, vb.pp("bn1"))?,
            conv2: conv(32, 64, 1, "conv2")?,
            bn2: BatchNorm::new_2d(64, vb.pp("bn2"))?,
            blocks,
            conv3: separable(1024, 1536, vb.pp("conv3"))?,
            bn3: BatchNorm::new_2d(1536, vb.pp("bn3"))?,
            conv4: separable(1536, 2048, vb.pp("conv4"))?,
            bn4: BatchNorm::new_2d(2048, vb.pp("bn4"))?,
            fc: linear(2048, config.num_classes, vb.pp("fc"))?,
        })
    }

    pub fn config(&self) -> &XceptionConfig {
        &self.config
    }

    /// The number of trainable parameters (22,855,952 at 299x299x3 with 1000 classes).
    pub fn parameter_count(&self) -> usize {
        self.conv1.parameter_count()
            + self.bn1.parameter_count()
            + self.conv2.parameter_count()
            + self.bn2.parameter_count()
            + self.blocks.iter().map(Block::parameter_count).sum::<usize>()
            + self.conv3.parameter_count()
            + self.bn3.parameter_count()
            + self.conv4.parameter_count()
            + self.bn4.parameter_count()
            + linear_parameters(&self.fc)
    }
}

impl ModuleT for Xception {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let x = image_batch("Xception", x, self.config.input)?;
        let h = relu(&self.bn1.forward_t(&self.conv1.forward(&x)?, train)?)?;
        let mut h = relu(&self.bn2.forward_t(&self.conv2.forward(&h)?, train)?)?;
        for block in &self.blocks {
            h = block.forward_t(&h, train)?;
        }
        let h = relu(&self.bn3.forward_t(&self.conv3.forward(&h)?, train)?)?;
        let h = relu(&self.bn4.forward_t(&self.conv4.forward(&h)?, train)?)?;
        self.fc.forward(&GlobalAvgPool2d.forward(&h)?)
    }
}
