//! Layers, optimizers, schedules and regularisation (filled by a later issue).

pub mod optim;
