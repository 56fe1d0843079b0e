//! Conformance of the convolutional layers with `torch.nn` (README section F): every case of
//! LocalResponseNorm, Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d and
//! Conv1d is rebuilt from its `constructor_kwargs`, loaded with its `params` by torch name,
//! and its forward output and the gradients of `L = sum(output * upstream)` with respect to
//! the input and every parameter are compared with torch's, in float64 (tolerance 1e-10) and
//! float32 (1e-4). LocalResponseNorm cases with a TensorFlow equivalent are also checked in
//! the TF (depth radius) form. Set `DEEPRL_CONFORMANCE_DIR` to check another data set, and
//! `DEEPRL_TEST_DEVICE=cuda` (a `--features cuda` build) to check candle's generic ops on a GPU.

mod common_conformance;

use candle_core::{DType, Module, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use common_conformance::device;
use common_conformance::layers::{assert_close, load_layer_file, LayerCase};
use deeprl::nets::conv::{
    AdaptiveAvgPool2d, AvgPool2d, Conv1d, Conv1dConfig, Conv2d, Conv2dConfig, ConvTranspose2d,
    ConvTranspose2dConfig, LocalResponseNorm, MaxPool2d, Padding1d, Padding2d,
};
use serde_json::{Map, Value};

type Kwargs = Map<String, Value>;

fn int(kw: &Kwargs, key: &str, default: usize) -> usize {
    match kw.get(key) {
        None => default,
        Some(v) => v.as_u64().unwrap_or_else(|| panic!("{key} = {v} is not an integer")) as usize,
    }
}

fn float(kw: &Kwargs, key: &str, default: f64) -> f64 {
    kw.get(key).map_or(default, |v| v.as_f64().unwrap_or_else(|| panic!("{key} = {v}")))
}

fn boolean(kw: &Kwargs, key: &str, default: bool) -> bool {
    kw.get(key).map_or(default, |v| v.as_bool().unwrap_or_else(|| panic!("{key} = {v}")))
}

/// An `int` or `[h, w]` argument.
fn pair(kw: &Kwargs, key: &str, default: [usize; 2]) -> [usize; 2] {
    match kw.get(key) {
        None => default,
        Some(Value::Array(a)) => {
            let v: Vec<usize> = a.iter().map(|x| x.as_u64().expect("int") as usize).collect();
            [v[0], v[1]]
        }
        Some(v) => {
            let k = v.as_u64().unwrap_or_else(|| panic!("{key} = {v}")) as usize;
            [k, k]
        }
    }
}

/// The case's parameters as variables in `dtype`, in a VarMap under their torch names.
fn param_vars(case: &LayerCase, dtype: DType) -> (VarMap, Vec<(String, Var)>) {
    let map = VarMap::new();
    let mut vars = Vec::new();
    for (name, t) in &case.params {
        let tensor = Tensor::from_vec(t.data.clone(), t.shape.as_slice(), &device())
            .and_then(|x| x.to_dtype(dtype))
            .expect("parameter tensor");
        let var = Var::from_tensor(&tensor).expect("var");
        map.data().lock().expect("lock").insert(name.clone(), var.clone());
        vars.push((name.clone(), var));
    }
    (map, vars)
}

/// Builds the module a case describes.
fn build(case: &LayerCase, vb: VarBuilder) -> Box<dyn Module> {
    let kw = &case.constructor_kwargs;
    let class = case.module.trim_start_matches("torch.nn.");
    match class {
        "Conv2d" => {
            let padding = match kw.get("padding") {
                Some(Value::String(s)) if s == "same" => Padding2d::Same,
                Some(Value::String(s)) if s == "valid" => Padding2d::Valid,
                _ => Padding2d::Explicit(pair(kw, "padding", [0, 0])),
            };
            let config = Conv2dConfig {
                in_channels: int(kw, "in_channels", 0),
                out_channels: int(kw, "out_channels", 0),
                kernel_size: pair(kw, "kernel_size", [0, 0]),
                stride: pair(kw, "stride", [1, 1]),
                padding,
                dilation: pair(kw, "dilation", [1, 1]),
                groups: int(kw, "groups", 1),
                bias: boolean(kw, "bias", true),
            };
            Box::new(Conv2d::new(config, vb).expect("Conv2d"))
        }
        "Conv1d" => {
            let padding = match kw.get("padding") {
                Some(Value::String(s)) if s == "same" => Padding1d::Same,
                Some(Value::String(s)) if s == "valid" => Padding1d::Valid,
                _ => Padding1d::Explicit(int(kw, "padding", 0)),
            };
            let config = Conv1dConfig {
                in_channels: int(kw, "in_channels", 0),
                out_channels: int(kw, "out_channels", 0),
                kernel_size: int(kw, "kernel_size", 0),
                stride: int(kw, "stride", 1),
                padding,
                dilation: int(kw, "dilation", 1),
                groups: int(kw, "groups", 1),
                bias: boolean(kw, "bias", true),
            };
            Box::new(Conv1d::new(config, vb).expect("Conv1d"))
        }
        "ConvTranspose2d" => {
            let config = ConvTranspose2dConfig {
                in_channels: int(kw, "in_channels", 0),
                out_channels: int(kw, "out_channels", 0),
                kernel_size: pair(kw, "kernel_size", [0, 0]),
                stride: pair(kw, "stride", [1, 1]),
                padding: pair(kw, "padding", [0, 0]),
                output_padding: pair(kw, "output_padding", [0, 0]),
                dilation: pair(kw, "dilation", [1, 1]),
                groups: int(kw, "groups", 1),
                bias: boolean(kw, "bias", true),
            };
            Box::new(ConvTranspose2d::new(config, vb).expect("ConvTranspose2d"))
        }
        "MaxPool2d" => {
            let kernel_size = pair(kw, "kernel_size", [0, 0]);
            Box::new(MaxPool2d {
                kernel_size,
                stride: pair(kw, "stride", kernel_size),
                padding: pair(kw, "padding", [0, 0]),
                dilation: pair(kw, "dilation", [1, 1]),
                ceil_mode: boolean(kw, "ceil_mode", false),
            })
        }
        "AvgPool2d" => {
            let kernel_size = pair(kw, "kernel_size", [0, 0]);
            Box::new(AvgPool2d {
                kernel_size,
                stride: pair(kw, "stride", kernel_size),
                padding: pair(kw, "padding", [0, 0]),
                ceil_mode: boolean(kw, "ceil_mode", false),
                count_include_pad: boolean(kw, "count_include_pad", true),
                divisor_override: kw
                    .get("divisor_override")
                    .and_then(Value::as_u64)
                    .map(|d| d as usize),
            })
        }
        "AdaptiveAvgPool2d" => Box::new(AdaptiveAvgPool2d::new(pair(kw, "output_size", [0, 0]))),
        "LocalResponseNorm" => Box::new(
            LocalResponseNorm::torch(
                int(kw, "size", 0),
                float(kw, "alpha", 1e-4),
                float(kw, "beta", 0.75),
                float(kw, "k", 1.0),
            )
            .expect("LocalResponseNorm"),
        ),
        other => panic!("no builder for {other}"),
    }
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1()).expect("values")
}

