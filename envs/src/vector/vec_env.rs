//! `VecEnv`: N copies of a [`DynEnv`] stepped together, with same-step autoreset.

use super::types::{ActionKind, Execution, VecActions, VecStep};
use crate::dyn_env::DynEnv;
use crate::env::ActionRef;
use crate::error::{EnvError, Result};
use crate::space::Space;
use std::sync::OnceLock;

/// `n_envs` copies of an env, stepped together, with observations in one contiguous buffer.
///
/// * **Layout.** [`VecEnv::obs`] holds `n_envs * obs_len` `f32` values, row `i` for env `i`
///   (the [`DynEnv`] layout), ready to become a `[n_envs, obs_len]` tensor. Rewards and the
///   `terminated` / `truncated` flags are per-env slices. All buffers are allocated once and
///   reused: a sequential step allocates nothing (a parallel one only what rayon's scheduling
///   needs).
/// * **Actions.** [`VecActions::Discrete`] with one index per env for a `Discrete` action
///   space, [`VecActions::Continuous`] with `n_envs * act_dim` values otherwise. Lengths,
///   kinds, discrete ranges and finiteness are checked before any env steps.
/// * **Autoreset: same step** (SB3's `VecEnv`, Gymnasium's `AutoresetMode.SAME_STEP`). When
///   env `i` ends an episode (terminated or truncated), its last observation is copied into
///   row `i` of [`VecEnv::final_obs`], [`VecEnv::has_final_obs`]`[i]` is set, the env is reset
///   at once (`reset(None)`, continuing its random stream), and row `i` of [`VecEnv::obs`]
///   holds the first observation of the new episode. The reward and flags are those of the
///   step that ended the episode. A TD target therefore bootstraps from `final_obs` where
///   `truncated && !terminated`, and the final observation of an episode is never lost.
/// * **Seeding.** `reset(Some(seed))` resets env `i` with `seed + i` (Gymnasium's
///   convention); `reset(None)` continues each env's stream. The same seed and actions give
///   the same buffers, bit for bit, with either [`Execution`].
/// * **Errors.** Invalid actions are rejected before any env steps, changing nothing. If an
///   env itself returns an error during a step or reset (an action that is impossible in its
///   current state), every other env still completes its step, the error of the
///   lowest-numbered failing env is returned ([`VecEnv::failed_env`] names it), and the
///   vector env must be reset before it steps again.
pub struct VecEnv<E> {
    envs: Vec<E>,
    execution: Execution,
    observation_space: Space,
    action_space: Space,
    action: ActionKind,
    obs_len: usize,
    obs: Vec<f32>,
    final_obs: Vec<f32>,
    has_final_obs: Vec<bool>,
    rewards: Vec<f64>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    errors: Vec<Option<EnvError>>,
    failed_env: Option<usize>,
    ready: bool,
}

/// What one env works on: the env and its row of every buffer.
struct Slot<'a, E> {
    env: &'a mut E,
    obs: &'a mut [f32],
    final_obs: &'a mut [f32],
    reward: &'a mut f64,
    terminated: &'a mut bool,
    truncated: &'a mut bool,
    has_final_obs: &'a mut bool,
    error: &'a mut Option<EnvError>,
}

impl<E: DynEnv> Slot<'_, E> {
    fn clear(&mut self) {
        *self.reward = 0.0;
        *self.terminated = false;
        *self.truncated = false;
        *self.has_final_obs = false;
    }

    fn reset(mut self, seed: Option<u64>) {
        self.clear();
        if let Err(e) = self.env.reset_into(seed, self.obs) {
            *self.error = Some(e);
        }
    }

    fn step(mut self, action: ActionRef<'_>) {
        match self.env.step_into(action, self.obs) {
            Ok(out) => {
                *self.reward = out.reward;
                *self.terminated = out.terminated;
                *self.truncated = out.truncated;
                *self.has_final_obs = out.done();
                if out.done() {
                    self.final_obs.copy_from_slice(self.obs);
                    if let Err(e) = self.env.reset_into(None, self.obs) {
                        *self.error = Some(e);
                    }
                }
            }
            Err(e) => {
                self.clear();
                *self.error = Some(e);
            }
        }
    }
}

