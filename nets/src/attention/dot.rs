//! Multiplicative attention (Luong, Pham and Manning 2015, "Effective approaches to
//! attention-based neural machine translation", EMNLP): the **dot** score `h^T y`
//! (optionally scaled by `1/sqrt(d)` as in Vaswani et al. 2017) and the **general** score
//! `h^T W y` with a learned `W` `(Dq, Dk)` named `weight`.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{VarBuilder, VarMap};

use super::{check_qkv, masked_softmax, Attended};
use crate::rnn::init::{fill_varmap, join, ParamInit, ParamSpec};

/// Dot-product attention, no parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct DotAttention {
    /// Divide the scores by `sqrt(D)` (scaled dot-product attention).
    pub scaled: bool,
}

impl DotAttention {
    pub fn new(scaled: bool) -> Self {
        Self { scaled }
    }

    /// Attends `query` `(N, Tq, D)` over `keys` `(N, Tk, D)` and `values` `(N, Tk, Dv)`
    /// (`None`: the keys); `mask` `(N, Tk)` or `(N, Tq, Tk)`, nonzero = attend.
    pub fn forward(
        &self,
        query: &Tensor,
        keys: &Tensor,
        values: Option<&Tensor>,
        mask: Option<&Tensor>,
    ) -> Result<Attended> {
        const NAME: &str = "dot attention";
        let values = values.unwrap_or(keys);
        let d = if query.rank() == 3 { Some(query.dim(2)?) } else { None };
        check_qkv(NAME, query, keys, values, d, d)?;
        let mut scores = query.contiguous()?.matmul(&keys.t()?.contiguous()?)?;
        if self.scaled {
            scores = (scores / (query.dim(2)? as f64).sqrt())?;
        }
        let weights = masked_softmax(NAME, &scores, mask)?;
        Ok(Attended { context: weights.matmul(&values.contiguous()?)?, weights })
    }
}

/// Luong's general attention, `score(h, y) = h^T W y`.
#[derive(Debug, Clone)]
pub struct GeneralAttention {
    weight: Tensor,
}

impl GeneralAttention {
    /// `weight` `(Dq, Dk)`, uniform on `±1/sqrt(Dk)`.
    pub fn param_specs(prefix: &str, query_dim: usize, key_dim: usize) -> Vec<ParamSpec> {
        let init = ParamInit::Uniform(1.0 / (key_dim as f64).sqrt());
        vec![ParamSpec::new(join(prefix, "weight"), vec![query_dim, key_dim], init)]
    }

    pub fn load(query_dim: usize, key_dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self { weight: vb.get((query_dim, key_dim), "weight")? })
    }

    /// Seeded initialisation into `varmap` (see [`crate::rnn::init`]), then [`Self::load`].
    pub fn seeded(
        query_dim: usize,
        key_dim: usize,
        varmap: &VarMap,
        prefix: &str,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        fill_varmap(varmap, &Self::param_specs(prefix, query_dim, key_dim), seed, dtype, device)?;
        let vb = VarBuilder::from_varmap(varmap, dtype, device);
        Self::load(query_dim, key_dim, if prefix.is_empty() { vb } else { vb.pp(prefix) })
    }

    /// As [`DotAttention::forward`] with the scores `query W keys^T`.
    pub fn forward(
        &self,
        query: &Tensor,
        keys: &Tensor,
        values: Option<&Tensor>,
        mask: Option<&Tensor>,
    ) -> Result<Attended> {
        const NAME: &str = "general attention";
        let values = values.unwrap_or(keys);
        let (dq, dk) = self.weight.dims2()?;
        check_qkv(NAME, query, keys, values, Some(dq), Some(dk))?;
        let qw = query.broadcast_matmul(&self.weight)?; // (N, Tq, Dk)
        let scores = qw.matmul(&keys.t()?.contiguous()?)?;
        let weights = masked_softmax(NAME, &scores, mask)?;
        Ok(Attended { context: weights.matmul(&values.contiguous()?)?, weights })
    }
}
