//! Trains a dense VAE (Kingma and Welling 2013) on the digits and writes two PNG grids:
//! test digits above their reconstructions, and 64 new digits sampled from the prior.
//!
//! `cargo run --release -p deeprl-nets --example vae_digits -- [OUT_DIR]`
//! (default `target/examples-out`).

use candle_core::Device;
use candle_nn::VarMap;
use deeprl_nets::data::digits::digits;
use deeprl_nets::data::png::save_grid_png;
use deeprl_nets::mlp::Activation;
use deeprl_nets::models::{Vae, VaeConfig};
use deeprl_nets::optim::{AdamConfig, OptimizerConfig};
use deeprl_nets::train::{fit, FitConfig, FitHooks};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(
        std::env::args().nth(1).unwrap_or_else(|| "target/examples-out".into()),
    );
    let dev = Device::Cpu;
    let (train, test) = digits()?.split(0.2, 0)?;
    let config = VaeConfig {
        input: 64,
        hidden: vec![128],
        latent: 8,
        activation: Activation::Relu,
        beta: 1.0,
    };
    let vm = VarMap::new();
    let vae = Vae::seeded(&config, &vm, &dev, 0)?;
    let fit_config = FitConfig::new(
        60,
        32,
        0,
        OptimizerConfig::Adam(AdamConfig { lr: 2e-3, ..AdamConfig::default() }),
    );
    let report = fit(&vae, &vm, &train, Some(&test), &fit_config, FitHooks::default())?;
    for s in report.history.iter().step_by(10) {
        println!(
            "epoch {:2}: train -ELBO {:.2}, test -ELBO {:.2}",
            s.epoch,
            s.train.loss,
            s.valid.map_or(f64::NAN, |v| v.loss)
        );
    }
    let x = test.subset(&(0..16).collect::<Vec<_>>())?.tensors(&dev)?.x;
    let recon: Vec<Vec<f32>> = vae.reconstruct(&x)?.to_vec2()?;
    let originals: Vec<Vec<f32>> = x.to_vec2()?;
    let grid: Vec<Vec<f32>> = originals.into_iter().chain(recon).collect();
    save_grid_png(out.join("vae_reconstructions.png"), &grid, 8, 16, 4)?;
    let samples: Vec<Vec<f32>> = vae.sample(64, &dev)?.to_vec2()?;
    save_grid_png(out.join("vae_samples.png"), &samples, 8, 8, 4)?;
    println!("wrote {0}/vae_reconstructions.png and {0}/vae_samples.png", out.display());
    Ok(())
}
