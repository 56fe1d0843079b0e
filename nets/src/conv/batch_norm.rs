//! Batch normalisation (Ioffe and Szegedy 2015) with torch's `BatchNorm1d`/`BatchNorm2d`
//! semantics.
//!
//! Training (`forward_t(x, true)`): per channel `c`, over the batch and every position,
//! `y = (x - mean) / sqrt(var_biased + eps) * weight + bias`, and the running statistics
//! move by `running = (1 - momentum) running + momentum batch_stat`, where the running
//! variance takes the *unbiased* batch variance (`n / (n - 1)`). Evaluation
//! (`forward_t(x, false)`) normalises with the running statistics. torch defaults:
//! `eps = 1e-5`, `momentum = 0.1`, affine. Parameters: `weight` (ones), `bias` (zeros);
//! buffers `running_mean` (zeros), `running_var` (ones), the names of torch's `state_dict`.
//! The buffers are never differentiated (they enter evaluation detached), so an optimizer
//! leaves them alone.

use candle_core::{Module, ModuleT, Result, Tensor, Var};
use candle_nn::{Init, VarBuilder};

use super::fast_batch_norm::{self, Fusion};
use super::fast_conv_norm::{self, ConvStage, NormParams, Statistics};
use super::geometry::layer_error;
use super::{check_input, fast, relu, Conv2d};

/// `BatchNorm1d` (`[N, C]` or `[N, C, L]`) or `BatchNorm2d` (`[N, C, H, W]`).
#[derive(Debug, Clone)]
pub struct BatchNorm {
    layer: &'static str,
    ranks: &'static [usize],
    num_features: usize,
    eps: f64,
    momentum: f64,
    weight: Option<Tensor>,
    bias: Option<Tensor>,
    running_mean: Var,
    running_var: Var,
}

impl BatchNorm {
    /// torch's `BatchNorm2d(num_features)` (eps 1e-5, momentum 0.1, affine).
    pub fn new_2d(num_features: usize, vb: VarBuilder) -> Result<Self> {
        Self::build("BatchNorm2d", &[4], num_features, 1e-5, 0.1, true, vb)
    }

    /// torch's `BatchNorm1d(num_features)` (eps 1e-5, momentum 0.1, affine).
    pub fn new_1d(num_features: usize, vb: VarBuilder) -> Result<Self> {
        Self::build("BatchNorm1d", &[2, 3], num_features, 1e-5, 0.1, true, vb)
    }

    /// Replaces eps and momentum (both must be finite, eps > 0, momentum in [0, 1]).
    pub fn with_hyperparameters(mut self, eps: f64, momentum: f64) -> Result<Self> {
        if !(eps > 0.0 && eps.is_finite() && (0.0..=1.0).contains(&momentum)) {
            return Err(layer_error(
                self.layer,
                format!("need eps > 0 and momentum in [0, 1], got eps {eps}, momentum {momentum}"),
            ));
        }
        self.eps = eps;
        self.momentum = momentum;
        Ok(self)
    }

    fn build(
        layer: &'static str,
        ranks: &'static [usize],
        num_features: usize,
        eps: f64,
        momentum: f64,
        affine: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        if num_features == 0 {
            return Err(layer_error(layer, "num_features must be positive".into()));
        }
        let (weight, bias) = if affine {
            (
                Some(vb.get_with_hints(num_features, "weight", Init::Const(1.0))?),
                Some(vb.get_with_hints(num_features, "bias", Init::Const(0.0))?),
            )
        } else {
            (None, None)
        };
        // From a VarMap these share storage with the map's variables, so checkpoints hold
        // the updated statistics.
        let running_mean = Var::from_tensor(&vb.get_with_hints(
            num_features,
            "running_mean",
            Init::Const(0.0),
        )?)?;
        let running_var =
            Var::from_tensor(&vb.get_with_hints(num_features, "running_var", Init::Const(1.0))?)?;
        Ok(Self {
            layer,
            ranks,
            num_features,
            eps,
            momentum,
            weight,
            bias,
            running_mean,
            running_var,
        })
    }

