//! One module per subcommand.

pub mod agents;
pub mod check_env;
pub mod envs;
pub mod eval;
pub mod plot;
pub mod progress;
pub mod record;
pub mod train;

use anyhow::{Context, Result};
use candle_core::Device;
use std::path::Path;

/// The device named on the command line.
pub fn device(name: &str) -> Result<Device> {
    Ok(deeprl::nets::device::device_by_name(name)?)
}

/// A loaded checkpoint, rebuilt: the spec, the env and the trained agent.
pub struct Loaded {
    pub spec: deeprl::runs::RunSpec,
    pub built: deeprl::runs::Built,
}

/// Reads the checkpoint of a run directory (or file) and rebuilds its env and agent.
pub fn load(checkpoint: &std::path::Path, device_name: &str) -> Result<Loaded> {
    let device = device(device_name)?;
    let (spec, state) = deeprl::runs::load_checkpoint(checkpoint)?;
    let file = deeprl::runs::checkpoint_file(checkpoint);
    let mut built = spec.build(&device).map_err(|e| {
        anyhow::anyhow!(
            "checkpoint {}: its config does not fit a {} agent on {}: {e}",
            file.display(),
            spec.agent,
            spec.env_id
        )
    })?;
    deeprl::runs::load_agent(built.agent.as_mut(), &state, &file)?;
    Ok(Loaded { spec, built })
}

/// Writes `out` through a hidden temporary file beside it that keeps the extension
/// (`.{name}.tmp.{ext}`, for encoders that go by it): renamed over `out` when `write`
/// succeeds, removed when it fails, so no half-written file is ever left behind.
pub fn write_atomically(out: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = out.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    let tmp = out.with_file_name(format!(".{name}.tmp{ext}"));
    match write(&tmp) {
        Ok(()) => std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display())),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e.context(format!("writing {}", out.display())))
        }
    }
}
