//! Anchor-box sizes by K-Means clustering of the training boxes' sizes, with the distance
//! `d(box, anchor) = 1 - IoU(box, anchor)` between boxes aligned at a common centre
//! (Redmon and Farhadi 2017, "YOLO9000", section "Dimension clusters"). Euclidean K-Means on
//! `(w, h)` would let large boxes dominate the error; the IoU distance is scale-free.
//!
//! With both boxes centred at the origin, `IoU((w1, h1), (w2, h2)) = min(w1, w2) min(h1, h2)
//! / (w1 h1 + w2 h2 - min(w1, w2) min(h1, h2))` ([`wh_iou`]).
//!
//! Lloyd's algorithm: start from k-means++ seeds (Arthur and Vassilvitskii 2007: the first
//! centre uniform among the boxes, each next one a box drawn with probability proportional
//! to `d(box, nearest centre)^2`, from a `ChaCha8Rng`), then alternate assigning each box to
//! its nearest anchor (the largest IoU; ties to the lower index) and moving each anchor to
//! the mean `(w, h)` of its boxes (an anchor with no boxes stays), until no assignment
//! changes or `max_iter` rounds. The anchors are returned sorted by area, with the mean IoU
//! of each box with its nearest anchor, the quality measure YOLOv2 reports ("Avg IOU").

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::boxes::BoundingBox;
use super::{config_error, VisionError};

/// The settings of [`kmeans_anchors`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorConfig {
    /// The number of anchors (YOLOv2 chose 5 on VOC and COCO).
    pub k: usize,
    /// The most rounds of Lloyd's algorithm (default 100).
    pub max_iter: usize,
    /// Seeds the k-means++ initialisation.
    pub seed: u64,
}

impl AnchorConfig {
    /// `k` anchors, at most 100 rounds.
    pub fn new(k: usize, seed: u64) -> Self {
        Self { k, max_iter: 100, seed }
    }
}

/// The result of [`kmeans_anchors`].
#[derive(Debug, Clone, PartialEq)]
pub struct Anchors {
    /// `[w, h]` of each anchor, by increasing area.
    pub sizes: Vec<[f32; 2]>,
    /// The mean over the boxes of the IoU with their nearest anchor.
    pub mean_iou: f32,
    /// For each box, the index (into `sizes`) of its nearest anchor.
    pub assignments: Vec<usize>,
    /// Rounds of Lloyd's algorithm run.
    pub iterations: usize,
    /// Whether the assignments stopped changing before `max_iter`.
    pub converged: bool,
}

