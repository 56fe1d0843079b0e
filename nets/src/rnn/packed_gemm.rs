//! The matrix products of the fused recurrence ([`super::fused`]) with a right operand that is
//! prepared once and used for many products: `[W_ih^T; W_hh^T]` (LSTM) or `W_hh^T` (GRU) for
//! the per-step products of the forward pass, `W_hh` for those of the backward pass, and one
//! operand each for the products over all steps. The left operand ([`Lhs`]) is read where it
//! lies: row-major, transposed, or as two row-major blocks side by side (the LSTM's
//! `[x_t | h_prev]`).
//!
//! [`Rhs`] holds the right operand `B` `(k, n)`. On a CPU with AVX-512, in f32, it is packed
//! into panels of [`NR`] = 32 columns (each panel `(k, 32)`, row by row, zero-padded), and
//! [`Rhs::mul`] runs a small register-blocked kernel in the manner of GotoBLAS (Goto and van
//! de Geijn 2008, "Anatomy of high-performance matrix multiplication", ACM TOMS 34): a tile of
//! [`MR`] = 8 rows by 32 columns of `C` stays in 16 vector registers while the kernel walks
//! `k`, each step loading two vectors of the packed panel and broadcasting one value of `A`
//! per row, two fused multiply-adds per row. `k` is cut in blocks of [`KC`] values (a packed
//! block of a panel is 32 KB, the size of L1) and the rows in blocks of [`MC`] (so that their
//! part of `A` stays in L2 while every panel passes over it).
//!
//! Why not the `gemm` crate ([`crate::matmul`]), which the other paths use: measured on one
//! core of the project's machine (alternating, hot caches), the crate reached 60-80 GFLOP/s
//! on these shapes and this kernel 110-170: the per-step `(32, 128) x (128, 512)` product
//! took 25 us against 67 us, the weight gradient `(512, 1568) x (1568, 128)` 1.8 ms against
//! 3.3 ms (MKL, through PyTorch, reached 120-130 GFLOP/s on the same shapes). Everywhere
//! else (f64, CPUs without AVX-512) `B` is kept as a plain row-major matrix and the products
//! go through [`crate::matmul`].
//!
//! Results are deterministic: each element of `C` is the sum over `k` in increasing order
//! (per block of [`KC`], added to `C` block after block).

use super::scratch::{self, Pooled};
use crate::matmul::matmul;

/// Columns per packed panel: two AVX-512 vectors of f32.
pub(crate) const NR: usize = 32;
/// Rows of `C` per register tile.
pub(crate) const MR: usize = 8;
/// Values of `k` per block (a packed block of a panel is `KC * NR * 4` bytes = 32 KB).
pub(crate) const KC: usize = 256;
/// Rows of `C` per block that every panel passes over (a multiple of [`MR`]).
pub(crate) const MC: usize = 64;

/// The left operand `A` `(m, k)` of a product: row-major, stored transposed (`(k, m)`,
/// read transposed), or two row-major blocks side by side, `[A1 | A2]` with `A1` `(m, k1)`
/// and `A2` `(m, k - k1)` (the LSTM's per-step `[x_t | h_prev]`, never copied together).
#[derive(Clone, Copy)]
pub(crate) enum Lhs<'a, F> {
    RowMajor(&'a [F]),
    Transposed(&'a [F]),
    Split(&'a [F], usize, &'a [F]),
}

impl<F> Lhs<'_, F> {
    /// Checks that the operand holds an `(m, k)` matrix.
    fn check(&self, m: usize, k: usize) {
        let ok = match *self {
            Lhs::RowMajor(a) | Lhs::Transposed(a) => a.len() >= m * k,
            Lhs::Split(a1, k1, a2) => k1 <= k && a1.len() >= m * k1 && a2.len() >= m * (k - k1),
        };
        assert!(ok, "left operand too short for ({m}, {k})");
    }
}

/// The element types of the fused kernels' products: whether the packed kernel serves them
/// on this CPU, and the kernel itself.
pub(crate) trait GemmElem: Pooled {
    /// True when [`GemmElem::packed_mul`] runs (f32 on a CPU with AVX-512).
    fn packed_kernel() -> bool;

