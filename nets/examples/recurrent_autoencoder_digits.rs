//! Trains a recurrent (LSTM) autoencoder on the digits read as sequences of 8 rows of 8
//! pixels: the encoder reads the rows into its last hidden state (the code), the decoder
//! writes 8 rows back from it. Prints the test reconstruction error next to the mean-image
//! baseline and writes a PNG grid: 16 test digits above their reconstructions.
//!
//! `cargo run --release -p deeprl-nets --example recurrent_autoencoder_digits -- [OUT_DIR]`
//! (default: the workspace's `docs/`, which holds the picture the README shows).

use std::time::Instant;

use candle_core::{DType, Device};
use candle_nn::VarMap;
use deeprl_nets::data::digits::digits;
use deeprl_nets::data::png::save_grid_png;
use deeprl_nets::data::Dataset;
use deeprl_nets::models::recurrent_autoencoder::{
    RecurrentAutoencoder, RecurrentAutoencoderConfig,
};
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
    // 8 steps (rows) of 8 features (pixels); the encoder's 64 hidden units are mapped to a
    // code of 16 numbers.
    let config = RecurrentAutoencoderConfig {
        code_dim: Some(16),
        ..RecurrentAutoencoderConfig::new(8, 8, 64)
    };
    let vm = VarMap::new();
    let ae = RecurrentAutoencoder::seeded(&config, &vm, DType::F32, &dev, 0)?;
    let fit_config = FitConfig::new(
        100,
        32,
        0,
        OptimizerConfig::Adam(AdamConfig { lr: 5e-3, ..AdamConfig::default() }),
    );
    let start = Instant::now();
    let report = fit(&ae, &vm, &train, Some(&test), &fit_config, FitHooks::default())?;
    let seconds = start.elapsed().as_secs_f64();
    for s in report.history.iter().step_by(10) {
        println!(
            "epoch {:2}: train MSE {:.5}, test MSE {:.5}",
            s.epoch,
            s.train.loss,
            s.valid.map_or(f64::NAN, |v| v.loss)
        );
    }
    let mse = evaluate(&ae, &test, 256, 1, &dev)?.loss;
    println!(
        "code of {} numbers; test MSE {mse:.5}, mean-image baseline {:.5}; {} epochs in \
         {seconds:.1} s",
        config.code_size(),
        mean_image_mse(&train, &test),
        fit_config.epochs
    );
    let x = test.subset(&(0..16).collect::<Vec<_>>())?.tensors(&dev)?.x;
    let recon = ae.reconstruct(&x.reshape((16, 8, 8))?)?.reshape((16, 64))?;
    let grid: Vec<Vec<f32>> =
        x.to_vec2::<f32>()?.into_iter().chain(recon.to_vec2::<f32>()?).collect();
    let path = out.join("recurrent_autoencoder_digits.png");
    save_grid_png(&path, &grid, 8, 16, 4)?;
    println!("originals over reconstructions -> {}", path.display());
    Ok(())
}
