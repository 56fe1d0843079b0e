//! Transformer encoder and decoder layers (Vaswani et al. 2017) as torch's
//! `nn.TransformerEncoderLayer` and `nn.TransformerDecoderLayer`, with their parameter names
//! (`self_attn.in_proj_weight`, `multihead_attn.*`, `linear1.weight`, `norm1.bias`, ...).
//!
//! Post-norm, torch's default (`norm_first = false`):
//!
//! ```text
//! encoder:  x = norm1(x + dropout1(self_attn(x, x, x)))
//!           x = norm2(x + dropout2(linear2(dropout(act(linear1(x))))))
//! decoder:  x = norm1(x + dropout1(self_attn(x, x, x, causal)))
//!           x = norm2(x + dropout2(multihead_attn(x, memory, memory)))
//!           x = norm3(x + dropout3(feed_forward(x)))
//! ```
//!
//! With `norm_first` (pre-norm, Xiong et al. 2020) each block is `x = x + block(norm(x))`.
//! Layer norm is composed from differentiable ops (candle's fused one cuts the gradient).
//! Every dropout draws from the layer's seed on its own ChaCha stream and runs only with
//! `train = true`, so evaluation is deterministic and training reproducible.

use candle_core::{DType, Device, Module, ModuleT, Result, Tensor, D};
use candle_nn::{Linear, VarBuilder, VarMap};

use super::multi_head::{MultiHeadAttention, MultiHeadAttentionConfig};
use super::MASKED_SCORE;
use crate::mlp::Activation;
use crate::regularize::Dropout;
use crate::rnn::error::LayerError;
use crate::rnn::init::{fill_varmap, join, ParamInit, ParamSpec};

/// torch's constructor arguments and defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransformerConfig {
    pub d_model: usize,
    pub nhead: usize,
    /// Width of the feed-forward block (torch default 2048).
    pub dim_feedforward: usize,
    /// Dropout probability everywhere (torch default 0.1).
    pub dropout: f64,
    /// Feed-forward activation (torch default ReLU; `Gelu` is the exact erf GELU).
    pub activation: Activation,
    pub layer_norm_eps: f64,
    pub batch_first: bool,
    pub norm_first: bool,
    pub bias: bool,
}

impl TransformerConfig {
    pub fn new(d_model: usize, nhead: usize) -> Self {
        Self {
            d_model,
            nhead,
            dim_feedforward: 2048,
            dropout: 0.1,
            activation: Activation::Relu,
            layer_norm_eps: 1e-5,
            batch_first: false,
            norm_first: false,
            bias: true,
        }
    }

    fn attention(&self) -> MultiHeadAttentionConfig {
        MultiHeadAttentionConfig {
            embed_dim: self.d_model,
            num_heads: self.nhead,
            dropout: self.dropout,
            bias: self.bias,
            batch_first: self.batch_first,
        }
    }

    pub fn validate(&self) -> Result<()> {
        self.attention().validate()?;
        if self.dim_feedforward == 0 {
            return Err(LayerError::config(
                "transformer layer",
                "dim_feedforward",
                0,
                "at least 1",
            )
            .into());
        }
        Ok(())
    }

    /// torch's initialisation of one layer (`attentions` = 1 for the encoder, 2 for the
    /// decoder), in parameter order.
    fn param_specs(&self, prefix: &str, decoder: bool) -> Vec<ParamSpec> {
        let (d, f) = (self.d_model, self.dim_feedforward);
        let mut specs = self.attention().param_specs(&join(prefix, "self_attn"));
        if decoder {
            specs.extend(self.attention().param_specs(&join(prefix, "multihead_attn")));
        }
        for (name, fan_in, fan_out) in [("linear1", d, f), ("linear2", f, d)] {
            let u = ParamInit::Uniform(1.0 / (fan_in as f64).sqrt());
            specs.push(ParamSpec::new(
                join(prefix, &format!("{name}.weight")),
                vec![fan_out, fan_in],
                u,
            ));
            if self.bias {
                specs.push(ParamSpec::new(join(prefix, &format!("{name}.bias")), vec![fan_out], u));
            }
        }
        for k in 1..=(if decoder { 3 } else { 2 }) {
            specs.push(ParamSpec::new(
                join(prefix, &format!("norm{k}.weight")),
                vec![d],
                ParamInit::Const(1.0),
            ));
            if self.bias {
                specs.push(ParamSpec::new(
                    join(prefix, &format!("norm{k}.bias")),
                    vec![d],
                    ParamInit::Const(0.0),
                ));
            }
        }
        specs
    }
}

/// The boolean causal mask `(len, len)` for torch's `attn_mask`: 1 (masked) where the key
/// comes after the query, so step `t` attends to steps `<= t` only.
pub fn causal_mask(len: usize, device: &Device) -> Result<Tensor> {
    let v: Vec<u8> = (0..len).flat_map(|i| (0..len).map(move |j| u8::from(j > i))).collect();
    Tensor::from_vec(v, (len, len), device)
}

