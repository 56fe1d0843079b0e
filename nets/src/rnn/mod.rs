//! Recurrent layers with torch's semantics and parameter names: the simple (Elman) RNN, LSTM
//! (optionally with peepholes) and GRU, stacked and bidirectional, batch-first or time-major,
//! with initial states, masking of padded steps and a stateful mode; and WaveNet-style stacks
//! of dilated causal 1-D convolutions.
//!
//! * [`RnnConfig`] / [`CellKind`]: the shape of a layer and its parameter names ([`cell`]).
//! * [`Rnn`]: the layer; `forward(input, state)` returns the output sequence and the final
//!   states ([`stack`]), `forward_masked` takes per-sequence lengths.
//! * [`StatefulRnn`]: carries the state across calls until reset ([`stateful`]).
//! * [`DilatedCausalConv`]: the WaveNet stack ([`wavenet`]).
//!
//! On CPU (f32, f64), each layer and direction of an LSTM without peepholes, or of a GRU, runs
//! without masks in one fused operation ([`fused`], gate passes in [`fused_lstm`] and
//! [`fused_gru`], matrix products in `packed_gemm`) with an explicit backward pass;
//! everywhere else (other devices, peepholes, masks, the simple RNN) the recurrence is
//! composed from candle's differentiable ops.
//! Errors are [`LayerError`]s naming the layer and the expected and actual shapes.

pub mod cell;
pub mod error;
mod fast_math;
pub mod fused;
pub mod fused_gru;
pub mod fused_lstm;
#[cfg(test)]
mod fused_tests;
mod gru;
pub mod init;
mod lstm;
mod packed_gemm;
mod scratch;
mod simple;
pub mod stack;
pub mod stateful;
pub mod wavenet;

pub use cell::{CellKind, RnnConfig};
pub use error::LayerError;
pub use init::{ParamInit, ParamSpec};
pub use stack::{lengths_from_mask, Rnn, RnnOutput, RnnState};
pub use stateful::StatefulRnn;
pub use wavenet::{DilatedCausalConv, DilatedCausalConvConfig};
