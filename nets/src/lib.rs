//! The layers every deeprl model shares, and what trains them: optimizers with PyTorch's
//! semantics ([`optim`]), learning-rate and exploration schedules ([`schedule`]),
//! regularisation ([`regularize`]) and an MLP builder ([`mlp`]). Usable for supervised and
//! generative work without any reinforcement learning: data loading and batching
//! ([`data`]), the `fit` loop with metrics, early stopping and transfer learning
//! ([`train`]), and autoencoders, the VAE and the GAN ([`models`]).

pub mod conv;
pub mod data;
pub mod gradcheck;
pub mod mlp;
pub mod models;
pub mod optim;
pub mod regularize;
pub mod schedule;
pub mod train;