/// Runs `module` on the case's input and checks output and gradients; `label` names the run.
fn check_module(
    case: &LayerCase,
    module: &dyn Module,
    vars: &[(String, Var)],
    dtype: DType,
    label: &str,
) {
    let f64_run = dtype == DType::F64;
    let input = &case.inputs["input"];
    let x = Tensor::from_vec(input.data.clone(), input.shape.as_slice(), &device())
        .and_then(|t| t.to_dtype(dtype))
        .and_then(|t| Var::from_tensor(&t))
        .expect("input");
    let y = module.forward(x.as_tensor()).unwrap_or_else(|e| panic!("{label}: forward: {e}"));
    assert_eq!(y.dtype(), dtype, "{label}: output dtype");
    assert_close(
        &format!("{label} output"),
        y.dims(),
        &values(&y),
        &case.outputs["output"],
        f64_run,
    );
    let u = &case.upstream;
    let upstream = Tensor::from_vec(u.data.clone(), u.shape.as_slice(), &device())
        .and_then(|t| t.to_dtype(dtype))
        .expect("upstream");
    let loss = y.mul(&upstream).and_then(|t| t.sum_all()).expect("loss");
    let grads = loss.backward().unwrap_or_else(|e| panic!("{label}: backward: {e}"));
    let gx = grads.get(&x).unwrap_or_else(|| panic!("{label}: no input gradient"));
    assert_close(
        &format!("{label} d/dinput"),
        gx.dims(),
        &values(gx),
        &case.grads.inputs["input"],
        f64_run,
    );
    assert_eq!(vars.len(), case.grads.params.len(), "{label}: parameter count");
    for (name, var) in vars {
        let g = grads.get(var).unwrap_or_else(|| panic!("{label}: no gradient for {name}"));
        assert_close(
            &format!("{label} d/d{name}"),
            g.dims(),
            &values(g),
            &case.grads.params[name],
            f64_run,
        );
    }
}

