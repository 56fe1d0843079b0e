//! Tests of the convolution kernels (`fast`, `fast_im2col`, `fast_shifted`): against
//! candle's generic gather + matmul and against finite differences.

use candle_core::Tensor;

use super::fast::{conv2d, ConvOp};
use super::fast_shifted::Shifted;
use super::geometry::Axis;
use candle_core::Var;

use crate::gradcheck::check_gradients;
use crate::test_util::{max_diff, var};

fn axis(n: usize, k: usize, stride: usize, dilation: usize, pad_lo: isize, in_dil: usize) -> Axis {
    let span = (dilation * (k - 1)) as isize;
    let full = ((n - 1) * in_dil) as isize + 1 + 2 * pad_lo - span;
    let out = ((full - 1) / stride as isize + 1) as usize;
    Axis { n, k, stride, dilation, pad_lo, in_dilation: in_dil, out }
}

/// A stride-1 axis padded by `pad_lo` before and nothing after.
fn lopsided(n: usize, k: usize, pad_lo: usize) -> Axis {
    let out = n + pad_lo + 1 - k;
    Axis { n, k, stride: 1, dilation: 1, pad_lo: pad_lo as isize, in_dilation: 1, out }
}

/// The stride-1 cases from 16 channels per group on take the shifted products, those with
/// fewer channels (one group) the wide column matrix, the others im2col.
#[test]
fn wide_stride_one_cases_take_the_shifted_path() {
    for (i, (xs, ws, g, rows, cols)) in cases().into_iter().enumerate() {
        let op = ConvOp::plain(g, rows, cols);
        let shifted = Shifted::of(&op, xs[1] / g, ws[0] / g);
        assert_eq!(shifted.is_some(), (4..10).contains(&i) || i > 10, "case {i}");
        let columns = shifted.is_some_and(|s| s.columns);
        assert_eq!(columns, i == 4 || i > 10, "case {i}");
    }
}

/// (x shape, weight shape, groups, rows, cols).
type Case = ([usize; 4], [usize; 4], usize, Axis, Axis);

/// Grouped, strided, dilated, zero-stuffed
/// with negative padding, pointwise (1x1, stride 1: no column matrix), and "same" size
/// with stride 1 (shifted blocks).
fn cases() -> Vec<Case> {
    vec![
        ([2, 4, 7, 6], [6, 2, 3, 2], 2, axis(7, 3, 2, 1, 1, 1), axis(6, 2, 1, 2, 0, 1)),
        ([1, 3, 5, 5], [3, 1, 3, 3], 3, axis(5, 3, 1, 2, 2, 2), axis(5, 3, 1, 1, -1, 2)),
        ([2, 2, 4, 3], [5, 2, 1, 1], 1, axis(4, 1, 1, 1, 0, 1), axis(3, 1, 1, 1, 0, 1)),
        ([2, 4, 4, 3], [6, 2, 1, 1], 2, axis(4, 1, 1, 1, 0, 1), axis(3, 1, 1, 1, 0, 1)),
        // "same" size: each tap's column row is one shifted block of the plane.
        ([2, 3, 5, 6], [4, 3, 3, 3], 1, axis(5, 3, 1, 1, 1, 1), axis(6, 3, 1, 2, 2, 1)),
        // From 16 channels per group on, stride 1, 16 columns: shifted GEMMs
        // (`fast_shifted`), with "same" padding; grouped, dilated rows and unpadded
        // columns; padding before only (none after) with a 3x2 kernel.
        ([1, 16, 4, 16], [16, 16, 3, 3], 1, axis(4, 3, 1, 1, 1, 1), axis(16, 3, 1, 1, 1, 1)),
        ([1, 32, 5, 17], [32, 16, 3, 2], 2, axis(5, 3, 1, 2, 2, 1), axis(17, 2, 1, 1, 0, 1)),
        ([1, 16, 5, 16], [16, 16, 3, 2], 1, lopsided(5, 3, 1), lopsided(16, 2, 1)),
        // 64 output channels: the forward's products with the channels on the rows.
        ([1, 16, 3, 16], [64, 16, 3, 3], 1, axis(3, 3, 1, 1, 1, 1), axis(16, 3, 1, 1, 1, 1)),
        // 64 input channels: the input gradient's products with the channels on the rows.
        ([1, 64, 3, 16], [16, 64, 3, 3], 1, axis(3, 3, 1, 1, 1, 1), axis(16, 3, 1, 1, 1, 1)),
        // The same as the first shifted one but 8 columns wide: too many junk columns, im2col.
        ([1, 16, 4, 8], [16, 16, 3, 3], 1, axis(4, 3, 1, 1, 1, 1), axis(8, 3, 1, 1, 1, 1)),
        // Few channels, stride 1 (with case 4): the wide column matrix. A LeNet-like valid
        // 5x5 layer (a third of the wide grid is junk), and 3 -> 16 channels "same" (the
        // forward's product with the channels on the rows).
        ([2, 1, 12, 12], [6, 1, 5, 5], 1, axis(12, 5, 1, 1, 0, 1), axis(12, 5, 1, 1, 0, 1)),
        ([1, 3, 6, 16], [16, 3, 3, 3], 1, axis(6, 3, 1, 1, 1, 1), axis(16, 3, 1, 1, 1, 1)),
    ]
}

