//! AlexNet (Krizhevsky, Sutskever and Hinton 2012, "ImageNet classification with deep
//! convolutional neural networks"), in torchvision's single-tower form (its `alexnet`, from
//! Krizhevsky 2014, "One weird trick for parallelizing convolutional neural networks"):
//!
//! `features`: 0 conv 64@11x11/4 (padding 2), ReLU, 2 max pool 3x3/2, 3 conv 192@5x5
//! (padding 2), ReLU, 5 max pool 3x3/2, 6 conv 384@3x3, ReLU, 8 conv 256@3x3, ReLU, 10 conv
//! 256@3x3 (padding 1), ReLU, 12 max pool 3x3/2; adaptive average pool to 6x6;
//! `classifier`: dropout, 1 fc 4096, ReLU, dropout, 4 fc 4096, ReLU, 6 fc to the classes.
//!
//! The max pools overlap (window 3, stride 2), which the paper found to overfit slightly
//! less. With [`AlexNetConfig::lrn`] the paper's local response normalisation
//! (`k = 2, n = 5, alpha = 1e-4, beta = 0.75`, section 3.3, the sum not divided by `n`)
//! follows the ReLUs of the first two convolutions, before their pools; it has no
//! parameters, so the names stay torchvision's. At 224x224x3 with 1000 classes: 61,100,840
//! parameters, `features.0.weight` ... `classifier.6.bias` as in torchvision.

use candle_core::{Module, ModuleT, Result, Tensor};
use candle_nn::{Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use super::shape::traced;
use super::{check_config, image_batch, linear_parameters, model_error, ShapeTrace};
use crate::conv::blocks::se::linear;
use crate::conv::{relu, AdaptiveAvgPool2d, Conv2d, Conv2dConfig, LocalResponseNorm, MaxPool2d};
use crate::regularize::Dropout;

/// The input, classes and options of an [`AlexNet`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlexNetConfig {
    /// `[channels, height, width]`; the smallest square input is 63x63.
    pub input: [usize; 3],
    pub num_classes: usize,
    /// The width of the two hidden fully connected layers (4096).
    pub hidden: usize,
    /// The drop probability of the classifier's two dropout layers (0.5).
    pub dropout: f64,
    /// Local response normalisation after the first two convolutions (false, as torchvision).
    pub lrn: bool,
    /// Seeds the dropout masks (streams 1 and 2).
    pub seed: u64,
}

impl AlexNetConfig {
    /// torchvision's AlexNet for `input` and `num_classes`: hidden 4096, dropout 0.5, no LRN.
    pub fn new(input: [usize; 3], num_classes: usize) -> Self {
        Self { input, num_classes, hidden: 4096, dropout: 0.5, lrn: false, seed: 0 }
    }

    /// Checks the options and traces the shapes through `features` and the 6x6 pool.
    pub fn trace(&self) -> Result<ShapeTrace> {
        check_config("AlexNet", self.input, self.num_classes)?;
        if self.hidden == 0 || !(0.0..1.0).contains(&self.dropout) {
            return Err(model_error(
                "AlexNet",
                format!(
                    "need hidden >= 1 and dropout in [0, 1), got hidden {} and dropout {}",
                    self.hidden, self.dropout
                ),
            ));
        }
        traced(self.input, |input| {
            let mut t = ShapeTrace::new("AlexNet", input);
            for (i, &(out, k, s, p)) in CONVS.iter().enumerate() {
                t.conv(&format!("features.{}", CONV_INDEX[i]), out, k, s, p)?;
                if let Some(j) = POOL_AFTER.iter().position(|&c| c == i) {
                    t.pool(&format!("features.{}", POOL_INDEX[j]), 3, 2, 0, false)?;
                }
            }
            t.resize("avgpool", 6, 6);
            Ok(t)
        })
    }
}

/// `(out_channels, kernel, stride, padding)` of the five convolutions.
const CONVS: [(usize, usize, usize, usize); 5] =
    [(64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1)];
/// Their indices in torchvision's `features` sequence.
const CONV_INDEX: [usize; 5] = [0, 3, 6, 8, 10];
/// The convolutions (0-based) followed by a max pool, and the pools' indices.
const POOL_AFTER: [usize; 3] = [0, 1, 4];
const POOL_INDEX: [usize; 3] = [2, 5, 12];

/// AlexNet; see the [module documentation](self).
#[derive(Debug)]
pub struct AlexNet {
    config: AlexNetConfig,
    convs: Vec<Conv2d>,
    pool: MaxPool2d,
    lrn: Option<LocalResponseNorm>,
    avgpool: AdaptiveAvgPool2d,
    dropouts: [Dropout; 2],
    fc: [Linear; 3],
}

impl AlexNet {
    pub fn new(config: AlexNetConfig, vb: VarBuilder) -> Result<Self> {
        config.trace()?;
        let mut convs = Vec::with_capacity(5);
        let mut channels = config.input[0];
        for (&(out, k, s, p), index) in CONVS.iter().zip(CONV_INDEX) {
            let conv = Conv2dConfig::new(channels, out, k).stride(s).padding(p);
            convs.push(Conv2d::new(conv, vb.pp(format!("features.{index}")))?);
            channels = out;
        }
        let lrn = if config.lrn { Some(LocalResponseNorm::tf(2, 2.0, 1e-4, 0.75)?) } else { None };
        let h = config.hidden;
        Ok(Self {
            convs,
            pool: MaxPool2d::new(3).stride(2),
            lrn,
            avgpool: AdaptiveAvgPool2d::new([6, 6]),
            dropouts: [
                Dropout::with_stream(config.dropout, config.seed, 1)?,
                Dropout::with_stream(config.dropout, config.seed, 2)?,
            ],
            fc: [
                linear(channels * 36, h, vb.pp("classifier.1"))?,
                linear(h, h, vb.pp("classifier.4"))?,
                linear(h, config.num_classes, vb.pp("classifier.6"))?,
            ],
            config,
        })
    }

    pub fn config(&self) -> &AlexNetConfig {
        &self.config
    }

    /// The number of trainable parameters (61,100,840 at 224x224x3 with 1000 classes).
    pub fn parameter_count(&self) -> usize {
        self.convs.iter().map(Conv2d::parameter_count).sum::<usize>()
            + self.fc.iter().map(linear_parameters).sum::<usize>()
    }
}

impl ModuleT for AlexNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = image_batch("AlexNet", x, self.config.input)?;
        for (i, conv) in self.convs.iter().enumerate() {
            h = relu(&conv.forward(&h)?)?;
            if let (Some(lrn), true) = (&self.lrn, i < 2) {
                h = lrn.forward(&h)?;
            }
            if POOL_AFTER.contains(&i) {
                h = self.pool.forward(&h)?;
            }
        }
        let h = self.avgpool.forward(&h)?.flatten_from(1)?;
        let h = self.dropouts[0].forward_t(&h, train)?;
        let h = relu(&self.fc[0].forward(&h)?)?;
        let h = self.dropouts[1].forward_t(&h, train)?;
        let h = relu(&self.fc[1].forward(&h)?)?;
        self.fc[2].forward(&h)
    }
}
