//! The passes of the host learner's network: the noisy layers' effective weights, the
//! forward pass keeping every activation, and the backward pass into the flat gradient.

use super::{dense, Activations, Dense, HostLearner};
use crate::dqn::config::Dueling;
use crate::dqn::network::Role;
use crate::dqn::noisy::FactorisedNoise;

/// A layer's weight and bias: the effective (noisy) ones when it has them.
pub(super) fn weights<'a>(l: &Dense, params: &'a [f32], eff: &'a [f32]) -> (&'a [f32], &'a [f32]) {
    match &l.eff {
        Some(e) => eff[e.clone()].split_at(l.fan_in * l.fan_out),
        None => (&params[l.weight.clone()], &params[l.bias.clone()]),
    }
}

/// The effective weights `mu + sigma . f(e_in) f(e_out)^T` and biases `mu_b + sigma_b .
/// f(e_out)` of the noisy layers, into `eff`.
pub(super) fn materialize(
    layers: &[Dense],
    params: &[f32],
    noise: &[Option<FactorisedNoise>],
    eff: &mut [f32],
) {
    for (l, noise) in layers.iter().zip(noise) {
        let (Some((ws, bs)), Some(e), Some(noise)) = (&l.sigma, &l.eff, noise) else { continue };
        let (ew, eb) = eff[e.clone()].split_at_mut(l.fan_in * l.fan_out);
        let (mu, sigma) = (&params[l.weight.clone()], &params[ws.clone()]);
        let rows = ew.chunks_exact_mut(l.fan_out).zip(mu.chunks_exact(l.fan_out));
        for (((row, mu), sigma), &e_in) in rows.zip(sigma.chunks_exact(l.fan_out)).zip(&noise.input)
        {
            for (((w, &m), &s), &e_out) in row.iter_mut().zip(mu).zip(sigma).zip(&noise.output) {
                *w = m + s * (e_in * e_out);
            }
        }
        let (mu, sigma) = (&params[l.bias.clone()], &params[bs.clone()]);
        for (((b, &m), &s), &e_out) in eb.iter_mut().zip(mu).zip(sigma).zip(&noise.output) {
            *b = m + s * e_out;
        }
    }
}

/// The forward pass of the network `(layers, params, eff)` on `x` `[batch, in]`, keeping
/// every activation in `acts`. `shape` is (actions, atoms, dueling).
pub(super) fn forward(
    layers: &[Dense],
    params: &[f32],
    eff: &[f32],
    (a, n, dueling): (usize, usize, Dueling),
    batch: usize,
    x: &[f32],
    acts: &mut Activations,
) {
    let hidden = acts.h.len();
    for (k, l) in layers.iter().enumerate().take(hidden) {
        let (w, b) = weights(l, params, eff);
        let (done, rest) = acts.h.split_at_mut(k);
        let input: &[f32] = if k == 0 { x } else { &done[k - 1] };
        dense::linear(batch, input, w, b, &mut acts.z[k]);
        dense::relu(&acts.z[k], &mut rest[0]);
    }
    let features: &[f32] = if hidden == 0 { x } else { &acts.h[hidden - 1] };
    for l in &layers[hidden..] {
        let (w, b) = weights(l, params, eff);
        let out = match l.role {
            Role::Value => &mut acts.value,
            Role::Advantage => &mut acts.adv,
            _ => &mut acts.out,
        };
        dense::linear(batch, features, w, b, out);
    }
    if dueling != Dueling::None {
        dense::dueling_forward(
            dueling,
            (a, n),
            &acts.adv,
            &acts.value,
            &mut acts.agg,
            &mut acts.out,
        );
    }
}

