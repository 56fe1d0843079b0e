//! What a `deeprl train` run is made of: the resolved config (defaults, then the preset for
//! the (agent, env) pair, then `--config`, then `--set`, each value remembering where it came
//! from), the run directory, and the checkpoint that holds everything needed to evaluate,
//! record or resume the run.

use crate::presets;
use deeprl_agents::config::{closest, defaults, parse, parse_assignment};
use deeprl_agents::{spec, Agent, AgentError, AgentState, BuildContext, RunConfig};
use deeprl_envs::{DynEnv, Success};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

type Result<T> = std::result::Result<T, AgentError>;

/// The file name of a run's checkpoint inside its directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// The agent at its best evaluation (highest mean return), written by `deeprl train`; load it
/// with `deeprl eval --checkpoint RUN_DIR/best.safetensors`.
pub const BEST_FILE: &str = "best.safetensors";

/// An env id, an agent name, a seed and the resolved config of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    pub env_id: String,
    pub agent: String,
    pub seed: u64,
    /// Every config key (the runner's and the agent's) with its value.
    pub config: toml::Table,
    /// Where each value came from: `default`, `preset <name>`, `<config file>` or `--set`.
    pub sources: BTreeMap<String, String>,
}

/// What [`RunSpec::build`] makes.
pub struct Built {
    pub env: Box<dyn DynEnv>,
    pub eval_env: Box<dyn DynEnv>,
    pub agent: Box<dyn Agent>,
    pub run: RunConfig,
    pub success: Option<Success>,
}

fn overlay(
    config: &mut toml::Table,
    sources: &mut BTreeMap<String, String>,
    table: &toml::Table,
    source: &str,
) -> Result<()> {
    for (key, value) in table {
        if !config.contains_key(key) {
            let known: Vec<&str> = config.keys().map(String::as_str).collect();
            return Err(AgentError::UnknownKey {
                key: format!("{key}` (from {source})"),
                suggestion: closest(key, known.iter().copied()),
                known: known.join(", "),
            });
        }
        config.insert(key.clone(), value.clone());
        sources.insert(key.clone(), source.to_string());
    }
    Ok(())
}

impl RunSpec {
    /// Resolves the config of `agent` on `env_id`: defaults, the built-in preset (if any),
    /// the TOML file `config_file`, then `key=value` assignments. An unknown key is an error
    /// that suggests the closest known one.
    pub fn resolve(
        env_id: &str,
        agent: &str,
        seed: u64,
        config_file: Option<&Path>,
        assignments: &[String],
    ) -> Result<Self> {
        let agent_spec = spec::find(agent)?;
        if deeprl_envs::spec(env_id).is_none() {
            deeprl_envs::make(env_id)?; // the registry's error lists the known ids
        }
        let mut config = defaults::<RunConfig>();
        let mut sources = BTreeMap::new();
        for (key, value) in (agent_spec.defaults)() {
            config.insert(key, value);
        }
        for key in config.keys() {
            sources.insert(key.clone(), "default".to_string());
        }
        if let Some(preset) = presets::find(agent, env_id) {
            let table: toml::Table = preset.text.parse().map_err(|e: toml::de::Error| {
                AgentError::bad_value(format!("preset {}", preset.name), e.message().to_string())
            })?;
            overlay(&mut config, &mut sources, &table, &format!("preset {}", preset.name))?;
        }
        if let Some(path) = config_file {
            let text = std::fs::read_to_string(path)
                .map_err(|source| AgentError::Io { path: path.display().to_string(), source })?;
            let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                AgentError::bad_value(path.display().to_string(), e.message().to_string())
            })?;
            overlay(&mut config, &mut sources, &table, &path.display().to_string())?;
        }
        for assignment in assignments {
            let (key, value) = parse_assignment(assignment)?;
            let table = toml::Table::from_iter([(key, value)]);
            overlay(&mut config, &mut sources, &table, "--set")?;
        }
        let spec = RunSpec { env_id: env_id.into(), agent: agent.into(), seed, config, sources };
        spec.split()?; // types and ranges are checked now, before anything is written
        Ok(spec)
    }

    /// The runner's settings and the agent's keys.
    pub fn split(&self) -> Result<(RunConfig, toml::Table)> {
        let run_keys = defaults::<RunConfig>();
        let (mut run, mut agent) = (toml::Table::new(), toml::Table::new());
        for (key, value) in &self.config {
            let target = if run_keys.contains_key(key) { &mut run } else { &mut agent };
            target.insert(key.clone(), value.clone());
        }
        Ok((parse::<RunConfig>(&run)?, agent))
    }

    /// Makes the env, a separate evaluation env and the agent.
    pub fn build(&self, device: &candle_core::Device) -> Result<Built> {
        let (run, agent_table) = self.split()?;
        let env = deeprl_envs::make(&self.env_id)?;
        let eval_env = deeprl_envs::make(&self.env_id)?;
        let ctx = BuildContext {
            env_id: &self.env_id,
            env: env.as_ref(),
            seed: self.seed,
            device: device.clone(),
            total_steps: (run.steps > 0).then_some(run.steps),
        };
        let agent = (spec::find(&self.agent)?.build)(&ctx, &agent_table)?;
        let success = deeprl_envs::spec(&self.env_id).and_then(|s| s.success);
        Ok(Built { env, eval_env, agent, run, success })
    }

    /// The resolved config as TOML, each value followed by its source.
    pub fn to_toml(&self) -> String {
        let mut out = format!(
            "# deeprl train --env {} --agent {} --seed {}\n",
            self.env_id, self.agent, self.seed
        );
        for (key, value) in &self.config {
            let source = self.sources.get(key).map(String::as_str).unwrap_or("default");
            out.push_str(&format!("{key} = {value} # {source}\n"));
        }
        out
    }

    /// Stores the spec in a checkpoint's metadata.
    pub fn put(&self, state: &mut AgentState) -> Result<()> {
        state.put_meta("run.env", &self.env_id)?;
        state.put_meta("run.agent", &self.agent)?;
        state.put_meta("run.seed", &self.seed)?;
        state.put_meta("run.config", &toml::to_string(&self.config).unwrap_or_default())?;
        state.put_meta("run.sources", &self.sources)?;
        state.put_meta("run.version", env!("CARGO_PKG_VERSION"))
    }

    /// The spec a checkpoint was written with.
    pub fn from_state(state: &AgentState) -> Result<Self> {
        let config: String = state.meta("run.config")?;
        let config = config
            .parse()
            .map_err(|e: toml::de::Error| AgentError::checkpoint("", e.message().to_string()))?;
        Ok(RunSpec {
            env_id: state.meta("run.env")?,
            agent: state.meta("run.agent")?,
            seed: state.meta("run.seed")?,
            config,
            sources: state.meta("run.sources")?,
        })
    }
}