/// The generic composition `relu?(conv(x) + b)` from candle ops.
fn generic(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    relu: bool,
    g: usize,
    rows: &Axis,
    cols: &Axis,
) -> Tensor {
    let mut y = crate::conv::convolution::conv2d_generic(x, w, g, rows, cols).unwrap();
    if let Some(b) = b {
        y = y.broadcast_add(&b.reshape((1, b.elem_count(), 1, 1)).unwrap()).unwrap();
    }
    if relu {
        y = y.relu().unwrap();
    }
    y
}

/// The fused kernel and the generic gather + matmul agree in value and in every
/// gradient, with and without the fused bias and ReLU (the conformance tests run the
/// fused one against torch; this covers the generic one used on other devices).
#[test]
fn fused_kernel_equals_generic_ops() {
    for (i, (xs, ws, g, rows, cols)) in cases().into_iter().enumerate() {
        for (bias, relu) in [(false, false), (true, false), (false, true), (true, true)] {
            let x = var(&xs, 1 + i as u64);
            let w = var(&ws, 2);
            let b = var(&[ws[0]], 4);
            let bt = bias.then_some(b.as_tensor());
            let fast = conv2d(&x, &w, bt, relu, g, &rows, &cols).unwrap();
            let gen = generic(&x, &w, bt, relu, g, &rows, &cols);
            assert_eq!(fast.dims(), gen.dims());
            assert!(max_diff(&fast, &gen) < 1e-12, "case {i} bias {bias} relu {relu}");
            let u = var(fast.dims(), 3).as_tensor().detach();
            let gf = fast.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
            let gg = gen.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
            let vars: &[&Var] = if bias { &[&x, &w, &b] } else { &[&x, &w] };
            for v in vars {
                let d = max_diff(gf.get(v).unwrap(), gg.get(v).unwrap());
                assert!(d < 1e-12, "case {i} bias {bias} relu {relu}: gradient off by {d}");
            }
        }
    }
}

/// The explicit backward (input, weight and bias, through the fused ReLU) against
/// central finite differences in f64, on a strided and on a pointwise convolution.
#[test]
fn fused_kernel_gradients_match_finite_differences() {
    for (i, (xs, ws, g, rows, cols)) in cases().into_iter().enumerate().skip(1) {
        if ws[0] > 32 {
            // The 64-channel case's loss sums about 3,000 squares near 1, whose f64
            // rounding over the 1e-6 step (about 3e-7 in a difference quotient) exceeds
            // this check's tolerance; the exact comparison with the generic composition
            // (`fused_kernel_equals_generic_ops`, to 1e-12) covers that case.
            continue;
        }
        let x = var(&xs, 10 + i as u64);
        // Weights scaled by 1 / sqrt(fan-in) keep the outputs near 1 whatever the channel
        // count, so that the loss (and the rounding error of its finite differences)
        // does not grow with the 16-channel cases.
        let fan_in = (ws[1] * ws[2] * ws[3]) as f64;
        let w = Var::from_tensor(&(var(&ws, 11).as_tensor() / fan_in.sqrt()).unwrap()).unwrap();
        // A bias shifts the pre-activations away from the ReLU's kink at 0 for most
        // outputs; the finite differences use a step far below the typical distance.
        let b = var(&[ws[0]], 12);
        let f = || {
            let y = conv2d(&x, &w, Some(b.as_tensor()), true, g, &rows, &cols)?;
            y.sqr()
        };
        let vars = [x.clone(), w.clone(), b.clone()];
        let report = check_gradients(&vars, f, 1e-6, 1e-7, 1e-5).unwrap();
        assert!(report.passed(), "case {i}: {report:?}");
    }
}

