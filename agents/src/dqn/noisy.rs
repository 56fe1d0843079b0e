//! Noisy linear layers (Fortunato et al. 2018, "Noisy Networks for Exploration"), factorised
//! Gaussian variant.
//!
//! ```text
//! y = (mu_w + sigma_w . eps_w) x + mu_b + sigma_b . eps_b
//! eps_w[i][j] = f(eps_in[i]) f(eps_out[j]),  eps_b = f(eps_out),  f(x) = sign(x) sqrt(|x|)
//! eps_in ~ N(0, I_in), eps_out ~ N(0, I_out)
//! mu ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)),  sigma = sigma0 / sqrt(fan_in)   (sigma0 = 0.5)
//! ```
//!
//! The learnable parameters are `mu` and `sigma`; the noise is drawn from the agent's seeded
//! generator. The network exploring by its own noise replaces epsilon-greedy. **When noise is
//! drawn**: the online and the target network each draw fresh noise before every gradient step
//! (independently, as in Rainbow); the acting copy draws fresh noise before every exploring
//! action. **Greedy evaluation** ([`Agent::act_greedy`](crate::Agent::act_greedy)) uses the mean
//! weights `mu` (noise zero), the usual deterministic evaluation policy of noisy agents.

use rand::Rng;
use rand_distr::StandardNormal;

/// `f(x) = sign(x) sqrt(|x|)`, the factorised noise's scaling.
pub fn scale_noise(x: f32) -> f32 {
    x.signum() * x.abs().sqrt()
}

/// Fills `out` with `f(n)` for independent standard normal `n`.
pub fn sample_scaled<R: Rng + ?Sized>(rng: &mut R, out: &mut [f32]) {
    for x in out {
        let n: f32 = rng.sample(StandardNormal);
        *x = scale_noise(n);
    }
}

/// The factorised noise of one layer: `f(eps_in)` and `f(eps_out)`.
#[derive(Debug, Clone, PartialEq)]
pub struct FactorisedNoise {
    /// `f(eps_in)`, one per input.
    pub input: Vec<f32>,
    /// `f(eps_out)`, one per output (also the bias noise).
    pub output: Vec<f32>,
}

impl FactorisedNoise {
    /// Zero noise (the mean weights) for a layer of `fan_in` inputs and `fan_out` outputs.
    pub fn zeros(fan_in: usize, fan_out: usize) -> Self {
        FactorisedNoise { input: vec![0.0; fan_in], output: vec![0.0; fan_out] }
    }

    /// Draws fresh noise (inputs first, then outputs).
    pub fn resample<R: Rng + ?Sized>(&mut self, rng: &mut R) {
        sample_scaled(rng, &mut self.input);
        sample_scaled(rng, &mut self.output);
    }

    /// The weight noise `eps_w[i][j] = f(eps_in[i]) f(eps_out[j])`, row-major `[in, out]`, into
    /// `out` (resized).
    pub fn weight_noise(&self, out: &mut Vec<f32>) {
        out.clear();
        for &a in &self.input {
            out.extend(self.output.iter().map(|&b| a * b));
        }
    }
}

/// The initial `sigma` of a noisy layer with `fan_in` inputs: `sigma0 / sqrt(fan_in)`.
pub fn initial_sigma(sigma0: f64, fan_in: usize) -> f32 {
    (sigma0 / (fan_in as f64).sqrt()) as f32
}
