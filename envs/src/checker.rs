//! `check_env`: checks that an environment keeps the contract of [`crate::Env`], the way
//! Gymnasium's `check_env` does, and reports every violation in plain words.
//!
//! Run it on a custom env before training on it:
//!
//! ```
//! use deeprl_envs::{check_env, mdp::FiniteMdp};
//! let report = check_env(FiniteMdp::three_state_example);
//! assert!(report.is_ok(), "{report}");
//! ```

use crate::dyn_env::DynEnv;
use crate::env::ActionRef;
use crate::space::{Space, SpaceSample};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt;

/// Steps a rollout may take before the checker stops waiting for the episode to end.
const ROLLOUT_STEPS: usize = 2_000;
/// Episodes in a rollout.
const ROLLOUT_EPISODES: usize = 3;

/// One broken rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// The rule, e.g. `"observation in space"`.
    pub check: &'static str,
    /// What happened, in plain words.
    pub message: String,
}

/// The outcome of [`check_env`]: violations, and notes on checks that could not run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckReport {
    pub violations: Vec<Violation>,
    /// Checks that were not exercised (e.g. no episode ended within the step budget).
    pub notes: Vec<String>,
}

impl CheckReport {
    /// True when no rule was broken.
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }

    fn fail(&mut self, check: &'static str, message: impl Into<String>) {
        self.violations.push(Violation { check, message: message.into() });
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_ok() {
            writeln!(f, "all checks passed")?;
        }
        for v in &self.violations {
            writeln!(f, "FAILED {}: {}", v.check, v.message)?;
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}

/// One recorded rollout: per step the observation bits, reward bits and end flags.
#[derive(Debug, Clone, PartialEq, Default)]
struct Trajectory {
    obs: Vec<u32>,
    steps: Vec<(u64, bool, bool)>,
}

/// An action drawn from the action space, kept alive while it is borrowed as an [`ActionRef`].
enum OwnedAction {
    Discrete(usize),
    Continuous(Vec<f32>),
}

impl OwnedAction {
    fn as_ref(&self) -> ActionRef<'_> {
        match self {
            OwnedAction::Discrete(i) => ActionRef::Discrete(*i),
            OwnedAction::Continuous(v) => ActionRef::Continuous(v),
        }
    }
}

/// Checks the env built by `make` (called several times: each call must give a fresh env):
/// valid spaces; step before reset rejected; observations inside the observation space;
/// finite rewards; the same seed and actions give the same trajectory (on a fresh instance
/// and after re-seeding the same one); step after the end of an episode rejected; invalid
/// actions rejected without changing the env; spaces unchanged by stepping.
pub fn check_env<E: DynEnv>(mut make: impl FnMut() -> E) -> CheckReport {
    let mut report = CheckReport::default();
    let mut env = make();
    let obs_space = env.observation_space();
    let act_space = env.action_space();
    if let Err(e) = obs_space.validate() {
        report.fail("observation space valid", e);
    }
    if let Err(e) = act_space.validate() {
        report.fail("action space valid", e);
    }
    if matches!(act_space, Space::MultiDiscrete { .. }) {
        report.fail(
            "action space supported",
            "MultiDiscrete actions cannot be passed as an ActionRef",
        );
        return report;
    }
    if env.obs_len() != obs_space.value_len() {
        report.fail(
            "observation length",
            format!(
                "obs_len() is {} but the observation space {obs_space} holds {} values",
                env.obs_len(),
                obs_space.value_len()
            ),
        );
        return report;
    }
    let mut obs = vec![0.0; env.obs_len()];

    let mut action_rng = ChaCha8Rng::seed_from_u64(0);
    let probe = sample_action(&act_space, &mut action_rng);
    if env.step_into(probe.as_ref(), &mut obs).is_ok() {
        report.fail("step before reset rejected", "step succeeded on an env that was never reset");
    }

    let first = rollout(&mut env, &act_space, &obs_space, &mut obs, &mut report);
    if env.observation_space() != obs_space || env.action_space() != act_space {
        report.fail("spaces constant", "observation or action space changed while stepping");
    }
    let again = rollout(&mut env, &act_space, &obs_space, &mut obs, &mut CheckReport::default());
    if again != first {
        report.fail(
            "determinism",
            "reset(Some(0)) on the same instance did not repeat the trajectory",
        );
    }
    let mut fresh = make();
    let twin = rollout(&mut fresh, &act_space, &obs_space, &mut obs, &mut CheckReport::default());
    if twin != first {
        report.fail(
            "determinism",
            "a fresh instance with seed 0 and the same actions gave another trajectory",
        );
    }

    check_invalid_actions(&mut make, &act_space, &mut obs, &mut report);
    report
}

