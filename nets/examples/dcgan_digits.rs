//! Trains a DCGAN (Radford et al. 2016) on the digits with experience replay of past fakes:
//! the generator projects 16 latent numbers onto 64x2x2 feature maps and doubles them twice
//! with transposed convolutions and batch norm (32x4x4, then the 1x8x8 image); the
//! discriminator halves them twice with strided convolutions (32x4x4, 64x2x2) before its
//! logit. Prints the losses, how close the samples come to real digits (the mean squared
//! distance to the nearest training digit, against the untrained generator's) and what a
//! digits classifier makes of them, and writes a PNG grid of 64 samples.
//!
//! `cargo run --release -p deeprl-nets --example dcgan_digits -- [OUT_DIR] [ITERATIONS]`
//! (defaults: the workspace's `docs/`, which holds the picture the README shows; 2000).

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use deeprl_nets::data::digits::digits;
use deeprl_nets::data::png::save_grid_png;
use deeprl_nets::data::Dataset;
use deeprl_nets::mlp::{Activation, Mlp, MlpConfig};
use deeprl_nets::models::dcgan::{Dcgan, DcganConfig};
use deeprl_nets::models::gan::FakeReplay;
use deeprl_nets::optim::{AdamConfig, OptimizerConfig};
use deeprl_nets::train::{fit, Classifier, FitConfig, FitHooks};
use rand::SeedableRng;

/// The mean over `samples` of the squared distance (per pixel) to the nearest row of `data`.
fn nearest_distance(samples: &[Vec<f32>], data: &Dataset) -> f64 {
    let total: f64 = samples
        .iter()
        .map(|s| {
            (0..data.len())
                .map(|i| {
                    s.iter().zip(data.row(i)).map(|(a, b)| (a - b) as f64 * (a - b) as f64).sum()
                })
                .fold(f64::INFINITY, f64::min)
        })
        .sum();
    total / (samples.len() * data.dim()) as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(
        args.next().unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../docs").into()),
    );
    let iters: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2000);
    let dev = Device::Cpu;
    let (train, _) = digits()?.split(0.2, 0)?;
    let adam = |lr, b1| {
        OptimizerConfig::Adam(AdamConfig { lr, betas: (b1, 0.999), ..AdamConfig::default() })
    };
    let config = DcganConfig {
        latent: 16,
        image_shape: [1, 8, 8],
        generator_channels: vec![64, 32],
        discriminator_channels: vec![32, 64],
        output_activation: Activation::Sigmoid,
        leaky_slope: 0.2,
        generator_optimizer: adam(1e-3, 0.5),
        discriminator_optimizer: adam(1e-3, 0.5),
        replay: Some(FakeReplay { capacity: 256, fraction: 0.5 }),
    };
    let mut gan = Dcgan::seeded(&config, &VarMap::new(), &dev, 1)?;
    let untrained: Vec<Vec<f32>> = gan.generate(500, &dev)?.to_vec2()?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let (mut x, mut l) = (Vec::new(), Vec::new());
    let (mut done, start) = (0, Instant::now());
    'outer: loop {
        let mut batches = train.batches(32, Some(&mut rng))?;
        while let Some(n) = batches.next_into(&mut x, &mut l) {
            if n < 32 {
                continue;
            }
            let s = gan.train_step(&Tensor::from_slice(&x, (n, 64), &dev)?)?;
            done += 1;
            if done % 500 == 0 {
                println!(
                    "iteration {done}: D loss {:.3}, G loss {:.3}",
                    s.discriminator_loss, s.generator_loss
                );
            }
            if done == iters {
                break 'outer;
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let fake = gan.generate(1000, &dev)?.detach();
    let samples: Vec<Vec<f32>> = fake.to_vec2()?;
    println!(
        "{iters} iterations in {seconds:.1} s; squared distance per pixel to the nearest \
         training digit: {:.4} (untrained generator {:.4})",
        nearest_distance(&samples[..500], &train),
        nearest_distance(&untrained, &train)
    );

    let vm = VarMap::new();
    let judge = Classifier::new(
        Mlp::seeded(&MlpConfig::new(vec![64, 128, 10]), &vm, "", DType::F32, &dev, 0)?,
        64,
        10,
    );
    let judge_fit = FitConfig::new(30, 32, 0, adam(3e-3, 0.9));
    fit(&judge, &vm, &train, None, &judge_fit, FitHooks::default())?;
    let p: Vec<Vec<f32>> = candle_nn::ops::softmax(&judge.logits(&fake)?, 1)?.to_vec2()?;
    let mut hist = [0usize; 10];
    for row in &p {
        let (c, m) =
            row.iter().enumerate().fold((0, 0.0f32), |a, (i, &v)| if v > a.1 { (i, v) } else { a });
        if m > 0.9 {
            hist[c] += 1;
        }
    }
    println!("of 1000 samples, confidently (p > 0.9) classified per digit: {hist:?}");
    let path = out.join("dcgan_digits.png");
    save_grid_png(&path, &samples[..64], 8, 8, 4)?;
    println!("samples -> {}", path.display());
    Ok(())
}