/// The IoU of two boxes of sizes `a = [w, h]` and `b` sharing their centre; 0 when the union
/// is empty.
pub fn wh_iou(a: [f32; 2], b: [f32; 2]) -> f32 {
    let inter = a[0].min(b[0]) * a[1].min(b[1]);
    let union = a[0] * a[1] + b[0] * b[1] - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// The index and IoU of the anchor nearest to `size` (largest IoU, ties to the lower index).
fn nearest(size: [f32; 2], anchors: &[[f32; 2]]) -> (usize, f32) {
    let mut best = (0, f32::NEG_INFINITY);
    for (j, &a) in anchors.iter().enumerate() {
        let v = wh_iou(size, a);
        if v > best.1 {
            best = (j, v);
        }
    }
    best
}

/// The mean over `sizes` of the IoU with the nearest of `anchors` (both `[w, h]`, centred).
/// Errors when either list is empty.
pub fn mean_best_iou(sizes: &[[f32; 2]], anchors: &[[f32; 2]]) -> Result<f32, VisionError> {
    if sizes.is_empty() || anchors.is_empty() {
        return Err(VisionError::Input(format!(
            "mean IoU to the nearest anchor needs boxes and anchors, got {} boxes and {} anchors",
            sizes.len(),
            anchors.len()
        )));
    }
    let sum: f64 = sizes.iter().map(|&s| f64::from(nearest(s, anchors).1)).sum();
    Ok((sum / sizes.len() as f64) as f32)
}

/// Checks the boxes and `k` and returns the sizes.
fn sizes_of(boxes: &[BoundingBox], config: &AnchorConfig) -> Result<Vec<[f32; 2]>, VisionError> {
    if boxes.is_empty() {
        return Err(VisionError::Input("K-Means anchors need at least one box, got none".into()));
    }
    if config.k == 0 || config.max_iter == 0 {
        return Err(config_error(
            "anchor config",
            format!("k = {}, max_iter = {}: expected both >= 1", config.k, config.max_iter),
        ));
    }
    if config.k > boxes.len() {
        return Err(config_error(
            "anchor config",
            format!(
                "k = {} anchors from only {} boxes: expected k <= the box count",
                config.k,
                boxes.len()
            ),
        ));
    }
    if let Some(i) = boxes.iter().position(|b| b.area() <= 0.0) {
        return Err(VisionError::Box(format!(
            "box {i} has zero area ({:?}); anchors need boxes of positive width and height",
            boxes[i].centre_form()
        )));
    }
    let sizes: Vec<[f32; 2]> = boxes.iter().map(|b| [b.width(), b.height()]).collect();
    let mut distinct: Vec<[u32; 2]> =
        sizes.iter().map(|s| [s[0].to_bits(), s[1].to_bits()]).collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < config.k {
        return Err(config_error(
            "anchor config",
            format!(
                "k = {} anchors from only {} distinct box sizes: expected k <= that",
                config.k,
                distinct.len()
            ),
        ));
    }
    Ok(sizes)
}

/// k-means++ seeds: `k` distinct sizes (the caller checked there are at least `k`).
fn plus_plus_init(sizes: &[[f32; 2]], k: usize, rng: &mut ChaCha8Rng) -> Vec<[f32; 2]> {
    let mut centres = vec![sizes[rng.random_range(0..sizes.len())]];
    let mut d2: Vec<f64> =
        sizes.iter().map(|&s| f64::from(1.0 - wh_iou(s, centres[0])).powi(2)).collect();
    while centres.len() < k {
        let total: f64 = d2.iter().sum();
        let mut target = rng.random::<f64>() * total;
        // The last box with a positive weight, should rounding run past the end.
        let mut pick = d2.iter().rposition(|&d| d > 0.0).unwrap_or(0);
        for (i, &d) in d2.iter().enumerate() {
            if d > 0.0 && target < d {
                pick = i;
                break;
            }
            target -= d;
        }
        let c = sizes[pick];
        centres.push(c);
        for (d, &s) in d2.iter_mut().zip(sizes) {
            *d = d.min(f64::from(1.0 - wh_iou(s, c)).powi(2));
        }
    }
    centres
}

/// K-Means anchors for `boxes`; see the [module documentation](self). Errors on no boxes,
/// `k = 0`, `k` larger than the number of boxes (or of distinct sizes), a zero-area box.
pub fn kmeans_anchors(
    boxes: &[BoundingBox],
    config: &AnchorConfig,
) -> Result<Anchors, VisionError> {
    let sizes = sizes_of(boxes, config)?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut anchors = plus_plus_init(&sizes, config.k, &mut rng);
    let mut assignments = vec![usize::MAX; sizes.len()];
    let (mut iterations, mut converged) = (0, false);
    while iterations < config.max_iter {
        iterations += 1;
        let mut changed = false;
        for (a, &s) in assignments.iter_mut().zip(&sizes) {
            let j = nearest(s, &anchors).0;
            changed |= *a != j;
            *a = j;
        }
        if !changed {
            converged = true;
            break;
        }
        let mut sums = vec![[0f64; 3]; config.k];
        for (&a, s) in assignments.iter().zip(&sizes) {
            sums[a][0] += f64::from(s[0]);
            sums[a][1] += f64::from(s[1]);
            sums[a][2] += 1.0;
        }
        for (anchor, [w, h, n]) in anchors.iter_mut().zip(sums) {
            if n > 0.0 {
                *anchor = [(w / n) as f32, (h / n) as f32];
            }
        }
    }
    anchors.sort_by(|a, b| (a[0] * a[1]).total_cmp(&(b[0] * b[1])));
    let assignments = sizes.iter().map(|&s| nearest(s, &anchors).0).collect();
    let mean_iou = mean_best_iou(&sizes, &anchors)?;
    Ok(Anchors { sizes: anchors, mean_iou, assignments, iterations, converged })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(w: f32, h: f32) -> BoundingBox {
        BoundingBox::new(0.5, 0.5, w, h).unwrap()
    }

    #[test]
    fn wh_iou_by_hand() {
        // 2x1 and 1x2 centred: intersection 1x1 = 1, union 2 + 2 - 1 = 3.
        assert!((wh_iou([2.0, 1.0], [1.0, 2.0]) - 1.0 / 3.0).abs() < 1e-7);
        assert_eq!(wh_iou([1.0, 1.0], [1.0, 1.0]), 1.0);
        // 1x1 inside 2x2: 1 / 4.
        assert_eq!(wh_iou([1.0, 1.0], [2.0, 2.0]), 0.25);
        assert_eq!(wh_iou([0.0, 0.0], [0.0, 0.0]), 0.0);
        assert_eq!(mean_best_iou(&[[1.0, 1.0], [2.0, 2.0]], &[[1.0, 1.0]]).unwrap(), 0.625);
    }

    #[test]
    fn two_exact_clusters_are_found_in_one_step() {
        let boxes = [b(0.1, 0.1), b(0.1, 0.1), b(0.5, 0.2), b(0.5, 0.2), b(0.5, 0.2)];
        let a = kmeans_anchors(&boxes, &AnchorConfig::new(2, 0)).unwrap();
        assert_eq!(a.sizes, vec![[0.1, 0.1], [0.5, 0.2]]);
        assert_eq!(a.assignments, vec![0, 0, 1, 1, 1]);
        assert_eq!(a.mean_iou, 1.0);
        assert!(a.converged);
    }

    #[test]
    fn bad_input_is_an_error() {
        let boxes = [b(0.1, 0.1), b(0.2, 0.3)];
        let e = kmeans_anchors(&[], &AnchorConfig::new(1, 0)).unwrap_err().to_string();
        assert!(e.contains("at least one box"), "{e}");
        let e = kmeans_anchors(&boxes, &AnchorConfig::new(3, 0)).unwrap_err().to_string();
        assert!(e.contains("k = 3") && e.contains("2 boxes"), "{e}");
        assert!(kmeans_anchors(&boxes, &AnchorConfig::new(0, 0)).is_err());
        let dup = [b(0.1, 0.1), b(0.1, 0.1), b(0.2, 0.2)];
        let e = kmeans_anchors(&dup, &AnchorConfig::new(3, 0)).unwrap_err().to_string();
        assert!(e.contains("2 distinct"), "{e}");
        let flat = [b(0.1, 0.1), b(0.2, 0.0)];
        let e = kmeans_anchors(&flat, &AnchorConfig::new(1, 0)).unwrap_err().to_string();
        assert!(e.contains("box 1 has zero area"), "{e}");
        let e = AnchorConfig { max_iter: 0, ..AnchorConfig::new(1, 0) };
        assert!(kmeans_anchors(&boxes, &e).is_err());
        assert!(mean_best_iou(&[], &[[1.0, 1.0]]).is_err());
    }
}
