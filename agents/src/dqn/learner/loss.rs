//! The losses of the host learner and their gradients with respect to the network's output,
//! as the candle path writes them in [`Dqn::gradient_step`](super::super::Dqn::gradient_step):
//!
//! ```text
//! TD:   y_j = R_j + discount_j next_j          next_j = max_a Q_target(s'_j, a), or
//!                                              Q_target(s'_j, argmax_a Q_online(s'_j, a))
//!       delta_j = Q(s_j, a_j) - y_j
//!       l_j = huber(delta_j) = 0.5 min(|d|, 1)^2 + |d| - min(|d|, 1)    or delta_j^2
//!       dl_j / dQ(s_j, a_j) = clamp(delta_j, -1, 1)                      or 2 delta_j
//! C51:  l_j = -sum_i m_ji log p_i(s_j, a_j),   p = softmax(logits)
//!       dl_j / dlogit_i(s_j, a_j) = p_i sum_i' m_ji' - m_ji
//! loss = (1 / batch) sum_j w_j l_j       (w: importance weights, 1 when uniform)
//! ```
//!
//! Only the taken action's outputs get a gradient. The priority of experience `j` is
//! `|delta_j|` (TD) or `l_j` (C51).

use deeprl_replay::Batch;

/// What a loss pass returns besides the gradient and the priorities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct LossValue {
    /// The batch loss.
    pub loss: f32,
    /// The mean of `Q(s_j, a_j)` (expected values under C51).
    pub q_mean: f32,
    /// Whether every `Q(s_j, a_j)` is finite.
    pub q_finite: bool,
}

/// `1 / batch` as candle's `mean_all` applies it (an `f64` factor rounded to `f32`).
fn inverse(batch: usize) -> f32 {
    (1.0 / batch as f64) as f32
}

/// The TD loss on Q-values `out` `[batch, actions]`; `next_target` are the target net's
/// Q-values on `s'`, `next_online` the online net's (double DQN) or `None`. Writes the
/// gradient `d_out` (zero but at the taken actions) and the priorities `|delta|`.
#[allow(clippy::too_many_arguments)]
pub(super) fn td(
    huber: bool,
    n_actions: usize,
    out: &[f32],
    next_target: &[f32],
    next_online: Option<&[f32]>,
    b: &Batch,
    d_out: &mut [f32],
    priorities: &mut [f32],
) -> LossValue {
    let a = n_actions;
    let batch = priorities.len();
    let inv = inverse(batch);
    d_out[..batch * a].fill(0.0);
    let (mut total, mut q_sum, mut q_finite) = (0.0f32, 0.0f32, true);
    for (j, priority) in priorities.iter_mut().enumerate() {
        let row = j * a..(j + 1) * a;
        let target_row = &next_target[row.clone()];
        let next = match next_online {
            Some(online) => target_row[super::super::host::argmax(&online[row])],
            None => {
                target_row.iter().copied().fold(target_row[0], |m, x| if m < x { x } else { m })
            }
        };
        let y = b.rewards[j] + b.discounts[j] * next;
        let taken = j * a + b.actions_discrete[j] as usize;
        let q = out[taken];
        let delta = q - y;
        let (l, slope) = if huber {
            let abs = delta.abs();
            let quad = abs.min(1.0);
            (quad * quad * 0.5 + (abs - quad), delta.clamp(-1.0, 1.0))
        } else {
            (delta * delta, 2.0 * delta)
        };
        total += l * b.weights[j];
        d_out[taken] = inv * b.weights[j] * slope;
        *priority = delta.abs();
        q_sum += q;
        q_finite &= q.is_finite();
    }
    LossValue { loss: total * inv, q_mean: q_sum * inv, q_finite }
}

/// The C51 loss on logits `out` `[batch, actions, atoms]` against the projected targets
/// `targets` `[batch, atoms]` ([`project_batch`](super::super::distributional::project_batch)).
/// Writes the gradient `d_out` (zero but at the taken actions) and the priorities (the
/// cross-entropies); `probs` is scratch of `atoms` values.
#[allow(clippy::too_many_arguments)]
pub(super) fn c51(
    support: &[f32],
    n_actions: usize,
    out: &[f32],
    targets: &[f32],
    b: &Batch,
    probs: &mut [f32],
    d_out: &mut [f32],
    priorities: &mut [f32],
) -> LossValue {
    let n = support.len();
    let batch = priorities.len();
    let inv = inverse(batch);
    d_out[..batch * n_actions * n].fill(0.0);
    let (mut total, mut q_sum, mut q_finite) = (0.0f32, 0.0f32, true);
    for (j, m) in targets.chunks_exact(n).take(batch).enumerate() {
        let start = (j * n_actions + b.actions_discrete[j] as usize) * n;
        let logits = &out[start..start + n];
        // log p = (x - max) - log sum exp(x - max), as candle's log_softmax.
        let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        let mut sum = 0.0f32;
        for (p, &x) in probs.iter_mut().zip(logits) {
            *p = (x - max).exp();
            sum += *p;
        }
        let log_sum = sum.ln();
        let (mut ce, mut mass, mut q) = (0.0f32, 0.0f32, 0.0f32);
        for ((p, &x), (&mi, &z)) in probs.iter_mut().zip(logits).zip(m.iter().zip(support)) {
            ce -= mi * ((x - max) - log_sum);
            mass += mi;
            *p /= sum;
            q += *p * z;
        }
        let g = inv * b.weights[j];
        for ((d, &p), &mi) in d_out[start..start + n].iter_mut().zip(probs.iter()).zip(m) {
            *d = g * (p * mass - mi);
        }
        total += ce * b.weights[j];
        priorities[j] = ce;
        q_sum += q;
        q_finite &= q.is_finite();
    }
    LossValue { loss: total * inv, q_mean: q_sum * inv, q_finite }
}
