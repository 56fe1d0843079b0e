//! The fused CPU path of the LSTM and GRU: one custom operation runs the whole layer (one
//! direction) with an explicit backward pass (backpropagation through time), in place of the
//! generic path's dozen-plus allocating candle ops per step.
//!
//! Forward, for `x` `(T, N, F)` and gate width `G*H` (4H for the LSTM, 3H for the GRU):
//!
//! 1. LSTM: per step, one GEMM `[x_t | h_prev] [W_ih^T; W_hh^T]` `(N, G*H)`, the input and
//!    recurrent projections in one pass written straight into the step's gates (its two left
//!    blocks read where they lie, its right operand packed once per call);
//! 2. GRU, whose reset gate multiplies the recurrent projection alone: the input projection
//!    of every step at once, `X = x W_ih^T` `(T*N, G*H)`, one GEMM, then per step one GEMM
//!    `h_prev W_hh^T` into its own buffer, `W_hh^T` packed once per call;
//! 3. per step, the gate pass ([`super::fused_lstm`], [`super::fused_gru`]), which adds the
//!    biases, activates the gates in place and writes the states straight into the result.
//!
//! Backward walks the steps in reverse, one gate pass and one GEMM `dh_prev = dP_t W_hh` per
//! step (the gate pass also sums the bias gradients), then forms the rest with one GEMM each
//! over all `T*N` rows: `dW_ih = dX^T x`, `dx = dX W_ih` (skipped when `x` needs no gradient),
//! `dW_hh = dP^T h_prev` (the previous states are the outputs shifted by one step, plus
//! `h0`, gathered into one operand).
//!
//! A candle custom op has at most three arguments: `x`, `W_hh` (the largest parameter, so
//! that its gradient reaches the variable in one step), and the rest flattened into one
//! vector, `[W_ih, b_ih, b_hh, h0, c0]` (biases only when the layer has them), whose
//! gradient comes back as contiguous slices. The LSTM's final cell state is a second, tiny
//! op on the outputs ([`FinalCell`]) rather than part of the result, which would have to be
//! narrowed (a full-size copy in candle's backward).
//! The GEMMs run on one thread through [`super::packed_gemm`]: each right operand is packed
//! once (for the per-step products, once for all steps) for a register-blocked AVX-512
//! kernel in f32, or kept row-major for [`crate::matmul::matmul`] elsewhere. Other devices,
//! dtypes, peephole LSTMs and masked sequences take the generic path in [`super::stack`].

use std::sync::{Arc, Mutex};

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp1, CustomOp3, DType, Layout, Result, Shape,
    Storage, Tensor, WithDType,
};

use super::cell::CellParams;
use super::packed_gemm::{GemmElem, Lhs, Rhs};
use super::scratch::{self, Pooled};
use super::{fused_gru, fused_lstm};

/// The recurrences the fused path runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FusedCell {
    Lstm,
    Gru,
}

impl FusedCell {
    fn gates(self) -> usize {
        match self {
            FusedCell::Lstm => 4,
            FusedCell::Gru => 3,
        }
    }

    /// State tensors per direction: `h` and `c` for the LSTM, `h` for the GRU.
    fn states(self) -> usize {
        match self {
            FusedCell::Lstm => 2,
            FusedCell::Gru => 1,
        }
    }

    fn name(self) -> &'static str {
        match self {
            FusedCell::Lstm => "fused LSTM",
            FusedCell::Gru => "fused GRU",
        }
    }
}

/// Sizes of one call: steps, batch, input features, hidden size, whether biases exist.
#[derive(Debug, Clone, Copy)]
struct Dims {
    t: usize,
    n: usize,
    f: usize,
    h: usize,
    bias: bool,
}

impl Dims {
    /// Lengths of `W_ih`, `W_hh` and of each bias in the flat parameter vector.
    fn param_lens(&self, gates: usize) -> (usize, usize, usize) {
        let gh = gates * self.h;
        (gh * self.f, gh * self.h, if self.bias { gh } else { 0 })
    }
}

