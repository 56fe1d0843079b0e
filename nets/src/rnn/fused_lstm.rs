//! The LSTM gate passes of the fused CPU recurrence ([`super::fused`]): everything of one
//! step except the matrix product. The equations are those of [`super::lstm`] without
//! peepholes, gate order i, f, g, o; with `z = x W_ih^T + h W_hh^T` (the two products, done
//! by the caller) and `b = b_ih + b_hh`:
//!
//! ```text
//! forward:  i, f, o = σ(z_{i,f,o} + b)   g = tanh(z_g + b)   c = f ⊙ c_prev + i ⊙ g
//!           h = o ⊙ tanh(c)
//! backward: dh = dout_t + dh_next         do = dh ⊙ tanh(c)
//!           dc = dc_next + dh ⊙ o ⊙ (1 - tanh²(c))
//!           dz_i = dc ⊙ g ⊙ i(1-i)   dz_f = dc ⊙ c_prev ⊙ f(1-f)   dz_g = dc ⊙ i ⊙ (1-g²)
//!           dz_o = do ⊙ o(1-o)       dc_prev = dc ⊙ f              db += dz
//! ```
//!
//! (the caller then forms `dh_prev = dz W_hh`). Each pass works on `n` rows of the batch;
//! the per-row loops take every operand as its own exactly-`H`-long slice, so the compiler
//! knows they do not alias, drops the bounds checks and vectorises them (compiled for AVX-512
//! or AVX2, with FMA, when the CPU has them).

use super::fast_math::Elem;
use crate::simd::per_cpu;

per_cpu! {
/// One forward step for `n` rows: `z` `(n, 4H)` holds the pre-activations without bias on
/// entry and the activated gates (i, f, g, o) on exit; `c_prev` `(n, H)` is the previous cell
/// state; the new cell and hidden states go to `c_out`, `h_out` `(n, H)`.
fn forward_step<F: Elem>(
    z: &mut [F],
    bias: &[F],
    c_prev: &[F],
    c_out: &mut [F],
    h_out: &mut [F],
    h: usize,
) => forward_step_impl
}

per_cpu! {
/// One backward step for `n` rows (see the module documentation): reads the saved gates
/// `(n, 4H)`, cell states `c`, `c_prev`, the output gradient `dout` and `dh_next` `(n, H)`;
/// replaces `dc` (the cell gradient from the next step) by the one for the previous step;
/// writes `dz` `(n, 4H)` and adds its column sums to `db` `(4H)`.
fn backward_step<F: Elem>(
    gates: &[F],
    c: &[F],
    c_prev: &[F],
    dout: &[F],
    dh_next: &[F],
    dc: &mut [F],
    dz: &mut [F],
    db: &mut [F],
    h: usize,
) => backward_step_impl
}

#[inline(always)]
fn blocks<F>(row: &[F], h: usize) -> [&[F]; 4] {
    [&row[..h], &row[h..2 * h], &row[2 * h..3 * h], &row[3 * h..4 * h]]
}

/// Splits a mutable `4H` row into its four gate blocks.
#[inline(always)]
fn blocks_mut<F>(row: &mut [F], h: usize) -> [&mut [F]; 4] {
    let (a, rest) = row[..4 * h].split_at_mut(h);
    let (b, rest) = rest.split_at_mut(h);
    let (c, d) = rest.split_at_mut(h);
    [a, b, c, d]
}

#[inline(always)]
fn forward_step_impl<F: Elem>(
    z: &mut [F],
    bias: &[F],
    c_prev: &[F],
    c_out: &mut [F],
    h_out: &mut [F],
    h: usize,
) {
    let b = blocks(bias, h);
    for (((zr, cp), co), ho) in z
        .chunks_exact_mut(4 * h)
        .zip(c_prev.chunks_exact(h))
        .zip(c_out.chunks_exact_mut(h))
        .zip(h_out.chunks_exact_mut(h))
    {
        let [zi, zf, zg, zo] = blocks_mut(zr, h);
        forward_row(zi, zf, zg, zo, b, cp, co, ho);
    }
}

