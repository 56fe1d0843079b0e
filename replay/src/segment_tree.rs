//! Sum and min segment trees for prioritized experience replay.
//!
//! Prioritized experience replay (Schaul, Quan, Antonoglou and Silver, *Prioritized
//! Experience Replay*, ICLR 2016, arXiv:1511.05952) samples transition `i` with probability
//!
//! ```text
//! P(i) = p_i / sum_k p_k            (p_i = (|delta_i| + eps)^alpha, the stored priority)
//! ```
//!
//! and corrects the bias with the importance-sampling weight
//!
//! ```text
//! w_i = (N * P(i))^(-beta) / max_j w_j,   max_j w_j = (N * min_k P(k))^(-beta)
//! ```
//!
//! Two trees make both O(log n):
//!
//! - [`SumTree`] keeps every partial sum of the priorities. Drawing `u` uniformly in
//!   `[0, 1)` and calling [`SumTree::find_prefix`]`(u * total())` returns leaf `i` with
//!   probability `p_i / total()`. The paper's stratified variant draws one `u` in each of `k`
//!   equal slices `[j / k, (j + 1) / k)` of a minibatch of `k`.
//! - [`MinTree`] keeps the smallest priority, [`MinTree::min`], for the normalising weight
//!   `max_j w_j` above (`min_k P(k) = min() / total()`).
//!
//! Both are complete binary trees in one flat array: the number of leaves is the requested
//! capacity rounded up to a power of two, node 1 is the root, node `j` has children `2j` and
//! `2j + 1`, and leaf `i` is node `leaves + i`. Leaves past the requested capacity hold the
//! neutral element of the operation (0 for the sum, `+inf` for the min), so they never change
//! a total or a minimum and are never sampled. Every internal node is recomputed from its two
//! children on each update (never adjusted by a difference), so the sums do not drift however
//! many updates a tree sees.
//!
//! Cost, for `n` leaves: `set` is O(log n) (the leaf and its `log2 n` ancestors), `find_prefix`
//! is O(log n) (one root-to-leaf descent, branch-free, prefetching three levels ahead on
//! x86_64), `total`, `min` and `get` are O(1). None of them allocates; `new` allocates the
//! `2 n` nodes once. On a tree larger than the cache a single descent waits on a few cache
//! misses in a row; [`SumTree::find_prefix_batch`] interleaves the descents of a minibatch so
//! that those misses overlap.
//!
//! Bad input is a [`TreeError`], never a panic, and leaves the tree as it was.

use std::fmt;
use std::marker::PhantomData;

/// A rejected update of a [`SumTree`] or a [`MinTree`]. The tree is left unchanged.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum TreeError {
    /// The leaf index is not below the tree's capacity.
    #[error("leaf index {index} is out of range for a tree of capacity {capacity}")]
    IndexOutOfRange {
        /// The index that was passed.
        index: usize,
        /// The capacity the tree was created with (not rounded up).
        capacity: usize,
    },
    /// The value is not allowed in this tree: NaN in either tree; negative or infinite in a
    /// [`SumTree`].
    #[error(
        "invalid value {value} for leaf {index} of a tree of capacity {capacity}: expected {expected}"
    )]
    InvalidValue {
        /// The leaf index that was passed.
        index: usize,
        /// The rejected value.
        value: f64,
        /// The capacity the tree was created with.
        capacity: usize,
        /// What the tree accepts.
        expected: &'static str,
    },
    /// Every value is finite but the sum of the tree would overflow to infinity.
    #[error(
        "value {value} for leaf {index} of a sum tree of capacity {capacity} makes the total overflow"
    )]
    TotalOverflow {
        /// The leaf index that was passed.
        index: usize,
        /// The rejected value.
        value: f64,
        /// The capacity the tree was created with.
        capacity: usize,
    },
}

