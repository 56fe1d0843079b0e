//! A user-defined env, written outside the library, registered, made, checked and played.

use deeprl::envs::{check_discrete, check_env, make, register, register_spec, registered};
use deeprl::envs::{ActionRef, Env, EnvError, EnvRng, EnvSpec, Result, Space, Step};
use rand::{Rng, SeedableRng};

/// Guess a hidden digit: the observation says whether the last guess was low (-1), high (+1)
/// or right (0); the episode terminates on a right guess.
struct GuessDigit {
    rng: EnvRng,
    target: usize,
}

impl GuessDigit {
    fn new() -> Self {
        GuessDigit { rng: EnvRng::seed_from_u64(0), target: 0 }
    }
}

impl Env for GuessDigit {
    type Obs = [f32; 1];
    type Action = usize;

    fn observation_space(&self) -> Space {
        Space::boxed(vec![-1.0], vec![1.0])
    }
    fn action_space(&self) -> Space {
        Space::discrete(10)
    }
    fn reset(&mut self, seed: Option<u64>) -> [f32; 1] {
        deeprl::envs::reseed(&mut self.rng, seed);
        self.target = self.rng.random_range(0..10);
        [0.0]
    }
    fn step(&mut self, action: &usize) -> Result<Step<[f32; 1]>> {
        check_discrete(*action, 10)?;
        let hint = (*action as f32 - self.target as f32).signum();
        let terminated = *action == self.target;
        Ok(Step {
            obs: [hint],
            reward: if terminated { 1.0 } else { -0.1 },
            terminated,
            truncated: false,
        })
    }
}

#[test]
fn a_user_env_registers_in_one_line_and_passes_the_checker() {
    register("GuessDigit-v0", GuessDigit::new).unwrap();
    assert!(registered().iter().any(|s| s.id == "GuessDigit-v0"));
    let report = check_env(|| make("GuessDigit-v0").unwrap());
    assert!(report.is_ok(), "{report}");

    // Binary search solves it within 4 guesses.
    let mut env = make("GuessDigit-v0").unwrap();
    let mut obs = [0.0];
    env.reset_into(Some(3), &mut obs).unwrap();
    let (mut lo, mut hi, mut guesses) = (0usize, 9usize, 0);
    loop {
        let guess = (lo + hi) / 2;
        let out = env.step_into(ActionRef::Discrete(guess), &mut obs).unwrap();
        guesses += 1;
        if out.terminated {
            break;
        }
        if obs[0] > 0.0 {
            hi = guess - 1;
        } else {
            lo = guess + 1;
        }
    }
    assert!(guesses <= 4);
    // The registry's OrderEnforcing makes the user env refuse a step after the end.
    let err = env.step_into(ActionRef::Discrete(0), &mut obs).unwrap_err();
    assert!(matches!(err, EnvError::StepAfterEpisodeEnd { .. }), "{err}");
}

#[test]
fn a_registered_time_limit_truncates_and_ids_are_unique() {
    let spec = EnvSpec::new("GuessDigitShort-v0").with_time_limit(3);
    register_spec(spec.clone(), GuessDigit::new).unwrap();
    let dup = register_spec(spec, GuessDigit::new).unwrap_err();
    assert_eq!(dup.to_string(), "environment id 'GuessDigitShort-v0' is already registered");

    let mut env = make("GuessDigitShort-v0").unwrap();
    assert_eq!(env.max_episode_steps(), Some(3));
    let mut obs = [0.0];
    env.reset_into(Some(0), &mut obs).unwrap();
    // Guess 0 first: if it is right the target is 0 and 9 is always wrong, else 0 is.
    let first = env.step_into(ActionRef::Discrete(0), &mut obs).unwrap();
    let mut steps = 1;
    let wrong = if first.terminated { 9 } else { 0 };
    if first.terminated {
        env.reset_into(Some(0), &mut obs).unwrap();
        steps = 0;
    }
    let last = loop {
        let out = env.step_into(ActionRef::Discrete(wrong), &mut obs).unwrap();
        steps += 1;
        if out.done() {
            break out;
        }
    };
    assert_eq!(steps, 3, "the limit of 3 steps ends the episode");
    assert!(last.truncated && !last.terminated, "{last:?}");
    assert!(env.step_into(ActionRef::Discrete(0), &mut obs).is_err());
}