/// One row of [`forward_step_impl`]. Every slice is its own argument, so that the compiler
/// knows they do not alias (references packed in an array carry no such guarantee) and
/// vectorises the loop.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn forward_row<F: Elem>(
    zi: &mut [F],
    zf: &mut [F],
    zg: &mut [F],
    zo: &mut [F],
    b: [&[F]; 4],
    cp: &[F],
    co: &mut [F],
    ho: &mut [F],
) {
    let h = cp.len();
    let (zi, zf, zg, zo) = (&mut zi[..h], &mut zf[..h], &mut zg[..h], &mut zo[..h]);
    let (bi, bf, bg, bo) = (&b[0][..h], &b[1][..h], &b[2][..h], &b[3][..h]);
    let (co, ho) = (&mut co[..h], &mut ho[..h]);
    for j in 0..h {
        let i = F::sigmoid(zi[j] + bi[j]);
        let f = F::sigmoid(zf[j] + bf[j]);
        let g = F::tanh_(zg[j] + bg[j]);
        let o = F::sigmoid(zo[j] + bo[j]);
        let c = f * cp[j] + i * g;
        (zi[j], zf[j], zg[j], zo[j]) = (i, f, g, o);
        co[j] = c;
        ho[j] = o * F::tanh_(c);
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_step_impl<F: Elem>(
    gates: &[F],
    c: &[F],
    c_prev: &[F],
    dout: &[F],
    dh_next: &[F],
    dc: &mut [F],
    dz: &mut [F],
    db: &mut [F],
    h: usize,
) {
    let [dbi, dbf, dbg, dbo] = blocks_mut(db, h);
    let rows = gates
        .chunks_exact(4 * h)
        .zip(dz.chunks_exact_mut(4 * h))
        .zip(c.chunks_exact(h).zip(c_prev.chunks_exact(h)))
        .zip(dout.chunks_exact(h).zip(dh_next.chunks_exact(h)))
        .zip(dc.chunks_exact_mut(h));
    for ((((g, dzr), (cr, cpr)), (dor, dhr)), dcr) in rows {
        let [dzi, dzf, dzg, dzo] = blocks_mut(dzr, h);
        backward_row(
            blocks(g, h),
            [cr, cpr, dor, dhr],
            dcr,
            dzi,
            dzf,
            dzg,
            dzo,
            dbi,
            dbf,
            dbg,
            dbo,
        );
    }
}

/// One row of [`backward_step_impl`]; the written slices are separate arguments (see
/// [`forward_row`]). `[c, c_prev, dout, dh_next]` are read only.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_row<F: Elem>(
    [gi, gf, gg, go]: [&[F]; 4],
    [c, cp, dout, dh_next]: [&[F]; 4],
    dc: &mut [F],
    dzi: &mut [F],
    dzf: &mut [F],
    dzg: &mut [F],
    dzo: &mut [F],
    dbi: &mut [F],
    dbf: &mut [F],
    dbg: &mut [F],
    dbo: &mut [F],
) {
    let one = F::one();
    let h = dc.len();
    let (gi, gf, gg, go) = (&gi[..h], &gf[..h], &gg[..h], &go[..h]);
    let (c, cp, dout, dh_next) = (&c[..h], &cp[..h], &dout[..h], &dh_next[..h]);
    let (dzi, dzf, dzg, dzo) = (&mut dzi[..h], &mut dzf[..h], &mut dzg[..h], &mut dzo[..h]);
    let (dbi, dbf, dbg, dbo) = (&mut dbi[..h], &mut dbf[..h], &mut dbg[..h], &mut dbo[..h]);
    for j in 0..h {
        let (i, f, g, o) = (gi[j], gf[j], gg[j], go[j]);
        let tc = F::tanh_(c[j]);
        let dh = dout[j] + dh_next[j];
        let d_o = dh * tc;
        let dcc = dc[j] + dh * o * (one - tc * tc);
        let (di, df) = (dcc * g * i * (one - i), dcc * cp[j] * f * (one - f));
        let (dg, dov) = (dcc * i * (one - g * g), d_o * o * (one - o));
        (dzi[j], dzf[j], dzg[j], dzo[j]) = (di, df, dg, dov);
        dbi[j] += di;
        dbf[j] += df;
        dbg[j] += dg;
        dbo[j] += dov;
        dc[j] = dcc * f;
    }
}