    /// `C` `(m, n)` (+)= `A` `B` with `B` packed ([`Rhs`]): see [`packed_mul_f32`].
    fn packed_mul(
        dims: (usize, usize, usize),
        a: Lhs<'_, Self>,
        b: &[Self],
        c: &mut [Self],
        accumulate: bool,
    );
}

impl GemmElem for f32 {
    fn packed_kernel() -> bool {
        crate::simd::simd() == crate::simd::Simd::Avx512
    }

    fn packed_mul(
        dims: (usize, usize, usize),
        a: Lhs<'_, f32>,
        b: &[f32],
        c: &mut [f32],
        accumulate: bool,
    ) {
        packed_mul_f32(dims, a, b, c, accumulate)
    }
}

impl GemmElem for f64 {
    fn packed_kernel() -> bool {
        false
    }

    /// Never called: [`Rhs`] packs only where [`GemmElem::packed_kernel`] is true.
    fn packed_mul(_: (usize, usize, usize), _: Lhs<'_, f64>, _: &[f64], _: &mut [f64], _: bool) {
        unreachable!("no packed kernel for f64")
    }
}

/// The right operand `B` `(k, n)` of repeated products `C = A B`, packed into panels for the
/// AVX-512 kernel, or else kept row-major. Its buffer comes from, and goes back to, the
/// scratch pool.
pub(crate) struct Rhs<F: GemmElem> {
    k: usize,
    n: usize,
    packed: bool,
    data: Vec<F>,
}

impl<F: GemmElem> Drop for Rhs<F> {
    fn drop(&mut self) {
        scratch::give(std::mem::take(&mut self.data));
    }
}

impl<F: GemmElem> Rhs<F> {
    /// An operand `(k, n)` whose values are then written with [`Rhs::fill`] (every value
    /// must be written before the first product).
    pub(crate) fn new(k: usize, n: usize) -> Self {
        let packed = F::packed_kernel();
        let len = if packed { n.div_ceil(NR) * NR * k } else { n * k };
        let mut rhs = Self { k, n, packed, data: scratch::take(len) };
        if packed && !n.is_multiple_of(NR) {
            // The padding columns of the last panel: never stored to `C`, but zeros keep
            // stale values (say subnormals, which are slow) out of the arithmetic.
            let last = (n / NR) * k * NR;
            for row in rhs.data[last..].chunks_exact_mut(NR) {
                row[n % NR..].fill(F::zero());
            }
        }
        rhs
    }

    /// Writes the block of `B` at rows `p0 .. p0 + rows`, columns `j0 .. j0 + cols`:
    /// `B[p0 + p, j0 + j] = src[p * rs + j * cs]`.
    ///
    /// # Panics
    /// If the block lies outside `B` or `src` is too short (internal invariants of the fused
    /// op, which sizes every buffer from the checked shapes).
    pub(crate) fn fill(
        &mut self,
        (p0, rows): (usize, usize),
        (j0, cols): (usize, usize),
        src: &[F],
        rs: usize,
        cs: usize,
    ) {
        let (k, n) = (self.k, self.n);
        assert!(
            p0 + rows <= k && j0 + cols <= n,
            "block at ({p0}, {j0}) of size ({rows}, {cols}) in a ({k}, {n}) operand"
        );
        if rows == 0 || cols == 0 {
            return;
        }
        let last = (rows - 1) * rs + (cols - 1) * cs;
        assert!(src.len() > last, "source of {} values, reads index {last}", src.len());
        if !self.packed {
            for p in 0..rows {
                let row = &mut self.data[(p0 + p) * n + j0..][..cols];
                for (j, v) in row.iter_mut().enumerate() {
                    *v = src[p * rs + j * cs];
                }
            }
            return;
        }
        // Panel by panel: the columns `j0 + j` for `j` in `lo .. hi` fall into panel `q`.
        let mut lo = 0;
        while lo < cols {
            let (q, off) = ((j0 + lo) / NR, (j0 + lo) % NR);
            let hi = cols.min(lo + NR - off);
            let block = &mut self.data[q * k * NR..][p0 * NR..(p0 + rows) * NR];
            if cs == 1 {
                for (p, row) in block.chunks_exact_mut(NR).enumerate() {
                    row[off..off + hi - lo].copy_from_slice(&src[p * rs + lo..][..hi - lo]);
                }
            } else {
                // A transposed source: walk it along its rows (`rs` is then usually 1).
                for j in lo..hi {
                    for (p, row) in block.chunks_exact_mut(NR).enumerate() {
                        row[off + j - lo] = src[p * rs + j * cs];
                    }
                }
            }
            lo = hi;
        }
    }

