//! The convolutional layers and blocks that have no torch reference data (inception module,
//! residual unit, separable convolution, squeeze-and-excitation, batch norm, global
//! pooling): finite-difference gradient checks in f64, output shapes and parameter names,
//! batch-norm statistics against a direct computation, reproducible initialisation, and
//! errors (not panics) on bad input.

use candle_core::{DType, Device, Module, ModuleT, Result, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use deeprl_nets::conv::blocks::{
    Inception, InceptionConfig, ResidualUnit, SeBlock, SeparableConv2d, SeparableConv2dConfig,
    SqueezeExcite,
};
use deeprl_nets::conv::init::torch_default_init;
use deeprl_nets::conv::{
    AvgPool2d, BatchNorm, Conv1d, Conv1dConfig, Conv2d, Conv2dConfig, ConvTranspose2d,
    ConvTranspose2dConfig, Flatten, GlobalAvgPool2d, LocalResponseNorm, MaxPool2d,
};
use deeprl_nets::gradcheck::check_gradients;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CPU: Device = Device::Cpu;

fn f64_map() -> VarMap {
    VarMap::new()
}

fn vb(map: &VarMap) -> VarBuilder<'_> {
    VarBuilder::from_varmap(map, DType::F64, &CPU)
}

/// A seeded f64 input variable with values in `[-1, 1)`.
fn input(shape: &[usize], seed: u64) -> Var {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let data: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    Var::from_vec(data, shape, &CPU).expect("input")
}