/// The threads that step envs beside the calling thread: one fewer than the cores, so that
/// no idle helper competes with the caller for a core. Shared by every [`VecEnv`].
fn helper_pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let build = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("deeprl-vec-env-{i}"))
                .build()
        };
        // Building a pool fails only if no thread can be spawned; one thread is the fallback.
        build(cores.saturating_sub(1).max(1))
            .or_else(|_| build(1))
            .expect("cannot start a thread for the parallel vector env")
    })
}

/// Rows `first..first + envs.len()` of every buffer, with their envs: the unit of work that
/// [`Execution::Parallel`] hands to a thread.
struct Rows<'a, E> {
    first: usize,
    obs_len: usize,
    envs: &'a mut [E],
    obs: &'a mut [f32],
    final_obs: &'a mut [f32],
    rewards: &'a mut [f64],
    terminated: &'a mut [bool],
    truncated: &'a mut [bool],
    has_final_obs: &'a mut [bool],
    errors: &'a mut [Option<EnvError>],
}

impl<'a, E: DynEnv> Rows<'a, E> {
    fn len(&self) -> usize {
        self.envs.len()
    }

    fn is_empty(&self) -> bool {
        self.envs.is_empty()
    }

    /// The first `n` rows and the rest.
    fn split_at(self, n: usize) -> (Self, Self) {
        let (envs, envs_rest) = self.envs.split_at_mut(n);
        let (obs, obs_rest) = self.obs.split_at_mut(n * self.obs_len);
        let (final_obs, final_obs_rest) = self.final_obs.split_at_mut(n * self.obs_len);
        let (rewards, rewards_rest) = self.rewards.split_at_mut(n);
        let (terminated, terminated_rest) = self.terminated.split_at_mut(n);
        let (truncated, truncated_rest) = self.truncated.split_at_mut(n);
        let (has_final_obs, has_final_obs_rest) = self.has_final_obs.split_at_mut(n);
        let (errors, errors_rest) = self.errors.split_at_mut(n);
        let obs_len = self.obs_len;
        let head = Rows {
            first: self.first,
            obs_len,
            envs,
            obs,
            final_obs,
            rewards,
            terminated,
            truncated,
            has_final_obs,
            errors,
        };
        let tail = Rows {
            first: self.first + n,
            obs_len,
            envs: envs_rest,
            obs: obs_rest,
            final_obs: final_obs_rest,
            rewards: rewards_rest,
            terminated: terminated_rest,
            truncated: truncated_rest,
            has_final_obs: has_final_obs_rest,
            errors: errors_rest,
        };
        (head, tail)
    }

    /// Runs `f(i, slot)` for every row, one after the other.
    fn for_each<F: Fn(usize, Slot<'_, E>)>(self, f: &F) {
        let rows = self
            .envs
            .iter_mut()
            .zip(self.obs.chunks_mut(self.obs_len))
            .zip(self.final_obs.chunks_mut(self.obs_len))
            .zip(self.rewards.iter_mut().zip(self.terminated.iter_mut()))
            .zip(self.truncated.iter_mut().zip(self.has_final_obs.iter_mut()))
            .zip(self.errors.iter_mut());
        for (
            k,
            (((((env, obs), final_obs), (reward, terminated)), (truncated, has_final_obs)), error),
        ) in rows.enumerate()
        {
            let slot =
                Slot { env, obs, final_obs, reward, terminated, truncated, has_final_obs, error };
            f(self.first + k, slot);
        }
    }
}

impl<E: DynEnv> VecEnv<E> {
    /// `n_envs` envs built by `make`, stepped with `execution`.
    pub fn new(n_envs: usize, mut make: impl FnMut() -> E, execution: Execution) -> Result<Self> {
        Self::try_new(n_envs, || Ok(make()), execution)
    }

    /// `n_envs` envs built by a fallible `make` (e.g. `|| deeprl_envs::make("CartPole-v1")`);
    /// its first error is returned.
    pub fn try_new(
        n_envs: usize,
        mut make: impl FnMut() -> Result<E>,
        execution: Execution,
    ) -> Result<Self> {
        if n_envs == 0 {
            return Err(no_envs());
        }
        let envs = (0..n_envs).map(|_| make()).collect::<Result<Vec<E>>>()?;
        Self::from_envs(envs, execution)
    }

