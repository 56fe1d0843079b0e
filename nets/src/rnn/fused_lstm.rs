//! The fused CPU path of the LSTM recurrence: one custom operation runs all `T` steps of one
//! layer and direction, with an explicit backward pass (backpropagation through time).
//!
//! The generic path builds about fifteen candle ops per step, each allocating, and runs the
//! gate nonlinearities on strided views. Here, given the input projection
//! `xp = x W_ih^T + b_ih + b_hh` for every step (one matmul, computed by candle outside, so its
//! gradient flows through candle's autograd), each step is one GEMM `z = xp_t + h W_hh^T`
//! (the `gemm` crate candle itself uses) and one pass over the gates, into buffers allocated
//! once per call. The forward pass keeps the activated gates and the cell states; the backward
//! pass walks the steps in reverse:
//!
//! ```text
//! dh = dout_t + dh_next            do = dh ⊙ tanh(c_t)
//! dc = dc_next + dh ⊙ o ⊙ (1 - tanh²(c_t))
//! dz_i = dc ⊙ g ⊙ i(1-i)   dz_f = dc ⊙ c_{t-1} ⊙ f(1-f)   dz_g = dc ⊙ i ⊙ (1-g²)   dz_o = do ⊙ o(1-o)
//! dh_next = dz W_hh        dc_next = dc ⊙ f
//! dW_hh = sum_t dz_t^T h_{t-1}   (one GEMM over all steps at the end)
//! ```
//!
//! f64 uses the standard library's `exp`/`tanh` (the float64 conformance tolerance is 1e-10);
//! f32 uses a branch-free exponential (Cephes' `expf` polynomial, about 1e-7 relative error)
//! that the compiler vectorises, for sigmoid and tanh. GEMMs run on one thread. Other devices
//! and dtypes take the generic path.

use std::sync::Mutex;

use crate::matmul::matmul;
use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp3, DType, Device, Layout, Result, Shape, Storage,
    Tensor, WithDType,
};

/// The element types of the fused path.
trait Elem: WithDType + num_traits::Float {
    fn sigmoid(x: Self) -> Self;
    fn tanh_(x: Self) -> Self;
    fn save(gates: Vec<Self>, cells: Vec<Self>) -> Saved;
    fn saved(s: &Saved) -> Option<(&[Self], &[Self])>;
}

/// Branch-free `e^x` for f32: `2^n p(r)` with `x = n ln2 + r`, `|r| <= ln2/2`, and Cephes'
/// degree-6 polynomial; inputs clamped to `[-87, 88]` (the normal range). The rounding of
/// `x log2(e)` uses the `1.5 * 2^23` trick, whose low mantissa bits then hold `n`, so the
/// whole function is float and integer arithmetic the compiler vectorises.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5; // Cephes: 5.0000001201e-1, which is 0.5 in f32
    p = p * r * r + r + 1.0;
    let two_n = f32::from_bits(t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23);
    two_n * p
}

impl Elem for f32 {
    #[inline(always)]
    fn sigmoid(x: f32) -> f32 {
        1.0 / (1.0 + exp_f32(-x))
    }
    #[inline(always)]
    fn tanh_(x: f32) -> f32 {
        1.0 - 2.0 / (exp_f32(2.0 * x) + 1.0)
    }
    fn save(gates: Vec<f32>, cells: Vec<f32>) -> Saved {
        Saved::F32(gates, cells)
    }
    fn saved(s: &Saved) -> Option<(&[f32], &[f32])> {
        match s {
            Saved::F32(g, c) => Some((g, c)),
            Saved::F64(..) => None,
        }
    }
}

impl Elem for f64 {
    #[inline(always)]
    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }
    #[inline(always)]
    fn tanh_(x: f64) -> f64 {
        x.tanh()
    }
    fn save(gates: Vec<f64>, cells: Vec<f64>) -> Saved {
        Saved::F64(gates, cells)
    }
    fn saved(s: &Saved) -> Option<(&[f64], &[f64])> {
        match s {
            Saved::F64(g, c) => Some((g, c)),
            Saved::F32(..) => None,
        }
    }
}