/// The trainable variables of `map` (batch-norm buffers excluded), sorted by name.
fn trainable(map: &VarMap) -> Vec<(String, Var)> {
    let data = map.data().lock().expect("lock");
    let mut vars: Vec<(String, Var)> = data
        .iter()
        .filter(|(name, _)| !name.contains("running_"))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

fn names(map: &VarMap) -> Vec<String> {
    let mut names: Vec<String> = map.data().lock().expect("lock").keys().cloned().collect();
    names.sort();
    names
}

/// Gradient check of `sum(f() * upstream)` over the input and every trainable variable, with
/// a fixed random upstream so that every output element matters with a different weight.
fn assert_gradients(label: &str, map: &VarMap, x: &Var, f: impl Fn(&Tensor) -> Result<Tensor>) {
    let probe = f(x.as_tensor()).expect("forward");
    let upstream = input(probe.dims(), 99).as_tensor().detach();
    let mut vars = vec![x.clone()];
    vars.extend(trainable(map).into_iter().map(|(_, v)| v));
    let report = check_gradients(&vars, || f(x.as_tensor())?.mul(&upstream), 1e-6, 1e-7, 1e-5)
        .expect("check");
    assert!(report.passed(), "{label}: {report:?}");
}

fn inception_config() -> InceptionConfig {
    InceptionConfig {
        in_channels: 3,
        ch1x1: 2,
        ch3x3_reduce: 2,
        ch3x3: 3,
        ch5x5_reduce: 1,
        ch5x5: 2,
        pool_proj: 2,
    }
}

#[test]
fn inception_shape_names_and_gradients() {
    let map = f64_map();
    let block = Inception::new(inception_config(), vb(&map)).unwrap();
    torch_default_init(&map, 1).unwrap();
    let x = input(&[2, 3, 5, 6], 2);
    let y = block.forward(x.as_tensor()).unwrap();
    assert_eq!(y.dims(), &[2, 2 + 3 + 2 + 2, 5, 6]);
    assert_eq!(names(&map).len(), 12);
    for n in ["branch1.weight", "branch2.1.weight", "branch3.1.bias", "branch4.1.weight"] {
        assert!(names(&map).contains(&n.to_string()), "{n} in {:?}", names(&map));
    }
    // The 1x1 branch alone: channels 0..2 of the output are relu(conv1x1(x)).
    let w = map.data().lock().unwrap()["branch1.weight"].as_tensor().clone();
    let b = map.data().lock().unwrap()["branch1.bias"].as_tensor().clone();
    let direct = x
        .as_tensor()
        .permute((0, 2, 3, 1))
        .unwrap()
        .contiguous()
        .unwrap()
        .broadcast_matmul(&w.reshape((2, 3)).unwrap().t().unwrap())
        .unwrap()
        .broadcast_add(&b)
        .unwrap()
        .relu()
        .unwrap()
        .permute((0, 3, 1, 2))
        .unwrap();
    let diff = (y.narrow(1, 0, 2).unwrap() - direct).unwrap().abs().unwrap().max_all().unwrap();
    assert!(diff.to_scalar::<f64>().unwrap() < 1e-12);
    assert_gradients("inception", &map, &x, |x| block.forward(x));
}

#[test]
fn residual_unit_projection_shapes_names_and_gradients() {
    let map = f64_map();
    let unit = ResidualUnit::new(2, 3, 2, vb(&map)).unwrap();
    torch_default_init(&map, 3).unwrap();
    assert!(unit.has_projection());
    let expected = [
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
        "bn1.weight",
        "bn2.bias",
        "bn2.running_mean",
        "bn2.running_var",
        "bn2.weight",
        "conv1.weight",
        "conv2.weight",
        "downsample.0.weight",
        "downsample.1.bias",
        "downsample.1.running_mean",
        "downsample.1.running_var",
        "downsample.1.weight",
    ];
    assert_eq!(names(&map), expected);
    let x = input(&[2, 2, 6, 5], 4);
    let y = unit.forward_t(x.as_tensor(), true).unwrap();
    assert_eq!(y.dims(), &[2, 3, 3, 3]);
    assert_gradients("residual (train)", &map, &x, |x| unit.forward_t(x, true));
    // Evaluation uses the running statistics the training passes above moved.
    assert_gradients("residual (eval)", &map, &x, |x| unit.forward_t(x, false));
}

#[test]
fn residual_unit_identity_shortcut() {
    let map = f64_map();
    let unit = ResidualUnit::new(3, 3, 1, vb(&map)).unwrap();
    torch_default_init(&map, 5).unwrap();
    assert!(!unit.has_projection());
    let x = input(&[2, 3, 4, 4], 6);
    assert_eq!(unit.forward_t(x.as_tensor(), true).unwrap().dims(), &[2, 3, 4, 4]);
    // With conv2's weights at zero the residual branch is bn2's bias (0): y = relu(x).
    let w = map.data().lock().unwrap()["conv2.weight"].clone();
    w.set(&w.zeros_like().unwrap()).unwrap();
    let y = unit.forward_t(x.as_tensor(), true).unwrap();
    let diff = (y - x.as_tensor().relu().unwrap()).unwrap().abs().unwrap().max_all().unwrap();
    assert!(diff.to_scalar::<f64>().unwrap() < 1e-12);
}

#[test]
fn separable_conv_shape_names_and_gradients() {
    let map = f64_map();
    let mut config = SeparableConv2dConfig::new(3, 4, 3);
    config.depth_multiplier = 2;
    config.stride = 2;
    let conv = SeparableConv2d::new(config, vb(&map)).unwrap();
    torch_default_init(&map, 7).unwrap();
    assert_eq!(names(&map), ["depthwise.weight", "pointwise.bias", "pointwise.weight"]);
    assert_eq!(map.data().lock().unwrap()["depthwise.weight"].dims(), &[6, 1, 3, 3]);
    let x = input(&[2, 3, 7, 6], 8);
    assert_eq!(conv.forward(x.as_tensor()).unwrap().dims(), &[2, 4, 4, 3]);
    assert_gradients("separable", &map, &x, |x| conv.forward(x));
}

#[test]
fn se_block_around_inception_gradients_and_gate() {
    let map = f64_map();
    let config = inception_config();
    let inception = Inception::new(config, vb(&map).pp("block")).unwrap();
    let block = SeBlock::new(inception, config.out_channels(), 4, vb(&map)).unwrap();
    torch_default_init(&map, 9).unwrap();
    assert_eq!(map.data().lock().unwrap()["se.fc1.weight"].dims(), &[2, 9]);
    let x = input(&[2, 3, 4, 5], 10);
    let inner = block.block.forward(x.as_tensor()).unwrap();
    let y = block.forward_t(x.as_tensor(), true).unwrap();
    assert_eq!(y.dims(), inner.dims());
    // y = inner * s with one weight per (image, channel), 0 < s < 1.
    let s = block.se.weights(&inner).unwrap();
    assert_eq!(s.dims(), &[2, 9]);
    for v in s.flatten_all().unwrap().to_vec1::<f64>().unwrap() {
        assert!(v > 0.0 && v < 1.0, "{v}");
    }
    let expected = inner.broadcast_mul(&s.reshape((2, 9, 1, 1)).unwrap()).unwrap();
    assert_eq!(
        y.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
        expected.flatten_all().unwrap().to_vec1::<f64>().unwrap()
    );
    assert_gradients("SE-inception", &map, &x, |x| block.forward_t(x, true));
}

#[test]
fn se_residual_unit_gradients() {
    let map = f64_map();
    let unit = ResidualUnit::new(4, 4, 1, vb(&map)).unwrap().with_se(2, vb(&map)).unwrap();
    torch_default_init(&map, 11).unwrap();
    assert!(names(&map).contains(&"se.fc2.bias".to_string()));
    let x = input(&[2, 4, 3, 3], 12);
    assert_gradients("SE-residual", &map, &x, |x| unit.forward_t(x, true));
    let se_map = f64_map();
    let se = SqueezeExcite::new(4, 2, vb(&se_map)).unwrap();
    torch_default_init(&se_map, 13).unwrap();
    assert_gradients("SE alone", &se_map, &x, |x| se.forward(x));
}

/// Batch norm in training mode against a direct computation, the running statistics after
/// two steps (momentum 0.1, unbiased variance), evaluation with them, and gradients.
#[test]
fn batch_norm_statistics_and_gradients() {
    let map = f64_map();
    let bn = BatchNorm::new_2d(3, vb(&map)).unwrap();
    {
        let data = map.data().lock().unwrap();
        data["weight"].set(&Tensor::new(&[1.5f64, -0.5, 2.0], &CPU).unwrap()).unwrap();
        data["bias"].set(&Tensor::new(&[0.1f64, 0.2, -0.3], &CPU).unwrap()).unwrap();
    }
    let x = input(&[4, 3, 2, 3], 14);
    let xs = x.as_tensor().to_vec3::<f64>().ok();
    assert!(xs.is_none(), "4-D input");
    let host: Vec<f64> = x.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
    let y: Vec<f64> =
        bn.forward_t(x.as_tensor(), true).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let (w, b) = ([1.5, -0.5, 2.0], [0.1, 0.2, -0.3]);
    let mut mean = [0.0; 3];
    let mut var = [0.0; 3];
    for c in 0..3 {
        let vals: Vec<(usize, f64)> =
            (0..host.len()).filter(|i| (i / 6) % 3 == c).map(|i| (i, host[i])).collect();
        let m = vals.iter().map(|v| v.1).sum::<f64>() / 24.0;
        let v = vals.iter().map(|v| (v.1 - m).powi(2)).sum::<f64>() / 24.0;
        for &(i, xv) in &vals {
            let want = (xv - m) / (v + 1e-5).sqrt() * w[c] + b[c];
            assert!((y[i] - want).abs() < 1e-12, "y[{i}] {} vs {want}", y[i]);
        }
        mean[c] = m;
        var[c] = v;
    }
    bn.forward_t(x.as_tensor(), true).unwrap();
    let rm: Vec<f64> = bn.running_mean().to_vec1().unwrap();
    let rv: Vec<f64> = bn.running_var().to_vec1().unwrap();
    for c in 0..3 {
        // Two identical steps from (0, 1): 1 - 0.9^2 = 0.19 of the batch statistic.
        let want_m = 0.19 * mean[c];
        let want_v = 0.81 + 0.19 * var[c] * 24.0 / 23.0;
        assert!((rm[c] - want_m).abs() < 1e-12 && (rv[c] - want_v).abs() < 1e-12);
    }
    let ye: Vec<f64> =
        bn.forward_t(x.as_tensor(), false).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    for (i, &xv) in host.iter().enumerate() {
        let c = (i / 6) % 3;
        let want = (xv - rm[c]) / (rv[c] + 1e-5).sqrt() * w[c] + b[c];
        assert!((ye[i] - want).abs() < 1e-12);
    }
    assert_gradients("bn2d train", &map, &x, |x| bn.forward_t(x, true));
    assert_gradients("bn2d eval", &map, &x, |x| bn.forward_t(x, false));
    // BatchNorm1d on [N, C] and [N, C, L].
    let map1 = f64_map();
    let bn1 = BatchNorm::new_1d(3, vb(&map1)).unwrap();
    for shape in [&[5, 3][..], &[2, 3, 4][..]] {
        let x = input(shape, 15);
        assert_eq!(bn1.forward_t(x.as_tensor(), true).unwrap().dims(), shape);
        assert_gradients("bn1d train", &map1, &x, |x| bn1.forward_t(x, true));
    }
}

#[test]
fn global_pool_and_flatten() {
    let x = input(&[2, 3, 4, 5], 16);
    let y = GlobalAvgPool2d.forward(x.as_tensor()).unwrap();
    assert_eq!(y.dims(), &[2, 3]);
    let host: Vec<f64> = x.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
    let want: f64 = host[20..40].iter().sum::<f64>() / 20.0;
    assert!((y.to_vec2::<f64>().unwrap()[0][1] - want).abs() < 1e-14);
    assert_gradients("global avg pool", &f64_map(), &x, |x| GlobalAvgPool2d.forward(x));
    assert_eq!(Flatten.forward(x.as_tensor()).unwrap().dims(), &[2, 60]);
    // Overlapping max pooling with padding, whose backward candle lacks.
    let pool = MaxPool2d::new(3).stride(2).padding(1);
    assert_gradients("max pool k3 s2 p1", &f64_map(), &x, |x| pool.forward(x));
}

#[test]
fn seeded_init_is_reproducible() {
    let weights = |seed: u64| {
        let map = f64_map();
        ResidualUnit::new(2, 4, 2, vb(&map)).unwrap();
        torch_default_init(&map, seed).unwrap();
        let data = map.data().lock().unwrap();
        let w: Vec<f64> = data["conv1.weight"].flatten_all().unwrap().to_vec1().unwrap();
        let bn: Vec<f64> = data["bn1.running_var"].to_vec1().unwrap();
        (w, bn)
    };
    let (a, bn) = weights(42);
    assert_eq!(a, weights(42).0);
    assert_ne!(a, weights(43).0);
    assert_eq!(bn, vec![1.0; 4]);
    let bound = 1.0 / (2.0f64 * 9.0).sqrt();
    assert!(a.iter().all(|v| v.abs() < bound));
}

/// `f` must fail with a message that contains every one of `needles`.
fn assert_error<T: std::fmt::Debug>(r: Result<T>, needles: &[&str]) {
    let msg = r.expect_err("expected an error").to_string();
    for n in needles {
        assert!(msg.contains(n), "{n:?} not in {msg:?}");
    }
}

#[test]
fn bad_input_is_an_error_naming_layer_and_shapes() {
    let map = f64_map();
    let conv = Conv2d::new(Conv2dConfig::new(3, 4, 5), vb(&map).pp("c")).unwrap();
    let t = |shape: &[usize]| Tensor::zeros(shape, DType::F64, &CPU).unwrap();
    assert_error(conv.forward(&t(&[2, 3, 8])), &["Conv2d", "rank 4", "C = 3", "[2, 3, 8]"]);
    assert_error(conv.forward(&t(&[2, 5, 8, 8])), &["Conv2d", "C = 3", "[2, 5, 8, 8]"]);
    assert_error(conv.forward(&t(&[2, 3, 4, 8])), &["Conv2d", "kernel [5, 5]", "input 4x8"]);
    assert_error(conv.forward(&t(&[0, 3, 8, 8])), &["Conv2d", "non-empty", "[0, 3, 8, 8]"]);
    assert_error(conv.output_shape(&[1, 3, 4, 4]), &["Conv2d", "kernel"]);
    assert_eq!(conv.output_shape(&[1, 3, 9, 5]).unwrap(), [1, 4, 5, 1]);

    let c1 = Conv1d::new(Conv1dConfig::new(2, 2, 3), vb(&map).pp("c1")).unwrap();
    assert_error(c1.forward(&t(&[1, 2, 4, 4])), &["Conv1d", "rank 3", "[1, 2, 4, 4]"]);
    assert_error(c1.forward(&t(&[1, 2, 2])), &["Conv1d", "kernel"]);

    let ct = ConvTranspose2d::new(ConvTranspose2dConfig::new(2, 3, 3), vb(&map).pp("ct")).unwrap();
    assert_error(ct.forward(&t(&[1, 3, 4, 4])), &["ConvTranspose2d", "C = 2", "[1, 3, 4, 4]"]);

    assert_error(
        MaxPool2d::new(3).forward(&t(&[1, 1, 2, 5])),
        &["MaxPool2d", "kernel [3, 3]", "2x5"],
    );
    assert_error(MaxPool2d::new(2).forward(&t(&[4, 4])), &["MaxPool2d", "rank 4", "[4, 4]"]);
    let mut bad_pad = AvgPool2d::new(2);
    bad_pad.padding = [2, 2];
    assert_error(bad_pad.forward(&t(&[1, 1, 4, 4])), &["AvgPool2d", "padding [2, 2]"]);
    assert_error(AvgPool2d::new(5).forward(&t(&[1, 1, 4, 4])), &["AvgPool2d", "kernel [5, 5]"]);
    assert_error(GlobalAvgPool2d.forward(&t(&[2, 3])), &["GlobalAvgPool2d", "[2, 3]"]);
    assert_error(Flatten.forward(&t(&[3])), &["Flatten", "[3]"]);
    let lrn = LocalResponseNorm::torch(5, 1e-4, 0.75, 2.0).unwrap();
    assert_error(lrn.forward(&t(&[2, 3])), &["LocalResponseNorm", "[2, 3]"]);

    let bn = BatchNorm::new_2d(3, vb(&map).pp("bn")).unwrap();
    assert_error(bn.forward_t(&t(&[2, 4, 3, 3]), true), &["BatchNorm2d", "C = 3", "[2, 4, 3, 3]"]);
    assert_error(bn.forward_t(&t(&[1, 3, 1, 1]), true), &["BatchNorm2d", "more than one value"]);

    let inc = Inception::new(inception_config(), vb(&map).pp("inc")).unwrap();
    assert_error(inc.forward(&t(&[1, 4, 5, 5])), &["Inception", "C = 3", "[1, 4, 5, 5]"]);
    let res = ResidualUnit::new(2, 2, 1, vb(&map).pp("res")).unwrap();
    assert_error(res.forward_t(&t(&[1, 3, 5, 5]), false), &["ResidualUnit", "C = 2"]);
    let sep =
        SeparableConv2d::new(SeparableConv2dConfig::new(2, 2, 3), vb(&map).pp("sep")).unwrap();
    assert_error(sep.forward(&t(&[1, 3, 5, 5])), &["SeparableConv2d", "C = 2"]);

    // Bad configurations.
    assert_error(
        Conv2d::new(Conv2dConfig::new(3, 4, 3).groups(2), vb(&map).pp("g")),
        &["groups = 2"],
    );
    assert_error(
        Conv2d::new(
            Conv2dConfig {
                padding: deeprl_nets::conv::Padding2d::Same,
                ..Conv2dConfig::new(1, 1, 3).stride(2)
            },
            vb(&map).pp("s"),
        ),
        &["\"same\"", "stride"],
    );
    let mut ctc = ConvTranspose2dConfig::new(1, 1, 3);
    ctc.output_padding = [1, 1];
    assert_error(ConvTranspose2d::new(ctc, vb(&map).pp("op")), &["output_padding"]);
}
