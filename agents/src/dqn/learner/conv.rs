//! The host learner's convolution, the CNN torso's only one (MinAtar's network, Young & Tian
//! 2019): `kernel x kernel`, stride 1, no padding, as one im2col and one matrix product.
//!
//! For a batch `x` `[batch, channels, height, width]` (flat, channel-major, as the replay
//! stores observations), with `K = channels * kernel^2` taps, `P = height' * width'` output
//! positions (`height' = height - kernel + 1`) and the weight `W` `[filters, K]` (the
//! variable `conv.weight` `[filters, channels, kernel, kernel]` read flat):
//!
//! ```text
//! im2col:   cols[(c kernel + dy) kernel + dx][j P + y width' + x] = x[j][c][y + dy][x + dx]
//!           cols is [K, batch P]: one column per output position of every observation
//! forward:  y = W cols                  [filters, batch P]   (one GEMM)
//!           z[j][f][p] = y[f][j P + p] + b[f],  h = max(z, 0)  [batch, filters P]
//! backward: dy[f][j P + p] = dz[j][f][p]                       (dz: the masked dh)
//!           dW = dy cols^T   [filters, K],   db[f] = sum_{j, p} dy[f][j P + p]
//! ```
//!
//! `h` is laid out as candle's `flatten_from(1)` of the `[batch, filters, height', width']`
//! output, the dense layers' input. The input's gradient is not needed: the convolution reads
//! observations. For MinAtar (`10x10x4`, 16 filters, batch 32) the product is `[16, 36] x
//! [36, 2048]`, 2.4 MFLOP.

use super::dense;
use std::ops::Range;

/// The convolution's geometry and where its variables sit in the flat vectors.
#[derive(Debug, Clone)]
pub(super) struct Conv {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub filters: usize,
    pub kernel: usize,
    /// `[filters, channels * kernel^2]`.
    pub weight: Range<usize>,
    /// `[filters]`.
    pub bias: Range<usize>,
}

/// A pass's convolution activations, `[batch, filters P]` each: the pre-activation `z` (the
/// ReLU mask of the backward) and the output `h` (the dense layers' input).
#[derive(Debug, Clone, Default)]
pub(super) struct ConvActivations {
    pub z: Vec<f32>,
    pub h: Vec<f32>,
}

impl Conv {
    /// The output's height and width.
    fn out_hw(&self) -> (usize, usize) {
        (self.height + 1 - self.kernel, self.width + 1 - self.kernel)
    }

    /// Output positions per observation and filter (`P`).
    pub fn positions(&self) -> usize {
        let (h, w) = self.out_hw();
        h * w
    }

    /// Taps per output value (`K = channels kernel^2`).
    pub fn taps(&self) -> usize {
        self.channels * self.kernel * self.kernel
    }

    /// Values of one observation.
    pub fn input_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Features per observation after flattening (`filters P`).
    pub fn features(&self) -> usize {
        self.filters * self.positions()
    }

    /// Activations for a batch of `batch`.
    pub fn activations(&self, batch: usize) -> ConvActivations {
        let n = batch * self.features();
        ConvActivations { z: vec![0.0; n], h: vec![0.0; n] }
    }

    /// The im2col of `batch` observations `x` into `cols` `[K, batch P]` (module docs).
    pub fn im2col(&self, batch: usize, x: &[f32], cols: &mut [f32]) {
        let (oh, ow) = self.out_hw();
        let (k, p) = (self.kernel, self.positions());
        let plane = self.height * self.width;
        let row_len = batch * p;
        for c in 0..self.channels {
            for dy in 0..k {
                for dx in 0..k {
                    let tap = (c * k + dy) * k + dx;
                    let row = &mut cols[tap * row_len..(tap + 1) * row_len];
                    for (j, out) in row.chunks_exact_mut(p).enumerate() {
                        let image = &x[(j * self.channels + c) * plane..][..plane];
                        for (y, out) in out.chunks_exact_mut(ow).enumerate().take(oh) {
                            let start = (y + dy) * self.width + dx;
                            out.copy_from_slice(&image[start..start + ow]);
                        }
                    }
                }
            }
        }
    }

    /// The forward pass from the columns `cols` of a batch: `z = W cols + b` in the flattened
    /// layout and `h = max(z, 0)`; `scratch` holds the product `[filters, batch P]`.
    pub fn forward(
        &self,
        batch: usize,
        params: &[f32],
        cols: &[f32],
        scratch: &mut [f32],
        acts: &mut ConvActivations,
    ) {
        let (f, k, p) = (self.filters, self.taps(), self.positions());
        let y = &mut scratch[..f * batch * p];
        dense::matmul(
            (f, batch * p, k),
            y,
            false,
            &params[self.weight.clone()],
            false,
            cols,
            false,
        );
        let bias = &params[self.bias.clone()];
        for (fi, (y_f, &b)) in y.chunks_exact(batch * p).zip(bias).enumerate() {
            for (j, y_fj) in y_f.chunks_exact(p).enumerate() {
                let at = (j * f + fi) * p;
                let (z, h) = (&mut acts.z[at..at + p], &mut acts.h[at..at + p]);
                for ((z, h), &v) in z.iter_mut().zip(h.iter_mut()).zip(y_fj) {
                    *z = v + b;
                    *h = z.max(0.0);
                }
            }
        }
    }

