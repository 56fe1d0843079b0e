//! Single-object localization: a CNN regresses the box `(cx, cy, w, h)` of the one object in
//! an image, each coordinate through a sigmoid so it lies in `(0, 1)` like the normalised
//! targets, trained with the mean squared error (the box regression of Sermanet et al. 2014,
//! "OverFeat", and of YOLO's coordinates). The metric is the mean IoU between predicted and
//! true boxes on held-out images ([`mean_iou`]).
//!
//! The network is a [`Backbone`] of convolution / ReLU / max-pool stages, flattened, then a
//! dense head (ReLU between layers) ending in 4 outputs. The backbone uses no padding by
//! default, so that [`FullyConvLocalizer`](super::FullyConvLocalizer) can turn the trained
//! network into a sliding-window detector whose every output cell equals this network on the
//! matching crop (zero padding would make a crop's border differ from the same pixels inside
//! a larger image).
//!
//! Parameters: `"backbone.{i}.*"` for the stages and `"head.{j}.weight"` `[out, in]`,
//! `"head.{j}.bias"` for the dense layers (torch's `nn.Linear` layout).

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Init, Linear, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use super::backbone::{Backbone, ConvStage};
use super::boxes::{mean_iou, BoundingBox};
use super::shapes::Shapes;
use super::{config_error, VisionError};
use crate::conv::init::torch_default_init;
use crate::data::{Batch, Dataset};
use crate::train::{Objective, Output, TrainError};

/// The shape of a [`Localizer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalizerConfig {
    /// Input channels, height and width.
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub stages: Vec<ConvStage>,
    /// Hidden sizes of the dense head (the output layer of 4 is added).
    pub hidden: Vec<usize>,
}

impl LocalizerConfig {
    /// For `channels x height x width` images: conv 5x5 (8 maps), pool 2, conv 3x3 (16 maps),
    /// pool 2, all without padding, then a dense layer of 64 and the 4 outputs.
    pub fn new(channels: usize, height: usize, width: usize) -> Self {
        Self {
            channels,
            height,
            width,
            stages: vec![ConvStage::valid(8, 5), ConvStage::valid(16, 3)],
            hidden: vec![64],
        }
    }

    /// Values per image: `channels * height * width`.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }
}

/// The box regressor; see the [module documentation](self).
#[derive(Debug)]
pub struct Localizer {
    config: LocalizerConfig,
    backbone: Backbone,
    head: Vec<Linear>,
    /// `[C, H, W]` of the backbone's output on the configured input.
    feature_shape: [usize; 3],
}

/// Number of outputs: `cx, cy, w, h`.
pub const BOX_OUTPUTS: usize = 4;

impl Localizer {
    /// Builds from `vb` (new variables take torch's default initialisation, unseeded).
    pub fn new(config: &LocalizerConfig, vb: VarBuilder) -> std::result::Result<Self, VisionError> {
        if config.channels == 0 || config.hidden.contains(&0) {
            return Err(config_error(
                "localizer config",
                format!(
                    "channels = {}, hidden = {:?}: expected positive sizes",
                    config.channels, config.hidden
                ),
            ));
        }
        let backbone = Backbone::new(config.channels, &config.stages, vb.pp("backbone"))?;
        let shapes = backbone.output_shapes(config.height, config.width)?;
        let feature_shape = *shapes.last().ok_or_else(|| {
            config_error("localizer config", "expected at least one conv stage".into())
        })?;
        let mut sizes = vec![feature_shape.iter().product::<usize>()];
        sizes.extend(&config.hidden);
        sizes.push(BOX_OUTPUTS);
        let vb = vb.pp("head");
        let mut head = Vec::with_capacity(sizes.len() - 1);
        for (j, io) in sizes.windows(2).enumerate() {
            let bound = 1.0 / (io[0] as f64).sqrt();
            let init = Init::Uniform { lo: -bound, up: bound };
            let vb = vb.pp(j.to_string());
            let weight = vb.get_with_hints((io[1], io[0]), "weight", init)?;
            let bias = vb.get_with_hints(io[1], "bias", init)?;
            head.push(Linear::new(weight, Some(bias)));
        }
        Ok(Self { config: config.clone(), backbone, head, feature_shape })
    }

    /// Builds into `varmap` and initialises every variable of `varmap` with torch's defaults
    /// from `seed` ([`torch_default_init`]): the same seed gives the same weights. `varmap`
    /// should hold only this model.
    pub fn seeded(
        config: &LocalizerConfig,
        varmap: &VarMap,
        device: &Device,
        seed: u64,
    ) -> std::result::Result<Self, VisionError> {
        let model = Self::new(config, VarBuilder::from_varmap(varmap, DType::F32, device))?;
        torch_default_init(varmap, seed)?;
        Ok(model)
    }

