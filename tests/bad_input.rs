//! Bad user input is an error that names the problem, never a panic, and leaves the env as
//! it was.

use deeprl::envs::classic_control::{CartPole, Pendulum};
use deeprl::envs::mdp::FiniteMdp;
use deeprl::envs::toy_text::{FrozenLake, FrozenLakeConfig, FrozenLakeMap};
use deeprl::envs::{make, ActionRef, DynEnv, Env, EnvError};

fn frozen_lake(rows: &[&str]) -> Result<FrozenLake, EnvError> {
    let map = FrozenLakeMap::Custom(rows.iter().map(|r| r.to_string()).collect());
    FrozenLake::new(FrozenLakeConfig::with_map(map))
}

#[test]
fn out_of_range_and_malformed_actions_are_rejected_and_change_nothing() {
    let mut env = CartPole::new();
    env.reset(Some(0));
    let before = env.state();
    let err = env.step(&7).unwrap_err();
    assert!(err.to_string().contains("invalid action 7"), "{err}");
    assert_eq!(env.state(), before);

    let mut pendulum = Pendulum::new();
    pendulum.reset(Some(0));
    let before = pendulum.state();
    let err = pendulum.step(&[f32::NAN]).unwrap_err();
    assert!(err.to_string().contains("NaN"), "{err}");
    assert_eq!(pendulum.state(), before);

    let mut boxed = make("Pendulum-v1").unwrap();
    let mut obs = [0.0; 3];
    boxed.reset_into(Some(0), &mut obs).unwrap();
    let err = boxed.step_into(ActionRef::Continuous(&[0.1, 0.2]), &mut obs).unwrap_err();
    assert!(err.to_string().contains("length 2") && err.to_string().contains("length 1"), "{err}");
    let err = boxed.step_into(ActionRef::Discrete(1), &mut obs).unwrap_err();
    assert!(matches!(err, EnvError::InvalidAction { .. }), "{err}");
    let err = boxed.step_into(ActionRef::Continuous(&[0.1]), &mut [0.0; 2]).unwrap_err();
    assert_eq!(err, EnvError::BufferLength { got: 2, expected: 3 });
    // None of the rejected calls used up a step of the time limit or changed the state.
    let mut fresh = make("Pendulum-v1").unwrap();
    let mut fresh_obs = [0.0; 3];
    fresh.reset_into(Some(0), &mut fresh_obs).unwrap();
    let a = boxed.step_into(ActionRef::Continuous(&[0.1]), &mut obs).unwrap();
    let b = fresh.step_into(ActionRef::Continuous(&[0.1]), &mut fresh_obs).unwrap();
    assert_eq!((a, obs), (b, fresh_obs));
}

#[test]
fn steps_out_of_order_are_rejected() {
    let mut env = CartPole::new();
    assert_eq!(env.step(&0).unwrap_err(), EnvError::StepBeforeReset);
    env.reset(Some(0));
    let mut step = env.step(&1).unwrap();
    while !step.terminated {
        step = env.step(&1).unwrap();
    }
    let err = env.step(&1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "step called after the episode was terminated: call reset before stepping again"
    );
    env.reset(None);
    assert!(env.step(&1).is_ok());
}

#[test]
fn invalid_maps_name_the_problem() {
    let cases: [(&[&str], &str); 6] = [
        (&["FFF", "FHF", "FFG"], "start"),
        (&["SFF", "FHF", "FFF"], "goal"),
        (&["SFF", "FH", "FFG"], "row"),
        (&["SFF", "FXF", "FFG"], "X"),
        (&["SFS", "FHF", "FFG"], "start"),
        (&[], "empty"),
    ];
    for (rows, word) in cases {
        let err = frozen_lake(rows).err().unwrap_or_else(|| panic!("{rows:?} was accepted"));
        assert!(matches!(err, EnvError::InvalidMap(_)), "{rows:?}: {err}");
        assert!(err.to_string().to_lowercase().contains(&word.to_lowercase()), "{rows:?}: {err}");
    }
    assert!(frozen_lake(&["SFF", "FHF", "FFG"]).is_ok());
}

#[test]
fn invalid_mdp_files_name_the_problem() {
    let dir = std::env::temp_dir().join(format!("deeprl-bad-mdp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        ("sum.toml", "transition_probabilities = [[[0.5, 0.4]], [[1.0, 0.0]]]\nrewards = [[[0.0, 0.0]], [[0.0, 0.0]]]\n", "sum to 0.9"),
        ("negative.json", r#"{"transition_probabilities": [[[1.2, -0.2]], [[1.0, 0.0]]], "rewards": [[[0, 0]], [[0, 0]]]}"#, "outside [0, 1]"),
        ("shape.json", r#"{"transition_probabilities": [[[1.0]], [[1.0, 0.0]]], "rewards": [[[0]], [[0, 0]]]}"#, "one entry per next state"),
        ("ragged.toml", "transition_probabilities = [[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0]]]\nrewards = [[[0.0, 0.0], [0.0, 0.0]], [[0.0, 0.0]]]\n", "1 actions"),
        ("syntax.toml", "transition_probabilities = [[[1.0", "TOML"),
        ("unknown.yaml", "a: 1", "extension"),
    ];
    for (name, text, expected) in cases {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let err =
            FiniteMdp::from_file(&path).err().unwrap_or_else(|| panic!("{name} was accepted"));
        assert!(err.to_string().contains(expected), "{name}: {err}");
    }
    let missing = FiniteMdp::from_file(dir.join("missing.toml")).err().unwrap();
    assert!(missing.to_string().contains("missing.toml"), "{missing}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn unknown_env_id_is_an_error() {
    let err = make("NoSuchEnv-v9").err().unwrap();
    assert!(matches!(err, EnvError::UnknownEnv { .. }));
    assert!(err.to_string().contains("NoSuchEnv-v9"));
}
