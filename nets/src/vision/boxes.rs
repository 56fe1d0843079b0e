//! Axis-aligned bounding boxes, intersection over union, and greedy non-max suppression.
//!
//! A [`BoundingBox`] is stored in centre form `(cx, cy, w, h)` (what the localizer regresses,
//! as in YOLO) and converts to and from corner form `(x_min, y_min, x_max, y_max)` with
//! `x_min = cx - w / 2`, `x_max = cx + w / 2` (likewise in y). Coordinates are in any unit;
//! the shapes data set uses fractions of the image size. The constructors reject negative
//! sizes and non-finite numbers, so every box in hand is valid and the functions below
//! cannot fail on a box.
//!
//! Intersection over union (the Jaccard index) `IoU(a, b) = |a ∩ b| / |a ∪ b|` with
//! `|a ∩ b| = max(0, min(ax1, bx1) - max(ax0, bx0)) * max(0, min(ay1, by1) - max(ay0, by0))`
//! and `|a ∪ b| = |a| + |b| - |a ∩ b|`. Disjoint boxes score 0; when the union is empty (two
//! zero-area boxes) the IoU is defined as 0 rather than torchvision's `0 / 0 = NaN`.
//!
//! Non-max suppression (as in R-CNN, Girshick et al. 2014, and torchvision's `nms` /
//! `batched_nms`): visit the detections by decreasing score, keep one unless a kept detection
//! (of the same class, with `per_class`) overlaps it with `IoU > iou_threshold`.

use super::VisionError;

/// An axis-aligned box in centre form; see the [module documentation](self).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    cx: f32,
    cy: f32,
    w: f32,
    h: f32,
}

fn check_finite(what: &str, values: &[f32]) -> Result<(), VisionError> {
    if values.iter().any(|v| !v.is_finite()) {
        return Err(VisionError::Box(format!("{what} {values:?}: expected finite numbers")));
    }
    Ok(())
}

impl BoundingBox {
    /// A box of centre `(cx, cy)`, width `w` and height `h`; errors when a size is negative
    /// or a number is not finite.
    pub fn new(cx: f32, cy: f32, w: f32, h: f32) -> Result<Self, VisionError> {
        check_finite("centre-form box (cx, cy, w, h)", &[cx, cy, w, h])?;
        if w < 0.0 || h < 0.0 {
            return Err(VisionError::Box(format!(
                "centre-form box (cx {cx}, cy {cy}, w {w}, h {h}) has a negative size"
            )));
        }
        Ok(Self { cx, cy, w, h })
    }

    /// The box spanning `[x_min, x_max] x [y_min, y_max]`; errors when `x_max < x_min` or
    /// `y_max < y_min` or a number is not finite.
    pub fn from_corners(
        x_min: f32,
        y_min: f32,
        x_max: f32,
        y_max: f32,
    ) -> Result<Self, VisionError> {
        check_finite(
            "corner-form box (x_min, y_min, x_max, y_max)",
            &[x_min, y_min, x_max, y_max],
        )?;
        if x_max < x_min || y_max < y_min {
            return Err(VisionError::Box(format!(
                "corner-form box (x_min {x_min}, y_min {y_min}, x_max {x_max}, y_max {y_max}) \
                 has a negative size: expected x_max >= x_min and y_max >= y_min"
            )));
        }
        Ok(Self {
            cx: 0.5 * (x_min + x_max),
            cy: 0.5 * (y_min + y_max),
            w: x_max - x_min,
            h: y_max - y_min,
        })
    }

    /// A box from `[cx, cy, w, h]` (a row of a model's output).
    pub fn from_centre_slice(v: &[f32]) -> Result<Self, VisionError> {
        match *v {
            [cx, cy, w, h] => Self::new(cx, cy, w, h),
            _ => Err(VisionError::Input(format!(
                "a centre-form box needs 4 numbers (cx, cy, w, h), got {}",
                v.len()
            ))),
        }
    }

    pub fn cx(&self) -> f32 {
        self.cx
    }

    pub fn cy(&self) -> f32 {
        self.cy
    }

    pub fn width(&self) -> f32 {
        self.w
    }

    pub fn height(&self) -> f32 {
        self.h
    }

    /// `[cx, cy, w, h]`.
    pub fn centre_form(&self) -> [f32; 4] {
        [self.cx, self.cy, self.w, self.h]
    }

    /// `[x_min, y_min, x_max, y_max]`.
    pub fn corners(&self) -> [f32; 4] {
        let (hw, hh) = (0.5 * self.w, 0.5 * self.h);
        [self.cx - hw, self.cy - hh, self.cx + hw, self.cy + hh]
    }

    pub fn area(&self) -> f32 {
        self.w * self.h
    }

    /// The same box with every coordinate multiplied by `sx` (x, w) and `sy` (y, h), e.g. to
    /// go from fractions of the image to pixels; errors on a negative or non-finite factor.
    pub fn scaled(&self, sx: f32, sy: f32) -> Result<Self, VisionError> {
        if !(sx >= 0.0 && sy >= 0.0) {
            return Err(VisionError::Box(format!("scale factors ({sx}, {sy}) must be >= 0")));
        }
        Self::new(self.cx * sx, self.cy * sy, self.w * sx, self.h * sy)
    }
}

