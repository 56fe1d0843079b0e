//! [`StatefulRnn`]: an [`Rnn`] that carries its final state from one call to the next until
//! [`StatefulRnn::reset`] (Keras' `stateful=True`), for sequences fed in consecutive chunks.
//!
//! The carried state is detached: gradients stop at the chunk boundary (truncated
//! backpropagation through time), so memory does not grow with the number of calls. The
//! values are those of one call over the concatenated chunks. With masking, a sequence's
//! carried state is its state at its last valid step. Only one direction is allowed: a
//! reverse direction would need the future chunks first.

use std::sync::Mutex;

use candle_core::{Result, Tensor};

use super::error::LayerError;
use super::stack::{Rnn, RnnOutput, RnnState};

/// See the module documentation.
#[derive(Debug)]
pub struct StatefulRnn {
    rnn: Rnn,
    state: Mutex<Option<RnnState>>,
}

impl StatefulRnn {
    /// Wraps a unidirectional `rnn`; starts from zero states.
    pub fn new(rnn: Rnn) -> Result<Self> {
        if rnn.config().bidirectional {
            return Err(LayerError::config(
                rnn.config().kind.layer_name(),
                "bidirectional",
                true,
                "false for a stateful layer (the reverse direction needs the whole sequence)",
            )
            .into());
        }
        Ok(Self { rnn, state: Mutex::new(None) })
    }

    pub fn rnn(&self) -> &Rnn {
        &self.rnn
    }

    /// Runs one chunk from the carried state (zeros after [`StatefulRnn::reset`]) and keeps
    /// its final state, detached, for the next call. The batch size must stay the same
    /// between resets.
    pub fn forward(&self, input: &Tensor) -> Result<RnnOutput> {
        self.forward_masked(input, None)
    }

    /// As [`StatefulRnn::forward`], with per-sequence valid lengths for this chunk.
    pub fn forward_masked(&self, input: &Tensor, lengths: Option<&[usize]>) -> Result<RnnOutput> {
        let mut state = self.lock()?;
        let out = self.rnn.forward_masked(input, state.as_ref(), lengths)?;
        *state = Some(out.state.detach());
        Ok(out)
    }

    /// Forgets the carried state: the next call starts from zeros.
    pub fn reset(&self) -> Result<()> {
        *self.lock()? = None;
        Ok(())
    }

    /// The carried state, if a call has run since the last reset.
    pub fn state(&self) -> Result<Option<RnnState>> {
        Ok(self.lock()?.clone())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Option<RnnState>>> {
        self.state.lock().map_err(|_| candle_core::Error::Msg("stateful RNN lock poisoned".into()))
    }
}
