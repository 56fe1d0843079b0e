//! A convolution and the batch norm after it as one CPU op: `fusion(bn(conv(x)))`, with
//! `fusion` none, a ReLU, or the residual addition and a ReLU ([`Fusion`]), the units of
//! ResNet and of GoogLeNet's `BasicConv2d`.
//!
//! Separately, the convolution's output `z` is a graph node of its own, and candle's
//! backward gives its gradient a fresh zero tensor and adds the batch norm's `dz` into it
//! (two more full-size buffers, a fill and an add pass, and their page faults), before the
//! convolution's backward reads it. Here `z` stays inside the op (kept for the backward,
//! as the graph kept it), and the backward runs the batch norm's backward
//! ([`NormOp::backward`]) straight into the convolution's input and weight gradients
//! (`fast`). The arithmetic is exactly that of the two ops in sequence (the same kernels in
//! the same order), so the results equal the unfused path's.
//!
//! Operands: `x`, the parameters packed as `[conv weight (flat), bn weight, bn bias]` (a
//! custom op takes at most three operands; candle's `cat` backward splits the gradient back
//! onto the three variables), and with [`Fusion::AddRelu`] the residual. The batch
//! statistics are computed inside the op and handed back for the running averages.

use std::sync::{Arc, Mutex, PoisonError};

use candle_core::{
    CpuStorage, CustomOp2, CustomOp3, DType, Device, Layout, Result, Shape, Storage, Tensor,
    WithDType,
};

use super::fast::{ConvOp, Dims};
use super::fast_batch_norm::{Fusion, NormOp, Stats};
use super::fast_gemm::{contiguous, Element};
use super::fast_ops::{dispatch2, dispatch3};
use super::fast_relu::relu_grad;
use super::geometry::Axis;
use crate::simd::vectorized;

/// Per-channel `(mean, biased variance)`.
pub(crate) type Statistics = (Vec<f64>, Vec<f64>);

/// The batch norm's side of a [`ConvStage`].
pub(crate) struct NormParams {
    pub eps: f64,
    /// The running `(mean, biased var)` in evaluation; `None` in training (batch
    /// statistics).
    pub running: Option<Statistics>,
    pub weight: Tensor,
    pub bias: Tensor,
}

/// A convolution (no bias) and the batch norm after it, as the fused ops take them: the
/// convolution's weight `[O, C / groups, kH, kW]` and window geometry `rows` x `cols`.
pub(crate) struct ConvStage {
    pub weight: Tensor,
    pub groups: usize,
    pub rows: Axis,
    pub cols: Axis,
    pub norm: NormParams,
}

impl ConvStage {
    /// The stage's parameters in `dtype`, flat, in the packed order of the fused ops:
    /// convolution weight, batch-norm weight, batch-norm bias.
    pub(crate) fn params(&self, dtype: DType) -> Result<[Tensor; 3]> {
        Ok([
            self.weight.to_dtype(dtype)?.flatten_all()?,
            self.norm.weight.to_dtype(dtype)?,
            self.norm.bias.to_dtype(dtype)?,
        ])
    }
}

/// `fusion(bn(conv(x)))` for `x` `[N, C, H, W]` (CPU, f32 or f64) through `stage`, with
/// `residual` (the output's shape) for [`Fusion::AddRelu`]; differentiable in `x`, the
/// convolution's weight, the batch norm's weight and bias, and the residual. Returns the
/// output and, in training, the batch `(mean, biased var)`.
pub(crate) fn conv_norm(
    x: &Tensor,
    stage: ConvStage,
    fusion: Fusion,
    residual: Option<&Tensor>,
) -> Result<(Tensor, Option<Statistics>)> {
    let params = Tensor::cat(&stage.params(x.dtype())?, 0)?;
    let op = ConvNormOp::new(stage, fusion);
    let saved = op.saved.clone();
    let x = x.contiguous()?;
    let y = match (fusion, residual) {
        (Fusion::AddRelu, Some(r)) => x.apply_op3(&params, &r.contiguous()?, op)?,
        (Fusion::AddRelu, None) => candle_core::bail!("conv + batch norm kernel: residual missing"),
        _ => x.apply_op2(&params, op)?,
    };
    let stats = batch_statistics(&saved);
    Ok((y, stats))
}

/// The batch `(mean, biased var)` a training forward saved in `saved`; `None` in
/// evaluation.
pub(crate) fn batch_statistics(saved: &Mutex<Option<Saved>>) -> Option<Statistics> {
    match &*saved.lock().unwrap_or_else(PoisonError::into_inner) {
        Some(saved) if saved.norm.batch_stats() => {
            Some((saved.norm.mean.clone(), saved.var.clone()))
        }
        _ => None,
    }
}