/// `IoU(a, b)`; 0 for disjoint boxes and when the union is empty.
pub fn iou(a: &BoundingBox, b: &BoundingBox) -> f32 {
    let [ax0, ay0, ax1, ay1] = a.corners();
    let [bx0, by0, bx1, by1] = b.corners();
    let iw = (ax1.min(bx1) - ax0.max(bx0)).max(0.0);
    let ih = (ay1.min(by1) - ay0.max(by0)).max(0.0);
    let inter = iw * ih;
    let union = a.area() + b.area() - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// `IoU(a, b)` for every `b` in `others`, in order.
pub fn iou_one_to_many(a: &BoundingBox, others: &[BoundingBox]) -> Vec<f32> {
    others.iter().map(|b| iou(a, b)).collect()
}

/// The `[a.len(), b.len()]` matrix of pairwise IoUs, row-major: entry `i * b.len() + j` is
/// `IoU(a[i], b[j])`.
pub fn iou_matrix(a: &[BoundingBox], b: &[BoundingBox]) -> Vec<f32> {
    a.iter().flat_map(|x| b.iter().map(move |y| iou(x, y))).collect()
}

/// The mean of `IoU(predicted[i], truth[i])`: the localization metric. Errors when the
/// lengths differ or there are no boxes.
pub fn mean_iou(predicted: &[BoundingBox], truth: &[BoundingBox]) -> Result<f32, VisionError> {
    if predicted.len() != truth.len() || truth.is_empty() {
        return Err(VisionError::Input(format!(
            "mean IoU needs as many predicted as true boxes, at least one: got {} predicted \
             and {} true",
            predicted.len(),
            truth.len()
        )));
    }
    let sum: f64 = predicted.iter().zip(truth).map(|(p, t)| f64::from(iou(p, t))).sum();
    Ok((sum / truth.len() as f64) as f32)
}

/// A scored box: a candidate for [`nms`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub bbox: BoundingBox,
    /// Objectness or class confidence; larger is more certain.
    pub score: f32,
    pub class: usize,
}

