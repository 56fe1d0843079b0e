//! The uniformly random agent: a baseline every learning curve should beat, and the
//! simplest user of the [`Agent`] interface.

use crate::agent::{ActionBuf, Agent, TrainInfo, Transition};
use crate::config::{self, Config};
use crate::error::Result;
use crate::spec::{AgentSpec, BuildContext};
use crate::state::AgentState;
use deeprl_envs::Space;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The random agent has no settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RandomConfig {}

impl Config for RandomConfig {
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Draws every action uniformly from the action space. Its "greedy" policy is a fixed random
/// one: the action is drawn from a generator seeded by a hash of the observation, so
/// evaluation draws nothing from the training generator and is the same whenever it runs.
pub struct RandomAgent {
    space: Space,
    seed: u64,
    rng: ChaCha8Rng,
}

impl RandomAgent {
    /// A random agent over `space`, seeded.
    pub fn new(space: Space, seed: u64) -> Self {
        RandomAgent { space, seed, rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    /// The registry entry.
    pub fn spec() -> AgentSpec {
        AgentSpec {
            name: "random",
            about: "uniformly random actions: the baseline to beat",
            defaults: config::defaults::<RandomConfig>,
            build: |ctx: &BuildContext<'_>, table| {
                let _: RandomConfig = config::parse(table)?;
                Ok(Box::new(RandomAgent::new(ctx.env.action_space(), ctx.seed)))
            },
        }
    }

    /// Draws as [`Space::sample`] does, writing into the action buffer without allocating.
    fn draw(space: &Space, rng: &mut ChaCha8Rng, action: &mut ActionBuf) {
        match space {
            Space::Discrete { n } => action.set_discrete(rng.random_range(0..*n)),
            Space::Box(b) => b.sample_into(rng, action.continuous_mut(b.len())),
            Space::MultiDiscrete { nvec } => {
                let out = action.continuous_mut(nvec.len());
                for (o, &n) in out.iter_mut().zip(nvec) {
                    *o = rng.random_range(0..n) as f32;
                }
            }
        }
    }
}

impl Agent for RandomAgent {
    fn name(&self) -> &'static str {
        "random"
    }

    fn act(&mut self, _obs: &[f32], action: &mut ActionBuf) -> Result<()> {
        Self::draw(&self.space, &mut self.rng, action);
        Ok(())
    }

    fn act_greedy(&mut self, obs: &[f32], action: &mut ActionBuf) -> Result<()> {
        // FNV-1a over the observation's bits.
        let hash = obs.iter().fold(0xcbf2_9ce4_8422_2325u64 ^ self.seed, |h, x| {
            (h ^ u64::from(x.to_bits())).wrapping_mul(0x0100_0000_01b3)
        });
        Self::draw(&self.space, &mut ChaCha8Rng::seed_from_u64(hash), action);
        Ok(())
    }

    fn observe(&mut self, _transition: &Transition<'_>) -> Result<Option<TrainInfo>> {
        Ok(None)
    }

    fn save(&self, state: &mut AgentState) -> Result<()> {
        state.put_rng("random.rng", &self.rng)
    }

    fn load(&mut self, state: &AgentState) -> Result<()> {
        self.rng = state.rng("random.rng")?;
        Ok(())
    }
}