/// Every case of `layers/<class>.json`, in both dtypes; returns the number of checked runs.
fn check_file(class: &str) -> usize {
    let file = load_layer_file(class);
    assert_eq!(file.module, format!("torch.nn.{class}"));
    assert!(!file.cases.is_empty(), "{class}: no cases");
    let mut runs = 0;
    for case in &file.cases {
        assert_eq!(case.inputs.keys().collect::<Vec<_>>(), vec!["input"], "{}", case.name);
        for dtype in [DType::F64, DType::F32] {
            let (map, vars) = param_vars(case, dtype);
            let vb = VarBuilder::from_varmap(&map, dtype, &device());
            let module = build(case, vb);
            check_module(
                case,
                module.as_ref(),
                &vars,
                dtype,
                &format!("{}/{:?}", case.name, dtype),
            );
            runs += 1;
        }
    }
    runs
}

#[test]
fn conv2d_matches_torch() {
    assert_eq!(check_file("Conv2d"), 20);
}

#[test]
fn conv1d_matches_torch() {
    assert_eq!(check_file("Conv1d"), 8);
}

#[test]
fn conv_transpose2d_matches_torch() {
    assert_eq!(check_file("ConvTranspose2d"), 8);
}

#[test]
fn max_pool2d_matches_torch() {
    assert_eq!(check_file("MaxPool2d"), 10);
}

#[test]
fn avg_pool2d_matches_torch() {
    assert_eq!(check_file("AvgPool2d"), 10);
}

#[test]
fn adaptive_avg_pool2d_matches_torch() {
    assert_eq!(check_file("AdaptiveAvgPool2d"), 4);
}

#[test]
fn local_response_norm_matches_torch() {
    assert_eq!(check_file("LocalResponseNorm"), 12);
}

/// The TF (depth radius) parameterisation gives torch's numbers wherever the file says the
/// two are equivalent (odd sizes).
#[test]
fn local_response_norm_tf_form_matches_torch() {
    let file: serde_json::Value = common_conformance::load("layers/LocalResponseNorm.json");
    let typed = load_layer_file("LocalResponseNorm");
    let mut checked = 0;
    for (raw, case) in file["cases"].as_array().expect("cases").iter().zip(&typed.cases) {
        let tf = &raw["tf_style"];
        if tf.is_null() {
            continue;
        }
        let get = |k: &str| tf[k].as_f64().unwrap_or_else(|| panic!("tf_style.{k}"));
        let lrn = LocalResponseNorm::tf(
            get("depth_radius") as usize,
            get("bias"),
            get("alpha"),
            get("beta"),
        )
        .expect("tf form");
        for dtype in [DType::F64, DType::F32] {
            check_module(case, &lrn, &[], dtype, &format!("{} (tf form)/{:?}", case.name, dtype));
        }
        checked += 1;
    }
    assert_eq!(checked, 5);
}