/// The parameters and initial states, cut from the op's second and third arguments.
struct Params<'a, F> {
    w_ih: &'a [F],
    w_hh: &'a [F],
    /// Empty without biases.
    b_ih: &'a [F],
    b_hh: &'a [F],
    /// `[h0; c0]` or `[h0]`, `(S, N, H)`.
    state0: &'a [F],
}

/// `w_hh` is the second argument, `rest` the third: `[W_ih, b_ih, b_hh, state0]` flattened.
fn split_params<'a, F>(w_hh: &'a [F], rest: &'a [F], d: Dims, gates: usize) -> Params<'a, F> {
    let (lw, _, lb) = d.param_lens(gates);
    let (w_ih, rest) = rest.split_at(lw);
    let (b_ih, rest) = rest.split_at(lb);
    let (b_hh, state0) = rest.split_at(lb);
    Params { w_ih, w_hh, b_ih, b_hh, state0 }
}

/// What the forward pass keeps for the backward pass: the activated gates `(T, N, G*H)` and,
/// for the LSTM, the cell states `(T, N, H)`, for the GRU the hidden projections with `q` in
/// their n-block `(T, N, 3H)`; by time index.
#[derive(Debug)]
struct Saved<F: Pooled> {
    gates: Vec<F>,
    second: Vec<F>,
}

impl<F: Pooled> Drop for Saved<F> {
    /// Returns the buffers to the scratch pool when the graph that holds the op is dropped.
    fn drop(&mut self) {
        scratch::give(std::mem::take(&mut self.gates));
        scratch::give(std::mem::take(&mut self.second));
    }
}

#[derive(Debug)]
enum SavedAny {
    F32(Saved<f32>),
    F64(Saved<f64>),
}

/// The dtype-specific access to [`SavedAny`].
trait SavedElem: Pooled {
    fn wrap(s: Saved<Self>) -> SavedAny;
    fn unwrap(s: &SavedAny) -> Option<&Saved<Self>>;
}

impl SavedElem for f32 {
    fn wrap(s: Saved<f32>) -> SavedAny {
        SavedAny::F32(s)
    }
    fn unwrap(s: &SavedAny) -> Option<&Saved<f32>> {
        match s {
            SavedAny::F32(s) => Some(s),
            SavedAny::F64(_) => None,
        }
    }
}

impl SavedElem for f64 {
    fn wrap(s: Saved<f64>) -> SavedAny {
        SavedAny::F64(s)
    }
    fn unwrap(s: &SavedAny) -> Option<&Saved<f64>> {
        match s {
            SavedAny::F64(s) => Some(s),
            SavedAny::F32(_) => None,
        }
    }
}

/// Block `cur` of `buf` (blocks of `len`) mutably and block `prev` shared (`cur != prev`).
fn cur_and_prev<F>(buf: &mut [F], len: usize, cur: usize, prev: usize) -> (&mut [F], &[F]) {
    if prev < cur {
        let (a, b) = buf.split_at_mut(cur * len);
        (&mut b[..len], &a[prev * len..][..len])
    } else {
        let (a, b) = buf.split_at_mut(prev * len);
        (&mut a[cur * len..][..len], &b[..len])
    }
}

/// What the op shares with [`FinalCell`]: the saved activations, and the gradient of `c_n`
/// that [`FinalCell`]'s backward leaves for the op's backward.
#[derive(Debug, Default)]
struct Shared {
    saved: Mutex<Option<SavedAny>>,
    dc_n: Mutex<Option<Tensor>>,
}

fn poisoned<T>(_: T) -> candle_core::Error {
    candle_core::Error::Msg("fused RNN: lock poisoned".into())
}

