//! Wrappers and vector envs on the built-in envs, from outside the library.

use deeprl::envs::classic_control::{CartPole, Pendulum};
use deeprl::envs::toy_text::FrozenLake;
use deeprl::envs::vector::{Execution, VecEnv};
use deeprl::envs::wrappers::{
    EpisodeStatistics, FrameStack, NormalizeObservation, OneHot, TimeLimit,
};
use deeprl::envs::{check_env, make, Env, FlatObs};

#[test]
fn wrapped_builtin_envs_pass_the_checker() {
    let report = check_env(|| OneHot::new(TimeLimit::new(FrozenLake::v1(), 100)).unwrap());
    assert!(report.is_ok(), "one-hot FrozenLake: {report}");
    let report = check_env(|| FrameStack::<_, 4>::new(TimeLimit::new(CartPole::new(), 500)));
    assert!(report.is_ok(), "stacked CartPole: {report}");
    let report = check_env(|| EpisodeStatistics::new(TimeLimit::new(Pendulum::new(), 200)));
    assert!(report.is_ok(), "Pendulum with statistics: {report}");
}

#[test]
fn one_hot_frozen_lake_is_a_network_input() {
    let mut env = OneHot::new(FrozenLake::v1()).unwrap();
    assert_eq!(env.observation_space().flat_dim(), 16);
    let obs = env.reset(Some(0));
    let mut buffer = vec![0.0; obs.flat_len()];
    obs.write_flat(&mut buffer);
    assert_eq!(buffer.iter().sum::<f32>(), 1.0);
    assert_eq!(buffer[0], 1.0, "FrozenLake starts in state 0");
}

#[test]
fn normalized_cartpole_observations_have_zero_mean_and_unit_variance() {
    let mut env = NormalizeObservation::new(TimeLimit::new(CartPole::new(), 500)).unwrap();
    env.reset(Some(0));
    let mut seen = vec![];
    for t in 0..20_000usize {
        let step = env.step(&(t % 2)).unwrap();
        let obs = if step.terminated || step.truncated { env.reset(None) } else { step.obs };
        if t >= 10_000 {
            seen.push(obs);
        }
    }
    for i in 0..4 {
        let n = seen.len() as f64;
        let mean = seen.iter().map(|o| o[i] as f64).sum::<f64>() / n;
        let var = seen.iter().map(|o| (o[i] as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(
            mean.abs() < 0.2 && (var - 1.0).abs() < 0.3,
            "component {i}: mean {mean}, var {var}"
        );
    }
}

#[test]
fn vector_env_keeps_every_final_observation_of_truncated_episodes() {
    // Pendulum never terminates: every episode is truncated by the 200-step limit.
    let mut venv = VecEnv::try_new(3, || make("Pendulum-v1"), Execution::Parallel).unwrap();
    venv.reset(Some(7)).unwrap();
    let mut single = make("Pendulum-v1").unwrap();
    let mut obs = [0.0f32; 3];
    single.reset_into(Some(7 + 2), &mut obs).unwrap();
    for t in 1..=200 {
        let step = venv.step_continuous(&[0.5, -0.5, 1.0]).unwrap();
        let out = single.step_into(deeprl::envs::ActionRef::Continuous(&[1.0]), &mut obs).unwrap();
        assert_eq!(step.truncated[2], t == 200);
        assert!(!step.terminated[2]);
        if t < 200 {
            assert_eq!(step.obs_row(2), obs, "step {t}: env 2 is seeded with 7 + 2");
        } else {
            assert_eq!(step.final_obs_row(2), Some(&obs[..]), "the final observation is kept");
            assert_ne!(step.obs_row(2), obs, "the row holds the next episode's first observation");
            assert!(out.truncated);
        }
    }
}
