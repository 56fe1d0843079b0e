//! Unit tests of the toy-text envs: rules, errors, rendering, the registry, and the
//! Blackjack model against Monte Carlo.

mod blackjack;
mod grids;

use crate::env::{Env, Step};
use crate::error::EnvError;
use crate::registry::Registry;
use crate::render::Frame;
use std::fmt::Debug;

/// Steps `env` and a clone with the same actions and checks they agree: an error on `env`
/// must not have changed its state or consumed randomness.
fn assert_same_future<E>(env: &mut E, twin: &mut E, actions: &[E::Action])
where
    E: Env,
    E::Obs: PartialEq + Debug,
{
    for a in actions {
        match (env.step(a), twin.step(a)) {
            (Ok(x), Ok(y)) => assert_eq!(x, y),
            (Err(x), Err(y)) => assert_eq!(x, y),
            (x, y) => panic!("diverged: {x:?} vs {y:?}"),
        }
    }
}

/// Checks the three kinds of bad input on a discrete-action env: an error, and the env
/// unchanged afterwards (same future as an untouched clone).
fn check_bad_input<E>(mut env: E, n_actions: usize, actions: &[usize])
where
    E: Env<Action = usize> + Clone,
    E::Obs: PartialEq + Debug,
{
    assert_eq!(env.step(&0).unwrap_err(), EnvError::StepBeforeReset);
    env.reset(Some(5));
    let mut twin = env.clone();
    let err = env.step(&n_actions).unwrap_err();
    assert!(matches!(err, EnvError::InvalidAction { .. }), "{err}");
    assert!(err.to_string().contains(&format!("0..{n_actions}")), "{err}");
    assert_same_future(&mut env, &mut twin, actions);
    // Run until the episode ends, then stepping is an error until reset.
    env.reset(Some(6));
    let mut ended = false;
    for i in 0..10_000 {
        let s: Step<E::Obs> = env.step(&actions[i % actions.len()]).unwrap();
        if s.terminated {
            ended = true;
            break;
        }
    }
    assert!(ended, "no episode ended");
    let err = env.step(&0).unwrap_err();
    assert!(matches!(err, EnvError::StepAfterEpisodeEnd { .. }), "{err}");
    env.reset(None);
    assert!(env.step(&0).is_ok());
}

/// Two frames of the expected size that differ somewhere.
fn assert_frames_differ(a: &Frame, b: &Frame, width: u32, height: u32) {
    for f in [a, b] {
        assert_eq!((f.width, f.height), (width, height));
        assert_eq!(f.rgb.len(), (width * height * 3) as usize);
    }
    assert_ne!(a.rgb, b.rgb, "the frame did not change with the state");
}

#[test]
fn registry_specs_follow_gymnasium() {
    let registry = Registry::with_builtins();
    let expect = [
        ("FrozenLake-v1", Some(100), Some(0.7), 16, 4),
        ("FrozenLake8x8-v1", Some(200), Some(0.85), 64, 4),
        ("Taxi-v4", Some(200), Some(8.0), 500, 6),
        ("Taxi-v3", Some(200), Some(8.0), 500, 6),
        ("CliffWalking-v1", None, None, 48, 4),
        ("CliffWalkingSlippery-v1", None, None, 48, 4),
    ];
    for (id, steps, threshold, n_obs, n_act) in expect {
        let spec = registry.spec(id).unwrap();
        assert_eq!((spec.max_episode_steps, spec.reward_threshold), (steps, threshold), "{id}");
        let env = registry.make(id).unwrap();
        assert_eq!(env.max_episode_steps(), steps, "{id}");
        assert_eq!(env.observation_space(), crate::Space::discrete(n_obs), "{id}");
        assert_eq!(env.action_space(), crate::Space::discrete(n_act), "{id}");
        assert!(env.transition_model().is_some(), "{id}");
    }
    let spec = registry.spec("Blackjack-v1").unwrap();
    assert_eq!((spec.max_episode_steps, spec.reward_threshold), (None, None));
    let mut env = registry.make("Blackjack-v1").unwrap();
    assert_eq!(env.obs_len(), 3);
    assert!(env.transition_model().is_some());
    let mut obs = vec![0.0; 3];
    env.reset_into(Some(1), &mut obs).unwrap();
    assert!(env.observation_space().contains_values(&obs), "{obs:?}");
}
