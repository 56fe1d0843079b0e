//! Multi-head attention (Vaswani et al. 2017, "Attention is all you need", NeurIPS) with the
//! parameter names, layouts and masks of torch's `nn.MultiheadAttention`:
//!
//! ```text
//! q = query W_q^T + b_q,  k = key W_k^T + b_k,  v = value W_v^T + b_v   (W_q,k,v rows of in_proj_weight)
//! head_i = softmax(q_i k_i^T / sqrt(E/heads) + mask) v_i
//! out = concat(head_1..head_h) out_proj.weight^T + out_proj.bias
//! ```
//!
//! Parameters: `in_proj_weight` `(3E, E)`, `in_proj_bias` `(3E)`, `out_proj.weight` `(E, E)`,
//! `out_proj.bias` `(E)` (biases only with `bias`). Keys and values have the embedding size
//! `E` (torch's `kdim = vdim = embed_dim`).
//!
//! Layout: `(L, N, E)` query and `(S, N, E)` key/value, or `(N, L, E)` / `(N, S, E)` with
//! `batch_first`. Masks, as in torch: `key_padding_mask` `(N, S)` and `attn_mask` `(L, S)` or
//! `(N*heads, L, S)`; a **u8 mask is boolean, nonzero = not allowed**, any float mask is added
//! to the scores. A query left with no allowed key by boolean masks is an error (torch returns
//! NaN). Dropout on the attention weights draws from a seeded generator and runs only with
//! `train = true`. The returned weights are averaged over the heads, `(N, L, S)` (torch's
//! `average_attn_weights=True`), after dropout as in torch.

use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::{VarBuilder, VarMap};

use super::MASKED_SCORE;
use crate::regularize::Dropout;
use crate::rnn::error::LayerError;
use crate::rnn::init::{fill_varmap, join, ParamInit, ParamSpec};

const NAME: &str = "multi-head attention";

/// The shape of a [`MultiHeadAttention`], torch's argument names and defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MultiHeadAttentionConfig {
    pub embed_dim: usize,
    pub num_heads: usize,
    /// Dropout probability on the attention weights (torch default 0).
    pub dropout: f64,
    /// Whether the input and output projections have biases (torch default true).
    pub bias: bool,
    /// `(N, L, E)` instead of `(L, N, E)` (torch default false).
    pub batch_first: bool,
}

impl MultiHeadAttentionConfig {
    pub fn new(embed_dim: usize, num_heads: usize) -> Self {
        Self { embed_dim, num_heads, dropout: 0.0, bias: true, batch_first: false }
    }