/// The custom op: arguments `x` `(T, N, F)`, `W_hh` `(G*H, H)`, and the rest flattened into
/// one vector: `W_ih`, `b_ih`, `b_hh` (when the layer has biases) and the initial states
/// `(S, N, H)` (`[h0; c0]` for the LSTM, `[h0]` for the GRU). Result: the outputs `h_t`
/// `(T, N, H)` at their time indices. The LSTM's `c_n` comes from [`FinalCell`].
#[derive(Debug)]
struct FusedSequence {
    cell: FusedCell,
    reverse: bool,
    h: usize,
    bias: bool,
    shared: Arc<Shared>,
}

/// The final cell state `c_n` `(N, H)` of a fused LSTM, as an op on the outputs of
/// [`FusedSequence`] (it reads the saved cell states, not its argument).
///
/// Why not one result `[outputs; c_n]` narrowed in two: candle's backward of a narrow pads
/// the gradient back to full size (a concatenation with zeros) and accumulates it into a
/// zero tensor: three allocations of the whole output per call. Instead this op's backward
/// leaves the gradient of `c_n` in the shared state, where [`FusedSequence`]'s backward
/// starts from it. The order is guaranteed: this op consumes the outputs, so candle's
/// reverse topological walk runs its backward before the sequence's. It passes a zero
/// gradient to the outputs (a broadcast scalar), which candle requires of every node.
#[derive(Debug)]
struct FinalCell {
    shared: Arc<Shared>,
    reverse: bool,
}

impl CustomOp1 for FinalCell {
    fn name(&self) -> &'static str {
        "fused-lstm-final-cell"
    }

    fn cpu_fwd(&self, _: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (t, n, h) = l.shape().dims3()?;
        let last = if self.reverse { 0 } else { t - 1 };
        let range = last * n * h..(last + 1) * n * h;
        let guard = self.shared.saved.lock().map_err(poisoned)?;
        let storage = match guard.as_ref() {
            Some(SavedAny::F32(s)) => CpuStorage::F32(s.second[range].to_vec()),
            Some(SavedAny::F64(s)) => CpuStorage::F64(s.second[range].to_vec()),
            None => candle_core::bail!("fused LSTM: final cell state before the forward pass"),
        };
        Ok((storage, Shape::from((n, h))))
    }

    fn bwd(&self, out: &Tensor, _: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let mut dc_n = self.shared.dc_n.lock().map_err(poisoned)?;
        *dc_n = Some(match dc_n.take() {
            Some(g) => (g + grad)?,
            None => grad.clone(),
        });
        let zero = Tensor::zeros((1, 1, 1), out.dtype(), out.device())?;
        Ok(Some(zero.broadcast_as(out.shape())?))
    }
}

impl FusedSequence {
    /// The time index of the `step`-th step processed.
    fn order(&self, t: usize, step: usize) -> usize {
        if self.reverse {
            t - 1 - step
        } else {
            step
        }
    }

    fn dims(&self, x: &Shape) -> Result<Dims> {
        let (t, n, f) = x.dims3()?;
        Ok(Dims { t, n, f, h: self.h, bias: self.bias })
    }

    /// The length of the third argument.
    fn rest_len(&self, d: &Dims) -> usize {
        let (lw, _, lb) = d.param_lens(self.cell.gates());
        lw + 2 * lb + self.cell.states() * d.n * d.h
    }

    /// Checks the shapes of the second and third arguments against `d`.
    fn check(&self, d: &Dims, w_hh: &Shape, rest: &Shape) -> Result<()> {
        let name = self.cell.name();
        if d.t == 0 || d.n == 0 {
            candle_core::bail!(
                "{name}: input ({}, {}, {}) has no step or no sequence",
                d.t,
                d.n,
                d.f
            )
        }
        let gh = self.cell.gates() * d.h;
        if w_hh.dims() != [gh, d.h] {
            candle_core::bail!("{name}: weight_hh {w_hh:?}, expected ({gh}, {})", d.h)
        }
        if rest.dims() != [self.rest_len(d)] {
            candle_core::bail!(
                "{name}: packed input weights, biases and states {rest:?}, expected ({})",
                self.rest_len(d)
            )
        }
        Ok(())
    }

