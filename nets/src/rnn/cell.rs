//! The recurrent cell kinds, the configuration of a (stacked, bidirectional) recurrent layer,
//! and the parameters of one layer and direction, named exactly as torch names them.
//!
//! # Parameter names (torch's `nn.RNN` / `nn.LSTM` / `nn.GRU`)
//!
//! For layer `k` and direction suffix `s` (`""` forward, `"_reverse"` reverse):
//! `weight_ih_l{k}{s}` `(G*H, in_k)`, `weight_hh_l{k}{s}` `(G*H, H)`, and with `bias`
//! `bias_ih_l{k}{s}`, `bias_hh_l{k}{s}` `(G*H)`, where `G` is the number of gates (1 for the
//! simple RNN, 4 for LSTM in the order i, f, g, o, 3 for GRU in the order r, z, n), `H` the
//! hidden size, `in_0` the input size and `in_k = D*H` for `k > 0` (`D` = 2 when
//! bidirectional). A torch `state_dict` therefore loads as it is.
//!
//! Peephole LSTM (Gers, Schraudolph and Schmidhuber 2002, "Learning precise timing with LSTM
//! recurrent networks", JMLR 3) has no torch counterpart; its three extra diagonal weights
//! are named `weight_ci_l{k}{s}`, `weight_cf_l{k}{s}` and `weight_co_l{k}{s}`, each `(H)`:
//! `i = σ(z_i + w_ci ⊙ c_{t-1})`, `f = σ(z_f + w_cf ⊙ c_{t-1})`, `o = σ(z_o + w_co ⊙ c_t)`.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::error::LayerError;
use super::init::{join, ParamInit, ParamSpec};

/// Which recurrence a layer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    /// Elman RNN, `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)` (torch `nn.RNN`, the default
    /// `nonlinearity="tanh"`).
    RnnTanh,
    /// The same with ReLU (torch `nonlinearity="relu"`).
    RnnRelu,
    /// Hochreiter and Schmidhuber 1997, with the forget gate of Gers et al. 2000 (torch
    /// `nn.LSTM`); `peephole` adds the connections of Gers et al. 2002.
    Lstm { peephole: bool },
    /// Cho et al. 2014 (torch `nn.GRU`: the reset gate multiplies after the hidden matmul).
    Gru,
}

impl CellKind {
    /// The number of gate blocks `G` in the weight matrices.
    pub fn gates(self) -> usize {
        match self {
            CellKind::RnnTanh | CellKind::RnnRelu => 1,
            CellKind::Lstm { .. } => 4,
            CellKind::Gru => 3,
        }
    }

    /// The layer name used in error messages.
    pub fn layer_name(self) -> &'static str {
        match self {
            CellKind::RnnTanh | CellKind::RnnRelu => "RNN",
            CellKind::Lstm { peephole: false } => "LSTM",
            CellKind::Lstm { peephole: true } => "peephole LSTM",
            CellKind::Gru => "GRU",
        }
    }

    /// True for the LSTMs, whose state carries a cell `c` next to `h`.
    pub fn has_cell_state(self) -> bool {
        matches!(self, CellKind::Lstm { .. })
    }
}

/// The shape of a recurrent layer, with torch's argument names and defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct RnnConfig {
    pub kind: CellKind,
    pub input_size: usize,
    pub hidden_size: usize,
    /// Stacked layers; layer `k > 0` reads the (concatenated) outputs of layer `k - 1`.
    pub num_layers: usize,
    /// Whether the four bias vectors exist (torch default true).
    pub bias: bool,
    /// Input and output are `(N, T, F)` instead of `(T, N, F)`; states keep `(L*D, N, H)`.
    pub batch_first: bool,
    /// A second, reverse-time direction per layer, its outputs concatenated after the forward
    /// ones.
    pub bidirectional: bool,
}

impl RnnConfig {
    /// One forward layer of `kind`, with biases, time-major.
    pub fn new(kind: CellKind, input_size: usize, hidden_size: usize) -> Self {
        Self {
            kind,
            input_size,
            hidden_size,
            num_layers: 1,
            bias: true,
            batch_first: false,
            bidirectional: false,
        }
    }

    pub fn lstm(input_size: usize, hidden_size: usize) -> Self {
        Self::new(CellKind::Lstm { peephole: false }, input_size, hidden_size)
    }

    pub fn gru(input_size: usize, hidden_size: usize) -> Self {
        Self::new(CellKind::Gru, input_size, hidden_size)
    }

    pub fn rnn(input_size: usize, hidden_size: usize) -> Self {
        Self::new(CellKind::RnnTanh, input_size, hidden_size)
    }

    pub fn with_layers(mut self, num_layers: usize) -> Self {
        self.num_layers = num_layers;
        self
    }

    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    pub fn with_batch_first(mut self, batch_first: bool) -> Self {
        self.batch_first = batch_first;
        self
    }

    pub fn with_bidirectional(mut self, bidirectional: bool) -> Self {
        self.bidirectional = bidirectional;
        self
    }

    /// The number of directions `D` (1 or 2).
    pub fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// Checks that every size is positive.
    pub fn validate(&self) -> Result<()> {
        let layer = self.kind.layer_name();
        for (field, v) in [
            ("input_size", self.input_size),
            ("hidden_size", self.hidden_size),
            ("num_layers", self.num_layers),
        ] {
            if v == 0 {
                return Err(LayerError::config(layer, field, v, "at least 1").into());
            }
        }
        Ok(())
    }

