//! The classic CNNs of `models::classic`: parameter counts equal to torchvision's in its
//! configuration (224x224x3, 1000 classes), parameter names, output shapes in training and
//! evaluation, gradients (finite differences on small instances, finite gradients on the
//! rest), LeNet-5's test accuracy on the digits, and errors (not panics) on bad input.

use candle_core::{DType, Device, Module, ModuleT, Result, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use deeprl_nets::conv::init::torch_default_init;
use deeprl_nets::data::digits::digits;
use deeprl_nets::data::Dataset;
use deeprl_nets::gradcheck::check_gradients;
use deeprl_nets::models::classic::{
    upscale_and_pad, AlexNet, AlexNetConfig, GoogLeNet, GoogLeNetConfig, LeNet5, LeNet5Config,
    ResNet, ResNetConfig, Xception, XceptionConfig,
};
use deeprl_nets::optim::{AdamConfig, OptimizerConfig};
use deeprl_nets::train::{
    evaluate, fit, load_weights, save_weights, Classifier, FitConfig, FitHooks,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CPU: Device = Device::Cpu;

fn vb(map: &VarMap, dtype: DType) -> VarBuilder<'_> {
    VarBuilder::from_varmap(map, dtype, &CPU)
}

/// The number of trainable values in `map`: every variable but the batch-norm buffers.
fn trainable_count(map: &VarMap) -> usize {
    let data = map.data().lock().expect("lock");
    data.iter().filter(|(n, _)| !n.contains("running_")).map(|(_, v)| v.elem_count()).sum()
}

fn dims_of(map: &VarMap, name: &str) -> Vec<usize> {
    let data = map.data().lock().expect("lock");
    data.get(name).unwrap_or_else(|| panic!("no variable {name}")).dims().to_vec()
}

fn var_count(map: &VarMap) -> usize {
    map.data().lock().expect("lock").len()
}

/// Seeded values in `[-1, 1)`.
fn uniform(shape: &[usize], seed: u64, dtype: DType) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    Tensor::from_vec(v, shape, &CPU).unwrap().to_dtype(dtype).unwrap()
}

