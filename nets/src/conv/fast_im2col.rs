//! The column matrix of a convolution (im2col) and its adjoint (col2im), for the kernels of
//! `fast`: for each image and group, tap `(th, tw)` of channel `c` fills row
//! `(c kH + th) kW + tw` of a `[C_g kH kW, H' W']` matrix with the input it reads at every
//! output position, zero where it reads padding (the same geometry as the generic gather,
//! [`Axis::source`]); col2im adds such a matrix back onto the input positions.
//!
//! Index tables per axis give the source of every (tap, output) pair; where a tap's valid
//! outputs read consecutive inputs (stride 1, no zero-stuffing) the copy is one run per row,
//! and where the output rows are as wide as the input rows the whole tap is one shifted
//! block of the plane.

use num_traits::Float;

use super::fast::ConvOp;
use super::geometry::Axis;

impl ConvOp {
    /// Source index tables: entry `t * out + o` is the input index of tap `t` at output `o`,
    /// or -1 for padding; plus, per tap, the contiguous run of each table if it has one (see
    /// [`Tables::runs`] and [`Tables::row_runs`]).
    pub(crate) fn tables(&self) -> Tables {
        let table = |a: &Axis| {
            let mut t = Vec::with_capacity(a.k * a.out);
            for tap in 0..a.k {
                t.extend((0..a.out).map(|o| a.source(o, tap).map_or(-1, |i| i as isize)));
            }
            t
        };
        let runs = |a: &Axis, t: &[isize]| -> Vec<Option<Run>> {
            (0..a.k).map(|tap| Run::of(&t[tap * a.out..(tap + 1) * a.out])).collect()
        };
        let (rows, cols) = (table(&self.rows), table(&self.cols));
        let (row_runs, runs) = (runs(&self.rows, &rows), runs(&self.cols, &cols));
        // Same width in and out: consecutive output rows are consecutive input rows one
        // row length apart in both, so a tap with runs in both axes is one shifted block.
        let blocks = self.cols.out == self.cols.n;
        Tables { rows, cols, runs, row_runs, blocks }
    }

    /// Copies the taps of the `cg` channels at `x` (each `H x W`) into `cols` `[ck, l]`.
    #[inline(always)]
    pub(crate) fn im2col<T: Float>(&self, x: &[T], cg: usize, tables: &Tables, cols: &mut [T]) {
        let (rt, ct) = (&tables.rows, &tables.cols);
        let (r, c) = (&self.rows, &self.cols);
        let (w, l) = (c.n, r.out * c.out);
        let mut row = 0;
        for ci in 0..cg {
            let plane = &x[ci * r.n * w..(ci + 1) * r.n * w];
            for th in 0..r.k {
                for tw in 0..c.k {
                    let dst = &mut cols[row * l..(row + 1) * l];
                    row += 1;
                    if let Some(block) = tables.block(th, tw, w) {
                        dst[..block.start].fill(T::zero());
                        dst[block.end..].fill(T::zero());
                        let len = block.end - block.start;
                        dst[block.start..block.end]
                            .copy_from_slice(&plane[block.src..block.src + len]);
                        // The block also copied the neighbouring rows' ends into the
                        // padding columns of its inner rows.
                        block.for_each_gap(|gap| dst[gap].fill(T::zero()));
                        continue;
                    }
                    let ctab = &ct[tw * c.out..(tw + 1) * c.out];
                    for oh in 0..r.out {
                        let seg = &mut dst[oh * c.out..(oh + 1) * c.out];
                        let ih = rt[th * r.out + oh];
                        if ih < 0 {
                            seg.fill(T::zero());
                            continue;
                        }
                        let src = &plane[ih as usize * w..(ih as usize + 1) * w];
                        if let Some(run) = tables.runs[tw] {
                            seg[..run.lo].fill(T::zero());
                            seg[run.lo..run.hi].copy_from_slice(&src[run.src..run.src + run.len()]);
                            seg[run.hi..].fill(T::zero());
                            continue;
                        }
                        for (d, &iw) in seg.iter_mut().zip(ctab) {
                            *d = if iw < 0 { T::zero() } else { src[iw as usize] };
                        }
                    }
                }
            }
        }
    }

