//! Generative and unsupervised models on the digits: the linear autoencoder finds PCA's
//! subspace, tied weights stay tied, and the three uses of an autoencoder (feature
//! extraction, denoising, reconstruction as a regulariser); the VAE; the GAN.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use deeprl_nets::data::digits::digits;
use deeprl_nets::data::Dataset;
use deeprl_nets::mlp::{Activation, Mlp, MlpConfig};
use deeprl_nets::models::{Autoencoder, AutoencoderConfig, InputNoise, ReconClassifier, Sparsity};
use deeprl_nets::optim::{AdamConfig, OptimizerConfig};
use deeprl_nets::schedule::PlateauConfig;
use deeprl_nets::train::{evaluate, fit, Classifier, FitConfig, FitHooks};

mod common_generative;
use common_generative::*;

fn cpu() -> Device {
    Device::Cpu
}

fn adam(lr: f64) -> OptimizerConfig {
    OptimizerConfig::Adam(AdamConfig { lr, ..AdamConfig::default() })
}

fn split() -> (Dataset, Dataset) {
    digits().unwrap().split(0.2, 0).unwrap()
}

#[test]
fn linear_autoencoder_learns_the_pca_subspace() {
    let (train, _) = split();
    let k = 4;
    let vm = VarMap::new();
    let ae = Autoencoder::seeded(&AutoencoderConfig::linear(64, k), &vm, &cpu(), 0).unwrap();
    // Mini-batch Adam gets close fast, but its gradient noise keeps the weakest direction
    // (eigengap lambda_4 - lambda_5) degrees off; full-batch Adam then converges.
    let cfg = FitConfig {
        plateau: Some(PlateauConfig { patience: 2, factor: 0.3, ..PlateauConfig::default() }),
        ..FitConfig::new(60, 64, 0, adam(1e-2))
    };
    fit(&ae, &vm, &train, None, &cfg, FitHooks::default()).unwrap();
    let cfg = FitConfig::new(400, train.len(), 0, adam(2e-3));
    let report = fit(&ae, &vm, &train, None, &cfg, FitHooks::default()).unwrap();

    // PCA by a Jacobi eigen-decomposition of the 64x64 covariance.
    let (n, d) = (train.len(), train.dim());
    let mean: Vec<f64> =
        (0..d).map(|j| (0..n).map(|i| train.row(i)[j] as f64).sum::<f64>() / n as f64).collect();
    let mut cov = vec![0.0; d * d];
    for i in 0..n {
        let r = train.row(i);
        for a in 0..d {
            for b in 0..d {
                cov[a * d + b] += (r[a] as f64 - mean[a]) * (r[b] as f64 - mean[b]) / n as f64;
                // population covariance, as the MSE averages over n
            }
        }
    }
    let (values, vectors) = jacobi_eigen(&cov, d);
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let top: Vec<Vec<f64>> =
        order[..k].iter().map(|&c| (0..d).map(|r| vectors[r * d + c]).collect()).collect();
    // The optimal k-dim reconstruction error is the sum of the remaining eigenvalues / d
    // (the loss is a mean over pixels).
    let optimal: f64 = order[k..].iter().map(|&c| values[c]).sum::<f64>() / d as f64;

    // The decoder's columns span the learned subspace.
    let w: Vec<Vec<f32>> = ae.decoder_weights().unwrap()[0].to_vec2().unwrap(); // [64, k]
    let cols: Vec<Vec<f64>> = (0..k).map(|c| (0..d).map(|r| w[r][c] as f64).collect()).collect();
    let cosines = principal_cosines(&cols, &top);
    let angles: Vec<f64> = cosines.iter().map(|c| c.clamp(-1.0, 1.0).acos().to_degrees()).collect();
    println!(
        "linear AE k={k}: eigenvalues {:.4?}, principal angles {angles:.3?} deg, loss {:.6} vs PCA optimum {optimal:.6}",
        order[..k + 1].iter().map(|&c| values[c]).collect::<Vec<_>>(),
        report.history.last().unwrap().train.loss
    );
    assert!(angles.iter().all(|&a| a < 3.0), "principal angles {angles:?}");
    let full = deeprl_nets::train::evaluate(&ae, &train, 512, 1, &cpu()).unwrap().loss;
    assert!(full >= optimal * (1.0 - 1e-4) && full < optimal * 1.002, "{full} vs {optimal}");
}

