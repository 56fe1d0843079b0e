//! The CPU kernel of [`ConvTranspose2d`](super::ConvTranspose2d) without zero-stuffing.
//!
//! A transposed convolution is the input gradient of the direct convolution with the same
//! kernel, stride, padding and dilation that maps its output back to its input (Dumoulin
//! and Visin 2016, "A guide to convolution arithmetic", section 4; the DCGAN generator's
//! layer). With `conv` that direct convolution (input `H_out x W_out`, output
//! `H_in x W_in`, weight `[C_in, C_out / groups, kH, kW]`: exactly the transposed layer's
//! weight, no flip or swap), and `x` the transposed layer's input:
//!
//! * forward: `y = conv_input_grad(x, W) + b`: per image and group `cols = W_g^T x_g`
//!   (a GEMM over the `H_in W_in` input positions only), scattered onto `y` (col2im);
//! * backward: `dx = conv(dy, W)`, `dW = conv_weight_grad(dy, x)`, `db = sum dy`.
//!
//! Against the generic formulation (a stride-1 convolution over the input zero-stuffed by
//! the stride), the products run over `s_h s_w` times fewer columns and no zeros are
//! gathered. `output_padding` only enlarges `H_out`/`W_out`, which the scatter leaves at
//! the bias where no tap lands. The same three kernels as the convolution's (`fast`).

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

use super::fast::{ConvOp, Dims};
use super::fast_bias::bias_grad;
use super::fast_gemm::{contiguous, Element};
use super::fast_ops::{dispatch2, dispatch3, GradWeight};
use super::geometry::Axis;

/// The transposed convolution of `x` `[N, C_in, H_in, W_in]` with `weight`
/// `[C_in, C_out / groups, kH, kW]`, as the input gradient of the direct convolution over
/// `rows` x `cols` (input `H_out x W_out`, output `H_in x W_in`), plus an optional `bias`
/// `[C_out]` of `x`'s dtype; differentiable in every operand.
pub(crate) fn conv_transpose2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    groups: usize,
    rows: &Axis,
    cols: &Axis,
) -> Result<Tensor> {
    let weight = weight.to_dtype(x.dtype())?.contiguous()?;
    let op = TransposeOp { conv: ConvOp::plain(groups, *rows, *cols), bias: bias.is_some() };
    match bias {
        Some(b) => x.contiguous()?.apply_op3(&weight, &b.contiguous()?, op),
        None => x.contiguous()?.apply_op2(&weight, op),
    }
}

/// The transposed convolution as the input gradient of `conv`.
struct TransposeOp {
    conv: ConvOp,
    bias: bool,
}

impl TransposeOp {
    /// The direct convolution's sizes and the output shape, after checking that `x` is
    /// that convolution's output shape.
    fn dims(&self, x: &Layout, w: &Layout) -> Result<(Dims, Shape)> {
        let (n, c_in, h, wd) = x.shape().dims4()?;
        let (w_in, og, _, _) = w.shape().dims4()?;
        let (rows, cols) = (&self.conv.rows, &self.conv.cols);
        let shape = Shape::from((n, og * self.conv.groups, rows.n, cols.n));
        if c_in != w_in || h != rows.out || wd != cols.out {
            candle_core::bail!(
                "transposed conv kernel: input {:?} and weight {:?} do not match the geometry \
                 {:?}",
                x.dims(),
                w.dims(),
                self.conv
            )
        }
        Ok((self.conv.dims(&Layout::contiguous(shape.clone()), w)?, shape))
    }

    fn forward<T: Element>(&self, x: &[T], w: &[T], b: &[T], d: Dims, c: usize) -> Result<Vec<T>> {
        let mut y = self.conv.grad_input(x, w, d)?;
        if self.bias {
            let l = self.conv.rows.n * self.conv.cols.n;
            for (i, run) in y.chunks_exact_mut(l).enumerate() {
                let bias = b[i % c];
                run.iter_mut().for_each(|v| *v += bias);
            }
        }
        Ok(y)
    }

    fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let gx = if x.track_op() { Some(grad.apply_op2_no_bwd(w, &self.conv)?) } else { None };
        let gw = if w.track_op() {
            let op = GradWeight { op: self.conv, weight_shape: w.shape().clone() };
            Some(grad.apply_op2_no_bwd(x, &op)?)
        } else {
            None
        };
        let gb = bias_grad(b, &grad)?;
        Ok((gx, gw, gb))
    }
}

impl CustomOp2 for TransposeOp {
    fn name(&self) -> &'static str {
        "deeprl-conv-transpose2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        if self.bias {
            candle_core::bail!("transposed conv kernel: a bias takes three operands")
        }
        let (d, shape) = self.dims(l1, l2)?;
        let c = shape.dims()[1];
        let storage = dispatch2!(s1, l1, s2, l2, |x, w| self.forward(x, w, &[], d, c)?);
        Ok((storage, shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (gx, gw, _) = self.backward(x, w, None, grad)?;
        Ok((gx, gw))
    }
}

impl CustomOp3 for TransposeOp {
    fn name(&self) -> &'static str {
        "deeprl-conv-transpose2d-bias"
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
        let (d, shape) = self.dims(l1, l2)?;
        let c = shape.dims()[1];
        if !self.bias || l3.shape().elem_count() != c {
            candle_core::bail!("transposed conv kernel: bias {:?} for {c} channels", l3.dims())
        }
        let storage = dispatch3!(s1, l1, s2, l2, s3, l3, |x, w, b| self.forward(x, w, b, d, c)?);
        Ok((storage, shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        self.backward(x, w, Some(b), grad)
    }
}
