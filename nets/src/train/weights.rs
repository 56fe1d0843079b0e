//! Weights on disk and the plumbing of transfer learning: save a [`VarMap`] as safetensors
//! atomically (a temporary file in the same directory, then a rename, so a crash never
//! leaves a half-written checkpoint), load a file into a model's variables with a check of
//! every name, shape and dtype, and choose the trainable variables by freezing name prefixes.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Tensor, Var};
use candle_nn::VarMap;

use super::TrainError;

fn sorted_vars(varmap: &VarMap) -> Result<Vec<(String, Var)>, TrainError> {
    let data =
        varmap.data().lock().map_err(|_| TrainError::Config("VarMap lock poisoned".into()))?;
    let mut vars: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(vars)
}

fn matches(name: &str, prefix: &str) -> bool {
    name == prefix
        || (name.starts_with(prefix)
            && (prefix.ends_with('.') || name[prefix.len()..].starts_with('.')))
}

/// The variables of `varmap` whose names are not under any of the `frozen` prefixes, in
/// name order. A prefix matches whole path segments: `"enc"` freezes `"enc.0.weight"` but
/// not `"encoder2.weight"`; `"0"` freezes `"0.weight"` and `"0.bias"`. Frozen variables get
/// no optimizer updates because they are not handed to the optimizer; gradients still flow
/// through them to earlier layers.
pub fn trainable_vars(varmap: &VarMap, frozen: &[String]) -> Result<Vec<Var>, TrainError> {
    Ok(sorted_vars(varmap)?
        .into_iter()
        .filter(|(name, _)| !frozen.iter().any(|p| matches(name, p)))
        .map(|(_, v)| v)
        .collect())
}

/// Writes every variable of `varmap` to `path` as safetensors, atomically: to
/// `path.tmp-{pid}` first, then renamed over `path`.
pub fn save_weights(varmap: &VarMap, path: impl AsRef<Path>) -> Result<(), TrainError> {
    let path = path.as_ref();
    let tensors: HashMap<String, Tensor> =
        sorted_vars(varmap)?.into_iter().map(|(k, v)| (k, v.as_tensor().detach())).collect();
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|source| TrainError::Io { path: dir.display().to_string(), source })?;
    }
    candle_core::safetensors::save(&tensors, &tmp)?;
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        TrainError::Io { path: path.display().to_string(), source }
    })
}

/// Loads tensors from the safetensors file `path` into the variables of `varmap` whose names
/// are under one of `only` (every variable when `only` is empty), e.g. the pretrained layers
/// of a model that gets a new head. Checks everything before writing anything: a chosen
/// variable missing from the file, or stored with another shape or dtype, is an error naming
/// the first such tensor (in name order), and leaves `varmap` unchanged. Tensors in the file
/// that no chosen variable asks for are ignored. Returns the names loaded.
pub fn load_weights(
    varmap: &VarMap,
    path: impl AsRef<Path>,
    only: &[String],
) -> Result<Vec<String>, TrainError> {
    let path = path.as_ref();
    let werr = |message: String| TrainError::Weights { path: path.display().to_string(), message };
    if !path.exists() {
        return Err(werr("no such file".into()));
    }
    let vars = sorted_vars(varmap)?;
    let device = vars.first().map(|(_, v)| v.device().clone()).unwrap_or(candle_core::Device::Cpu);
    let file = candle_core::safetensors::load(path, &device)
        .map_err(|e| werr(format!("not a safetensors file: {e}")))?;
    let chosen: Vec<&(String, Var)> = vars
        .iter()
        .filter(|(name, _)| only.is_empty() || only.iter().any(|p| matches(name, p)))
        .collect();
    if chosen.is_empty() {
        return Err(werr(format!("no variable of the model is under {only:?}")));
    }
    for (name, var) in &chosen {
        let Some(t) = file.get(name) else {
            return Err(werr(format!(
                "tensor {name} (shape {:?}) is missing from the file",
                var.dims()
            )));
        };
        if t.dims() != var.dims() || t.dtype() != var.dtype() {
            return Err(werr(format!(
                "tensor {name} is {:?} {:?} in the file, the model has {:?} {:?}",
                t.dims(),
                t.dtype(),
                var.dims(),
                var.dtype()
            )));
        }
    }
    for (name, var) in &chosen {
        var.set(&file[name])?;
    }
    Ok(chosen.iter().map(|(n, _)| n.clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(matches("enc.0.weight", "enc"));
        assert!(matches("enc.0.weight", "enc.0"));
        assert!(matches("enc.0.weight", "enc."));
        assert!(!matches("encoder.weight", "enc"));
        assert!(!matches("10.weight", "1"));
    }
}
