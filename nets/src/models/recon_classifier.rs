//! A classifier on an autoencoder's code, trained with the reconstruction loss as a
//! regulariser (Ranzato and Szummer 2008; Le, Zhang and Rao 2018 "Supervised autoencoders"):
//! `loss = CE(head(encode(x)), y) + weight * reconstruction_loss(x)`. With few labels, the
//! reconstruction term keeps the code informative about the whole input; `weight = 0` gives
//! the plain classifier of the same architecture, for comparison.

use candle_core::{ModuleT, Result};

use super::autoencoder::Autoencoder;
use crate::data::{Batch, Dataset};
use crate::mlp::Mlp;
use crate::train::objective::check_dataset;
use crate::train::{Objective, Output, TrainError};

/// An encoder, a classification head on its code, and the decoder as regulariser.
#[derive(Debug)]
pub struct ReconClassifier {
    pub autoencoder: Autoencoder,
    /// Maps `[batch, code]` to logits `[batch, num_classes]`.
    pub head: Mlp,
    pub num_classes: usize,
    /// The weight of the reconstruction term, `>= 0`.
    pub weight: f64,
}

impl Objective for ReconClassifier {
    fn loss(&self, batch: &Batch, train: bool) -> Result<Output> {
        let Some(labels) = &batch.labels else {
            candle_core::bail!("a classifier batch needs labels")
        };
        let (h, r) = self.autoencoder.forward_t(&batch.x, train)?;
        let logits = self.head.forward_t(&h, train)?;
        let mut loss = candle_nn::loss::cross_entropy(&logits, labels)?;
        if self.weight > 0.0 {
            let mut recon = candle_nn::loss::mse(&r, &batch.x)?;
            if let Some(s) = self.autoencoder.sparsity_loss(&h)? {
                recon = (recon + s)?;
            }
            loss = (loss + (recon * self.weight)?)?;
        }
        Ok(Output { loss, scores: Some(logits) })
    }

    fn check(&self, data: &Dataset) -> std::result::Result<(), TrainError> {
        if !(self.weight >= 0.0 && self.weight.is_finite()) {
            return Err(TrainError::Config(format!(
                "reconstruction weight = {}: expected >= 0",
                self.weight
            )));
        }
        check_dataset(data, self.autoencoder.input_dim(), Some(self.num_classes))
    }
}
