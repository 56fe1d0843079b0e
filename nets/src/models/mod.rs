//! Models trained with [`crate::train`]: autoencoders (linear/PCA, stacked with optional tied
//! weights, denoising, sparse), a classifier regularised by reconstruction, the variational
//! autoencoder and the generative adversarial network, in their dense (fully connected)
//! versions.

pub mod autoencoder;
pub mod recon_classifier;

pub use autoencoder::{Autoencoder, AutoencoderConfig, InputNoise, Sparsity};
pub use recon_classifier::ReconClassifier;
pub mod gan;
pub mod vae;

pub use gan::{Gan, GanConfig, GanStep};
pub use vae::{Vae, VaeConfig};