fn host(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn parameter_counts_and_names_equal_torchvisions() {
    // torchvision 0.29: sum(p.numel() for p in model.parameters()); the names and shapes of
    // each state_dict (less `num_batches_tracked`) were compared one by one when this was
    // written; here the number of entries and a sample.
    let map = VarMap::new();
    let resnet =
        ResNet::new(ResNetConfig::resnet34([3, 224, 224], 1000), vb(&map, DType::F32)).unwrap();
    assert_eq!(resnet.parameter_count(), 21_797_672);
    assert_eq!(trainable_count(&map), 21_797_672);
    assert_eq!(var_count(&map), 182);
    assert_eq!(dims_of(&map, "conv1.weight"), [64, 3, 7, 7]);
    assert_eq!(dims_of(&map, "layer2.0.downsample.0.weight"), [128, 64, 1, 1]);
    assert_eq!(dims_of(&map, "layer3.5.bn2.running_var"), [256]);
    assert_eq!(dims_of(&map, "fc.weight"), [1000, 512]);
    drop((resnet, map));

    // SE-ResNet-34: each unit of C maps adds a gate C -> C/16 -> C with biases:
    // 3 (2*64*4 + 4 + 64) + 4 (2*128*8 + 8 + 128) + 6 (2*256*16 + 16 + 256)
    // + 3 (2*512*32 + 32 + 512) = 1,740 + 8,736 + 50,784 + 99,936 = 161,196.
    let map = VarMap::new();
    let se =
        ResNet::new(ResNetConfig::se_resnet34([3, 224, 224], 1000), vb(&map, DType::F32)).unwrap();
    assert_eq!(se.parameter_count(), 21_797_672 + 161_196);
    assert_eq!(trainable_count(&map), 21_797_672 + 161_196);
    assert_eq!(dims_of(&map, "layer4.2.se.fc1.weight"), [32, 512]);
    drop((se, map));

    let map = VarMap::new();
    let googlenet =
        GoogLeNet::new(GoogLeNetConfig::new([3, 224, 224], 1000), vb(&map, DType::F32)).unwrap();
    assert_eq!(googlenet.parameter_count(), 6_624_904);
    assert_eq!(trainable_count(&map), 6_624_904);
    assert_eq!(var_count(&map), 287);
    assert_eq!(dims_of(&map, "conv1.conv.weight"), [64, 3, 7, 7]);
    assert_eq!(dims_of(&map, "inception3a.branch1.conv.weight"), [64, 192, 1, 1]);
    // torchvision's 3x3 where the paper has 5x5.
    assert_eq!(dims_of(&map, "inception3a.branch3.1.conv.weight"), [32, 16, 3, 3]);
    assert_eq!(dims_of(&map, "inception5b.branch4.1.bn.bias"), [128]);
    assert_eq!(dims_of(&map, "fc.weight"), [1000, 1024]);
    drop((googlenet, map));

    let map = VarMap::new();
    let alexnet =
        AlexNet::new(AlexNetConfig::new([3, 224, 224], 1000), vb(&map, DType::F32)).unwrap();
    assert_eq!(alexnet.parameter_count(), 61_100_840);
    assert_eq!(trainable_count(&map), 61_100_840);
    assert_eq!(var_count(&map), 16);
    assert_eq!(dims_of(&map, "features.0.weight"), [64, 3, 11, 11]);
    assert_eq!(dims_of(&map, "features.10.bias"), [256]);
    assert_eq!(dims_of(&map, "classifier.1.weight"), [4096, 9216]);
    assert_eq!(dims_of(&map, "classifier.6.weight"), [1000, 4096]);
    drop((alexnet, map));

    // LeNet-5: conv 6 (1*25 + 1) = 156, conv 16 (6*25 + 1) = 2,416, fc 400*120 + 120 =
    // 48,120, 120*84 + 84 = 10,164, 84*10 + 10 = 850.
    let map = VarMap::new();
    let lenet = LeNet5::new(LeNet5Config::new([1, 32, 32], 10), vb(&map, DType::F32)).unwrap();
    assert_eq!(156 + 2_416 + 48_120 + 10_164 + 850, 61_706);
    assert_eq!(lenet.parameter_count(), 61_706);
    assert_eq!(trainable_count(&map), 61_706);
    assert_eq!(dims_of(&map, "fc1.weight"), [120, 400]);

    // Xception has no torchvision version. By hand from figure 5, with separable
    // convolutions `i -> o` of `9 i + i o` weights and batch norms of `2 o`:
    // conv1 864 + bn 64, conv2 18,432 + bn 128 = 19,488;
    // block1 (64 -> 128 -> 128, skip 64*128) 35,264; block2 (-> 256) 136,064;
    // block3 (-> 728) 915,944; each middle block 3 (6,552 + 529,984 + 1,456) = 1,613,976,
    // times 8 = 12,911,808; block12 (728 -> 728 -> 1024, skip 728*1024) 2,039,584;
    // conv3 (1024 -> 1536) 1,582,080 + bn 3,072; conv4 (1536 -> 2048) 3,159,552 + bn 4,096;
    // fc 2048*1000 + 1000 = 2,049,000. Total 22,855,952: the paper's "22.9M" (table 3).
    let by_hand = 19_488
        + 35_264
        + 136_064
        + 915_944
        + 8 * 1_613_976
        + 2_039_584
        + 1_582_080
        + 3_072
        + 3_159_552
        + 4_096
        + 2_049_000;
    assert_eq!(by_hand, 22_855_952);
    let map = VarMap::new();
    let xception =
        Xception::new(XceptionConfig::new([3, 299, 299], 1000), vb(&map, DType::F32)).unwrap();
    assert_eq!(xception.parameter_count(), 22_855_952);
    assert_eq!(trainable_count(&map), 22_855_952);
    assert_eq!(dims_of(&map, "block4.sep3.depthwise.weight"), [728, 1, 3, 3]);
    assert_eq!(dims_of(&map, "block12.skip.weight"), [1024, 728, 1, 1]);
}

/// A small instance of a model, `f32`, with its variables.
struct Small {
    name: &'static str,
    model: Box<dyn ModuleT>,
    input: [usize; 3],
    classes: usize,
    map: VarMap,
}

/// Builds `name` on a fresh `VarMap` with `build`.
fn small<M: ModuleT + 'static>(
    name: &'static str,
    input: [usize; 3],
    classes: usize,
    build: impl FnOnce(VarBuilder) -> Result<M>,
) -> Small {
    let map = VarMap::new();
    let model = Box::new(build(vb(&map, DType::F32)).unwrap());
    Small { name, model, input, classes, map }
}