/// What the forward pass keeps for the backward pass: the activated gates `(T, N, 4H)` in
/// the order i, f, g, o, and the cell states `(T, N, H)`, by time index.
#[derive(Debug)]
enum Saved {
    F32(Vec<f32>, Vec<f32>),
    F64(Vec<f64>, Vec<f64>),
}

/// The gate pass of one forward step for `n` rows: activates `z` `(n, 4H)` in place (i, f,
/// g, o), updates the cell and hidden states `(n, H)` and writes them to `cell_t`, `out_t`.
#[inline(always)]
fn gates_forward_impl<F: Elem>(
    z: &mut [F],
    c_state: &mut [F],
    h_state: &mut [F],
    out_t: &mut [F],
    cell_t: &mut [F],
    n: usize,
    h: usize,
) {
    for b in 0..n {
        // Every slice re-cut to exactly `h` elements, so the loop has no bounds checks and
        // vectorises.
        let zb = &mut z[b * 4 * h..][..4 * h];
        let (zi, rest) = zb.split_at_mut(h);
        let (zf, rest) = rest.split_at_mut(h);
        let (zg, zo) = rest.split_at_mut(h);
        let (zi, zf, zg, zo) = (&mut zi[..h], &mut zf[..h], &mut zg[..h], &mut zo[..h]);
        let cs = &mut c_state[b * h..][..h];
        let hs = &mut h_state[b * h..][..h];
        let ot = &mut out_t[b * h..][..h];
        let ct = &mut cell_t[b * h..][..h];
        forward_row(zi, zf, zg, zo, cs, hs, ot, ct);
    }
}

/// One row of [`gates_forward_impl`]. The slices are separate arguments so that the compiler
/// knows they do not alias and vectorises the loop.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn forward_row<F: Elem>(
    zi: &mut [F],
    zf: &mut [F],
    zg: &mut [F],
    zo: &mut [F],
    cs: &mut [F],
    hs: &mut [F],
    ot: &mut [F],
    ct: &mut [F],
) {
    let h = zi.len();
    let (zf, zg, zo, cs, hs, ot, ct) = (
        &mut zf[..h],
        &mut zg[..h],
        &mut zo[..h],
        &mut cs[..h],
        &mut hs[..h],
        &mut ot[..h],
        &mut ct[..h],
    );
    for j in 0..h {
        let i = F::sigmoid(zi[j]);
        let f = F::sigmoid(zf[j]);
        let g = F::tanh_(zg[j]);
        let o = F::sigmoid(zo[j]);
        let c = f * cs[j] + i * g;
        let hv = o * F::tanh_(c);
        (zi[j], zf[j], zg[j], zo[j]) = (i, f, g, o);
        cs[j] = c;
        ct[j] = c;
        hs[j] = hv;
        ot[j] = hv;
    }
}

/// The gate pass of one backward step (see the module documentation): writes `dz` `(n, 4H)`
/// and replaces `dc` by the cell gradient of the previous step.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gates_backward_impl<F: Elem>(
    gates: &[F],
    cells: &[F],
    c_prev: &[F],
    dout: &[F],
    dh_next: &[F],
    dc: &mut [F],
    dz: &mut [F],
    n: usize,
    h: usize,
) {
    for b in 0..n {
        let gb = &gates[b * 4 * h..][..4 * h];
        let (gi, gf, gg, go) = (&gb[..h], &gb[h..2 * h], &gb[2 * h..3 * h], &gb[3 * h..4 * h]);
        let dzb = &mut dz[b * 4 * h..][..4 * h];
        let (dzi, rest) = dzb.split_at_mut(h);
        let (dzf, rest) = rest.split_at_mut(h);
        let (dzg, dzo) = rest.split_at_mut(h);
        let (dzi, dzf, dzg, dzo) = (&mut dzi[..h], &mut dzf[..h], &mut dzg[..h], &mut dzo[..h]);
        let cb = &cells[b * h..][..h];
        let cpb = &c_prev[b * h..][..h];
        let dob = &dout[b * h..][..h];
        let dhb = &dh_next[b * h..][..h];
        let dcb = &mut dc[b * h..][..h];
        backward_row([gi, gf, gg, go], cb, cpb, dob, dhb, dcb, [dzi, dzf, dzg, dzo]);
    }
}