/// Layer normalisation over the last dimension (Ba, Kiros and Hinton 2016), composed from
/// differentiable ops: `(x - mean) / sqrt(var + eps) * weight + bias`, biased variance.
#[derive(Debug, Clone)]
struct LayerNorm {
    weight: Tensor,
    bias: Option<Tensor>,
    eps: f64,
}

impl LayerNorm {
    fn load(d: usize, eps: f64, bias: bool, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get(d, "weight")?,
            bias: if bias { Some(vb.get(d, "bias")?) } else { None },
            eps,
        })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let xc = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
        let y = xc.broadcast_div(&(var + self.eps)?.sqrt()?)?.broadcast_mul(&self.weight)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

/// `linear2(dropout(act(linear1(x))))`.
#[derive(Debug)]
struct FeedForward {
    linear1: Linear,
    linear2: Linear,
    activation: Activation,
    dropout: Dropout,
}

impl FeedForward {
    fn load(c: &TransformerConfig, vb: &VarBuilder, seed: u64, stream: u64) -> Result<Self> {
        let (d, f) = (c.d_model, c.dim_feedforward);
        let linear = |name: &str, i: usize, o: usize| -> Result<Linear> {
            let vb = vb.pp(name);
            Ok(Linear::new(
                vb.get((o, i), "weight")?,
                if c.bias { Some(vb.get(o, "bias")?) } else { None },
            ))
        };
        Ok(Self {
            linear1: linear("linear1", d, f)?,
            linear2: linear("linear2", f, d)?,
            activation: c.activation,
            dropout: Dropout::with_stream(c.dropout, seed, stream)?,
        })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let h = self.activation.forward(&self.linear1.forward(x)?)?;
        self.linear2.forward(&self.dropout.forward_t(&h, train)?)
    }
}

/// Checks `x` against the configured layout and `d_model`.
fn check_input(layer: &str, what: &str, c: &TransformerConfig, x: &Tensor) -> Result<()> {
    let layout = if c.batch_first { "(N, T, d_model)" } else { "(T, N, d_model)" };
    if x.rank() != 3 || x.dim(2)? != c.d_model {
        let e = format!("{layout} with d_model = {}", c.d_model);
        return Err(LayerError::shape(layer, what, e, x.shape()).into());
    }
    Ok(())
}

/// `x + dropout(block(x))` then norm (post-norm), or `x + dropout(block(norm(x)))`.
fn residual(
    x: &Tensor,
    norm: &LayerNorm,
    norm_first: bool,
    dropout: &Dropout,
    train: bool,
    block: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    if norm_first {
        x + dropout.forward_t(&block(&norm.forward(x)?)?, train)?
    } else {
        norm.forward(&(x + dropout.forward_t(&block(x)?, train)?)?)
    }
}

/// The encoder's masks, torch's names and conventions (see [`MultiHeadAttention`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct EncoderMasks<'a> {
    pub src_mask: Option<&'a Tensor>,
    pub src_key_padding_mask: Option<&'a Tensor>,
}

/// One encoder layer; see the module documentation.
#[derive(Debug)]
pub struct TransformerEncoderLayer {
    config: TransformerConfig,
    self_attn: MultiHeadAttention,
    ff: FeedForward,
    norm1: LayerNorm,
    norm2: LayerNorm,
    dropout1: Dropout,
    dropout2: Dropout,
}

impl TransformerEncoderLayer {
    /// Loads from `vb`; dropout streams 0..4 of `dropout_seed`.
    pub fn load(config: TransformerConfig, vb: VarBuilder, dropout_seed: u64) -> Result<Self> {
        config.validate()?;
        let (d, eps, p, s) = (config.d_model, config.layer_norm_eps, config.dropout, dropout_seed);
        Ok(Self {
            self_attn: MultiHeadAttention::load_with_stream(
                config.attention(),
                vb.pp("self_attn"),
                s,
                0,
            )?,
            ff: FeedForward::load(&config, &vb, s, 1)?,
            norm1: LayerNorm::load(d, eps, config.bias, vb.pp("norm1"))?,
            norm2: LayerNorm::load(d, eps, config.bias, vb.pp("norm2"))?,
            dropout1: Dropout::with_stream(p, s, 2)?,
            dropout2: Dropout::with_stream(p, s, 3)?,
            config,
        })
    }

    /// torch's initialisation from `ChaCha8Rng::seed_from_u64(seed)` into `varmap`, then
    /// [`Self::load`] with the same seed for dropout.
    pub fn seeded(
        config: TransformerConfig,
        varmap: &VarMap,
        prefix: &str,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        config.validate()?;
        fill_varmap(varmap, &config.param_specs(prefix, false), seed, dtype, device)?;
        let vb = VarBuilder::from_varmap(varmap, dtype, device);
        Self::load(config, if prefix.is_empty() { vb } else { vb.pp(prefix) }, seed)
    }

    /// `src` `(S, N, d)` (or `(N, S, d)` with `batch_first`) to the same shape.
    pub fn forward_t(&self, src: &Tensor, masks: EncoderMasks, train: bool) -> Result<Tensor> {
        let c = &self.config;
        check_input("transformer encoder layer", "src", c, src)?;
        let x = residual(src, &self.norm1, c.norm_first, &self.dropout1, train, |x| {
            let (y, _) = self.self_attn.forward_t(
                x,
                x,
                x,
                masks.src_key_padding_mask,
                masks.src_mask,
                train,
            )?;
            Ok(y)
        })?;
        residual(&x, &self.norm2, c.norm_first, &self.dropout2, train, |x| {
            self.ff.forward_t(x, train)
        })
    }
}

