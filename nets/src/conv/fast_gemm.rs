//! The matrix products of the convolution kernels (`fast`, `fast_shifted`,
//! `fast_transpose`): strided matrix views over flat buffers, one call into the `gemm` crate
//! (the product candle itself uses, built with its `x86-v4` feature so that AVX-512 kernels
//! run where the CPU has them), and the per-thread scratch buffers the kernels reuse.

use candle_core::{CpuStorage, Layout, Result, WithDType};
use gemm::Parallelism;
use num_traits::Float;

/// The element types of the kernels, each with a per-thread column buffer that is reused
/// from call to call: a fresh multi-megabyte buffer per convolution would be mapped and
/// page-faulted in again every time. A thread keeps the largest buffer it has needed.
pub(crate) trait Element: WithDType + Float {
    /// Runs `f` on a scratch slice of `len` elements (contents unspecified).
    fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R;

    /// The slice as f32 when `Self` is f32 (the direct kernels, `fast_direct`, are f32 only).
    fn as_f32(s: &[Self]) -> Option<&[f32]>;

    /// [`Element::as_f32`] for a mutable slice.
    fn as_f32_mut(s: &mut [Self]) -> Option<&mut [f32]>;
}

macro_rules! element {
    ($t:ty, $key:ident, $as_f32:expr, $as_f32_mut:expr) => {
        thread_local! {
            static $key: std::cell::RefCell<Vec<$t>> = const { std::cell::RefCell::new(Vec::new()) };
        }

        impl Element for $t {
            fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R {
                $key.with(|cell| match cell.try_borrow_mut() {
                    Ok(mut buf) => {
                        if buf.len() < len {
                            buf.resize(len, 0.0);
                        }
                        f(&mut buf[..len])
                    }
                    // Only reachable by re-entry, which the kernels never do; stay correct.
                    Err(_) => f(&mut vec![0.0; len]),
                })
            }

            fn as_f32(s: &[Self]) -> Option<&[f32]> {
                $as_f32(s)
            }

            fn as_f32_mut(s: &mut [Self]) -> Option<&mut [f32]> {
                $as_f32_mut(s)
            }
        }
    };
}

element!(f32, COLS_F32, Some, Some);
element!(f64, COLS_F64, |_| None, |_| None);

/// A row-major matrix view for [`matmul`]: element `(i, j)` is at `offset + i rs + j cs`.
#[derive(Clone, Copy)]
pub(crate) struct Mat {
    pub offset: usize,
    pub rs: usize,
    pub cs: usize,
}

impl Mat {
    pub(crate) fn row_major(offset: usize, cols: usize) -> Self {
        Self { offset, rs: cols, cs: 1 }
    }

    pub(crate) fn transposed(offset: usize, cols_of_original: usize) -> Self {
        Self { offset, rs: 1, cs: cols_of_original }
    }

    /// One past the largest index of an `r x c` view (for the bounds check).
    fn end(&self, r: usize, c: usize) -> usize {
        if r == 0 || c == 0 {
            self.offset
        } else {
            self.offset + (r - 1) * self.rs + (c - 1) * self.cs + 1
        }
    }
}

/// `dst[m, n] (+)= lhs[m, k] @ rhs[k, n]` with the `gemm` crate; `accumulate` adds to `dst`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul<T: 'static + Float>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [T],
    d: Mat,
    accumulate: bool,
    lhs: &[T],
    a: Mat,
    rhs: &[T],
    b: Mat,
) -> Result<()> {
    if d.end(m, n) > dst.len() || a.end(m, k) > lhs.len() || b.end(k, n) > rhs.len() {
        candle_core::bail!("conv kernel: matrix view out of bounds ({m}x{n}x{k})")
    }
    let parallelism = match candle_core::utils::get_num_threads() {
        0 | 1 => Parallelism::None,
        t => Parallelism::Rayon(t),
    };
    let alpha = if accumulate { T::one() } else { T::zero() };
    // SAFETY: the three views were checked to lie inside their slices above, `dst` is a
    // unique borrow that does not alias `lhs` or `rhs`, and T is f32 or f64 (the only types
    // the callers instantiate), which gemm supports.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().add(d.offset),
            d.cs as isize,
            d.rs as isize,
            accumulate,
            lhs.as_ptr().add(a.offset),
            a.cs as isize,
            a.rs as isize,
            rhs.as_ptr().add(b.offset),
            b.cs as isize,
            b.rs as isize,
            alpha,
            T::one(),
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

pub(crate) fn contiguous<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let data = s.as_slice::<T>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("conv kernel: non-contiguous operand {:?}", l.dims()),
    }
}
