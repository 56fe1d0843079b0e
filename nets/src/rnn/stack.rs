//! [`Rnn`]: a stack of recurrent layers (simple, LSTM, peephole LSTM or GRU), optionally
//! bidirectional and batch-first, with optional initial states and per-sequence lengths.
//! Semantics and layout are torch's `nn.RNN`/`nn.LSTM`/`nn.GRU`:
//!
//! * input `(T, N, F)` (`(N, T, F)` with `batch_first`), output `(T, N, D*H)` (resp.
//!   `(N, T, D*H)`), with the forward direction in `[..., :H]` and the reverse in `[..., H:]`;
//! * states `h`, `c`: `(L*D, N, H)` in both layouts, row `layer*D + direction`; the reverse
//!   direction reads the sequence from the last step to the first, and its final state is its
//!   state after step 0;
//! * layer `k > 0` reads the concatenated `D*H` outputs of layer `k - 1`.
//!
//! # Masking padded steps
//!
//! [`Rnn::forward_masked`] takes one length per sequence (`0..=T`). At a padded step
//! `t >= len[n]` the state of sequence `n` is left unchanged and its output is zero. So the
//! forward direction's final state is its state at the last valid step, and the reverse
//! direction, which walks from `T - 1` down, keeps its initial state through the padding and
//! starts at step `len[n] - 1`: a padded batch gives, on its valid steps and in its final
//! states, exactly the numbers of the unpadded sequences (torch's packed sequences). A
//! length of 0 returns the initial state and an all-zero output. [`lengths_from_mask`] turns a
//! `(N, T)` 0/1 mask of valid prefixes into lengths.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{VarBuilder, VarMap};

use super::cell::{CellKind, CellParams, RnnConfig};
use super::error::LayerError;
use super::fused::{self, FusedCell};
use super::init::fill_varmap;
use super::{gru, lstm, simple};

/// The recurrent state of every layer and direction: `h` and, for LSTMs, `c`, each
/// `(num_layers * D, N, H)`.
#[derive(Debug, Clone)]
pub struct RnnState {
    pub h: Tensor,
    pub c: Option<Tensor>,
}

impl RnnState {
    /// The state with its gradient history cut (for truncated backpropagation through time).
    pub fn detach(&self) -> RnnState {
        RnnState { h: self.h.detach(), c: self.c.as_ref().map(Tensor::detach) }
    }
}

/// What [`Rnn::forward`] returns: the whole output sequence and the final states.
#[derive(Debug, Clone)]
pub struct RnnOutput {
    /// `(T, N, D*H)`, or `(N, T, D*H)` with `batch_first`.
    pub output: Tensor,
    /// `h_n` (and `c_n`), `(L*D, N, H)`.
    pub state: RnnState,
    directions: usize,
}

impl RnnOutput {
    /// The "last output" of the top layer, `(N, D*H)`: its final hidden state of each
    /// direction, concatenated (Keras' `return_sequences=False`). For one direction this is
    /// the output at each sequence's last valid step; for two, the reverse half is the reverse
    /// direction's state after step 0, i.e. after it has read the whole sequence.
    pub fn last(&self) -> Result<Tensor> {
        let (ld, n, h) = self.state.h.dims3()?;
        let d = self.directions;
        self.state.h.narrow(0, ld - d, d)?.transpose(0, 1)?.contiguous()?.reshape((n, d * h))
    }
}

/// A stack of recurrent layers; see the module documentation.
#[derive(Debug, Clone)]
pub struct Rnn {
    config: RnnConfig,
    /// Indexed `layer * D + direction`.
    cells: Vec<CellParams>,
    /// Whether an LSTM without peepholes, or a GRU, may use the fused CPU kernel (unmasked).
    fused_cpu: bool,
}

impl Rnn {
    /// Builds the layer from parameters `vb` holds under torch's names.
    pub fn load(config: RnnConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        let mut cells = Vec::with_capacity(config.num_layers * config.directions());
        for layer in 0..config.num_layers {
            for dir in 0..config.directions() {
                cells.push(CellParams::load(&config, layer, dir, &vb)?);
            }
        }
        Ok(Self { config, cells, fused_cpu: true })
    }

    /// Initialises the parameters in `varmap` (under `prefix`) as torch does, uniform on
    /// `±1/sqrt(H)`, from `ChaCha8Rng::seed_from_u64(seed)`, then loads the layer.
    pub fn seeded(
        config: RnnConfig,
        varmap: &VarMap,
        prefix: &str,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        config.validate()?;
        fill_varmap(varmap, &config.param_specs(prefix), seed, dtype, device)?;
        let vb = VarBuilder::from_varmap(varmap, dtype, device);
        Self::load(config, if prefix.is_empty() { vb } else { vb.pp(prefix) })
    }

