//! Localization and segmentation on the synthetic shapes: a box regressor and an FCN that
//! must learn (held-out IoU well above the constant baselines), the dense-to-convolution
//! conversion (equal outputs on the training size, a map of crop outputs on a larger image),
//! K-Means anchors, non-max suppression on detection candidates, reproducibility, and bad
//! input as errors.
//!
//! Thresholds come from measured runs with the tests' settings (release, one thread): over
//! seeds 0 to 3 the localizer reached a held-out mean IoU of 0.64 to 0.67 (mean box: 0.14 to
//! 0.15); over seeds 0 to 5 the FCN reached a mean IoU of 0.82 to 0.89, each object class
//! above 0.7 (all background: 0.22 to 0.24).

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use deeprl_nets::data::Dataset;
use deeprl_nets::optim::{AdamConfig, OptimizerConfig};
use deeprl_nets::train::{fit, FitConfig, FitHooks};
use deeprl_nets::vision::{
    confusion_mean_iou, dense_as_conv, iou, kmeans_anchors, mean_best_iou, mean_box, mean_iou, nms,
    AnchorConfig, BoundingBox, Detection, Fcn, FcnConfig, FullyConvLocalizer, Localizer,
    LocalizerConfig, Shapes, ShapesConfig,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CPU: Device = Device::Cpu;
const SIDE: usize = 24;

fn adam(lr: f64) -> OptimizerConfig {
    OptimizerConfig::Adam(AdamConfig { lr, ..AdamConfig::default() })
}

/// A localizer for `SIDE x SIDE` images trained `epochs` epochs on `n` single-object images.
fn trained_localizer(n: usize, epochs: usize, seed: u64) -> (Localizer, VarMap) {
    let train = Shapes::generate(&ShapesConfig::single_object(SIDE), n, seed).unwrap();
    let vm = VarMap::new();
    let loc = Localizer::seeded(&LocalizerConfig::new(1, SIDE, SIDE), &vm, &CPU, seed).unwrap();
    let config = FitConfig::new(epochs, 16, seed, adam(2e-3));
    fit(&loc, &vm, &train.localization_dataset().unwrap(), None, &config, FitHooks::default())
        .unwrap();
    (loc, vm)
}

#[test]
fn localizer_beats_the_mean_box_on_held_out_images() {
    let config = ShapesConfig::single_object(SIDE);
    let train = Shapes::generate(&config, 1000, 0).unwrap();
    let test = Shapes::generate(&config, 300, 100).unwrap();
    let constant = mean_box(&train.single_boxes().unwrap()).unwrap();
    let truth = test.single_boxes().unwrap();
    let baseline = mean_iou(&vec![constant; truth.len()], &truth).unwrap();
    let (loc, _) = trained_localizer(1000, 4, 0);
    let before = {
        let vm = VarMap::new();
        let fresh = Localizer::seeded(loc.config(), &vm, &CPU, 0).unwrap();
        fresh.mean_iou(&test).unwrap()
    };
    let after = loc.mean_iou(&test).unwrap();
    println!(
        "held-out mean IoU: trained {after:.3}, untrained {before:.3}, mean box {baseline:.3}"
    );
    assert!(baseline < 0.2, "mean-box baseline {baseline}");
    assert!(before < 0.3, "untrained {before}");
    assert!(after > 0.5 && after > baseline + 0.3, "trained {after} vs baseline {baseline}");
}

#[test]
fn fully_convolutional_localizer_equals_the_dense_one_and_slides_over_larger_images() {
    let (loc, vm) = trained_localizer(200, 1, 3);
    let fc = FullyConvLocalizer::from_localizer(&loc).unwrap();
    assert_eq!((fc.window(), fc.stride()), ([SIDE, SIDE], 4));
    // The first dense layer reads a [16, 4, 4] map: a 4x4 kernel; the others are 1x1.
    let kernels: Vec<[usize; 2]> = fc.head().iter().map(|c| c.config().kernel_size).collect();
    assert_eq!(kernels, vec![[4, 4], [1, 1]]);

    // On the training size: a 1x1 map holding the dense output.
    let images = Shapes::generate(&ShapesConfig::single_object(SIDE), 8, 7).unwrap();
    let x = images.images_tensor(&CPU).unwrap();
    let dense = loc.forward_boxes(&x).unwrap();
    let map = fc.forward_map(&x).unwrap();
    assert_eq!(map.dims(), [8, 4, 1, 1]);
    let diff = (map.flatten_from(1).unwrap() - &dense).unwrap().abs().unwrap();
    let max = diff.max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(max < 1e-5, "max difference {max}");

    // On a 40x44 image: (40 - 24) / 4 + 1 = 5 rows and 6 columns of windows.
    let big = Shapes::generate(
        &ShapesConfig { height: 40, width: 44, objects: [3, 3], ..ShapesConfig::default() },
        2,
        11,
    )
    .unwrap()
    .images_tensor(&CPU)
    .unwrap();
    let map = fc.forward_map(&big).unwrap();
    assert_eq!(map.dims(), [2, 4, 5, 6]);
    for (i, j) in [(0, 0), (2, 3), (4, 5), (1, 4)] {
        let crop = big.narrow(2, 4 * i, SIDE).unwrap().narrow(3, 4 * j, SIDE).unwrap();
        let want = loc.forward_boxes(&crop.contiguous().unwrap()).unwrap();
        let got = map.narrow(2, i, 1).unwrap().narrow(3, j, 1).unwrap().flatten_from(1).unwrap();
        let max = (got - want).unwrap().abs().unwrap().max_all().unwrap();
        let max = max.to_scalar::<f32>().unwrap();
        assert!(max < 1e-5, "cell ({i}, {j}): max difference {max}");
    }
    // Window boxes in image coordinates: cell (i, j)'s box is the crop's box shifted.
    let boxes = fc.image_boxes(&map, 1, 40, 44).unwrap();
    assert_eq!(boxes.len(), 30);
    let crop = big.get(1).unwrap().narrow(1, 8, SIDE).unwrap().narrow(2, 12, SIDE).unwrap();
    let crop_box = loc.forward_boxes(&crop.unsqueeze(0).unwrap().contiguous().unwrap()).unwrap();
    let cb: Vec<f32> = crop_box.flatten_all().unwrap().to_vec1().unwrap();
    let b = boxes[2 * 6 + 3];
    assert!((b.cx() - (12.0 + cb[0] * 24.0) / 44.0).abs() < 1e-5);
    assert!((b.height() - cb[3] * 24.0 / 40.0).abs() < 1e-5);

    // The weights are copies: zeroing the localizer's variables changes its output (to
    // sigmoid(0) = 0.5 everywhere) but not the converted net's.
    let converted = map_of(&fc.forward_map(&x).unwrap());
    for var in vm.all_vars() {
        var.set(&var.zeros_like().unwrap()).unwrap();
    }
    assert!(map_of(&loc.forward_boxes(&x).unwrap()).iter().all(|&v| v == 0.5));
    assert_eq!(map_of(&fc.forward_map(&x).unwrap()), converted);

    // Bad input: smaller than the window, wrong channels, a dense weight of the wrong size.
    let small = Tensor::zeros((1, 1, 20, 30), candle_core::DType::F32, &CPU).unwrap();
    assert!(fc.forward_map(&small).unwrap_err().to_string().contains("smaller than the 24x24"));
    let rgb = Tensor::zeros((1, 3, 24, 24), candle_core::DType::F32, &CPU).unwrap();
    assert!(fc.forward_map(&rgb).is_err());
    let w = Tensor::zeros((4, 10), candle_core::DType::F32, &CPU).unwrap();
    let e = dense_as_conv(&w, None, [2, 2, 2]).unwrap_err().to_string();
    assert!(e.contains("[4, 10]") && e.contains("[2, 2, 2]"), "{e}");
}

fn map_of(dense: &Tensor) -> Vec<f32> {
    dense.flatten_all().unwrap().to_vec1().unwrap()
}

/// Shapes for segmentation: 24x24, 1 to 3 objects of 6 to 16 pixels.
fn seg_config() -> ShapesConfig {
    ShapesConfig { height: SIDE, width: SIDE, ..ShapesConfig::default() }
}

#[test]
fn fcn_segments_shapes_well_above_the_all_background_baseline() {
    let train = Shapes::generate(&seg_config(), 800, 0).unwrap();
    let test = Shapes::generate(&seg_config(), 200, 100).unwrap();
    let vm = VarMap::new();
    let fcn = Fcn::seeded(&FcnConfig::new(1, SIDE, SIDE, 3), &vm, &CPU, 0).unwrap();
    let config = FitConfig::new(12, 16, 0, adam(2e-3));
    fit(&fcn, &vm, &train.segmentation_dataset().unwrap(), None, &config, FitHooks::default())
        .unwrap();
    let predicted = fcn.predict(&test.images_tensor(&CPU).unwrap(), 100).unwrap();
    let scores = confusion_mean_iou(&predicted, test.masks(), 3).unwrap();
    let background = vec![0u8; predicted.len()];
    let baseline = confusion_mean_iou(&background, test.masks(), 3).unwrap();
    println!(
        "FCN mean IoU {:.3} (per class {:?}, pixel accuracy {:.3}); all background {:.3}",
        scores.mean_iou, scores.per_class_iou, scores.pixel_accuracy, baseline.mean_iou
    );
    assert!(baseline.mean_iou < 0.3, "baseline {}", baseline.mean_iou);
    assert!(scores.mean_iou > 0.6, "mean IoU {}", scores.mean_iou);
    // Both object classes are found, not just object versus background.
    for c in 1..3 {
        assert!(scores.per_class_iou[c].unwrap() > 0.4, "{:?}", scores.per_class_iou);
    }
}

#[test]
fn fcn_output_shapes_and_bad_input() {
    let x = Shapes::generate(&seg_config(), 2, 1).unwrap().images_tensor(&CPU).unwrap();
    for skips in 0..=2 {
        let vm = VarMap::new();
        let config = FcnConfig { skips, ..FcnConfig::new(1, SIDE, SIDE, 3) };
        let fcn = Fcn::seeded(&config, &vm, &CPU, 0).unwrap();
        assert_eq!(fcn.scores(&x).unwrap().dims(), [2, 3, SIDE, SIDE]);
        assert_eq!(fcn.predict(&x, 1).unwrap().len(), 2 * SIDE * SIDE);
        // up.1 and up.2 exist only with skips; up_final unless the skips reach stride 1.
        let names = vm.data().lock().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(names.iter().any(|n| n.starts_with("up.2.")), skips == 2, "{names:?}");
        assert!(names.iter().any(|n| n == "up_final.weight"));
    }
    let vm = VarMap::new();
    let fcn = Fcn::seeded(&FcnConfig::new(1, SIDE, SIDE, 3), &vm, &CPU, 0).unwrap();
    let wrong = Tensor::zeros((1, 1, 16, 16), candle_core::DType::F32, &CPU).unwrap();
    assert!(fcn.scores(&wrong).unwrap_err().to_string().contains("[N, 1, 24, 24]"));
    // A mask value outside the classes is an error from fit, before any step.
    let mut row = vec![0f32; 2 * SIDE * SIDE];
    row[SIDE * SIDE + 5] = 3.0;
    let data = Dataset::new(row, 2 * SIDE * SIDE, None).unwrap();
    let e = fit(&fcn, &vm, &data, None, &FitConfig::new(1, 4, 0, adam(1e-3)), FitHooks::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("mask value 3"), "{e}");
    // Localization rows handed to the FCN: the row size is named.
    let loc_rows = Shapes::generate(&ShapesConfig::single_object(SIDE), 2, 0)
        .unwrap()
        .localization_dataset()
        .unwrap();
    let e =
        fit(&fcn, &vm, &loc_rows, None, &FitConfig::new(1, 4, 0, adam(1e-3)), FitHooks::default())
            .unwrap_err()
            .to_string();
    assert!(e.contains("rows of 580 values"), "{e}");
}

#[test]
fn same_seed_gives_the_same_trained_localizer_bit_for_bit() {
    let weights = |seed| {
        let (_, vm) = trained_localizer(64, 1, seed);
        let mut names: Vec<(String, Vec<f32>)> = vm
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.flatten_all().unwrap().to_vec1().unwrap()))
            .collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        names
    };
    let a = weights(5);
    assert_eq!(a, weights(5));
    assert_ne!(a, weights(6));
}

