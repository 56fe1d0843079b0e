//! A host copy of the Q-network for acting on one observation: plain Rust loops over
//! preallocated buffers, no tensor, no allocation per call.
//!
//! The agent acts once per env step on one observation; through candle that costs tensor
//! construction and a dozen small ops. The weights only change at a gradient step, so the
//! agent copies them here after each training phase ([`HostNet::refresh`]) and acts from the
//! copy. Noisy layers are evaluated without materialising the noisy weight:
//! `x (mu_w + sigma_w . f(e_in) f(e_out)^T) = x mu_w + f(e_out) . ((x . f(e_in)) sigma_w)`.
//! The CNN torso's convolution (valid, stride 1) is computed by its definition, a row of
//! output at a time: `z[f][y][.] = b[f] + sum_{c, dy, dx} W[f][c][dy][dx] x[c][y + dy][dx + .]`
//! (37k multiply-adds for MinAtar's 16 filters on `4x10x10`).

use super::config::Dueling;
use super::network::{QNet, Role, Torso};
use super::noisy::FactorisedNoise;
use crate::error::Result;
use rand::Rng;

#[derive(Debug, Clone)]
struct HostLayer {
    role: Role,
    fan_in: usize,
    fan_out: usize,
    /// `[in, out]`, row-major.
    weight: Vec<f32>,
    bias: Vec<f32>,
    weight_sigma: Vec<f32>,
    bias_sigma: Vec<f32>,
    noise: Option<FactorisedNoise>,
}

/// The CNN torso's convolution in the host copy.
#[derive(Debug, Clone)]
struct HostConv {
    /// `[channels, height, width]` of an observation.
    image: [usize; 3],
    kernel: usize,
    filters: usize,
    /// `[filters, channels, kernel, kernel]`.
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl HostConv {
    /// Output height and width.
    fn out_hw(&self) -> (usize, usize) {
        (self.image[1] + 1 - self.kernel, self.image[2] + 1 - self.kernel)
    }

    /// `h = max(conv(x) + b, 0)`, flattened `[filters, h', w']`, into `h`.
    fn forward(&self, x: &[f32], h: &mut [f32]) {
        let ([channels, height, width], k) = (self.image, self.kernel);
        let (oh, ow) = self.out_hw();
        let h = &mut h[..self.filters * oh * ow];
        for ((out, w), &b) in h
            .chunks_exact_mut(oh * ow)
            .zip(self.weight.chunks_exact(channels * k * k))
            .zip(&self.bias)
        {
            out.fill(b);
            for (c, w) in w.chunks_exact(k * k).enumerate() {
                let plane = &x[c * height * width..(c + 1) * height * width];
                for (y, row) in out.chunks_exact_mut(ow).enumerate() {
                    for dy in 0..k {
                        let line = &plane[(y + dy) * width..(y + dy + 1) * width];
                        for dx in 0..k {
                            let wv = w[dy * k + dx];
                            for (o, &v) in row.iter_mut().zip(&line[dx..dx + ow]) {
                                *o += wv * v;
                            }
                        }
                    }
                }
            }
            out.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }
}

/// The host copy (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct HostNet {
    /// The CNN torso's convolution (`None` for the MLP torso).
    conv: Option<HostConv>,
    layers: Vec<HostLayer>,
    n_actions: usize,
    atoms: usize,
    dueling: Dueling,
    /// The C51 support (empty for Q-values).
    support: Vec<f32>,
    h: Vec<f32>,
    h_next: Vec<f32>,
    scratch: Vec<f32>,
    value: Vec<f32>,
    out: Vec<f32>,
    q: Vec<f32>,
}

fn to_vec(v: &candle_core::Var) -> Result<Vec<f32>> {
    Ok(v.as_tensor().flatten_all()?.to_vec1::<f32>()?)
}

/// `y += x W` for `W` `[x.len(), y.len()]` row-major (row `i` scaled by `x[i]`; vectorises).
fn axpy_rows(x: &[f32], w: &[f32], y: &mut [f32]) {
    let n = y.len();
    for (xi, row) in x.iter().zip(w.chunks_exact(n)) {
        if *xi != 0.0 {
            for (yj, wj) in y.iter_mut().zip(row) {
                *yj += xi * wj;
            }
        }
    }
}

impl HostNet {
    /// A copy of `net`'s current weights; `support` is the C51 support (empty for none).
    pub fn new(net: &QNet, support: Vec<f32>) -> Result<Self> {
        let conv = match (&net.shape.torso, &net.conv) {
            (&Torso::Cnn { channels, height, width, filters, kernel, .. }, Some(_)) => {
                Some(HostConv {
                    image: [channels, height, width],
                    kernel,
                    filters,
                    weight: Vec::new(),
                    bias: Vec::new(),
                })
            }
            (Torso::Mlp { .. }, None) => None,
            (torso, _) => {
                return Err(crate::error::AgentError::Shape(format!(
                    "host copy: the network's torso {torso:?} and its convolution disagree"
                )))
            }
        };
        let mut host = HostNet {
            conv,
            layers: Vec::new(),
            n_actions: net.shape.n_actions,
            atoms: net.shape.atoms,
            dueling: net.shape.dueling,
            support,
            h: Vec::new(),
            h_next: Vec::new(),
            scratch: Vec::new(),
            value: Vec::new(),
            out: Vec::new(),
            q: vec![0.0; net.shape.n_actions],
        };
        host.refresh(net)?;
        Ok(host)
    }