#[test]
fn tied_weights_stay_tied_through_training() {
    let (train, test) = split();
    let config = AutoencoderConfig {
        sizes: vec![64, 32, 16],
        activation: Activation::Relu,
        code_activation: Activation::Relu,
        output_activation: Activation::Sigmoid,
        tied: true,
        input_noise: None,
        sparsity: None,
    };
    let vm = VarMap::new();
    let ae = Autoencoder::seeded(&config, &vm, &cpu(), 1).unwrap();
    let before = evaluate(&ae, &test, 512, 1, &cpu()).unwrap().loss;
    fit(&ae, &vm, &train, None, &FitConfig::new(10, 32, 0, adam(3e-3)), FitHooks::default())
        .unwrap();
    let after = evaluate(&ae, &test, 512, 1, &cpu()).unwrap().loss;
    assert!(after < before / 2.0, "{before} -> {after}");
    let enc = ae.encoder_weights();
    let dec = ae.decoder_weights().unwrap();
    for (k, d) in dec.iter().enumerate() {
        let e_t: Vec<Vec<f32>> = enc[enc.len() - 1 - k].t().unwrap().to_vec2().unwrap();
        assert_eq!(
            d.to_vec2::<f32>().unwrap(),
            e_t,
            "decoder layer {k} is not the encoder's transpose"
        );
    }
    // Only the encoder's weights and the decoder's biases exist.
    let mut names: Vec<String> = vm.data().lock().unwrap().keys().cloned().collect();
    names.sort();
    assert_eq!(
        names,
        ["dec.0.bias", "dec.1.bias", "enc.0.bias", "enc.0.weight", "enc.2.bias", "enc.2.weight"]
    );
}

