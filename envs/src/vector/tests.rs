use super::*;
use crate::env::Env;
use crate::error::EnvError;
use crate::registry::{EnvSpec, Registry};
use crate::wrappers::test_envs::{allocations_in, small_mdp, Counter, Walker};
use crate::wrappers::{OneHot, TimeLimit};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn counters(n: usize, horizon: Option<usize>, execution: Execution) -> VecEnv<Counter> {
    VecEnv::new(n, || Counter::new(horizon), execution).unwrap()
}

#[test]
fn buffer_layout_is_one_row_per_env() {
    let mut venv = counters(3, None, Execution::Sequential);
    assert_eq!((venv.num_envs(), venv.obs_len(), venv.act_dim()), (3, 2, 1));
    let obs = venv.reset(Some(10)).unwrap().to_vec();
    assert_eq!(obs.len(), 6);
    for i in 0..3 {
        let mut single = Counter::new(None);
        assert_eq!(&obs[2 * i..2 * i + 2], &single.reset(Some(10 + i as u64)));
    }
    let s = venv.step_discrete(&[0, 1, 0]).unwrap();
    assert_eq!(s.rewards, &[1.0, 2.0, 1.0]);
    assert_eq!(s.terminated, &[false; 3]);
    assert_eq!(s.has_final_obs, &[false; 3]);
    for i in 0..3 {
        assert_eq!(s.obs_row(i), &[1.0, obs[2 * i + 1]]);
        assert_eq!(s.final_obs_row(i), None);
    }
    assert_eq!(venv.obs(), venv.view().obs);
    assert_eq!(venv.single_observation_space(), &Counter::new(None).observation_space());
}

#[test]
fn autoreset_keeps_the_final_observation_of_terminated_episodes() {
    // Env 0 terminates after 2 steps, env 1 after 3.
    let envs = vec![Counter::new(Some(2)), Counter::new(Some(3))];
    let mut venv = VecEnv::from_envs(envs, Execution::Sequential).unwrap();
    let first = venv.reset(Some(7)).unwrap().to_vec();
    venv.step_discrete(&[0, 0]).unwrap();
    let s = venv.step_discrete(&[1, 1]).unwrap();
    assert_eq!(s.terminated, &[true, false]);
    assert_eq!(s.truncated, &[false, false]);
    assert_eq!(s.rewards, &[2.0, 2.0]);
    assert_eq!(s.final_obs_row(0), Some(&[2.0, first[1]][..]));
    assert_eq!(s.final_obs_row(1), None);
    // Row 0 already holds the next episode's first observation, drawn from the continued
    // stream of env 0 (seed 7).
    let mut single = Counter::new(Some(2));
    single.reset(Some(7));
    let next = single.reset(None);
    assert_eq!(s.obs_row(0), &next);
    assert_eq!(s.obs_row(1), &[2.0, first[3]]);
    let s = venv.step_discrete(&[0, 0]).unwrap();
    assert_eq!(s.has_final_obs, &[false, true]);
    assert_eq!(s.final_obs_row(1), Some(&[3.0, first[3]][..]));
    assert_eq!(s.obs_row(0), &[1.0, next[1]]);
    assert_eq!(s.obs_row(1)[0], 0.0);
}

#[test]
fn autoreset_keeps_the_final_observation_of_truncated_episodes() {
    let mut venv =
        VecEnv::new(2, || TimeLimit::new(Counter::new(None), 3), Execution::Parallel).unwrap();
    let first = venv.reset(Some(0)).unwrap().to_vec();
    for _ in 0..2 {
        assert!(!venv.step_discrete(&[1, 0]).unwrap().done(0));
    }
    let s = venv.step_discrete(&[1, 0]).unwrap();
    assert_eq!(s.truncated, &[true, true]);
    assert_eq!(s.terminated, &[false, false]);
    assert_eq!(s.final_obs, &[3.0, first[1], 3.0, first[3]]);
    assert_eq!(s.obs_row(0)[0], 0.0);
    assert_ne!(s.obs_row(0)[1], first[1], "the new episode draws a new offset");
    // The reset env steps on as a fresh episode.
    let s = venv.step_discrete(&[1, 1]).unwrap();
    assert_eq!((s.obs_row(1)[0], s.has_final_obs), (1.0, &[false, false][..]));
}

