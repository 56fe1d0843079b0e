//! The environment registry: ids such as `"CartPole-v1"` mapped to constructors of
//! type-erased envs, with the time limit Gymnasium's registry applies.
//!
//! ```
//! use deeprl_envs::{make, DynEnv};
//! let mut env = make("CartPole-v1").unwrap();
//! let mut obs = vec![0.0; env.obs_len()];
//! env.reset_into(Some(0), &mut obs).unwrap();
//! assert_eq!(env.max_episode_steps(), Some(500));
//! ```
//!
//! A user registers an env in one line, `deeprl_envs::register("MyEnv-v0", MyEnv::new)?`,
//! and from then on `make("MyEnv-v0")` (and the CLI) builds it.

use crate::dyn_env::DynEnv;
use crate::env::{Env, EnvAction, FlatObs};
use crate::error::{EnvError, Result};
use crate::wrappers::{OrderEnforcing, TimeLimit};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, RwLock};

/// What the registry knows about an id besides its constructor.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvSpec {
    /// The id passed to [`make`], e.g. `"CartPole-v1"`.
    pub id: String,
    /// When set, [`make`] wraps the env in [`TimeLimit`] with this many steps.
    pub max_episode_steps: Option<usize>,
    /// The average return at which the task counts as solved (Gymnasium's `reward_threshold`).
    pub reward_threshold: Option<f64>,
    /// What makes one episode a success, for envs that have a goal (evaluation reports the
    /// success rate).
    pub success: Option<Success>,
}

/// When an episode counts as a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Success {
    /// It terminated (reached its goal) rather than being cut by the time limit: Taxi,
    /// CliffWalking, MountainCar, Acrobot.
    Terminated,
    /// Its return is positive: FrozenLake (the goal pays 1), Blackjack (a win).
    PositiveReturn,
}

impl Success {
    /// Whether an episode with this return and end was a success.
    pub fn judge(self, episode_return: f64, terminated: bool) -> bool {
        match self {
            Success::Terminated => terminated,
            Success::PositiveReturn => episode_return > 0.0,
        }
    }
}

impl EnvSpec {
    /// A spec with no time limit and no reward threshold.
    pub fn new(id: impl Into<String>) -> Self {
        EnvSpec { id: id.into(), max_episode_steps: None, reward_threshold: None, success: None }
    }

    /// Sets the time limit.
    pub fn with_time_limit(mut self, max_episode_steps: usize) -> Self {
        self.max_episode_steps = Some(max_episode_steps);
        self
    }

    /// Sets what makes an episode a success.
    pub fn with_success(mut self, success: Success) -> Self {
        self.success = Some(success);
        self
    }

    /// Sets the reward threshold.
    pub fn with_reward_threshold(mut self, threshold: f64) -> Self {
        self.reward_threshold = Some(threshold);
        self
    }
}

type Constructor = Arc<dyn Fn() -> Box<dyn DynEnv> + Send + Sync>;

#[derive(Clone)]
struct Entry {
    spec: EnvSpec,
    make: Constructor,
}

/// A set of registered ids. [`Registry::with_builtins`] holds every built-in env; the free
/// functions [`make`], [`register`] and [`registered`] use one process-wide registry.
#[derive(Clone, Default)]
pub struct Registry {
    entries: BTreeMap<String, Entry>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// A registry holding every built-in env.
    pub fn with_builtins() -> Self {
        let mut registry = Registry::new();
        crate::classic_control::register_builtins(&mut registry);
        crate::toy_text::register_builtins(&mut registry);
        crate::minatar::register_builtins(&mut registry);
        registry
            .register_spec(
                EnvSpec::new("ThreeStateMdp-v0").with_time_limit(200),
                crate::mdp::FiniteMdp::three_state_example,
            )
            .expect("built-in ids are unique");
        registry
    }