/// Box sizes around three centres (w, h), jittered by up to 10%.
fn clustered_boxes(n_per: usize, seed: u64) -> (Vec<BoundingBox>, [[f32; 2]; 3]) {
    let centres = [[0.08, 0.08], [0.5, 0.15], [0.2, 0.6]];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut boxes = Vec::new();
    for _ in 0..n_per {
        for c in centres {
            let w = c[0] * rng.random_range(0.9..1.1);
            let h = c[1] * rng.random_range(0.9..1.1);
            boxes.push(BoundingBox::new(rng.random_range(0.3..0.7), 0.5, w, h).unwrap());
        }
    }
    (boxes, centres)
}

/// The mean, over `draws` draws of `k` distinct random boxes of the data, of the mean IoU to
/// the nearest of them.
fn random_anchor_iou(boxes: &[BoundingBox], k: usize, draws: usize) -> f32 {
    let sizes: Vec<[f32; 2]> = boxes.iter().map(|b| [b.width(), b.height()]).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let total: f32 = (0..draws)
        .map(|_| {
            let picks = rand::seq::index::sample(&mut rng, sizes.len(), k);
            let anchors: Vec<[f32; 2]> = picks.iter().map(|i| sizes[i]).collect();
            mean_best_iou(&sizes, &anchors).unwrap()
        })
        .sum();
    total / draws as f32
}