impl ModuleT for TransformerEncoderLayer {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        TransformerEncoderLayer::forward_t(self, xs, EncoderMasks::default(), train)
    }
}

/// The decoder's masks, torch's names and conventions. `tgt_is_causal` adds the causal mask
/// ([`causal_mask`]) to the self-attention, combined with `tgt_mask` when both are given.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecoderMasks<'a> {
    pub tgt_mask: Option<&'a Tensor>,
    pub memory_mask: Option<&'a Tensor>,
    pub tgt_key_padding_mask: Option<&'a Tensor>,
    pub memory_key_padding_mask: Option<&'a Tensor>,
    pub tgt_is_causal: bool,
}

/// One decoder layer; see the module documentation.
#[derive(Debug)]
pub struct TransformerDecoderLayer {
    config: TransformerConfig,
    self_attn: MultiHeadAttention,
    multihead_attn: MultiHeadAttention,
    ff: FeedForward,
    norms: [LayerNorm; 3],
    dropouts: [Dropout; 3],
}

impl TransformerDecoderLayer {
    /// Loads from `vb`; dropout streams 0..6 of `dropout_seed`.
    pub fn load(config: TransformerConfig, vb: VarBuilder, dropout_seed: u64) -> Result<Self> {
        config.validate()?;
        let (d, eps, p, s) = (config.d_model, config.layer_norm_eps, config.dropout, dropout_seed);
        let norm = |k: usize| LayerNorm::load(d, eps, config.bias, vb.pp(format!("norm{k}")));
        Ok(Self {
            self_attn: MultiHeadAttention::load_with_stream(
                config.attention(),
                vb.pp("self_attn"),
                s,
                0,
            )?,
            multihead_attn: MultiHeadAttention::load_with_stream(
                config.attention(),
                vb.pp("multihead_attn"),
                s,
                1,
            )?,
            ff: FeedForward::load(&config, &vb, s, 2)?,
            norms: [norm(1)?, norm(2)?, norm(3)?],
            dropouts: [
                Dropout::with_stream(p, s, 3)?,
                Dropout::with_stream(p, s, 4)?,
                Dropout::with_stream(p, s, 5)?,
            ],
            config,
        })
    }

    /// torch's initialisation from `ChaCha8Rng::seed_from_u64(seed)` into `varmap`, then
    /// [`Self::load`] with the same seed for dropout.
    pub fn seeded(
        config: TransformerConfig,
        varmap: &VarMap,
        prefix: &str,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        config.validate()?;
        fill_varmap(varmap, &config.param_specs(prefix, true), seed, dtype, device)?;
        let vb = VarBuilder::from_varmap(varmap, dtype, device);
        Self::load(config, if prefix.is_empty() { vb } else { vb.pp(prefix) }, seed)
    }

    /// `tgt` `(T, N, d)` attending to itself and to `memory` `(S, N, d)` (batch-first
    /// variants with `batch_first`); returns `tgt`'s shape.
    pub fn forward_t(
        &self,
        tgt: &Tensor,
        memory: &Tensor,
        masks: DecoderMasks,
        train: bool,
    ) -> Result<Tensor> {
        let c = &self.config;
        const NAME: &str = "transformer decoder layer";
        check_input(NAME, "tgt", c, tgt)?;
        check_input(NAME, "memory", c, memory)?;
        let t = tgt.dim(if c.batch_first { 1 } else { 0 })?;
        let causal = if masks.tgt_is_causal {
            let causal = causal_mask(t, tgt.device())?;
            Some(match masks.tgt_mask {
                None => causal,
                Some(m) => {
                    let m = if m.dtype() == DType::U8 {
                        (m.ne(0.0)?.to_dtype(DType::F64)? * MASKED_SCORE)?
                    } else {
                        m.to_dtype(DType::F64)?
                    };
                    m.broadcast_add(&(causal.to_dtype(DType::F64)? * MASKED_SCORE)?)?
                        .to_dtype(tgt.dtype())?
                }
            })
        } else {
            None
        };
        let tgt_mask = causal.as_ref().or(masks.tgt_mask);
        let [n1, n2, n3] = &self.norms;
        let [d1, d2, d3] = &self.dropouts;
        let x = residual(tgt, n1, c.norm_first, d1, train, |x| {
            Ok(self.self_attn.forward_t(x, x, x, masks.tgt_key_padding_mask, tgt_mask, train)?.0)
        })?;
        let x = residual(&x, n2, c.norm_first, d2, train, |x| {
            let kpm = masks.memory_key_padding_mask;
            Ok(self.multihead_attn.forward_t(x, memory, memory, kpm, masks.memory_mask, train)?.0)
        })?;
        residual(&x, n3, c.norm_first, d3, train, |x| self.ff.forward_t(x, train))
    }
}