/// The associative operation of a [`SegmentTree`] and its neutral element.
trait Operation {
    /// `combine(NEUTRAL, x) == x` for every value the tree accepts.
    const NEUTRAL: f64;
    fn combine(a: f64, b: f64) -> f64;
}

/// Addition, neutral element 0.
#[derive(Debug, Clone, Copy)]
struct Sum;

impl Operation for Sum {
    const NEUTRAL: f64 = 0.0;
    #[inline(always)]
    fn combine(a: f64, b: f64) -> f64 {
        a + b
    }
}

/// Minimum, neutral element `+inf`. Only non-NaN values are stored, so `f64::min` is exact.
#[derive(Debug, Clone, Copy)]
struct Min;

impl Operation for Min {
    const NEUTRAL: f64 = f64::INFINITY;
    #[inline(always)]
    fn combine(a: f64, b: f64) -> f64 {
        a.min(b)
    }
}

/// The shared implementation: a complete binary tree over `leaves` (a power of two) leaves in
/// one flat array of `2 * leaves` nodes. Node 0 is unused, node 1 is the root, the children of
/// node `j` are `2j` and `2j + 1`, leaf `i` is node `leaves + i`.
///
/// It does no validation: the public wrappers check indices and values first.
#[derive(Clone)]
struct SegmentTree<O> {
    nodes: Box<[f64]>,
    /// The requested capacity; leaves `capacity..leaves` stay at `O::NEUTRAL`.
    capacity: usize,
    /// `capacity` rounded up to a power of two (at least 1).
    leaves: usize,
    op: PhantomData<O>,
}

impl<O: Operation> SegmentTree<O> {
    fn new(capacity: usize) -> Self {
        let leaves = capacity
            .max(1)
            .checked_next_power_of_two()
            .filter(|&l| l <= usize::MAX / 2)
            .expect("segment tree capacity overflow");
        Self {
            nodes: vec![O::NEUTRAL; 2 * leaves].into_boxed_slice(),
            capacity,
            leaves,
            op: PhantomData,
        }
    }

    /// The value of a leaf, `None` past the capacity.
    #[inline]
    fn get(&self, index: usize) -> Option<f64> {
        if index < self.capacity {
            Some(self.nodes[self.leaves + index])
        } else {
            None
        }
    }

    /// The leaves `0..capacity`.
    #[inline]
    fn values(&self) -> &[f64] {
        &self.nodes[self.leaves..self.leaves + self.capacity]
    }

    #[inline]
    fn root(&self) -> f64 {
        self.nodes[1]
    }

    /// Stores `value` at leaf `index < capacity` and recomputes its ancestors.
    #[inline]
    fn update(&mut self, index: usize, value: f64) {
        debug_assert!(index < self.capacity);
        let nodes = &mut self.nodes[..];
        let mut j = self.leaves + index;
        nodes[j] = value;
        while j > 1 {
            // Left child first, whichever of the two changed: a node's value then depends
            // only on its children's (the min of -0.0 and 0.0 would depend on the order).
            let combined = O::combine(nodes[j & !1], nodes[j | 1]);
            j >>= 1;
            nodes[j] = combined;
        }
    }
}

/// How many levels ahead [`SumTree::find_prefix`] prefetches.
const PREFETCH_LEVELS: u32 = 3;

/// Asks the CPU to start loading the cache line of `nodes[index]` (clamped to the slice). A
/// hint only: no value changes, and it compiles to nothing off x86_64.
#[inline(always)]
fn prefetch(nodes: &[f64], index: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let at: *const f64 = &nodes[index.min(nodes.len() - 1)];
        // SAFETY: `prefetch` (SSE) is part of every x86_64 target, and a prefetch never
        // faults nor changes memory; the pointer comes from a reference into the slice.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(at.cast()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (nodes, index);
}

impl<O> SegmentTree<O> {
    /// Number of levels below the root: `log2(leaves)`.
    #[inline]
    fn depth(&self) -> u32 {
        self.leaves.trailing_zeros()
    }
}

