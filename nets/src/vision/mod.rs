//! Localization and segmentation on a synthetic shapes data set.
//!
//! * [`shapes`]: a seeded generator of small images with rectangles and discs, their boxes
//!   and per-pixel class masks.
//! * [`boxes`]: [`BoundingBox`] (centre and corner forms), intersection over union and greedy
//!   non-max suppression.
//! * [`anchors`]: anchor-box sizes by K-Means with the distance `1 - IoU` (YOLOv2).
//! * [`backbone`]: the conv / ReLU / max-pool stages both models share.
//! * [`localization`]: a CNN regressing one box per image (MSE), scored by mean IoU.
//! * [`fully_conv`]: a trained CNN's dense top turned into convolutions (OverFeat), so the
//!   network slides over larger images.
//! * [`segmentation`]: a fully convolutional network with transposed-convolution upsampling
//!   and skip connections (FCN-8s), scored by mean IoU over classes.
//!
//! The models train with [`crate::train::fit()`]. Its [`Dataset`](crate::data::Dataset) holds
//! one `u32` label per row, so the regression and per-pixel targets travel as extra columns
//! of each row (`[image | target]`), and the models' [`Objective`](crate::train::Objective)
//! splits them off (see [`shapes::Shapes::localization_dataset`]).

pub mod anchors;
pub mod backbone;
pub mod boxes;
pub mod fully_conv;
pub mod localization;
pub mod segmentation;
pub mod shapes;

pub use anchors::{kmeans_anchors, mean_best_iou, wh_iou, AnchorConfig, Anchors};
pub use backbone::{Backbone, ConvStage};
pub use boxes::{iou, iou_matrix, iou_one_to_many, mean_iou, nms, BoundingBox, Detection};
pub use fully_conv::{dense_as_conv, FullyConvLocalizer};
pub use localization::{mean_box, Localizer, LocalizerConfig};
pub use segmentation::{confusion_mean_iou, Fcn, FcnConfig, SegmentationScores};
pub use shapes::{ShapeKind, ShapeObject, Shapes, ShapesConfig};

use crate::data::DataError;
use crate::train::TrainError;

/// What can go wrong in this module. Messages name the value, the field and what was
/// expected.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    /// A configuration field outside its domain.
    #[error("invalid {what}: {message}")]
    Config { what: &'static str, message: String },
    /// A box with a negative or non-finite size or coordinate.
    #[error("invalid box: {0}")]
    Box(String),
    /// Input that does not fit the operation (empty, wrong length, wrong shape).
    #[error("invalid input: {0}")]
    Input(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Data(#[from] DataError),
}

impl From<VisionError> for candle_core::Error {
    fn from(e: VisionError) -> Self {
        match e {
            VisionError::Candle(e) => e,
            e => candle_core::Error::Msg(e.to_string()),
        }
    }
}

pub(crate) fn config_error(what: &'static str, message: String) -> VisionError {
    VisionError::Config { what, message }
}

/// Checks that `x` is a batch of images `[N, C, H, W]` with `[C, H, W] = chw`, or names the
/// `model` and both shapes.
pub(crate) fn check_images(
    model: &str,
    x: &candle_core::Tensor,
    chw: [usize; 3],
) -> Result<(), VisionError> {
    match x.dims() {
        [_, c, h, w] if [*c, *h, *w] == chw => Ok(()),
        dims => Err(VisionError::Input(format!(
            "{model} input of shape {dims:?}, expected [N, {}, {}, {}]",
            chw[0], chw[1], chw[2]
        ))),
    }
}
