//! Discounted Monte-Carlo returns and their normalisation into advantages.
//!
//! REINFORCE weighs the score `grad log pi(a_t|s_t)` of each step by the return that followed
//! it, `G_t = sum_{k>=0} gamma^k r_{t+k}` (Williams 1992; Sutton and Barto 2018, section 13.3).
//! Centring and scaling those weights across every step of one update (the "normalised
//! returns" of PyTorch's `examples/reinforcement_learning/reinforce.py`) does not change the
//! direction of the expected gradient much but keeps its scale steady as episodes lengthen.

/// Writes `G_t = r_t + gamma G_{t+1}` (with `G_T = 0` after the last step) into `out`, in
/// `f64` so that long episodes do not lose precision, then stored as `f32`.
///
/// `rewards` and `out` have the same length (the steps of one episode). There is no
/// bootstrap: an episode cut short by a time limit is treated as if it ended there, which is
/// plain REINFORCE (a learned value could bootstrap it, but the algorithm has none).
pub fn discounted_returns(rewards: &[f64], gamma: f64, out: &mut [f32]) {
    debug_assert_eq!(rewards.len(), out.len());
    let mut g = 0.0f64;
    for (r, o) in rewards.iter().zip(out.iter_mut()).rev() {
        g = r + gamma * g;
        *o = g as f32;
    }
}

/// The `eps` added to the standard deviation by [`normalize`]: `f32` machine epsilon, as in
/// PyTorch's REINFORCE example (`np.finfo(np.float32).eps.item()`).
pub const NORMALIZE_EPS: f64 = f32::EPSILON as f64;

/// Replaces `values` by `(v - mean) / (std + eps)`, with the unbiased (`n - 1`) standard
/// deviation that `torch.Tensor.std` computes, in `f64`.
///
/// With fewer than two values the standard deviation is undefined (torch gives NaN); the
/// values are then only centred, which makes a single value zero: one sample carries no
/// information about which actions were better than average.
pub fn normalize(values: &mut [f32], eps: f64) {
    let n = values.len();
    if n == 0 {
        return;
    }
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    if n < 2 {
        values.iter_mut().for_each(|v| *v = (*v as f64 - mean) as f32);
        return;
    }
    let var = values.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let scale = 1.0 / (var.sqrt() + eps);
    values.iter_mut().for_each(|v| *v = ((*v as f64 - mean) * scale) as f32);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_by_hand() {
        let mut out = [0.0f32; 3];
        discounted_returns(&[1.0, 2.0, 3.0], 0.5, &mut out);
        // G_2 = 3, G_1 = 2 + 0.5 * 3 = 3.5, G_0 = 1 + 0.5 * 3.5 = 2.75.
        assert_eq!(out, [2.75, 3.5, 3.0]);
    }

    #[test]
    fn normalize_by_hand() {
        let mut v = [1.0f32, 2.0, 3.0];
        normalize(&mut v, 0.0);
        // mean 2, unbiased std 1.
        assert_eq!(v, [-1.0, 0.0, 1.0]);
        let mut one = [5.0f32];
        normalize(&mut one, NORMALIZE_EPS);
        assert_eq!(one, [0.0]);
    }
}