/// A sum tree over `f64` priorities: samples leaf `i` with probability `p_i / sum_k p_k`.
///
/// Leaves hold finite, non-negative values; a leaf of value 0 is never sampled (an empty slot
/// of a replay buffer is a leaf of value 0). Leaves start at 0. See the [module
/// docs](self) for the formulas and the layout.
///
/// ```
/// use deeprl_replay::segment_tree::SumTree;
///
/// let mut tree = SumTree::new(3);
/// tree.set(0, 1.0).unwrap();
/// tree.set(2, 3.0).unwrap();
/// assert_eq!(tree.total(), 4.0);
/// assert_eq!(tree.find_prefix(0.5), 0); // mass in [0, 1) -> leaf 0
/// assert_eq!(tree.find_prefix(1.0), 2); // mass in [1, 4) -> leaf 2 (leaf 1 holds 0)
/// assert_eq!(tree.find_prefix(4.0), 2); // mass == total clamps to the last positive leaf
/// ```
#[derive(Clone)]
pub struct SumTree {
    tree: SegmentTree<Sum>,
}

impl SumTree {
    /// A tree of `capacity` leaves, all 0. The array holds `2 * capacity.next_power_of_two()`
    /// nodes. Capacity 0 is allowed: such a tree rejects every `set` and its total stays 0.
    ///
    /// # Panics
    ///
    /// Like `Vec::with_capacity`, when that many nodes cannot be allocated.
    pub fn new(capacity: usize) -> Self {
        Self { tree: SegmentTree::new(capacity) }
    }

    /// The number of leaves that can be set, as passed to [`SumTree::new`].
    #[inline]
    pub fn capacity(&self) -> usize {
        self.tree.capacity
    }

    /// Sets leaf `index` to `value` and updates its ancestors in O(log n).
    ///
    /// # Errors
    ///
    /// The tree is left unchanged and the error names the index, the value and the capacity
    /// when `index >= capacity()` ([`TreeError::IndexOutOfRange`]), when `value` is NaN,
    /// negative or infinite ([`TreeError::InvalidValue`]; `-0.0` is stored as `0.0`), or when
    /// the new total would overflow to infinity ([`TreeError::TotalOverflow`]).
    #[inline]
    pub fn set(&mut self, index: usize, value: f64) -> Result<(), TreeError> {
        let capacity = self.tree.capacity;
        if index >= capacity {
            return Err(TreeError::IndexOutOfRange { index, capacity });
        }
        // Both tests are false for NaN.
        if !(value.is_finite() && value >= 0.0) {
            return Err(TreeError::InvalidValue {
                index,
                value,
                capacity,
                expected: "a finite, non-negative number",
            });
        }
        let old = self.tree.nodes[self.tree.leaves + index];
        // `+ 0.0` turns -0.0 into 0.0.
        self.tree.update(index, value + 0.0);
        if self.tree.root() == f64::INFINITY {
            self.tree.update(index, old);
            return Err(TreeError::TotalOverflow { index, value, capacity });
        }
        Ok(())
    }

    /// The value of leaf `index`, or `None` when `index >= capacity()`.
    #[inline]
    pub fn get(&self, index: usize) -> Option<f64> {
        self.tree.get(index)
    }

    /// The values of leaves `0..capacity()`, in order.
    #[inline]
    pub fn values(&self) -> &[f64] {
        self.tree.values()
    }

    /// The sum of all leaves (the root), in O(1).
    #[inline]
    pub fn total(&self) -> f64 {
        self.tree.root()
    }