    /// Copies the current weights of `net` again, reusing the buffers.
    pub fn refresh(&mut self, net: &QNet) -> Result<()> {
        let mut widest = 0;
        if let (Some(h), Some(c)) = (&mut self.conv, &net.conv) {
            h.weight = to_vec(&c.weight)?;
            h.bias = to_vec(&c.bias)?;
            let (oh, ow) = h.out_hw();
            widest = h.filters * oh * ow;
        }
        self.layers.resize_with(net.layers.len(), || HostLayer {
            role: Role::Hidden,
            fan_in: 0,
            fan_out: 0,
            weight: Vec::new(),
            bias: Vec::new(),
            weight_sigma: Vec::new(),
            bias_sigma: Vec::new(),
            noise: None,
        });
        for (h, l) in self.layers.iter_mut().zip(&net.layers) {
            h.role = l.role;
            h.fan_in = l.fan_in;
            h.fan_out = l.fan_out;
            h.weight = to_vec(&l.weight)?;
            h.bias = to_vec(&l.bias)?;
            match (&l.weight_sigma, &l.bias_sigma) {
                (Some(ws), Some(bs)) => {
                    h.weight_sigma = to_vec(ws)?;
                    h.bias_sigma = to_vec(bs)?;
                    if h.noise.is_none() {
                        h.noise = Some(FactorisedNoise::zeros(l.fan_in, l.fan_out));
                    }
                }
                _ => h.noise = None,
            }
            widest = widest.max(l.fan_out).max(l.fan_in);
        }
        for buf in [&mut self.h, &mut self.h_next, &mut self.scratch, &mut self.out] {
            buf.resize(widest, 0.0);
        }
        self.value.resize(self.atoms, 0.0);
        Ok(())
    }

    /// Copies the weights from `params`, laid out as the host learner keeps them (the
    /// convolution's weight and bias, then layer by layer: weight `[in, out]`, bias, then a
    /// noisy layer's sigmas; [`QNet::vars`]' order),
    /// reusing the buffers. A length other than this copy's is an error.
    pub fn copy_flat(&mut self, params: &[f32]) -> Result<()> {
        let buffers = |l: &HostLayer| {
            l.weight.len() + l.bias.len() + l.weight_sigma.len() + l.bias_sigma.len()
        };
        let conv = self.conv.as_ref().map_or(0, |c| c.weight.len() + c.bias.len());
        let want: usize = conv + self.layers.iter().map(buffers).sum::<usize>();
        if params.len() != want {
            return Err(crate::error::AgentError::Shape(format!(
                "host copy: {} weights given, the network has {want}",
                params.len()
            )));
        }
        let mut rest = params;
        if let Some(c) = &mut self.conv {
            for buf in [&mut c.weight, &mut c.bias] {
                let (head, tail) = rest.split_at(buf.len());
                buf.copy_from_slice(head);
                rest = tail;
            }
        }
        for l in &mut self.layers {
            for buf in [&mut l.weight, &mut l.bias, &mut l.weight_sigma, &mut l.bias_sigma] {
                let (head, tail) = rest.split_at(buf.len());
                buf.copy_from_slice(head);
                rest = tail;
            }
        }
        Ok(())
    }