/// The codes of `data` under `ae`, with the labels.
fn codes(ae: &Autoencoder, data: &Dataset) -> Dataset {
    let t = data.tensors(&cpu()).unwrap();
    let h: Vec<f32> = ae.encode(&t.x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    Dataset::new(h, ae.code_dim(), data.labels().map(<[u32]>::to_vec)).unwrap()
}

#[test]
fn features_from_a_sparse_autoencoder_classify_digits() {
    let (train, test) = split();
    let config = AutoencoderConfig {
        sizes: vec![64, 32],
        activation: Activation::Relu,
        code_activation: Activation::Sigmoid,
        output_activation: Activation::Sigmoid,
        tied: false,
        input_noise: None,
        sparsity: Some(Sparsity::Kl { target: 0.1, weight: 0.05 }),
    };
    let vm = VarMap::new();
    let ae = Autoencoder::seeded(&config, &vm, &cpu(), 2).unwrap();
    fit(&ae, &vm, &train, None, &FitConfig::new(30, 32, 0, adam(3e-3)), FitHooks::default())
        .unwrap();
    let (ctrain, ctest) = (codes(&ae, &train), codes(&ae, &test));
    let mean_act = ctest.features().iter().sum::<f32>() / ctest.features().len() as f32;
    // A linear classifier (softmax regression) on the 32-dim codes.
    let vm2 = VarMap::new();
    let clf = Classifier::new(
        Mlp::seeded(&MlpConfig::new(vec![32, 10]), &vm2, "", DType::F32, &cpu(), 0).unwrap(),
        32,
        10,
    );
    fit(&clf, &vm2, &ctrain, None, &FitConfig::new(60, 32, 0, adam(1e-2)), FitHooks::default())
        .unwrap();
    let acc = evaluate(&clf, &ctest, 512, 1, &cpu()).unwrap().accuracy.unwrap();
    println!("sparse AE 64-32 (KL target 0.1): mean code activation {mean_act:.3}; softmax regression on codes: test accuracy {acc:.4}");
    assert!(mean_act < 0.25, "{mean_act}");
    // Measured over autoencoder seeds 2..=5: 0.905 to 0.925.
    assert!(acc >= 0.88, "{acc}");
}

fn psnr(a: &[f32], b: &[f32]) -> f64 {
    let mse = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>() / a.len() as f64;
    10.0 * (1.0 / mse).log10()
}

#[test]
fn denoising_autoencoder_raises_psnr() {
    let (train, test) = split();
    let std = 0.25;
    let config = AutoencoderConfig {
        sizes: vec![64, 128, 32],
        activation: Activation::Relu,
        code_activation: Activation::Relu,
        output_activation: Activation::Sigmoid,
        tied: false,
        input_noise: Some(InputNoise::Gaussian { std }),
        sparsity: None,
    };
    let vm = VarMap::new();
    let ae = Autoencoder::seeded(&config, &vm, &cpu(), 3).unwrap();
    fit(&ae, &vm, &train, None, &FitConfig::new(30, 32, 0, adam(3e-3)), FitHooks::default())
        .unwrap();
    let clean = test.tensors(&cpu()).unwrap().x;
    let noisy = ae.corrupt(&clean).unwrap();
    let denoised = ae.reconstruct(&noisy).unwrap();
    let v = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let (before, after) = (psnr(&v(&noisy), &v(&clean)), psnr(&v(&denoised), &v(&clean)));
    println!("denoising AE, Gaussian noise std {std}: PSNR {before:.2} dB -> {after:.2} dB");
    assert!(after > before + 3.0, "{before} -> {after}");
    // Evaluation adds no noise: the reconstruction of a clean batch is deterministic.
    assert_eq!(v(&ae.reconstruct(&clean).unwrap()), v(&ae.reconstruct(&clean).unwrap()));
}

#[test]
fn reconstruction_as_a_regulariser_with_few_labels() {
    let (train, test) = split();
    let labelled = train.subset(&(0..100).collect::<Vec<_>>()).unwrap();
    let run = |weight: f64| {
        let config = AutoencoderConfig {
            sizes: vec![64, 64, 32],
            activation: Activation::Relu,
            code_activation: Activation::Relu,
            output_activation: Activation::Sigmoid,
            tied: false,
            input_noise: None,
            sparsity: None,
        };
        let vm = VarMap::new();
        let model = ReconClassifier {
            autoencoder: Autoencoder::seeded(&config, &vm, &cpu(), 4).unwrap(),
            head: Mlp::seeded(&MlpConfig::new(vec![32, 10]), &vm, "head", DType::F32, &cpu(), 5)
                .unwrap(),
            num_classes: 10,
            weight,
        };
        fit(
            &model,
            &vm,
            &labelled,
            None,
            &FitConfig::new(150, 20, 0, adam(1e-3)),
            FitHooks::default(),
        )
        .unwrap();
        let m = evaluate(&model, &test, 512, 1, &cpu()).unwrap();
        // The test loss includes the reconstruction term; accuracy is comparable.
        m.accuracy.unwrap()
    };
    let (without, with) = (run(0.0), run(5.0));
    println!("100 labelled digits: test accuracy without reconstruction {without:.4}, with (weight 5) {with:.4}");
    assert!(without > 0.6 && with > 0.6, "{without} {with}");
}

#[test]
fn autoencoder_rejects_images_of_the_wrong_size() {
    let vm = VarMap::new();
    let ae = Autoencoder::seeded(&AutoencoderConfig::linear(64, 4), &vm, &cpu(), 0).unwrap();
    let small = Dataset::new(vec![0.0; 32], 16, None).unwrap();
    let e = fit(&ae, &vm, &small, None, &FitConfig::new(1, 8, 0, adam(1e-3)), FitHooks::default())
        .unwrap_err();
    assert!(e.to_string().contains("rows of 16 features, the model expects 64"), "{e}");
    let e = ae.decode(&Tensor::zeros((1, 5), DType::F32, &cpu()).unwrap()).unwrap_err().to_string();
    assert!(e.contains("[batch, 4]"), "{e}");
    let bad = AutoencoderConfig {
        input_noise: Some(InputNoise::Mask { p: 1.5 }),
        ..AutoencoderConfig::linear(64, 4)
    };
    assert!(Autoencoder::seeded(&bad, &vm, &cpu(), 0)
        .unwrap_err()
        .to_string()
        .contains("input_noise.p = 1.5"));
}

// ---------------------------------------------------------------- VAE

use deeprl_nets::models::gan::{bce_with_logits, FakeReplay};
use deeprl_nets::models::vae::gaussian_kl;
use deeprl_nets::models::{Gan, GanConfig, Vae, VaeConfig};

fn vae_config() -> VaeConfig {
    VaeConfig { input: 64, hidden: vec![128], latent: 8, activation: Activation::Relu, beta: 1.0 }
}

#[test]
fn vae_kl_matches_the_closed_form_by_hand() {
    // Row 0: mu = (1, 0), sigma^2 = (1, 4): KL = 1/2 [(1 + 1 - 1 - 0) + (4 + 0 - 1 - ln 4)].
    // Row 1: the prior itself: KL = 0.
    let mu = Tensor::new(&[[1.0f32, 0.0], [0.0, 0.0]], &cpu()).unwrap();
    let logvar = Tensor::new(&[[0.0f32, 4f32.ln()], [0.0, 0.0]], &cpu()).unwrap();
    let kl: Vec<f32> = gaussian_kl(&mu, &logvar).unwrap().to_vec1().unwrap();
    let expected = 0.5 * (1.0 + 3.0 - 4f64.ln());
    assert!((kl[0] as f64 - expected).abs() < 1e-6, "{} vs {expected}", kl[0]);
    assert_eq!(kl[1], 0.0);
    // BCE with logits against the definition -[y log s + (1 - y) log(1 - s)].
    let logits = Tensor::new(&[[2.0f32, -1.0]], &cpu()).unwrap();
    let y = Tensor::new(&[[1.0f32, 0.25]], &cpu()).unwrap();
    let s = |x: f64| 1.0 / (1.0 + (-x).exp());
    let by_hand = (-(s(2.0).ln()) - (0.25 * s(-1.0).ln() + 0.75 * (1.0 - s(-1.0)).ln())) / 2.0;
    let got: f32 = bce_with_logits(&logits, &y).unwrap().to_scalar().unwrap();
    assert!((got as f64 - by_hand).abs() < 1e-6, "{got} vs {by_hand}");
}

#[test]
fn vae_reparameterisation_draws_from_the_coded_gaussian() {
    let vae = Vae::seeded(&vae_config(), &VarMap::new(), &cpu(), 0).unwrap();
    let n = 20_000;
    let mu = Tensor::full(1.5f32, (n, 8), &cpu()).unwrap();
    let logvar = Tensor::full(0.25f32.ln(), (n, 8), &cpu()).unwrap();
    let z = vae.reparameterize(&mu, &logvar).unwrap();
    let mean: f32 = z.mean_all().unwrap().to_scalar().unwrap();
    let var: f32 =
        z.affine(1.0, -1.5).unwrap().sqr().unwrap().mean_all().unwrap().to_scalar().unwrap();
    assert!((mean - 1.5).abs() < 0.01 && (var - 0.25).abs() < 0.01, "{mean} {var}");
}

#[test]
fn vae_loss_decreases_and_samples_look_like_images() {
    let (train, test) = split();
    let vm = VarMap::new();
    let vae = Vae::seeded(&vae_config(), &vm, &cpu(), 0).unwrap();
    let before = evaluate(&vae, &test, 512, 1, &cpu()).unwrap().loss;
    let report = fit(
        &vae,
        &vm,
        &train,
        Some(&test),
        &FitConfig::new(30, 32, 0, adam(2e-3)),
        FitHooks::default(),
    )
    .unwrap();
    let h = &report.history;
    let after = evaluate(&vae, &test, 512, 1, &cpu()).unwrap().loss;
    let t = test.tensors(&cpu()).unwrap().x;
    let (recon, kl) = vae.loss_terms(&t, false).unwrap();
    let (recon, kl) = (recon.to_scalar::<f32>().unwrap(), kl.to_scalar::<f32>().unwrap());
    println!(
        "VAE 64-128-8: test loss {before:.2} -> {after:.2} (reconstruction {recon:.2} + KL {kl:.2}); train loss epoch 1 {:.2}, epoch {} {:.2}",
        h[0].train.loss,
        h.len(),
        h[h.len() - 1].train.loss
    );
    assert!(after < 0.75 * before && h[h.len() - 1].train.loss < h[0].train.loss);
    assert!(kl > 1.0, "a collapsed posterior would have KL ~ 0: {kl}");
    let samples = vae.sample(16, &cpu()).unwrap();
    assert_eq!(samples.dims(), [16, 64]);
    let v: Vec<f32> = samples.flatten_all().unwrap().to_vec1().unwrap();
    assert!(v.iter().all(|p| (0.0..=1.0).contains(p)));
    // Samples resemble digits: their mean brightness is near the data's.
    let data_mean = test.features().iter().sum::<f32>() / test.features().len() as f32;
    let sample_mean = v.iter().sum::<f32>() / v.len() as f32;
    assert!((data_mean - sample_mean).abs() < 0.1, "{data_mean} vs {sample_mean}");
    // Same seed, same samples.
    let again = Vae::seeded(&vae_config(), &VarMap::new(), &cpu(), 5).unwrap();
    let other = Vae::seeded(&vae_config(), &VarMap::new(), &cpu(), 5).unwrap();
    assert_eq!(
        again.sample(4, &cpu()).unwrap().to_vec2::<f32>().unwrap(),
        other.sample(4, &cpu()).unwrap().to_vec2::<f32>().unwrap()
    );
    let e =
        vae.encode(&Tensor::zeros((2, 63), DType::F32, &cpu()).unwrap()).unwrap_err().to_string();
    assert!(e.contains("[batch, 64]"), "{e}");
}

// ---------------------------------------------------------------- GAN

fn gan_config(replay: Option<FakeReplay>) -> GanConfig {
    let opt = OptimizerConfig::Adam(AdamConfig {
        lr: 1e-3,
        betas: (0.5, 0.999),
        ..AdamConfig::default()
    });
    GanConfig {
        latent: 16,
        data_dim: 64,
        generator_hidden: vec![128],
        discriminator_hidden: vec![128],
        generator_optimizer: opt,
        discriminator_optimizer: opt,
        replay,
    }
}

fn values(vars: &[candle_core::Var]) -> Vec<Vec<f32>> {
    vars.iter().map(|v| v.flatten_all().unwrap().to_vec1().unwrap()).collect()
}

#[test]
fn gan_generator_step_leaves_the_discriminator_alone() {
    let (train, _) = split();
    let vm = VarMap::new();
    let mut gan = Gan::seeded(&gan_config(None), &vm, &cpu(), 0).unwrap();
    let real = train.subset(&(0..32).collect::<Vec<_>>()).unwrap().tensors(&cpu()).unwrap().x;
    let gen_vars = deeprl_nets::train::trainable_vars(&vm, &["discriminator".into()]).unwrap();
    let (d0, g0) = (values(gan.discriminator_vars()), values(&gen_vars));
    gan.discriminator_step(&real).unwrap();
    let (d1, g1) = (values(gan.discriminator_vars()), values(&gen_vars));
    assert_ne!(d0, d1, "the discriminator step must train the discriminator");
    assert_eq!(g0, g1, "the discriminator step must not touch the generator");
    gan.generator_step(32, &cpu()).unwrap();
    let (d2, g2) = (values(gan.discriminator_vars()), values(&gen_vars));
    assert_eq!(d1, d2, "the generator step changed the discriminator");
    assert_ne!(g1, g2, "the generator step must train the generator");
    let e = gan
        .discriminator_step(&Tensor::zeros((4, 60), DType::F32, &cpu()).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("[4, 60]") && e.contains("[batch, 64]"), "{e}");
}

/// Trains a GAN for `iters` iterations of batch 32 and returns the generated images'
/// mean image and its correlation with the data's mean image.
fn train_gan(replay: Option<FakeReplay>, iters: usize) -> (Gan, f64) {
    let (train, _) = split();
    let vm = VarMap::new();
    let mut gan = Gan::seeded(&gan_config(replay), &vm, &cpu(), 1).unwrap();
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let (mut x, mut l) = (Vec::new(), Vec::new());
    let mut done = 0;
    while done < iters {
        let mut batches = train.batches(32, Some(&mut rng)).unwrap();
        while let Some(n) = batches.next_into(&mut x, &mut l) {
            if n < 32 || done == iters {
                continue;
            }
            gan.train_step(&Tensor::from_slice(&x, (n, 64), &cpu()).unwrap()).unwrap();
            done += 1;
        }
    }
    let fake: Vec<Vec<f32>> = gan.generate(500, &cpu()).unwrap().to_vec2().unwrap();
    let mean_img = |rows: &mut dyn Iterator<Item = &[f32]>| {
        let mut m = vec![0.0f64; 64];
        let mut c = 0.0;
        for r in rows {
            m.iter_mut().zip(r).for_each(|(a, b)| *a += *b as f64);
            c += 1.0;
        }
        m.into_iter().map(|v| v / c).collect::<Vec<f64>>()
    };
    let fm = mean_img(&mut fake.iter().map(|r| r.as_slice()));
    let dm = mean_img(&mut (0..train.len()).map(|i| train.row(i)));
    let corr = correlation(&fm, &dm);
    (gan, corr)
}

fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let (ma, mb) = (a.iter().sum::<f64>() / a.len() as f64, b.iter().sum::<f64>() / b.len() as f64);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let (va, vb): (f64, f64) =
        (a.iter().map(|x| (x - ma).powi(2)).sum(), b.iter().map(|y| (y - mb).powi(2)).sum());
    cov / (va * vb).sqrt()
}

