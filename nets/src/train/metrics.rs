//! Metrics over a data set: the mean loss, accuracy (the arg-max class is the label) and
//! top-k accuracy (the label is among the `k` largest scores).

use candle_core::{Device, Tensor};

use super::{Objective, TrainError};
use crate::data::{Batch, Dataset};

/// Metrics of one pass. `accuracy` and `top_k_accuracy` are `None` when the objective gives
/// no class scores or the data has no labels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    /// The mean loss per row (batch means weighted by batch size).
    pub loss: f64,
    pub accuracy: Option<f64>,
    pub top_k_accuracy: Option<f64>,
}

/// Running counts for accuracy and top-k accuracy.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counts {
    pub rows: usize,
    pub loss_sum: f64,
    pub scored: usize,
    pub correct: usize,
    pub top_k: usize,
}

impl Counts {
    /// Adds a batch: its mean loss and, when given, scores `[n, classes]` and labels.
    pub fn add(
        &mut self,
        n: usize,
        loss: f64,
        scores: Option<&Tensor>,
        labels: &[u32],
        k: usize,
    ) -> candle_core::Result<()> {
        self.rows += n;
        self.loss_sum += loss * n as f64;
        if let (Some(scores), false) = (scores, labels.is_empty()) {
            let scores: Vec<Vec<f32>> = scores.to_dtype(candle_core::DType::F32)?.to_vec2()?;
            for (row, &label) in scores.iter().zip(labels) {
                let target = row.get(label as usize).copied().unwrap_or(f32::NEG_INFINITY);
                // Rank of the label: classes scoring strictly higher, ties counted for the label
                // only when they come earlier (so arg-max picks the first maximum, as torch does).
                let higher = row
                    .iter()
                    .enumerate()
                    .filter(|&(c, &s)| s > target || (s == target && c < label as usize))
                    .count();
                self.scored += 1;
                self.correct += usize::from(higher == 0);
                self.top_k += usize::from(higher < k);
            }
        }
        Ok(())
    }

    pub fn metrics(&self) -> Metrics {
        let frac = |c: usize| (self.scored > 0).then(|| c as f64 / self.scored as f64);
        Metrics {
            loss: if self.rows > 0 { self.loss_sum / self.rows as f64 } else { f64::NAN },
            accuracy: frac(self.correct),
            top_k_accuracy: frac(self.top_k),
        }
    }
}

/// Evaluates `objective` on `data` in evaluation mode (`train = false`), in order, in
/// batches of `batch_size`; `top_k` is the `k` of top-k accuracy.
pub fn evaluate<O: Objective + ?Sized>(
    objective: &O,
    data: &Dataset,
    batch_size: usize,
    top_k: usize,
    device: &Device,
) -> Result<Metrics, TrainError> {
    objective.check(data)?;
    let mut batches = data.batches(batch_size, None)?;
    let (mut x, mut labels) = (Vec::new(), Vec::new());
    let mut counts = Counts::default();
    while let Some(n) = batches.next_into(&mut x, &mut labels) {
        let batch = to_batch(&x, &labels, n, data.dim(), device)?;
        let out = objective.loss(&batch, false)?;
        let loss = out.loss.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
        counts.add(n, loss, out.scores.as_ref(), &labels, top_k)?;
    }
    Ok(counts.metrics())
}

/// Host buffers of one batch as tensors.
pub(crate) fn to_batch(
    x: &[f32],
    labels: &[u32],
    n: usize,
    dim: usize,
    device: &Device,
) -> candle_core::Result<Batch> {
    let xt = Tensor::from_slice(x, (n, dim), device)?;
    let lt = if labels.is_empty() { None } else { Some(Tensor::from_slice(labels, n, device)?) };
    Ok(Batch { x: xt, labels: lt })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_and_top_k_by_hand() {
        let scores =
            Tensor::new(&[[0.1f32, 0.7, 0.2], [0.5, 0.1, 0.4], [0.3, 0.3, 0.4]], &Device::Cpu)
                .unwrap();
        let mut c = Counts::default();
        // Row 0: label 1 is the max. Row 1: label 2 is second. Row 2: label 1 ties with 0
        // (earlier) and is behind 2, so third.
        c.add(3, 2.0, Some(&scores), &[1, 2, 1], 2).unwrap();
        let m = c.metrics();
        assert_eq!(m.loss, 2.0);
        assert_eq!(m.accuracy, Some(1.0 / 3.0));
        assert_eq!(m.top_k_accuracy, Some(2.0 / 3.0));
    }
}