/// One row of [`gates_backward_impl`], its slices separate arguments (see [`forward_row`]).
#[inline(always)]
fn backward_row<F: Elem>(
    [gi, gf, gg, go]: [&[F]; 4],
    cb: &[F],
    cpb: &[F],
    dob: &[F],
    dhb: &[F],
    dcb: &mut [F],
    [dzi, dzf, dzg, dzo]: [&mut [F]; 4],
) {
    let one = F::one();
    let h = dcb.len();
    let (gi, gf, gg, go, cb, cpb, dob, dhb) =
        (&gi[..h], &gf[..h], &gg[..h], &go[..h], &cb[..h], &cpb[..h], &dob[..h], &dhb[..h]);
    let (dzi, dzf, dzg, dzo) = (&mut dzi[..h], &mut dzf[..h], &mut dzg[..h], &mut dzo[..h]);
    for j in 0..h {
        let (i, f, g, o) = (gi[j], gf[j], gg[j], go[j]);
        let tc = F::tanh_(cb[j]);
        let dh = dob[j] + dhb[j];
        let d_o = dh * tc;
        let dcc = dcb[j] + dh * o * (one - tc * tc);
        dzi[j] = dcc * g * i * (one - i);
        dzf[j] = dcc * cpb[j] * f * (one - f);
        dzg[j] = dcc * i * (one - g * g);
        dzo[j] = d_o * o * (one - o);
        dcb[j] = dcc * f;
    }
}

/// [`gates_forward_impl`] compiled for AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gates_forward_avx2<F: Elem>(
    z: &mut [F],
    c_state: &mut [F],
    h_state: &mut [F],
    out_t: &mut [F],
    cell_t: &mut [F],
    n: usize,
    h: usize,
) {
    gates_forward_impl(z, c_state, h_state, out_t, cell_t, n, h)
}

/// [`gates_backward_impl`] compiled for AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn gates_backward_avx2<F: Elem>(
    gates: &[F],
    cells: &[F],
    c_prev: &[F],
    dout: &[F],
    dh_next: &[F],
    dc: &mut [F],
    dz: &mut [F],
    n: usize,
    h: usize,
) {
    gates_backward_impl(gates, cells, c_prev, dout, dh_next, dc, dz, n, h)
}

/// True when the CPU runs the AVX2 + FMA versions (detected once by the standard library).
fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn gates_forward<F: Elem>(
    z: &mut [F],
    c_state: &mut [F],
    h_state: &mut [F],
    out_t: &mut [F],
    cell_t: &mut [F],
    n: usize,
    h: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        return unsafe { gates_forward_avx2(z, c_state, h_state, out_t, cell_t, n, h) };
    }
    gates_forward_impl(z, c_state, h_state, out_t, cell_t, n, h)
}

#[allow(clippy::too_many_arguments)]
fn gates_backward<F: Elem>(
    gates: &[F],
    cells: &[F],
    c_prev: &[F],
    dout: &[F],
    dh_next: &[F],
    dc: &mut [F],
    dz: &mut [F],
    n: usize,
    h: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        return unsafe { gates_backward_avx2(gates, cells, c_prev, dout, dh_next, dc, dz, n, h) };
    }
    gates_backward_impl(gates, cells, c_prev, dout, dh_next, dc, dz, n, h)
}

/// The custom op: arguments `xp` `(T, N, 4H)`, `w_hh` `(4H, H)`, `[h0; c0]` `(2, N, H)`;
/// result `(T + 1, N, H)`: the outputs `h_t` at their time indices, then `c_n`.
#[derive(Debug)]
struct LstmSequence {
    reverse: bool,
    saved: Mutex<Option<Saved>>,
}

fn contiguous<'a, F: WithDType>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [F]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&s.as_slice::<F>()?[a..b]),
        None => candle_core::bail!("fused LSTM: {what} is not contiguous"),
    }
}

impl LstmSequence {
    fn order(&self, t: usize, step: usize) -> usize {
        if self.reverse {
            t - 1 - step
        } else {
            step
        }
    }

