//! Localization and segmentation on the synthetic shapes (`deeprl_nets::vision`):
//!
//! 1. trains the box regressor on single-object 24x24 images and prints the held-out mean
//!    IoU next to the mean-box baseline; draws test images with the true box (solid) and
//!    the predicted box (dashed) to `shapes_localization.png`;
//! 2. turns the trained localizer into a fully convolutional sliding-window net and runs it
//!    over a 48x48 image (a 7x7 map of window boxes);
//! 3. clusters the boxes of multi-object images into 5 anchors (K-Means, 1 - IoU);
//! 4. trains the FCN-8s-style segmenter and, with the same budget, the variant without skip
//!    connections (FCN-32s-style), prints per-class and mean IoU, and draws image / true
//!    mask / predicted mask triples to `shapes_segmentation.png`.
//!
//! `cargo run --release -p deeprl-nets --example shapes_vision -- [OUT_DIR]` (default: the
//! workspace's `docs/`). About three minutes on one loaded core (the FCN without skips
//! upsamples 8x by one 16x16 transposed convolution, the slowest part).

use std::path::PathBuf;
use std::time::Instant;

use candle_core::Device;
use candle_nn::VarMap;
use deeprl_nets::data::png::save_grid_png;
use deeprl_nets::optim::{AdamConfig, OptimizerConfig};
use deeprl_nets::train::{fit, FitConfig, FitHooks};
use deeprl_nets::vision::{
    confusion_mean_iou, kmeans_anchors, mean_box, mean_iou, AnchorConfig, BoundingBox, Fcn,
    FcnConfig, FullyConvLocalizer, Localizer, LocalizerConfig, Shapes, ShapesConfig,
};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const SIDE: usize = 24;
const ZOOM: usize = 4;

fn adam(lr: f64) -> OptimizerConfig {
    OptimizerConfig::Adam(AdamConfig { lr, ..AdamConfig::default() })
}

/// Draws the outline of `b` (fractions of the image) on a `side x side` canvas; `dash` > 0
/// leaves gaps of `dash` pixels.
fn draw_box(canvas: &mut [f32], side: usize, b: &BoundingBox, value: f32, dash: usize) {
    let px = |v: f32| ((v * side as f32).round() as isize).clamp(0, side as isize - 1) as usize;
    let [x0, y0, x1, y1] = b.corners();
    let (x0, y0, x1, y1) = (px(x0), px(y0), px(x1), px(y1));
    let on = |t: usize| dash == 0 || (t / dash).is_multiple_of(2);
    for x in x0..=x1 {
        for y in [y0, y1] {
            if on(x) {
                canvas[y * side + x] = value;
            }
        }
    }
    for y in y0..=y1 {
        for x in [x0, x1] {
            if on(y) {
                canvas[y * side + x] = value;
            }
        }
    }
}

/// Image `i` of `shapes` (one channel) scaled up `ZOOM` times and dimmed.
fn zoomed(shapes: &Shapes, i: usize) -> Res<Vec<f32>> {
    let img = shapes.image(i).ok_or("image index")?;
    let side = SIDE * ZOOM;
    Ok((0..side * side).map(|k| 0.7 * img[(k / side / ZOOM) * SIDE + (k % side) / ZOOM]).collect())
}

fn localization(out: &std::path::Path) -> Res<Localizer> {
    let config = ShapesConfig::single_object(SIDE);
    let train = Shapes::generate(&config, 3000, 0)?;
    let test = Shapes::generate(&config, 500, 1)?;
    let vm = VarMap::new();
    let loc = Localizer::seeded(&LocalizerConfig::new(1, SIDE, SIDE), &vm, &Device::Cpu, 0)?;
    let t = Instant::now();
    let fit_config = FitConfig::new(15, 16, 0, adam(2e-3));
    fit(&loc, &vm, &train.localization_dataset()?, None, &fit_config, FitHooks::default())?;
    let truth = test.single_boxes()?;
    let constant = mean_box(&train.single_boxes()?)?;
    let baseline = mean_iou(&vec![constant; truth.len()], &truth)?;
    let predicted = loc.predict(&test.images_tensor(&Device::Cpu)?, 256)?;
    let hits = predicted.iter().zip(&truth).filter(|(p, t)| deeprl_nets::vision::iou(p, t) > 0.5);
    println!(
        "localization: held-out mean IoU {:.3} (IoU > 0.5 on {:.1}% of images); mean box {:.3}; \
         trained in {:.1} s",
        mean_iou(&predicted, &truth)?,
        100.0 * hits.count() as f64 / truth.len() as f64,
        baseline,
        t.elapsed().as_secs_f64()
    );
    let mut tiles = Vec::new();
    for i in 0..12 {
        let mut canvas = zoomed(&test, i)?;
        draw_box(&mut canvas, SIDE * ZOOM, &truth[i], 1.0, 0);
        draw_box(&mut canvas, SIDE * ZOOM, &predicted[i], 1.0, 3);
        tiles.push(canvas);
    }
    let path = out.join("shapes_localization.png");
    save_grid_png(&path, &tiles, SIDE * ZOOM, 6, 1)?;
    println!("  wrote {} (true box solid, predicted dashed)", path.display());
    Ok(loc)
}