/// Greedy non-max suppression; see the [module documentation](self). Returns the indices of
/// the kept detections by decreasing score (ties: the earlier index first). With
/// `per_class`, only detections of the same class suppress each other.
///
/// No detections give an empty list (a detector with nothing above its score threshold is
/// not an error). `iou_threshold` outside `[0, 1]` and a non-finite score are errors.
pub fn nms(
    detections: &[Detection],
    iou_threshold: f32,
    per_class: bool,
) -> Result<Vec<usize>, VisionError> {
    if !(0.0..=1.0).contains(&iou_threshold) {
        return Err(VisionError::Input(format!(
            "NMS iou_threshold = {iou_threshold}: expected a number in [0, 1]"
        )));
    }
    if let Some(i) = detections.iter().position(|d| !d.score.is_finite()) {
        return Err(VisionError::Input(format!(
            "NMS: detection {i} has score {}, expected a finite number",
            detections[i].score
        )));
    }
    let mut order: Vec<usize> = (0..detections.len()).collect();
    // Stable sort: equal scores keep their input order.
    order.sort_by(|&i, &j| detections[j].score.total_cmp(&detections[i].score));
    let mut kept: Vec<usize> = Vec::new();
    for i in order {
        let d = &detections[i];
        let suppressed = kept.iter().any(|&k| {
            let other = &detections[k];
            (!per_class || other.class == d.class) && iou(&other.bbox, &d.bbox) > iou_threshold
        });
        if !suppressed {
            kept.push(i);
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corners(x0: f32, y0: f32, x1: f32, y1: f32) -> BoundingBox {
        BoundingBox::from_corners(x0, y0, x1, y1).unwrap()
    }

    #[test]
    fn centre_and_corner_forms_round_trip() {
        let b = BoundingBox::new(0.5, 0.25, 0.2, 0.1).unwrap();
        let c = b.corners();
        let expected = [0.4, 0.2, 0.6, 0.3];
        for (x, e) in c.iter().zip(expected) {
            assert!((x - e).abs() < 1e-6, "{c:?}");
        }
        let back = BoundingBox::from_corners(c[0], c[1], c[2], c[3]).unwrap();
        for (x, e) in back.centre_form().iter().zip(b.centre_form()) {
            assert!((x - e).abs() < 1e-6);
        }
        assert!((b.area() - 0.02).abs() < 1e-7);
        assert_eq!(b.scaled(10.0, 20.0).unwrap().centre_form(), [5.0, 5.0, 2.0, 2.0]);
    }

    #[test]
    fn iou_by_hand() {
        // [0,2]x[0,2] and [1,3]x[1,3]: intersection 1, union 4 + 4 - 1 = 7.
        let a = corners(0.0, 0.0, 2.0, 2.0);
        let b = corners(1.0, 1.0, 3.0, 3.0);
        assert!((iou(&a, &b) - 1.0 / 7.0).abs() < 1e-7);
        assert_eq!(iou(&a, &b), iou(&b, &a));
        assert_eq!(iou(&a, &a), 1.0);
        // Contained: [0,1]x[0,1] in [0,2]x[0,2] -> 1/4.
        assert!((iou(&corners(0.0, 0.0, 1.0, 1.0), &a) - 0.25).abs() < 1e-7);
        // Disjoint, and touching along an edge: 0.
        assert_eq!(iou(&a, &corners(5.0, 5.0, 6.0, 6.0)), 0.0);
        assert_eq!(iou(&a, &corners(2.0, 0.0, 3.0, 2.0)), 0.0);
        // Zero-area boxes: a point inside a box, and two equal points.
        let p = corners(1.0, 1.0, 1.0, 1.0);
        assert_eq!(iou(&p, &a), 0.0);
        assert_eq!(iou(&p, &p), 0.0);
        // One-to-many and the matrix agree with the pairwise function.
        let others = [a, b, p];
        assert_eq!(iou_one_to_many(&b, &others), vec![iou(&b, &a), 1.0, 0.0]);
        let m = iou_matrix(&[a, b], &others);
        assert_eq!(m.len(), 6);
        assert_eq!(m[1], iou(&a, &b));
        assert_eq!(m[3..], iou_one_to_many(&b, &others)[..]);
        assert!((mean_iou(&[a, b], &[a, a]).unwrap() - (1.0 + 1.0 / 7.0) / 2.0).abs() < 1e-7);
    }

    #[test]
    fn bad_boxes_are_errors() {
        let e = BoundingBox::new(0.5, 0.5, -0.1, 0.2).unwrap_err().to_string();
        assert!(e.contains("negative size") && e.contains("-0.1"), "{e}");
        let e = BoundingBox::from_corners(0.5, 0.0, 0.4, 1.0).unwrap_err().to_string();
        assert!(e.contains("x_max >= x_min"), "{e}");
        assert!(BoundingBox::new(f32::NAN, 0.5, 0.1, 0.1).is_err());
        assert!(BoundingBox::from_centre_slice(&[0.1, 0.2, 0.3]).is_err());
        assert!(BoundingBox::new(0.0, 0.0, 1.0, 1.0).unwrap().scaled(-1.0, 1.0).is_err());
        let a = BoundingBox::new(0.5, 0.5, 0.1, 0.1).unwrap();
        assert!(mean_iou(&[a], &[a, a]).is_err());
        assert!(mean_iou(&[], &[]).is_err());
    }

    fn det(x0: f32, y0: f32, x1: f32, y1: f32, score: f32, class: usize) -> Detection {
        Detection { bbox: corners(x0, y0, x1, y1), score, class }
    }

    #[test]
    fn nms_keeps_the_best_of_each_overlapping_group() {
        let dets = [
            det(0.0, 0.0, 10.0, 10.0, 0.8, 0),
            det(1.0, 1.0, 11.0, 11.0, 0.9, 0), // IoU 81 / 119 = 0.68 with the first
            det(20.0, 20.0, 30.0, 30.0, 0.5, 0),
            det(0.0, 0.0, 10.0, 5.0, 0.7, 1), // IoU 50 / 100 = 0.5 with the first
        ];
        // The class-1 box overlaps the 0.9 box by 36 / 114 = 0.32.
        // Threshold 0.6: the 0.8 box is dropped by the 0.9 box, the rest kept.
        assert_eq!(nms(&dets, 0.6, false).unwrap(), vec![1, 3, 2]);
        // Threshold 0.4: the class-1 box overlaps the 0.8 box by 0.5, but a suppressed box
        // suppresses nothing.
        assert_eq!(nms(&dets, 0.4, false).unwrap(), vec![1, 3, 2]);
        // Threshold 0.3: the class-1 box goes too, unless classes are kept apart.
        assert_eq!(nms(&dets, 0.3, false).unwrap(), vec![1, 2]);
        assert_eq!(nms(&dets, 0.3, true).unwrap(), vec![1, 3, 2]);
        // Threshold 1: nothing is suppressed; equal scores keep input order.
        let ties = [det(0.0, 0.0, 1.0, 1.0, 0.5, 0), det(0.0, 0.0, 1.0, 1.0, 0.5, 0)];
        assert_eq!(nms(&ties, 1.0, false).unwrap(), vec![0, 1]);
        assert_eq!(nms(&ties, 0.5, false).unwrap(), vec![0]);
        assert!(nms(&[], 0.5, false).unwrap().is_empty());
    }

    #[test]
    fn nms_rejects_bad_thresholds_and_scores() {
        let d = [det(0.0, 0.0, 1.0, 1.0, f32::NAN, 0)];
        let e = nms(&d, 0.5, false).unwrap_err().to_string();
        assert!(e.contains("detection 0") && e.contains("NaN"), "{e}");
        let ok = [det(0.0, 0.0, 1.0, 1.0, 0.3, 0)];
        assert!(nms(&ok, 1.5, false).unwrap_err().to_string().contains("iou_threshold"));
        assert!(nms(&ok, f32::NAN, false).is_err());
    }
}