    /// `C` `(m, n)` = `A` `B`, or `C += A B` with `accumulate`; `C` row-major.
    ///
    /// # Panics
    /// If `A` or `C` is shorter than its matrix (internal invariants, as [`matmul`]).
    pub(crate) fn mul(&self, m: usize, a: Lhs<'_, F>, c: &mut [F], accumulate: bool) {
        let (k, n) = (self.k, self.n);
        a.check(m, k);
        if self.packed {
            return F::packed_mul((m, n, k), a, &self.data, c, accumulate);
        }
        match a {
            Lhs::RowMajor(a) => matmul((m, n, k), c, accumulate, a, false, &self.data, false),
            Lhs::Transposed(a) => matmul((m, n, k), c, accumulate, a, true, &self.data, false),
            Lhs::Split(a1, k1, a2) => {
                matmul((m, n, k1), c, accumulate, a1, false, &self.data, false);
                let b2 = &self.data[k1 * n..];
                matmul((m, n, k - k1), c, accumulate || k1 > 0, a2, false, b2, false);
            }
        }
    }
}

/// `C` `(m, n)` (+)= `A` `B` in f32 with `B` packed in panels of [`NR`] columns (see the
/// module documentation).
///
/// # Panics
/// If a slice is shorter than its matrix, or the CPU lacks AVX-512 (callers check
/// [`GemmElem::packed_kernel`]).
pub(crate) fn packed_mul_f32(
    (m, n, k): (usize, usize, usize),
    a: Lhs<'_, f32>,
    b: &[f32],
    c: &mut [f32],
    accumulate: bool,
) {
    a.check(m, k);
    assert!(
        b.len() >= n.div_ceil(NR) * NR * k && c.len() >= m * n,
        "packed product ({m}, {k}) by ({k}, {n}) on buffers of {} and {} values",
        b.len(),
        c.len()
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(0.0);
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        assert!(
            std::arch::is_x86_feature_detected!("avx512f"),
            "the packed f32 kernel needs AVX-512"
        );
        // `A` as the kernel addresses it: value (i, p) of block 1 (p < k1) at
        // a1[i * s1 + p * t1], of block 2 at a2[i * s2 + (p - k1) * t2].
        let (a1, s1, t1, k1, a2, s2) = match a {
            Lhs::RowMajor(a) => (a.as_ptr(), k, 1, k, a.as_ptr(), k),
            Lhs::Transposed(a) => (a.as_ptr(), 1, m, k, a.as_ptr(), 1),
            Lhs::Split(a1, k1, a2) => (a1.as_ptr(), k1, 1, k1, a2.as_ptr(), k - k1),
        };
        let a = avx512::Lhs { a1, s1, t1, k1, a2, s2 };
        // SAFETY: AVX-512F is present (checked above); the slices hold the matrices that the
        // kernel addresses (checked above: `A` (m, k) in the layout `a` describes, `B`
        // ceil(n / 32) panels of (k, 32), `C` (m, n) with row stride n, of which it touches
        // only columns < n, through masks).
        unsafe { avx512::gemm((m, n, k), a, b.as_ptr(), c.as_mut_ptr(), accumulate) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = accumulate;
        panic!("the packed f32 kernel needs AVX-512");
    }
}

/// The kernel, in AVX-512 intrinsics (stable since Rust 1.89, the workspace's
/// `rust-version`).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{KC, MC, MR, NR};

    /// Where the kernel reads `A`: value (i, p) at `a1[i * s1 + p * t1]` for `p < k1`, at
    /// `a2[i * s2 + (p - k1)]` after (the second block is row-major).
    #[derive(Clone, Copy)]
    pub(super) struct Lhs {
        pub(super) a1: *const f32,
        pub(super) s1: usize,
        pub(super) t1: usize,
        pub(super) k1: usize,
        pub(super) a2: *const f32,
        pub(super) s2: usize,
    }

    /// The blocked loops over `C` (see the module documentation).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn gemm(
        (m, n, k): (usize, usize, usize),
        a: Lhs,
        b: *const f32,
        c: *mut f32,
        accumulate: bool,
    ) {
        let panels = n.div_ceil(NR);
        let mut k0 = 0;
        while k0 < k {
            let kc = KC.min(k - k0);
            let acc = accumulate || k0 > 0;
            let mut i0 = 0;
            while i0 < m {
                let i_end = (i0 + MC).min(m);
                for q in 0..panels {
                    let cols = NR.min(n - q * NR);
                    let lo = cols.min(16);
                    let hi = cols - lo;
                    let (m0, m1) =
                        (((1u32 << lo) - 1) as __mmask16, ((1u32 << hi) - 1) as __mmask16);
                    let mut i = i0;
                    while i < i_end {
                        let rows = MR.min(i_end - i);
                        let t = Tile {
                            k: (k0, k0 + kc),
                            b: b.add(q * k * NR),
                            c: c.add(i * n + q * NR),
                            ldc: n,
                            m0,
                            m1,
                            acc,
                        };
                        let a = Lhs { a1: a.a1.add(i * a.s1), a2: a.a2.add(i * a.s2), ..a };
                        if a.t1 == 1 {
                            t.rows::<false>(rows, a);
                        } else {
                            t.rows::<true>(rows, a);
                        }
                        i += MR;
                    }
                }
                i0 = i_end;
            }
            k0 += kc;
        }
    }

    /// One register tile's fixed arguments: the steps `k.0 .. k.1` of the packed panel `b`,
    /// the tile's corner in `C` (row stride `ldc`), the masks of its two 16-column halves,
    /// and whether to add to `C`.
    struct Tile {
        k: (usize, usize),
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        m0: __mmask16,
        m1: __mmask16,
        acc: bool,
    }

    impl Tile {
        /// Dispatches `rows` (1 to [`MR`]) to the kernel with that many rows. `T`: the first
        /// block of `A` is stored transposed (its rows have unit stride), so that each step
        /// reads the tile's values of `A` from one place.
        #[target_feature(enable = "avx512f")]
        unsafe fn rows<const T: bool>(&self, rows: usize, a: Lhs) {
            match rows {
                1 => self.kernel::<1, T>(a),
                2 => self.kernel::<2, T>(a),
                3 => self.kernel::<3, T>(a),
                4 => self.kernel::<4, T>(a),
                5 => self.kernel::<5, T>(a),
                6 => self.kernel::<6, T>(a),
                7 => self.kernel::<7, T>(a),
                _ => self.kernel::<MR, T>(a),
            }
        }

        /// `R` rows by 32 columns: the accumulators stay in registers over the steps (first
        /// those of `A`'s first block, then of its second), then are added to `C` (with
        /// `acc`) and stored through the column masks.
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn kernel<const R: usize, const T: bool>(&self, a: Lhs) {
            let mut c0 = [_mm512_setzero_ps(); R];
            let mut c1 = [_mm512_setzero_ps(); R];
            let (start, end) = self.k;
            for p in start..end.min(a.k1) {
                let b0 = _mm512_loadu_ps(self.b.add(p * NR));
                let b1 = _mm512_loadu_ps(self.b.add(p * NR + 16));
                for r in 0..R {
                    let v = if T { *a.a1.add(p * a.t1 + r) } else { *a.a1.add(r * a.s1 + p) };
                    let v = _mm512_set1_ps(v);
                    c0[r] = _mm512_fmadd_ps(v, b0, c0[r]);
                    c1[r] = _mm512_fmadd_ps(v, b1, c1[r]);
                }
            }
            for p in start.max(a.k1)..end {
                let b0 = _mm512_loadu_ps(self.b.add(p * NR));
                let b1 = _mm512_loadu_ps(self.b.add(p * NR + 16));
                let a2 = a.a2.add(p - a.k1);
                for r in 0..R {
                    let v = _mm512_set1_ps(*a2.add(r * a.s2));
                    c0[r] = _mm512_fmadd_ps(v, b0, c0[r]);
                    c1[r] = _mm512_fmadd_ps(v, b1, c1[r]);
                }
            }
            for r in 0..R {
                let cr = self.c.add(r * self.ldc);
                let (mut v0, mut v1) = (c0[r], c1[r]);
                if self.acc {
                    v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(self.m0, cr), v0);
                    v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(self.m1, cr.add(16)), v1);
                }
                _mm512_mask_storeu_ps(cr, self.m0, v0);
                _mm512_mask_storeu_ps(cr.add(16), self.m1, v1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{GemmElem, Lhs, Rhs};

    /// Every shape class the fused op uses (and ragged ones: rows not a multiple of the tile,
    /// columns not a multiple of the panel, `k` over one block), both layouts of `A` and `B`,
    /// plain and accumulating, against a triple loop in f64. On a CPU without AVX-512 this
    /// checks the plain path (and says so).
    #[test]
    fn products_match_a_triple_loop() {
        if !<f32 as GemmElem>::packed_kernel() {
            eprintln!("no AVX-512 here: the plain path is tested, not the packed kernel");
        }
        let cases =
            [(32, 512, 128), (32, 128, 512), (13, 45, 300), (70, 33, 7), (1, 1, 1), (9, 16, 0)];
        for (m, n, k) in cases {
            let a: Vec<f32> = (0..m * k).map(|i| ((i as f32) * 0.37).sin()).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i as f32) * 0.11).cos()).collect();
            for (a_t, b_t) in [(false, false), (true, false), (false, true), (true, true)] {
                let get_a = |i: usize, p: usize| if a_t { a[p * m + i] } else { a[i * k + p] };
                let get_b = |p: usize, j: usize| if b_t { b[j * k + p] } else { b[p * n + j] };
                let mut rhs = Rhs::<f32>::new(k, n);
                // Fill in blocks, as the fused op fills `[x | h_prev]` from three sources:
                // two row blocks, the second in two column blocks.
                let (split, cut) = (k / 3, n / 3);
                let (rs, cs) = if b_t { (1, k) } else { (n, 1) };
                rhs.fill((0, split), (0, n), &b, rs, cs);
                let rest = &b[split * rs..];
                rhs.fill((split, k - split), (0, cut), rest, rs, cs);
                rhs.fill(
                    (split, k - split),
                    (cut, n - cut),
                    &rest[(cut * cs).min(rest.len())..],
                    rs,
                    cs,
                );
                let lhs = if a_t { Lhs::Transposed(&a) } else { Lhs::RowMajor(&a) };
                let mut c = vec![0.5f32; m * n + 3];
                rhs.mul(m, lhs, &mut c, true);
                let mut worst = 0f64;
                for i in 0..m {
                    for j in 0..n {
                        let want: f64 = 0.5
                            + (0..k).map(|p| get_a(i, p) as f64 * get_b(p, j) as f64).sum::<f64>();
                        worst = worst.max((c[i * n + j] as f64 - want).abs());
                    }
                }
                assert!(worst < 1e-4, "({m}, {n}, {k}) a_t {a_t} b_t {b_t}: error {worst}");
                assert_eq!(c[m * n..], [0.5; 3], "wrote past C");
                rhs.mul(m, lhs, &mut c, false);
                if m * n > 0 {
                    let want: f64 = (0..k).map(|p| get_a(0, p) as f64 * get_b(p, 0) as f64).sum();
                    assert!((c[0] as f64 - want).abs() < 1e-4, "({m}, {n}, {k}) overwrite");
                }
                if !a_t {
                    // The same product with `A` given as two blocks of columns.
                    let k1 = k / 4;
                    let a1: Vec<f32> = (0..m * k1).map(|i| a[(i / k1) * k + i % k1]).collect();
                    let a2: Vec<f32> = (0..m * (k - k1))
                        .map(|i| a[(i / (k - k1)) * k + k1 + i % (k - k1)])
                        .collect();
                    let mut c2 = vec![0f32; m * n];
                    rhs.mul(m, Lhs::Split(&a1, k1, &a2), &mut c2, false);
                    assert_eq!(c2, c[..m * n], "({m}, {n}, {k}) split at {k1}");
                }
            }
        }
    }
}