#[test]
fn kmeans_anchors_recover_separated_clusters_and_beat_random_boxes() {
    let (boxes, centres) = clustered_boxes(40, 1);
    for seed in 0..3 {
        let anchors = kmeans_anchors(&boxes, &AnchorConfig::new(3, seed)).unwrap();
        assert!(anchors.converged);
        // Sorted by area: the 0.08 x 0.08 cluster, then 0.5 x 0.15 (0.075), then 0.2 x 0.6.
        for (a, c) in anchors.sizes.iter().zip([centres[0], centres[1], centres[2]]) {
            assert!(
                (a[0] / c[0] - 1.0).abs() < 0.05 && (a[1] / c[1] - 1.0).abs() < 0.05,
                "anchor {a:?} vs cluster {c:?}"
            );
        }
        let random = random_anchor_iou(&boxes, 3, 50);
        assert!(
            anchors.mean_iou > 0.85 && anchors.mean_iou > random + 0.1,
            "{anchors:?} vs {random}"
        );
    }
    // On the shapes boxes (no planted clusters), 5 anchors still beat 5 random boxes.
    let shapes = Shapes::generate(&ShapesConfig::default(), 300, 2).unwrap();
    let boxes: Vec<BoundingBox> = shapes.objects().iter().flatten().map(|o| o.bbox).collect();
    let anchors = kmeans_anchors(&boxes, &AnchorConfig::new(5, 0)).unwrap();
    let random = random_anchor_iou(&boxes, 5, 50);
    println!(
        "shapes: 5 anchors {:?}, mean IoU {:.3}, random {random:.3}",
        anchors.sizes, anchors.mean_iou
    );
    assert!(anchors.mean_iou > random + 0.03, "{} vs {random}", anchors.mean_iou);
    // k larger than the number of boxes, and no boxes, are errors.
    assert!(kmeans_anchors(&boxes[..4], &AnchorConfig::new(5, 0)).is_err());
    assert!(kmeans_anchors(&[], &AnchorConfig::new(1, 0)).is_err());
}

