//! The layers every deeprl model shares, and what trains them: optimizers with PyTorch's
//! semantics ([`optim`]), learning-rate and exploration schedules ([`schedule`]),
//! regularisation ([`regularize`]), an MLP builder ([`mlp`]), convolution layers and CNN blocks
//! ([`conv`]), recurrent layers ([`rnn`]) and attention layers ([`attention`]). Usable for supervised and
//! generative work without any reinforcement learning: data loading and batching
//! ([`data`]), the `fit` loop with metrics, early stopping and transfer learning
//! ([`train`]), autoencoders, the VAE and the GAN ([`models`]), and localization and
//! segmentation on synthetic shapes ([`vision`]).

pub mod attention;
pub mod conv;
pub mod data;
pub mod device;
pub mod gradcheck;
pub mod matmul;
pub mod mlp;
pub mod models;
pub mod optim;
pub mod regularize;
pub mod rnn;
pub mod schedule;
mod simd;
#[cfg(test)]
mod test_util;
pub mod train;
pub mod vision;