/// Small instances of every model.
fn small_models() -> Vec<Small> {
    let lenet =
        small("LeNet-5", [3, 20, 28], 4, |vb| LeNet5::new(LeNet5Config::new([3, 20, 28], 4), vb));
    // 20x28 -> conv 16x24 -> pool 8x12 -> conv 4x8 -> pool 2x4: fc1 takes 16 * 2 * 4.
    assert_eq!(dims_of(&lenet.map, "fc1.weight"), [120, 128]);
    let alexnet = AlexNetConfig { hidden: 32, lrn: true, ..AlexNetConfig::new([3, 63, 63], 5) };
    let se_resnet = ResNetConfig { se_ratio: Some(4), ..ResNetConfig::cifar([3, 16, 16], 3, 1) };
    let xception = XceptionConfig { middle_blocks: 1, ..XceptionConfig::new([3, 29, 29], 6) };
    vec![
        lenet,
        small("AlexNet", [3, 63, 63], 5, |vb| AlexNet::new(alexnet, vb)),
        small("GoogLeNet", [3, 31, 31], 7, |vb| {
            GoogLeNet::new(GoogLeNetConfig::new([3, 31, 31], 7), vb)
        }),
        small("ResNet-34", [3, 32, 32], 10, |vb| {
            ResNet::new(ResNetConfig::resnet34([3, 32, 32], 10), vb)
        }),
        small("SE-ResNet-8", [3, 16, 16], 3, |vb| ResNet::new(se_resnet, vb)),
        small("Xception", [3, 29, 29], 6, |vb| Xception::new(xception, vb)),
    ]
}

#[test]
fn forward_shapes_in_training_and_evaluation() {
    for Small { name, model, input: [c, h, w], classes, map } in small_models() {
        torch_default_init(&map, 1).unwrap();
        let x = uniform(&[2, c, h, w], 2, DType::F32);
        let eval = model.forward_t(&x, false).unwrap();
        assert_eq!(eval.dims(), [2, classes], "{name}");
        assert!(host(&eval).iter().all(|v| v.is_finite()), "{name}");
        // The same images as rows give the same logits, bit for bit.
        let rows = model.forward_t(&x.reshape((2, c * h * w)).unwrap(), false).unwrap();
        assert_eq!(host(&rows), host(&eval), "{name}");
        let train = model.forward_t(&x, true).unwrap();
        assert_eq!(train.dims(), [2, classes], "{name}");
        assert!(host(&train).iter().all(|v| v.is_finite()), "{name}");
        // Batch norm (batch statistics) or dropout make training differ; LeNet has neither.
        assert_eq!(host(&train) == host(&eval), name == "LeNet-5", "{name}");
    }
}

