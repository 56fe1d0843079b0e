//! Attention layers: the classic sequence-to-sequence scores (additive, dot and general),
//! torch-style multi-head attention, sinusoidal positional encoding, Transformer encoder and
//! decoder layers (torch's post-norm default) and embeddings.
//!
//! * [`AdditiveAttention`] (Bahdanau), [`DotAttention`] (Luong dot, optionally scaled) and
//!   [`GeneralAttention`] (Luong general) return an [`Attended`]: the context vectors and the
//!   attention weights. Their optional `mask` follows Keras: **nonzero = attend**.
//! * [`MultiHeadAttention`], [`TransformerEncoderLayer`], [`TransformerDecoderLayer`] follow
//!   torch (`nn.MultiheadAttention`, `nn.TransformerEncoderLayer`, ...): parameter names,
//!   layouts (`batch_first`) and masks, where a boolean mask is **nonzero = masked out**.
//! * [`SinusoidalPositionalEncoding`] and [`Embedding`].
//!
//! A masked position gets weight exactly 0 (its score is replaced by a large negative number
//! before the softmax). A query whose every key is masked has no distribution to return:
//! that is an error, not the NaN row torch produces.

pub mod additive;
pub mod dot;
pub mod embedding;
pub mod multi_head;
pub mod positional;
pub mod transformer;

pub use additive::AdditiveAttention;
pub use dot::{DotAttention, GeneralAttention};
pub use embedding::Embedding;
pub use multi_head::{MultiHeadAttention, MultiHeadAttentionConfig};
pub use positional::SinusoidalPositionalEncoding;
pub use transformer::{
    causal_mask, DecoderMasks, EncoderMasks, TransformerConfig, TransformerDecoderLayer,
    TransformerEncoderLayer,
};

use candle_core::{DType, Result, Tensor, D};

use crate::rnn::error::LayerError;

/// The result of an attention layer.
#[derive(Debug, Clone)]
pub struct Attended {
    /// `(N, Tq, Dv)`: for each query, the weighted sum of the values.
    pub context: Tensor,
    /// `(N, Tq, Tk)`: the attention distribution of each query over the keys (rows sum to 1;
    /// masked keys get exactly 0).
    pub weights: Tensor,
}

/// The score a masked position gets before the softmax: its exponential underflows to
/// exactly 0 next to any finite score (in f32 and f64).
pub(crate) const MASKED_SCORE: f64 = -1e30;

/// Checks the query/keys/values of the (single-head) attention layers: rank 3, one batch size,
/// `keys` and `values` of one length, the feature sizes given where known. Returns
/// `(N, Tq, Tk)`.
pub(crate) fn check_qkv(
    layer: &str,
    query: &Tensor,
    keys: &Tensor,
    values: &Tensor,
    query_dim: Option<usize>,
    key_dim: Option<usize>,
) -> Result<(usize, usize, usize)> {
    let dim = |d: Option<usize>| d.map_or("D".to_string(), |d| d.to_string());
    if query.rank() != 3 || query_dim.is_some_and(|d| query.dim(2).ok() != Some(d)) {
        let e = format!("(N, Tq, {})", dim(query_dim));
        return Err(LayerError::shape(layer, "query", e, query.shape()).into());
    }
    let (n, tq, _) = query.dims3()?;
    if keys.rank() != 3 || keys.dim(0)? != n || key_dim.is_some_and(|d| keys.dim(2).ok() != Some(d))
    {
        let e = format!("({n}, Tk, {})", dim(key_dim));
        return Err(LayerError::shape(layer, "keys", e, keys.shape()).into());
    }
    let tk = keys.dim(1)?;
    if values.rank() != 3 || values.dim(0)? != n || values.dim(1)? != tk {
        let e = format!("({n}, {tk}, Dv) (batch and length of the keys)");
        return Err(LayerError::shape(layer, "values", e, values.shape()).into());
    }
    if tq == 0 || tk == 0 {
        return Err(
            LayerError::shape(layer, "query/keys", "non-empty sequences", keys.shape()).into()
        );
    }
    if query.dtype() != keys.dtype() || keys.dtype() != values.dtype() {
        return Err(LayerError::input(layer, "query, keys and values differ in dtype").into());
    }
    Ok((n, tq, tk))
}

/// Softmax over the keys of `scores` `(N, Tq, Tk)` where `mask` (`(N, Tk)` or `(N, Tq, Tk)`,
/// any dtype, nonzero = attend) allows; masked weights are exactly 0. A query with every key
/// masked is an error.
pub(crate) fn masked_softmax(
    layer: &str,
    scores: &Tensor,
    mask: Option<&Tensor>,
) -> Result<Tensor> {
    let (n, tq, tk) = scores.dims3()?;
    let Some(mask) = mask else {
        return candle_nn::ops::softmax(scores, D::Minus1);
    };
    let allowed = match mask.dims() {
        [a, b] if *a == n && *b == tk => mask.unsqueeze(1)?,
        [a, b, c] if *a == n && *b == tq && *c == tk => mask.clone(),
        _ => {
            let e = format!("({n}, {tk}) or ({n}, {tq}, {tk}) = (N, Tk) or (N, Tq, Tk)");
            return Err(LayerError::shape(layer, "mask", e, mask.shape()).into());
        }
    };
    let allowed = allowed.ne(0.0)?.broadcast_as((n, tq, tk))?.contiguous()?;
    let rows = allowed.to_dtype(DType::U32)?.sum(D::Minus1)?.flatten_all()?.to_vec1::<u32>()?;
    if let Some(i) = rows.iter().position(|&r| r == 0) {
        return Err(LayerError::input(
            layer,
            format!("every key is masked for query {} of sequence {}", i % tq, i / tq),
        )
        .into());
    }
    let fill = Tensor::full(MASKED_SCORE, (), scores.device())?
        .to_dtype(scores.dtype())?
        .broadcast_as((n, tq, tk))?;
    candle_nn::ops::softmax(&allowed.where_cond(scores, &fill)?, D::Minus1)
}