/// Runs `steps` random steps of 8 walkers and returns every buffer of every step.
fn walker_trace(execution: Execution, seed: u64, steps: usize) -> Vec<Vec<f64>> {
    let mut venv = VecEnv::new(8, || Walker::new(5), execution).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut trace = vec![venv.reset(Some(seed)).unwrap().iter().map(|&x| f64::from(x)).collect()];
    let mut actions = vec![0.0f32; 8 * venv.act_dim()];
    for _ in 0..steps {
        actions.iter_mut().for_each(|a| *a = rng.random_range(-1.0..1.0));
        let s = venv.step_continuous(&actions).unwrap();
        let mut row: Vec<f64> = s.obs.iter().map(|&x| f64::from(x)).collect();
        row.extend(s.rewards);
        row.extend(s.has_final_obs.iter().map(|&b| f64::from(u8::from(b))));
        row.extend(s.final_obs.iter().map(|&x| f64::from(x)));
        trace.push(row);
    }
    trace
}

#[test]
fn parallel_equals_sequential_and_seeds_determine_everything() {
    let sequential = walker_trace(Execution::Sequential, 3, 40);
    assert_eq!(sequential, walker_trace(Execution::Parallel, 3, 40));
    assert_eq!(sequential, walker_trace(Execution::Sequential, 3, 40));
    assert_ne!(sequential, walker_trace(Execution::Sequential, 4, 40));
    // Env i of seed s is env i - 1 of seed s + 1.
    let shifted = walker_trace(Execution::Parallel, 4, 0);
    assert_eq!(&sequential[0][3..3 * 8], &shifted[0][..3 * 7]);
}

#[test]
fn reset_without_seed_continues_each_stream() {
    let mut venv = counters(2, None, Execution::Sequential);
    let a = venv.reset(Some(1)).unwrap().to_vec();
    let b = venv.reset(None).unwrap().to_vec();
    assert_ne!(a, b);
    let mut again = counters(2, None, Execution::Parallel);
    again.reset(Some(1)).unwrap();
    assert_eq!(again.reset(None).unwrap(), &b[..]);
}