/// `sum(model(x) * u)` against central differences over the input and every trainable
/// variable but those named in `skip`, in `f64`.
fn assert_gradients(
    label: &str,
    map: &VarMap,
    model: &dyn ModuleT,
    shape: &[usize],
    train: bool,
    skip: &[&str],
) {
    let x = Var::from_tensor(&uniform(shape, 3, DType::F64)).unwrap();
    let probe = model.forward_t(x.as_tensor(), train).unwrap();
    let u = uniform(probe.dims(), 4, DType::F64);
    let mut vars = vec![x.clone()];
    {
        let data = map.data().lock().unwrap();
        let mut named: Vec<_> = data
            .iter()
            .filter(|(n, _)| !n.contains("running_") && !skip.contains(&n.as_str()))
            .collect();
        named.sort_by(|a, b| a.0.cmp(b.0));
        vars.extend(named.into_iter().map(|(_, v)| v.clone()));
    }
    let f = || -> Result<Tensor> { model.forward_t(x.as_tensor(), train)?.mul(&u) };
    let report = check_gradients(&vars, f, 1e-6, 1e-7, 1e-5).unwrap();
    assert!(report.passed(), "{label}: {report:?}");
}

#[test]
fn gradients_match_finite_differences_on_small_instances() {
    let map = VarMap::new();
    let lenet = LeNet5::new(LeNet5Config::new([1, 16, 16], 3), vb(&map, DType::F64)).unwrap();
    torch_default_init(&map, 5).unwrap();
    // The two large plain `Linear` weights (12,000 entries, candle's own matmul) are left
    // out to keep the test short; their neighbours' gradients flow through them.
    assert_gradients(
        "LeNet-5",
        &map,
        &lenet,
        &[2, 1, 16, 16],
        false,
        &["fc1.weight", "fc2.weight"],
    );

    // A two-stage SE-ResNet, in training mode (batch statistics) and in evaluation mode.
    let map = VarMap::new();
    let config = ResNetConfig {
        stem_width: 3,
        widths: vec![3, 4],
        units: vec![1, 1],
        se_ratio: Some(2),
        ..ResNetConfig::cifar([2, 6, 5], 3, 1)
    };
    let resnet = ResNet::new(config, vb(&map, DType::F64)).unwrap();
    torch_default_init(&map, 6).unwrap();
    assert_gradients("SE-ResNet (train)", &map, &resnet, &[2, 2, 6, 5], true, &[]);
    assert_gradients("SE-ResNet (eval)", &map, &resnet, &[2, 2, 6, 5], false, &[]);
}

#[test]
fn every_parameter_gets_a_finite_gradient() {
    for Small { name, model, input: [c, h, w], classes, map } in small_models() {
        torch_default_init(&map, 7).unwrap();
        let x = uniform(&[2, c, h, w], 8, DType::F32);
        let labels = Tensor::new(&[0u32, (classes - 1) as u32], &CPU).unwrap();
        let logits = model.forward_t(&x, true).unwrap();
        let grads = candle_nn::loss::cross_entropy(&logits, &labels).unwrap().backward().unwrap();
        let data = map.data().lock().unwrap();
        for (var_name, var) in data.iter().filter(|(n, _)| !n.contains("running_")) {
            let g = grads.get(var).unwrap_or_else(|| panic!("{name}: no gradient for {var_name}"));
            let g = host(g);
            assert!(g.iter().all(|v| v.is_finite()), "{name}: {var_name}");
            assert!(g.iter().any(|&v| v != 0.0), "{name}: zero gradient for {var_name}");
        }
    }
}

/// The digits split 80/20 (seed 0), as LeNet-5's 32x32 input.
fn lenet_digits() -> (Dataset, Dataset) {
    let (train, test) = digits().unwrap().split(0.2, 0).unwrap();
    (upscale_and_pad(&train, 3, 4).unwrap(), upscale_and_pad(&test, 3, 4).unwrap())
}

fn adam(lr: f64) -> OptimizerConfig {
    OptimizerConfig::Adam(AdamConfig { lr, ..AdamConfig::default() })
}

