//! Trains a dense GAN (Goodfellow et al. 2014) on the digits, with and without experience
//! replay of past fakes, judges the samples with a digits classifier (how many are
//! confidently some digit, per class: a collapsed generator covers few classes), and writes
//! a PNG grid of samples for each run.
//!
//! `cargo run --release -p deeprl-nets --example gan_digits -- [OUT_DIR] [ITERATIONS]`
//! (defaults `target/examples-out`, 3000).

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use deeprl_nets::data::digits::digits;
use deeprl_nets::data::png::save_grid_png;
use deeprl_nets::mlp::{Mlp, MlpConfig};
use deeprl_nets::models::gan::FakeReplay;
use deeprl_nets::models::{Gan, GanConfig};
use deeprl_nets::optim::{AdamConfig, OptimizerConfig};
use deeprl_nets::train::{fit, Classifier, FitConfig, FitHooks};
use rand::SeedableRng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(args.next().unwrap_or_else(|| "target/examples-out".into()));
    let iters: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3000);
    let dev = Device::Cpu;
    let (train, _) = digits()?.split(0.2, 0)?;
    let adam = |lr, b1| {
        OptimizerConfig::Adam(AdamConfig { lr, betas: (b1, 0.999), ..AdamConfig::default() })
    };

    let vm = VarMap::new();
    let judge = Classifier::new(
        Mlp::seeded(&MlpConfig::new(vec![64, 128, 10]), &vm, "", DType::F32, &dev, 0)?,
        64,
        10,
    );
    fit(
        &judge,
        &vm,
        &train,
        None,
        &FitConfig::new(30, 32, 0, adam(3e-3, 0.9)),
        FitHooks::default(),
    )?;

    for (name, replay) in
        [("plain", None), ("replay", Some(FakeReplay { capacity: 256, fraction: 0.5 }))]
    {
        let config = GanConfig {
            latent: 16,
            data_dim: 64,
            generator_hidden: vec![128],
            discriminator_hidden: vec![128],
            generator_optimizer: adam(1e-3, 0.5),
            discriminator_optimizer: adam(1e-3, 0.5),
            replay,
        };
        let mut gan = Gan::seeded(&config, &VarMap::new(), &dev, 1)?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let (mut x, mut l) = (Vec::new(), Vec::new());
        let mut done = 0;
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
                        "{name}: iteration {done}: D loss {:.3}, G loss {:.3}",
                        s.discriminator_loss, s.generator_loss
                    );
                }
                if done == iters {
                    break 'outer;
                }
            }
        }
        let fake = gan.generate(1000, &dev)?.detach();
        let p: Vec<Vec<f32>> = candle_nn::ops::softmax(&judge.logits(&fake)?, 1)?.to_vec2()?;
        let mut hist = [0usize; 10];
        for row in &p {
            let (c, m) = row
                .iter()
                .enumerate()
                .fold((0, 0.0f32), |a, (i, &v)| if v > a.1 { (i, v) } else { a });
            if m > 0.9 {
                hist[c] += 1;
            }
        }
        println!("{name}: of 1000 samples, confidently classified per digit {hist:?}");
        let samples: Vec<Vec<f32>> = fake.narrow(0, 0, 64)?.to_vec2()?;
        let path = out.join(format!("gan_samples_{name}.png"));
        save_grid_png(&path, &samples, 8, 8, 4)?;
        println!("{name}: samples -> {}", path.display());
    }
    Ok(())
}