    /// The smallest leaf index `i` such that the sum of leaves `0..=i` exceeds `mass`, in
    /// O(log n). With `mass = u * total()` and `u` uniform in `[0, 1)`, leaf `i` comes out
    /// with probability `p_i / total()`.
    ///
    /// The descent goes to the left child when `mass < left`, otherwise subtracts `left` and
    /// goes to the right child. The result always holds a positive value (whenever `total() >
    /// 0`), whatever the mass and the rounding:
    ///
    /// - `mass <= 0` (and `-0.0`) gives the first positive leaf;
    /// - `mass >= total()` (which `u * total()` can reach by rounding) and a NaN mass give the
    ///   last positive leaf;
    /// - when rounding in the subtractions leaves a residual mass at least as large as a right
    ///   subtree that sums to 0, the descent stays on the left, so leaves of value 0, padding
    ///   included, are never returned.
    ///
    /// When `total() == 0` no leaf is positive and the result is 0 (not a valid sample, and
    /// not a valid index at capacity 0): check `total() > 0` before sampling, as `P(i)` is
    /// undefined then.
    ///
    /// For a minibatch, [`SumTree::find_prefix_batch`] gives the same answers faster.
    #[inline]
    pub fn find_prefix(&self, mass: f64) -> usize {
        let nodes = &self.tree.nodes[..];
        let mut mass = start_mass(mass, nodes[1]);
        let mut j = 1;
        for _ in 0..self.tree.depth() {
            // Start loading the descendants PREFETCH_LEVELS levels down (a block of
            // 2^PREFETCH_LEVELS nodes, one or two cache lines) while this level is decided:
            // on a large tree the lower levels miss the cache, and these loads overlap.
            let first = j << PREFETCH_LEVELS;
            prefetch(nodes, first);
            prefetch(nodes, first + (1 << PREFETCH_LEVELS) - 1);
            descend(nodes, &mut j, &mut mass);
        }
        j - self.tree.leaves
    }

    /// [`SumTree::find_prefix`] for many masses at once: `out[k] = find_prefix(masses[k])`,
    /// bit for bit the same answers, for `k < min(masses.len(), out.len())` (the two slices
    /// should have the same length; the extra entries of the longer one are left alone).
    ///
    /// The descents run 16 at a time, level by level, so their cache misses overlap instead
    /// of queueing: on a tree too large for the cache this costs a fraction of one call per
    /// mass. Use it for a minibatch, e.g. one stratified mass per slice of the total. No
    /// allocation.
    pub fn find_prefix_batch(&self, masses: &[f64], out: &mut [usize]) {
        const LANES: usize = 16;
        let nodes = &self.tree.nodes[..];
        let total = nodes[1];
        for (masses, out) in masses.chunks(LANES).zip(out.chunks_mut(LANES)) {
            // Lanes past a short last chunk descend with mass 0 and are dropped.
            let mut mass = [0.0; LANES];
            let mut node = [1usize; LANES];
            for (m, &x) in mass.iter_mut().zip(masses) {
                *m = start_mass(x, total);
            }
            for _ in 0..self.tree.depth() {
                for (j, m) in node.iter_mut().zip(&mut mass) {
                    descend(nodes, j, m);
                }
            }
            for (o, &j) in out.iter_mut().zip(&node).take(masses.len()) {
                *o = j - self.tree.leaves;
            }
        }
    }
}

/// The mass a descent starts with: negative masses become 0 (the first positive leaf), and
/// masses at or past the total, NaN included, become `+inf`, which never goes left while the
/// right subtree is positive, so it reaches the last positive leaf.
#[inline(always)]
fn start_mass(mass: f64, total: f64) -> f64 {
    if mass < total {
        mass.max(0.0)
    } else {
        f64::INFINITY
    }
}