    fn forward<F: SavedElem + GemmElem>(
        &self,
        x: &[F],
        p: &Params<'_, F>,
        d: &Dims,
    ) -> Result<Vec<F>> {
        let (t, n, h) = (d.t, d.n, d.h);
        let (nh, gh) = (n * h, self.cell.gates() * h);
        let lstm = self.cell == FusedCell::Lstm;
        let mut gates = scratch::take(t * n * gh);
        // The right operands, packed once: for the LSTM `[W_ih^T; W_hh^T]` `(F + H, G*H)`,
        // for the per-step products `[x_t | h_prev] [W_ih^T; W_hh^T]` (input and recurrent
        // projections in one pass, written straight into the step's gates); for the GRU,
        // whose reset gate multiplies the recurrent projection alone, `W_ih^T` for the input
        // projection of all steps at once and `W_hh^T` for the per-step products.
        let (f, w_ih) = (d.f, p.w_ih);
        let mut w = Rhs::new(if lstm { f + h } else { h }, gh);
        w.fill((if lstm { f } else { 0 }, h), (0, gh), p.w_hh, 1, h);
        if lstm {
            w.fill((0, f), (0, gh), w_ih, 1, f);
        } else {
            let mut w_ih_t = Rhs::new(f, gh);
            w_ih_t.fill((0, f), (0, gh), w_ih, 1, f);
            w_ih_t.mul(t * n, Lhs::RowMajor(x), &mut gates, false);
        }
        let mut out = vec![F::zero(); t * nh];
        let (h0, c0) = p.state0.split_at(nh);
        let mut second = scratch::take(t * n * if lstm { h } else { gh });
        // The LSTM adds `b_ih + b_hh` once; without biases both are zeros.
        let zeros = if d.bias { Vec::new() } else { vec![F::zero(); gh] };
        let (b_ih, b_hh) = if d.bias { (p.b_ih, p.b_hh) } else { (&zeros[..], &zeros[..]) };
        let lstm_bias: Vec<F> =
            if lstm { b_ih.iter().zip(b_hh).map(|(&a, &b)| a + b).collect() } else { Vec::new() };
        for step in 0..t {
            let ti = self.order(t, step);
            let prev = (step > 0).then(|| self.order(t, step - 1));
            let (out_t, h_prev) = match prev {
                None => (&mut out[ti * nh..][..nh], h0),
                Some(tp) => cur_and_prev(&mut out, nh, ti, tp),
            };
            let g_t = &mut gates[ti * n * gh..][..n * gh];
            match self.cell {
                FusedCell::Lstm => {
                    let (c_t, c_prev) = match prev {
                        None => (&mut second[ti * nh..][..nh], c0),
                        Some(tp) => cur_and_prev(&mut second, nh, ti, tp),
                    };
                    let x_t = &x[ti * n * f..][..n * f];
                    w.mul(n, Lhs::Split(x_t, f, h_prev), g_t, false);
                    fused_lstm::forward_step(g_t, &lstm_bias, c_prev, c_t, out_t, h);
                }
                FusedCell::Gru => {
                    let p_t = &mut second[ti * n * gh..][..n * gh];
                    w.mul(n, Lhs::RowMajor(h_prev), p_t, false);
                    fused_gru::forward_step(g_t, p_t, b_ih, b_hh, h_prev, out_t, h);
                }
            }
        }
        drop(w);
        *self.shared.saved.lock().map_err(poisoned)? = Some(F::wrap(Saved { gates, second }));
        Ok(out)
    }