    /// The number of trainable parameters: `weight` and `bias` (`2 C` when affine, else 0);
    /// the running statistics are buffers, not parameters (torch's `parameters()`).
    pub fn parameter_count(&self) -> usize {
        [&self.weight, &self.bias].iter().filter_map(|t| t.as_ref()).map(|t| t.elem_count()).sum()
    }

    pub fn running_mean(&self) -> &Tensor {
        self.running_mean.as_tensor()
    }

    pub fn running_var(&self) -> &Tensor {
        self.running_var.as_tensor()
    }

    /// Checks the rank and channel count; returns `(N, C, L)`.
    fn input_shape(&self, x: &Tensor) -> Result<(usize, usize, usize)> {
        let dims = x.dims();
        if !self.ranks.contains(&dims.len()) || dims[1] != self.num_features || dims.contains(&0) {
            let layout = if self.ranks == [4] { "[N, C, H, W]" } else { "[N, C] or [N, C, L]" };
            return Err(layer_error(
                self.layer,
                format!(
                    "expected a non-empty input {layout} with C = {}, got shape {dims:?}",
                    self.num_features
                ),
            ));
        }
        Ok((dims[0], dims[1], dims[2..].iter().product()))
    }
}

impl BatchNorm {
    /// Checks that training has more than one value per channel.
    fn check_count(&self, dims: &[usize], count: usize) -> Result<()> {
        if count < 2 {
            return Err(layer_error(
                self.layer,
                format!("training needs more than one value per channel, got shape {dims:?}"),
            ));
        }
        Ok(())
    }

    /// Moves the running statistics towards the batch's (`var` biased; stored unbiased).
    fn update_running(&self, mean: &Tensor, var: &Tensor, count: usize) -> Result<()> {
        let m = self.momentum;
        let unbiased = (var * (count as f64 / (count - 1) as f64))?;
        let new_mean = ((self.running_mean.as_tensor() * (1.0 - m))? + (mean * m)?)?;
        let new_var = ((self.running_var.as_tensor() * (1.0 - m))? + (unbiased * m)?)?;
        self.running_mean.set(&new_mean)?;
        self.running_var.set(&new_var)
    }

    /// The fused CPU path (`fast_batch_norm`) on `x` `[N, C, ...]` (rank and channels
    /// already checked), followed by `fusion` (with `residual` for [`Fusion::AddRelu`]).
    pub(crate) fn forward_fused(
        &self,
        x: &Tensor,
        train: bool,
        fusion: Fusion,
        residual: Option<&Tensor>,
    ) -> Result<Tensor> {
        let dims = x.dims();
        let (n, c, l) = (dims[0], dims[1], dims[2..].iter().product::<usize>());
        let (mean, var) = if train {
            self.check_count(x.dims(), n * l)?;
            let (mean, var) = fast_batch_norm::batch_stats(x)?;
            let dtype = self.running_mean.dtype();
            let as_tensor = |v: &[f64]| Tensor::new(v, x.device())?.to_dtype(dtype);
            self.update_running(&as_tensor(&mean)?, &as_tensor(&var)?, n * l)?;
            (mean, var)
        } else {
            let host = |t: &Tensor| t.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>();
            (host(self.running_mean.as_tensor())?, host(self.running_var.as_tensor())?)
        };
        let (weight, bias) = match (&self.weight, &self.bias) {
            (Some(w), Some(b)) => (w.clone(), b.clone()),
            _ => {
                (Tensor::ones(c, x.dtype(), x.device())?, Tensor::zeros(c, x.dtype(), x.device())?)
            }
        };
        let (eps, w, b) = (self.eps, &weight, &bias);
        fast_batch_norm::normalize(x, mean, &var, eps, w, b, train, fusion, residual)
    }