    /// Adds the column gradients `cols` `[ck, l]` back onto the `cg` channels at `gx`
    /// (`cols` is scratch: its padding entries are zeroed on the way).
    #[inline(always)]
    pub(crate) fn col2im<T: Float>(
        &self,
        cols: &mut [T],
        cg: usize,
        tables: &Tables,
        gx: &mut [T],
    ) {
        let (rt, ct) = (&tables.rows, &tables.cols);
        let (r, c) = (&self.rows, &self.cols);
        let (w, l) = (c.n, r.out * c.out);
        let mut row = 0;
        for ci in 0..cg {
            let plane = &mut gx[ci * r.n * w..(ci + 1) * r.n * w];
            for th in 0..r.k {
                for tw in 0..c.k {
                    let src = &mut cols[row * l..(row + 1) * l];
                    row += 1;
                    if let Some(block) = tables.block(th, tw, w) {
                        // Entries that read padding must add nothing to the neighbouring
                        // rows' ends that the block covers.
                        block.for_each_gap(|gap| src[gap].fill(T::zero()));
                        let len = block.end - block.start;
                        let dst = &mut plane[block.src..block.src + len];
                        for (d, &v) in dst.iter_mut().zip(&src[block.start..block.end]) {
                            *d = *d + v;
                        }
                        continue;
                    }
                    let ctab = &ct[tw * c.out..(tw + 1) * c.out];
                    for oh in 0..r.out {
                        let ih = rt[th * r.out + oh];
                        if ih < 0 {
                            continue;
                        }
                        let dst = &mut plane[ih as usize * w..(ih as usize + 1) * w];
                        let seg = &src[oh * c.out..(oh + 1) * c.out];
                        if let Some(run) = tables.runs[tw] {
                            let dst = &mut dst[run.src..run.src + run.len()];
                            for (d, &v) in dst.iter_mut().zip(&seg[run.lo..run.hi]) {
                                *d = *d + v;
                            }
                            continue;
                        }
                        for (&v, &iw) in seg.iter().zip(ctab) {
                            if iw >= 0 {
                                dst[iw as usize] = dst[iw as usize] + v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The gather tables of one convolution (see [`ConvOp::tables`]).
pub(crate) struct Tables {
    rows: Vec<isize>,
    cols: Vec<isize>,
    /// Per column tap: `Some` when its valid outputs `lo..hi` read consecutive input columns
    /// from `src` on (stride 1 without zero-stuffing), so im2col/col2im copy whole runs.
    runs: Vec<Option<Run>>,
    /// The same per row tap: valid output rows `lo..hi` read consecutive input rows.
    row_runs: Vec<Option<Run>>,
    /// The output rows are as wide as the input rows.
    blocks: bool,
}

impl Tables {
    /// For a tap whose rows and columns both run (stride 1, no zero-stuffing) on an image
    /// whose output rows are as wide as its `w`-wide input rows, the column-matrix row of
    /// the tap is one contiguous shifted copy of the input plane: entries `start..end` of
    /// it are input elements `src..src + (end - start)`, except the padding columns of
    /// the inner rows, which the block also spans ([`Block::for_each_gap`]).
    fn block(&self, th: usize, tw: usize, w: usize) -> Option<Block> {
        if !self.blocks {
            return None;
        }
        let (rows, cols) = (self.row_runs[th]?, self.runs[tw]?);
        Some(Block {
            start: rows.lo * w + cols.lo,
            end: (rows.hi - 1) * w + cols.hi,
            src: rows.src * w + cols.src,
            rows: (rows.lo, rows.hi),
            cols: (cols.lo, cols.hi),
            w,
        })
    }
}

/// One tap's shifted block of the column matrix (see [`Tables::block`]).
struct Block {
    start: usize,
    end: usize,
    src: usize,
    rows: (usize, usize),
    cols: (usize, usize),
    w: usize,
}

impl Block {
    /// Calls `f` with the ranges of the column-matrix row inside `start..end` that read
    /// padding: the columns before `cols.0` and from `cols.1` on, between consecutive
    /// valid rows.
    fn for_each_gap(&self, mut f: impl FnMut(std::ops::Range<usize>)) {
        for r in self.rows.0..self.rows.1 - 1 {
            let gap = r * self.w + self.cols.1..(r + 1) * self.w + self.cols.0;
            if !gap.is_empty() {
                f(gap);
            }
        }
    }
}

/// Outputs `lo..hi` of a column tap read input columns `src..src + (hi - lo)`; the others
/// read padding.
#[derive(Debug, Clone, Copy)]
struct Run {
    lo: usize,
    hi: usize,
    src: usize,
}

impl Run {
    fn of(tab: &[isize]) -> Option<Run> {
        let lo = tab.iter().position(|&i| i >= 0)?;
        let hi = tab.iter().rposition(|&i| i >= 0)? + 1;
        let src = tab[lo];
        let consecutive = tab[lo..hi].iter().zip(src..).all(|(&i, want)| i == want);
        consecutive.then_some(Run { lo, hi, src: src as usize })
    }

    fn len(&self) -> usize {
        self.hi - self.lo
    }
}

/// `dst [cols, rows] = src [rows, cols]^T` (row-major), in square tiles so that both the
/// reads and the writes stay within a few cache lines.
#[inline(always)]
pub(crate) fn transpose<T: Copy>(src: &[T], rows: usize, cols: usize, dst: &mut [T]) {
    const TILE: usize = 16;
    for i0 in (0..rows).step_by(TILE) {
        for j0 in (0..cols).step_by(TILE) {
            for i in i0..(i0 + TILE).min(rows) {
                let row = &src[i * cols..(i + 1) * cols];
                for j in j0..(j0 + TILE).min(cols) {
                    dst[j * rows + i] = row[j];
                }
            }
        }
    }
}
