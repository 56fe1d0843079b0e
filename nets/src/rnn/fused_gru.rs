//! The GRU gate passes of the fused CPU recurrence ([`super::fused`]): everything of one step
//! except the matrix products. The equations are torch's (see [`super::gru`]), gate order
//! r, z, n, with `x_* = (x W_ih^T)_*` and `p_* = (h_prev W_hh^T)_*` (the two products, done by
//! the caller), biases `b_i*`, `b_h*`:
//!
//! ```text
//! forward:  r = σ(x_r + b_ir + p_r + b_hr)      z = σ(x_z + b_iz + p_z + b_hz)
//!           q = p_n + b_hn                       n = tanh(x_n + b_in + r ⊙ q)
//!           h = n + z ⊙ (h_prev - n)
//! backward: dh = dout_t + dh_next
//!           dn = dh ⊙ (1 - z) ⊙ (1 - n²)          dz = dh ⊙ (h_prev - n) ⊙ z(1-z)
//!           dr = dn ⊙ q ⊙ r(1-r)
//!           dx = [dr, dz, dn]   dp = [dr, dz, dn ⊙ r]   dh_prev = dh ⊙ z + dp W_hh
//!           db_ih += dx         db_hh += dp
//! ```
//!
//! The forward pass keeps `r, z, n` (in place of `x_*`) and `q` (in place of `p_n`) for the
//! backward pass. As in [`super::fused_lstm`], every operand of the per-row loops is its own
//! exactly-`H`-long slice, so the loops vectorise (compiled for AVX-512 or AVX2, with FMA,
//! when the CPU has them).

use super::fast_math::Elem;
use crate::simd::per_cpu;

per_cpu! {
/// One forward step for `n` rows: `xg` `(n, 3H)` holds `x W_ih^T` on entry and the gates
/// r, z, n on exit; `p` `(n, 3H)` holds `h_prev W_hh^T` on entry, and its n-block becomes `q`;
/// the new hidden state goes to `h_out` `(n, H)`.
fn forward_step<F: Elem>(
    xg: &mut [F],
    p: &mut [F],
    b_ih: &[F],
    b_hh: &[F],
    h_prev: &[F],
    h_out: &mut [F],
    h: usize,
) => forward_step_impl
}

per_cpu! {
/// One backward step for `n` rows (see the module documentation): reads the saved gates
/// `(n, 3H)` and `q`-carrying `p` `(n, 3H)`, `h_prev` and `dout` `(n, H)`; `dh` holds
/// `dh_next` on entry and `dh ⊙ z` on exit (the caller adds `dp W_hh`); writes `dx`, `dp`
/// `(n, 3H)` and adds their column sums to `db_ih`, `db_hh`.
fn backward_step<F: Elem>(
    gates: &[F],
    p: &[F],
    h_prev: &[F],
    dout: &[F],
    dh: &mut [F],
    dx: &mut [F],
    dp: &mut [F],
    db_ih: &mut [F],
    db_hh: &mut [F],
    h: usize,
) => backward_step_impl
}

#[inline(always)]
fn blocks<F>(row: &[F], h: usize) -> [&[F]; 3] {
    [&row[..h], &row[h..2 * h], &row[2 * h..3 * h]]
}

/// Splits a mutable `3H` row into its three gate blocks.
#[inline(always)]
fn blocks_mut<F>(row: &mut [F], h: usize) -> [&mut [F]; 3] {
    let (a, rest) = row[..3 * h].split_at_mut(h);
    let (b, c) = rest.split_at_mut(h);
    [a, b, c]
}

#[inline(always)]
fn forward_step_impl<F: Elem>(
    xg: &mut [F],
    p: &mut [F],
    b_ih: &[F],
    b_hh: &[F],
    h_prev: &[F],
    h_out: &mut [F],
    h: usize,
) {
    let (bi, bh) = (blocks(b_ih, h), blocks(b_hh, h));
    let rows = xg
        .chunks_exact_mut(3 * h)
        .zip(p.chunks_exact_mut(3 * h))
        .zip(h_prev.chunks_exact(h).zip(h_out.chunks_exact_mut(h)));
    for ((xr, pr), (hp, ho)) in rows {
        let [xr, xz, xn] = blocks_mut(xr, h);
        let [pr, pz, pn] = blocks_mut(pr, h);
        forward_row(xr, xz, xn, pn, [pr, pz, hp], bi, bh, ho);
    }
}

