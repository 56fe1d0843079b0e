//! The Elman recurrence of torch's `nn.RNN`: `h' = act(W_ih x + b_ih + W_hh h + b_hh)` with
//! `act` = tanh (default) or ReLU (Elman 1990, "Finding structure in time").

use candle_core::{Result, Tensor};

use super::cell::CellParams;

/// One step. `xp_t` is `W_ih x_t + b_ih + b_hh` (`(N, H)`, both biases folded by
/// [`CellParams::input_projection`]), `h` the previous hidden state `(N, H)`.
pub(crate) fn step(p: &CellParams, xp_t: &Tensor, h: &Tensor, relu: bool) -> Result<Tensor> {
    let z = (xp_t + p.hidden_projection(h, false)?)?;
    if relu {
        z.relu()
    } else {
        z.tanh()
    }
}