/// A random action for the env's current state: uniform over the actions the transition
/// model allows when the env is tabular (observation = state index), else a sample of the space.
fn choose_action<E: DynEnv>(
    env: &E,
    obs: &[f32],
    space: &Space,
    rng: &mut ChaCha8Rng,
) -> OwnedAction {
    if let (Some(model), [state]) = (env.transition_model(), obs) {
        let state = *state as usize;
        if state < model.n_states() {
            let possible: Vec<usize> = model.possible_actions(state).collect();
            if !possible.is_empty() {
                return OwnedAction::Discrete(possible[rng.random_range(0..possible.len())]);
            }
        }
    }
    sample_action(space, rng)
}

fn sample_action(space: &Space, rng: &mut ChaCha8Rng) -> OwnedAction {
    match space.sample(rng) {
        SpaceSample::Discrete(i) => OwnedAction::Discrete(i),
        SpaceSample::Box(v) => OwnedAction::Continuous(v),
        SpaceSample::MultiDiscrete(v) => OwnedAction::Discrete(v.first().copied().unwrap_or(0)),
    }
}

/// Resets with seed 0 and plays seeded random actions for a few episodes, checking each
/// observation and reward, and that a step after an episode's end is rejected.
fn rollout<E: DynEnv>(
    env: &mut E,
    act_space: &Space,
    obs_space: &Space,
    obs: &mut [f32],
    report: &mut CheckReport,
) -> Trajectory {
    let mut traj = Trajectory::default();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut ended_episodes = 0;
    let mut steps = 0;
    let mut seed = Some(0);
    'episodes: while ended_episodes < ROLLOUT_EPISODES {
        if let Err(e) = env.reset_into(seed.take(), obs) {
            report.fail("reset", format!("reset failed: {e}"));
            return traj;
        }
        check_obs(obs, obs_space, "reset", report);
        traj.obs.extend(obs.iter().map(|x| x.to_bits()));
        loop {
            if steps == ROLLOUT_STEPS {
                report.notes.push(format!(
                    "only {ended_episodes} episode(s) ended within {ROLLOUT_STEPS} random steps; the step-after-end check ran {} time(s)",
                    ended_episodes
                ));
                break 'episodes;
            }
            steps += 1;
            let action = choose_action(env, obs, act_space, &mut rng);
            let out = match env.step_into(action.as_ref(), obs) {
                Ok(out) => out,
                Err(e) => {
                    report.fail(
                        "valid action accepted",
                        format!(
                            "step {steps} rejected an action sampled from the action space: {e}"
                        ),
                    );
                    return traj;
                }
            };
            check_obs(obs, obs_space, "step", report);
            if !out.reward.is_finite() {
                report
                    .fail("finite reward", format!("step {steps} returned reward {}", out.reward));
            }
            traj.obs.extend(obs.iter().map(|x| x.to_bits()));
            traj.steps.push((out.reward.to_bits(), out.terminated, out.truncated));
            if out.done() {
                ended_episodes += 1;
                let next = sample_action(act_space, &mut rng);
                if env.step_into(next.as_ref(), obs).is_ok() {
                    report.fail("step after end rejected", format!("step succeeded after the episode ended at step {steps} without a reset"));
                }
                continue 'episodes;
            }
        }
    }
    traj
}

