//! Convolutional and recurrent generative models on the digits: the convolutional and the
//! recurrent autoencoder reconstruct far better than the mean image, their gradients match
//! finite differences, padded sequences encode as the unpadded ones; the DCGAN trains with
//! the dense GAN's iteration (the frozen discriminator stays put, batch norm samples in
//! evaluation mode) and its samples move towards real digits.

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::VarMap;
use deeprl_nets::data::digits::digits;
use deeprl_nets::data::Dataset;
use deeprl_nets::gradcheck::check_gradients;
use deeprl_nets::mlp::Activation;
use deeprl_nets::models::conv_autoencoder::{ConvAutoencoder, ConvAutoencoderConfig};
use deeprl_nets::models::dcgan::{Dcgan, DcganConfig};
use deeprl_nets::models::gan::{FakeReplay, GanNetworks};
use deeprl_nets::models::recurrent_autoencoder::{
    RecurrentAutoencoder, RecurrentAutoencoderConfig, RecurrentCell,
};
use deeprl_nets::optim::{AdamConfig, OptimizerConfig};
use deeprl_nets::train::{evaluate, fit, FitConfig, FitHooks};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CPU: Device = Device::Cpu;

fn adam(lr: f64) -> OptimizerConfig {
    OptimizerConfig::Adam(AdamConfig { lr, ..AdamConfig::default() })
}

fn split() -> (Dataset, Dataset) {
    digits().unwrap().split(0.2, 0).unwrap()
}

/// The squared error per pixel of predicting `train`'s mean image for every row of `test`.
fn mean_image_mse(train: &Dataset, test: &Dataset) -> f64 {
    let d = train.dim();
    let mut mean = vec![0.0f64; d];
    for i in 0..train.len() {
        mean.iter_mut().zip(train.row(i)).for_each(|(m, &x)| *m += x as f64);
    }
    mean.iter_mut().for_each(|m| *m /= train.len() as f64);
    let sq: f64 = (0..test.len())
        .flat_map(|i| test.row(i).iter().zip(&mean).map(|(&x, m)| (x as f64 - m).powi(2)))
        .sum();
    sq / (test.len() * d) as f64
}

/// Uniform(-1, 1) values from a seeded generator, f64.
fn rand_t(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| 2.0 * rng.random::<f64>() - 1.0).collect();
    Tensor::from_vec(v, shape, &CPU).unwrap()
}

/// Central differences against the backward pass for every variable of `vm`, on
/// `sum(f() * U)` with a fixed random `U`.
fn gradcheck(vm: &VarMap, f: impl Fn() -> Result<Tensor>) {
    let vars: Vec<Var> = vm.all_vars();
    assert!(!vars.is_empty());
    let upstream = rand_t(f().unwrap().dims(), 999);
    let report = check_gradients(&vars, || f()?.mul(&upstream), 1e-6, 1e-7, 1e-5).unwrap();
    assert!(report.passed(), "{report:?}");
}

fn values(vars: &[Var]) -> Vec<Vec<f32>> {
    vars.iter().map(|v| v.flatten_all().unwrap().to_vec1().unwrap()).collect()
}

// ---------------------------------------------------------------- convolutional autoencoder

#[test]
fn conv_autoencoder_reconstructs_digits_far_below_the_mean_image() {
    let (train, test) = split();
    let config = ConvAutoencoderConfig {
        code_dim: Some(16),
        ..ConvAutoencoderConfig::new([1, 8, 8], vec![16, 32])
    };
    let vm = VarMap::new();
    let ae = ConvAutoencoder::seeded(&config, &vm, DType::F32, &CPU, 0).unwrap();
    let start = std::time::Instant::now();
    fit(&ae, &vm, &train, None, &FitConfig::new(10, 32, 0, adam(3e-3)), FitHooks::default())
        .unwrap();
    let mse = evaluate(&ae, &test, 256, 1, &CPU).unwrap().loss;
    let baseline = mean_image_mse(&train, &test);
    println!(
        "conv AE, code 16, 10 epochs ({:.1} s): test MSE {mse:.5}, mean image {baseline:.5}",
        start.elapsed().as_secs_f64()
    );
    // Measured over seeds 0..=3 (model and batch order): 0.015 to 0.018 after 10 epochs
    // (0.0074 after 40, the example), against a baseline of 0.0736.
    assert!(mse < 0.3 * baseline, "test MSE {mse} vs mean-image {baseline}");
}