/// The checkpoint file of `path`: `path` itself if it is a file, else `path/checkpoint.safetensors`.
pub fn checkpoint_file(path: &Path) -> PathBuf {
    if path.is_file() {
        path.to_path_buf()
    } else {
        path.join(CHECKPOINT_FILE)
    }
}

/// Reads a run's checkpoint (a run directory or the file itself) and its spec.
pub fn load_checkpoint(path: &Path) -> Result<(RunSpec, AgentState)> {
    let file = checkpoint_file(path);
    if !file.exists() {
        return Err(AgentError::checkpoint(
            &file,
            "no such checkpoint (pass a run directory written by `deeprl train`, or its checkpoint file)",
        ));
    }
    let state = AgentState::read(&file)?;
    let spec = RunSpec::from_state(&state).map_err(|e| {
        AgentError::checkpoint(&file, format!("not a run checkpoint of `deeprl train` ({e})"))
    })?;
    Ok((spec, state))
}

/// Loads the agent of a checkpoint; a state the agent cannot read (another agent's, another
/// env's) is an error naming the file.
pub fn load_agent(agent: &mut dyn Agent, state: &AgentState, file: &Path) -> Result<()> {
    agent.load(state).map_err(|e| {
        let why = match e {
            AgentError::Checkpoint { why, .. } => why,
            other => other.to_string(),
        };
        AgentError::checkpoint(
            file,
            format!("it does not fit a {} agent on this env: {why}", agent.name()),
        )
    })
}

/// Creates `{env}__{agent}__{seed}__{YYYYmmdd-HHMMSS}` under `root` (with `-2`, `-3`, ...
/// appended when a run of the same name started in the same second).
pub fn create_run_dir(root: &Path, spec: &RunSpec) -> Result<PathBuf> {
    let io = |path: &Path, source| AgentError::Io {
        path: format!("cannot create the run directory {}", path.display()),
        source,
    };
    std::fs::create_dir_all(root).map_err(|e| io(root, e))?;
    let base = run_dir_name(spec);
    for n in 1.. {
        let name = if n == 1 { base.clone() } else { format!("{base}-{n}") };
        let dir = root.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(&dir, e)),
        }
    }
    unreachable!("the loop returns")
}

fn run_dir_name(spec: &RunSpec) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let stamp =
        format!("{y:04}{m:02}{d:02}-{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60);
    format!("{}__{}__{}__{stamp}", file_safe(&spec.env_id), spec.agent, spec.seed)
}

/// An env id as a file name: a namespace's `/` (`MinAtar/Breakout-v1`) becomes `-`.
pub fn file_safe(id: &str) -> String {
    id.replace(['/', '\\'], "-")
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_783), (2026, 11, 26));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn resolve_layers_sources_and_rejects_typos() {
        let spec = RunSpec::resolve(
            "CartPole-v1",
            "random",
            3,
            None,
            &["steps=500".into(), "eval_episodes = 2".into()],
        )
        .unwrap();
        assert_eq!(spec.config["steps"].as_integer(), Some(500));
        assert_eq!(spec.sources["steps"], "--set");
        assert_eq!(spec.sources["eval_every"], "default");
        let (run, _) = spec.split().unwrap();
        assert_eq!(run.eval_episodes, 2);
        let err = RunSpec::resolve("CartPole-v1", "random", 3, None, &["step=5".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean `steps`"), "{err}");
        let err = RunSpec::resolve("CartPole-v1", "random", 3, None, &["steps=-5".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("steps"), "{err}");
        let err = RunSpec::resolve("NoSuchEnv-v0", "random", 3, None, &[]).unwrap_err().to_string();
        assert!(err.contains("NoSuchEnv-v0"), "{err}");
        let err = RunSpec::resolve("CartPole-v1", "randm", 3, None, &[]).unwrap_err().to_string();
        assert!(err.contains("did you mean `random`"), "{err}");
    }
}