    /// Steps the given envs together. There must be at least one, and all must have the
    /// same observation and action spaces.
    pub fn from_envs(envs: Vec<E>, execution: Execution) -> Result<Self> {
        let Some(first) = envs.first() else {
            return Err(no_envs());
        };
        let observation_space = first.observation_space();
        let action_space = first.action_space();
        let obs_len = first.obs_len();
        if obs_len == 0 {
            return Err(EnvError::InvalidConfig(format!(
                "observations of length 0 (observation space {observation_space})"
            )));
        }
        let action = match action_space {
            Space::Discrete { n } => ActionKind::Discrete(n),
            ref other if other.value_len() == 0 => {
                return Err(EnvError::InvalidConfig(format!("empty action space {other}")))
            }
            ref other => ActionKind::Continuous(other.value_len()),
        };
        for (i, env) in envs.iter().enumerate().skip(1) {
            let (obs_space, act_space) = (env.observation_space(), env.action_space());
            if obs_space != observation_space || env.obs_len() != obs_len {
                return Err(EnvError::InvalidConfig(format!(
                    "env {i} has observation space {obs_space}, env 0 has {observation_space}"
                )));
            }
            if act_space != action_space {
                return Err(EnvError::InvalidConfig(format!(
                    "env {i} has action space {act_space}, env 0 has {action_space}"
                )));
            }
        }
        let n = envs.len();
        Ok(VecEnv {
            envs,
            execution,
            observation_space,
            action_space,
            action,
            obs_len,
            obs: vec![0.0; n * obs_len],
            final_obs: vec![0.0; n * obs_len],
            has_final_obs: vec![false; n],
            rewards: vec![0.0; n],
            terminated: vec![false; n],
            truncated: vec![false; n],
            errors: (0..n).map(|_| None).collect(),
            failed_env: None,
            ready: false,
        })
    }

    /// Resets every env, env `i` with `seed + i` when `seed` is given, and returns the
    /// observation buffer. Rewards, flags and final-observation flags are cleared.
    pub fn reset(&mut self, seed: Option<u64>) -> Result<&[f32]> {
        let reset =
            |i: usize, slot: Slot<'_, E>| slot.reset(seed.map(|s| s.wrapping_add(i as u64)));
        self.run(reset)?;
        self.ready = true;
        Ok(&self.obs)
    }

    /// Steps every env with its action, resetting those whose episode ends (see the type's
    /// documentation), and returns the buffers.
    pub fn step(&mut self, actions: VecActions<'_>) -> Result<VecStep<'_>> {
        if !self.ready {
            return Err(EnvError::StepBeforeReset);
        }
        self.action.check(actions, self.envs.len(), &self.action_space)?;
        let act_dim = self.act_dim();
        let step = |i: usize, slot: Slot<'_, E>| slot.step(actions.of_env(i, act_dim));
        self.run(step)?;
        Ok(self.view())
    }

    /// [`VecEnv::step`] with one discrete action per env.
    pub fn step_discrete(&mut self, actions: &[usize]) -> Result<VecStep<'_>> {
        self.step(VecActions::Discrete(actions))
    }

