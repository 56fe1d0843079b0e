//! Convolutional layers and CNN blocks, with PyTorch's semantics and parameter names.
//!
//! Layers ([`Conv1d`], [`Conv2d`], [`ConvTranspose2d`], the pools, [`LocalResponseNorm`],
//! [`BatchNorm`]) are plain structs built from a `VarBuilder` and implement candle's `Module`
//! (`ModuleT` where training and evaluation differ). Parameters are named as in torch's
//! `state_dict` (`weight`, `bias`, `running_mean`, ...), with torch's shapes, so weights can be
//! compared with and loaded from PyTorch. Tensors are NCHW (NCL for 1-D).
//!
//! The blocks of [`blocks`] compose them: GoogLeNet's inception module, ResNet's residual
//! unit, Xception's depthwise separable convolution and the squeeze-and-excitation wrapper.
//!
//! Bad input (wrong rank or channel count, a kernel larger than the padded input, empty
//! tensors) is an error naming the layer with the expected and the actual shape, never a
//! panic.
//!
//! Where candle's own ops are missing features or gradients (asymmetric padding, rectangular
//! strides, pooling backward with overlapping windows, ceil mode; CANDLE-NOTES.md section 5),
//! the layers gather window taps through a precomputed index and reduce them. On CPU (f32 and
//! f64) hand-written kernels with explicit backward passes replace the generic ops: `fast`
//! (convolutions: im2col + GEMM), `fast_bias` (per-channel bias), `fast_batch_norm`,
//! `fast_pool` (max and average pooling) and `fast_relu` (the blocks' activations); each is
//! tested against the generic path and against finite differences.

pub mod batch_norm;
pub mod blocks;
pub mod convolution;
mod fast;
mod fast_batch_norm;
mod fast_bias;
mod fast_columns;
mod fast_conv_norm;
mod fast_direct;
mod fast_gemm;
mod fast_im2col;
mod fast_ops;
mod fast_pool;
mod fast_relu;
mod fast_residual;
mod fast_shifted;
#[cfg(test)]
mod fast_tests;
mod fast_transpose;
mod geometry;
pub mod init;
pub mod lrn;
pub mod pool;
pub mod transpose;

pub use batch_norm::BatchNorm;
pub use convolution::{Conv1d, Conv1dConfig, Conv2d, Conv2dConfig, Padding1d, Padding2d};
pub(crate) use fast_relu::relu;
pub use lrn::LocalResponseNorm;
pub use pool::{AdaptiveAvgPool2d, AvgPool2d, Flatten, GlobalAvgPool2d, MaxPool2d};
pub use transpose::{ConvTranspose2d, ConvTranspose2dConfig};

/// Checks that `dims` has `rank` non-zero dimensions and, unless `channels` is 0, that
/// `dims[1] == channels`; returns the dimensions. `layout` names the axes in the message
/// (e.g. `"[N, C, H, W]"`).
pub(crate) fn check_input(
    layer: &str,
    dims: &[usize],
    rank: usize,
    channels: usize,
    layout: &str,
) -> candle_core::Result<Vec<usize>> {
    let channels_ok = channels == 0 || dims.get(1) == Some(&channels);
    if dims.len() != rank || !channels_ok || dims.contains(&0) {
        let want_c = if channels == 0 { String::new() } else { format!(" with C = {channels}") };
        return Err(geometry::layer_error(
            layer,
            format!(
                "expected a non-empty input of rank {rank} {layout}{want_c}, got shape {dims:?}"
            ),
        ));
    }
    Ok(dims.to_vec())
}