/// LeNet-5 (tanh) fed the 8x8 digits enlarged to 24x24 and padded to 32x32, as it was fed
/// MNIST's 28x28 digits padded to 32x32; Adam (lr 1e-3), batch 32, 16 epochs on the 80%.
/// Measured with seeds 0..=5: 352 to 353 of the 359 test digits (98.05% to 98.33%; 97% is
/// 349), about 10 s in release on an idle core.
#[test]
fn lenet5_reaches_97_percent_on_held_out_digits() {
    let (train, test) = lenet_digits();
    // `LENET_SEED=k` reruns with another seed (initialisation and batch order).
    let seed: u64 = std::env::var("LENET_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let map = VarMap::new();
    let lenet = LeNet5::new(LeNet5Config::new([1, 32, 32], 10), vb(&map, DType::F32)).unwrap();
    torch_default_init(&map, seed).unwrap();
    let clf = Classifier::new(lenet, 32 * 32, 10);
    let config = FitConfig::new(16, 32, seed, adam(1e-3));
    let report = fit(&clf, &map, &train, None, &config, FitHooks::default()).unwrap();
    let t = evaluate(&clf, &test, 512, 3, &CPU).unwrap();
    let acc = t.accuracy.unwrap();
    println!(
        "LeNet-5 on the digits: train loss {:.4} after {} epochs, test accuracy {acc:.4}",
        report.history.last().unwrap().train.loss,
        report.history.len()
    );
    assert!(report.history.last().unwrap().train.loss < report.history[0].train.loss / 10.0);
    assert!(acc >= 0.97, "test accuracy {acc}");
}

#[test]
fn upscale_and_pad_places_every_pixel() {
    let data = Dataset::new(vec![1.0, 2.0, 3.0, 4.0], 4, Some(vec![7]))
        .unwrap()
        .with_image_shape(2, 2)
        .unwrap();
    let big = upscale_and_pad(&data, 2, 1).unwrap();
    assert_eq!(big.image_shape().map(|s| (s.height, s.width)), Some((6, 6)));
    assert_eq!(big.labels(), Some(&[7u32][..]));
    #[rustfmt::skip]
    let expected = [
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        0.0, 1.0, 1.0, 2.0, 2.0, 0.0,
        0.0, 1.0, 1.0, 2.0, 2.0, 0.0,
        0.0, 3.0, 3.0, 4.0, 4.0, 0.0,
        0.0, 3.0, 3.0, 4.0, 4.0, 0.0,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    ];
    assert_eq!(big.row(0), expected);
    let flat = Dataset::new(vec![1.0; 4], 4, None).unwrap();
    assert!(upscale_and_pad(&flat, 2, 1).unwrap_err().to_string().contains("image shape"));
}

#[test]
fn local_response_normalisation_is_an_option_without_parameters() {
    let (plain_map, lrn_map) = (VarMap::new(), VarMap::new());
    let config = AlexNetConfig { hidden: 16, dropout: 0.0, ..AlexNetConfig::new([3, 63, 63], 4) };
    let plain = AlexNet::new(config, vb(&plain_map, DType::F32)).unwrap();
    let lrn =
        AlexNet::new(AlexNetConfig { lrn: true, ..config }, vb(&lrn_map, DType::F32)).unwrap();
    assert_eq!(plain.parameter_count(), lrn.parameter_count());
    torch_default_init(&plain_map, 3).unwrap();
    torch_default_init(&lrn_map, 3).unwrap();
    // Inputs of large magnitude, so that the normaliser `(2 + 1e-4 sum a^2)^0.75` is far
    // from its constant part (which rescales every activation alike, by 2^-0.75).
    let x = (uniform(&[1, 3, 63, 63], 9, DType::F32) * 300.0).unwrap();
    let (a, b) =
        (host(&plain.forward_t(&x, false).unwrap()), host(&lrn.forward_t(&x, false).unwrap()));
    assert_ne!(a, b);
}

/// One epoch of `fit` on 96 digits enlarged to 16x16 for a small SE-ResNet; every variable
/// (batch-norm statistics included) afterwards.
fn train_small_resnet(init_seed: u64, fit_seed: u64) -> Vec<(String, Vec<u32>)> {
    let data = digits().unwrap().subset(&(0..96).collect::<Vec<_>>()).unwrap();
    let data = upscale_and_pad(&data, 2, 0).unwrap();
    let map = VarMap::new();
    let config = ResNetConfig { se_ratio: Some(4), ..ResNetConfig::cifar([1, 16, 16], 10, 1) };
    let model = ResNet::new(config, vb(&map, DType::F32)).unwrap();
    torch_default_init(&map, init_seed).unwrap();
    let clf = Classifier::new(model, 256, 10);
    fit(&clf, &map, &data, None, &FitConfig::new(1, 32, fit_seed, adam(1e-3)), FitHooks::default())
        .unwrap();
    let data = map.data().lock().unwrap();
    let mut vars: Vec<(String, Vec<u32>)> = data
        .iter()
        .map(|(n, v)| (n.clone(), host(v.as_tensor()).iter().map(|x| x.to_bits()).collect()))
        .collect();
    vars.sort();
    vars
}

#[test]
fn same_seeds_same_weights_bit_for_bit() {
    let a = train_small_resnet(1, 2);
    assert_eq!(a, train_small_resnet(1, 2));
    assert_ne!(a, train_small_resnet(1, 3), "another batch order");
    assert_ne!(a, train_small_resnet(4, 2), "another initialisation");
}

fn assert_error<T: std::fmt::Debug>(
    result: std::result::Result<T, impl std::fmt::Display>,
    parts: &[&str],
) {
    let e = result.expect_err("an error").to_string();
    for p in parts {
        assert!(e.contains(p), "{e:?} should contain {p:?}");
    }
}

#[test]
fn bad_input_is_an_error_naming_the_model_and_the_shapes() {
    // Images of the wrong size, channels or rank for the model.
    let map = VarMap::new();
    let resnet =
        ResNet::new(ResNetConfig::resnet34([3, 32, 32], 10), vb(&map, DType::F32)).unwrap();
    let zeros = |shape: &[usize]| Tensor::zeros(shape, DType::F32, &CPU).unwrap();
    let expected = "expected images [N, 3, 32, 32] or rows [N, 3072]";
    assert_error(
        resnet.forward_t(&zeros(&[2, 1, 32, 32]), false),
        &["ResNet-34", expected, "[2, 1, 32, 32]"],
    );
    assert_error(resnet.forward_t(&zeros(&[2, 3, 31, 32]), true), &["ResNet-34", "[2, 3, 31, 32]"]);
    assert_error(resnet.forward_t(&zeros(&[3, 32, 32]), false), &["ResNet-34", "[3, 32, 32]"]);
    assert_error(resnet.forward_t(&zeros(&[2, 100]), false), &["ResNet-34", "[2, 100]"]);
    assert_error(resnet.forward_t(&zeros(&[0, 3072]), false), &["ResNet-34", "[0, 3072]"]);
    let lenet_map = VarMap::new();
    let lenet =
        LeNet5::new(LeNet5Config::new([1, 32, 32], 10), vb(&lenet_map, DType::F32)).unwrap();
    assert_error(
        lenet.forward(&zeros(&[1, 1, 28, 28])),
        &["LeNet-5", "[N, 1, 32, 32]", "[1, 1, 28, 28]"],
    );

    // Configured inputs too small for the architecture: the layer, the sizes, the minimum.
    let build_err = |r: Result<()>| r;
    let m = VarMap::new();
    assert_error(
        build_err(AlexNet::new(AlexNetConfig::new([3, 62, 62], 10), vb(&m, DType::F32)).map(drop)),
        &[
            "AlexNet: an input of 3x62x62 is too small",
            "layer features.12",
            "2x2 map",
            "smallest square input is 63x63",
        ],
    );
    assert_error(
        build_err(LeNet5::new(LeNet5Config::new([1, 15, 40], 10), vb(&m, DType::F32)).map(drop)),
        &["LeNet-5", "1x15x40", "layer pool2", "1x14 map", "16x16"],
    );
    assert_error(GoogLeNetConfig::new([3, 30, 30], 10).trace(), &["GoogLeNet", "3x30x30", "31x31"]);
    assert_error(XceptionConfig::new([3, 6, 6], 10).trace(), &["Xception", "3x6x6", "7x7"]);
    // Bad layouts and sizes.
    assert_error(LeNet5Config::new([1, 32, 32], 0).trace(), &["LeNet-5", "0 classes"]);
    assert_error(AlexNetConfig::new([0, 224, 224], 10).trace(), &["AlexNet", "[0, 224, 224]"]);
    let uneven = ResNetConfig { units: vec![1, 1], ..ResNetConfig::resnet34([3, 32, 32], 10) };
    assert_error(uneven.trace(), &["ResNet-6", "widths [64, 128, 256, 512], units [1, 1]"]);
    let dropout = GoogLeNetConfig { dropout: 1.0, ..GoogLeNetConfig::new([3, 64, 64], 10) };
    assert_error(dropout.trace(), &["GoogLeNet", "dropout must be in [0, 1), got 1"]);

    // Through fit: 8x8 digits for a 32x32 model; labels outside the class range.
    let (train, _) = lenet_digits();
    let raw = digits().unwrap();
    let clf = Classifier::new(lenet, 32 * 32, 10);
    let cfg = FitConfig::new(1, 32, 0, adam(1e-3));
    assert_error(
        fit(&clf, &lenet_map, &raw, None, &cfg, FitHooks::default()),
        &["rows of 64 features (8x8 images), the model expects 1024"],
    );
    let five_map = VarMap::new();
    let five = LeNet5::new(LeNet5Config::new([1, 32, 32], 5), vb(&five_map, DType::F32)).unwrap();
    let five = Classifier::new(five, 32 * 32, 5);
    assert_error(
        fit(&five, &five_map, &train, None, &cfg, FitHooks::default()),
        &["outside the 5 classes"],
    );
}

fn small_resnet(config: ResNetConfig) -> (ResNet, VarMap) {
    let map = VarMap::new();
    let model = ResNet::new(config, vb(&map, DType::F32)).unwrap();
    (model, map)
}

#[test]
fn weights_files_that_do_not_fit_name_the_first_bad_tensor() {
    let dir = std::env::temp_dir().join(format!("deeprl-nets-classic-{}", std::process::id()));
    let path = dir.join("resnet8.safetensors");
    let config = ResNetConfig::cifar([3, 16, 16], 10, 1);
    let (model, map) = small_resnet(config.clone());
    torch_default_init(&map, 11).unwrap();
    save_weights(&map, &path).unwrap();
    let x = uniform(&[2, 3, 16, 16], 12, DType::F32);
    let expected = host(&model.forward_t(&x, false).unwrap());

    // The same architecture loads and computes the same logits.
    let (same, same_map) = small_resnet(config.clone());
    load_weights(&same_map, &path, &[]).unwrap();
    assert_eq!(host(&same.forward_t(&x, false).unwrap()), expected);

    // SE gates the file lacks: the first missing tensor in name order.
    let (_, se_map) = small_resnet(ResNetConfig { se_ratio: Some(4), ..config.clone() });
    assert_error(
        load_weights(&se_map, &path, &[]),
        &["resnet8.safetensors", "tensor layer1.0.se.fc1.bias (shape [4]) is missing"],
    );
    // Another width: the first tensor of another shape.
    let (_, wide_map) = small_resnet(ResNetConfig { stem_width: 8, ..config.clone() });
    assert_error(
        load_weights(&wide_map, &path, &[]),
        &["tensor bn1.bias is [16] F32 in the file, the model has [8] F32"],
    );
    // Another number of classes: only the head differs.
    let (_, head_map) = small_resnet(ResNetConfig { num_classes: 5, ..config });
    assert_error(load_weights(&head_map, &path, &[]), &["tensor fc.bias is [10] F32"]);
    std::fs::remove_dir_all(&dir).ok();
}
