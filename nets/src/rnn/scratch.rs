//! Reused scratch buffers of the fused recurrence ([`super::fused`]).
//!
//! One call of a 50-step, batch-32, hidden-128 LSTM works on buffers of several megabytes
//! (the gate pre-activations, their gradients). Allocated fresh each call, such buffers come
//! from the kernel as new pages, and the page faults cost about as much as the gate passes
//! themselves. So the op takes its internal buffers from a small per-thread pool and gives
//! them back when it is done with them (the saved activations when the graph is dropped).
//! Buffers handed to candle as tensors are not pooled.

use std::cell::RefCell;

use super::fast_math::Elem;

/// Buffers kept per thread and element type: enough for the internal buffers of one forward
/// and one backward call, including the packed matrix operands (eight buffers, about 9 MB,
/// for the benchmark's LSTM in f32).
const MAX_POOLED: usize = 10;

/// The element types with a pool.
pub(crate) trait Pooled: Elem {
    fn with_pool<R>(f: impl FnOnce(&mut Vec<Vec<Self>>) -> R) -> R;
}

thread_local! {
    static POOL_F32: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
    static POOL_F64: RefCell<Vec<Vec<f64>>> = const { RefCell::new(Vec::new()) };
}

impl Pooled for f32 {
    fn with_pool<R>(f: impl FnOnce(&mut Vec<Vec<f32>>) -> R) -> R {
        POOL_F32.with(|p| f(&mut p.borrow_mut()))
    }
}

impl Pooled for f64 {
    fn with_pool<R>(f: impl FnOnce(&mut Vec<Vec<f64>>) -> R) -> R {
        POOL_F64.with(|p| f(&mut p.borrow_mut()))
    }
}

/// A buffer of `len` values whose contents are unspecified (left from an earlier use, or
/// zeros): callers overwrite every value before reading it, so no pass is spent zeroing. The
/// smallest pooled buffer that holds `len` (or the largest, grown), else a new one.
pub(crate) fn take<F: Pooled>(len: usize) -> Vec<F> {
    let mut buf = F::with_pool(|pool| {
        let fits = pool
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= len)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i);
        let largest = || pool.iter().enumerate().max_by_key(|(_, b)| b.capacity()).map(|(i, _)| i);
        fits.or_else(largest).map(|i| pool.swap_remove(i))
    })
    .unwrap_or_default();
    buf.truncate(len);
    buf.resize(len, F::zero());
    buf
}

/// Returns `buf` to the pool, which then drops its smallest buffer if it holds too many.
pub(crate) fn give<F: Pooled>(buf: Vec<F>) {
    if buf.capacity() == 0 {
        return;
    }
    F::with_pool(|pool| {
        pool.push(buf);
        if pool.len() > MAX_POOLED {
            if let Some(i) =
                pool.iter().enumerate().min_by_key(|(_, b)| b.capacity()).map(|(i, _)| i)
            {
                pool.swap_remove(i);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{give, take};

    /// A returned buffer is handed out again with the asked length, and the pool stays
    /// bounded.
    #[test]
    fn buffers_are_reused_and_bounded() {
        let a = take::<f64>(1000);
        assert_eq!(a.len(), 1000);
        let ptr = a.as_ptr();
        give(a);
        let b = take::<f64>(800);
        assert_eq!(b.as_ptr(), ptr, "the pooled buffer was not reused");
        assert_eq!(b.len(), 800);
        give(b);
        assert_eq!(take::<f64>(1200).len(), 1200);
        for i in 0..20 {
            give(vec![1.0f64; 10 + i]);
        }
        assert!(f64_pool_len() <= super::MAX_POOLED);
    }

    fn f64_pool_len() -> usize {
        <f64 as super::Pooled>::with_pool(|p| p.len())
    }
}