    pub fn config(&self) -> &LocalizerConfig {
        &self.config
    }

    pub fn backbone(&self) -> &Backbone {
        &self.backbone
    }

    /// The dense layers, input first.
    pub fn head(&self) -> &[Linear] {
        &self.head
    }

    /// `[C, H, W]` of the feature map the first dense layer reads (flattened row-major).
    pub fn feature_shape(&self) -> [usize; 3] {
        self.feature_shape
    }

    fn check_images(&self, x: &Tensor) -> std::result::Result<(), VisionError> {
        let c = &self.config;
        super::check_images("localizer", x, [c.channels, c.height, c.width])
    }

    /// The boxes `[N, 4]` (`cx, cy, w, h`, each in `(0, 1)`) for images `[N, C, H, W]`.
    pub fn forward_boxes(&self, x: &Tensor) -> Result<Tensor> {
        self.check_images(x)?;
        let mut h = self.backbone.forward(x)?.flatten_from(1)?;
        for (j, layer) in self.head.iter().enumerate() {
            h = layer.forward(&h)?;
            if j + 1 < self.head.len() {
                h = h.relu()?;
            }
        }
        candle_nn::ops::sigmoid(&h)
    }

    /// The predicted boxes of images `[N, C, H, W]`, in batches of `batch_size`.
    pub fn predict(
        &self,
        images: &Tensor,
        batch_size: usize,
    ) -> std::result::Result<Vec<BoundingBox>, VisionError> {
        self.check_images(images)?;
        if batch_size == 0 {
            return Err(VisionError::Input("batch_size must be >= 1, got 0".into()));
        }
        let n = images.dim(0)?;
        let mut boxes = Vec::with_capacity(n);
        for start in (0..n).step_by(batch_size) {
            let len = batch_size.min(n - start);
            let out: Vec<Vec<f32>> =
                self.forward_boxes(&images.narrow(0, start, len)?)?.to_vec2()?;
            for row in out {
                boxes.push(BoundingBox::from_centre_slice(&row)?);
            }
        }
        Ok(boxes)
    }

    /// The mean IoU of the predicted and the true boxes of a single-object data set.
    pub fn mean_iou(&self, data: &Shapes) -> std::result::Result<f32, VisionError> {
        let truth = data.single_boxes()?;
        let device = self.head.first().map_or(Device::Cpu, |l| l.weight().device().clone());
        let predicted = self.predict(&data.images_tensor(&device)?, 256)?;
        mean_iou(&predicted, &truth)
    }
}

/// The mean of `boxes` coordinate by coordinate: the constant prediction a localizer must
/// beat. Errors on no boxes.
pub fn mean_box(boxes: &[BoundingBox]) -> std::result::Result<BoundingBox, VisionError> {
    if boxes.is_empty() {
        return Err(VisionError::Input("the mean box of no boxes".into()));
    }
    let mut sum = [0f64; 4];
    for b in boxes {
        for (s, v) in sum.iter_mut().zip(b.centre_form()) {
            *s += f64::from(v);
        }
    }
    let n = boxes.len() as f64;
    BoundingBox::new(
        (sum[0] / n) as f32,
        (sum[1] / n) as f32,
        (sum[2] / n) as f32,
        (sum[3] / n) as f32,
    )
}

impl Objective for Localizer {
    /// Rows `[image | cx, cy, w, h]` (see [`Shapes::localization_dataset`]); the loss is the
    /// mean squared error over the 4 coordinates.
    fn loss(&self, batch: &Batch, _train: bool) -> Result<Output> {
        let len = self.config.image_len();
        let (n, dim) = batch.x.dims2()?;
        if dim != len + BOX_OUTPUTS {
            candle_core::bail!(
                "localizer rows of {dim} values, expected {len} image values + 4 box values"
            );
        }
        let c = &self.config;
        let x = batch.x.narrow(1, 0, len)?.reshape((n, c.channels, c.height, c.width))?;
        let target = batch.x.narrow(1, len, BOX_OUTPUTS)?;
        let pred = self.forward_boxes(&x)?;
        Ok(Output { loss: candle_nn::loss::mse(&pred, &target)?, scores: None })
    }

    fn check(&self, data: &Dataset) -> std::result::Result<(), TrainError> {
        let len = self.config.image_len();
        if data.dim() != len + BOX_OUTPUTS {
            return Err(TrainError::Input(format!(
                "rows of {} values, the localizer expects {len} image values ({}x{}x{}) + 4 box \
                 values",
                data.dim(),
                self.config.channels,
                self.config.height,
                self.config.width
            )));
        }
        Ok(())
    }
}
