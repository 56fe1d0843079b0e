//! Models trained with [`crate::train`]: autoencoders (linear/PCA, stacked with optional tied
//! weights, denoising, sparse), a classifier regularised by reconstruction, the variational
//! autoencoder and the generative adversarial network, in their dense (fully connected)
//! versions; the convolutional and the recurrent autoencoder; the DCGAN, trained by the same
//! [`Gan`] as the dense GAN; and the classic CNNs ([`classic`]: LeNet-5, AlexNet, GoogLeNet,
//! ResNet and SE-ResNet, Xception).

pub mod autoencoder;
pub mod classic;
pub mod conv_autoencoder;
pub mod dcgan;
pub mod recon_classifier;
pub mod recurrent_autoencoder;

pub use autoencoder::{Autoencoder, AutoencoderConfig, InputNoise, Sparsity};
pub use recon_classifier::ReconClassifier;
pub mod gan;
pub mod vae;

pub use gan::{Gan, GanConfig, GanStep};
pub use vae::{Vae, VaeConfig};
