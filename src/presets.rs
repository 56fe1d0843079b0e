//! Built-in configs per (agent, env) pair, each value with its source. They live in
//! `presets/{agent}__{env}.toml` and are compiled into the binary; `--config` and `--set`
//! override them.

/// One preset, for one (agent, env) pair.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    /// `{agent}__{env}` (a `/` in the env id written as `-`).
    pub name: &'static str,
    /// The file it comes from, in `presets/` (several env versions may share one).
    pub file: &'static str,
    pub text: &'static str,
}

macro_rules! presets {
    ($($name:literal => $file:literal),* $(,)?) => {
        &[$(Preset {
            name: $name,
            file: $file,
            text: include_str!(concat!("../presets/", $file, ".toml")),
        }),*]
    };
}

/// Every built-in preset.
pub const PRESETS: &[Preset] = presets![
    "q-learning__Taxi-v3" => "q-learning__Taxi",
    "q-learning__Taxi-v4" => "q-learning__Taxi",
    "q-learning__FrozenLake-v1" => "q-learning__FrozenLake-v1",
    "q-learning__CliffWalking-v1" => "q-learning__CliffWalking-v1",
    "value-iteration__FrozenLake-v1" => "value-iteration__FrozenLake-v1",
    "reinforce__CartPole-v1" => "reinforce__CartPole-v1",
    "dqn__CartPole-v1" => "dqn__CartPole-v1",
    "dqn__Acrobot-v1" => "dqn__Acrobot-v1",
    "dqn__MountainCar-v0" => "dqn__MountainCar-v0",
    "rainbow__CartPole-v1" => "rainbow__CartPole-v1",
    "dqn__MinAtar-Breakout-v1" => "dqn__MinAtar-Breakout-v1",
    "rainbow__MinAtar-Breakout-v1" => "rainbow__MinAtar-Breakout-v1",
];

/// The preset of `agent` on `env_id`, if there is one.
pub fn find(agent: &str, env_id: &str) -> Option<Preset> {
    let name = format!("{agent}__{}", crate::runs::file_safe(env_id));
    PRESETS.iter().find(|p| p.name == name).copied()
}
