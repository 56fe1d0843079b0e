//! Turning a trained CNN's dense top into convolutions (Sermanet et al. 2014, "OverFeat";
//! Long, Shelhamer and Darrell 2015, section 3.1), so the network slides over images larger
//! than the ones it was trained on.
//!
//! A dense layer that reads a feature map `[C, H, W]` flattened row-major computes
//! `y_o = b_o + sum_{c, i, j} W[o, (c H + i) W + j] x[c, i, j]`: exactly a convolution
//! with kernel `H x W`, no padding ("valid"), whose weight is the dense weight reshaped from
//! `[out, C * H * W]` to `[out, C, H, W]` ([`dense_as_conv`]). On the original input it
//! yields a `1 x 1` map with the dense output; on a larger input it yields one output per
//! `H x W` window of the feature map. Every later dense layer reads a `[in, 1, 1]` "map" and
//! becomes a `1 x 1` convolution.
//!
//! If the convolutional part uses no padding, output cell `(i, j)` of the converted network
//! on a large image equals the original network on the crop of the original input size at
//! `(i s, j s)`, where `s` is the product of the pooling strides ([`FullyConvLocalizer`]);
//! computing all windows this way shares the convolutions of overlapping crops.

use std::collections::HashMap;

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::backbone::Backbone;
use super::boxes::BoundingBox;
use super::localization::Localizer;
use super::VisionError;
use crate::conv::{Conv2d, Conv2dConfig};

/// The [`Conv2d`] equal to a dense layer (`weight` `[out, C * H * W]`, `bias` `[out]`) that
/// reads a flattened `input = [C, H, W]` map: kernel `H x W`, no padding, stride 1, the
/// weights copied and reshaped to `[out, C, H, W]`. Errors when the weight's shape does not
/// match `input`, or the bias has another length.
pub fn dense_as_conv(
    weight: &Tensor,
    bias: Option<&Tensor>,
    input: [usize; 3],
) -> std::result::Result<Conv2d, VisionError> {
    let [c, h, w] = input;
    let (out, fan_in) = weight.dims2().map_err(|_| {
        VisionError::Input(format!("dense weight of shape {:?}, expected [out, in]", weight.dims()))
    })?;
    if fan_in != c * h * w || fan_in == 0 {
        return Err(VisionError::Input(format!(
            "dense weight [{out}, {fan_in}] does not read a flattened [{c}, {h}, {w}] map \
             ({} values)",
            c * h * w
        )));
    }
    let mut tensors = HashMap::new();
    tensors.insert("weight".to_string(), weight.detach().copy()?.reshape((out, c, h, w))?);
    if let Some(b) = bias {
        if b.dims() != [out] {
            return Err(VisionError::Input(format!(
                "dense bias of shape {:?}, expected [{out}]",
                b.dims()
            )));
        }
        tensors.insert("bias".to_string(), b.detach().copy()?);
    }
    let config =
        Conv2dConfig { kernel_size: [h, w], bias: bias.is_some(), ..Conv2dConfig::new(c, out, 1) };
    let vb = VarBuilder::from_tensors(tensors, weight.dtype(), weight.device());
    Ok(Conv2d::new(config, vb)?)
}

/// A [`Localizer`] with its dense head turned into convolutions: on an image of the training
/// size it returns `[N, 4, 1, 1]` (the localizer's boxes); on a larger one `[N, 4, H', W']`,
/// the box the localizer predicts for each window of the training size, windows `stride`
/// pixels apart. The weights are copies: training the localizer further leaves this one
/// unchanged.
#[derive(Debug, Clone)]
pub struct FullyConvLocalizer {
    backbone: Backbone,
    head: Vec<Conv2d>,
    window: [usize; 2],
}

