//! Sinusoidal positional encoding (Vaswani et al. 2017, section 3.5):
//! `PE(pos, 2i) = sin(pos / 10000^(2i/d))`, `PE(pos, 2i+1) = cos(pos / 10000^(2i/d))`,
//! added to the embeddings so that attention, which is order-blind, sees positions. Any
//! `d_model` works (an odd one ends on a sine column).

use candle_core::{DType, Device, Module, Result, Tensor};

use crate::rnn::error::LayerError;

const NAME: &str = "positional encoding";

/// A fixed `(max_len, d_model)` table added to `(T, N, d)` or `(N, T, d)` inputs.
#[derive(Debug, Clone)]
pub struct SinusoidalPositionalEncoding {
    table: Tensor,
    batch_first: bool,
}

impl SinusoidalPositionalEncoding {
    /// The table for positions `0..max_len`, computed in f64 and stored in `dtype`.
    pub fn new(
        max_len: usize,
        d_model: usize,
        batch_first: bool,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        if max_len == 0 || d_model == 0 {
            let (field, v) = if max_len == 0 { ("max_len", max_len) } else { ("d_model", d_model) };
            return Err(LayerError::config(NAME, field, v, "at least 1").into());
        }
        let mut v = Vec::with_capacity(max_len * d_model);
        for pos in 0..max_len {
            for j in 0..d_model {
                let angle = pos as f64 / 10000f64.powf((j - j % 2) as f64 / d_model as f64);
                v.push(if j % 2 == 0 { angle.sin() } else { angle.cos() });
            }
        }
        let table = Tensor::from_vec(v, (max_len, d_model), device)?.to_dtype(dtype)?;
        Ok(Self { table, batch_first })
    }

    /// The encodings of positions `0..len`, `(len, d_model)`.
    pub fn encodings(&self, len: usize) -> Result<Tensor> {
        let (max_len, _) = self.table.dims2()?;
        if len > max_len {
            return Err(LayerError::input(
                NAME,
                format!("sequence length {len} exceeds max_len {max_len}"),
            )
            .into());
        }
        self.table.narrow(0, 0, len)
    }
}

impl Module for SinusoidalPositionalEncoding {
    /// `x + PE[t]` at every time step `t`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let d = self.table.dim(1)?;
        let layout = if self.batch_first { "(N, T, d_model)" } else { "(T, N, d_model)" };
        if x.rank() != 3 || x.dim(2)? != d {
            return Err(LayerError::shape(
                NAME,
                "input",
                format!("{layout} with d_model = {d}"),
                x.shape(),
            )
            .into());
        }
        if self.batch_first {
            x.broadcast_add(&self.encodings(x.dim(1)?)?.unsqueeze(0)?)
        } else {
            x.broadcast_add(&self.encodings(x.dim(0)?)?.unsqueeze(1)?)
        }
    }
}
