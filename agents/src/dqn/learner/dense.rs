//! The dense layers of the host learner: matrix products through `gemm`, bias and ReLU
//! loops, the dueling aggregation, and their backward passes, all over row-major `f32`
//! slices that the caller owns.
//!
//! Layouts follow [`QNet`](super::super::network::QNet): a weight is `[in, out]`, a layer
//! computes `y = x W + b` for a batch `x` `[batch, in]`. The backward of `y = x W + b` with
//! upstream gradient `dy` `[batch, out]` is
//!
//! ```text
//! dW = x^T dy          [in, out]      (a product with x read transposed)
//! db = sum_rows dy     [out]
//! dx = dy W^T          [batch, in]    (a product with W read transposed)
//! ```
//!
//! The conventions at the kinks are candle's, so that the host learner and the candle path
//! agree where it matters: ReLU passes the gradient where its input is `>= 0` (candle's
//! `ge(0)` mask; torch uses `> 0`), and `max` over actions sends the gradient to **every**
//! advantage equal to the maximum (candle's `eq` mask; torch's `max(dim)` picks one index).

use super::super::config::Dueling;

#[cfg(test)]
thread_local! {
    /// Tests set this to run the products as plain loops: `gemm` allocates its packing
    /// scratch inside every call, and the allocation test checks everything else.
    pub(super) static PLAIN_PRODUCTS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// [`deeprl_nets::matmul::matmul`] (`dst (+)= lhs rhs`, operands optionally read transposed),
/// or, in tests that count allocations, the same product as plain loops: `gemm` allocates its
/// packing scratch inside every call.
#[allow(clippy::too_many_arguments)]
pub(super) fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    lhs_t: bool,
    rhs: &[f32],
    rhs_t: bool,
) {
    #[cfg(test)]
    if PLAIN_PRODUCTS.with(|p| p.get()) {
        let l = |i: usize, p: usize| if lhs_t { lhs[p * m + i] } else { lhs[i * k + p] };
        let r = |p: usize, j: usize| if rhs_t { rhs[j * k + p] } else { rhs[p * n + j] };
        for i in 0..m {
            for j in 0..n {
                let dot: f32 = (0..k).map(|p| l(i, p) * r(p, j)).sum();
                dst[i * n + j] = if accumulate { dst[i * n + j] + dot } else { dot };
            }
        }
        return;
    }
    deeprl_nets::matmul::matmul((m, n, k), dst, accumulate, lhs, lhs_t, rhs, rhs_t)
}

/// `y = x W + b` for `batch` rows: the bias rows are written first and the product is
/// accumulated onto them (one pass, the same rounding as `x W` then `+ b`).
pub(super) fn linear(batch: usize, x: &[f32], w: &[f32], b: &[f32], y: &mut [f32]) {
    let (fan_out, fan_in) = (b.len(), w.len() / b.len().max(1));
    let y = &mut y[..batch * fan_out];
    for row in y.chunks_exact_mut(fan_out) {
        row.copy_from_slice(b);
    }
    matmul((batch, fan_out, fan_in), y, true, x, false, w, false);
}

/// `h = max(z, 0)` elementwise.
pub(super) fn relu(z: &[f32], h: &mut [f32]) {
    for (h, &z) in h.iter_mut().zip(z) {
        *h = z.max(0.0);
    }
}

/// `dz = dh * [z >= 0]` in place of `dh` (candle's mask, see the [module docs](self)).
pub(super) fn relu_backward(z: &[f32], dh: &mut [f32]) {
    for (d, &z) in dh.iter_mut().zip(z) {
        if z < 0.0 {
            *d = 0.0;
        }
    }
}

/// The weight and bias gradients of `y = x W + b`: `dw = x^T dy`, `db = sum_rows dy`
/// (overwritten), for `batch` rows of `x` `[batch, dw.len() / db.len()]`.
pub(super) fn linear_backward_params(
    batch: usize,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    db: &mut [f32],
) {
    let fan_out = db.len();
    let fan_in = dw.len() / fan_out.max(1);
    matmul((fan_in, fan_out, batch), dw, false, x, true, dy, false);
    db.fill(0.0);
    for row in dy[..batch * fan_out].chunks_exact(fan_out) {
        for (g, &d) in db.iter_mut().zip(row) {
            *g += d;
        }
    }
}

/// The input gradient of `y = x W + b`: `dx (=|+=) dy W^T`, `dx` `[batch, fan_in]`.
pub(super) fn linear_backward_input(
    batch: usize,
    dy: &[f32],
    w: &[f32],
    fan_out: usize,
    dx: &mut [f32],
    accumulate: bool,
) {
    let fan_in = w.len() / fan_out.max(1);
    matmul((batch, fan_in, fan_out), dx, accumulate, dy, false, w, true);
}

