//! Conformance of the classic-control envs with Gymnasium 1.4.0, against the recorded
//! trajectories and specs of `tests/data/conformance/classic_control` (README section A).
//!
//! For every env: single steps from each recorded state, open-loop rollouts from each
//! case's initial state, and the spec (spaces, registry entry, constants, reset
//! distribution). The files are read generically: every case of every file is checked, with
//! the README's tolerances (A.4). Set `DEEPRL_CONFORMANCE_DIR` to check another data set of
//! the same format.

mod common_conformance;

use common_conformance::{
    assert_close, load, max_dev, ulp32, Action, ClassicCase, ClassicSpec, ClassicTrajectories,
    ResetComponent, SpaceJson,
};
use deeprl_envs::classic_control::{
    Acrobot, CartPole, MountainCar, MountainCarContinuous, Pendulum,
};
use deeprl_envs::{Env, Registry, Space};

/// What the generic checks need to know about one env.
trait Subject: Env + Sized {
    const ID: &'static str;
    /// Single-step tolerances on the state and the reward (README A.4.1).
    const TOL_STATE: f64;
    const TOL_REWARD: f64;
    /// Rollout tolerance rule (README A.4.2): the float32-state/chaotic rule
    /// `max(1e-6, 10 * max(rollout dev, ulp-noise dev))` instead of
    /// `max(1e-9, 100 * ulp-noise dev)`.
    const LOOSE_ROLLOUT: bool;
    /// Rollout reward tolerance as a multiple of the state tolerance.
    const ROLLOUT_REWARD_FACTOR: f64 = 1.0;
    /// Gymnasium stores the reset state as float32 (the bounds are then float32-rounded).
    const RESET_IS_F32: bool = false;