    fn forward<F: Elem>(
        &self,
        xp: &[F],
        w: &[F],
        hc0: &[F],
        shape: (usize, usize, usize),
    ) -> Result<Vec<F>> {
        let (t, n, h) = shape;
        let (nh, g4) = (n * h, 4 * h);
        let mut out = vec![F::zero(); (t + 1) * nh];
        let mut gates = xp.to_vec();
        let mut cells = vec![F::zero(); t * nh];
        let mut h_state = hc0[..nh].to_vec();
        let mut c_state = hc0[nh..2 * nh].to_vec();
        // W_hh^T `(H, 4H)` row-major once per call: the per-step GEMM then reads its right
        // operand with unit stride, about 20% faster than through transposed strides.
        let mut w_t = vec![F::zero(); h * g4];
        for (r, row) in w.chunks_exact(h).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                w_t[c * g4 + r] = v;
            }
        }
        for step in 0..t {
            let ti = self.order(t, step);
            let z = &mut gates[ti * n * g4..(ti + 1) * n * g4];
            matmul((n, g4, h), z, true, &h_state, false, &w_t, false);
            let out_t = &mut out[ti * nh..(ti + 1) * nh];
            let cell_t = &mut cells[ti * nh..(ti + 1) * nh];
            gates_forward(z, &mut c_state, &mut h_state, out_t, cell_t, n, h);
        }
        out[t * nh..].copy_from_slice(&c_state);
        *self
            .saved
            .lock()
            .map_err(|_| candle_core::Error::Msg("fused LSTM lock poisoned".into()))? =
            Some(F::save(gates, cells));
        Ok(out)
    }

    /// Returns `(dxp, dw_hh, d[h0; c0])`.
    #[allow(clippy::type_complexity)]
    fn backward<F: Elem>(
        &self,
        w: &[F],
        hc0: &[F],
        res: &[F],
        grad: &[F],
        shape: (usize, usize, usize),
    ) -> Result<(Vec<F>, Vec<F>, Vec<F>)> {
        let (t, n, h) = shape;
        let (nh, g4) = (n * h, 4 * h);
        let guard = self
            .saved
            .lock()
            .map_err(|_| candle_core::Error::Msg("fused LSTM lock poisoned".into()))?;
        let Some((gates, cells)) = guard.as_ref().and_then(F::saved) else {
            candle_core::bail!("fused LSTM: backward before forward")
        };
        let mut dxp = vec![F::zero(); t * n * g4];
        let mut h_prev_all = vec![F::zero(); t * nh];
        let mut dh_next = vec![F::zero(); nh];
        let mut dc = grad[t * nh..(t + 1) * nh].to_vec();
        for step in (0..t).rev() {
            let ti = self.order(t, step);
            let (h_prev, c_prev) = if step == 0 {
                (&hc0[..nh], &hc0[nh..2 * nh])
            } else {
                let tp = self.order(t, step - 1);
                (&res[tp * nh..(tp + 1) * nh], &cells[tp * nh..(tp + 1) * nh])
            };
            h_prev_all[ti * nh..(ti + 1) * nh].copy_from_slice(h_prev);
            let dz = &mut dxp[ti * n * g4..(ti + 1) * n * g4];
            let gt = &gates[ti * n * g4..(ti + 1) * n * g4];
            let ct = &cells[ti * nh..(ti + 1) * nh];
            let dout = &grad[ti * nh..(ti + 1) * nh];
            gates_backward(gt, ct, c_prev, dout, &dh_next, &mut dc, dz, n, h);
            matmul((n, h, g4), &mut dh_next, false, dz, false, w, false);
        }
        let mut dw = vec![F::zero(); g4 * h];
        matmul((g4, h, t * n), &mut dw, false, &dxp, true, &h_prev_all, false);
        let mut dhc0 = dh_next;
        dhc0.extend_from_slice(&dc);
        Ok((dxp, dw, dhc0))
    }
}

/// The `(T, N, H)` sizes from the argument shapes.
fn sizes(xp: &Shape) -> Result<(usize, usize, usize)> {
    let (t, n, g4) = xp.dims3()?;
    Ok((t, n, g4 / 4))
}