    /// Returns the gradients of the three arguments `(dx, dW_hh, d rest)`; `dx` only with
    /// `need_dx`. `dc_n` is the gradient of the LSTM's final cell state (none: zero).
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn backward<F: SavedElem + GemmElem>(
        &self,
        x: &[F],
        p: &Params<'_, F>,
        res: &[F],
        grad: &[F],
        dc_n: Option<&[F]>,
        d: &Dims,
        need_dx: bool,
    ) -> Result<(Option<Vec<F>>, Vec<F>, Vec<F>)> {
        let (t, n, h) = (d.t, d.n, d.h);
        let (nh, gh) = (n * h, self.cell.gates() * h);
        let guard = self.shared.saved.lock().map_err(poisoned)?;
        let Some(saved) = guard.as_ref().and_then(F::unwrap) else {
            candle_core::bail!("{}: backward before forward", self.cell.name())
        };
        let (h0, c0) = p.state0.split_at(nh);
        let lstm = self.cell == FusedCell::Lstm;
        // dX `(T, N, G*H)`; the GRU's recurrent-product gradient dP differs from dX in its
        // n-block, the LSTM's is dX itself.
        let mut dx_proj = scratch::take(t * n * gh);
        let mut dp_gru = if lstm { Vec::new() } else { scratch::take(t * n * gh) };
        let (mut db_ih, mut db_hh) = (vec![F::zero(); gh], vec![F::zero(); gh]);
        let mut dh = vec![F::zero(); nh];
        let mut dc = match (lstm, dc_n) {
            (false, _) => Vec::new(),
            (true, Some(g)) => g.to_vec(),
            (true, None) => vec![F::zero(); nh],
        };
        // W_hh `(G*H, H)` for the per-step products dh_prev = dP_t W_hh.
        let mut w_hh = Rhs::new(gh, h);
        w_hh.fill((0, gh), (0, h), p.w_hh, h, 1);
        for step in (0..t).rev() {
            let ti = self.order(t, step);
            let prev = (step > 0).then(|| self.order(t, step - 1));
            let h_prev = prev.map_or(h0, |tp| &res[tp * nh..][..nh]);
            let g_t = &saved.gates[ti * n * gh..][..n * gh];
            let dout = &grad[ti * nh..][..nh];
            let dx_t = &mut dx_proj[ti * n * gh..][..n * gh];
            if lstm {
                let c_t = &saved.second[ti * nh..][..nh];
                let c_prev = prev.map_or(c0, |tp| &saved.second[tp * nh..][..nh]);
                fused_lstm::backward_step(
                    g_t, c_t, c_prev, dout, &dh, &mut dc, dx_t, &mut db_ih, h,
                );
                w_hh.mul(n, Lhs::RowMajor(dx_t), &mut dh, false);
            } else {
                let p_t = &saved.second[ti * n * gh..][..n * gh];
                let dp_t = &mut dp_gru[ti * n * gh..][..n * gh];
                fused_gru::backward_step(
                    g_t, p_t, h_prev, dout, &mut dh, dx_t, dp_t, &mut db_ih, &mut db_hh, h,
                );
                w_hh.mul(n, Lhs::RowMajor(dp_t), &mut dh, true);
            }
        }
        let dp = if lstm { &dx_proj } else { &dp_gru };
        let (lw, lh, lb) = d.param_lens(self.cell.gates());
        let mut dw_hh = vec![F::zero(); lh];
        let mut drest = vec![F::zero(); self.rest_len(d)];
        let (dw_ih, rest) = drest.split_at_mut(lw);
        let (db, dstate) = rest.split_at_mut(2 * lb);
        drop(w_hh);
        // dW_ih = dX^T x.
        let mut xs = Rhs::new(t * n, d.f);
        xs.fill((0, t * n), (0, d.f), x, d.f, 1);
        xs.mul(gh, Lhs::Transposed(&dx_proj), dw_ih, false);
        drop(xs);
        // dW_hh = dP^T h_prev, where h_prev at time index ti is the output one step earlier
        // in processing order, or h0 for the first step: the outputs shifted by one step.
        // (One product [dW_ih | dW_hh] = dX^T [x | h_prev] for the LSTM was measured slower
        // in the benchmark: its buffers changed how glibc's heap grows and shrinks around the
        // loss's tensors, 2-3x the page faults per step.)
        let mut h_prev = Rhs::new(t * n, h);
        let rows = (t - 1) * n;
        if self.reverse {
            h_prev.fill((0, rows), (0, h), &res[nh..t * nh], h, 1);
            h_prev.fill((rows, n), (0, h), h0, h, 1);
        } else {
            h_prev.fill((0, n), (0, h), h0, h, 1);
            h_prev.fill((n, rows), (0, h), &res[..rows * h], h, 1);
        }
        h_prev.mul(gh, Lhs::Transposed(dp), &mut dw_hh, false);
        drop(h_prev);
        if d.bias {
            let (dbi, dbh) = db.split_at_mut(lb);
            dbi.copy_from_slice(&db_ih);
            dbh.copy_from_slice(if lstm { &db_ih } else { &db_hh });
        }
        let dx = need_dx.then(|| {
            let mut dx = vec![F::zero(); t * n * d.f];
            let mut w_ih = Rhs::new(gh, d.f);
            w_ih.fill((0, gh), (0, d.f), p.w_ih, d.f, 1);
            w_ih.mul(t * n, Lhs::RowMajor(&dx_proj), &mut dx, false);
            dx
        });
        scratch::give(dx_proj);
        scratch::give(dp_gru);
        let (dh0, dc0) = dstate.split_at_mut(nh);
        dh0.copy_from_slice(&dh);
        dc0.copy_from_slice(&dc);
        Ok((dx, dw_hh, drest))
    }
}