fn check_obs(obs: &[f32], space: &Space, when: &str, report: &mut CheckReport) {
    if !space.contains_values(obs)
        && !report.violations.iter().any(|v| v.check == "observation in space")
    {
        report.fail(
            "observation in space",
            format!("{when} returned {obs:?}, which is outside {space}"),
        );
    }
}

/// Invalid actions must be errors that leave the env as it was: a twin env fed only the
/// valid actions must follow the same trajectory.
fn check_invalid_actions<E: DynEnv>(
    make: &mut impl FnMut() -> E,
    act_space: &Space,
    obs: &mut [f32],
    report: &mut CheckReport,
) {
    let invalid: Vec<(String, OwnedAction)> = match act_space {
        Space::Discrete { n } => {
            vec![(format!("action {n} for Discrete({n})"), OwnedAction::Discrete(*n))]
        }
        Space::Box(b) => {
            let mut nan =
                b.low.iter().map(|&lo| if lo.is_finite() { lo } else { 0.0 }).collect::<Vec<_>>();
            nan[0] = f32::NAN;
            vec![
                ("a NaN action".to_string(), OwnedAction::Continuous(nan)),
                (
                    format!("an action of length {}", b.len() + 1),
                    OwnedAction::Continuous(vec![0.0; b.len() + 1]),
                ),
            ]
        }
        Space::MultiDiscrete { .. } => return,
    };
    let (mut a, mut b) = (make(), make());
    let mut obs_b = obs.to_vec();
    if a.reset_into(Some(1), obs).is_err() || b.reset_into(Some(1), &mut obs_b).is_err() {
        return;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for (what, bad) in &invalid {
        if a.step_into(bad.as_ref(), obs).is_ok() {
            report.fail("invalid action rejected", format!("{what} was accepted"));
            return;
        }
    }
    for step in 0..50 {
        let action = choose_action(&a, obs, act_space, &mut rng);
        let (ra, rb) =
            (a.step_into(action.as_ref(), obs), b.step_into(action.as_ref(), &mut obs_b));
        match (ra, rb) {
            (Ok(x), Ok(y)) if x == y && obs == obs_b.as_slice() => {
                if x.done() {
                    return;
                }
            }
            (Ok(_), Ok(_)) => {
                report.fail("invalid action leaves env unchanged", format!("after a rejected invalid action the env diverged from its twin at step {step}"));
                return;
            }
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::{Env, EnvRng, Step};
    use crate::error::Result;
    use crate::mdp::FiniteMdp;

    #[test]
    fn a_correct_env_passes() {
        let report = check_env(FiniteMdp::three_state_example);
        assert!(report.is_ok(), "{report}");
    }

    /// Breaks several rules on purpose: accepts any action, steps before reset, observations
    /// out of space, and ignores the seed.
    struct Sloppy {
        rng: EnvRng,
        t: usize,
    }

    impl Env for Sloppy {
        type Obs = [f32; 1];
        type Action = usize;
        fn observation_space(&self) -> Space {
            Space::boxed(vec![0.0], vec![1.0])
        }
        fn action_space(&self) -> Space {
            Space::discrete(2)
        }
        fn reset(&mut self, _seed: Option<u64>) -> [f32; 1] {
            self.t = 0;
            [self.rng.random::<f32>()]
        }
        fn step(&mut self, _action: &usize) -> Result<Step<[f32; 1]>> {
            self.t += 1;
            Ok(Step { obs: [2.0], reward: f64::NAN, terminated: self.t >= 5, truncated: false })
        }
    }

    #[test]
    fn a_sloppy_env_gets_every_violation_named() {
        let report = check_env(|| Sloppy { rng: crate::env::entropy_rng(), t: 0 });
        let checks: Vec<&str> = report.violations.iter().map(|v| v.check).collect();
        for expected in [
            "step before reset rejected",
            "observation in space",
            "finite reward",
            "step after end rejected",
            "determinism",
            "invalid action rejected",
        ] {
            assert!(checks.contains(&expected), "missing {expected}: {report}");
        }
        assert!(report.to_string().contains("outside Box"));
    }
}