/// What [`ConvNormOp::forward`] computes: the output `y` and what [`Saved`] keeps.
struct Forward<T> {
    y: Vec<T>,
    z: Vec<T>,
    norm: NormOp,
    var: Vec<f64>,
}

/// What the forward keeps for the backward.
pub(crate) struct Saved {
    /// The convolution's output (the batch norm's input).
    z: CpuStorage,
    norm: NormOp,
    /// The batch variance (for the running statistics).
    var: Vec<f64>,
}

/// One convolution and batch norm (and its fusion) as a custom op; also a building block
/// of the residual unit's op (`fast_residual`).
pub(crate) struct ConvNormOp {
    conv: ConvOp,
    weight_shape: Shape,
    eps: f64,
    running: Option<Statistics>,
    fusion: Fusion,
    /// Written by the forward, read by the backward (and by [`conv_norm`] for the batch
    /// statistics).
    pub(crate) saved: Arc<Mutex<Option<Saved>>>,
}

impl ConvNormOp {
    pub(crate) fn new(stage: ConvStage, fusion: Fusion) -> Self {
        Self {
            conv: ConvOp::plain(stage.groups, stage.rows, stage.cols),
            weight_shape: stage.weight.shape().clone(),
            eps: stage.norm.eps,
            running: stage.norm.running,
            fusion,
            saved: Arc::new(Mutex::new(None)),
        }
    }

    /// The length of the packed parameters: weight, batch-norm weight and bias.
    pub(crate) fn params_len(&self) -> usize {
        self.weight_shape.elem_count() + 2 * self.weight_shape.dims()[0]
    }

    /// The output shape `[N, O, H', W']` for the sizes `d`.
    pub(crate) fn out_shape(&self, d: &Dims) -> Shape {
        Shape::from((d.n, d.out_ch, self.conv.rows.out, self.conv.cols.out))
    }

    /// The convolution's sizes and the length of the packed parameters, checked against
    /// the operands.
    pub(crate) fn dims(
        &self,
        x: &Layout,
        params: &Layout,
        residual: Option<&Layout>,
    ) -> Result<Dims> {
        let d = self.conv.dims(x, &Layout::contiguous(self.weight_shape.clone()))?;
        let want = self.params_len();
        let out = [d.n, d.out_ch, self.conv.rows.out, self.conv.cols.out];
        if params.shape().elem_count() != want || residual.is_some_and(|r| r.dims() != out) {
            candle_core::bail!(
                "conv + batch norm kernel: parameters {:?} (want {want}) or residual {:?} (want \
                 {out:?}) do not match",
                params.dims(),
                residual.map(|r| r.dims())
            )
        }
        Ok(d)
    }

    /// The output, the convolution's output, the normalisation, the batch variance.
    fn forward<T: Element>(&self, x: &[T], params: &[T], r: &[T], d: Dims) -> Result<Forward<T>> {
        let (w, bn) = params.split_at(self.weight_shape.elem_count());
        let (bw, bb) = bn.split_at(d.out_ch);
        let z = self.conv.forward(x, w, &[], d)?;
        let ncl = (d.n, d.out_ch, d.l);
        let (mean, var) = match &self.running {
            Some((mean, var)) => (mean.clone(), var.clone()),
            None => {
                let mut stats = vectorized(
                    #[inline(always)]
                    || Stats::run(&z, ncl),
                );
                let var = stats.split_off(d.out_ch);
                (stats, var)
            }
        };
        let weight = bw.iter().map(|&v| WithDType::to_f64(v)).collect();
        let norm = NormOp::new(mean, &var, self.eps, weight, self.running.is_none(), self.fusion);
        let y = vectorized(
            #[inline(always)]
            || norm.forward(&z, bw, bb, r, ncl),
        );
        Ok(Forward { y, z, norm, var })
    }

    /// Runs [`Self::forward`], keeps what the backward needs in [`Self::saved`], and returns
    /// the output.
    pub(crate) fn forward_and_save<T: Element>(
        &self,
        x: &[T],
        params: &[T],
        r: &[T],
        d: Dims,
    ) -> Result<Vec<T>> {
        let Forward { y, z, norm, var } = self.forward(x, params, r, d)?;
        let saved = Saved { z: T::to_cpu_storage_owned(z), norm, var };
        *self.saved.lock().unwrap_or_else(PoisonError::into_inner) = Some(saved);
        Ok(y)
    }

