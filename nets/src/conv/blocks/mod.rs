//! CNN building blocks composed from the layers of [`crate::conv`]:
//!
//! * [`Inception`]: GoogLeNet's inception module (Szegedy et al. 2015, "Going deeper with
//!   convolutions"), as in the paper or as torchvision builds it, of [`BasicConv2d`] units;
//! * [`ResidualUnit`]: ResNet's basic residual unit (He et al. 2016, "Deep residual learning
//!   for image recognition");
//! * [`SeparableConv2d`]: Xception's depthwise separable convolution (Chollet 2017);
//! * [`SqueezeExcite`] and [`SeBlock`]: squeeze-and-excitation (Hu, Shen and Sun 2018), on
//!   its own, wrapped around any block, or inside a residual unit (SE-ResNet).
//!
//! Parameter names follow the torch modules a PyTorch user would write (torchvision's where
//! one exists), documented on each block.

pub mod basic_conv;
pub mod inception;
pub mod residual;
pub mod se;
pub mod separable;

pub use basic_conv::BasicConv2d;
pub use inception::{Inception, InceptionConfig};
pub use residual::ResidualUnit;
pub use se::{SeBlock, SqueezeExcite};
pub use separable::{SeparableConv2d, SeparableConv2dConfig};
