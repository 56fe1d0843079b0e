//! One-thread matrix products on row-major slices through the `gemm` crate: the building
//! block of the hand-written CPU kernels (the fused LSTM here, the DQN host learner in
//! `deeprl-agents`), which work on buffers they own rather than on tensors.

/// `dst = lhs rhs` (or `dst += lhs rhs` with `accumulate`) for row-major matrices: `dst` is
/// `[m, n]`, `lhs` is `[m, k]` or, with `lhs_t`, a `[k, m]` matrix read transposed; `rhs` is
/// `[k, n]` or, with `rhs_t`, an `[n, k]` matrix read transposed. `T` is `f32` or `f64`.
/// One thread: the callers' products (a few MFLOP at most) are below where a fork-join pays.
///
/// # Panics
/// If a slice is shorter than its matrix: callers size their buffers at construction, so this
/// is an internal invariant, checked because the product itself is unchecked.
#[allow(clippy::too_many_arguments)]
pub fn matmul<T: num_traits::Float + 'static>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [T],
    accumulate: bool,
    lhs: &[T],
    lhs_t: bool,
    rhs: &[T],
    rhs_t: bool,
) {
    assert!(
        dst.len() >= m * n && lhs.len() >= m * k && rhs.len() >= k * n,
        "matrix product {m}x{k} by {k}x{n} on buffers of {}, {} and {} values",
        lhs.len(),
        rhs.len(),
        dst.len()
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(T::zero());
        }
        return;
    }
    // (row stride, column stride) of each operand as stored.
    let (lhs_rs, lhs_cs) = if lhs_t { (1, m as isize) } else { (k as isize, 1) };
    let (rhs_rs, rhs_cs) = if rhs_t { (1, k as isize) } else { (n as isize, 1) };
    // SAFETY: the three slices hold at least the m*n, m*k and k*n values that these strides
    // address (checked above); `dst` is a unique borrow, so it aliases neither operand; gemm
    // supports f32 and f64.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.as_ptr(),
            rhs_cs,
            rhs_rs,
            T::one(),
            T::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::matmul;

    /// Every transpose combination, plain and accumulating, against a triple loop.
    #[test]
    fn matches_a_triple_loop() {
        let (m, n, k) = (3, 5, 4);
        let lhs: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let rhs: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.11).cos()).collect();
        for (lhs_t, rhs_t) in [(false, false), (true, false), (false, true), (true, true)] {
            let l = |i: usize, p: usize| if lhs_t { lhs[p * m + i] } else { lhs[i * k + p] };
            let r = |p: usize, j: usize| if rhs_t { rhs[j * k + p] } else { rhs[p * n + j] };
            let mut got = vec![1.0; m * n];
            matmul((m, n, k), &mut got, true, &lhs, lhs_t, &rhs, rhs_t);
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = 1.0 + (0..k).map(|p| l(i, p) * r(p, j)).sum::<f64>();
                    assert!((got[i * n + j] - want).abs() < 1e-12, "{lhs_t} {rhs_t} {i} {j}");
                }
            }
            matmul((m, n, k), &mut got, false, &lhs, lhs_t, &rhs, rhs_t);
            let want: f64 = (0..k).map(|p| l(0, p) * r(p, 0)).sum();
            assert!((got[0] - want).abs() < 1e-12);
        }
    }
}
