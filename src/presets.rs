//! Built-in configs per (agent, env) pair, each value with its source. They live in
//! `presets/{agent}__{env}.toml` and are compiled into the binary; `--config` and `--set`
//! override them.

/// One preset file.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    /// `{agent}__{env}`.
    pub name: &'static str,
    pub text: &'static str,
}

macro_rules! presets {
    ($($name:literal),* $(,)?) => {
        &[$(Preset { name: $name, text: include_str!(concat!("../presets/", $name, ".toml")) }),*]
    };
}

/// Every built-in preset.
pub const PRESETS: &[Preset] = presets![];

/// The preset of `agent` on `env_id`, if there is one.
pub fn find(agent: &str, env_id: &str) -> Option<Preset> {
    let name = format!("{agent}__{env_id}");
    PRESETS.iter().find(|p| p.name == name).copied()
}