    /// Allows (the default) or forbids the fused CPU kernel of [`super::fused`]; without
    /// it every step is composed from candle's generic ops (to compare the two, or to debug).
    pub fn with_fused_cpu(mut self, allowed: bool) -> Self {
        self.fused_cpu = allowed;
        self
    }

    pub fn config(&self) -> &RnnConfig {
        &self.config
    }

    fn name(&self) -> &'static str {
        self.config.kind.layer_name()
    }

    /// Zero states for a batch of `n` sequences.
    pub fn zero_state(&self, n: usize, dtype: DType, device: &Device) -> Result<RnnState> {
        let shape = (self.config.num_layers * self.config.directions(), n, self.config.hidden_size);
        let h = Tensor::zeros(shape, dtype, device)?;
        let c = self.config.kind.has_cell_state().then(|| h.clone());
        Ok(RnnState { h, c })
    }

    /// Runs every layer over the whole sequence from `state` (zeros when `None`).
    pub fn forward(&self, input: &Tensor, state: Option<&RnnState>) -> Result<RnnOutput> {
        self.forward_masked(input, state, None)
    }

    /// As [`Rnn::forward`], with one valid length per sequence (see the module
    /// documentation); `None` means every step is valid.
    pub fn forward_masked(
        &self,
        input: &Tensor,
        state: Option<&RnnState>,
        lengths: Option<&[usize]>,
    ) -> Result<RnnOutput> {
        let c = &self.config;
        let (name, hs, d) = (self.name(), c.hidden_size, c.directions());
        let layout = if c.batch_first { "(N, T, input_size)" } else { "(T, N, input_size)" };
        let expected = format!("{layout} with input_size = {}", c.input_size);
        if input.rank() != 3 || input.dim(2)? != c.input_size {
            return Err(LayerError::shape(name, "input", expected, input.shape()).into());
        }
        let x = if c.batch_first { input.transpose(0, 1)?.contiguous()? } else { input.clone() };
        let (t, n, _) = x.dims3()?;
        if t == 0 || n == 0 {
            return Err(LayerError::shape(
                name,
                "input",
                "at least one step and one sequence",
                input.shape(),
            )
            .into());
        }
        let dtype = self.cells[0].w_ih.dtype();
        if x.dtype() != dtype {
            return Err(LayerError::input(
                name,
                format!("input is {:?}, the parameters {dtype:?}", x.dtype()),
            )
            .into());
        }
        let ld = c.num_layers * d;
        let state_shape = format!("({ld}, {n}, {hs}) = (num_layers * directions, N, hidden_size)");
        let check_state = |what: &str, s: &Tensor| -> Result<()> {
            if s.dims() != [ld, n, hs] {
                return Err(LayerError::shape(name, what, state_shape.as_str(), s.shape()).into());
            }
            if s.dtype() != dtype {
                return Err(LayerError::input(
                    name,
                    format!("{what} is {:?}, the parameters {dtype:?}", s.dtype()),
                )
                .into());
            }
            Ok(())
        };
        if let Some(s) = state {
            check_state("h0", &s.h)?;
            match (&s.c, c.kind.has_cell_state()) {
                (Some(c0), true) => check_state("c0", c0)?,
                (None, true) => {
                    return Err(LayerError::input(name, "the initial state has h0 but no c0").into())
                }
                (Some(_), false) => {
                    return Err(LayerError::input(
                        name,
                        "c0 given, but only an LSTM has a cell state",
                    )
                    .into())
                }
                (None, false) => {}
            }
        }
        let masks = match lengths {
            None => None,
            Some(lens) => step_masks(name, lens, t, n, x.device())?,
        };
        let zero = self.zero_state(n, dtype, x.device())?;
        let init = state.unwrap_or(&zero);
        let mut layer_in = x;
        let (mut h_n, mut c_n) = (Vec::with_capacity(ld), Vec::with_capacity(ld));
        for layer in 0..c.num_layers {
            let mut outs = Vec::with_capacity(d);
            for dir in 0..d {
                let i = layer * d + dir;
                let h0 = init.h.get(i)?;
                let c0 = init.c.as_ref().map(|c| c.get(i)).transpose()?;
                let (out, h, cell) = self.run_direction(
                    &self.cells[i],
                    &layer_in,
                    h0,
                    c0,
                    dir == 1,
                    masks.as_ref(),
                )?;
                outs.push(out);
                h_n.push(h);
                c_n.extend(cell);
            }
            layer_in = if d == 1 { outs.remove(0) } else { Tensor::cat(&outs, 2)? };
        }
        let output = if c.batch_first { layer_in.transpose(0, 1)? } else { layer_in };
        let h = Tensor::stack(&h_n, 0)?;
        let c = if c_n.is_empty() { None } else { Some(Tensor::stack(&c_n, 0)?) };
        Ok(RnnOutput { output, state: RnnState { h, c }, directions: d })
    }

    /// One layer, one direction over `x` `(T, N, F)`: the outputs `(T, N, H)` at their time
    /// indices and the final `h` (and `c`).
    fn run_direction(
        &self,
        cell: &CellParams,
        x: &Tensor,
        mut h: Tensor,
        mut c: Option<Tensor>,
        reverse: bool,
        masks: Option<&StepMasks>,
    ) -> Result<(Tensor, Tensor, Option<Tensor>)> {
        let kind = self.config.kind;
        let fused_cell = match kind {
            CellKind::Lstm { peephole: false } => Some(FusedCell::Lstm),
            CellKind::Gru => Some(FusedCell::Gru),
            _ => None,
        };
        if let (true, Some(fc), None) = (self.fused_cpu, fused_cell, masks) {
            if let Some(r) = fused::try_sequence(fc, cell, x, &h, c.as_ref(), reverse)? {
                return Ok(r);
            }
        }
        let xp = cell.input_projection(x, kind != CellKind::Gru)?;
        let t = x.dim(0)?;
        let zeros = h.zeros_like()?;
        let mut outs: Vec<Option<Tensor>> = vec![None; t];
        for step in 0..t {
            let ti = if reverse { t - 1 - step } else { step };
            let xp_t = xp.get(ti)?;
            let (h_new, c_new) = match (kind, &c) {
                (CellKind::RnnTanh, _) => (simple::step(cell, &xp_t, &h, false)?, None),
                (CellKind::RnnRelu, _) => (simple::step(cell, &xp_t, &h, true)?, None),
                (CellKind::Gru, _) => (gru::step(cell, &xp_t, &h)?, None),
                (CellKind::Lstm { .. }, Some(c_prev)) => {
                    let (h, c) = lstm::step(cell, &xp_t, &h, c_prev)?;
                    (h, Some(c))
                }
                (CellKind::Lstm { .. }, None) => candle_core::bail!("LSTM without a cell state"),
            };
            match masks {
                None => {
                    outs[ti] = Some(h_new.clone());
                    h = h_new;
                    c = c_new;
                }
                Some(m) => {
                    let valid = m.valid.get(ti)?.broadcast_as(h.shape())?;
                    outs[ti] = Some(valid.where_cond(&h_new, &zeros)?);
                    h = valid.where_cond(&h_new, &h)?;
                    if let (Some(c_new), Some(c_old)) = (c_new, &c) {
                        c = Some(valid.where_cond(&c_new, c_old)?);
                    }
                }
            }
        }
        let outs: Vec<Tensor> = outs.into_iter().flatten().collect();
        Ok((Tensor::stack(&outs, 0)?, h, c))
    }
}

