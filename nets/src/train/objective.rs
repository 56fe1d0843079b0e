//! [`Objective`]: what [`fit`](super::fit()) trains. A model with a loss implements it; a
//! classifier over any [`ModuleT`] is [`Classifier`] (cross-entropy on logits).

use candle_core::{ModuleT, Result, Tensor};

use super::TrainError;
use crate::data::{Batch, Dataset};

/// The loss of a batch, and optionally class scores (`[batch, classes]`, larger = more
/// likely) from which [`fit`](super::fit()) computes accuracy and top-k accuracy.
#[derive(Debug, Clone)]
pub struct Output {
    /// A scalar (rank-0) tensor, the mean over the batch; differentiable in training.
    pub loss: Tensor,
    pub scores: Option<Tensor>,
}

/// A trainable model with its loss.
pub trait Objective {
    /// The loss on `batch`; `train` selects training behaviour (dropout, input noise).
    fn loss(&self, batch: &Batch, train: bool) -> Result<Output>;

    /// Checks that a data set fits the model (row size, label range) before any batch is
    /// drawn, so that bad input is an error naming the problem, not a shape panic deep in
    /// a kernel. The default accepts everything.
    fn check(&self, _data: &Dataset) -> std::result::Result<(), TrainError> {
        Ok(())
    }
}

/// A classifier: `model` maps `[batch, input_dim]` to logits `[batch, num_classes]`,
/// trained with the cross-entropy `-mean log softmax(logits)[label]`.
#[derive(Debug)]
pub struct Classifier<M> {
    pub model: M,
    pub input_dim: usize,
    pub num_classes: usize,
}

impl<M: ModuleT> Classifier<M> {
    pub fn new(model: M, input_dim: usize, num_classes: usize) -> Self {
        Self { model, input_dim, num_classes }
    }

    /// The logits for `x` (evaluation mode), after checking the row size.
    pub fn logits(&self, x: &Tensor) -> std::result::Result<Tensor, TrainError> {
        check_input(x, self.input_dim)?;
        Ok(self.model.forward_t(x, false)?)
    }
}

/// Errors unless `x` is `[batch, dim]`.
pub fn check_input(x: &Tensor, dim: usize) -> std::result::Result<(), TrainError> {
    match x.dims() {
        [_, d] if *d == dim => Ok(()),
        dims => Err(TrainError::Input(format!(
            "inputs of shape {dims:?}, the model expects [batch, {dim}]"
        ))),
    }
}

/// Errors unless the data set has rows of `dim` and, when `num_classes` is given, labels
/// all below it.
pub fn check_dataset(
    data: &Dataset,
    dim: usize,
    num_classes: Option<usize>,
) -> std::result::Result<(), TrainError> {
    if data.dim() != dim {
        let shape = data
            .image_shape()
            .map(|s| format!(" ({}x{} images)", s.height, s.width))
            .unwrap_or_default();
        return Err(TrainError::Input(format!(
            "rows of {} features{shape}, the model expects {dim}",
            data.dim()
        )));
    }
    if let Some(n) = num_classes {
        let Some(labels) = data.labels() else {
            return Err(TrainError::Input(
                "the data set has no labels, a classifier needs them".into(),
            ));
        };
        if let Some((i, l)) = labels.iter().enumerate().find(|(_, &l)| l as usize >= n) {
            return Err(TrainError::Input(format!(
                "label {l} of row {i} is outside the {n} classes 0..{n}"
            )));
        }
    }
    Ok(())
}

impl<M: ModuleT> Objective for Classifier<M> {
    fn loss(&self, batch: &Batch, train: bool) -> Result<Output> {
        check_input(&batch.x, self.input_dim)?;
        let Some(labels) = &batch.labels else {
            candle_core::bail!("a classifier batch needs labels");
        };
        let logits = self.model.forward_t(&batch.x, train)?;
        let loss = candle_nn::loss::cross_entropy(&logits, labels)?;
        Ok(Output { loss, scores: Some(logits) })
    }

    fn check(&self, data: &Dataset) -> std::result::Result<(), TrainError> {
        check_dataset(data, self.input_dim, Some(self.num_classes))
    }
}