#[test]
fn nms_keeps_one_detection_per_object_from_jittered_candidates() {
    let config = ShapesConfig { objects: [3, 3], size: [6, 10], ..ShapesConfig::default() };
    let shapes = Shapes::generate(&config, 20, 4).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for objects in shapes.objects() {
        // Five candidates per object, shifted by up to 1 pixel and scaled by up to 10%;
        // objects whose boxes overlap may keep fewer.
        let mut dets = Vec::new();
        for (k, o) in objects.iter().enumerate() {
            let b = o.bbox;
            for _ in 0..5 {
                let bbox = BoundingBox::new(
                    b.cx() + rng.random_range(-1.0..1.0) / 32.0,
                    b.cy() + rng.random_range(-1.0..1.0) / 32.0,
                    b.width() * rng.random_range(0.9..1.1),
                    b.height() * rng.random_range(0.9..1.1),
                )
                .unwrap();
                dets.push(Detection { bbox, score: rng.random_range(0.0..1.0), class: k });
            }
        }
        let disjoint = objects
            .iter()
            .enumerate()
            .all(|(i, a)| objects[i + 1..].iter().all(|b| iou(&a.bbox, &b.bbox) == 0.0));
        let kept = nms(&dets, 0.3, false).unwrap();
        if disjoint {
            // One per object: the highest-scored candidate of each.
            assert_eq!(kept.len(), 3, "{kept:?}");
            for k in 0..3 {
                let best = (0..dets.len())
                    .filter(|&i| dets[i].class == k)
                    .max_by(|&i, &j| dets[i].score.total_cmp(&dets[j].score))
                    .unwrap();
                assert!(kept.contains(&best));
            }
        }
        // Per class, each object keeps exactly its best candidate, overlapping or not.
        assert_eq!(nms(&dets, 0.3, true).unwrap().len(), 3);
    }
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    assert!(BoundingBox::new(0.5, 0.5, 0.1, -0.2).unwrap_err().to_string().contains("negative"));
    assert!(BoundingBox::from_corners(0.6, 0.1, 0.2, 0.3).is_err());
    assert!(nms(&[], 0.5, false).unwrap().is_empty());
    assert!(nms(&[], 1.5, false).is_err());
    let e = kmeans_anchors(&[], &AnchorConfig::new(2, 0)).unwrap_err().to_string();
    assert!(e.contains("at least one box"), "{e}");
    let one = [BoundingBox::new(0.5, 0.5, 0.1, 0.1).unwrap()];
    let e = kmeans_anchors(&one, &AnchorConfig::new(2, 0)).unwrap_err().to_string();
    assert!(e.contains("k = 2") && e.contains("1 boxes"), "{e}");
    assert!(mean_box(&[]).is_err());
    // A localizer for 24x24 images refuses other sizes, and a config whose stages shrink
    // the image to nothing.
    let vm = VarMap::new();
    let loc = Localizer::seeded(&LocalizerConfig::new(1, SIDE, SIDE), &vm, &CPU, 0).unwrap();
    let x = Tensor::zeros((2, 1, 28, 28), candle_core::DType::F32, &CPU).unwrap();
    assert!(loc.forward_boxes(&x).unwrap_err().to_string().contains("[N, 1, 24, 24]"));
    let tiny = LocalizerConfig::new(1, 8, 8);
    assert!(Localizer::seeded(&tiny, &VarMap::new(), &CPU, 0).is_err());
    // Multi-object images have no single box to regress.
    let multi = Shapes::generate(&ShapesConfig { objects: [2, 3], ..seg_config() }, 3, 0).unwrap();
    assert!(multi.localization_dataset().unwrap_err().to_string().contains("exactly one"));
    assert!(loc.mean_iou(&multi).is_err());
    assert!(confusion_mean_iou(&[0, 1], &[0], 3).is_err());
}