/// The dueling aggregation `out = A + (V - agg_a A)` per row and atom, for `A` `[batch,
/// actions, atoms]` and `V` `[batch, atoms]`; `agg` (`[batch, atoms]`) receives `agg_a A`:
/// the max, or the mean computed as candle's `sum * (1 / actions)`.
pub(super) fn dueling_forward(
    kind: Dueling,
    (actions, atoms): (usize, usize),
    adv: &[f32],
    value: &[f32],
    agg: &mut [f32],
    out: &mut [f32],
) {
    let inv = (1.0 / actions as f64) as f32;
    let row = actions * atoms;
    for (j, (agg, v)) in agg.chunks_exact_mut(atoms).zip(value.chunks_exact(atoms)).enumerate() {
        let a = &adv[j * row..(j + 1) * row];
        let o = &mut out[j * row..(j + 1) * row];
        for i in 0..atoms {
            let column = (0..actions).map(|k| a[k * atoms + i]);
            agg[i] = match kind {
                Dueling::Max => column.fold(f32::NEG_INFINITY, |m, x| if m < x { x } else { m }),
                _ => column.sum::<f32>() * inv,
            };
            let shift = v[i] - agg[i];
            for k in 0..actions {
                o[k * atoms + i] = a[k * atoms + i] + shift;
            }
        }
    }
}

/// The backward of [`dueling_forward`]: from `d_out`, the value gradient `dv = sum_a d_out`
/// and the advantage gradient `dA = d_out - dv / actions` (mean) or
/// `dA = d_out - [A == max] dv` (max, every tied maximum), both overwritten.
#[allow(clippy::too_many_arguments)]
pub(super) fn dueling_backward(
    kind: Dueling,
    (actions, atoms): (usize, usize),
    adv: &[f32],
    agg: &[f32],
    d_out: &[f32],
    d_value: &mut [f32],
    d_adv: &mut [f32],
) {
    let inv = (1.0 / actions as f64) as f32;
    let row = actions * atoms;
    for (j, dv) in d_value.chunks_exact_mut(atoms).enumerate() {
        let (a, d, da) = (
            &adv[j * row..(j + 1) * row],
            &d_out[j * row..(j + 1) * row],
            &mut d_adv[j * row..(j + 1) * row],
        );
        for i in 0..atoms {
            let total: f32 = (0..actions).map(|k| d[k * atoms + i]).sum();
            dv[i] = total;
            let max = agg[j * atoms + i];
            for k in 0..actions {
                let x = k * atoms + i;
                da[x] = match kind {
                    Dueling::Max if a[x] == max => d[x] + -total,
                    Dueling::Max => d[x],
                    _ => d[x] + -total * inv,
                };
            }
        }
    }
}

/// The sum of squares of `x` in `f32`, in 16 interleaved partial sums (vectorises).
pub(super) fn sum_of_squares(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let chunks = x.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v * v;
        }
    }
    acc.iter().sum::<f32>() + rest.iter().map(|v| v * v).sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The naive triple loop.
    fn reference(
        m: usize,
        n: usize,
        k: usize,
        a: impl Fn(usize, usize) -> f32,
        b: impl Fn(usize, usize) -> f32,
    ) -> Vec<f32> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| a(i, p) * b(p, j)).sum();
            }
        }
        out
    }

    #[test]
    fn products_with_each_transposition_match_the_triple_loop() {
        let (m, n, k) = (5, 7, 3);
        let lhs: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let rhs: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        for (lhs_t, rhs_t) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = |i: usize, p: usize| if lhs_t { lhs[p * m + i] } else { lhs[i * k + p] };
            let b = |p: usize, j: usize| if rhs_t { rhs[j * k + p] } else { rhs[p * n + j] };
            let want = reference(m, n, k, a, b);
            let mut got = vec![1.0; m * n];
            matmul((m, n, k), &mut got, false, &lhs, lhs_t, &rhs, rhs_t);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-5, "{lhs_t} {rhs_t}: {got:?} vs {want:?}");
            }
            matmul((m, n, k), &mut got, true, &lhs, lhs_t, &rhs, rhs_t);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - 2.0 * w).abs() < 1e-5, "accumulate");
            }
        }
    }

    #[test]
    fn dueling_max_sends_the_gradient_to_every_tied_maximum() {
        // One row, 3 actions, 1 atom: A = (2, 2, 1), V = 0.5.
        let adv = [2.0, 2.0, 1.0];
        let (mut agg, mut out) = ([0.0], [0.0; 3]);
        dueling_forward(Dueling::Max, (3, 1), &adv, &[0.5], &mut agg, &mut out);
        assert_eq!(agg, [2.0]);
        assert_eq!(out, [0.5, 0.5, -0.5]);
        let (mut dv, mut da) = ([0.0], [0.0; 3]);
        dueling_backward(Dueling::Max, (3, 1), &adv, &agg, &[1.0, 0.0, 2.0], &mut dv, &mut da);
        assert_eq!(dv, [3.0]);
        assert_eq!(da, [1.0 - 3.0, -3.0, 2.0]);
        dueling_forward(Dueling::Mean, (3, 1), &adv, &[0.5], &mut agg, &mut out);
        dueling_backward(Dueling::Mean, (3, 1), &adv, &agg, &[1.0, 0.0, 2.0], &mut dv, &mut da);
        assert_eq!(da, [0.0, -1.0, 1.0]);
    }

    #[test]
    fn relu_passes_the_gradient_at_zero_as_candle() {
        let z = [-1.0, 0.0, -0.0, 2.0];
        let mut d = [1.0; 4];
        relu_backward(&z, &mut d);
        assert_eq!(d, [0.0, 1.0, 1.0, 1.0]);
        let x: Vec<f32> = (0..37).map(|i| i as f32 * 0.5).collect();
        let want: f32 = x.iter().map(|v| v * v).sum();
        assert_eq!(sum_of_squares(&x), want);
    }
}
