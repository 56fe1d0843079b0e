//! LeNet-5 (LeCun, Bottou, Bengio and Haffner 1998, "Gradient-based learning applied to
//! document recognition", section II.B), in its common modern form:
//!
//! `conv1` 6@5x5, act, 2x2 average pool, `conv2` 16@5x5, act, 2x2 average pool, flatten,
//! `fc1` 120, act, `fc2` 84, act, `fc3` to the classes (logits).
//!
//! The paper's subsampling layers had a trainable coefficient and bias per map, C3 was
//! connected to a subset of S2's maps, and the output was a layer of radial basis
//! functions; the modern form (torch's tutorials, Géron's book) uses plain average pooling,
//! full connections and a linear output trained with the cross-entropy. The activation is
//! the paper's `tanh` by default (it used `1.7159 tanh(2x/3)`), ReLU as an option.
//! At 1x32x32 with 10 classes it has 61,706 parameters; at other input sizes `fc1` takes
//! `16 * h * w` features, `h x w` being the map after the second pool.
//! Parameters: `conv1.weight`, `conv1.bias`, `conv2.*`, `fc1.*`, `fc2.*`, `fc3.*`.
//!
//! LeNet-5 read 32x32 images: MNIST's 28x28 digits (a 20x20 box) padded with zeros, so that
//! strokes reach the centre of the top feature detectors' receptive fields.
//! [`upscale_and_pad`] prepares small images the same way (the 8x8 digits: 3x nearest
//! neighbour to 24x24, 4 zero pixels around, 32x32).

use candle_core::{Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use super::shape::traced;
use super::{check_config, image_batch, linear_parameters, ShapeTrace};
use crate::conv::blocks::se::linear;
use crate::conv::{relu, AvgPool2d, Conv2d, Conv2dConfig};
use crate::data::{DataError, Dataset};
use crate::mlp::Activation;

/// The input shape, classes and activation of a [`LeNet5`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LeNet5Config {
    /// `[channels, height, width]`; LeNet-5's own is `[1, 32, 32]`.
    pub input: [usize; 3],
    pub num_classes: usize,
    /// After every layer but the last; default `tanh` (the paper's).
    pub activation: Activation,
}

impl LeNet5Config {
    /// LeNet-5 for `input` and `num_classes`, with `tanh`.
    pub fn new(input: [usize; 3], num_classes: usize) -> Self {
        Self { input, num_classes, activation: Activation::Tanh }
    }

    /// The shapes after each layer up to the second pool, or the error naming the first
    /// layer the input is too small for.
    pub fn trace(&self) -> Result<ShapeTrace> {
        check_config("LeNet-5", self.input, self.num_classes)?;
        traced(self.input, |input| {
            let mut t = ShapeTrace::new("LeNet-5", input);
            t.conv("conv1", 6, 5, 1, 0)?;
            t.pool("pool1", 2, 2, 0, false)?;
            t.conv("conv2", 16, 5, 1, 0)?;
            t.pool("pool2", 2, 2, 0, false)?;
            Ok(t)
        })
    }
}

/// LeNet-5; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct LeNet5 {
    config: LeNet5Config,
    conv1: Conv2d,
    conv2: Conv2d,
    pool: AvgPool2d,
    fc: [Linear; 3],
}

impl LeNet5 {
    pub fn new(config: LeNet5Config, vb: VarBuilder) -> Result<Self> {
        let [c, h, w] = config.trace()?.shape();
        let flat = c * h * w;
        Ok(Self {
            config,
            conv1: Conv2d::new(Conv2dConfig::new(config.input[0], 6, 5), vb.pp("conv1"))?,
            conv2: Conv2d::new(Conv2dConfig::new(6, 16, 5), vb.pp("conv2"))?,
            pool: AvgPool2d::new(2),
            fc: [
                linear(flat, 120, vb.pp("fc1"))?,
                linear(120, 84, vb.pp("fc2"))?,
                linear(84, config.num_classes, vb.pp("fc3"))?,
            ],
        })
    }

    pub fn config(&self) -> &LeNet5Config {
        &self.config
    }

    /// The number of trainable parameters (61,706 at 1x32x32 with 10 classes).
    pub fn parameter_count(&self) -> usize {
        self.conv1.parameter_count()
            + self.conv2.parameter_count()
            + self.fc.iter().map(linear_parameters).sum::<usize>()
    }

    /// `act(conv(x))`; a ReLU runs inside the convolution's kernel on CPU.
    fn conv_act(&self, conv: &Conv2d, x: &Tensor) -> Result<Tensor> {
        match self.config.activation {
            Activation::Relu => conv.forward_relu(x),
            _ => self.act(&conv.forward(x)?),
        }
    }

    fn act(&self, x: &Tensor) -> Result<Tensor> {
        match self.config.activation {
            Activation::Relu => relu(x),
            a => a.forward(x),
        }
    }
}

impl Module for LeNet5 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = image_batch("LeNet-5", x, self.config.input)?;
        let h = self.pool.forward(&self.conv_act(&self.conv1, &x)?)?;
        let h = self.pool.forward(&self.conv_act(&self.conv2, &h)?)?;
        let h = h.flatten_from(1)?;
        let h = self.act(&self.fc[0].forward(&h)?)?;
        let h = self.act(&self.fc[1].forward(&h)?)?;
        self.fc[2].forward(&h)
    }
}

/// Each image of `data` (one channel, with an image shape) enlarged `scale` times by
/// nearest neighbour (each pixel becomes a `scale x scale` block) and surrounded by `pad`
/// zero pixels: `h x w` becomes `(scale h + 2 pad) x (scale w + 2 pad)`. Labels are kept.
/// The 8x8 digits with `scale` 3 and `pad` 4 become LeNet-5's 32x32 input.
pub fn upscale_and_pad(
    data: &Dataset,
    scale: usize,
    pad: usize,
) -> std::result::Result<Dataset, DataError> {
    let Some(shape) = data.image_shape() else {
        return Err(DataError::Invalid(
            "upscale_and_pad needs a data set with an image shape".into(),
        ));
    };
    if scale == 0 {
        return Err(DataError::Invalid("upscale_and_pad: scale must be >= 1, got 0".into()));
    }
    let (h, w) = (shape.height, shape.width);
    let (oh, ow) = (scale * h + 2 * pad, scale * w + 2 * pad);
    let mut features = vec![0.0f32; data.len() * oh * ow];
    for (i, out) in features.chunks_exact_mut(oh * ow).enumerate() {
        let row = data.row(i);
        for y in 0..scale * h {
            let src = &row[(y / scale) * w..(y / scale + 1) * w];
            let dst = &mut out[(y + pad) * ow + pad..(y + pad) * ow + pad + scale * w];
            for (x, d) in dst.iter_mut().enumerate() {
                *d = src[x / scale];
            }
        }
    }
    Dataset::new(features, oh * ow, data.labels().map(<[u32]>::to_vec))?.with_image_shape(oh, ow)
}
