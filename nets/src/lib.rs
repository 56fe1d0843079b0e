//! The layers every deeprl model shares, and what trains them: optimizers with PyTorch's
//! semantics ([`optim`]), learning-rate and exploration schedules ([`schedule`]),
//! regularisation ([`regularize`]) and an MLP builder ([`mlp`]). Usable for supervised and
//! generative work without any reinforcement learning.

pub mod conv;
pub mod gradcheck;
pub mod mlp;
pub mod optim;
pub mod regularize;
pub mod schedule;
