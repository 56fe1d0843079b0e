//! A lookup table of learned vectors (torch's `nn.Embedding`, parameter `weight`
//! `(num_embeddings, embedding_dim)`): integer ids of any shape `S` give vectors of shape
//! `(S..., embedding_dim)`. With `padding_idx` the vector of that id receives no gradient
//! (torch's rule; the seeded initialisation also sets it to zero, as torch does). Ids out of
//! range are an error, not a panic.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::rnn::error::LayerError;
use crate::rnn::init::{fill_varmap, join, ParamInit, ParamSpec};

const NAME: &str = "embedding";

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct Embedding {
    weight: Tensor,
    padding_idx: Option<usize>,
}

impl Embedding {
    pub fn load(
        num_embeddings: usize,
        embedding_dim: usize,
        padding_idx: Option<usize>,
        vb: VarBuilder,
    ) -> Result<Self> {
        if let Some(p) = padding_idx.filter(|&p| p >= num_embeddings) {
            return Err(LayerError::config(
                NAME,
                "padding_idx",
                p,
                &format!("< num_embeddings = {num_embeddings}"),
            )
            .into());
        }
        Ok(Self { weight: vb.get((num_embeddings, embedding_dim), "weight")?, padding_idx })
    }

    /// torch's initialisation, standard normal (the padding row zero), from
    /// `ChaCha8Rng::seed_from_u64(seed)`; then [`Self::load`].
    #[allow(clippy::too_many_arguments)]
    pub fn seeded(
        num_embeddings: usize,
        embedding_dim: usize,
        padding_idx: Option<usize>,
        varmap: &VarMap,
        prefix: &str,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        let name = join(prefix, "weight");
        let spec = ParamSpec::new(
            name.clone(),
            vec![num_embeddings, embedding_dim],
            ParamInit::Normal(1.0),
        );
        fill_varmap(varmap, &[spec], seed, dtype, device)?;
        let vb = VarBuilder::from_varmap(varmap, dtype, device);
        let emb = Self::load(
            num_embeddings,
            embedding_dim,
            padding_idx,
            if prefix.is_empty() { vb } else { vb.pp(prefix) },
        )?;
        if let Some(p) = padding_idx {
            let data = varmap
                .data()
                .lock()
                .map_err(|_| candle_core::Error::Msg("VarMap lock poisoned".into()))?;
            if let Some(var) = data.get(&name) {
                let zero = Tensor::zeros((1, embedding_dim), dtype, device)?;
                var.set(&var.as_tensor().slice_assign(&[p..p + 1, 0..embedding_dim], &zero)?)?;
            }
        }
        Ok(emb)
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
}

impl Module for Embedding {
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (num, dim) = self.weight.dims2()?;
        if ids.dtype().is_float() {
            return Err(LayerError::input(
                NAME,
                format!("ids must be integers, got {:?}", ids.dtype()),
            )
            .into());
        }
        let flat = ids.flatten_all()?.to_dtype(DType::I64)?;
        let host = flat.to_vec1::<i64>()?;
        if let Some((i, &id)) =
            host.iter().enumerate().find(|(_, &id)| id < 0 || id as usize >= num)
        {
            return Err(LayerError::input(
                NAME,
                format!("id {id} at flat position {i} is outside 0..{num}"),
            )
            .into());
        }
        let idx = flat.to_dtype(DType::U32)?;
        let mut rows = self.weight.index_select(&idx, 0)?;
        if let Some(p) = self.padding_idx {
            let keep = Tensor::from_vec(
                host.iter().map(|&id| u8::from(id as usize != p)).collect::<Vec<_>>(),
                (host.len(), 1),
                ids.device(),
            )?
            .broadcast_as(rows.shape())?;
            // Same values, but the padding rows' gradient is cut.
            rows = keep.where_cond(&rows, &rows.detach())?;
        }
        let mut shape = ids.dims().to_vec();
        shape.push(dim);
        rows.reshape(shape)
    }
}