    fn create() -> Self;
    /// Sets a recorded state; `stepped` says it was recorded after a step (container dtype).
    fn put(&mut self, state: &[f64], stepped: bool) -> deeprl_envs::Result<()>;
    fn get(&self) -> Vec<f64>;
    fn current_obs(&self) -> Vec<f64>;
    fn obs_vec(obs: &Self::Obs) -> Vec<f64>;
    fn action(action: &Action, at: &str) -> Self::Action;
    /// Constants under their Gymnasium names (`constants` or `hardcoded_constants`).
    fn constants() -> Vec<(&'static str, f64)>;
}

fn array<const N: usize>(v: &[f64]) -> [f64; N] {
    v.try_into().unwrap_or_else(|_| panic!("expected {N} values, got {v:?}"))
}

fn discrete(action: &Action, at: &str) -> usize {
    match action {
        Action::Discrete(i) => usize::try_from(*i).unwrap_or_else(|_| panic!("{at}: action {i}")),
        Action::Continuous(v) => panic!("{at}: expected a discrete action, got {v:?}"),
    }
}

fn continuous(action: &Action, at: &str) -> [f32; 1] {
    match action {
        Action::Continuous(v) if v.len() == 1 => {
            assert_eq!(f64::from(v[0] as f32), v[0], "{at}: action is not a float32 value");
            [v[0] as f32]
        }
        other => panic!("{at}: expected a continuous action of length 1, got {other:?}"),
    }
}

fn widen<const N: usize>(obs: &[f32; N]) -> Vec<f64> {
    obs.iter().map(|&v| f64::from(v)).collect()
}

macro_rules! plain_subject {
    ($ty:ty, $n:literal, $act:ident) => {
        fn create() -> Self {
            <$ty>::new()
        }
        fn put(&mut self, state: &[f64], _stepped: bool) -> deeprl_envs::Result<()> {
            self.set_state(array::<$n>(state))
        }
        fn get(&self) -> Vec<f64> {
            self.state().to_vec()
        }
        fn current_obs(&self) -> Vec<f64> {
            widen(&self.observation())
        }
        fn obs_vec(obs: &Self::Obs) -> Vec<f64> {
            widen(obs)
        }
        fn action(action: &Action, at: &str) -> Self::Action {
            $act(action, at)
        }
    };
}

impl Subject for CartPole {
    const ID: &'static str = "CartPole-v1";
    const TOL_STATE: f64 = 1e-12;
    const TOL_REWARD: f64 = 0.0;
    const LOOSE_ROLLOUT: bool = false;
    plain_subject!(CartPole, 4, discrete);
    fn constants() -> Vec<(&'static str, f64)> {
        vec![
            ("gravity", Self::GRAVITY),
            ("masscart", Self::MASS_CART),
            ("masspole", Self::MASS_POLE),
            ("total_mass", Self::TOTAL_MASS),
            ("length", Self::LENGTH),
            ("polemass_length", Self::POLE_MASS_LENGTH),
            ("force_mag", Self::FORCE_MAG),
            ("tau", Self::TAU),
            ("theta_threshold_radians", Self::THETA_THRESHOLD_RADIANS),
            ("x_threshold", Self::X_THRESHOLD),
        ]
    }
}

impl Subject for MountainCar {
    const ID: &'static str = "MountainCar-v0";
    const TOL_STATE: f64 = 1e-12;
    const TOL_REWARD: f64 = 0.0;
    const LOOSE_ROLLOUT: bool = false;
    plain_subject!(MountainCar, 2, discrete);
    fn constants() -> Vec<(&'static str, f64)> {
        vec![
            ("min_position", Self::MIN_POSITION),
            ("max_position", Self::MAX_POSITION),
            ("max_speed", Self::MAX_SPEED),
            ("goal_position", Self::GOAL_POSITION),
            ("goal_velocity", Self::GOAL_VELOCITY),
            ("force", Self::FORCE),
            ("gravity", Self::GRAVITY),
        ]
    }
}

impl Subject for MountainCarContinuous {
    const ID: &'static str = "MountainCarContinuous-v0";
    /// Zero: the numpy-2 float32 promotion is replayed, so single steps are bit-exact.
    const TOL_STATE: f64 = 0.0;
    const TOL_REWARD: f64 = 1e-12;
    const LOOSE_ROLLOUT: bool = true;
    fn create() -> Self {
        Self::new()
    }
    fn put(&mut self, state: &[f64], stepped: bool) -> deeprl_envs::Result<()> {
        if stepped {
            // Gymnasium holds a stepped state as a float32 array.
            let narrow = array::<2>(state).map(|v| v as f32);
            assert_eq!(narrow.map(f64::from).to_vec(), state, "stepped state is not float32");
            self.set_state_f32(narrow)
        } else {
            self.set_state(array::<2>(state))
        }
    }
    fn get(&self) -> Vec<f64> {
        self.state().to_vec()
    }
    fn current_obs(&self) -> Vec<f64> {
        widen(&self.observation())
    }
    fn obs_vec(obs: &Self::Obs) -> Vec<f64> {
        widen(obs)
    }
    fn action(action: &Action, at: &str) -> Self::Action {
        continuous(action, at)
    }
    fn constants() -> Vec<(&'static str, f64)> {
        vec![
            ("min_action", Self::MIN_ACTION),
            ("max_action", Self::MAX_ACTION),
            ("min_position", Self::MIN_POSITION),
            ("max_position", Self::MAX_POSITION),
            ("max_speed", Self::MAX_SPEED),
            ("goal_position", Self::GOAL_POSITION),
            ("goal_velocity", Self::GOAL_VELOCITY),
            ("power", Self::POWER),
            ("hill_coefficient", Self::HILL),
        ]
    }
}

impl Subject for Acrobot {
    const ID: &'static str = "Acrobot-v1";
    const TOL_STATE: f64 = 1e-12;
    const TOL_REWARD: f64 = 0.0;
    const LOOSE_ROLLOUT: bool = false;
    const RESET_IS_F32: bool = true;
    plain_subject!(Acrobot, 4, discrete);
    fn constants() -> Vec<(&'static str, f64)> {
        vec![
            ("dt", Self::DT),
            ("LINK_LENGTH_1", Self::LINK_LENGTH_1),
            ("LINK_LENGTH_2", Self::LINK_LENGTH_2),
            ("LINK_MASS_1", Self::LINK_MASS_1),
            ("LINK_MASS_2", Self::LINK_MASS_2),
            ("LINK_COM_POS_1", Self::LINK_COM_POS_1),
            ("LINK_COM_POS_2", Self::LINK_COM_POS_2),
            ("LINK_MOI", Self::LINK_MOI),
            ("MAX_VEL_1", Self::MAX_VEL_1),
            ("MAX_VEL_2", Self::MAX_VEL_2),
            ("g", Self::GRAVITY),
        ]
    }
}

impl Subject for Pendulum {
    const ID: &'static str = "Pendulum-v1";
    const TOL_STATE: f64 = 1e-7;
    const TOL_REWARD: f64 = 1e-8;
    const LOOSE_ROLLOUT: bool = true;
    const ROLLOUT_REWARD_FACTOR: f64 = 10.0;
    plain_subject!(Pendulum, 2, continuous);
    fn constants() -> Vec<(&'static str, f64)> {
        vec![
            ("max_speed", Self::MAX_SPEED),
            ("max_torque", Self::MAX_TORQUE),
            ("dt", Self::DT),
            ("g", Self::new().gravity()),
            ("m", Self::M),
            ("l", Self::L),
        ]
    }
}

fn trajectories<E: Subject>() -> ClassicTrajectories {
    let data: ClassicTrajectories = load(&format!("classic_control/{}.trajectories.json", E::ID));
    assert_eq!(data.format, "classic_control_trajectories");
    assert_eq!(data.env_id, E::ID);
    assert!(!data.cases.is_empty(), "{}: no cases", E::ID);
    for case in &data.cases {
        let n = case.n_steps;
        let lens = [case.actions.len(), case.obs.len(), case.rewards.len()];
        assert_eq!(lens, [n; 3], "{}: lengths", case.name);
        assert_eq!([case.terminated.len(), case.states.len()], [n; 2], "{}: lengths", case.name);
        assert!(n >= 1 && n <= case.requested_max_steps, "{}: n_steps {n}", case.name);
    }
    data
}

fn obs_tol(tol: f64) -> impl Fn(f64) -> f64 {
    move |w| tol + ulp32(w)
}

/// README A.4.1: every step from the recorded previous state.
fn single_steps<E: Subject>() {
    let data = trajectories::<E>();
    let (mut worst_state, mut worst_obs, mut worst_reward) = (0.0f64, 0.0f64, 0.0f64);
    let mut worst_initial_obs = 0.0f64;
    for case in &data.cases {
        let mut env = E::create();
        env.put(&case.initial_state, false).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let what = format!("{} initial_obs", case.name);
        let initial_obs = env.current_obs();
        assert_close(&initial_obs, &case.initial_obs, obs_tol(E::TOL_STATE), &what);
        worst_initial_obs = worst_initial_obs.max(max_dev(&initial_obs, &case.initial_obs));
        for t in 0..case.n_steps {
            let at = format!("{} step {t} (single step)", case.name);
            let (prev, stepped) =
                if t == 0 { (&case.initial_state, false) } else { (&case.states[t - 1], true) };
            env.put(prev, stepped).unwrap_or_else(|e| panic!("{at}: set_state: {e}"));
            let step = env
                .step(&E::action(&case.actions[t], &at))
                .unwrap_or_else(|e| panic!("{at}: step failed: {e}"));
            let state = env.get();
            assert_close(&state, &case.states[t], |_| E::TOL_STATE, &format!("{at}: state"));
            let obs = E::obs_vec(&step.obs);
            assert_close(&obs, &case.obs[t], obs_tol(E::TOL_STATE), &format!("{at}: obs"));
            let reward = [step.reward];
            assert_close(&reward, &[case.rewards[t]], |_| E::TOL_REWARD, &format!("{at}: reward"));
            assert_eq!(step.terminated, case.terminated[t], "{at}: terminated");
            assert!(!step.truncated, "{at}: a base env never truncates");
            worst_state = worst_state.max(max_dev(&state, &case.states[t]));
            worst_reward = worst_reward.max((step.reward - case.rewards[t]).abs());
            worst_obs = worst_obs.max(max_dev(&obs, &case.obs[t]));
        }
    }
    println!(
        "{} single steps: max |dev| state {worst_state:e}, obs {worst_obs:e}, reward \
         {worst_reward:e}, initial obs {worst_initial_obs:e}",
        E::ID
    );
}

fn rollout_tolerance<E: Subject>(case: &ClassicCase) -> f64 {
    let check = &case.independent_f64_model_check;
    if E::LOOSE_ROLLOUT {
        let dev = check.rollout_max_abs_state_dev.max(check.ulp_noise_rollout_max_abs_state_dev);
        (10.0 * dev).max(1e-6)
    } else {
        (100.0 * check.ulp_noise_rollout_max_abs_state_dev).max(1e-9)
    }
}

/// README A.4.2: open loop from the initial state; `terminated` and `n_steps` exact.
fn rollouts<E: Subject>() {
    let data = trajectories::<E>();
    let mut worst = 0.0f64;
    for case in &data.cases {
        let tol = rollout_tolerance::<E>(case);
        let mut env = E::create();
        env.put(&case.initial_state, false).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        for t in 0..case.n_steps {
            let at = format!("{} step {t} (rollout, tol {tol:e})", case.name);
            let step = env
                .step(&E::action(&case.actions[t], &at))
                .unwrap_or_else(|e| panic!("{at}: step failed: {e}"));
            let state = env.get();
            assert_close(&state, &case.states[t], |_| tol, &format!("{at}: state"));
            let obs = E::obs_vec(&step.obs);
            assert_close(&obs, &case.obs[t], obs_tol(tol), &format!("{at}: obs"));
            let reward_tol = tol * E::ROLLOUT_REWARD_FACTOR;
            let reward = [step.reward];
            assert_close(&reward, &[case.rewards[t]], |_| reward_tol, &format!("{at}: reward"));
            assert_eq!(step.terminated, case.terminated[t], "{at}: terminated");
            assert!(!step.truncated, "{at}: a base env never truncates");
            worst = worst.max(max_dev(&state, &case.states[t]));
        }
        assert_eq!(case.terminated[case.n_steps - 1], case.ends_terminated, "{}", case.name);
        if case.ends_terminated {
            let at = format!("{} after termination", case.name);
            assert!(env.step(&E::action(&case.actions[0], &at)).is_err(), "{at}: step accepted");
        } else {
            assert_eq!(case.n_steps, case.requested_max_steps, "{}: n_steps", case.name);
        }
    }
    println!("{} rollouts: max |state dev| {worst:e}", E::ID);
}

fn check_space(ours: &Space, theirs: &SpaceJson, what: &str) {
    match (ours, theirs) {
        (Space::Discrete { n }, SpaceJson::Discrete { n: want, start }) => {
            assert_eq!((*n, *start), (*want, 0), "{what}: Discrete n / start");
        }
        (Space::Box(b), SpaceJson::Box { shape, dtype, low, high }) => {
            assert_eq!(dtype, "float32", "{what}: dtype");
            assert_eq!(&b.shape, shape, "{what}: shape");
            for (side, got, want, inf) in
                [("low", &b.low, low, f32::NEG_INFINITY), ("high", &b.high, high, f32::INFINITY)]
            {
                assert_eq!(got.len(), want.len(), "{what}: {side} length");
                for (i, (&g, w)) in got.iter().zip(want).enumerate() {
                    let expected = match w {
                        Some(v) => {
                            assert_eq!(f64::from(*v as f32), *v, "{what}: {side}[{i}] not f32");
                            *v as f32
                        }
                        None => inf,
                    };
                    assert_eq!(g.to_bits(), expected.to_bits(), "{what}: {side}[{i}] {g} vs {w:?}");
                }
            }
        }
        _ => panic!("{what}: {ours} does not match {theirs:?}"),
    }
}

fn constant(spec: &ClassicSpec, name: &str) -> f64 {
    let value = spec
        .constants
        .get(name)
        .or_else(|| spec.hardcoded_constants.get(name).and_then(|c| c.get("value")));
    value
        .and_then(serde_json::Value::as_f64)
        .unwrap_or_else(|| panic!("{}: no numeric constant {name} in the spec", spec.env_id))
}

/// README A.4.3: spaces, registry entry, constants, reset distribution.
fn spec<E: Subject>() {
    let spec: ClassicSpec = load(&format!("classic_control/{}.spec.json", E::ID));
    assert_eq!(spec.format, "classic_control_spec");
    assert_eq!(spec.env_id, E::ID);
    let mut env = E::create();
    check_space(&env.observation_space(), &spec.observation_space, "observation_space");
    check_space(&env.action_space(), &spec.action_space, "action_space");

    let registry = Registry::with_builtins();
    let entry = registry.spec(E::ID).unwrap_or_else(|| panic!("{} is not registered", E::ID));
    assert_eq!(spec.registry_spec.id, E::ID);
    assert_eq!(entry.max_episode_steps, spec.registry_spec.max_episode_steps, "time limit");
    assert_eq!(entry.reward_threshold, spec.registry_spec.reward_threshold, "reward threshold");
    let made = registry.make(E::ID).unwrap_or_else(|e| panic!("make({}): {e}", E::ID));
    assert_eq!(made.max_episode_steps(), spec.registry_spec.max_episode_steps);
    assert_eq!(made.observation_space(), env.observation_space());
    assert_eq!(made.action_space(), env.action_space());

    for (name, value) in E::constants() {
        assert_eq!(value, constant(&spec, name), "{}: constant {name}", E::ID);
    }

    let components = &spec.reset_distribution.components;
    assert_eq!(components.len(), spec.state_names.len(), "reset components");
    let n = 2000;
    let mut min = vec![f64::INFINITY; components.len()];
    let mut max = vec![f64::NEG_INFINITY; components.len()];
    let round = |v: f64| if E::RESET_IS_F32 { f64::from(v as f32) } else { v };
    for seed in 0..n {
        let obs = env.reset(Some(seed));
        let state = env.get();
        assert_eq!(state.len(), components.len(), "state length");
        assert!(env.observation_space().contains_values(&obs_f32(&E::obs_vec(&obs))));
        assert_eq!(E::obs_vec(&obs), env.current_obs(), "seed {seed}: reset obs");
        for (i, (c, &x)) in components.iter().zip(&state).enumerate() {
            match c {
                ResetComponent::Uniform { name, low, high } => {
                    let ok = round(*low) <= x && x <= round(*high);
                    assert!(ok, "seed {seed}: {name} = {x} outside [{low}, {high})");
                }
                ResetComponent::Constant { name, value } => {
                    assert_eq!(x, *value, "seed {seed}: {name} should be constant");
                }
            }
            min[i] = min[i].min(x);
            max[i] = max[i].max(x);
        }
    }
    for (i, c) in components.iter().enumerate() {
        if let ResetComponent::Uniform { name, low, high } = c {
            let margin = 0.01 * (high - low);
            assert!(
                min[i] < low + margin,
                "{name}: {n} resets never came near {low} (min {})",
                min[i]
            );
            assert!(
                max[i] > high - margin,
                "{name}: {n} resets never came near {high} (max {})",
                max[i]
            );
        }
    }
    let first = env.reset(Some(12345));
    let state = env.get();
    env.reset(None);
    assert_ne!(env.get(), state, "reset(None) continues the stream");
    assert_eq!(E::obs_vec(&env.reset(Some(12345))), E::obs_vec(&first), "same seed, same reset");
    assert_eq!(env.get(), state);
}

fn obs_f32(obs: &[f64]) -> Vec<f32> {
    obs.iter().map(|&v| v as f32).collect()
}

macro_rules! conformance {
    ($module:ident, $ty:ty) => {
        mod $module {
            use super::*;

            #[test]
            fn single_steps() {
                super::single_steps::<$ty>();
            }

            #[test]
            fn rollouts() {
                super::rollouts::<$ty>();
            }

            #[test]
            fn spec() {
                super::spec::<$ty>();
            }
        }
    };
}

conformance!(cartpole, CartPole);
conformance!(mountain_car, MountainCar);
conformance!(mountain_car_continuous, MountainCarContinuous);
conformance!(acrobot, Acrobot);
conformance!(pendulum, Pendulum);