    /// Registers `constructor` under `id` with no time limit.
    pub fn register<E, F>(&mut self, id: &str, constructor: F) -> Result<()>
    where
        E: Env + Send + 'static,
        E::Obs: FlatObs,
        E::Action: EnvAction,
        F: Fn() -> E + Send + Sync + 'static,
    {
        self.register_spec(EnvSpec::new(id), constructor)
    }

    /// Registers `constructor` under `spec.id`; [`Registry::make`] adds the spec's time limit.
    pub fn register_spec<E, F>(&mut self, spec: EnvSpec, constructor: F) -> Result<()>
    where
        E: Env + Send + 'static,
        E::Obs: FlatObs,
        E::Action: EnvAction,
        F: Fn() -> E + Send + Sync + 'static,
    {
        if self.entries.contains_key(&spec.id) {
            return Err(EnvError::DuplicateId(spec.id));
        }
        let make: Constructor = match spec.max_episode_steps {
            Some(limit) => Arc::new(move || {
                let env = TimeLimit::new(constructor(), limit);
                Box::new(OrderEnforcing::new(env)) as Box<dyn DynEnv>
            }),
            None => {
                Arc::new(move || Box::new(OrderEnforcing::new(constructor())) as Box<dyn DynEnv>)
            }
        };
        self.entries.insert(spec.id.clone(), Entry { spec, make });
        Ok(())
    }

    /// Builds the env registered under `id`, wrapped in its time limit (if it has one) and in
    /// [`OrderEnforcing`], as `gymnasium.make` does.
    pub fn make(&self, id: &str) -> Result<Box<dyn DynEnv>> {
        match self.entries.get(id) {
            Some(entry) => Ok((entry.make)()),
            None => Err(EnvError::UnknownEnv { id: id.to_string(), known: self.ids().join(", ") }),
        }
    }

    /// The spec registered under `id`.
    pub fn spec(&self, id: &str) -> Option<&EnvSpec> {
        self.entries.get(id).map(|e| &e.spec)
    }

    /// All registered ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }
}

fn global() -> &'static RwLock<Registry> {
    static REGISTRY: OnceLock<RwLock<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| RwLock::new(Registry::with_builtins()))
}

/// Builds the env registered under `id` in the process-wide registry (built-in or user),
/// with its default time limit, e.g. `make("CartPole-v1")` truncates at 500 steps.
pub fn make(id: &str) -> Result<Box<dyn DynEnv>> {
    // A poisoned lock only means another thread panicked while registering; the map is intact.
    let registry = global().read().unwrap_or_else(|e| e.into_inner());
    registry.make(id)
}

/// Registers a user env under `id` in the process-wide registry, with no time limit.
pub fn register<E, F>(id: &str, constructor: F) -> Result<()>
where
    E: Env + Send + 'static,
    E::Obs: FlatObs,
    E::Action: EnvAction,
    F: Fn() -> E + Send + Sync + 'static,
{
    global().write().unwrap_or_else(|e| e.into_inner()).register(id, constructor)
}

/// Registers a user env under `spec.id` in the process-wide registry, with the spec's limit.
pub fn register_spec<E, F>(spec: EnvSpec, constructor: F) -> Result<()>
where
    E: Env + Send + 'static,
    E::Obs: FlatObs,
    E::Action: EnvAction,
    F: Fn() -> E + Send + Sync + 'static,
{
    global().write().unwrap_or_else(|e| e.into_inner()).register_spec(spec, constructor)
}

/// The spec of `id` in the process-wide registry.
pub fn spec(id: &str) -> Option<EnvSpec> {
    let registry = global().read().unwrap_or_else(|e| e.into_inner());
    registry.spec(id).cloned()
}

/// The specs of every id in the process-wide registry, sorted by id.
pub fn registered() -> Vec<EnvSpec> {
    let registry = global().read().unwrap_or_else(|e| e.into_inner());
    registry.entries.values().map(|e| e.spec.clone()).collect()
}
