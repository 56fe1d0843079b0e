//! Trains a convolutional autoencoder on the digits (strided Conv2d 8x8 -> 16x4x4 -> 32x2x2,
//! a dense code of 16 numbers, then ConvTranspose2d back up), prints the test reconstruction error next to the mean-image
//! baseline, and writes a PNG grid: 16 test digits above their reconstructions.
//!
//! `cargo run --release -p deeprl-nets --example conv_autoencoder_digits -- [OUT_DIR]`
//! (default: the workspace's `docs/`, which holds the picture the README shows).

use std::time::Instant;

use candle_core::{DType, Device};
use candle_nn::VarMap;
use deeprl_nets::data::digits::digits;
use deeprl_nets::data::png::save_grid_png;
use deeprl_nets::data::Dataset;
use deeprl_nets::models::conv_autoencoder::{ConvAutoencoder, ConvAutoencoderConfig};
use deeprl_nets::optim::{AdamConfig, OptimizerConfig};
use deeprl_nets::train::{evaluate, fit, FitConfig, FitHooks};

/// The squared error of predicting `train`'s mean image for every image of `test`.
fn mean_image_mse(train: &Dataset, test: &Dataset) -> f64 {
    let d = train.dim();
    let mut mean = vec![0.0f64; d];
    (0..train.len())
        .for_each(|i| mean.iter_mut().zip(train.row(i)).for_each(|(m, &x)| *m += x as f64));
    mean.iter_mut().for_each(|m| *m /= train.len() as f64);
    let sq: f64 = (0..test.len())
        .flat_map(|i| test.row(i).iter().zip(&mean).map(|(&x, m)| (x as f64 - m).powi(2)))
        .sum();
    sq / (test.len() * d) as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../docs").into()),
    );
    let dev = Device::Cpu;
    let (train, test) = digits()?.split(0.2, 0)?;
    let config = ConvAutoencoderConfig {
        code_dim: Some(16),
        ..ConvAutoencoderConfig::new([1, 8, 8], vec![16, 32])
    };
    let vm = VarMap::new();
    let ae = ConvAutoencoder::seeded(&config, &vm, DType::F32, &dev, 0)?;
    let fit_config = FitConfig::new(
        40,
        32,
        0,
        OptimizerConfig::Adam(AdamConfig { lr: 3e-3, ..AdamConfig::default() }),
    );
    let start = Instant::now();
    let report = fit(&ae, &vm, &train, Some(&test), &fit_config, FitHooks::default())?;
    let seconds = start.elapsed().as_secs_f64();
    for s in report.history.iter().step_by(5) {
        println!(
            "epoch {:2}: train MSE {:.5}, test MSE {:.5}",
            s.epoch,
            s.train.loss,
            s.valid.map_or(f64::NAN, |v| v.loss)
        );
    }
    let mse = evaluate(&ae, &test, 256, 1, &dev)?.loss;
    println!(
        "code {:?} ({} numbers for 64 pixels); test MSE {mse:.5}, mean-image baseline {:.5}; \
         {} epochs in {seconds:.1} s",
        ae.code_shape(),
        ae.code_shape().iter().product::<usize>(),
        mean_image_mse(&train, &test),
        fit_config.epochs
    );
    let x = test.subset(&(0..16).collect::<Vec<_>>())?.tensors(&dev)?.x;
    let recon: Vec<Vec<f32>> = ae.reconstruct(&x)?.to_vec2()?;
    let grid: Vec<Vec<f32>> = x.to_vec2::<f32>()?.into_iter().chain(recon).collect();
    let path = out.join("conv_autoencoder_digits.png");
    save_grid_png(&path, &grid, 8, 16, 4)?;
    println!("originals over reconstructions -> {}", path.display());
    Ok(())
}