/// One row of [`forward_step_impl`]. The written slices are separate arguments, so that the
/// compiler knows they do not alias (references packed in an array carry no such guarantee)
/// and vectorises the loop; `[p_r, p_z, h_prev]` are read only.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn forward_row<F: Elem>(
    xr: &mut [F],
    xz: &mut [F],
    xn: &mut [F],
    pn: &mut [F],
    [pr, pz, hp]: [&[F]; 3],
    [bir, biz, bin]: [&[F]; 3],
    [bhr, bhz, bhn]: [&[F]; 3],
    ho: &mut [F],
) {
    let h = hp.len();
    let (xr, xz, xn, pn, ho) =
        (&mut xr[..h], &mut xz[..h], &mut xn[..h], &mut pn[..h], &mut ho[..h]);
    let (pr, pz) = (&pr[..h], &pz[..h]);
    let (bir, biz, bin) = (&bir[..h], &biz[..h], &bin[..h]);
    let (bhr, bhz, bhn) = (&bhr[..h], &bhz[..h], &bhn[..h]);
    for j in 0..h {
        let r = F::sigmoid(xr[j] + bir[j] + pr[j] + bhr[j]);
        let z = F::sigmoid(xz[j] + biz[j] + pz[j] + bhz[j]);
        let q = pn[j] + bhn[j];
        let n = F::tanh_(xn[j] + bin[j] + r * q);
        (xr[j], xz[j], xn[j], pn[j]) = (r, z, n, q);
        ho[j] = n + z * (hp[j] - n);
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_step_impl<F: Elem>(
    gates: &[F],
    p: &[F],
    h_prev: &[F],
    dout: &[F],
    dh: &mut [F],
    dx: &mut [F],
    dp: &mut [F],
    db_ih: &mut [F],
    db_hh: &mut [F],
    h: usize,
) {
    let [dbir, dbiz, dbin] = blocks_mut(db_ih, h);
    let [dbhr, dbhz, dbhn] = blocks_mut(db_hh, h);
    let rows = gates
        .chunks_exact(3 * h)
        .zip(p.chunks_exact(3 * h))
        .zip(h_prev.chunks_exact(h).zip(dout.chunks_exact(h)))
        .zip(dh.chunks_exact_mut(h))
        .zip(dx.chunks_exact_mut(3 * h).zip(dp.chunks_exact_mut(3 * h)));
    for ((((g, pr), (hp, dor)), dhr), (dxr, dpr)) in rows {
        let [gr, gz, gn] = blocks(g, h);
        let [dxr, dxz, dxn] = blocks_mut(dxr, h);
        let [dpr, dpz, dpn] = blocks_mut(dpr, h);
        let reads = [gr, gz, gn, &pr[2 * h..3 * h], hp, dor];
        backward_row(reads, dhr, dxr, dxz, dxn, dpr, dpz, dpn, dbir, dbiz, dbin, dbhr, dbhz, dbhn);
    }
}

/// One row of [`backward_step_impl`]: `[r, z, n, q, h_prev, dout]` are read; every written
/// slice is its own argument (see [`forward_row`]).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_row<F: Elem>(
    [gr, gz, gn, q, hp, dout]: [&[F]; 6],
    dh: &mut [F],
    dxr: &mut [F],
    dxz: &mut [F],
    dxn: &mut [F],
    dpr: &mut [F],
    dpz: &mut [F],
    dpn: &mut [F],
    dbir: &mut [F],
    dbiz: &mut [F],
    dbin: &mut [F],
    dbhr: &mut [F],
    dbhz: &mut [F],
    dbhn: &mut [F],
) {
    let one = F::one();
    let h = dh.len();
    let (gr, gz, gn, q, hp, dout) = (&gr[..h], &gz[..h], &gn[..h], &q[..h], &hp[..h], &dout[..h]);
    let (dxr, dxz, dxn) = (&mut dxr[..h], &mut dxz[..h], &mut dxn[..h]);
    let (dpr, dpz, dpn) = (&mut dpr[..h], &mut dpz[..h], &mut dpn[..h]);
    let (dbir, dbiz, dbin) = (&mut dbir[..h], &mut dbiz[..h], &mut dbin[..h]);
    let (dbhr, dbhz, dbhn) = (&mut dbhr[..h], &mut dbhz[..h], &mut dbhn[..h]);
    for j in 0..h {
        let (r, z, n) = (gr[j], gz[j], gn[j]);
        let d = dout[j] + dh[j];
        let dn = d * (one - z) * (one - n * n);
        let dz = d * (hp[j] - n) * z * (one - z);
        let dr = dn * q[j] * r * (one - r);
        let dpn_ = dn * r;
        (dxr[j], dxz[j], dxn[j]) = (dr, dz, dn);
        (dpr[j], dpz[j], dpn[j]) = (dr, dz, dpn_);
        dbir[j] += dr;
        dbiz[j] += dz;
        dbin[j] += dn;
        dbhr[j] += dr;
        dbhz[j] += dz;
        dbhn[j] += dpn_;
        dh[j] = d * z;
    }
}
