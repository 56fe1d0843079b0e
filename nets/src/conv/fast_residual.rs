//! ResNet's basic unit as one CPU op: `y = relu(bn2(conv2(relu(bn1(conv1(x))))) + s)`, with
//! the shortcut `s` the identity or a projection `bnp(convp(x))`, built from the three
//! convolution + batch-norm stages of `fast_conv_norm` ([`ConvNormOp`]).
//!
//! As two or three ops, the unit's hidden map `h` and its input `x` are graph nodes with
//! two consumers (`x`: the first convolution and the shortcut). candle's backward gives
//! every such edge a fresh zero tensor and adds the op's gradient into it: for `h` a
//! zero-fill and an add, for `x` a zero-fill and two adds, each a full pass over a map
//! (with its allocation and page faults), plus a pass for the ReLU mask of the residual's
//! gradient. Inside one op the residual's gradient comes out of the second batch norm's
//! backward sweep (`dr`, the masked output gradient) and is added once into the first
//! convolution's input gradient (or runs through the projection's backward first), and `h`
//! is kept for the backward, as the graph kept it.
//!
//! The arithmetic is that of the separate ops, in the same order, and the two terms of the
//! input gradient are added once either way (candle adds them to zero first, which changes
//! nothing), so the results equal the unfused path's bit for bit.
//!
//! Operands: `x` and the three (or two) stages' parameters packed as `[conv1 weight, bn1
//! weight, bn1 bias, conv2 weight, bn2 weight, bn2 bias, (projection weight, its batch-norm
//! weight and bias)]`: candle's `cat` backward splits the gradient back onto the variables.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

use super::fast::Dims;
use super::fast_batch_norm::Fusion;
use super::fast_conv_norm::{
    backward_on_host, batch_statistics, ConvNormOp, ConvStage, HostBackward, HostGrads, Saved,
    Statistics,
};
use super::fast_gemm::{contiguous, Element};
use super::fast_ops::dispatch2;
use crate::simd::vectorized;

/// `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))` for `x` `[N, C, H, W]` (CPU, f32
/// or f64), the shortcut being `projection` (`bnp(convp(x))`) or the identity;
/// differentiable in `x` and every stage's parameters. Returns the output and, in
/// training, the batch `(mean, biased var)` of each stage (conv1, conv2, projection).
pub(crate) fn residual_unit(
    x: &Tensor,
    conv1: ConvStage,
    conv2: ConvStage,
    projection: Option<ConvStage>,
) -> Result<(Tensor, Vec<Option<Statistics>>)> {
    let dtype = x.dtype();
    let mut params = Vec::with_capacity(9);
    for stage in [Some(&conv1), Some(&conv2), projection.as_ref()].into_iter().flatten() {
        params.extend(stage.params(dtype)?);
    }
    let params = Tensor::cat(&params, 0)?;
    let op = ResidualOp {
        conv1: ConvNormOp::new(conv1, Fusion::Relu),
        conv2: ConvNormOp::new(conv2, Fusion::AddRelu),
        projection: projection.map(|p| ConvNormOp::new(p, Fusion::None)),
        hidden: Arc::new(Mutex::new(None)),
    };
    let saved: Vec<_> = op.stages().map(|s| s.saved.clone()).collect();
    let y = x.contiguous()?.apply_op2(&params, op)?;
    Ok((y, saved.iter().map(|s| batch_statistics(s)).collect()))
}

struct ResidualOp {
    conv1: ConvNormOp,
    conv2: ConvNormOp,
    projection: Option<ConvNormOp>,
    /// The hidden map `h` (conv1's stage output), written by the forward for the backward.
    hidden: Arc<Mutex<Option<CpuStorage>>>,
}

/// The sizes of the three stages.
struct UnitDims {
    d1: Dims,
    d2: Dims,
    dp: Option<Dims>,
    /// The lengths of conv1's and conv2's packed parameters.
    p1: usize,
    p2: usize,
}

/// Runs `f` on what `op`'s forward saved.
fn with_saved<R>(op: &ConvNormOp, f: impl FnOnce(&Saved) -> Result<R>) -> Result<R> {
    match op.saved.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
        Some(saved) => f(saved),
        None => candle_core::bail!("residual unit kernel: backward before forward"),
    }
}

/// A flat layout of `len` elements.
fn flat(len: usize) -> Layout {
    Layout::contiguous(Shape::from(len))
}

impl ResidualOp {
    fn stages(&self) -> impl Iterator<Item = &ConvNormOp> {
        [Some(&self.conv1), Some(&self.conv2), self.projection.as_ref()].into_iter().flatten()
    }

