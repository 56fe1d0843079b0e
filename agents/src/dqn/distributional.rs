//! Distributional RL with a categorical return distribution, C51 (Bellemare, Dabney and Munos
//! 2017, "A Distributional Perspective on Reinforcement Learning", algorithm 1).
//!
//! The return of `(s, a)` is a distribution on the fixed support
//! `z_i = v_min + i dz`, `dz = (v_max - v_min) / (atoms - 1)`, with probabilities
//! `p_i(s, a) = softmax_i(logits(s, a))`; `Q(s, a) = sum_i z_i p_i(s, a)`. The target of an
//! experience `(s, a, r, s', discount)` is the distribution of `r + discount Z(s', a*)`,
//! projected back onto the support:
//!
//! ```text
//! a*    = argmax_a Q(s', a)           Q from the target net, or the online net with double
//! Tz_j  = clamp(r + discount z_j, v_min, v_max)
//! b_j   = (Tz_j - v_min) / dz,  l = floor(b_j),  u = ceil(b_j)
//! m_l  += p_j(s', a*) (u - b_j),   m_u += p_j(s', a*) (b_j - l)      (m_l += p_j when l == u)
//! loss  = -sum_i m_i log p_i(s, a)                                    (cross-entropy)
//! ```
//!
//! A terminated experience has `discount = 0`, so its whole mass goes to the atom(s) around `r`.
//! With prioritized replay the priority is this cross-entropy (Hessel et al. 2018).

/// The support `z_i = v_min + i (v_max - v_min) / (atoms - 1)`.
pub fn support(v_min: f64, v_max: f64, atoms: usize) -> Vec<f32> {
    let dz = (v_max - v_min) / (atoms as f64 - 1.0);
    (0..atoms).map(|i| (v_min + i as f64 * dz) as f32).collect()
}

/// Softmax of `logits` into `out`, in place of `out`.
pub fn softmax_into(logits: &[f32], out: &mut [f32]) {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let mut total = 0.0;
    for (o, &x) in out.iter_mut().zip(logits) {
        *o = (x - max).exp();
        total += *o;
    }
    out.iter_mut().for_each(|o| *o /= total);
}

/// Projects the distribution `probs` (on `support`, `atoms` values) shifted to
/// `reward + discount z` back onto `support`, into `out` (overwritten). See the
/// [module docs](self) for the formula; mass is conserved.
pub fn project(support: &[f32], probs: &[f32], reward: f32, discount: f32, out: &mut [f32]) {
    let n = support.len();
    let (v_min, v_max) = (support[0], support[n - 1]);
    let dz = (v_max - v_min) / (n as f32 - 1.0);
    out.iter_mut().for_each(|m| *m = 0.0);
    for (&z, &p) in support.iter().zip(probs) {
        let tz = (reward + discount * z).clamp(v_min, v_max);
        let b = ((tz - v_min) / dz).clamp(0.0, (n - 1) as f32);
        let (l, u) = (b.floor(), b.ceil());
        let (li, ui) = (l as usize, u as usize);
        if li == ui {
            out[li] += p;
        } else {
            out[li] += p * (u - b);
            out[ui] += p * (b - l);
        }
    }
}

/// The projected targets of a batch, into `targets` (`[batch, atoms]`, overwritten).
///
/// `next` holds the next-state logits `[batch, actions, atoms]` whose distribution is
/// projected and `chooser` those that pick the next action `a* = argmax_a sum_i z_i
/// softmax(chooser[j, a])_i` (the first on ties): the target net's own logits, or the
/// online net's with double DQN. `probs` is scratch of `atoms` values. Both gradient paths
/// (candle and the host learner) build their targets here.
#[allow(clippy::too_many_arguments)]
pub fn project_batch(
    support: &[f32],
    next: &[f32],
    chooser: &[f32],
    n_actions: usize,
    rewards: &[f32],
    discounts: &[f32],
    probs: &mut [f32],
    targets: &mut [f32],
) {
    let n = support.len();
    let (a, row) = (n_actions, n_actions * n);
    for (j, m) in targets.chunks_exact_mut(n).enumerate() {
        let mut best = (0, f32::NEG_INFINITY);
        for k in 0..a {
            let logits = &chooser[j * row + k * n..j * row + (k + 1) * n];
            softmax_into(logits, probs);
            let q: f32 = probs.iter().zip(support).map(|(p, z)| p * z).sum();
            if q > best.1 {
                best = (k, q);
            }
        }
        let k = best.0;
        softmax_into(&next[j * row + k * n..j * row + (k + 1) * n], probs);
        project(support, probs, rewards[j], discounts[j], m);
    }
}