#[test]
fn conv_autoencoder_shapes_and_errors() {
    let plain = ConvAutoencoderConfig::new([1, 8, 8], vec![4, 6]);
    let ae = ConvAutoencoder::seeded(&plain, &VarMap::new(), DType::F32, &CPU, 0).unwrap();
    let images = rand_t(&[3, 1, 8, 8], 1).to_dtype(DType::F32).unwrap();
    let flat = images.reshape((3, 64)).unwrap();
    assert_eq!(ae.code_shape(), [6, 2, 2]);
    assert_eq!(ae.encode(&images).unwrap().dims(), [3, 6, 2, 2]);
    assert_eq!(ae.reconstruct(&images).unwrap().dims(), [3, 1, 8, 8]);
    assert_eq!(ae.reconstruct(&flat).unwrap().dims(), [3, 64]);
    // Flat and image layouts give the same numbers.
    let a: Vec<f32> = ae.reconstruct(&flat).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = ae.reconstruct(&images).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(a, b);
    // The sigmoid output lies in (0, 1).
    assert!(a.iter().all(|&v| v > 0.0 && v < 1.0));
    let dense = ConvAutoencoderConfig { code_dim: Some(5), ..plain.clone() };
    let ae = ConvAutoencoder::seeded(&dense, &VarMap::new(), DType::F32, &CPU, 0).unwrap();
    assert_eq!(ae.encode(&flat).unwrap().dims(), [3, 5]);
    for bad in [[3, 63].as_slice(), &[3, 1, 8, 7], &[3, 2, 8, 8], &[0, 64], &[64]] {
        let x = Tensor::zeros(bad, DType::F32, &CPU).unwrap();
        let e = ae.reconstruct(&x).unwrap_err().to_string();
        assert!(
            e.contains("ConvAutoencoder")
                && e.contains(&format!("{bad:?}"))
                && e.contains("[N, 1, 8, 8] or flat [N, 64]"),
            "{e}"
        );
    }
    let e = ae.decode(&Tensor::zeros((2, 4), DType::F32, &CPU).unwrap()).unwrap_err().to_string();
    assert!(e.contains("ConvAutoencoder") && e.contains("code") && e.contains("[N, 5]"), "{e}");
    // A data set of other rows is refused before training starts.
    let wrong = Dataset::new(vec![0.0; 2 * 63], 63, None).unwrap();
    let e = fit(
        &ae,
        &VarMap::new(),
        &wrong,
        None,
        &FitConfig::new(1, 2, 0, adam(1e-3)),
        FitHooks::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("63") && e.contains("64"), "{e}");
}

#[test]
fn conv_autoencoder_gradients_match_finite_differences() {
    // f64, tanh (no kinks), a dense code and a 5x5 image (odd sides: output_padding 0).
    for (side, code_dim) in [(5, Some(3)), (4, None)] {
        let config = ConvAutoencoderConfig {
            code_dim,
            activation: Activation::Tanh,
            ..ConvAutoencoderConfig::new([2, side, side], vec![3])
        };
        let vm = VarMap::new();
        let ae = ConvAutoencoder::seeded(&config, &vm, DType::F64, &CPU, 3).unwrap();
        let x = rand_t(&[2, 2, side, side], 4);
        gradcheck(&vm, || ae.reconstruct(&x));
    }
}