impl Module for Rnn {
    /// The output sequence from zero states.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        Ok(Rnn::forward(self, xs, None)?.output)
    }
}

/// Per-step validity of each sequence.
struct StepMasks {
    /// `(T, N, 1)` u8: 1 where step `t` of sequence `n` is valid.
    valid: Tensor,
}

/// Validates `lengths` and builds the masks; `None` when every sequence has all `t` steps.
fn step_masks(
    name: &str,
    lengths: &[usize],
    t: usize,
    n: usize,
    device: &Device,
) -> Result<Option<StepMasks>> {
    if lengths.len() != n {
        return Err(LayerError::input(
            name,
            format!("{} sequence lengths for a batch of {n} sequences", lengths.len()),
        )
        .into());
    }
    if let Some((i, &l)) = lengths.iter().enumerate().find(|(_, &l)| l > t) {
        return Err(LayerError::input(
            name,
            format!("lengths[{i}] = {l} is longer than the {t} input steps"),
        )
        .into());
    }
    if lengths.iter().all(|&l| l == t) {
        return Ok(None);
    }
    let valid: Vec<u8> =
        (0..t).flat_map(|ti| lengths.iter().map(move |&l| u8::from(ti < l))).collect();
    let valid = Tensor::from_vec(valid, (t, n, 1), device)?;
    Ok(Some(StepMasks { valid }))
}

/// The valid lengths of a `(N, T)` mask whose rows are a run of ones followed by zeros
/// (any numeric dtype; nonzero = valid). A row with a valid step after a padded one is an
/// error, since the recurrence cannot skip steps.
pub fn lengths_from_mask(mask: &Tensor) -> Result<Vec<usize>> {
    if mask.rank() != 2 {
        return Err(LayerError::shape("RNN mask", "mask", "(N, T)", mask.shape()).into());
    }
    let rows = mask.to_dtype(DType::F64)?.to_vec2::<f64>()?;
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let len = row.iter().take_while(|&&v| v != 0.0).count();
            if row[len..].iter().any(|&v| v != 0.0) {
                Err(LayerError::input(
                    "RNN mask",
                    format!("row {i} has a valid step after padding (not a prefix mask)"),
                )
                .into())
            } else {
                Ok(len)
            }
        })
        .collect()
}