    /// The parameter name suffix of layer `layer`, direction `dir` (`"l1_reverse"`).
    fn suffix(layer: usize, dir: usize) -> String {
        if dir == 0 {
            format!("l{layer}")
        } else {
            format!("l{layer}_reverse")
        }
    }

    /// Every parameter in torch's `named_parameters()` order (layer, direction, then
    /// `weight_ih, weight_hh, bias_ih, bias_hh`, then the peephole weights), initialised as
    /// torch does: uniform on `±1/sqrt(H)`.
    pub fn param_specs(&self, prefix: &str) -> Vec<ParamSpec> {
        let (h, g) = (self.hidden_size, self.kind.gates());
        let init = ParamInit::Uniform(1.0 / (h as f64).sqrt());
        let mut specs = Vec::new();
        for layer in 0..self.num_layers {
            let in_size = if layer == 0 { self.input_size } else { self.directions() * h };
            for dir in 0..self.directions() {
                let s = Self::suffix(layer, dir);
                let mut add = |name: String, shape| {
                    specs.push(ParamSpec::new(join(prefix, &name), shape, init))
                };
                add(format!("weight_ih_{s}"), vec![g * h, in_size]);
                add(format!("weight_hh_{s}"), vec![g * h, h]);
                if self.bias {
                    add(format!("bias_ih_{s}"), vec![g * h]);
                    add(format!("bias_hh_{s}"), vec![g * h]);
                }
                if self.kind == (CellKind::Lstm { peephole: true }) {
                    for p in ["ci", "cf", "co"] {
                        add(format!("weight_{p}_{s}"), vec![h]);
                    }
                }
            }
        }
        specs
    }
}

/// The parameters of one layer and direction.
#[derive(Debug, Clone)]
pub(crate) struct CellParams {
    pub w_ih: Tensor,
    pub w_hh: Tensor,
    pub b_ih: Option<Tensor>,
    pub b_hh: Option<Tensor>,
    /// `w_ci, w_cf, w_co` of a peephole LSTM.
    pub peephole: Option<[Tensor; 3]>,
}

impl CellParams {
    /// Loads layer `layer`, direction `dir` from `vb` (shapes checked by the builder).
    pub fn load(config: &RnnConfig, layer: usize, dir: usize, vb: &VarBuilder) -> Result<Self> {
        let (h, g) = (config.hidden_size, config.kind.gates());
        let in_size = if layer == 0 { config.input_size } else { config.directions() * h };
        let s = RnnConfig::suffix(layer, dir);
        let get = |name: String, shape: &[usize]| {
            vb.get(shape, &name).map_err(|e| {
                candle_core::Error::Msg(format!(
                    "{}: cannot load parameter {name} {shape:?}: {e}",
                    config.kind.layer_name()
                ))
            })
        };
        let w_ih = get(format!("weight_ih_{s}"), &[g * h, in_size])?;
        let w_hh = get(format!("weight_hh_{s}"), &[g * h, h])?;
        let (b_ih, b_hh) = if config.bias {
            (
                Some(get(format!("bias_ih_{s}"), &[g * h])?),
                Some(get(format!("bias_hh_{s}"), &[g * h])?),
            )
        } else {
            (None, None)
        };
        let peephole = if config.kind == (CellKind::Lstm { peephole: true }) {
            Some([
                get(format!("weight_ci_{s}"), &[h])?,
                get(format!("weight_cf_{s}"), &[h])?,
                get(format!("weight_co_{s}"), &[h])?,
            ])
        } else {
            None
        };
        Ok(Self { w_ih, w_hh, b_ih, b_hh, peephole })
    }

    /// `x W_ih^T + b_ih` (and `+ b_hh` when `fold_hidden_bias`) for every step at once:
    /// `x` is `(T, N, in)`, the result `(T, N, G*H)`. One matmul instead of `T`: the bias
    /// rides along as an extra input column of ones, `[x, 1] [W_ih, b]^T`, so that neither
    /// the forward pass (a broadcast add) nor the backward pass (a sum over the `T*N` rows,
    /// slow in candle) spends a separate pass on it; the matmul's backward computes its
    /// gradient.
    pub fn input_projection(&self, x: &Tensor, fold_hidden_bias: bool) -> Result<Tensor> {
        let (t, n, f) = x.dims3()?;
        let x2 = x.reshape((t * n, f))?;
        let bias = match (&self.b_ih, &self.b_hh, fold_hidden_bias) {
            (Some(bi), Some(bh), true) => Some((bi + bh)?),
            (Some(bi), _, _) => Some(bi.clone()),
            _ => None,
        };
        let xp = match bias {
            Some(b) => {
                let ones = Tensor::ones((t * n, 1), x.dtype(), x.device())?;
                let w = Tensor::cat(&[&self.w_ih, &b.unsqueeze(1)?], 1)?;
                Tensor::cat(&[&x2, &ones], 1)?.matmul(&w.t()?)?
            }
            None => x2.matmul(&self.w_ih.t()?)?,
        };
        xp.reshape((t, n, self.w_ih.dim(0)?))
    }

    /// `h W_hh^T` (`+ b_hh` when `with_bias`), `(N, G*H)`.
    pub fn hidden_projection(&self, h: &Tensor, with_bias: bool) -> Result<Tensor> {
        let hp = h.matmul(&self.w_hh.t()?)?;
        match (&self.b_hh, with_bias) {
            (Some(b), true) => hp.broadcast_add(b),
            _ => Ok(hp),
        }
    }
}