#[test]
fn conv_autoencoder_is_reproducible_from_its_seed() {
    let config = ConvAutoencoderConfig::new([1, 8, 8], vec![4]);
    let build = |seed| {
        let vm = VarMap::new();
        let ae = ConvAutoencoder::seeded(&config, &vm, DType::F32, &CPU, seed).unwrap();
        let x = rand_t(&[2, 64], 5).to_dtype(DType::F32).unwrap();
        ae.reconstruct(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    assert_eq!(build(7), build(7));
    assert_ne!(build(7), build(8));
}

// ---------------------------------------------------------------- recurrent autoencoder

#[test]
fn recurrent_autoencoder_reconstructs_digit_rows_far_below_the_mean_image() {
    let (train, test) = split();
    // Each digit is a sequence of 8 rows of 8 pixels; the code is the LSTM's 32 hidden units.
    let config = RecurrentAutoencoderConfig::new(8, 8, 32);
    let vm = VarMap::new();
    let ae = RecurrentAutoencoder::seeded(&config, &vm, DType::F32, &CPU, 0).unwrap();
    let start = std::time::Instant::now();
    fit(&ae, &vm, &train, None, &FitConfig::new(40, 32, 0, adam(1e-2)), FitHooks::default())
        .unwrap();
    let mse = evaluate(&ae, &test, 256, 1, &CPU).unwrap().loss;
    let baseline = mean_image_mse(&train, &test);
    println!(
        "recurrent AE, LSTM 32, 40 epochs ({:.1} s): test MSE {mse:.5}, mean image {baseline:.5}",
        start.elapsed().as_secs_f64()
    );
    // Measured over seeds 0..=3: 0.011 to 0.014 (the loss stays near the baseline for the
    // first ~10 epochs, while the decoder learns the mean digit).
    assert!(mse < 0.25 * baseline, "test MSE {mse} vs mean-image {baseline}");
    let x = test.subset(&[0, 1, 2]).unwrap().tensors(&CPU).unwrap().x.reshape((3, 8, 8)).unwrap();
    assert_eq!(ae.encode(&x).unwrap().dims(), [3, 32]);
    assert_eq!(ae.decode(&ae.encode(&x).unwrap(), 5).unwrap().dims(), [3, 5, 8]);
}

#[test]
fn recurrent_autoencoder_masks_padded_steps() {
    for cell in [RecurrentCell::Lstm, RecurrentCell::Gru] {
        let config = RecurrentAutoencoderConfig {
            cell,
            num_layers: 2,
            code_dim: Some(4),
            ..RecurrentAutoencoderConfig::new(3, 5, 6)
        };
        let ae =
            RecurrentAutoencoder::seeded(&config, &VarMap::new(), DType::F32, &CPU, 1).unwrap();
        let x = rand_t(&[2, 5, 3], 2).to_dtype(DType::F32).unwrap();
        let lengths = [5, 3];
        // The second sequence, cut to its 3 valid steps, gives the same code alone.
        let short = x.narrow(0, 1, 1).unwrap().narrow(1, 0, 3).unwrap().contiguous().unwrap();
        let alone: Vec<f32> = ae.encode(&short).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let codes: Vec<Vec<f32>> = ae.encode_masked(&x, Some(&lengths)).unwrap().to_vec2().unwrap();
        let diff = alone.iter().zip(&codes[1]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(diff < 1e-5, "{cell:?}: padded code differs by {diff}");
        // Padded steps of the reconstruction are zero, and the loss ignores what they hold.
        let r: Vec<Vec<Vec<f32>>> =
            ae.reconstruct_masked(&x, Some(&lengths)).unwrap().to_vec3().unwrap();
        assert!(r[1][3..].iter().flatten().all(|&v| v == 0.0) && r[1][2].iter().all(|&v| v != 0.0));
        let loss = |x: &Tensor| -> f32 {
            ae.reconstruction_loss(x, Some(&lengths)).unwrap().to_scalar().unwrap()
        };
        let mut junk: Vec<Vec<Vec<f32>>> = x.to_vec3().unwrap();
        junk[1][3] = vec![9.0; 3];
        junk[1][4] = vec![-4.0; 3];
        let junk = Tensor::new(junk, &CPU).unwrap();
        assert_eq!(loss(&x), loss(&junk));
        // By hand: the squared error over the 8 valid steps, divided by 8 * 3.
        let xs: Vec<Vec<Vec<f32>>> = x.to_vec3().unwrap();
        let mut sq = 0.0f64;
        for (n, &len) in lengths.iter().enumerate() {
            for t in 0..len {
                for f in 0..3 {
                    sq += ((r[n][t][f] - xs[n][t][f]) as f64).powi(2);
                }
            }
        }
        assert!((loss(&x) as f64 - sq / 24.0).abs() < 1e-6, "{cell:?}");
        let e = ae.encode_masked(&x, Some(&[5, 6])).unwrap_err().to_string();
        assert!(e.contains("lengths[1] = 6"), "{e}");
    }
}

#[test]
fn recurrent_autoencoder_gradients_match_finite_differences() {
    for cell in [RecurrentCell::Lstm, RecurrentCell::Gru] {
        let config = RecurrentAutoencoderConfig {
            cell,
            code_dim: Some(2),
            output_activation: Activation::Tanh,
            ..RecurrentAutoencoderConfig::new(2, 3, 3)
        };
        let vm = VarMap::new();
        let ae = RecurrentAutoencoder::seeded(&config, &vm, DType::F64, &CPU, 5).unwrap();
        let x = rand_t(&[2, 3, 2], 6);
        gradcheck(&vm, || ae.reconstruct(&x));
        // Through the masked path too (the generic recurrence instead of the fused kernel).
        gradcheck(&vm, || ae.reconstruct_masked(&x, Some(&[3, 2])));
    }
}

#[test]
fn recurrent_autoencoder_rejects_bad_input() {
    let ae = RecurrentAutoencoder::seeded(
        &RecurrentAutoencoderConfig::new(8, 8, 4),
        &VarMap::new(),
        DType::F32,
        &CPU,
        0,
    )
    .unwrap();
    for bad in [[2, 8, 7].as_slice(), &[2, 64], &[0, 8, 8], &[2, 0, 8]] {
        let e = ae.encode(&Tensor::zeros(bad, DType::F32, &CPU).unwrap()).unwrap_err().to_string();
        assert!(
            e.contains("RecurrentAutoencoder")
                && e.contains(&format!("{bad:?}"))
                && e.contains("[N, T, 8]"),
            "{e}"
        );
    }
    let e =
        ae.decode(&Tensor::zeros((2, 5), DType::F32, &CPU).unwrap(), 8).unwrap_err().to_string();
    assert!(e.contains("code") && e.contains("[N, 4]"), "{e}");
    let wrong = Dataset::new(vec![0.0; 2 * 60], 60, None).unwrap();
    let e = fit(
        &ae,
        &VarMap::new(),
        &wrong,
        None,
        &FitConfig::new(1, 2, 0, adam(1e-3)),
        FitHooks::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("60") && e.contains("64"), "{e}");
}

// ---------------------------------------------------------------- DCGAN

fn dcgan_config(replay: Option<FakeReplay>) -> DcganConfig {
    let opt = OptimizerConfig::Adam(AdamConfig {
        lr: 1e-3,
        betas: (0.5, 0.999),
        ..AdamConfig::default()
    });
    DcganConfig {
        latent: 16,
        image_shape: [1, 8, 8],
        generator_channels: vec![32, 16],
        discriminator_channels: vec![16, 32],
        output_activation: Activation::Sigmoid,
        leaky_slope: 0.2,
        generator_optimizer: opt,
        discriminator_optimizer: opt,
        replay,
    }
}

fn real_batch(n: usize) -> Tensor {
    let (train, _) = split();
    train.subset(&(0..n).collect::<Vec<_>>()).unwrap().tensors(&CPU).unwrap().x
}

#[test]
fn dcgan_phases_train_only_their_own_network() {
    let vm = VarMap::new();
    let mut gan = Dcgan::seeded(&dcgan_config(None), &vm, &CPU, 0).unwrap();
    let names: Vec<String> = {
        let mut n: Vec<String> = vm.data().lock().unwrap().keys().cloned().collect();
        n.sort();
        n
    };
    assert!(names.contains(&"generator.up.1.bias".into()), "{names:?}");
    assert!(names.contains(&"discriminator.bn.1.running_var".into()), "{names:?}");
    assert!(
        !names.contains(&"discriminator.bn.0.weight".into()),
        "no batch norm on the input layer"
    );
    // The generator's weights (its batch-norm statistics move whenever it runs in training).
    let gen_weights: Vec<Var> = {
        let data = vm.data().lock().unwrap();
        let mut w: Vec<(&String, &Var)> = data
            .iter()
            .filter(|(k, _)| k.starts_with("generator.") && !k.contains("running"))
            .collect();
        w.sort_by(|a, b| a.0.cmp(b.0));
        w.into_iter().map(|(_, v)| v.clone()).collect()
    };
    let real = real_batch(32);
    let (d0, g0) = (values(gan.discriminator_vars()), values(&gen_weights));
    gan.discriminator_step(&real).unwrap();
    let (d1, g1) = (values(gan.discriminator_vars()), values(&gen_weights));
    assert_ne!(d0, d1, "the discriminator step must train the discriminator");
    assert_eq!(g0, g1, "the discriminator step must not touch the generator's weights");
    gan.generator_step(32, &CPU).unwrap();
    let (d2, g2) = (values(gan.discriminator_vars()), values(&gen_weights));
    // Weights and running statistics: the frozen discriminator runs in evaluation mode.
    assert_eq!(d1, d2, "the generator step changed the discriminator");
    assert_ne!(g1, g2, "the generator step must train the generator");
    let e = gan.discriminator_step(&Tensor::zeros((4, 60), DType::F32, &CPU).unwrap()).unwrap_err();
    assert!(e.to_string().contains("[4, 60]") && e.to_string().contains("[batch, 64]"), "{e}");
}

#[test]
fn dcgan_samples_in_evaluation_mode() {
    let vm = VarMap::new();
    let mut gan = Dcgan::seeded(&dcgan_config(None), &vm, &CPU, 0).unwrap();
    // A few iterations so that the running statistics are not the initial 0 and 1.
    let real = real_batch(32);
    for _ in 0..3 {
        gan.train_step(&real).unwrap();
    }
    let stats = |vm: &VarMap| -> Vec<Vec<f32>> {
        let data = vm.data().lock().unwrap();
        let mut s: Vec<(&String, &Var)> =
            data.iter().filter(|(k, _)| k.contains("running")).collect();
        s.sort_by(|a, b| a.0.cmp(b.0));
        s.into_iter().map(|(_, v)| v.flatten_all().unwrap().to_vec1().unwrap()).collect()
    };
    let before = stats(&vm);
    let z = gan.sample_latent(6, &CPU).unwrap();
    let batch: Vec<Vec<f32>> = gan.generate_from(&z).unwrap().to_vec2().unwrap();
    assert_eq!(batch[0].len(), 64);
    // Each sample depends on its own latent vector only (running, not batch, statistics).
    for i in [0, 5] {
        let one: Vec<Vec<f32>> =
            gan.generate_from(&z.narrow(0, i, 1).unwrap()).unwrap().to_vec2().unwrap();
        let d = one[0].iter().zip(&batch[i]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(d < 1e-6, "sample {i} depends on the batch: {d}");
    }
    gan.generate(8, &CPU).unwrap();
    gan.discriminate(&real).unwrap();
    assert_eq!(before, stats(&vm), "sampling or judging changed a running statistic");
    // The generator in training mode normalises by the batch and moves its statistics.
    let train_mode: Vec<Vec<f32>> = gan.networks().generate(&z, true).unwrap().to_vec2().unwrap();
    assert!(train_mode[0].iter().zip(&batch[0]).any(|(a, b)| (a - b).abs() > 1e-3));
    assert_ne!(before, stats(&vm));
}

#[test]
fn dcgan_is_reproducible_from_its_seed() {
    let real = real_batch(16);
    let run = |seed| {
        let replay = Some(FakeReplay { capacity: 16, fraction: 0.5 });
        let mut gan = Dcgan::seeded(&dcgan_config(replay), &VarMap::new(), &CPU, seed).unwrap();
        let losses: Vec<f64> = (0..3)
            .flat_map(|_| {
                let s = gan.train_step(&real).unwrap();
                [s.discriminator_loss, s.generator_loss]
            })
            .collect();
        let samples: Vec<f32> =
            gan.generate(4, &CPU).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        (losses, samples)
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3).1, run(4).1);
}

#[test]
fn dcgan_config_errors_name_the_field() {
    let base = dcgan_config(None);
    for (config, field) in [
        (DcganConfig { latent: 0, ..base.clone() }, "latent"),
        (DcganConfig { image_shape: [1, 6, 8], ..base.clone() }, "image_shape"),
        (DcganConfig { generator_channels: vec![], ..base.clone() }, "generator_channels"),
        (
            DcganConfig { discriminator_channels: vec![8, 0], ..base.clone() },
            "discriminator_channels",
        ),
        (
            DcganConfig { discriminator_channels: vec![4, 4, 4, 4], ..base.clone() },
            "discriminator_channels",
        ),
        (DcganConfig { leaky_slope: f64::NAN, ..base.clone() }, "leaky_slope"),
    ] {
        let e = Dcgan::seeded(&config, &VarMap::new(), &CPU, 0).unwrap_err().to_string();
        assert!(e.contains("DCGAN") && e.contains(field), "{field}: {e}");
    }
    let bad_replay =
        DcganConfig { replay: Some(FakeReplay { capacity: 0, fraction: 0.5 }), ..base };
    let e = Dcgan::seeded(&bad_replay, &VarMap::new(), &CPU, 0).unwrap_err().to_string();
    assert!(e.contains("replay"), "{e}");
}

/// The mean over `samples` of the squared distance per pixel to the nearest row of `data`.
fn nearest_distance(samples: &[Vec<f32>], data: &Dataset) -> f64 {
    let total: f64 = samples
        .iter()
        .map(|s| {
            (0..data.len())
                .map(|i| s.iter().zip(data.row(i)).map(|(a, b)| ((a - b) as f64).powi(2)).sum())
                .fold(f64::INFINITY, f64::min)
        })
        .sum();
    total / (samples.len() * data.dim()) as f64
}

#[test]
fn dcgan_samples_move_towards_real_digits() {
    let (train, _) = split();
    let replay = FakeReplay { capacity: 128, fraction: 0.5 };
    let mut gan = Dcgan::seeded(&dcgan_config(Some(replay)), &VarMap::new(), &CPU, 1).unwrap();
    // The untrained generator, in evaluation mode and with batch statistics (the latter is
    // what a generator whose weights never train would give once its running statistics
    // caught up).
    let z = gan.sample_latent(300, &CPU).unwrap();
    let untrained_eval: Vec<Vec<f32>> = gan.generate_from(&z).unwrap().to_vec2().unwrap();
    let untrained_batch: Vec<Vec<f32>> =
        gan.networks().generate(&z, true).unwrap().to_vec2().unwrap();
    let start = std::time::Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (mut x, mut l) = (Vec::new(), Vec::new());
    let (mut done, iters) = (0, 300);
    let mut losses = Vec::new();
    while done < iters {
        let mut batches = train.batches(32, Some(&mut rng)).unwrap();
        while let Some(n) = batches.next_into(&mut x, &mut l) {
            if n < 32 || done == iters {
                continue;
            }
            losses.push(gan.train_step(&Tensor::from_slice(&x, (n, 64), &CPU).unwrap()).unwrap());
            done += 1;
        }
    }
    assert!(losses
        .iter()
        .all(|s| s.discriminator_loss.is_finite() && s.generator_loss.is_finite()));
    assert_eq!(gan.replay_len(), 128);
    let trained: Vec<Vec<f32>> = gan.generate_from(&z).unwrap().to_vec2().unwrap();
    let (before_eval, before_batch, after) = (
        nearest_distance(&untrained_eval, &train),
        nearest_distance(&untrained_batch, &train),
        nearest_distance(&trained, &train),
    );
    let last = losses[losses.len() - 1];
    println!(
        "DCGAN, {iters} iterations ({:.1} s): nearest-digit distance {after:.4}, untrained \
         {before_eval:.4} (eval) / {before_batch:.4} (batch statistics); last losses D {:.3}, G {:.3}",
        start.elapsed().as_secs_f64(),
        last.discriminator_loss,
        last.generator_loss
    );
    // Measured over generator seeds 1..=4: 0.039 to 0.046 after 300 iterations, from 0.145;
    // with the generator step left out (discriminator steps only) it stays at 0.1445.
    assert!(
        after < 0.5 * before_eval.min(before_batch),
        "{after} vs {before_eval}, {before_batch}"
    );
}