#[test]
fn boxed_envs_from_a_registry() {
    let mut registry = Registry::new();
    let spec = EnvSpec::new("Counter-v0").with_time_limit(4);
    registry.register_spec(spec, || Counter::new(None)).unwrap();
    let mut venv: VecEnv<Box<dyn crate::DynEnv>> =
        VecEnv::try_new(3, || registry.make("Counter-v0"), Execution::Parallel).unwrap();
    venv.reset(Some(5)).unwrap();
    for _ in 0..3 {
        venv.step_discrete(&[0, 1, 0]).unwrap();
    }
    let s = venv.step_discrete(&[0, 1, 0]).unwrap();
    assert_eq!(s.truncated, &[true; 3]);
    assert_eq!(s.final_obs_row(2).map(|r| r[0]), Some(4.0));
    assert_eq!(venv.envs()[0].max_episode_steps(), Some(4));
    let err = VecEnv::try_new(2, || registry.make("Nope-v0"), Execution::Sequential);
    assert!(matches!(err, Err(EnvError::UnknownEnv { .. })));
    // One-hot tabular envs as boxed envs.
    let mut venv: VecEnv<Box<dyn crate::DynEnv>> = VecEnv::new(
        2,
        || Box::new(OneHot::new(small_mdp()).unwrap()) as Box<dyn crate::DynEnv>,
        Execution::Sequential,
    )
    .unwrap();
    assert_eq!(venv.reset(Some(0)).unwrap(), &[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
    assert_eq!(venv.step_discrete(&[0, 0]).unwrap().obs, &[0.0, 1.0, 0.0, 0.0, 1.0, 0.0]);
}

#[test]
fn invalid_actions_are_rejected_before_any_env_steps() {
    let mut venv = counters(3, None, Execution::Sequential);
    assert!(matches!(venv.step_discrete(&[0, 0, 0]), Err(EnvError::StepBeforeReset)));
    let obs = venv.reset(Some(0)).unwrap().to_vec();
    let err = venv.step_discrete(&[0, 0, 2]).unwrap_err().to_string();
    assert!(err.contains("2 (env 2)") && err.contains("Discrete(2)"), "{err}");
    let err = venv.step_discrete(&[0, 0]).unwrap_err().to_string();
    assert!(err.contains("one per env (3)"), "{err}");
    assert!(venv.step_continuous(&[0.0; 3]).is_err());
    assert_eq!(venv.obs(), &obs[..]);
    assert!(venv.envs().iter().all(|e| e.render_text().as_deref() == Some("t = 0\n")));
    assert!(venv.is_ready(), "a rejected action needs no reset");

    let mut venv = VecEnv::new(2, || Walker::new(9), Execution::Parallel).unwrap();
    venv.reset(Some(0)).unwrap();
    let err = venv.step_continuous(&[0.0, 0.0, 0.0]).unwrap_err().to_string();
    assert!(err.contains("2 per env for 2 envs (4 values)"), "{err}");
    let err = venv.step_continuous(&[0.0, 0.0, 0.0, f32::NAN]).unwrap_err().to_string();
    assert!(err.contains("env 1, value 1"), "{err}");
    assert!(venv.step_discrete(&[0, 0]).is_err());
    assert!(venv.envs().iter().all(|e| e.pos()[2] == 0.0));
}

#[test]
fn an_env_error_names_the_env_and_requires_a_reset() {
    // In state 1 of the small MDP action 1 is impossible: only the env layout can tell.
    let mut venv = VecEnv::new(3, small_mdp, Execution::Parallel).unwrap();
    venv.reset(Some(0)).unwrap();
    venv.step_discrete(&[1, 0, 0]).unwrap();
    let state0 = venv.envs()[0].state();
    let err = venv.step_discrete(&[0, 1, 1]).unwrap_err().to_string();
    assert!(err.contains("(env 1)") && err.contains("possible in state 1"), "{err}");
    assert_eq!(venv.failed_env(), Some(1));
    assert!(!venv.is_ready());
    assert_ne!(venv.envs()[0].state(), state0, "the valid env stepped");
    assert!(matches!(venv.step_discrete(&[0, 0, 0]), Err(EnvError::StepBeforeReset)));
    venv.reset(None).unwrap();
    assert_eq!(venv.failed_env(), None);
    assert!(venv.step_discrete(&[0, 0, 0]).is_ok());
}

#[test]
fn construction_errors() {
    assert!(matches!(
        VecEnv::new(0, || Counter::new(None), Execution::Sequential),
        Err(EnvError::InvalidConfig(_))
    ));
    assert!(VecEnv::<Counter>::from_envs(vec![], Execution::Sequential).is_err());
    let mixed: Vec<Box<dyn crate::DynEnv>> =
        vec![Box::new(Counter::new(None)), Box::new(Walker::new(3))];
    let err = VecEnv::from_envs(mixed, Execution::Sequential).unwrap_err().to_string();
    assert!(err.contains("env 1 has observation space"), "{err}");
    let mixed: Vec<Box<dyn crate::DynEnv>> =
        vec![Box::new(small_mdp()), Box::new(OneHot::new(small_mdp()).unwrap())];
    assert!(VecEnv::from_envs(mixed, Execution::Sequential).is_err());
}

#[test]
fn sequential_steps_allocate_nothing() {
    let mut venv = counters(4, Some(3), Execution::Sequential);
    venv.reset(Some(0)).unwrap();
    let actions = [0, 1, 1, 0];
    let n = allocations_in(|| {
        for _ in 0..10 {
            assert!(venv.step_discrete(&actions).is_ok());
        }
    });
    assert_eq!(n, 0);
    let mut venv = VecEnv::new(2, || Walker::new(4), Execution::Sequential).unwrap();
    venv.reset(Some(0)).unwrap();
    let n = allocations_in(|| {
        for _ in 0..10 {
            assert!(venv.step_continuous(&[0.5, -0.5, 0.25, 0.0]).is_ok());
        }
    });
    assert_eq!(n, 0);
}