impl HostLearner {
    /// The gradient of the loss (whose output gradient is in `d_out`) with respect to every
    /// online variable, into `grad`, from the activations of the forward on `obs` (with the
    /// CNN torso, of the convolution on `obs`'s columns `cols_obs`).
    pub(super) fn backward(&mut self, obs: &[f32]) {
        let HostLearner { layers, online, eff_online, on_obs: acts, grad, conv, .. } = self;
        let (bs, a, n) = (self.batch, self.n_actions, self.atoms);
        let hidden = acts.h.len();
        if self.dueling != Dueling::None {
            let shape = (a, n);
            dense::dueling_backward(
                self.dueling,
                shape,
                &acts.adv,
                &acts.agg,
                &self.d_out,
                &mut self.d_value,
                &mut self.d_adv,
            );
        }
        // The dense stack's input, and whether its gradient is needed (the convolution's).
        let (input, has_conv) = match conv {
            Some(_) => (&self.conv_obs.h[..], true),
            None => (obs, false),
        };
        let [d_cur, d_next] = &mut self.d_hidden;
        let (mut d_cur, mut d_next) = (d_cur, d_next);
        let features: &[f32] = if hidden == 0 { input } else { &acts.h[hidden - 1] };
        for (k, l) in layers.iter().enumerate().skip(hidden) {
            let dy: &[f32] = match l.role {
                Role::Value => &self.d_value,
                Role::Advantage => &self.d_adv,
                _ => &self.d_out,
            };
            let (gw, gb) = grad[l.weight.start..l.bias.end].split_at_mut(l.weight.len());
            dense::linear_backward_params(bs, features, dy, gw, gb);
            if hidden > 0 || has_conv {
                let (w, _) = weights(l, online, eff_online);
                let width = bs * l.fan_in;
                dense::linear_backward_input(bs, dy, w, l.fan_out, &mut d_cur[..width], k > hidden);
            }
        }
        for k in (0..hidden).rev() {
            let l = &layers[k];
            let dz = &mut d_cur[..bs * l.fan_out];
            dense::relu_backward(&acts.z[k], dz);
            let x: &[f32] = if k == 0 { input } else { &acts.h[k - 1] };
            let (gw, gb) = grad[l.weight.start..l.bias.end].split_at_mut(l.weight.len());
            dense::linear_backward_params(bs, x, dz, gw, gb);
            if k > 0 || has_conv {
                let (w, _) = weights(l, online, eff_online);
                dense::linear_backward_input(
                    bs,
                    dz,
                    w,
                    l.fan_out,
                    &mut d_next[..bs * l.fan_in],
                    false,
                );
                std::mem::swap(&mut d_cur, &mut d_next);
            }
        }
        // The convolution: d_cur holds the gradient of its (flattened) output.
        if let Some(c) = conv {
            let dz = &mut d_cur[..bs * c.features()];
            dense::relu_backward(&self.conv_obs.z, dz);
            let (gw, gb) = grad[c.weight.start..c.bias.end].split_at_mut(c.weight.len());
            c.backward_params(bs, dz, &self.cols_obs, &mut self.conv_scratch, gw, gb);
        }
        // Noisy layers: d sigma = d W_eff . noise (the noise as candle's product rounds it).
        for (l, noise) in layers.iter().zip(&self.online_noise) {
            let (Some((ws, bs)), Some(noise)) = (&l.sigma, noise) else { continue };
            let (d_mu, d_sigma) =
                grad[l.weight.start..bs.end].split_at_mut(ws.start - l.weight.start);
            let (gw, gb) = d_mu.split_at(l.weight.len());
            let (gws, gbs) = d_sigma.split_at_mut(l.weight.len());
            for ((row_s, row_w), &e_in) in
                gws.chunks_exact_mut(l.fan_out).zip(gw.chunks_exact(l.fan_out)).zip(&noise.input)
            {
                for ((s, &w), &e_out) in row_s.iter_mut().zip(row_w).zip(&noise.output) {
                    *s = w * (e_in * e_out);
                }
            }
            for ((s, &b), &e_out) in gbs.iter_mut().zip(gb).zip(&noise.output) {
                *s = b * e_out;
            }
        }
    }
}
