//! [`AgentState`]: everything an agent (and the runner) needs to continue exactly, as one
//! safetensors file.
//!
//! Arrays (weights, tables, optimizer buffers) are safetensors tensors; counters, schedule
//! positions, RNG states and the config are JSON in the file's metadata, under the key
//! `deeprl`, with a CRC-32 of the tensor bytes so a corrupt file is an error. [`AgentState::write`]
//! writes a temporary file beside the target, syncs it and renames it over the target: a
//! crash or a full disk mid-write leaves the previous checkpoint intact.

use crate::error::{AgentError, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use deeprl_nets::optim::{Optim, OptimizerConfig, SavedState};
use rand_chacha::ChaCha8Rng;
use safetensors::tensor::{Dtype, TensorView};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

/// A named array of numbers.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    F32 { shape: Vec<usize>, data: Vec<f32> },
    F64 { shape: Vec<usize>, data: Vec<f64> },
}

impl Array {
    fn shape(&self) -> &[usize] {
        match self {
            Array::F32 { shape, .. } | Array::F64 { shape, .. } => shape,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        match self {
            Array::F32 { data, .. } => data.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Array::F64 { data, .. } => data.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

/// The state of an agent and its run: named arrays plus JSON metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentState {
    arrays: BTreeMap<String, Array>,
    meta: Map<String, Value>,
}

const META_KEY: &str = "deeprl";
const CRC_KEY: &str = "deeprl_crc32";

fn missing(what: &str, name: &str) -> AgentError {
    AgentError::Checkpoint { path: String::new(), why: format!("no {what} `{name}` in the state") }
}

impl AgentState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `f64` values under `name`.
    pub fn put_f64(&mut self, name: &str, shape: &[usize], data: Vec<f64>) {
        self.arrays.insert(name.into(), Array::F64 { shape: shape.to_vec(), data });
    }

    /// Stores `f32` values under `name`.
    pub fn put_f32(&mut self, name: &str, shape: &[usize], data: Vec<f32>) {
        self.arrays.insert(name.into(), Array::F32 { shape: shape.to_vec(), data });
    }

    /// The `f64` values under `name`, checked to hold `len` numbers.
    pub fn f64(&self, name: &str, len: usize) -> Result<&[f64]> {
        match self.arrays.get(name) {
            Some(Array::F64 { data, .. }) if data.len() == len => Ok(data),
            Some(Array::F64 { data, .. }) => Err(AgentError::Checkpoint {
                path: String::new(),
                why: format!("`{name}` holds {} values, expected {len}", data.len()),
            }),
            Some(_) => Err(missing("f64 array", name)),
            None => Err(missing("array", name)),
        }
    }

    /// The array under `name`.
    pub fn array(&self, name: &str) -> Option<&Array> {
        self.arrays.get(name)
    }

    /// The names of the arrays.
    pub fn array_names(&self) -> impl Iterator<Item = &str> {
        self.arrays.keys().map(String::as_str)
    }

    /// Stores a tensor (f32 or f64, any device) under `name`.
    pub fn put_tensor(&mut self, name: &str, t: &Tensor) -> Result<()> {
        let shape = t.dims().to_vec();
        let flat = t.flatten_all()?;
        let array = match t.dtype() {
            DType::F64 => Array::F64 { shape, data: flat.to_vec1()? },
            _ => Array::F32 { shape, data: flat.to_dtype(DType::F32)?.to_vec1()? },
        };
        self.arrays.insert(name.into(), array);
        Ok(())
    }

    /// The array under `name` as a tensor on `device`.
    pub fn tensor(&self, name: &str, device: &Device) -> Result<Tensor> {
        Ok(match self.arrays.get(name).ok_or_else(|| missing("array", name))? {
            Array::F32 { shape, data } => Tensor::from_slice(data, shape.as_slice(), device)?,
            Array::F64 { shape, data } => Tensor::from_slice(data, shape.as_slice(), device)?,
        })
    }

    /// Stores every variable of `varmap` as `{prefix}{name}`.
    pub fn put_varmap(&mut self, prefix: &str, varmap: &VarMap) -> Result<()> {
        let data =
            varmap.data().lock().map_err(|_| AgentError::Shape("VarMap lock poisoned".into()))?;
        for (name, var) in data.iter() {
            self.put_tensor(&format!("{prefix}{name}"), var.as_tensor())?;
        }
        Ok(())
    }

    /// Sets every variable of `varmap` from `{prefix}{name}`; a missing name or a shape
    /// mismatch is an error.
    pub fn load_varmap(&self, prefix: &str, varmap: &VarMap) -> Result<()> {
        let data =
            varmap.data().lock().map_err(|_| AgentError::Shape("VarMap lock poisoned".into()))?;
        for (name, var) in data.iter() {
            let key = format!("{prefix}{name}");
            let t = self.tensor(&key, var.device())?.to_dtype(var.dtype())?;
            if t.dims() != var.dims() {
                return Err(AgentError::Checkpoint {
                    path: String::new(),
                    why: format!(
                        "`{key}` has shape {:?}, the network expects {:?}",
                        t.dims(),
                        var.dims()
                    ),
                });
            }
            var.set(&t)?;
        }
        Ok(())
    }

    /// Stores an optimizer's hyperparameters and state under `prefix`.
    pub fn put_optim(&mut self, prefix: &str, optim: &Optim) -> Result<()> {
        self.put_optim_state(prefix, optim.config(), optim.export_state()?)
    }

    /// Stores an optimizer's hyperparameters and per-variable state in
    /// [`put_optim`](Self::put_optim)'s form, for optimizers kept outside an [`Optim`] (the
    /// DQN host learner's).
    pub fn put_optim_state(
        &mut self,
        prefix: &str,
        config: &OptimizerConfig,
        saved: Vec<SavedState>,
    ) -> Result<()> {
        let steps: Vec<(u64, f64)> = saved.iter().map(|s| (s.step, s.mu_product)).collect();
        self.put_meta(&format!("{prefix}config"), config)?;
        self.put_meta(&format!("{prefix}steps"), &steps)?;
        for (i, s) in saved.into_iter().enumerate() {
            for (k, b) in s.buffers.into_iter().enumerate() {
                let n = b.len();
                self.put_f64(&format!("{prefix}{i}.buffer{k}"), &[n], b);
            }
        }
        Ok(())
    }

    /// Restores an optimizer written by [`put_optim`](Self::put_optim).
    pub fn load_optim(&self, prefix: &str, optim: &mut Optim) -> Result<()> {
        let (config, saved) = self.optim_state(prefix)?;
        optim.import_state(&saved)?;
        candle_nn::Optimizer::set_learning_rate(optim, config.lr());
        Ok(())
    }

    /// The hyperparameters and per-variable state written by [`put_optim`](Self::put_optim)
    /// or [`put_optim_state`](Self::put_optim_state).
    pub fn optim_state(&self, prefix: &str) -> Result<(OptimizerConfig, Vec<SavedState>)> {
        let steps: Vec<(u64, f64)> = self.meta(&format!("{prefix}steps"))?;
        let mut saved = Vec::with_capacity(steps.len());
        for (i, (step, mu_product)) in steps.into_iter().enumerate() {
            let mut s = SavedState { step, mu_product, ..SavedState::default() };
            for (k, buffer) in s.buffers.iter_mut().enumerate() {
                let name = format!("{prefix}{i}.buffer{k}");
                match self.arrays.get(&name) {
                    Some(Array::F64 { data, .. }) => buffer.clone_from(data),
                    _ => return Err(missing("optimizer buffer", &name)),
                }
            }
            saved.push(s);
        }
        Ok((self.meta(&format!("{prefix}config"))?, saved))
    }

    /// Stores a serialisable value under `key` in the metadata.
    pub fn put_meta<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        let value = serde_json::to_value(value)
            .map_err(|e| AgentError::Shape(format!("cannot store `{key}`: {e}")))?;
        self.meta.insert(key.into(), value);
        Ok(())
    }

    /// The metadata value under `key`.
    pub fn meta<T: DeserializeOwned>(&self, key: &str) -> Result<T> {
        let value = self.meta.get(key).ok_or_else(|| missing("entry", key))?;
        serde_json::from_value(value.clone()).map_err(|e| AgentError::Checkpoint {
            path: String::new(),
            why: format!("entry `{key}` is malformed: {e}"),
        })
    }

    /// True when the metadata has `key`.
    pub fn has_meta(&self, key: &str) -> bool {
        self.meta.contains_key(key)
    }

    /// Stores the exact position of a ChaCha8 generator (seed, stream, word position).
    pub fn put_rng(&mut self, key: &str, rng: &ChaCha8Rng) -> Result<()> {
        let pos = rng.get_word_pos().to_string();
        self.put_meta(key, &(rng.get_seed(), rng.get_stream(), pos))
    }

    /// A generator at the position [`put_rng`](Self::put_rng) stored.
    pub fn rng(&self, key: &str) -> Result<ChaCha8Rng> {
        use rand::SeedableRng;
        let (seed, stream, pos): ([u8; 32], u64, String) = self.meta(key)?;
        let pos: u128 = pos
            .parse()
            .map_err(|_| AgentError::checkpoint("", format!("bad RNG position in `{key}`")))?;
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(stream);
        rng.set_word_pos(pos);
        Ok(rng)
    }

    /// Writes the state to `path` atomically (temporary file, sync, rename).
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let io = |source| AgentError::Io { path: path.display().to_string(), source };
        let bytes: Vec<(String, Vec<u8>)> =
            self.arrays.iter().map(|(name, a)| (name.clone(), a.bytes())).collect();
        let mut crc = crc32fast::Hasher::new();
        let mut views = Vec::with_capacity(bytes.len());
        for ((name, data), array) in bytes.iter().zip(self.arrays.values()) {
            crc.update(name.as_bytes());
            crc.update(data);
            let dtype = match array {
                Array::F32 { .. } => Dtype::F32,
                Array::F64 { .. } => Dtype::F64,
            };
            let view = TensorView::new(dtype, array.shape().to_vec(), data)
                .map_err(|e| AgentError::checkpoint(path, format!("array `{name}`: {e}")))?;
            views.push((name.clone(), view));
        }
        let meta = serde_json::to_string(&self.meta)
            .map_err(|e| AgentError::checkpoint(path, e.to_string()))?;
        let info = HashMap::from([
            (META_KEY.to_string(), meta),
            (CRC_KEY.to_string(), crc.finalize().to_string()),
        ]);
        let file = safetensors::tensor::serialize(views, Some(info))
            .map_err(|e| AgentError::checkpoint(path, e.to_string()))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&file)?;
            f.sync_all()
        };
        match write() {
            Ok(()) => std::fs::rename(&tmp, path).map_err(io),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(io(e))
            }
        }
    }

    /// Reads a state written by [`write`](Self::write); a missing, truncated or corrupt file
    /// is an error naming the path.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|source| AgentError::Io { path: path.display().to_string(), source })?;
        let bad = |why: String| AgentError::checkpoint(path, why);
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| bad(format!("not a deeprl checkpoint ({e})")))?;
        let info = header.metadata().clone().unwrap_or_default();
        let (Some(meta), Some(expected)) = (info.get(META_KEY), info.get(CRC_KEY)) else {
            return Err(bad("not a deeprl checkpoint (no deeprl metadata)".into()));
        };
        let tensors = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| bad(format!("corrupt file ({e})")))?;
        let mut named = tensors.tensors();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let mut crc = crc32fast::Hasher::new();
        let mut arrays = BTreeMap::new();
        for (name, view) in named {
            crc.update(name.as_bytes());
            crc.update(view.data());
            let shape = view.shape().to_vec();
            let array = match view.dtype() {
                Dtype::F32 => Array::F32 {
                    shape,
                    data: view
                        .data()
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes(c.try_into().unwrap_or_default()))
                        .collect(),
                },
                Dtype::F64 => Array::F64 {
                    shape,
                    data: view
                        .data()
                        .chunks_exact(8)
                        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default()))
                        .collect(),
                },
                other => return Err(bad(format!("array `{name}` has unsupported type {other:?}"))),
            };
            arrays.insert(name, array);
        }
        if crc.finalize().to_string() != *expected {
            return Err(bad("checksum mismatch: the file is corrupt".into()));
        }
        let meta: Map<String, Value> =
            serde_json::from_str(meta).map_err(|e| bad(format!("corrupt metadata ({e})")))?;
        Ok(AgentState { arrays, meta })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn round_trip_arrays_meta_and_rng() {
        let dir = std::env::temp_dir().join(format!("deeprl-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.safetensors");
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let _: u64 = rng.random();
        let mut s = AgentState::new();
        s.put_f64("q", &[2, 2], vec![1.0, -2.5, f64::MIN_POSITIVE, 4.0]);
        s.put_f32("w", &[3], vec![0.1, 0.2, 0.3]);
        s.put_meta("steps", &42u64).unwrap();
        s.put_rng("rng", &rng).unwrap();
        s.write(&path).unwrap();
        let back = AgentState::read(&path).unwrap();
        assert_eq!(back, s);
        let mut restored = back.rng("rng").unwrap();
        assert_eq!(restored.random::<u64>(), rng.random::<u64>());
        assert_eq!(back.meta::<u64>("steps").unwrap(), 42);
        assert!(back.f64("q", 3).is_err());

        // A flipped byte in the data is caught; the file name is in the message.
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let err = AgentState::read(&path).unwrap_err().to_string();
        assert!(err.contains("checksum") && err.contains("state.safetensors"), "{err}");
        std::fs::write(&path, b"garbage").unwrap();
        assert!(AgentState::read(&path)
            .unwrap_err()
            .to_string()
            .contains("not a deeprl checkpoint"));
        assert!(AgentState::read(dir.join("none")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
