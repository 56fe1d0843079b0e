//! Additive attention (Bahdanau, Cho and Bengio 2015, "Neural machine translation by jointly
//! learning to align and translate", ICLR): the score of query `h` and key `y` is
//! `v^T tanh(W [h; y] + b)`. Splitting `W = [W_q | W_k]` by columns, this is
//! `v^T tanh(W_q h + W_k y + b)`, so the key projection is computed once per key instead of
//! once per (query, key) pair.
//!
//! Parameters: `w_query` `(A, Dq)`, `w_key` `(A, Dk)`, `bias` `(A)` (optional) and `v` `(A)`,
//! `A` the attention size.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{VarBuilder, VarMap};

use super::{check_qkv, masked_softmax, Attended};
use crate::rnn::init::{fill_varmap, join, ParamInit, ParamSpec};

const NAME: &str = "additive attention";

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct AdditiveAttention {
    w_query: Tensor,
    w_key: Tensor,
    bias: Option<Tensor>,
    v: Tensor,
}

impl AdditiveAttention {
    /// The parameters for queries of size `query_dim`, keys of size `key_dim` and attention
    /// size `attn_dim`, initialised uniform on `±1/sqrt(fan_in)` (torch's Linear default).
    pub fn param_specs(
        prefix: &str,
        query_dim: usize,
        key_dim: usize,
        attn_dim: usize,
        bias: bool,
    ) -> Vec<ParamSpec> {
        let u = |fan_in: usize| ParamInit::Uniform(1.0 / (fan_in as f64).sqrt());
        let mut specs = vec![
            ParamSpec::new(join(prefix, "w_query"), vec![attn_dim, query_dim], u(query_dim)),
            ParamSpec::new(join(prefix, "w_key"), vec![attn_dim, key_dim], u(key_dim)),
        ];
        if bias {
            specs.push(ParamSpec::new(
                join(prefix, "bias"),
                vec![attn_dim],
                u(query_dim + key_dim),
            ));
        }
        specs.push(ParamSpec::new(join(prefix, "v"), vec![attn_dim], u(attn_dim)));
        specs
    }

    /// Loads the parameters from `vb`.
    pub fn load(
        query_dim: usize,
        key_dim: usize,
        attn_dim: usize,
        bias: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            w_query: vb.get((attn_dim, query_dim), "w_query")?,
            w_key: vb.get((attn_dim, key_dim), "w_key")?,
            bias: if bias { Some(vb.get(attn_dim, "bias")?) } else { None },
            v: vb.get(attn_dim, "v")?,
        })
    }

    /// Seeded initialisation into `varmap` (see [`crate::rnn::init`]), then [`Self::load`].
    #[allow(clippy::too_many_arguments)]
    pub fn seeded(
        query_dim: usize,
        key_dim: usize,
        attn_dim: usize,
        bias: bool,
        varmap: &VarMap,
        prefix: &str,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        let specs = Self::param_specs(prefix, query_dim, key_dim, attn_dim, bias);
        fill_varmap(varmap, &specs, seed, dtype, device)?;
        let vb = VarBuilder::from_varmap(varmap, dtype, device);
        Self::load(
            query_dim,
            key_dim,
            attn_dim,
            bias,
            if prefix.is_empty() { vb } else { vb.pp(prefix) },
        )
    }

    /// The scores `(N, Tq, Tk)` of `query` `(N, Tq, Dq)` against `keys` `(N, Tk, Dk)`.
    pub fn scores(&self, query: &Tensor, keys: &Tensor) -> Result<Tensor> {
        let (n, tq, _) = query.dims3()?;
        let tk = keys.dim(1)?;
        let a = self.v.dim(0)?;
        let qp = query.broadcast_matmul(&self.w_query.t()?)?; // (N, Tq, A)
        let mut kp = keys.broadcast_matmul(&self.w_key.t()?)?; // (N, Tk, A)
        if let Some(b) = &self.bias {
            kp = kp.broadcast_add(b)?;
        }
        let hidden = qp.unsqueeze(2)?.broadcast_add(&kp.unsqueeze(1)?)?.tanh()?; // (N,Tq,Tk,A)
        hidden.reshape((n * tq * tk, a))?.matmul(&self.v.reshape((a, 1))?)?.reshape((n, tq, tk))
    }

    /// Attends `query` `(N, Tq, Dq)` over `keys` `(N, Tk, Dk)` and `values` `(N, Tk, Dv)`
    /// (`None`: the keys). `mask` is `(N, Tk)` or `(N, Tq, Tk)`, nonzero = attend.
    pub fn forward(
        &self,
        query: &Tensor,
        keys: &Tensor,
        values: Option<&Tensor>,
        mask: Option<&Tensor>,
    ) -> Result<Attended> {
        let values = values.unwrap_or(keys);
        check_qkv(NAME, query, keys, values, Some(self.w_query.dim(1)?), Some(self.w_key.dim(1)?))?;
        let weights = masked_softmax(NAME, &self.scores(query, keys)?, mask)?;
        Ok(Attended { context: weights.matmul(&values.contiguous()?)?, weights })
    }
}
