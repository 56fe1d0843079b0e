//! The training loop's contract: transitions are built before the reset (so a truncated
//! episode hands the agent its true final observation), evaluation and budgets.

use deeprl_agents::{
    tags, ActionBuf, Agent, AgentState, MemoryLogger, Result, RunConfig, Runner, TrainInfo,
    Transition,
};
use deeprl_envs::{make, register_spec, Env, EnvSpec, Space, Step};
use std::sync::{Arc, Mutex};

/// Counts steps: the observation is the step index, every step pays 1, and action 1 ends the
/// episode (terminated) from step 3 on. Truncation comes from the registry's time limit.
#[derive(Default)]
struct Counter {
    t: usize,
}

impl Env for Counter {
    type Obs = [f32; 1];
    type Action = usize;
    fn observation_space(&self) -> Space {
        Space::boxed(vec![0.0], vec![100.0])
    }
    fn action_space(&self) -> Space {
        Space::discrete(2)
    }
    fn reset(&mut self, _seed: Option<u64>) -> [f32; 1] {
        self.t = 0;
        [0.0]
    }
    fn step(&mut self, action: &usize) -> deeprl_envs::Result<Step<[f32; 1]>> {
        self.t += 1;
        let terminated = *action == 1 && self.t >= 3;
        Ok(Step { obs: [self.t as f32], reward: 1.0, terminated, truncated: false })
    }
}

const ID: &str = "Counter-v0";

fn register() {
    // Several tests may register it; the second registration is a duplicate error.
    let _ = register_spec(EnvSpec::new(ID).with_time_limit(5), Counter::default);
}

/// `(obs, next_obs, terminated, truncated)` of each transition.
type Record = (f32, f32, bool, bool);
type Seen = Arc<Mutex<Vec<Record>>>;

/// Plays a fixed action and records what it observes.
struct Recorder {
    action: usize,
    seen: Seen,
}

impl Agent for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn act(&mut self, _obs: &[f32], action: &mut ActionBuf) -> Result<()> {
        action.set_discrete(self.action);
        Ok(())
    }
    fn act_greedy(&mut self, obs: &[f32], action: &mut ActionBuf) -> Result<()> {
        self.act(obs, action)
    }
    fn observe(&mut self, t: &Transition<'_>) -> Result<Option<TrainInfo>> {
        self.seen.lock().unwrap().push((t.obs[0], t.next_obs[0], t.terminated, t.truncated));
        Ok(Some(TrainInfo { loss: 1.0, lr: 0.5 }))
    }
    fn save(&self, _state: &mut AgentState) -> Result<()> {
        Ok(())
    }
    fn load(&mut self, _state: &AgentState) -> Result<()> {
        Ok(())
    }
}

fn run(action: usize, config: RunConfig) -> (Vec<Record>, MemoryLogger, u64) {
    register();
    let seen = Seen::default();
    let recorder = Recorder { action, seen: seen.clone() };
    let mut runner =
        Runner::new(make(ID).unwrap(), make(ID).unwrap(), Box::new(recorder), config, 0, None)
            .unwrap();
    let mut logger = MemoryLogger::default();
    let mut checkpoints = 0;
    let summary = runner
        .run(
            &mut logger,
            &mut |_| {
                checkpoints += 1;
                Ok(())
            },
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(summary.steps, runner.step());
    let seen = seen.lock().unwrap().clone();
    (seen, logger, checkpoints)
}

#[test]
fn truncated_transitions_carry_the_true_final_observation() {
    let config = RunConfig { steps: 12, eval_every: 0, eval_episodes: 1, ..RunConfig::default() };
    let (seen, logger, _) = run(0, config);
    assert_eq!(seen.len(), 12);
    for (i, &(obs, next, terminated, truncated)) in seen.iter().enumerate() {
        let t = (i % 5) as f32;
        assert_eq!((obs, next, terminated), (t, t + 1.0, false), "step {i}");
        // The 5th step of each episode is cut by the time limit; its next_obs is 5, not the
        // reset observation 0.
        assert_eq!(truncated, i % 5 == 4, "step {i}");
    }
    let returns = logger.values(tags::EPISODE_RETURN);
    assert_eq!(returns, vec![(5, 5.0), (10, 5.0)]);
    assert_eq!(logger.values(tags::EPISODE_LENGTH), vec![(5, 5.0), (10, 5.0)]);
    // Training scalars once per episode: the mean loss of its updates.
    assert_eq!(logger.values(tags::LOSS), vec![(5, 1.0), (10, 1.0)]);
    assert_eq!(logger.values(tags::EVAL_MEAN_RETURN), vec![(12, 5.0)]);
}

#[test]
fn terminated_episodes_budgets_evaluation_and_target() {
    // Action 1 terminates at step 3: episodes of 3 steps, the last transition terminated.
    let config = RunConfig {
        steps: 0,
        max_episodes: 4,
        eval_every: 6,
        eval_episodes: 2,
        checkpoint_every: 5,
        ..RunConfig::default()
    };
    let (seen, logger, checkpoints) = run(1, config);
    assert_eq!(seen.len(), 12, "4 episodes of 3 steps");
    assert!(seen.iter().enumerate().all(|(i, s)| s.2 == (i % 3 == 2) && !s.3));
    assert_eq!(logger.values(tags::EVAL_MEAN_RETURN), vec![(6, 3.0), (12, 3.0)]);
    assert_eq!(checkpoints, 2 + 1, "at steps 5 and 10, and at the end");

    // A target return stops the run at the first evaluation that reaches it.
    let config =
        RunConfig { steps: 1000, eval_every: 10, target_return: 5.0, ..RunConfig::default() };
    let (seen, _, _) = run(0, config);
    assert_eq!(seen.len(), 10);
}