    /// Draws fresh noise for the noisy layers of this copy.
    pub fn resample_noise<R: Rng + ?Sized>(&mut self, rng: &mut R) {
        for l in &mut self.layers {
            if let Some(n) = &mut l.noise {
                n.resample(rng);
            }
        }
    }

    /// `y = x W + b` (plus the noise term when `noisy`) into `y`.
    fn linear(l: &HostLayer, x: &[f32], y: &mut [f32], scratch: &mut [f32], noisy: bool) {
        y.copy_from_slice(&l.bias);
        axpy_rows(x, &l.weight, y);
        if let (true, Some(n)) = (noisy, &l.noise) {
            // f(e_out) . (b_sigma + (x . f(e_in)) sigma_w)
            let t = &mut scratch[..l.fan_out];
            t.copy_from_slice(&l.bias_sigma);
            for ((&xi, &ei), row) in
                x.iter().zip(&n.input).zip(l.weight_sigma.chunks_exact(l.fan_out))
            {
                let s = xi * ei;
                if s != 0.0 {
                    t.iter_mut().zip(row).for_each(|(tj, wj)| *tj += s * wj);
                }
            }
            y.iter_mut().zip(t.iter()).zip(&n.output).for_each(|((yj, tj), ej)| *yj += tj * ej);
        }
    }

    /// The Q-values (expected values for C51) of every action for one observation (the
    /// network's input: `[channels, height, width]` flat for the CNN torso); `noisy`
    /// adds the layers' current noise (exploring), otherwise the mean weights are used.
    pub fn q_values(&mut self, obs: &[f32], noisy: bool) -> &[f32] {
        let (a, n) = (self.n_actions, self.atoms);
        let mut input_len = obs.len();
        match &self.conv {
            Some(c) => {
                c.forward(obs, &mut self.h);
                input_len = self.layers.first().map_or(0, |l| l.fan_in);
            }
            None => self.h[..input_len].copy_from_slice(obs),
        }
        for l in &self.layers {
            let x = &self.h[..input_len.min(l.fan_in)];
            match l.role {
                Role::Hidden => {
                    let y = &mut self.h_next[..l.fan_out];
                    Self::linear(l, x, y, &mut self.scratch, noisy);
                    y.iter_mut().for_each(|v| *v = v.max(0.0));
                }
                Role::Q | Role::Advantage => {
                    Self::linear(l, x, &mut self.out[..l.fan_out], &mut self.scratch, noisy)
                }
                Role::Value => Self::linear(l, x, &mut self.value, &mut self.scratch, noisy),
            }
            if l.role == Role::Hidden {
                std::mem::swap(&mut self.h, &mut self.h_next);
                input_len = l.fan_out;
            }
        }
        let out = &mut self.out[..a * n];
        if self.dueling != Dueling::None {
            for j in 0..n {
                let column = (0..a).map(|k| out[k * n + j]);
                let agg = match self.dueling {
                    Dueling::Max => column.fold(f32::NEG_INFINITY, f32::max),
                    _ => column.sum::<f32>() / a as f32,
                };
                let shift = self.value[j] - agg;
                (0..a).for_each(|k| out[k * n + j] += shift);
            }
        }
        if self.support.is_empty() {
            self.q.copy_from_slice(&out[..a]);
        } else {
            for (q, logits) in self.q.iter_mut().zip(out.chunks_exact(n)) {
                let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
                let (mut total, mut weighted) = (0.0f32, 0.0f32);
                for (&x, &z) in logits.iter().zip(&self.support) {
                    let e = (x - max).exp();
                    total += e;
                    weighted += e * z;
                }
                *q = weighted / total;
            }
        }
        &self.q
    }
}

/// The index of the largest value (the first on ties).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}