    fn cpu_forward(
        &self,
        (s1, l1): (&CpuStorage, &Layout),
        (s2, l2): (&CpuStorage, &Layout),
        residual: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let d = self.dims(l1, l2, residual.map(|(_, l)| l))?;
        let shape = self.out_shape(&d);
        let y = match residual {
            Some((s3, l3)) => {
                dispatch3!(s1, l1, s2, l2, s3, l3, |x, p, r| self.forward_and_save(x, p, r, d)?)
            }
            None => dispatch2!(s1, l1, s2, l2, |x, p| self.forward_and_save(x, p, &[], d)?),
        };
        Ok((y, shape))
    }

    /// The input and parameter gradients (those asked for) from `x`, the packed parameters,
    /// the output gradient `g` and the output `y` (for the ReLU's mask; unread without a
    /// ReLU), and the batch norm's gradients, flat: `[dz, dr, d weight, d bias]`, where
    /// `dr`, the residual's gradient (the masked `g`), is there only with `want_residual`
    /// and [`Fusion::AddRelu`].
    #[allow(clippy::type_complexity)]
    pub(crate) fn backward<T: Element>(
        &self,
        (x, params, g, y): (&[T], &[T], &[T], &[T]),
        saved: &Saved,
        d: Dims,
        (want_x, want_params, want_residual): (bool, bool, bool),
    ) -> Result<(Option<Vec<T>>, Option<Vec<T>>, Vec<T>)> {
        let z = saved.z.as_slice::<T>()?;
        let ncl = (d.n, d.out_ch, d.l);
        let masked = (self.fusion != Fusion::None).then_some(y);
        let with_dr = want_residual && self.fusion == Fusion::AddRelu;
        let all = vectorized(
            #[inline(always)]
            || saved.norm.backward(z, g, masked, with_dr, ncl),
        );
        let nel = d.n * d.out_ch * d.l;
        let dz = &all[..nel];
        let dbn = &all[all.len() - 2 * d.out_ch..];
        let w = &params[..self.weight_shape.elem_count()];
        let gx = if want_x { Some(self.conv.grad_input(dz, w, d)?) } else { None };
        let gp = if want_params {
            let mut gp = self.conv.grad_weight(x, dz, d)?;
            gp.extend_from_slice(dbn);
            Some(gp)
        } else {
            None
        };
        Ok((gx, gp, all))
    }

    /// The backward of both forms: `(dx, dparams, dresidual)`.
    fn backward_tensors(
        &self,
        x: &Tensor,
        params: &Tensor,
        residual: Option<&Tensor>,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let (gx, gp) = backward_on_host(self, x, params, &grad, res)?;
        // The residual's gradient is the output gradient through the ReLU's mask.
        let gr = match residual {
            Some(r) if r.track_op() => Some(relu_grad(res, &grad)?),
            _ => None,
        };
        Ok((gx, gp, gr))
    }
}

impl HostBackward for ConvNormOp {
    fn host_backward<T: Element>(
        &self,
        slices: (&[T], &[T], &[T], &[T]),
        (x, params): (&Layout, &Layout),
        (want_x, want_params): (bool, bool),
    ) -> Result<HostGrads<T>> {
        let guard = self.saved.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(saved) = guard.as_ref() else {
            candle_core::bail!("conv + batch norm kernel: backward before forward")
        };
        let d = self.dims(x, params, None)?;
        let (gx, gp, _) = self.backward(slices, saved, d, (want_x, want_params, false))?;
        Ok((gx, gp))
    }
}

/// The gradients of `x` and of the packed parameters, those asked for.
pub(crate) type HostGrads<T> = (Option<Vec<T>>, Option<Vec<T>>);

/// An op whose backward runs on the host slices of `(x, params, grad, y)`: the conv + batch
/// norm op and the residual unit's op.
pub(crate) trait HostBackward {
    /// The gradients of `x` and of the packed parameters (those asked for in `want`) from
    /// the slices of `(x, params, grad, y)` and the layouts of `x` and the parameters.
    fn host_backward<T: Element>(
        &self,
        slices: (&[T], &[T], &[T], &[T]),
        layouts: (&Layout, &Layout),
        want: (bool, bool),
    ) -> Result<HostGrads<T>>;
}

