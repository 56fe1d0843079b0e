//! The GRU recurrence of torch's `nn.GRU` (Cho et al. 2014, "Learning phrase representations
//! using RNN encoder-decoder for statistical machine translation"), in torch's form where the
//! reset gate multiplies the hidden projection *after* the matmul, bias included (Keras
//! `reset_after=True`). Gate order r, z, n:
//!
//! ```text
//! r = σ(W_ir x + b_ir + W_hr h + b_hr)
//! z = σ(W_iz x + b_iz + W_hz h + b_hz)
//! n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
//! h' = (1 - z) ⊙ n + z ⊙ h  =  n + z ⊙ (h - n)
//! ```

use candle_core::{Result, Tensor};
use candle_nn::ops::sigmoid;

use super::cell::CellParams;

/// One step. `xp_t` is `W_ih x_t + b_ih` (`(N, 3H)`, without `b_hh`, which must stay inside
/// the reset product), `h` the previous hidden state `(N, H)`.
pub(crate) fn step(p: &CellParams, xp_t: &Tensor, h: &Tensor) -> Result<Tensor> {
    let hs = h.dim(1)?;
    let hp = p.hidden_projection(h, true)?;
    let rz = sigmoid(&(xp_t.narrow(1, 0, 2 * hs)? + hp.narrow(1, 0, 2 * hs)?)?)?;
    let r = rz.narrow(1, 0, hs)?;
    let z = rz.narrow(1, hs, hs)?;
    let n = (xp_t.narrow(1, 2 * hs, hs)? + (r * hp.narrow(1, 2 * hs, hs)?)?)?.tanh()?;
    n.clone() + (z * (h - &n)?)?
}