fn contiguous<'a, F: WithDType>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [F]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&s.as_slice::<F>()?[a..b]),
        None => candle_core::bail!("fused RNN: {what} is not contiguous"),
    }
}

impl CustomOp3 for FusedSequence {
    fn name(&self) -> &'static str {
        match self.cell {
            FusedCell::Lstm => "fused-lstm-sequence",
            FusedCell::Gru => "fused-gru-sequence",
        }
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
        let d = self.dims(l1.shape())?;
        self.check(&d, l2.shape(), l3.shape())?;
        macro_rules! run {
            ($f:ty) => {{
                let (x, w_hh, rest) = (
                    contiguous::<$f>(s1, l1, "input")?,
                    contiguous::<$f>(s2, l2, "weight_hh")?,
                    contiguous::<$f>(s3, l3, "packed weights and states")?,
                );
                let p = split_params(w_hh, rest, d, self.cell.gates());
                <$f>::to_cpu_storage_owned(self.forward::<$f>(x, &p, &d)?)
            }};
        }
        let storage = match s1.dtype() {
            DType::F32 => run!(f32),
            DType::F64 => run!(f64),
            dt => candle_core::bail!("{}: unsupported dtype {dt:?}", self.cell.name()),
        };
        Ok((storage, Shape::from((d.t, d.n, d.h))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w_hh: &Tensor,
        rest: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = self.dims(x.shape())?;
        let need_dx = x.track_op();
        let dc_n = self.shared.dc_n.lock().map_err(poisoned)?.take();
        let dc_n = dc_n.map(|g| g.contiguous()).transpose()?;
        let (xc, fc, sc, rc, gc) = (
            x.contiguous()?,
            w_hh.contiguous()?,
            rest.contiguous()?,
            res.contiguous()?,
            grad_res.contiguous()?,
        );
        let (xs, xl) = xc.storage_and_layout();
        let (fs, fl) = fc.storage_and_layout();
        let (ss, sl) = sc.storage_and_layout();
        let (rs, rl) = rc.storage_and_layout();
        let (gs, gl) = gc.storage_and_layout();
        let (
            Storage::Cpu(xs),
            Storage::Cpu(fs),
            Storage::Cpu(ss),
            Storage::Cpu(rs),
            Storage::Cpu(gs),
        ) = (&*xs, &*fs, &*ss, &*rs, &*gs)
        else {
            candle_core::bail!("{}: backward needs CPU tensors", self.cell.name())
        };
        let dc_n = dc_n.as_ref().map(|g| g.storage_and_layout());
        let dc_n = match &dc_n {
            None => None,
            Some((s, l)) => match &**s {
                Storage::Cpu(s) => Some((s, *l)),
                _ => candle_core::bail!("{}: backward needs CPU tensors", self.cell.name()),
            },
        };
        let dev = x.device();
        macro_rules! run {
            ($f:ty) => {{
                let p = split_params(
                    contiguous(fs, fl, "weight_hh")?,
                    contiguous(ss, sl, "packed weights and states")?,
                    d,
                    self.cell.gates(),
                );
                let (dx, dw_hh, drest) = self.backward::<$f>(
                    contiguous(xs, xl, "input")?,
                    &p,
                    contiguous(rs, rl, "result")?,
                    contiguous(gs, gl, "gradient")?,
                    dc_n.map(|(s, l)| contiguous(s, l, "final cell gradient")).transpose()?,
                    &d,
                    need_dx,
                )?;
                (
                    dx.map(|dx| Tensor::from_vec(dx, x.shape(), dev)).transpose()?,
                    Tensor::from_vec(dw_hh, w_hh.shape(), dev)?,
                    Tensor::from_vec(drest, rest.shape(), dev)?,
                )
            }};
        }
        let (dx, dw_hh, drest) = match x.dtype() {
            DType::F32 => run!(f32),
            DType::F64 => run!(f64),
            dt => candle_core::bail!("{}: unsupported dtype {dt:?}", self.cell.name()),
        };
        Ok((dx, Some(dw_hh), Some(drest)))
    }
}

/// Runs one LSTM or GRU layer and direction over `x` `(T, N, F)` from `h0` (and, for the LSTM,
/// `c0`) `(N, H)` with the fused op, when the tensors are on the CPU in f32 or f64. Returns the
/// outputs `(T, N, H)` at their time indices, `h_n` and (LSTM) `c_n`; `None` when the generic
/// path must run.
pub(crate) fn try_sequence(
    cell: FusedCell,
    params: &CellParams,
    x: &Tensor,
    h0: &Tensor,
    c0: Option<&Tensor>,
    reverse: bool,
) -> Result<Option<(Tensor, Tensor, Option<Tensor>)>> {
    if !x.device().is_cpu() || !matches!(x.dtype(), DType::F32 | DType::F64) {
        return Ok(None);
    }
    let (t, _, _) = x.dims3()?;
    let h = params.w_hh.dim(1)?;
    let mut parts = vec![params.w_ih.flatten_all()?];
    let bias = match (&params.b_ih, &params.b_hh) {
        (Some(bi), Some(bh)) => {
            parts.extend([bi.clone(), bh.clone()]);
            true
        }
        _ => false,
    };
    parts.push(h0.flatten_all()?);
    match (cell, c0) {
        (FusedCell::Lstm, Some(c0)) => parts.push(c0.flatten_all()?),
        (FusedCell::Lstm, None) => candle_core::bail!("fused LSTM: no initial cell state"),
        (FusedCell::Gru, _) => {}
    }
    let rest = Tensor::cat(&parts, 0)?;
    let shared = Arc::new(Shared::default());
    let op = FusedSequence { cell, reverse, h, bias, shared: shared.clone() };
    let out = x.contiguous()?.apply_op3(&params.w_hh.contiguous()?, &rest, op)?;
    let h_n = out.get(if reverse { 0 } else { t - 1 })?;
    let c_n = match cell {
        FusedCell::Lstm => Some(out.apply_op1(FinalCell { shared, reverse })?),
        FusedCell::Gru => None,
    };
    Ok(Some((out, h_n, c_n)))
}