/// A digits classifier for judging generated images (64-128-10 MLP, 30 epochs).
fn judge() -> Classifier<Mlp> {
    let (train, _) = split();
    let vm = VarMap::new();
    let clf = Classifier::new(
        Mlp::seeded(&MlpConfig::new(vec![64, 128, 10]), &vm, "", DType::F32, &cpu(), 0).unwrap(),
        64,
        10,
    );
    fit(&clf, &vm, &train, None, &FitConfig::new(30, 32, 0, adam(3e-3)), FitHooks::default())
        .unwrap();
    clf
}

/// How many generated images the judge assigns to each class, with confidence > 0.9.
fn class_histogram(gan: &mut Gan, clf: &Classifier<Mlp>, n: usize) -> [usize; 10] {
    let fake = gan.generate(n, &cpu()).unwrap().detach();
    let p = candle_nn::ops::softmax(&clf.logits(&fake).unwrap(), 1).unwrap();
    let p: Vec<Vec<f32>> = p.to_vec2().unwrap();
    let mut h = [0; 10];
    for row in p {
        let (c, m) =
            row.iter().enumerate().fold((0, 0.0f32), |a, (i, &v)| if v > a.1 { (i, v) } else { a });
        if m > 0.9 {
            h[c] += 1;
        }
    }
    h
}

#[test]
fn gan_learns_the_digit_distribution_with_fake_replay() {
    let clf = judge();
    let replay = FakeReplay { capacity: 256, fraction: 0.5 };
    let (mut gan, corr) = train_gan(Some(replay), 1200);
    assert_eq!(gan.replay_len(), 256);
    let h = class_histogram(&mut gan, &clf, 1000);
    println!("GAN with fake replay, 1200 iterations: mean-image correlation {corr:.3}, confidently classified per class {h:?}");
    // The mean generated image looks like the mean digit, most generated images are
    // confidently some digit, and they are spread over several classes (a collapsed
    // generator covers one or two). Measured over generator seeds 1..=4 with replay: 5 to 9
    // classes with >= 20 of 1000 samples, correlations 0.90 to 0.94; without replay 7 to 9
    // classes: at this size the plain GAN does not collapse on the digits either, so this
    // checks that the replay variant trains well, not that it beats the plain one.
    assert!(h.iter().filter(|&&c| c >= 20).count() >= 5, "{h:?}");
}
