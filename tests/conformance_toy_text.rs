//! Conformance of the toy-text envs with Gymnasium 1.4's transition tables.
//!
//! Reads every `toy_text/*.json` file (format `toy_text_table`, see
//! `tests/data/conformance/README.md`, section B) under `$DEEPRL_CONFORMANCE_DIR`, or
//! `tests/data/conformance` when the variable is unset. Each file names an env id and the
//! keyword arguments given to `gymnasium.make`; the env is built from those (merged over
//! the registry spec's own kwargs, as `gymnasium.make` does) and checked against the file:
//!
//! * spaces and sizes, `P[s][a]` entry for entry (exact probabilities, next states,
//!   rewards, flags, same order) and the initial distribution `isd`, exactly;
//! * every listed registry spec: our registry has the id with the same `max_episode_steps`
//!   and `reward_threshold`, and an env made from it truncates at that limit; when the
//!   spec's own kwargs give the same env as the file's, the made env's table equals `P` too;
//! * sampling: stepping the env from every state and action reproduces the outcome
//!   frequencies of `P` (largest |z| below 5), never an outcome outside `P`, and `reset`
//!   reproduces `isd`.

use deeprl_envs::mdp::TransitionModel;
use deeprl_envs::toy_text::{CliffWalking, FrozenLake, FrozenLakeConfig, FrozenLakeMap, Taxi};
use deeprl_envs::{Env, Registry, Space};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(Debug, Deserialize)]
struct DiscreteSpace {
    #[serde(rename = "type")]
    kind: String,
    n: usize,
    start: i64,
}

#[derive(Debug, Deserialize)]
struct RegistrySpec {
    id: String,
    #[serde(default)]
    kwargs: Map<String, Value>,
    max_episode_steps: Option<usize>,
    reward_threshold: Option<f64>,
}

/// `P[s][a]` entry: (probability, next state, reward, terminated).
type Entry = (f64, usize, f64, bool);

#[derive(Debug, Deserialize)]
struct Table {
    format: String,
    env_id: String,
    make_kwargs: Map<String, Value>,
    registry_specs: Vec<RegistrySpec>,
    observation_space: DiscreteSpace,
    action_space: DiscreteSpace,
    n_states: usize,
    n_actions: usize,
    #[serde(rename = "P")]
    p: Vec<Vec<Vec<Entry>>>,
    isd: Vec<f64>,
    #[serde(default)]
    desc: Option<Vec<String>>,
}

/// The typed operations the checks need, over the three tabular envs.
trait Tabular {
    fn model(&self) -> &TransitionModel;
    fn spaces(&self) -> (Space, Space);
    fn start(&mut self, seed: Option<u64>) -> usize;
    fn put(&mut self, state: usize);
    fn act(&mut self, action: usize) -> (usize, f64, bool);
}

macro_rules! tabular {
    ($($t:ty),*) => {$(
        impl Tabular for $t {
            fn model(&self) -> &TransitionModel {
                self.transition_model().expect("tabular envs have a model")
            }
            fn spaces(&self) -> (Space, Space) {
                (self.observation_space(), self.action_space())
            }
            fn start(&mut self, seed: Option<u64>) -> usize {
                self.reset(seed)
            }
            fn put(&mut self, state: usize) {
                self.set_state(state).expect("state in range");
            }
            fn act(&mut self, action: usize) -> (usize, f64, bool) {
                let s = self.step(&action).expect("valid step");
                assert!(!s.truncated, "base envs never truncate");
                (s.obs, s.reward, s.terminated)
            }
        }
    )*};
}
tabular!(FrozenLake, Taxi, CliffWalking);

fn data_dir() -> PathBuf {
    match std::env::var_os("DEEPRL_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance"),
    }
}

fn flag(kwargs: &Map<String, Value>, key: &str, default: bool) -> bool {
    match kwargs.get(key) {
        None | Some(Value::Null) => default,
        Some(v) => v.as_bool().unwrap_or_else(|| panic!("kwarg {key} = {v} is not a bool")),
    }
}