fn sliding_window(loc: &Localizer) -> Res<()> {
    let fc = FullyConvLocalizer::from_localizer(loc)?;
    let config = ShapesConfig {
        height: 48,
        width: 48,
        objects: [2, 2],
        size: [4, 12],
        ..ShapesConfig::default()
    };
    let big = Shapes::generate(&config, 1, 5)?;
    let map = fc.forward_map(&big.images_tensor(&Device::Cpu)?)?;
    let boxes = fc.image_boxes(&map, 0, 48, 48)?;
    let truth: Vec<BoundingBox> = big.objects()[0].iter().map(|o| o.bbox).collect();
    let best: Vec<f32> = truth
        .iter()
        .map(|t| boxes.iter().map(|b| deeprl_nets::vision::iou(b, t)).fold(0.0, f32::max))
        .collect();
    println!(
        "sliding window: a 48x48 image gives a {:?} map of window boxes ({} windows {}x{}, \
         stride {}); best window IoU with each of the 2 objects {:.2?}",
        &map.dims()[2..],
        boxes.len(),
        SIDE,
        SIDE,
        fc.stride(),
        best
    );
    Ok(())
}

fn anchors() -> Res<()> {
    let shapes = Shapes::generate(&ShapesConfig::default(), 1000, 3)?;
    let boxes: Vec<BoundingBox> = shapes.objects().iter().flatten().map(|o| o.bbox).collect();
    let a = kmeans_anchors(&boxes, &AnchorConfig::new(5, 0))?;
    let sizes: Vec<String> = a.sizes.iter().map(|s| format!("{:.2}x{:.2}", s[0], s[1])).collect();
    println!(
        "anchors: k = 5 over {} boxes: {} (w x h); mean IoU to the nearest {:.3}, {} rounds",
        boxes.len(),
        sizes.join(", "),
        a.mean_iou,
        a.iterations
    );
    Ok(())
}

/// Trains an FCN with `skips` skip connections; returns it with its held-out scores.
fn segmenter(train: &Shapes, test: &Shapes, skips: usize) -> Res<(Fcn, Vec<u8>, f64)> {
    let vm = VarMap::new();
    let config = FcnConfig { skips, ..FcnConfig::new(1, SIDE, SIDE, 3) };
    let fcn = Fcn::seeded(&config, &vm, &Device::Cpu, 0)?;
    let t = Instant::now();
    let fit_config = FitConfig::new(20, 16, 0, adam(2e-3));
    fit(&fcn, &vm, &train.segmentation_dataset()?, None, &fit_config, FitHooks::default())?;
    let predicted = fcn.predict(&test.images_tensor(&Device::Cpu)?, 200)?;
    let s = confusion_mean_iou(&predicted, test.masks(), 3)?;
    let per_class: Vec<String> =
        s.per_class_iou.iter().map(|v| v.map_or("-".into(), |v| format!("{v:.3}"))).collect();
    println!(
        "segmentation, {skips} skip(s): mean IoU {:.3} (background, rectangle, disc: {}), pixel \
         accuracy {:.3}; trained in {:.1} s",
        s.mean_iou,
        per_class.join(", "),
        s.pixel_accuracy,
        t.elapsed().as_secs_f64()
    );
    Ok((fcn, predicted, s.mean_iou))
}

fn segmentation(out: &std::path::Path) -> Res<()> {
    let config = ShapesConfig { height: SIDE, width: SIDE, ..ShapesConfig::default() };
    let train = Shapes::generate(&config, 2000, 10)?;
    let test = Shapes::generate(&config, 500, 11)?;
    let background = vec![0u8; test.masks().len()];
    println!(
        "segmentation: all-background baseline mean IoU {:.3}",
        confusion_mean_iou(&background, test.masks(), 3)?.mean_iou
    );
    let (_, predicted, _) = segmenter(&train, &test, 2)?;
    segmenter(&train, &test, 0)?;
    let pixels = SIDE * SIDE;
    let mut tiles = Vec::new();
    for i in 0..8 {
        tiles.push(test.image(i).ok_or("image index")?.to_vec());
        let mask = test.mask(i).ok_or("mask index")?;
        tiles.push(mask.iter().map(|&m| f32::from(m) * 0.5).collect());
        tiles.push(
            predicted[i * pixels..(i + 1) * pixels].iter().map(|&m| f32::from(m) * 0.5).collect(),
        );
    }
    let path = out.join("shapes_segmentation.png");
    save_grid_png(&path, &tiles, SIDE, 6, 3)?;
    println!(
        "  wrote {} (image, true mask, predicted mask; rectangle grey, disc white)",
        path.display()
    );
    Ok(())
}

fn main() -> Res<()> {
    let out = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs"));
    let loc = localization(&out)?;
    sliding_window(&loc)?;
    anchors()?;
    segmentation(&out)?;
    Ok(())
}
