//! The LSTM recurrence of torch's `nn.LSTM` (Hochreiter and Schmidhuber 1997, "Long
//! short-term memory"; forget gate: Gers, Schmidhuber and Cummins 2000), optionally with
//! peephole connections (Gers, Schraudolph and Schmidhuber 2002).
//!
//! With `z = W_ih x + b_ih + W_hh h + b_hh` split into four `H`-wide blocks in the order
//! i, f, g, o:
//!
//! ```text
//! i = σ(z_i [+ w_ci ⊙ c])      f = σ(z_f [+ w_cf ⊙ c])      g = tanh(z_g)
//! c' = f ⊙ c + i ⊙ g
//! o = σ(z_o [+ w_co ⊙ c'])     h' = o ⊙ tanh(c')
//! ```
//!
//! (bracketed terms only with peepholes: the input and forget gates look at the previous cell
//! state, the output gate at the new one).

use candle_core::{Result, Tensor};
use candle_nn::ops::sigmoid;

use super::cell::CellParams;

/// One step. `xp_t` is `W_ih x_t + b_ih + b_hh` (`(N, 4H)`), `h` and `c` the previous states
/// (`(N, H)`). Returns `(h', c')`.
pub(crate) fn step(
    p: &CellParams,
    xp_t: &Tensor,
    h: &Tensor,
    c: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let hs = h.dim(1)?;
    let z = (xp_t + p.hidden_projection(h, false)?)?;
    let mut zi = z.narrow(1, 0, hs)?;
    let mut zf = z.narrow(1, hs, hs)?;
    let zg = z.narrow(1, 2 * hs, hs)?;
    let mut zo = z.narrow(1, 3 * hs, hs)?;
    if let Some([w_ci, w_cf, _]) = &p.peephole {
        zi = (zi + c.broadcast_mul(w_ci)?)?;
        zf = (zf + c.broadcast_mul(w_cf)?)?;
    }
    let c_new = ((sigmoid(&zf)? * c)? + (sigmoid(&zi)? * zg.tanh()?)?)?;
    if let Some([_, _, w_co]) = &p.peephole {
        zo = (zo + c_new.broadcast_mul(w_co)?)?;
    }
    let h_new = (sigmoid(&zo)? * c_new.tanh()?)?;
    Ok((h_new, c_new))
}
