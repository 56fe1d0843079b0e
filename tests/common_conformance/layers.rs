//! The layer reference files (`layers/`, README section F): forward outputs and gradients of
//! `torch.nn` layers, and the README's comparison rule.

#![allow(dead_code)]

use serde::Deserialize;
use std::collections::BTreeMap;

/// A tensor as the files write it: shape and row-major data.
#[derive(Debug, Clone, Deserialize)]
pub struct RefTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

/// `{format, module, cases}` of one `layers/<Class>.json` file.
#[derive(Debug, Deserialize)]
pub struct LayerFile {
    pub format: String,
    pub module: String,
    pub cases: Vec<LayerCase>,
}

/// The gradients of `L = sum(output * upstream)`.
#[derive(Debug, Deserialize)]
pub struct LayerGrads {
    pub inputs: BTreeMap<String, RefTensor>,
    pub params: BTreeMap<String, RefTensor>,
}

/// One case: a module with its constructor arguments, parameters, inputs, outputs and
/// gradients.
#[derive(Debug, Deserialize)]
pub struct LayerCase {
    pub name: String,
    pub module: String,
    pub constructor_kwargs: serde_json::Map<String, serde_json::Value>,
    pub call: String,
    pub compute_dtype: String,
    pub params: BTreeMap<String, RefTensor>,
    pub inputs: BTreeMap<String, RefTensor>,
    pub outputs: BTreeMap<String, RefTensor>,
    pub loss: String,
    pub upstream: RefTensor,
    pub grads: LayerGrads,
}

/// Loads `layers/<class>.json` from the conformance folder.
pub fn load_layer_file(class: &str) -> LayerFile {
    let file: LayerFile = super::load(&format!("layers/{class}.json"));
    assert_eq!(file.format, "torch_layer_forward_backward", "layers/{class}.json");
    file
}

/// The README's tolerance: `1e-10 + 1e-10 |b|` for float64, `1e-4 + 1e-4 |b|` for float32.
pub fn layer_tolerance(float64: bool, expected: f64) -> f64 {
    let t = if float64 { 1e-10 } else { 1e-4 };
    t + t * expected.abs()
}

/// Checks `actual` (shape and values) against `expected`; the message names `what`.
pub fn assert_close(
    what: &str,
    actual_shape: &[usize],
    actual: &[f64],
    expected: &RefTensor,
    float64: bool,
) {
    assert_eq!(actual_shape, expected.shape.as_slice(), "{what}: shape");
    assert_eq!(actual.len(), expected.data.len(), "{what}: length");
    for (i, (&a, &b)) in actual.iter().zip(&expected.data).enumerate() {
        let tol = layer_tolerance(float64, b);
        let diff = (a - b).abs();
        if diff.is_nan() || diff > tol {
            panic!("{what}[{i}]: {a} vs torch {b} (|diff| {diff} > tol {tol})");
        }
    }
}