/// One level of the sum tree's descent from node `j`: to the left child when `mass < left`,
/// otherwise `mass -= left` and to the right child, but never into a right subtree that sums
/// to 0.
///
/// Invariant (when the total is positive): node `j` holds a positive value. Going right needs
/// a positive right child; going left happens when `mass < left` (so left > mass >= 0) or when
/// the right child is 0 (so left equals the positive parent). Hence the leaf reached is
/// positive, whatever rounding did to `mass`.
#[inline(always)]
fn descend(nodes: &[f64], j: &mut usize, mass: &mut f64) {
    let left = nodes[2 * *j];
    let right = nodes[2 * *j + 1];
    let go_right = (*mass >= left) & (right > 0.0);
    // `mass -= if go_right { left } else { 0.0 }` without a branch: the direction is a coin
    // flip, and a mispredicted branch per level costs more than the whole level. (LLVM turns
    // a select or a bit mask back into a branch; it cannot do that to the product, as
    // `left * 0.0` is not 0 for every float.)
    *mass -= left * f64::from(u8::from(go_right));
    *j = 2 * *j + usize::from(go_right);
}

impl fmt::Debug for SumTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SumTree")
            .field("capacity", &self.capacity())
            .field("total", &self.total())
            .finish_non_exhaustive()
    }
}

/// A min tree over `f64` values: the smallest priority in O(1), for the importance-sampling
/// weights of prioritized replay (`max_j w_j = (N * min() / total)^(-beta)`).
///
/// Leaves start at `+inf`, the neutral element: an empty slot is a leaf of `+inf`, so
/// [`MinTree::min`] is `+inf` while the tree is empty. See the [module docs](self).
///
/// ```
/// use deeprl_replay::segment_tree::MinTree;
///
/// let mut tree = MinTree::new(5);
/// assert_eq!(tree.min(), f64::INFINITY);
/// tree.set(1, 2.0).unwrap();
/// tree.set(4, 0.5).unwrap();
/// assert_eq!(tree.min(), 0.5);
/// tree.set(4, f64::INFINITY).unwrap(); // clear leaf 4
/// assert_eq!(tree.min(), 2.0);
/// ```
#[derive(Clone)]
pub struct MinTree {
    tree: SegmentTree<Min>,
}

impl MinTree {
    /// A tree of `capacity` leaves, all `+inf`. Capacity 0 is allowed: such a tree rejects
    /// every `set` and its minimum stays `+inf`.
    ///
    /// # Panics
    ///
    /// Like `Vec::with_capacity`, when the `2 * capacity.next_power_of_two()` nodes cannot be
    /// allocated.
    pub fn new(capacity: usize) -> Self {
        Self { tree: SegmentTree::new(capacity) }
    }

    /// The number of leaves that can be set, as passed to [`MinTree::new`].
    #[inline]
    pub fn capacity(&self) -> usize {
        self.tree.capacity
    }

    /// Sets leaf `index` to `value` and updates its ancestors in O(log n). Any value but NaN
    /// is accepted: the tree is a plain minimum, and `+inf` clears a leaf.
    ///
    /// # Errors
    ///
    /// The tree is left unchanged when `index >= capacity()` ([`TreeError::IndexOutOfRange`])
    /// or when `value` is NaN ([`TreeError::InvalidValue`]).
    #[inline]
    pub fn set(&mut self, index: usize, value: f64) -> Result<(), TreeError> {
        let capacity = self.tree.capacity;
        if index >= capacity {
            return Err(TreeError::IndexOutOfRange { index, capacity });
        }
        if value.is_nan() {
            return Err(TreeError::InvalidValue {
                index,
                value,
                capacity,
                expected: "a number that is not NaN",
            });
        }
        self.tree.update(index, value);
        Ok(())
    }

    /// The value of leaf `index`, or `None` when `index >= capacity()`.
    #[inline]
    pub fn get(&self, index: usize) -> Option<f64> {
        self.tree.get(index)
    }

    /// The values of leaves `0..capacity()`, in order.
    #[inline]
    pub fn values(&self) -> &[f64] {
        self.tree.values()
    }

    /// The smallest leaf (the root), in O(1); `+inf` when every leaf is `+inf`.
    #[inline]
    pub fn min(&self) -> f64 {
        self.tree.root()
    }
}

impl fmt::Debug for MinTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MinTree")
            .field("capacity", &self.capacity())
            .field("min", &self.min())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "segment_tree_tests.rs"]
mod tests;