/// Runs `op`'s [`HostBackward`] on the CPU storages of `x`, `params`, `grad` (contiguous) and
/// the output `y` (one dtype, f32 or f64), for the operands candle tracks, and returns the
/// gradients as tensors of `x`'s and `params`' shapes.
pub(crate) fn backward_on_host(
    op: &impl HostBackward,
    x: &Tensor,
    params: &Tensor,
    grad: &Tensor,
    y: &Tensor,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let want = (x.track_op(), params.track_op());
    let (xs, xl) = x.storage_and_layout();
    let (ps, pl) = params.storage_and_layout();
    let (gs, gl) = grad.storage_and_layout();
    let (ys, yl) = y.storage_and_layout();
    let (Storage::Cpu(xs), Storage::Cpu(ps), Storage::Cpu(gs), Storage::Cpu(ys)) =
        (&*xs, &*ps, &*gs, &*ys)
    else {
        candle_core::bail!("conv kernel backward: CPU tensors expected")
    };
    macro_rules! run {
        ($t:ty) => {{
            let slices = (
                contiguous::<$t>(xs, xl)?,
                contiguous::<$t>(ps, pl)?,
                contiguous::<$t>(gs, gl)?,
                contiguous::<$t>(ys, yl)?,
            );
            let (gx, gp) = op.host_backward(slices, (xl, pl), want)?;
            let cpu = Device::Cpu;
            let gx = gx.map(|v| Tensor::from_vec(v, xl.shape(), &cpu)).transpose()?;
            let gp = gp.map(|v| Tensor::from_vec(v, pl.shape(), &cpu)).transpose()?;
            Ok((gx, gp))
        }};
    }
    match xs {
        CpuStorage::F32(_) => run!(f32),
        CpuStorage::F64(_) => run!(f64),
        _ => candle_core::bail!("conv kernel backward: f32 or f64 operands expected"),
    }
}

impl CustomOp2 for ConvNormOp {
    fn name(&self) -> &'static str {
        "deeprl-conv-batch-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        if self.fusion == Fusion::AddRelu {
            candle_core::bail!("conv + batch norm kernel: the residual form takes three operands")
        }
        self.cpu_forward((s1, l1), (s2, l2), None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        params: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (gx, gp, _) = self.backward_tensors(x, params, None, res, grad)?;
        Ok((gx, gp))
    }
}