impl CustomOp3 for LstmSequence {
    fn name(&self) -> &'static str {
        "fused-lstm-sequence"
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
        let shape = sizes(l1.shape())?;
        let (t, n, h) = shape;
        let storage = match s1.dtype() {
            DType::F32 => {
                let (xp, w, hc0) = (
                    contiguous(s1, l1, "xp")?,
                    contiguous(s2, l2, "w_hh")?,
                    contiguous(s3, l3, "hc0")?,
                );
                f32::to_cpu_storage_owned(self.forward::<f32>(xp, w, hc0, shape)?)
            }
            DType::F64 => {
                let (xp, w, hc0) = (
                    contiguous(s1, l1, "xp")?,
                    contiguous(s2, l2, "w_hh")?,
                    contiguous(s3, l3, "hc0")?,
                );
                f64::to_cpu_storage_owned(self.forward::<f64>(xp, w, hc0, shape)?)
            }
            dt => candle_core::bail!("fused LSTM: unsupported dtype {dt:?}"),
        };
        Ok((storage, Shape::from((t + 1, n, h))))
    }

    fn bwd(
        &self,
        xp: &Tensor,
        w: &Tensor,
        hc0: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let shape = sizes(xp.shape())?;
        let (t, n, h) = shape;
        let (w, hc0, res, grad) =
            (w.contiguous()?, hc0.contiguous()?, res.contiguous()?, grad_res.contiguous()?);
        let (ws, wl) = w.storage_and_layout();
        let (hs, hl) = hc0.storage_and_layout();
        let (rs, rl) = res.storage_and_layout();
        let (gs, gl) = grad.storage_and_layout();
        let (Storage::Cpu(ws), Storage::Cpu(hs), Storage::Cpu(rs), Storage::Cpu(gs)) =
            (&*ws, &*hs, &*rs, &*gs)
        else {
            candle_core::bail!("fused LSTM: backward needs CPU tensors")
        };
        let dev = Device::Cpu;
        macro_rules! run {
            ($f:ty) => {{
                let (dxp, dw, dhc0) = self.backward::<$f>(
                    contiguous(ws, wl, "w_hh")?,
                    contiguous(hs, hl, "hc0")?,
                    contiguous(rs, rl, "result")?,
                    contiguous(gs, gl, "gradient")?,
                    shape,
                )?;
                (
                    Tensor::from_vec(dxp, (t, n, 4 * h), &dev)?,
                    Tensor::from_vec(dw, (4 * h, h), &dev)?,
                    Tensor::from_vec(dhc0, (2, n, h), &dev)?,
                )
            }};
        }
        let (dxp, dw, dhc0) = match xp.dtype() {
            DType::F32 => run!(f32),
            DType::F64 => run!(f64),
            dt => candle_core::bail!("fused LSTM: unsupported dtype {dt:?}"),
        };
        Ok((Some(dxp), Some(dw), Some(dhc0)))
    }
}

/// Runs one LSTM layer and direction over the input projection `xp` `(T, N, 4H)` (biases
/// included) from `h0`, `c0` `(N, H)` with the fused op, when the tensors are on the CPU in
/// f32 or f64. Returns the outputs `(T, N, H)` at their time indices, `h_n` and `c_n`; `None`
/// when the generic path must run.
pub(crate) fn try_sequence(
    xp: &Tensor,
    w_hh: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    reverse: bool,
) -> Result<Option<(Tensor, Tensor, Tensor)>> {
    if !xp.device().is_cpu() || !matches!(xp.dtype(), DType::F32 | DType::F64) {
        return Ok(None);
    }
    let t = xp.dim(0)?;
    let hc0 = Tensor::stack(&[h0, c0], 0)?.contiguous()?;
    let op = LstmSequence { reverse, saved: Mutex::new(None) };
    let packed = xp.contiguous()?.apply_op3(&w_hh.contiguous()?, &hc0, op)?;
    let out = packed.narrow(0, 0, t)?;
    let h_n = packed.get(if reverse { 0 } else { t - 1 })?;
    let c_n = packed.get(t)?;
    Ok(Some((out, h_n, c_n)))
}
