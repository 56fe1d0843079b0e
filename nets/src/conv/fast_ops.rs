//! candle's custom-op glue of the convolution kernels: [`ConvOp`] as a two-operand
//! (`x`, weight) or three-operand (with a bias) op whose backward masks the output gradient
//! by the fused ReLU and runs the input and weight gradients as ops of their own
//! ([`GradInput`], [`GradWeight`]; not differentiable themselves), and the dtype dispatch
//! shared with the transposed convolution.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

use super::fast::ConvOp;
use super::fast_bias::bias_grad;
use super::fast_gemm::contiguous;
use super::fast_relu::relu_grad;

/// Runs `f` on the f32 or f64 slices of two storages of one dtype.
macro_rules! dispatch2 {
    ($s1:expr, $l1:expr, $s2:expr, $l2:expr, |$a:ident, $b:ident| $body:expr) => {
        match ($s1, $s2) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => {
                let ($a, $b) = (contiguous::<f32>($s1, $l1)?, contiguous::<f32>($s2, $l2)?);
                CpuStorage::F32($body)
            }
            (CpuStorage::F64(_), CpuStorage::F64(_)) => {
                let ($a, $b) = (contiguous::<f64>($s1, $l1)?, contiguous::<f64>($s2, $l2)?);
                CpuStorage::F64($body)
            }
            _ => candle_core::bail!("conv kernel: f32 or f64 operands of one dtype expected"),
        }
    };
}
pub(crate) use dispatch2;

/// Runs `f` on the f32 or f64 slices of three storages of one dtype.
macro_rules! dispatch3 {
    ($s1:expr, $l1:expr, $s2:expr, $l2:expr, $s3:expr, $l3:expr, |$a:ident, $b:ident, $c:ident| $body:expr) => {
        match ($s1, $s2, $s3) {
            (CpuStorage::F32(_), CpuStorage::F32(_), CpuStorage::F32(_)) => {
                let ($a, $b, $c) = (
                    contiguous::<f32>($s1, $l1)?,
                    contiguous::<f32>($s2, $l2)?,
                    contiguous::<f32>($s3, $l3)?,
                );
                CpuStorage::F32($body)
            }
            (CpuStorage::F64(_), CpuStorage::F64(_), CpuStorage::F64(_)) => {
                let ($a, $b, $c) = (
                    contiguous::<f64>($s1, $l1)?,
                    contiguous::<f64>($s2, $l2)?,
                    contiguous::<f64>($s3, $l3)?,
                );
                CpuStorage::F64($body)
            }
            _ => candle_core::bail!("conv kernel: f32 or f64 operands of one dtype expected"),
        }
    };
}
pub(crate) use dispatch3;

impl ConvOp {
    /// The backward shared by the two- and three-operand forms: the output gradient is
    /// masked by the ReLU (`res > 0`), then gives the input, weight and bias gradients of
    /// the operands candle tracks.
    fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let grad = if self.relu { relu_grad(res, &grad)? } else { grad };
        let plain = ConvOp { bias: false, relu: false, ..*self };
        // An operand that is neither a variable nor computed from one (the network's input
        // image) gets no gradient: candle would drop it anyway.
        let gx = if x.track_op() {
            let op = GradInput { op: plain, input_shape: x.shape().clone() };
            Some(grad.apply_op2_no_bwd(w, &op)?)
        } else {
            None
        };
        let gw = if w.track_op() {
            let op = GradWeight { op: plain, weight_shape: w.shape().clone() };
            Some(x.apply_op2_no_bwd(&grad, &op)?)
        } else {
            None
        };
        let gb = bias_grad(b, &grad)?;
        Ok((gx, gw, gb))
    }
}

impl CustomOp2 for ConvOp {
    fn name(&self) -> &'static str {
        "deeprl-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        if self.bias {
            candle_core::bail!("conv kernel: a convolution with a bias takes three operands")
        }
        let d = self.dims(l1, l2)?;
        let shape = Shape::from((d.n, d.out_ch, self.rows.out, self.cols.out));
        let storage = dispatch2!(s1, l1, s2, l2, |x, w| self.forward(x, w, &[], d)?);
        Ok((storage, shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (gx, gw, _) = self.backward(x, w, None, res, grad)?;
        Ok((gx, gw))
    }
}

impl CustomOp3 for ConvOp {
    fn name(&self) -> &'static str {
        "deeprl-conv2d-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = self.dims(l1, l2)?;
        if !self.bias || l3.shape().elem_count() != d.out_ch {
            candle_core::bail!("conv kernel: bias {:?} for {} output channels", l3.dims(), d.out_ch)
        }
        let shape = Shape::from((d.n, d.out_ch, self.rows.out, self.cols.out));
        let storage = dispatch3!(s1, l1, s2, l2, s3, l3, |x, w, b| self.forward(x, w, b, d)?);
        Ok((storage, shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        self.backward(x, w, Some(b), res, grad)
    }
}

/// `dL/dx` from `(dL/dout, weight)`.
pub(crate) struct GradInput {
    pub op: ConvOp,
    pub input_shape: Shape,
}

impl CustomOp2 for GradInput {
    fn name(&self) -> &'static str {
        "deeprl-conv2d-grad-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = self.op.dims(&Layout::contiguous(self.input_shape.clone()), l2)?;
        let storage = dispatch2!(s1, l1, s2, l2, |g, w| self.op.grad_input(g, w, d)?);
        Ok((storage, self.input_shape.clone()))
    }
}

/// `dL/dweight` from `(x, dL/dout)`.
pub(crate) struct GradWeight {
    pub op: ConvOp,
    pub weight_shape: Shape,
}

impl CustomOp2 for GradWeight {
    fn name(&self) -> &'static str {
        "deeprl-conv2d-grad-weight"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = self.op.dims(l1, &Layout::contiguous(self.weight_shape.clone()))?;
        let storage = dispatch2!(s1, l1, s2, l2, |x, g| self.op.grad_weight(x, g, d)?);
        Ok((storage, self.weight_shape.clone()))
    }
}