    /// [`VecEnv::step`] with `n_envs * act_dim` continuous values.
    pub fn step_continuous(&mut self, actions: &[f32]) -> Result<VecStep<'_>> {
        self.step(VecActions::Continuous(actions))
    }

    fn run<F>(&mut self, f: F) -> Result<()>
    where
        F: Fn(usize, Slot<'_, E>) + Sync + Send,
    {
        let rows = Rows {
            first: 0,
            obs_len: self.obs_len,
            envs: &mut self.envs,
            obs: &mut self.obs,
            final_obs: &mut self.final_obs,
            rewards: &mut self.rewards,
            terminated: &mut self.terminated,
            truncated: &mut self.truncated,
            has_final_obs: &mut self.has_final_obs,
            errors: &mut self.errors,
        };
        match self.execution {
            Execution::Sequential => rows.for_each(&f),
            Execution::Parallel => {
                // One contiguous run of envs per core: the calling thread steps the first
                // while the helper threads take the others. A cheap env steps in tens of
                // nanoseconds, far less than what waking a thread for a single env costs.
                let pool = helper_pool();
                let per_thread = rows.len().div_ceil(pool.current_num_threads() + 1);
                let (mine, mut rest) = rows.split_at(per_thread);
                let f = &f;
                pool.in_place_scope(|scope| {
                    while !rest.is_empty() {
                        let take = per_thread.min(rest.len());
                        let (chunk, tail) = rest.split_at(take);
                        scope.spawn(move |_| chunk.for_each(f));
                        rest = tail;
                    }
                    mine.for_each(f);
                });
            }
        }
        let mut first = None;
        for (i, error) in self.errors.iter_mut().enumerate() {
            if let Some(e) = error.take() {
                first.get_or_insert((i, e));
            }
        }
        match first {
            None => {
                self.failed_env = None;
                Ok(())
            }
            Some((i, e)) => {
                self.ready = false;
                self.failed_env = Some(i);
                Err(name_env(e, i))
            }
        }
    }

    /// The buffers of the last step or reset.
    pub fn view(&self) -> VecStep<'_> {
        VecStep {
            obs: &self.obs,
            rewards: &self.rewards,
            terminated: &self.terminated,
            truncated: &self.truncated,
            final_obs: &self.final_obs,
            has_final_obs: &self.has_final_obs,
            obs_len: self.obs_len,
        }
    }

    /// The number of envs.
    pub fn num_envs(&self) -> usize {
        self.envs.len()
    }

    /// The number of `f32` values of one env's observation (a row of the buffer).
    pub fn obs_len(&self) -> usize {
        self.obs_len
    }

    /// Values per env of a continuous action; 1 for a discrete action space.
    pub fn act_dim(&self) -> usize {
        self.action.dim()
    }

    /// The observation space of one env (Gymnasium's `single_observation_space`).
    pub fn single_observation_space(&self) -> &Space {
        &self.observation_space
    }

    /// The action space of one env (Gymnasium's `single_action_space`).
    pub fn single_action_space(&self) -> &Space {
        &self.action_space
    }

    /// How the envs are stepped.
    pub fn execution(&self) -> Execution {
        self.execution
    }

    /// Changes how the envs are stepped (results do not depend on it).
    pub fn set_execution(&mut self, execution: Execution) {
        self.execution = execution;
    }

    /// The observations, `n_envs * obs_len` values, row `i` = env `i`.
    pub fn obs(&self) -> &[f32] {
        &self.obs
    }

    /// The last observations of the episodes that ended on the last step (rows where
    /// [`VecEnv::has_final_obs`] is true; other rows hold stale values).
    pub fn final_obs(&self) -> &[f32] {
        &self.final_obs
    }

    /// Which envs ended an episode on the last step.
    pub fn has_final_obs(&self) -> &[bool] {
        &self.has_final_obs
    }

    /// The rewards of the last step.
    pub fn rewards(&self) -> &[f64] {
        &self.rewards
    }

    /// The `terminated` flags of the last step.
    pub fn terminated(&self) -> &[bool] {
        &self.terminated
    }

    /// The `truncated` flags of the last step.
    pub fn truncated(&self) -> &[bool] {
        &self.truncated
    }

    /// The env whose error the last failed step or reset returned; `None` after a success.
    pub fn failed_env(&self) -> Option<usize> {
        self.failed_env
    }

    /// False before the first reset and after an env returned an error: step needs a reset.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// The envs, e.g. to render one.
    pub fn envs(&self) -> &[E] {
        &self.envs
    }

    /// Unwraps the envs.
    pub fn into_envs(self) -> Vec<E> {
        self.envs
    }
}

impl<E> std::fmt::Debug for VecEnv<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VecEnv")
            .field("num_envs", &self.envs.len())
            .field("execution", &self.execution)
            .field("observation_space", &self.observation_space)
            .field("action_space", &self.action_space)
            .field("ready", &self.ready)
            .finish_non_exhaustive()
    }
}

fn no_envs() -> EnvError {
    EnvError::InvalidConfig("a vector env needs at least one env".into())
}

/// Adds the env's index to an invalid-action message.
fn name_env(error: EnvError, i: usize) -> EnvError {
    match error {
        EnvError::InvalidAction { action, expected } => {
            EnvError::InvalidAction { action: format!("{action} (env {i})"), expected }
        }
        other => other,
    }
}