    /// candle's generic tensor ops (any device and dtype) on `x3` `[N, C, L]`.
    pub(crate) fn forward_generic(&self, x3: &Tensor, train: bool) -> Result<Tensor> {
        let (n, c, l) = x3.dims3()?;
        let (mean, var) = if train {
            let count = n * l;
            self.check_count(x3.dims(), count)?;
            let mean = (x3.sum_keepdim(2)?.sum_keepdim(0)? / count as f64)?;
            let centred = x3.broadcast_sub(&mean)?;
            let var = (centred.sqr()?.sum_keepdim(2)?.sum_keepdim(0)? / count as f64)?;
            self.update_running(
                &mean.detach().flatten_all()?,
                &var.detach().flatten_all()?,
                count,
            )?;
            (mean, var)
        } else {
            (
                self.running_mean.as_tensor().detach().reshape((1, c, 1))?,
                self.running_var.as_tensor().detach().reshape((1, c, 1))?,
            )
        };
        let inv_std = (var + self.eps)?.sqrt()?.recip()?;
        let mut y = x3.broadcast_sub(&mean)?.broadcast_mul(&inv_std)?;
        if let (Some(w), Some(b)) = (&self.weight, &self.bias) {
            y = y.broadcast_mul(&w.reshape((1, c, 1))?)?.broadcast_add(&b.reshape((1, c, 1))?)?;
        }
        Ok(y)
    }
}

impl BatchNorm {
    /// `relu(bn(x))`, the batch norm followed by a ReLU (the unit of GoogLeNet's and
    /// ResNet's convolutions). On CPU both run in one fused op and graph node.
    pub fn forward_relu_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_fusion(x, train, Fusion::Relu, None)
    }

    /// `relu(bn(x) + residual)`, the end of a residual unit (`residual` the shortcut, of
    /// `x`'s shape). On CPU all three run in one fused op and graph node.
    pub fn forward_add_relu_t(&self, x: &Tensor, residual: &Tensor, train: bool) -> Result<Tensor> {
        if residual.dims() != x.dims() {
            return Err(layer_error(
                self.layer,
                format!(
                    "the residual added after the batch norm must have the input's shape {:?}, \
                     got {:?}",
                    x.dims(),
                    residual.dims()
                ),
            ));
        }
        self.forward_fusion(x, train, Fusion::AddRelu, Some(residual))
    }

    fn forward_fusion(
        &self,
        x: &Tensor,
        train: bool,
        fusion: Fusion,
        residual: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (n, c, l) = self.input_shape(x)?;
        let same_dtype = |t: Option<&Tensor>| t.is_none_or(|t| t.dtype() == x.dtype());
        if fast::supports(x) && same_dtype(self.weight.as_ref()) && same_dtype(residual) {
            return self.forward_fused(x, train, fusion, residual);
        }
        let y = self.forward_generic(&x.reshape((n, c, l))?, train)?.reshape(x.dims())?;
        match (fusion, residual) {
            (Fusion::None, _) => Ok(y),
            (Fusion::Relu, _) => relu(&y),
            (Fusion::AddRelu, Some(r)) => relu(&(y + r)?),
            (Fusion::AddRelu, None) => Err(layer_error(self.layer, "residual missing".into())),
        }
    }
}

/// A convolution followed by this batch norm (and its activation): on CPU (f32/f64, a
/// convolution without bias) one fused op whose backward hands the batch norm's input
/// gradient straight to the convolution's (`fast_conv_norm`), elsewhere the two layers in
/// sequence. Same values and gradients either way.
impl BatchNorm {
    /// `bn(conv(x))`.
    pub fn forward_conv_t(&self, conv: &Conv2d, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_conv_fusion(conv, x, train, Fusion::None, None)
    }

    /// `relu(bn(conv(x)))`.
    pub fn forward_conv_relu_t(&self, conv: &Conv2d, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_conv_fusion(conv, x, train, Fusion::Relu, None)
    }

    /// `relu(bn(conv(x)) + residual)`, `residual` of the convolution's output shape.
    pub fn forward_conv_add_relu_t(
        &self,
        conv: &Conv2d,
        x: &Tensor,
        residual: &Tensor,
        train: bool,
    ) -> Result<Tensor> {
        self.forward_conv_fusion(conv, x, train, Fusion::AddRelu, Some(residual))
    }

