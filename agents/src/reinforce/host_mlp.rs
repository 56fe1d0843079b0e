//! A host copy of an [`Mlp`]'s weights with a forward pass for one observation: plain Rust
//! loops over preallocated buffers.
//!
//! REINFORCE runs the policy once per env step on a single observation. Through candle that is
//! a tensor built from the observation, one matmul, bias add and activation per layer, and a
//! copy back to the host: a few microseconds of framework overhead and several allocations for
//! a few thousand multiply-adds. The weights only change at an update, so the agent copies them
//! here after each update ([`HostMlp::refresh`]) and acts from this copy, allocating nothing.
//! The batched update still goes through candle (autograd). The two forwards agree to float
//! rounding (the summation order differs); `tests/reinforce.rs` checks it.

use candle_core::{DType, Result};
use deeprl_nets::mlp::{Activation, Mlp};

/// One dense layer on the host: `y = W x + b`, `W` row-major `[out, in]` as in `nn.Linear`.
#[derive(Debug, Clone)]
struct Layer {
    weight: Vec<f32>,
    bias: Vec<f32>,
    fan_in: usize,
    fan_out: usize,
}

/// The weights of an [`Mlp`] copied to the host, and scratch buffers for the forward pass.
#[derive(Debug, Clone)]
pub struct HostMlp {
    layers: Vec<Layer>,
    activation: Activation,
    output_activation: Activation,
    a: Vec<f32>,
    b: Vec<f32>,
}

fn activate(act: Activation, xs: &mut [f32]) {
    match act {
        Activation::Relu => xs.iter_mut().for_each(|x| *x = x.max(0.0)),
        Activation::Tanh => xs.iter_mut().for_each(|x| *x = x.tanh()),
        Activation::Sigmoid => xs.iter_mut().for_each(|x| *x = 1.0 / (1.0 + (-*x).exp())),
        Activation::Elu(alpha) => {
            let alpha = alpha as f32;
            xs.iter_mut().for_each(|x| *x = if *x > 0.0 { *x } else { alpha * x.exp_m1() })
        }
        Activation::LeakyRelu(slope) => {
            let slope = slope as f32;
            xs.iter_mut().for_each(|x| *x = if *x > 0.0 { *x } else { slope * *x })
        }
        Activation::Silu => xs.iter_mut().for_each(|x| *x /= 1.0 + (-*x).exp()),
        Activation::Identity => {}
        // torch's exact GELU, `x Phi(x)`, through the erf approximation below.
        Activation::Gelu => xs.iter_mut().for_each(|x| {
            let v = *x as f64;
            *x = (0.5 * v * (1.0 + erf(v / std::f64::consts::SQRT_2))) as f32
        }),
    }
}

/// The error function (Abramowitz and Stegun 7.1.26, absolute error below 1.5e-7); the network
/// output stays within 2e-6 (relative) of candle's exact GELU (checked in `tests/reinforce.rs`).
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let y = 1.0 - poly * (-x * x).exp();
    if x >= 0.0 {
        y
    } else {
        -y
    }
}

impl HostMlp {
    /// Copies the weights of `mlp` (an `f32` network) to the host.
    pub fn new(mlp: &Mlp, activation: Activation, output_activation: Activation) -> Result<Self> {
        let mut host =
            HostMlp { layers: Vec::new(), activation, output_activation, a: vec![], b: vec![] };
        host.refresh(mlp)?;
        Ok(host)
    }

    /// Copies the current weights of `mlp` again (after an update or a load), reusing the
    /// buffers.
    pub fn refresh(&mut self, mlp: &Mlp) -> Result<()> {
        let linears = mlp.linears();
        self.layers.resize_with(linears.len(), || Layer {
            weight: Vec::new(),
            bias: Vec::new(),
            fan_in: 0,
            fan_out: 0,
        });
        let mut widest = 0;
        for (layer, lin) in self.layers.iter_mut().zip(linears) {
            let (fan_out, fan_in) = lin.weight().dims2()?;
            layer.weight.clear();
            layer
                .weight
                .extend(lin.weight().to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?);
            layer.bias.clear();
            match lin.bias() {
                Some(b) => layer.bias.extend(b.to_dtype(DType::F32)?.to_vec1::<f32>()?),
                None => layer.bias.resize(fan_out, 0.0),
            }
            layer.fan_in = fan_in;
            layer.fan_out = fan_out;
            widest = widest.max(fan_out);
        }
        self.a.resize(widest, 0.0);
        self.b.resize(widest, 0.0);
        Ok(())
    }

    /// The input size.
    pub fn input_len(&self) -> usize {
        self.layers.first().map_or(0, |l| l.fan_in)
    }

    /// The output size.
    pub fn output_len(&self) -> usize {
        self.layers.last().map_or(0, |l| l.fan_out)
    }

    /// The network's output for one input `x` of [`input_len`](Self::input_len) values; the
    /// slice borrows the internal buffer until the next call.
    pub fn forward(&mut self, x: &[f32]) -> &[f32] {
        let n = self.layers.len();
        let out_len = self.output_len();
        let (mut cur, mut next) = (&mut self.a, &mut self.b);
        for (k, layer) in self.layers.iter().enumerate() {
            let input: &[f32] = if k == 0 { x } else { &cur[..layer.fan_in] };
            let out = &mut next[..layer.fan_out];
            for ((o, row), &bias) in
                out.iter_mut().zip(layer.weight.chunks_exact(layer.fan_in)).zip(&layer.bias)
            {
                *o = bias + dot(row, input);
            }
            activate(if k + 1 < n { self.activation } else { self.output_activation }, out);
            std::mem::swap(&mut cur, &mut next);
        }
        &cur[..out_len]
    }
}

/// A dot product with eight independent accumulators, which the compiler vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    acc.iter().sum::<f32>() + tail
}
