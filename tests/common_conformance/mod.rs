//! Reading the conformance reference files (`tests/data/conformance`, README sections 0 and
//! A) and comparing numbers the way the README prescribes.

#![allow(dead_code)]

use candle_core::Device;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::path::PathBuf;

pub mod layers;

/// The data folder: `$DEEPRL_CONFORMANCE_DIR` when set, else `tests/data/conformance`.
pub fn data_dir() -> PathBuf {
    match std::env::var_os("DEEPRL_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance"),
    }
}

/// Where the layer conformance tests put their tensors: `$DEEPRL_TEST_DEVICE` (`cpu`, the
/// default, or `cuda` in a build with the `cuda` feature), so that the same cases check
/// candle's generic ops on a GPU. One device for the whole test binary: tensors made on two
/// separately created CUDA devices cannot meet in one op.
pub fn device() -> Device {
    deeprl::nets::device::test_device().unwrap_or_else(|e| panic!("{e}"))
}

/// Parses `<data_dir>/<relative>`, panicking with the path on any problem.
pub fn load<T: DeserializeOwned>(relative: &str) -> T {
    let path = data_dir().join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()))
}

/// The float32 spacing at `x`: `2^(floor(log2 |x|) - 23)` (the subnormal spacing near 0).
pub fn ulp32(x: f64) -> f64 {
    let x = (x as f32).abs();
    if x < f32::MIN_POSITIVE {
        return f64::from(f32::from_bits(1));
    }
    let exponent = ((x.to_bits() >> 23) & 0xff) as i32 - 127;
    2f64.powi(exponent - 23)
}

/// A discrete index or a continuous vector (README section 0, "Suggested serde types").
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Action {
    Discrete(i64),
    Continuous(Vec<f64>),
}

/// A `Box` or `Discrete` space as written in a spec file.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub enum SpaceJson {
    Box { shape: Vec<usize>, dtype: String, low: Vec<Option<f64>>, high: Vec<Option<f64>> },
    Discrete { n: usize, start: i64 },
}

/// One component of a reset distribution.
#[derive(Debug, Deserialize)]
#[serde(tag = "distribution", rename_all = "lowercase")]
pub enum ResetComponent {
    Uniform { name: String, low: f64, high: f64 },
    Constant { name: String, value: f64 },
}

#[derive(Debug, Deserialize)]
pub struct ResetDistribution {
    pub components: Vec<ResetComponent>,
}

#[derive(Debug, Deserialize)]
pub struct RegistrySpec {
    pub id: String,
    pub max_episode_steps: Option<usize>,
    pub reward_threshold: Option<f64>,
}

/// `<EnvId>.spec.json` (README A.1); the fields a test needs.
#[derive(Debug, Deserialize)]
pub struct ClassicSpec {
    pub format: String,
    pub env_id: String,
    pub registry_spec: RegistrySpec,
    pub observation_space: SpaceJson,
    pub action_space: SpaceJson,
    pub state_names: Vec<String>,
    pub reset_distribution: ResetDistribution,
    pub constants: serde_json::Map<String, serde_json::Value>,
    pub hardcoded_constants: serde_json::Map<String, serde_json::Value>,
}

/// What the independent float64 model measured for a case (README A.2).
#[derive(Debug, Deserialize)]
pub struct ModelCheck {
    pub rollout_max_abs_state_dev: f64,
    pub ulp_noise_rollout_max_abs_state_dev: f64,
}

/// One recorded episode (README A.2).
#[derive(Debug, Deserialize)]
pub struct ClassicCase {
    pub name: String,
    pub requested_max_steps: usize,
    pub n_steps: usize,
    pub ends_terminated: bool,
    pub initial_state: Vec<f64>,
    pub initial_obs: Vec<f64>,
    pub actions: Vec<Action>,
    pub obs: Vec<Vec<f64>>,
    pub rewards: Vec<f64>,
    pub terminated: Vec<bool>,
    pub states: Vec<Vec<f64>>,
    pub independent_f64_model_check: ModelCheck,
}

/// `<EnvId>.trajectories.json` (README A.2).
#[derive(Debug, Deserialize)]
pub struct ClassicTrajectories {
    pub format: String,
    pub env_id: String,
    pub action_kind: String,
    pub cases: Vec<ClassicCase>,
}

/// Asserts `|got - want| <= tol` element by element, naming `what` in the message.
#[track_caller]
pub fn assert_close(got: &[f64], want: &[f64], tol: impl Fn(f64) -> f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length {} vs {}", got.len(), want.len());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let t = tol(w);
        assert!(
            (g - w).abs() <= t,
            "{what}[{i}]: got {g:e}, expected {w:e} (|diff| {:e} > tol {t:e})\n got {got:?}\nwant {want:?}",
            (g - w).abs()
        );
    }
}

/// The largest `|got - want|`.
pub fn max_dev(got: &[f64], want: &[f64]) -> f64 {
    got.iter().zip(want).map(|(g, w)| (g - w).abs()).fold(0.0, f64::max)
}