    fn forward_conv_fusion(
        &self,
        conv: &Conv2d,
        x: &Tensor,
        train: bool,
        fusion: Fusion,
        residual: Option<&Tensor>,
    ) -> Result<Tensor> {
        let same_dtype = |t: Option<&Tensor>| t.is_none_or(|t| t.dtype() == x.dtype());
        if !self.fuses_with(conv, x) || !same_dtype(residual) {
            let z = conv.forward(x)?;
            return match (fusion, residual) {
                (Fusion::AddRelu, Some(r)) => self.forward_add_relu_t(&z, r, train),
                _ => self.forward_fusion(&z, train, fusion, residual),
            };
        }
        let (stage, out) = self.conv_stage(conv, x.dims(), train)?;
        if let Some(r) = residual.filter(|r| r.dims() != out) {
            return Err(layer_error(
                self.layer,
                format!(
                    "the residual added after the batch norm must have the convolution's output \
                     shape {out:?}, got {:?}",
                    r.dims()
                ),
            ));
        }
        let (y, stats) = fast_conv_norm::conv_norm(x, stage, fusion, residual)?;
        self.record_batch_stats(stats, &out)?;
        Ok(y)
    }

    /// Whether `conv` followed by this batch norm runs as one fused CPU op on `x`: CPU, f32
    /// or f64, a convolution without bias, parameters of `x`'s dtype.
    pub(crate) fn fuses_with(&self, conv: &Conv2d, x: &Tensor) -> bool {
        fast::supports(x)
            && conv.bias().is_none()
            && self.weight.as_ref().is_none_or(|w| w.dtype() == x.dtype())
            && self.ranks.contains(&4)
            && conv.config().out_channels == self.num_features
    }

    /// `conv` and this batch norm as a stage of the fused ops, on an input of shape `dims`
    /// (checked: rank 4, the convolution's channels, a window that fits), with the running
    /// statistics in evaluation; and the output shape.
    pub(crate) fn conv_stage(
        &self,
        conv: &Conv2d,
        dims: &[usize],
        train: bool,
    ) -> Result<(ConvStage, [usize; 4])> {
        let config = conv.config();
        let dims = check_input("Conv2d", dims, 4, config.in_channels, "[N, C, H, W]")?;
        let (rows, cols) = config.axes("Conv2d", dims[2], dims[3])?;
        let out = [dims[0], config.out_channels, rows.out, cols.out];
        let running = if train {
            self.check_count(&out, out[0] * out[2] * out[3])?;
            None
        } else {
            let host = |t: &Tensor| t.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>();
            Some((host(self.running_mean.as_tensor())?, host(self.running_var.as_tensor())?))
        };
        let (weight, bias) = match (&self.weight, &self.bias) {
            (Some(w), Some(b)) => (w.clone(), b.clone()),
            _ => {
                let (c, w) = (self.num_features, conv.weight());
                (Tensor::ones(c, w.dtype(), w.device())?, Tensor::zeros(c, w.dtype(), w.device())?)
            }
        };
        let norm = NormParams { eps: self.eps, running, weight, bias };
        let stage =
            ConvStage { weight: conv.weight().clone(), groups: config.groups, rows, cols, norm };
        Ok((stage, out))
    }

    /// Moves the running statistics towards a fused op's batch statistics (`None` in
    /// evaluation) over an output of shape `out`.
    pub(crate) fn record_batch_stats(
        &self,
        stats: Option<Statistics>,
        out: &[usize; 4],
    ) -> Result<()> {
        if let Some((mean, var)) = stats {
            let (dtype, device) = (self.running_mean.dtype(), self.running_mean.device());
            let as_tensor = |v: &[f64]| Tensor::new(v, device)?.to_dtype(dtype);
            self.update_running(&as_tensor(&mean)?, &as_tensor(&var)?, out[0] * out[2] * out[3])?;
        }
        Ok(())
    }
}

impl ModuleT for BatchNorm {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_fusion(x, train, Fusion::None, None)
    }
}