    /// Checks the sizes and the dropout probability.
    pub fn validate(&self) -> Result<()> {
        if self.num_heads == 0
            || self.embed_dim == 0
            || !self.embed_dim.is_multiple_of(self.num_heads)
        {
            return Err(LayerError::config(
                NAME,
                "num_heads",
                self.num_heads,
                &format!("a positive divisor of embed_dim = {}", self.embed_dim),
            )
            .into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(LayerError::config(
                NAME,
                "dropout",
                self.dropout,
                "a probability in [0, 1)",
            )
            .into());
        }
        Ok(())
    }

    /// torch's initialisation: `in_proj_weight` Xavier-uniform, `out_proj.weight` uniform on
    /// `±1/sqrt(E)`, biases zero.
    pub fn param_specs(&self, prefix: &str) -> Vec<ParamSpec> {
        let e = self.embed_dim;
        let xavier = (6.0 / (e + 3 * e) as f64).sqrt();
        let mut specs = vec![ParamSpec::new(
            join(prefix, "in_proj_weight"),
            vec![3 * e, e],
            ParamInit::Uniform(xavier),
        )];
        if self.bias {
            specs.push(ParamSpec::new(
                join(prefix, "in_proj_bias"),
                vec![3 * e],
                ParamInit::Const(0.0),
            ));
        }
        let bound = 1.0 / (e as f64).sqrt();
        specs.push(ParamSpec::new(
            join(prefix, "out_proj.weight"),
            vec![e, e],
            ParamInit::Uniform(bound),
        ));
        if self.bias {
            specs.push(ParamSpec::new(
                join(prefix, "out_proj.bias"),
                vec![e],
                ParamInit::Const(0.0),
            ));
        }
        specs
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct MultiHeadAttention {
    config: MultiHeadAttentionConfig,
    /// `W_q, W_k, W_v`, each `(E, E)`, and their biases.
    w: [Tensor; 3],
    b: Option<[Tensor; 3]>,
    out_w: Tensor,
    out_b: Option<Tensor>,
    dropout: Dropout,
}

impl MultiHeadAttention {
    /// Loads the parameters from `vb`; the dropout masks come from `dropout_seed`.
    pub fn load(
        config: MultiHeadAttentionConfig,
        vb: VarBuilder,
        dropout_seed: u64,
    ) -> Result<Self> {
        Self::load_with_stream(config, vb, dropout_seed, 0)
    }

    /// As [`Self::load`], the dropout masks on ChaCha stream `stream` of `dropout_seed` (so
    /// that several layers sharing a seed draw independent masks).
    pub fn load_with_stream(
        config: MultiHeadAttentionConfig,
        vb: VarBuilder,
        dropout_seed: u64,
        stream: u64,
    ) -> Result<Self> {
        config.validate()?;
        let e = config.embed_dim;
        let in_w = vb.get((3 * e, e), "in_proj_weight")?;
        let w = [in_w.narrow(0, 0, e)?, in_w.narrow(0, e, e)?, in_w.narrow(0, 2 * e, e)?];
        let b = if config.bias {
            let in_b = vb.get(3 * e, "in_proj_bias")?;
            Some([in_b.narrow(0, 0, e)?, in_b.narrow(0, e, e)?, in_b.narrow(0, 2 * e, e)?])
        } else {
            None
        };
        let out_w = vb.get((e, e), "out_proj.weight")?;
        let out_b = if config.bias { Some(vb.get(e, "out_proj.bias")?) } else { None };
        let dropout = Dropout::with_stream(config.dropout, dropout_seed, stream)?;
        Ok(Self { config, w, b, out_w, out_b, dropout })
    }

    /// Seeded initialisation into `varmap` (see [`crate::rnn::init`]), then [`Self::load`]
    /// with the same seed for the dropout masks.
    pub fn seeded(
        config: MultiHeadAttentionConfig,
        varmap: &VarMap,
        prefix: &str,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        config.validate()?;
        fill_varmap(varmap, &config.param_specs(prefix), seed, dtype, device)?;
        let vb = VarBuilder::from_varmap(varmap, dtype, device);
        Self::load(config, if prefix.is_empty() { vb } else { vb.pp(prefix) }, seed)
    }

    pub fn config(&self) -> &MultiHeadAttentionConfig {
        &self.config
    }

    /// `(N, T, E)` from the configured layout, checking rank, embedding size and batch.
    fn batch_major(&self, what: &str, x: &Tensor, batch: Option<usize>) -> Result<Tensor> {
        let e = self.config.embed_dim;
        let layout = if self.config.batch_first { "(N, T, E)" } else { "(T, N, E)" };
        let expected = format!("{layout} with E = {e}");
        if x.rank() != 3 || x.dim(2)? != e || x.dim(0)? == 0 || x.dim(1)? == 0 {
            return Err(LayerError::shape(NAME, what, expected, x.shape()).into());
        }
        let x = if self.config.batch_first { x.clone() } else { x.transpose(0, 1)? };
        if let Some(n) = batch {
            if x.dim(0)? != n {
                let e = format!("{layout} with N = {n} (the query's batch)");
                return Err(LayerError::shape(NAME, what, e, x.shape()).into());
            }
        }
        x.contiguous()
    }

    /// Attention output (the query's layout) and head-averaged weights `(N, L, S)`.
    pub fn forward_t(
        &self,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
        key_padding_mask: Option<&Tensor>,
        attn_mask: Option<&Tensor>,
        train: bool,
    ) -> Result<(Tensor, Tensor)> {
        let (e, heads) = (self.config.embed_dim, self.config.num_heads);
        let hd = e / heads;
        let q = self.batch_major("query", query, None)?;
        let n = q.dim(0)?;
        let k = self.batch_major("key", key, Some(n))?;
        let v = self.batch_major("value", value, Some(n))?;
        let (l, s) = (q.dim(1)?, k.dim(1)?);
        if v.dim(1)? != s {
            return Err(LayerError::shape(
                NAME,
                "value",
                format!("length S = {s} of the key"),
                value.shape(),
            )
            .into());
        }
        let project = |x: &Tensor, i: usize| -> Result<Tensor> {
            let mut y = x.broadcast_matmul(&self.w[i].t()?)?;
            if let Some(b) = &self.b {
                y = y.broadcast_add(&b[i])?;
            }
            let t = y.dim(1)?;
            y.reshape((n, t, heads, hd))?.transpose(1, 2)?.contiguous() // (N, heads, T, hd)
        };
        let (qh, kh, vh) = (project(&q, 0)?, project(&k, 1)?, project(&v, 2)?);
        let mut scores = (qh.matmul(&kh.t()?.contiguous()?)? / (hd as f64).sqrt())?; // (N,h,L,S)
        if let Some(bias) = self.mask_bias(n, l, s, key_padding_mask, attn_mask, scores.dtype())? {
            scores = scores.broadcast_add(&bias)?;
        }
        let weights = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let weights = candle_core::ModuleT::forward_t(&self.dropout, &weights, train)?;
        let ctx = weights.matmul(&vh)?.transpose(1, 2)?.reshape((n, l, e))?; // (N, L, E)
        let mut out = ctx.broadcast_matmul(&self.out_w.t()?)?;
        if let Some(b) = &self.out_b {
            out = out.broadcast_add(b)?;
        }
        let out = if self.config.batch_first { out } else { out.transpose(0, 1)? };
        Ok((out, weights.mean(1)?))
    }

    /// The additive mask `(N, heads | 1, L, S)` from torch-style masks, `None` without masks.
    fn mask_bias(
        &self,
        n: usize,
        l: usize,
        s: usize,
        key_padding_mask: Option<&Tensor>,
        attn_mask: Option<&Tensor>,
        dtype: DType,
    ) -> Result<Option<Tensor>> {
        let heads = self.config.num_heads;
        // (blocked as 0/1 in f64, additive float part), each (N, heads|1, L, S).
        let mut blocked: Option<Tensor> = None;
        let mut additive: Option<Tensor> = None;
        let mut add = |is_bool: bool, t: Tensor| -> Result<()> {
            let slot = if is_bool { &mut blocked } else { &mut additive };
            *slot = Some(match slot.take() {
                None => t,
                Some(prev) => prev.broadcast_add(&t)?,
            });
            Ok(())
        };
        if let Some(m) = key_padding_mask {
            if m.dims() != [n, s] {
                return Err(LayerError::shape(
                    NAME,
                    "key_padding_mask",
                    format!("({n}, {s}) = (N, S)"),
                    m.shape(),
                )
                .into());
            }
            let is_bool = m.dtype() == DType::U8;
            add(is_bool, m.to_dtype(DType::F64)?.reshape((n, 1, 1, s))?)?;
        }
        if let Some(m) = attn_mask {
            let t = match m.dims() {
                [a, b] if *a == l && *b == s => m.to_dtype(DType::F64)?.reshape((1, 1, l, s))?,
                [a, b, c] if *a == n * heads && *b == l && *c == s => {
                    m.to_dtype(DType::F64)?.reshape((n, heads, l, s))?
                }
                _ => {
                    let e = format!(
                        "({l}, {s}) or ({}, {l}, {s}) = (L, S) or (N*heads, L, S)",
                        n * heads
                    );
                    return Err(LayerError::shape(NAME, "attn_mask", e, m.shape()).into());
                }
            };
            add(m.dtype() == DType::U8, t)?;
        }
        let mut bias = additive;
        if let Some(b) = blocked {
            let b = b.ne(0.0)?.to_dtype(DType::F64)?;
            let full = b.broadcast_as((n, heads, l, s))?.contiguous()?;
            let allowed = (1.0 - full)?.sum(D::Minus1)?.flatten_all()?.to_vec1::<f64>()?;
            if let Some(i) = allowed.iter().position(|&a| a == 0.0) {
                return Err(LayerError::input(
                    NAME,
                    format!(
                        "every key is masked for query {} of sequence {} (head {})",
                        i % l,
                        i / (l * heads),
                        (i / l) % heads
                    ),
                )
                .into());
            }
            let b = (b * MASKED_SCORE)?;
            bias = Some(match bias {
                None => b,
                Some(a) => a.broadcast_add(&b)?,
            });
        }
        bias.map(|b| b.to_dtype(dtype)).transpose()
    }
}
