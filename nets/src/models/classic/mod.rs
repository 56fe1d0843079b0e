//! The classic CNNs as ready models, each sized by an input shape `[channels, height, width]`
//! and a number of classes, built from the layers and blocks of [`crate::conv`]:
//!
//! * [`LeNet5`] (LeCun, Bottou, Bengio and Haffner 1998): two 5x5 convolutions with average
//!   pooling, three fully connected layers;
//! * [`AlexNet`] (Krizhevsky, Sutskever and Hinton 2012): five convolutions, overlapping max
//!   pooling, dropout, local response normalisation as an option;
//! * [`GoogLeNet`] (Szegedy et al. 2015): inception modules and global average pooling, in
//!   torchvision's batch-norm variant without auxiliary heads;
//! * [`ResNet`] (He, Zhang, Ren and Sun 2016): ResNet-34's 3, 4, 6 and 3 residual units of
//!   64, 128, 256 and 512 maps, or any other stage layout; with squeeze-and-excitation
//!   gates in the units it is SE-ResNet (Hu, Shen and Sun 2018);
//! * [`Xception`] (Chollet 2017): two regular convolutions, then depthwise separable ones in
//!   residual blocks (entry, middle and exit flows).
//!
//! Built in torchvision's configuration (224x224x3, 1000 classes) the parameter counts and
//! names are torchvision's (`conv1.weight`, `layer1.0.conv1.weight`, `fc.weight` for
//! ResNet; `features.0.weight` for AlexNet; `inception3a.branch1.conv.weight` for GoogLeNet),
//! so a torchvision `state_dict` saved as safetensors loads with
//! [`crate::train::load_weights`], which names the first missing or mismatched tensor.
//!
//! # Input
//!
//! Every model takes a batch of images `[N, C, H, W]` of exactly its configured shape, or the
//! same images as rows `[N, C * H * W]` (what [`crate::train::Classifier`] and `fit` feed
//! from a [`crate::data::Dataset`]), and returns logits `[N, num_classes]`. Anything else is
//! an error naming the model, the expected and the actual shape. A configured input too
//! small for the architecture is an error at construction naming the first layer whose
//! window does not fit and the smallest square input that works.
//!
//! # Initialisation
//!
//! Layers are created with torch's default distributions through the `VarBuilder`; for
//! reproducible weights overwrite them from a seed with
//! [`crate::conv::init::torch_default_init`] (same seed, same weights, bit for bit).
//! Dropout masks come from the seed in the model's config.

pub mod alexnet;
pub mod googlenet;
pub mod lenet;
pub mod resnet;
mod shape;
pub mod xception;

pub use alexnet::{AlexNet, AlexNetConfig};
pub use googlenet::{GoogLeNet, GoogLeNetConfig};
pub use lenet::{upscale_and_pad, LeNet5, LeNet5Config};
pub use resnet::{ResNet, ResNetConfig, ResNetStem};
pub use shape::ShapeTrace;
pub use xception::{Xception, XceptionConfig};

use candle_core::{Result, Tensor};
use candle_nn::Linear;

/// An error of `model`: `"{model}: {problem}"`.
pub(crate) fn model_error(model: &str, problem: String) -> candle_core::Error {
    candle_core::Error::Msg(format!("{model}: {problem}"))
}

/// `x` as images `[N, C, H, W]` of `input = [C, H, W]`: accepted as they are, or reshaped
/// from rows `[N, C * H * W]`; any other shape is an error naming `model`.
pub(crate) fn image_batch(model: &str, x: &Tensor, input: [usize; 3]) -> Result<Tensor> {
    let [c, h, w] = input;
    match *x.dims() {
        [n, xc, xh, xw] if n > 0 && [xc, xh, xw] == input => Ok(x.clone()),
        [n, d] if n > 0 && d == c * h * w => x.reshape((n, c, h, w)),
        ref dims => Err(model_error(
            model,
            format!(
                "expected images [N, {c}, {h}, {w}] or rows [N, {}] with N >= 1, got shape \
                 {dims:?}",
                c * h * w
            ),
        )),
    }
}

/// Checks the configured input and class count of `model`.
pub(crate) fn check_config(model: &str, input: [usize; 3], num_classes: usize) -> Result<()> {
    if input.contains(&0) || num_classes == 0 {
        return Err(model_error(
            model,
            format!(
                "the input shape [C, H, W] and the number of classes must be positive, got \
                 input {input:?} and {num_classes} classes"
            ),
        ));
    }
    Ok(())
}

/// The number of trainable parameters of a `Linear` layer.
pub(crate) fn linear_parameters(l: &Linear) -> usize {
    l.weight().elem_count() + l.bias().map_or(0, Tensor::elem_count)
}