impl FullyConvLocalizer {
    /// Converts `localizer`; see the [module documentation](self).
    pub fn from_localizer(localizer: &Localizer) -> std::result::Result<Self, VisionError> {
        let mut input = localizer.feature_shape();
        let mut head = Vec::with_capacity(localizer.head().len());
        for layer in localizer.head() {
            let conv = dense_as_conv(layer.weight(), layer.bias(), input)?;
            input = [conv.config().out_channels, 1, 1];
            head.push(conv);
        }
        let c = localizer.config();
        Ok(Self { backbone: localizer.backbone().copied()?, head, window: [c.height, c.width] })
    }

    /// The `[height, width]` of the window each output cell sees (the localizer's input).
    pub fn window(&self) -> [usize; 2] {
        self.window
    }

    /// Pixels between neighbouring windows: the backbone's total pooling stride.
    pub fn stride(&self) -> usize {
        self.backbone.stride()
    }

    pub fn head(&self) -> &[Conv2d] {
        &self.head
    }

    /// The number of window rows and columns for an `h x w` image, or the error for an image
    /// smaller than the window.
    pub fn output_size(&self, h: usize, w: usize) -> std::result::Result<[usize; 2], VisionError> {
        let [wh, ww] = self.window;
        if h < wh || w < ww {
            return Err(VisionError::Input(format!(
                "a {h}x{w} image is smaller than the {wh}x{ww} window of the localizer"
            )));
        }
        let s = self.stride();
        Ok([(h - wh) / s + 1, (w - ww) / s + 1])
    }

    /// The map of boxes `[N, 4, H', W']` for images `[N, C, H, W]`, each box relative to its
    /// window.
    pub fn forward_map(&self, x: &Tensor) -> std::result::Result<Tensor, VisionError> {
        let dims = x.dims();
        match dims {
            [_, c, h, w] if *c == self.backbone.in_channels() => {
                self.output_size(*h, *w)?;
            }
            _ => {
                return Err(VisionError::Input(format!(
                    "input of shape {dims:?}, expected [N, {}, H >= {}, W >= {}]",
                    self.backbone.in_channels(),
                    self.window[0],
                    self.window[1]
                )))
            }
        }
        Ok(self.forward(x)?)
    }

    /// The boxes of a map from [`Self::forward_map`] for image `n`, converted to fractions of
    /// the whole `h x w` image, row-major over the windows.
    pub fn image_boxes(
        &self,
        map: &Tensor,
        n: usize,
        h: usize,
        w: usize,
    ) -> std::result::Result<Vec<BoundingBox>, VisionError> {
        let [rows, cols] = self.output_size(h, w)?;
        let dims = map.dims();
        if dims.len() != 4 || dims[1] != 4 || dims[2] != rows || dims[3] != cols || n >= dims[0] {
            return Err(VisionError::Input(format!(
                "a box map of shape {dims:?} for image {n} of {h}x{w}: expected [N > {n}, 4, \
                 {rows}, {cols}]"
            )));
        }
        // `[4, rows, cols]` row-major: output `k` of window `(i, j)` at `(k rows + i) cols + j`.
        let cells: Vec<f32> = map.get(n)?.flatten_all()?.to_vec1()?;
        let ([wh, ww], s) = (self.window, self.stride() as f32);
        let (fh, fw) = (wh as f32, ww as f32);
        let mut boxes = Vec::with_capacity(rows * cols);
        for (cell, (i, j)) in (0..rows).flat_map(|i| (0..cols).map(move |j| (i, j))).enumerate() {
            let out = |k: usize| cells[k * rows * cols + cell];
            let cx = (j as f32 * s + out(0) * fw) / w as f32;
            let cy = (i as f32 * s + out(1) * fh) / h as f32;
            boxes.push(BoundingBox::new(cx, cy, out(2) * fw / w as f32, out(3) * fh / h as f32)?);
        }
        Ok(boxes)
    }
}

impl Module for FullyConvLocalizer {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.backbone.forward(x)?;
        for (j, conv) in self.head.iter().enumerate() {
            h = conv.forward(&h)?;
            if j + 1 < self.head.len() {
                h = h.relu()?;
            }
        }
        candle_nn::ops::sigmoid(&h)
    }
}