fn number(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

/// Builds the env `gymnasium.make(env_id, **kwargs)` would build. `file_desc` is the map
/// stored in the file, used only for a FrozenLake drawn at random (`map_name=None`).
fn build(
    env_id: &str,
    kwargs: &Map<String, Value>,
    file_desc: Option<&Vec<String>>,
) -> Box<dyn Tabular> {
    let name = env_id.split("-v").next().unwrap_or(env_id);
    let known: &[&str] = match name {
        "FrozenLake" | "FrozenLake8x8" => {
            &["desc", "map_name", "is_slippery", "success_rate", "reward_schedule", "render_mode"]
        }
        "Taxi" => &["is_rainy", "fickle_passenger", "render_mode"],
        "CliffWalking" | "CliffWalkingSlippery" => &["is_slippery", "render_mode"],
        other => panic!("no toy-text env for id {env_id} ({other})"),
    };
    if let Some(k) = kwargs.keys().find(|k| !known.contains(&k.as_str())) {
        panic!("{env_id}: unsupported kwarg {k}");
    }
    match name {
        "FrozenLake" | "FrozenLake8x8" => {
            let strings = |v: &Value| -> Vec<String> {
                let rows = v.as_array().unwrap_or_else(|| panic!("desc {v} is not a list"));
                rows.iter()
                    .map(|r| r.as_str().expect("desc rows are strings").to_string())
                    .collect()
            };
            let map = match (kwargs.get("desc"), kwargs.get("map_name")) {
                (Some(d), _) if !d.is_null() => FrozenLakeMap::Custom(strings(d)),
                (_, Some(Value::Null)) => FrozenLakeMap::Custom(
                    file_desc.expect("random maps need the file's desc").clone(),
                ),
                (_, Some(m)) => {
                    FrozenLakeMap::Named(m.as_str().expect("map_name is a string").to_string())
                }
                (_, None) => FrozenLakeMap::Named("4x4".into()),
            };
            let mut config =
                FrozenLakeConfig::with_map(map).slippery(flag(kwargs, "is_slippery", true));
            if let Some(v) = kwargs.get("success_rate").filter(|v| !v.is_null()) {
                config.success_rate = number(v);
            }
            if let Some(v) = kwargs.get("reward_schedule").filter(|v| !v.is_null()) {
                let r: Vec<f64> =
                    v.as_array().expect("reward_schedule is a list").iter().map(number).collect();
                assert_eq!(r.len(), 3, "reward_schedule {v}");
                config.reward_schedule = (r[0], r[1], r[2]);
            }
            Box::new(FrozenLake::new(config).expect("valid FrozenLake"))
        }
        "Taxi" => {
            assert!(
                !flag(kwargs, "is_rainy", false) && !flag(kwargs, "fickle_passenger", false),
                "{env_id}: only the classic rules are implemented: {kwargs:?}"
            );
            Box::new(Taxi::new())
        }
        _ => Box::new(CliffWalking::new(flag(kwargs, "is_slippery", false))),
    }
}

/// Differences between a model and a table, described (at most `limit` of them).
fn table_differences(model: &TransitionModel, p: &[Vec<Vec<Entry>>], limit: usize) -> Vec<String> {
    let (n_s, n_a) = (model.n_states(), model.n_actions());
    if n_s != p.len() || p.iter().any(|row| row.len() != n_a) {
        return vec![format!(
            "ours has {n_s} states x {n_a} actions, Gymnasium {} states",
            p.len()
        )];
    }
    let mut out = Vec::new();
    for (s, row) in p.iter().enumerate() {
        for (a, want) in row.iter().enumerate() {
            let got: Vec<Entry> = model
                .transitions(s, a)
                .iter()
                .map(|t| (t.probability, t.next_state, t.reward, t.terminated))
                .collect();
            let same = got.len() == want.len()
                && got.iter().zip(want).all(|(g, w)| {
                    g.0.to_bits() == w.0.to_bits() && g.1 == w.1 && g.2 == w.2 && g.3 == w.3
                });
            if !same && out.len() < limit {
                out.push(format!("P[{s}][{a}]: ours {got:?}, Gymnasium {want:?}"));
            }
        }
    }
    out
}

/// Outcome of a step, merged over equal entries: (next state, reward bits, terminated).
type Outcome = (usize, u64, bool);

/// Largest |z| of the observed frequencies against the expected probabilities.
fn max_z(expected: &HashMap<Outcome, f64>, seen: &HashMap<Outcome, usize>, n: usize) -> f64 {
    expected
        .iter()
        .map(|(k, &p)| {
            let f = *seen.get(k).unwrap_or(&0) as f64 / n as f64;
            (f - p).abs() / (p * (1.0 - p) / n as f64).sqrt().max(1e-12)
        })
        .fold(0.0, f64::max)
}

/// Samples every `(s, a)` (`samples` times when `P[s][a]` is stochastic, once otherwise)
/// and the reset distribution; returns the largest |z| seen.
fn check_sampling(env: &mut dyn Tabular, table: &Table, seed: u64, samples: usize) -> f64 {
    env.start(Some(seed));
    let mut worst = 0.0f64;
    for (s, row) in table.p.iter().enumerate() {
        for (a, entries) in row.iter().enumerate() {
            let mut expected: HashMap<Outcome, f64> = HashMap::new();
            for &(p, s2, r, t) in entries {
                *expected.entry((s2, r.to_bits(), t)).or_default() += p;
            }
            let n = if expected.len() > 1 { samples } else { 1 };
            let mut seen: HashMap<Outcome, usize> = HashMap::new();
            for _ in 0..n {
                env.put(s);
                let (s2, r, t) = env.act(a);
                let k = (s2, r.to_bits(), t);
                assert!(
                    expected.contains_key(&k),
                    "{}: step from {s} with {a} gave {s2}, {r}, {t}, not in P",
                    table.env_id
                );
                *seen.entry(k).or_default() += 1;
            }
            worst = worst.max(max_z(&expected, &seen, n));
        }
    }
    let resets = 200 * table.isd.iter().filter(|&&p| p > 0.0).count().max(samples / 200);
    let mut starts: HashMap<Outcome, usize> = HashMap::new();
    for _ in 0..resets {
        let s = env.start(None);
        assert!(table.isd[s] > 0.0, "{}: reset gave state {s} with isd 0", table.env_id);
        *starts.entry((s, 0, false)).or_default() += 1;
    }
    let expected: HashMap<Outcome, f64> = table
        .isd
        .iter()
        .enumerate()
        .filter(|(_, &p)| p > 0.0)
        .map(|(s, &p)| ((s, 0, false), p))
        .collect();
    worst.max(max_z(&expected, &starts, resets))
}

#[test]
fn toy_text_tables_match_gymnasium() {
    let dir = data_dir().join("toy_text");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no toy_text/*.json in {}", dir.display());
    let registry = Registry::with_builtins();
    for (i, path) in files.iter().enumerate() {
        let text = std::fs::read_to_string(path).expect("readable file");
        let table: Table =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let id = &table.env_id;
        assert_eq!(table.format, "toy_text_table", "{}", path.display());
        // gymnasium.make merges the call's kwargs over the registered ones.
        let own_spec = table.registry_specs.iter().find(|s| s.id == *id);
        let mut kwargs = own_spec.map(|s| s.kwargs.clone()).unwrap_or_default();
        kwargs.extend(table.make_kwargs.clone());
        let mut env = build(id, &kwargs, table.desc.as_ref());

        for (space, n, ours) in [
            (&table.observation_space, table.n_states, env.spaces().0),
            (&table.action_space, table.n_actions, env.spaces().1),
        ] {
            assert_eq!((space.kind.as_str(), space.start, space.n), ("Discrete", 0, n), "{id}");
            assert_eq!(ours, Space::discrete(n), "{id}");
        }
        let model = env.model();
        assert_eq!(
            (model.n_states(), model.n_actions()),
            (table.n_states, table.n_actions),
            "{id}"
        );
        assert_eq!(table.p.len(), table.n_states, "{id}");
        assert!(table.p.iter().all(|row| row.len() == table.n_actions), "{id}");
        let diffs = table_differences(model, &table.p, 5);
        assert!(diffs.is_empty(), "{}: P differs:\n{}", path.display(), diffs.join("\n"));
        let isd_same = model
            .initial_distribution()
            .iter()
            .zip(&table.isd)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(isd_same && table.isd.len() == table.n_states, "{id}: isd differs");

        let mut registered_tables = 0;
        for spec in &table.registry_specs {
            let ours =
                registry.spec(&spec.id).unwrap_or_else(|| panic!("{} is not registered", spec.id));
            assert_eq!(
                ours.max_episode_steps, spec.max_episode_steps,
                "{} max_episode_steps",
                spec.id
            );
            assert_eq!(
                ours.reward_threshold, spec.reward_threshold,
                "{} reward_threshold",
                spec.id
            );
            let made = registry.make(&spec.id).expect("registered id");
            assert_eq!(made.max_episode_steps(), spec.max_episode_steps, "{} made env", spec.id);
            // When the spec's own kwargs build the same table, the registered env must have it.
            let from_spec = build(&spec.id, &spec.kwargs, table.desc.as_ref());
            if table_differences(from_spec.model(), &table.p, 1).is_empty() {
                let made_model = made.transition_model().expect("tabular env");
                let diffs = table_differences(made_model, &table.p, 5);
                assert!(diffs.is_empty(), "registered {} differs:\n{}", spec.id, diffs.join("\n"));
                registered_tables += 1;
            }
        }

        let z = check_sampling(env.as_mut(), &table, 1000 + i as u64, 4000);
        eprintln!(
            "{}: {} states x {} actions equal, {registered_tables} registered env(s) with this table; sampling max |z| = {z:.2}",
            path.display(),
            table.n_states,
            table.n_actions
        );
        assert!(z < 5.0, "{id}: sampled frequencies differ from P (max |z| = {z})");
    }
}