    /// The stages' sizes, checked against the operands.
    fn dims(&self, x: &Layout, params: &Layout) -> Result<UnitDims> {
        let lens: Vec<usize> = self.stages().map(ConvNormOp::params_len).collect();
        if params.shape().elem_count() != lens.iter().sum::<usize>() {
            candle_core::bail!(
                "residual unit kernel: parameters {:?} do not match the stages ({lens:?})",
                params.dims()
            )
        }
        let d1 = self.conv1.dims(x, &flat(lens[0]), None)?;
        let h = Layout::contiguous(self.conv1.out_shape(&d1));
        let (dp, shortcut) = match &self.projection {
            Some(p) => {
                let dp = p.dims(x, &flat(lens[2]), None)?;
                (Some(dp), Layout::contiguous(p.out_shape(&dp)))
            }
            None => (None, x.clone()),
        };
        let d2 = self.conv2.dims(&h, &flat(lens[1]), Some(&shortcut))?;
        Ok(UnitDims { d1, d2, dp, p1: lens[0], p2: lens[1] })
    }

    /// The output; keeps `h` and each stage's saved state for the backward.
    fn forward<T: Element>(&self, x: &[T], params: &[T], d: &UnitDims) -> Result<Vec<T>> {
        let (p1, rest) = params.split_at(d.p1);
        let (p2, pp) = rest.split_at(d.p2);
        let h = self.conv1.forward_and_save(x, p1, &[], d.d1)?;
        let shortcut = match (&self.projection, d.dp) {
            (Some(p), Some(dp)) => Cow::Owned(p.forward_and_save(x, pp, &[], dp)?),
            _ => Cow::Borrowed(x),
        };
        let y = self.conv2.forward_and_save(&h, p2, &shortcut, d.d2)?;
        *self.hidden.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(T::to_cpu_storage_owned(h));
        Ok(y)
    }

    /// The input gradient (with `want_x`) and the packed parameters' gradient (with
    /// `want_params`) from `x`, the packed parameters, the output gradient `g` and the
    /// output `y`.
    fn backward<T: Element>(
        &self,
        (x, params, g, y): (&[T], &[T], &[T], &[T]),
        d: &UnitDims,
        (want_x, want_params): (bool, bool),
    ) -> Result<HostGrads<T>> {
        let (p1, rest) = params.split_at(d.p1);
        let (p2, pp) = rest.split_at(d.p2);
        let hidden = self.hidden.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(h) = hidden.as_ref() else {
            candle_core::bail!("residual unit kernel: backward before forward")
        };
        let h = h.as_slice::<T>()?;
        // dh, dW2, and [dz2, dr, d bn2]: `dr` is the residual's gradient.
        let (dh, gp2, norm2) = with_saved(&self.conv2, |s| {
            self.conv2.backward((h, p2, g, y), s, d.d2, (true, want_params, true))
        })?;
        let Some(dh) = dh else { candle_core::bail!("residual unit kernel: no hidden gradient") };
        let dr = &norm2[y.len()..2 * y.len()];
        let (gx, gp1, _) = with_saved(&self.conv1, |s| {
            self.conv1.backward((x, p1, &dh, h), s, d.d1, (want_x, want_params, false))
        })?;
        let (gx_shortcut, gpp) = match (&self.projection, d.dp) {
            (Some(p), Some(dp)) => {
                // No ReLU after the projection's batch norm: its output is not read.
                let (gx, gp, _) = with_saved(p, |s| {
                    p.backward((x, pp, dr, &[]), s, dp, (want_x, want_params, false))
                })?;
                (gx.map(Cow::Owned), gp)
            }
            _ => (Some(Cow::Borrowed(dr)), None),
        };
        let gx = match (gx, gx_shortcut) {
            (Some(mut gx), Some(gs)) => {
                vectorized(
                    #[inline(always)]
                    || gx.iter_mut().zip(gs.iter()).for_each(|(a, &b)| *a += b),
                );
                Some(gx)
            }
            _ => None,
        };
        let gp = match (gp1, gp2) {
            (Some(mut gp), Some(gp2)) => {
                gp.extend_from_slice(&gp2);
                gp.extend_from_slice(gpp.as_deref().unwrap_or(&[]));
                Some(gp)
            }
            _ => None,
        };
        Ok((gx, gp))
    }
}

impl HostBackward for ResidualOp {
    fn host_backward<T: Element>(
        &self,
        slices: (&[T], &[T], &[T], &[T]),
        (x, params): (&Layout, &Layout),
        want: (bool, bool),
    ) -> Result<HostGrads<T>> {
        self.backward(slices, &self.dims(x, params)?, want)
    }
}

impl CustomOp2 for ResidualOp {
    fn name(&self) -> &'static str {
        "deeprl-residual-unit"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = self.dims(l1, l2)?;
        let shape = self.conv2.out_shape(&d.d2);
        let y = dispatch2!(s1, l1, s2, l2, |x, p| self.forward(x, p, &d)?);
        Ok((y, shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        params: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        backward_on_host(self, x, params, &grad.contiguous()?, res)
    }
}
