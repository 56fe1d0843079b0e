//! Tests of the fused batch-norm kernels ([`super`]): against the layer's generic path and
//! finite differences.

use candle_core::{DType, Device, ModuleT};
use candle_nn::{VarBuilder, VarMap};

use super::Fusion;
use crate::conv::BatchNorm;
use crate::gradcheck::check_gradients;
use crate::test_util::{max_diff, var_scaled};

/// A BatchNorm2d over `c` channels with random affine parameters and running statistics.
fn layer(c: usize, map: &VarMap) -> BatchNorm {
    let bn = BatchNorm::new_2d(c, VarBuilder::from_varmap(map, DType::F64, &Device::Cpu));
    let bn = bn.unwrap().with_hyperparameters(1e-3, 0.3).unwrap();
    let data = map.data().lock().unwrap();
    for (i, name) in ["weight", "bias", "running_mean"].iter().enumerate() {
        data[*name].set(var_scaled(&[c], 10 + i as u64, 1.0, 0.0).as_tensor()).unwrap();
    }
    data["running_var"].set(var_scaled(&[c], 13, 0.5, 1.0).as_tensor()).unwrap();
    bn
}

/// The fused kernels give the generic path's output, input and parameter gradients and
/// running statistics, in training and in evaluation (the generic path is the one
/// checked against torch on other devices; the conformance tests run the fused one).
#[test]
fn fused_batch_norm_equals_generic_ops() {
    for train in [true, false] {
        let (map_f, map_g) = (VarMap::new(), VarMap::new());
        let (fused, generic) = (layer(3, &map_f), layer(3, &map_g));
        let x = var_scaled(&[4, 3, 5], 1, 2.0, 0.7);
        let u = var_scaled(&[4, 3, 5], 2, 1.0, 0.0).as_tensor().detach();
        let yf = fused.forward_fused(x.as_tensor(), train, Fusion::None, None).unwrap();
        let yg = generic.forward_generic(x.as_tensor(), train).unwrap();
        assert!(max_diff(&yf, &yg) < 1e-12, "train {train}: outputs differ");
        let gf = yf.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
        let gg = yg.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
        let d = max_diff(gf.get(&x).unwrap(), gg.get(&x).unwrap());
        assert!(d < 1e-12, "train {train}: input gradients differ by {d}");
        let (pf, pg) = (map_f.data().lock().unwrap(), map_g.data().lock().unwrap());
        for name in ["weight", "bias"] {
            let d = max_diff(gf.get(&pf[name]).unwrap(), gg.get(&pg[name]).unwrap());
            assert!(d < 1e-12, "train {train}: {name} gradients differ by {d}");
        }
        for name in ["running_mean", "running_var"] {
            let d = max_diff(pf[name].as_tensor(), pg[name].as_tensor());
            assert!(d < 1e-14, "train {train}: {name} differs by {d}");
        }
    }
}

/// The explicit backward against central finite differences, in f64, for the input and
/// both affine parameters, with batch statistics and with running statistics.
#[test]
fn fused_batch_norm_gradients_match_finite_differences() {
    for train in [true, false] {
        let map = VarMap::new();
        let bn = layer(3, &map);
        let x = var_scaled(&[3, 3, 2, 2], 4, 1.5, 0.3);
        let u = var_scaled(&[3, 3, 2, 2], 5, 1.0, 0.0).as_tensor().detach();
        let mut vars = vec![x.clone()];
        {
            let data = map.data().lock().unwrap();
            vars.extend(["weight", "bias"].iter().map(|n| data[*n].clone()));
        }
        // Evaluate through `forward_t`, which must pick the fused path for f64 on CPU.
        let f = || bn.forward_t(x.as_tensor(), train)?.mul(&u);
        let report = check_gradients(&vars, f, 1e-6, 1e-7, 1e-5).unwrap();
        assert!(report.passed(), "train {train}: {report:?}");
    }
}

/// `relu(bn(x))` and `relu(bn(x) + r)` fused equal the generic compositions (candle's
/// `relu` after the generic batch norm) in value and in the gradients of the input, the
/// residual and both affine parameters, on a rank-4 input, in training and evaluation.
#[test]
fn fused_activations_equal_generic_compositions() {
    for train in [true, false] {
        for fusion in [Fusion::Relu, Fusion::AddRelu] {
            let (map_f, map_g) = (VarMap::new(), VarMap::new());
            let (fused, generic) = (layer(3, &map_f), layer(3, &map_g));
            let x = var_scaled(&[2, 3, 4, 3], 21, 2.0, 0.4);
            let r = var_scaled(&[2, 3, 4, 3], 22, 1.0, 0.0);
            let u = var_scaled(&[2, 3, 4, 3], 23, 1.0, 0.0).as_tensor().detach();
            let res = (fusion == Fusion::AddRelu).then_some(r.as_tensor());
            let yf = fused.forward_fused(x.as_tensor(), train, fusion, res).unwrap();
            let x3 = x.reshape((2, 3, 12)).unwrap();
            let mut yg = generic.forward_generic(&x3, train).unwrap().reshape((2, 3, 4, 3));
            if let Some(r) = res {
                yg = yg.unwrap().add(r);
            }
            let yg = yg.unwrap().relu().unwrap();
            assert!(max_diff(&yf, &yg) < 1e-12, "{fusion:?} train {train}: outputs differ");
            let gf = yf.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
            let gg = yg.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
            for v in [&x, &r] {
                match (gf.get(v), gg.get(v)) {
                    (Some(a), Some(b)) => assert!(max_diff(a, b) < 1e-12, "{fusion:?}"),
                    (None, None) => assert_eq!(fusion, Fusion::Relu),
                    _ => panic!("{fusion:?} train {train}: a gradient is missing"),
                }
            }
            let (pf, pg) = (map_f.data().lock().unwrap(), map_g.data().lock().unwrap());
            for name in ["weight", "bias"] {
                let d = max_diff(gf.get(&pf[name]).unwrap(), gg.get(&pg[name]).unwrap());
                assert!(d < 1e-12, "{fusion:?} train {train}: {name} gradients differ by {d}");
            }
        }
    }
}

/// The fused activations' backward against central finite differences in f64 (input,
/// residual, weight and bias), through the public `forward_relu_t` and
/// `forward_add_relu_t`.
#[test]
fn fused_activation_gradients_match_finite_differences() {
    for train in [true, false] {
        let map = VarMap::new();
        let bn = layer(3, &map);
        let x = var_scaled(&[3, 3, 2, 2], 31, 1.5, 0.3);
        let r = var_scaled(&[3, 3, 2, 2], 32, 1.0, 0.0);
        let u = var_scaled(&[3, 3, 2, 2], 33, 1.0, 0.0).as_tensor().detach();
        let mut vars = vec![x.clone(), r.clone()];
        {
            let data = map.data().lock().unwrap();
            vars.extend(["weight", "bias"].iter().map(|n| data[*n].clone()));
        }
        let f = || {
            let a = bn.forward_relu_t(x.as_tensor(), train)?;
            let b = bn.forward_add_relu_t(x.as_tensor(), r.as_tensor(), train)?;
            (a + b)?.mul(&u)
        };
        let report = check_gradients(&vars, f, 1e-6, 1e-7, 1e-5).unwrap();
        assert!(report.passed(), "train {train}: {report:?}");
    }
}
