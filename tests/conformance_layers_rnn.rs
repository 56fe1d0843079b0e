//! Conformance of the recurrent layers with torch's `nn.LSTM`, `nn.GRU` and `nn.RNN`: every
//! case of `layers/{LSTM,GRU,RNN}.json` (README section F) is rebuilt from its constructor
//! arguments and torch-named parameters, run in float64 and in float32, and its output, final
//! states and every gradient of `L = sum(output * upstream)` (input, h0, c0, each parameter)
//! are compared within the README's tolerances. LSTM cases run twice: through the fused CPU
//! kernel and through the generic per-step ops. Set `DEEPRL_CONFORMANCE_DIR` to check another
//! data set of the same format, and `DEEPRL_TEST_DEVICE=cuda` (a `--features cuda` build) to
//! run the generic ops on a GPU.

mod common_conformance;

use std::collections::HashMap;

use candle_core::{DType, Tensor, Var};
use candle_nn::VarBuilder;
use common_conformance::device;
use common_conformance::layers::{assert_close, load_layer_file, LayerCase, RefTensor};
use deeprl::nets::rnn::{CellKind, Rnn, RnnConfig, RnnState};
use serde_json::Value;

fn var(t: &RefTensor, dtype: DType) -> Var {
    let x = Tensor::from_vec(t.data.clone(), t.shape.clone(), &device()).unwrap();
    Var::from_tensor(&x.to_dtype(dtype).unwrap()).unwrap()
}

fn values(t: &Tensor) -> (Vec<usize>, Vec<f64>) {
    (t.dims().to_vec(), t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap())
}

/// Builds the config from torch's constructor arguments, failing on any it does not know.
fn config(class: &str, case: &LayerCase) -> RnnConfig {
    let kw = &case.constructor_kwargs;
    let int = |k: &str| kw.get(k).and_then(Value::as_u64).map(|v| v as usize);
    let flag = |k: &str, default: bool| kw.get(k).and_then(Value::as_bool).unwrap_or(default);
    for key in kw.keys() {
        let known = [
            "input_size",
            "hidden_size",
            "num_layers",
            "bias",
            "batch_first",
            "bidirectional",
            "nonlinearity",
        ];
        assert!(known.contains(&key.as_str()), "{}: unsupported argument {key}", case.name);
    }
    let kind = match class {
        "LSTM" => CellKind::Lstm { peephole: false },
        "GRU" => CellKind::Gru,
        "RNN" => match kw.get("nonlinearity").and_then(Value::as_str).unwrap_or("tanh") {
            "tanh" => CellKind::RnnTanh,
            "relu" => CellKind::RnnRelu,
            other => panic!("{}: nonlinearity {other}", case.name),
        },
        other => panic!("unknown class {other}"),
    };
    RnnConfig::new(
        kind,
        int("input_size").expect("input_size"),
        int("hidden_size").expect("hidden"),
    )
    .with_layers(int("num_layers").unwrap_or(1))
    .with_bias(flag("bias", true))
    .with_batch_first(flag("batch_first", false))
    .with_bidirectional(flag("bidirectional", false))
}

fn check_case(class: &str, case: &LayerCase, dtype: DType, fused: bool) {
    let f64_ = dtype == DType::F64;
    let tag = |what: &str| format!("{class}/{} ({dtype:?}, fused {fused}): {what}", case.name);
    let params: Vec<(String, Var)> =
        case.params.iter().map(|(k, t)| (k.clone(), var(t, dtype))).collect();
    let map: HashMap<String, Tensor> =
        params.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
    let rnn = Rnn::load(config(class, case), VarBuilder::from_tensors(map, dtype, &device()))
        .unwrap_or_else(|e| panic!("{}: {e}", tag("build")))
        .with_fused_cpu(fused);
    let input = var(&case.inputs["input"], dtype);
    let h0 = case.inputs.get("h0").map(|t| var(t, dtype));
    let c0 = case.inputs.get("c0").map(|t| var(t, dtype));
    let state = h0.as_ref().map(|h| RnnState {
        h: h.as_tensor().clone(),
        c: c0.as_ref().map(|c| c.as_tensor().clone()),
    });
    let out = rnn.forward(&input, state.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", tag("fwd")));

    let check = |what: &str, t: &Tensor, expected: &RefTensor| {
        let (shape, v) = values(t);
        assert_close(&tag(what), &shape, &v, expected, f64_);
    };
    check("output", &out.output, &case.outputs["output"]);
    check("h_n", &out.state.h, &case.outputs["h_n"]);
    match (case.outputs.get("c_n"), &out.state.c) {
        (Some(expected), Some(c)) => check("c_n", c, expected),
        (None, None) => {}
        _ => panic!("{}", tag("c_n present on one side only")),
    }

    let upstream = var(&case.upstream, dtype);
    let loss = (&out.output * upstream.as_tensor()).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let mut inputs = vec![("input", &input)];
    inputs.extend(h0.as_ref().map(|h| ("h0", h)));
    inputs.extend(c0.as_ref().map(|c| ("c0", c)));
    assert_eq!(inputs.len(), case.grads.inputs.len(), "{}", tag("input gradients listed"));
    for (name, v) in inputs {
        let g = grads.get(v).unwrap_or_else(|| panic!("{}", tag(&format!("no grad for {name}"))));
        check(&format!("d{name}"), g, &case.grads.inputs[name]);
    }
    assert_eq!(params.len(), case.grads.params.len(), "{}", tag("parameter gradients listed"));
    for (name, v) in &params {
        let g = grads.get(v).unwrap_or_else(|| panic!("{}", tag(&format!("no grad for {name}"))));
        check(&format!("d{name}"), g, &case.grads.params[name]);
    }
}

fn check_file(class: &str, dtype: DType) {
    let file = load_layer_file(class);
    assert_eq!(file.module, format!("torch.nn.{class}"));
    assert!(!file.cases.is_empty(), "{class}: no cases");
    for case in &file.cases {
        // The LSTM and the GRU have a fused CPU kernel; check it and the generic path.
        check_case(class, case, dtype, true);
        if class == "LSTM" || class == "GRU" {
            check_case(class, case, dtype, false);
        }
    }
}

#[test]
fn lstm_float64() {
    check_file("LSTM", DType::F64);
}

#[test]
fn lstm_float32() {
    check_file("LSTM", DType::F32);
}

#[test]
fn gru_float64() {
    check_file("GRU", DType::F64);
}

#[test]
fn gru_float32() {
    check_file("GRU", DType::F32);
}

#[test]
fn rnn_float64() {
    check_file("RNN", DType::F64);
}

#[test]
fn rnn_float32() {
    check_file("RNN", DType::F32);
}