    /// The weight and bias gradients (overwritten) from `dz` `[batch, filters P]` (the
    /// pre-activation's gradient, ReLU mask applied) and the forward's columns `cols`;
    /// `scratch` receives `dz` regrouped as `[filters, batch P]`.
    pub fn backward_params(
        &self,
        batch: usize,
        dz: &[f32],
        cols: &[f32],
        scratch: &mut [f32],
        dw: &mut [f32],
        db: &mut [f32],
    ) {
        let (f, k, p) = (self.filters, self.taps(), self.positions());
        let dy = &mut scratch[..f * batch * p];
        for (fi, (dy_f, g)) in dy.chunks_exact_mut(batch * p).zip(db.iter_mut()).enumerate() {
            for (j, dy_fj) in dy_f.chunks_exact_mut(p).enumerate() {
                dy_fj.copy_from_slice(&dz[(j * f + fi) * p..][..p]);
            }
            *g = dy_f.iter().sum();
        }
        dense::matmul((f, k, batch * p), dw, false, dy, false, cols, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The convolution by its definition, `[batch, filters, h', w']`.
    fn direct(conv: &Conv, batch: usize, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
        let (oh, ow) = conv.out_hw();
        let (c, k, f) = (conv.channels, conv.kernel, conv.filters);
        let mut out = vec![0.0; batch * f * oh * ow];
        for j in 0..batch {
            for fi in 0..f {
                for y in 0..oh {
                    for xx in 0..ow {
                        let mut s = b[fi];
                        for ci in 0..c {
                            for dy in 0..k {
                                for dx in 0..k {
                                    let v = x[((j * c + ci) * conv.height + y + dy) * conv.width
                                        + xx
                                        + dx];
                                    s += w[((fi * c + ci) * k + dy) * k + dx] * v;
                                }
                            }
                        }
                        out[((j * f + fi) * oh + y) * ow + xx] = s;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn im2col_and_product_match_the_definition_and_its_gradient() {
        // A non-square image, a kernel of 2 and 3 filters: every index of the layout matters.
        let conv = Conv {
            channels: 2,
            height: 5,
            width: 4,
            filters: 3,
            kernel: 2,
            weight: 0..24,
            bias: 24..27,
        };
        let batch = 2;
        let params: Vec<f32> = (0..27).map(|i| (i as f32 * 0.7).sin()).collect();
        let x: Vec<f32> = (0..batch * conv.input_len()).map(|i| (i as f32 * 0.31).cos()).collect();
        let mut cols = vec![0.0; conv.taps() * batch * conv.positions()];
        conv.im2col(batch, &x, &mut cols);
        let mut scratch = vec![0.0; conv.filters * batch * conv.positions()];
        let mut acts = conv.activations(batch);
        conv.forward(batch, &params, &cols, &mut scratch, &mut acts);
        let want = direct(&conv, batch, &x, &params[0..24], &params[24..27]);
        for (i, (&z, &w)) in acts.z.iter().zip(&want).enumerate() {
            assert!((z - w).abs() < 1e-5, "z[{i}] = {z}, want {w}");
            assert_eq!(acts.h[i], z.max(0.0));
        }
        // d/dW of sum(g . z) for a fixed g is sum over outputs g . x-patch; by finite
        // differences of the direct convolution (linear in W: exact up to rounding).
        let g: Vec<f32> = (0..want.len()).map(|i| (i as f32 * 0.13).sin()).collect();
        let (mut dw, mut db) = (vec![0.0; 24], vec![0.0; 3]);
        conv.backward_params(batch, &g, &cols, &mut scratch, &mut dw, &mut db);
        let objective = |w: &[f32], b: &[f32]| -> f64 {
            let z = direct(&conv, batch, &x, w, b);
            z.iter().zip(&g).map(|(&z, &g)| z as f64 * g as f64).sum()
        };
        let base = objective(&params[0..24], &params[24..27]);
        for i in 0..27 {
            let mut p = params.clone();
            p[i] += 1.0;
            let slope = objective(&p[0..24], &p[24..27]) - base;
            let got = if i < 24 { dw[i] } else { db[i - 24] };
            assert!((got as f64 - slope).abs() < 1e-4, "gradient {i}: {got} vs {slope}");
        }
    }
}