impl CustomOp3 for ConvNormOp {
    fn name(&self) -> &'static str {
        "deeprl-conv-batch-norm-add-relu"
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
        if self.fusion != Fusion::AddRelu {
            candle_core::bail!("conv + batch norm kernel: only the residual form takes three")
        }
        self.cpu_forward((s1, l1), (s2, l2), Some((s3, l3)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        params: &Tensor,
        residual: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        self.backward_tensors(x, params, Some(residual), res, grad)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Module, Tensor};
    use candle_nn::{VarBuilder, VarMap};

    use crate::conv::{BatchNorm, Conv2d, Conv2dConfig};
    use crate::gradcheck::check_gradients;
    use crate::test_util::{max_diff, var_scaled};

    /// A convolution (no bias) and a batch norm over its `o` outputs, f64, with seeded
    /// weights, affine parameters and running statistics.
    fn layers(config: Conv2dConfig, map: &VarMap) -> (Conv2d, BatchNorm) {
        let vb = VarBuilder::from_varmap(map, DType::F64, &Device::Cpu);
        let conv = Conv2d::new(config.bias(false), vb.pp("conv")).unwrap();
        let o = config.out_channels;
        let bn = BatchNorm::new_2d(o, vb.pp("bn")).unwrap().with_hyperparameters(1e-3, 0.3);
        let data = map.data().lock().unwrap();
        let fan_in = (config.in_channels / config.groups * 9) as f64;
        data["conv.weight"]
            .set(
                &(var_scaled(data["conv.weight"].dims(), 1, 1.0, 0.0).as_tensor() / fan_in.sqrt())
                    .unwrap(),
            )
            .unwrap();
        for (i, name) in ["bn.weight", "bn.bias", "bn.running_mean"].iter().enumerate() {
            data[*name].set(var_scaled(&[o], 10 + i as u64, 1.0, 0.0).as_tensor()).unwrap();
        }
        data["bn.running_var"].set(var_scaled(&[o], 13, 0.5, 1.0).as_tensor()).unwrap();
        (conv, bn.unwrap())
    }

    /// The three fusions, fused (one op) and as the two layers in sequence.
    fn run(
        conv: &Conv2d,
        bn: &BatchNorm,
        x: &Tensor,
        r: &Tensor,
        fusion: usize,
        fused: bool,
        train: bool,
    ) -> candle_core::Result<Tensor> {
        match (fusion, fused) {
            (0, true) => bn.forward_conv_t(conv, x, train),
            (1, true) => bn.forward_conv_relu_t(conv, x, train),
            (_, true) => bn.forward_conv_add_relu_t(conv, x, r, train),
            (0, false) => candle_core::ModuleT::forward_t(bn, &conv.forward(x)?, train),
            (1, false) => bn.forward_relu_t(&conv.forward(x)?, train),
            (_, false) => bn.forward_add_relu_t(&conv.forward(x)?, r, train),
        }
    }

    /// The fused op gives the two layers' outputs, running statistics and gradients (input,
    /// convolution weight, batch-norm weight and bias, residual): on an im2col geometry
    /// (strided, 3 channels) and on a shifted-GEMM one (16 channels, 16 columns, "same"),
    /// in training and evaluation, for each fusion.
    #[test]
    fn fused_conv_batch_norm_equals_the_two_layers() {
        let configs = [
            ([2, 3, 6, 5], Conv2dConfig::new(3, 4, 3).stride(2).padding(1)),
            ([2, 16, 4, 16], Conv2dConfig::new(16, 16, 3).padding(1)),
        ];
        for (xs, config) in configs {
            for train in [true, false] {
                for fusion in 0..3 {
                    let (map_f, map_u) = (VarMap::new(), VarMap::new());
                    let ((cf, bf), (cu, bu)) = (layers(config, &map_f), layers(config, &map_u));
                    let x = var_scaled(&xs, 2, 1.0, 0.2);
                    let out = cf.forward(x.as_tensor()).unwrap().dims().to_vec();
                    let r = var_scaled(&out, 3, 1.0, 0.0);
                    let u = var_scaled(&out, 4, 1.0, 0.0).as_tensor().detach();
                    let at = format!("{xs:?} train {train} fusion {fusion}");
                    let yf = run(&cf, &bf, x.as_tensor(), r.as_tensor(), fusion, true, train);
                    let yu = run(&cu, &bu, x.as_tensor(), r.as_tensor(), fusion, false, train);
                    let (yf, yu) = (yf.unwrap(), yu.unwrap());
                    assert!(max_diff(&yf, &yu) < 1e-12, "{at}: outputs differ");
                    let gf = yf.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
                    let gu = yu.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
                    for v in [&x, &r] {
                        match (gf.get(v), gu.get(v)) {
                            (Some(a), Some(b)) => assert!(max_diff(a, b) < 1e-12, "{at}"),
                            (None, None) => assert_ne!(fusion, 2, "{at}"),
                            _ => panic!("{at}: a gradient is missing"),
                        }
                    }
                    let (pf, pu) = (map_f.data().lock().unwrap(), map_u.data().lock().unwrap());
                    for name in ["conv.weight", "bn.weight", "bn.bias"] {
                        let d = max_diff(gf.get(&pf[name]).unwrap(), gu.get(&pu[name]).unwrap());
                        assert!(d < 1e-12, "{at}: {name} gradients differ by {d}");
                    }
                    for name in ["bn.running_mean", "bn.running_var"] {
                        let d = max_diff(pf[name].as_tensor(), pu[name].as_tensor());
                        assert!(d < 1e-14, "{at}: {name} differs by {d}");
                    }
                }
            }
        }
    }

    /// The fused backward against central finite differences in f64 (input, convolution
    /// weight, batch-norm weight and bias, residual), through the ReLU and the residual form.
    #[test]
    fn fused_conv_batch_norm_gradients_match_finite_differences() {
        for train in [true, false] {
            let map = VarMap::new();
            let (conv, bn) = layers(Conv2dConfig::new(2, 3, 3).padding(1), &map);
            let x = var_scaled(&[2, 2, 3, 4], 21, 1.0, 0.3);
            let r = var_scaled(&[2, 3, 3, 4], 22, 1.0, 0.0);
            let u = var_scaled(&[2, 3, 3, 4], 23, 1.0, 0.0).as_tensor().detach();
            let mut vars = vec![x.clone(), r.clone()];
            {
                let data = map.data().lock().unwrap();
                vars.extend(
                    ["conv.weight", "bn.weight", "bn.bias"].iter().map(|n| data[*n].clone()),
                );
            }
            let f = || {
                let a = bn.forward_conv_relu_t(&conv, x.as_tensor(), train)?;
                let b = bn.forward_conv_add_relu_t(&conv, x.as_tensor(), r.as_tensor(), train)?;
                (a + b)?.mul(&u)
            };
            let report = check_gradients(&vars, f, 1e-6, 1e-7, 1e-5).unwrap();
            assert!(report.passed(), "train {train}: {report:?}");
        }
    }
}