/// The direct f32 kernels (`fast_direct`, on AVX-512) against the f64 products, forward and
/// every gradient: 16 channels (all three kernels), 32 (forward and input gradient), an odd
/// width (positions past the last whole vector), 24 input channels (the input gradient on
/// the products), a 5x5 kernel (taps not in threes) and dilated rows.
#[test]
fn direct_f32_kernels_match_the_f64_products() {
    let cases: Vec<Case> = vec![
        ([2, 16, 5, 16], [16, 16, 3, 3], 1, axis(5, 3, 1, 1, 1, 1), axis(16, 3, 1, 1, 1, 1)),
        ([1, 32, 4, 16], [32, 32, 3, 3], 1, axis(4, 3, 1, 1, 1, 1), axis(16, 3, 1, 1, 1, 1)),
        ([1, 16, 5, 17], [32, 16, 3, 2], 1, lopsided(5, 3, 1), lopsided(17, 2, 1)),
        ([2, 24, 6, 16], [16, 24, 3, 3], 1, axis(6, 3, 1, 2, 2, 1), axis(16, 3, 1, 1, 1, 1)),
        ([1, 16, 6, 33], [16, 16, 5, 5], 1, axis(6, 5, 1, 1, 2, 1), axis(33, 5, 1, 1, 2, 1)),
    ];
    let direct = super::fast_direct::available();
    for (i, (xs, ws, g, rows, cols)) in cases.into_iter().enumerate() {
        let op = ConvOp::plain(g, rows, cols);
        let s = Shifted::of(&op, xs[1], ws[0]).expect("a shifted case");
        let d = super::fast::Dims {
            n: xs[0],
            c: xs[1],
            hw: xs[2] * xs[3],
            out_ch: ws[0],
            cg: ws[1],
            og: ws[0],
            ck: ws[1] * ws[2] * ws[3],
            l: rows.out * cols.out,
        };
        // The f32 forward takes the direct kernel wherever the CPU has AVX-512.
        assert_eq!(s.direct_taps::<f32>(&op, ws[0]), direct, "case {i}");
        assert!(!s.direct_taps::<f64>(&op, ws[0]) && !s.direct_weight::<f64>(&op, &d));
        let fan_in = (ws[1] * ws[2] * ws[3]) as f64;
        let x = var(&xs, 30 + i as u64);
        let w = Var::from_tensor(&(var(&ws, 31).as_tensor() / fan_in.sqrt()).unwrap()).unwrap();
        let b = var(&[ws[0]], 32);
        let u = var(&[xs[0], ws[0], rows.out, cols.out], 33).as_tensor().detach();
        let run = |dtype| {
            let vars = [&x, &w, &b].map(|v| Var::from_tensor(&v.to_dtype(dtype).unwrap()).unwrap());
            let y = conv2d(&vars[0], &vars[1], Some(vars[2].as_tensor()), true, g, &rows, &cols)
                .unwrap();
            let grads = y.mul(&u.to_dtype(dtype).unwrap()).unwrap().sum_all().unwrap();
            let grads = grads.backward().unwrap();
            let mut all = vec![y];
            all.extend(vars.iter().map(|v| grads.get(v).unwrap().clone()));
            all.into_iter()
                .map(|t| t.to_dtype(candle_core::DType::F64).unwrap())
                .collect::<Vec<_>>()
        };
        let (single, double) = (run(candle_core::DType::F32), run(candle_core::DType::F64));
        for (what, (a, b)) in ["output", "dx", "dw", "db"].iter().zip(single.iter().zip(&double)) {
            let scale = b.abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap().max(1.0);
            let diff = max_diff(a, b);
            // f32 rounding: measured at most 2e-7 of the largest value.
            assert!(diff < 1e-6 * scale, "case {i} {what}: off by {diff} (scale {scale})");
        }
    }
}
