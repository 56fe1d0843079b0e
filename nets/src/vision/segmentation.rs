//! Semantic segmentation with a fully convolutional network (Long, Shelhamer and Darrell
//! 2015, "Fully convolutional networks for semantic segmentation"): every pixel gets class
//! scores, trained with the per-pixel softmax cross-entropy, scored by the mean IoU over
//! classes.
//!
//! * Encoder: a [`Backbone`] of `"same"`-padded convolution / ReLU / 2x2 max-pool stages, so
//!   the map of stage `i` is the input downsampled by the product of the pools so far.
//! * Class scores: a 1x1 convolution of the last stage (stride `S`) to `num_classes` maps.
//! * Skip connections (FCN-16s/8s): `skips` times, upsample the scores 2x with a transposed
//!   convolution (kernel 4, stride 2, padding 1) and add the 1x1 class scores of the last
//!   stage at that finer stride (pool4, then pool3, in the paper's VGG).
//! * A final transposed convolution upsamples the rest of the way, by `f = S / 2^skips`
//!   (kernel `2f`, stride `f`, padding `f / 2`; none when `f = 1`), to the input size.
//!
//! The transposed convolutions start as bilinear interpolation, class to class, with zero
//! bias (the paper's initialisation), and are learned. With `skips = 0` this is FCN-32s.
//! Scores are `[N, num_classes, H, W]`; the loss is
//! `-mean over pixels of log softmax(scores)[class]`.
//!
//! Parameters: `"backbone.{i}.*"`, `"score.{m}.*"` (the 1x1 scorers: 0 on the last stage,
//! `m` on the `m`-th skip), `"up.{m}.*"` (the 2x upsamplers, `m = 1..=skips`) and
//! `"up_final.*"`.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use super::backbone::{Backbone, ConvStage};
use super::{config_error, VisionError};
use crate::conv::init::torch_default_init;
use crate::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig, Padding2d};
use crate::data::{Batch, Dataset};
use crate::train::{Objective, Output, TrainError};

/// The shape of an [`Fcn`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcnConfig {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub num_classes: usize,
    /// Encoder stages: `"same"` padding, pools of 1 or 2.
    pub stages: Vec<ConvStage>,
    /// How many finer stages add their scores (0: FCN-32s style; 2: FCN-8s style).
    pub skips: usize,
}

impl FcnConfig {
    /// Three 3x3 stages of 8, 16 and 32 maps with 2x2 pools (stride 8), a 3x3 stage of 32
    /// maps without pooling, and two skips (from the stride-4 and stride-2 stages).
    pub fn new(channels: usize, height: usize, width: usize, num_classes: usize) -> Self {
        Self {
            channels,
            height,
            width,
            num_classes,
            stages: vec![
                ConvStage::same(8, 3),
                ConvStage::same(16, 3),
                ConvStage::same(32, 3),
                ConvStage::same(32, 3).pool(1),
            ],
            skips: 2,
        }
    }

    /// Values per image.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Checks sizes, paddings, pools and that the input divides by the total stride; returns
    /// the stage each skip reads (finest last) and the final upsampling factor (a power of
    /// two, since every pool is 1 or 2).
    fn plan(&self) -> std::result::Result<(Vec<usize>, usize), VisionError> {
        let bad = |m: String| Err(config_error("FCN config", m));
        if self.channels == 0 || self.num_classes < 2 {
            return bad(format!(
                "channels = {}, num_classes = {}: expected >= 1 channel and >= 2 classes",
                self.channels, self.num_classes
            ));
        }
        if self.stages.is_empty() {
            return bad("expected at least one encoder stage".into());
        }
        if let Some(i) = self
            .stages
            .iter()
            .position(|s| s.padding != Padding2d::Same || s.pool > 2 || s.pool == 0)
        {
            return bad(format!(
                "stage {i} is {:?}: expected \"same\" padding and a pool of 1 or 2",
                self.stages[i]
            ));
        }
        // The stride after each stage.
        let strides: Vec<usize> = self
            .stages
            .iter()
            .scan(1, |s, st| {
                *s *= st.pool;
                Some(*s)
            })
            .collect();
        let total = strides[strides.len() - 1];
        if self.height == 0
            || !self.height.is_multiple_of(total)
            || !self.width.is_multiple_of(total)
            || self.width == 0
        {
            return bad(format!(
                "a {}x{} input does not divide by the encoder's stride {total}",
                self.height, self.width
            ));
        }
        let mut sources = Vec::with_capacity(self.skips);
        for m in 1..=self.skips {
            let want = (m < 32 && total.is_multiple_of(1 << m)).then(|| total >> m);
            match want.and_then(|w| strides.iter().rposition(|&s| s == w)) {
                Some(i) => sources.push(i),
                None => {
                    return bad(format!(
                        "skips = {}: skip {m} needs a stage at stride {total} / 2^{m}, the \
                         encoder's strides are {strides:?}",
                        self.skips
                    ))
                }
            }
        }
        Ok((sources, total >> self.skips))
    }
}

/// The kernel of bilinear upsampling by `factor` for a transposed convolution of size `k`
/// (FCN's `upsample_filt`): `(1 - |i - c| / f) (1 - |j - c| / f)` with `f = ceil(k / 2)`,
/// `c = f - 1` for odd `k`, `f - 0.5` for even.
fn bilinear_kernel(k: usize) -> Vec<f32> {
    let f = k.div_ceil(2) as f32;
    let c = if k % 2 == 1 { f - 1.0 } else { f - 0.5 };
    let tap = |i: usize| 1.0 - (i as f32 - c).abs() / f;
    (0..k).flat_map(|i| (0..k).map(move |j| tap(i) * tap(j))).collect()
}

/// Sets an upsampler to bilinear interpolation of each class map onto itself, bias zero.
fn init_bilinear(up: &ConvTranspose2d, varmap: &VarMap, prefix: &str) -> Result<()> {
    let c = up.config();
    let k = c.kernel_size[0];
    let filt = bilinear_kernel(k);
    let mut w = vec![0f32; c.in_channels * c.out_channels * k * k];
    for ch in 0..c.in_channels.min(c.out_channels) {
        let at = (ch * c.out_channels + ch) * k * k;
        w[at..at + k * k].copy_from_slice(&filt);
    }
    let data =
        varmap.data().lock().map_err(|_| candle_core::Error::Msg("VarMap lock poisoned".into()))?;
    for (name, values) in [("weight", w), ("bias", vec![0f32; c.out_channels])] {
        let key = format!("{prefix}.{name}");
        let var =
            data.get(&key).ok_or_else(|| candle_core::Error::Msg(format!("{key} missing")))?;
        var.set(&Tensor::from_vec(values, var.shape(), var.device())?)?;
    }
    Ok(())
}

/// The fully convolutional segmentation network; see the [module documentation](self).
#[derive(Debug)]
pub struct Fcn {
    config: FcnConfig,
    backbone: Backbone,
    /// `score[0]` on the last stage, `score[m]` on skip `m`'s stage.
    score: Vec<Conv2d>,
    /// The 2x upsamplers, one per skip.
    up: Vec<ConvTranspose2d>,
    up_final: Option<ConvTranspose2d>,
    sources: Vec<usize>,
}

fn upsampler(classes: usize, factor: usize, vb: VarBuilder) -> Result<ConvTranspose2d> {
    let config = ConvTranspose2dConfig {
        stride: [factor, factor],
        padding: [factor / 2, factor / 2],
        ..ConvTranspose2dConfig::new(classes, classes, 2 * factor)
    };
    ConvTranspose2d::new(config, vb)
}

impl Fcn {
    /// Builds from `vb` (new variables get candle's unseeded initialisation; see
    /// [`Fcn::seeded`]).
    pub fn new(config: &FcnConfig, vb: VarBuilder) -> std::result::Result<Self, VisionError> {
        let (sources, final_factor) = config.plan()?;
        let backbone = Backbone::new(config.channels, &config.stages, vb.pp("backbone"))?;
        let k = config.num_classes;
        let scorer = |stage: usize, m: usize| {
            let c = config.stages[stage].out_channels;
            Conv2d::new(Conv2dConfig::new(c, k, 1), vb.pp(format!("score.{m}")))
        };
        let mut score = vec![scorer(config.stages.len() - 1, 0)?];
        let mut up = Vec::with_capacity(sources.len());
        for (m, &stage) in sources.iter().enumerate() {
            score.push(scorer(stage, m + 1)?);
            up.push(upsampler(k, 2, vb.pp(format!("up.{}", m + 1)))?);
        }
        let up_final = if final_factor > 1 {
            Some(upsampler(k, final_factor, vb.pp("up_final"))?)
        } else {
            None
        };
        Ok(Self { config: config.clone(), backbone, score, up, up_final, sources })
    }

    /// Builds into `varmap` and initialises it from `seed`: torch's defaults
    /// ([`torch_default_init`]), then bilinear upsamplers with zero bias. `varmap` should
    /// hold only this model.
    pub fn seeded(
        config: &FcnConfig,
        varmap: &VarMap,
        device: &Device,
        seed: u64,
    ) -> std::result::Result<Self, VisionError> {
        let model = Self::new(config, VarBuilder::from_varmap(varmap, DType::F32, device))?;
        torch_default_init(varmap, seed)?;
        for (m, up) in model.up.iter().enumerate() {
            init_bilinear(up, varmap, &format!("up.{}", m + 1))?;
        }
        if let Some(up) = &model.up_final {
            init_bilinear(up, varmap, "up_final")?;
        }
        Ok(model)
    }

    pub fn config(&self) -> &FcnConfig {
        &self.config
    }

    fn check_images(&self, x: &Tensor) -> std::result::Result<(), VisionError> {
        let c = &self.config;
        super::check_images("FCN", x, [c.channels, c.height, c.width])
    }

    /// Class scores `[N, num_classes, H, W]` for images `[N, C, H, W]`.
    pub fn scores(&self, x: &Tensor) -> Result<Tensor> {
        self.check_images(x)?;
        let feats = self.backbone.forward_all(x)?;
        let last = feats.last().ok_or_else(|| candle_core::Error::Msg("no stages".into()))?;
        let mut s = self.score[0].forward(last)?;
        for (m, &stage) in self.sources.iter().enumerate() {
            s = (self.up[m].forward(&s)? + self.score[m + 1].forward(&feats[stage])?)?;
        }
        match &self.up_final {
            Some(up) => up.forward(&s),
            None => Ok(s),
        }
    }

    /// The arg-max class of every pixel, `[N, H, W]` row-major, for images `[N, C, H, W]`,
    /// in batches of `batch_size`.
    pub fn predict(
        &self,
        images: &Tensor,
        batch_size: usize,
    ) -> std::result::Result<Vec<u8>, VisionError> {
        self.check_images(images)?;
        if batch_size == 0 {
            return Err(VisionError::Input("batch_size must be >= 1, got 0".into()));
        }
        let n = images.dim(0)?;
        let mut out = Vec::with_capacity(n * self.config.height * self.config.width);
        for start in (0..n).step_by(batch_size) {
            let len = batch_size.min(n - start);
            let classes = self.scores(&images.narrow(0, start, len)?)?.argmax(1)?;
            let classes: Vec<u32> = classes.flatten_all()?.to_vec1()?;
            out.extend(classes.iter().map(|&c| c as u8));
        }
        Ok(out)
    }
}

impl Objective for Fcn {
    /// Rows `[image | mask]` (see [`super::Shapes::segmentation_dataset`]); the loss is the
    /// mean per-pixel cross-entropy.
    fn loss(&self, batch: &Batch, _train: bool) -> Result<Output> {
        let c = &self.config;
        let (len, pixels) = (c.image_len(), c.height * c.width);
        let (n, dim) = batch.x.dims2()?;
        if dim != len + pixels {
            candle_core::bail!(
                "FCN rows of {dim} values, expected {len} image values + {pixels} mask values"
            );
        }
        let x = batch.x.narrow(1, 0, len)?.reshape((n, c.channels, c.height, c.width))?;
        let target = batch.x.narrow(1, len, pixels)?.flatten_all()?.to_dtype(DType::U32)?;
        let scores = self.scores(&x)?;
        let logits =
            scores.permute((0, 2, 3, 1))?.contiguous()?.reshape((n * pixels, c.num_classes))?;
        Ok(Output { loss: candle_nn::loss::cross_entropy(&logits, &target)?, scores: None })
    }

    fn check(&self, data: &Dataset) -> std::result::Result<(), TrainError> {
        let c = &self.config;
        let (len, pixels) = (c.image_len(), c.height * c.width);
        if data.dim() != len + pixels {
            return Err(TrainError::Input(format!(
                "rows of {} values, the FCN expects {len} image values ({}x{}x{}) + {pixels} \
                 mask values",
                data.dim(),
                c.channels,
                c.height,
                c.width
            )));
        }
        for i in 0..data.len() {
            let mask = &data.row(i)[len..];
            if let Some(&m) =
                mask.iter().find(|&&m| m < 0.0 || m.fract() != 0.0 || m >= c.num_classes as f32)
            {
                return Err(TrainError::Input(format!(
                    "row {i}: mask value {m} is not a class in 0..{}",
                    c.num_classes
                )));
            }
        }
        Ok(())
    }
}

/// Per-class and mean IoU of a segmentation, from the confusion matrix over all pixels
/// (FCN's "mean IU": `(1 / n_cl) sum_i n_ii / (t_i + sum_j n_ji - n_ii)`).
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentationScores {
    /// `confusion[t * num_classes + p]`: pixels of true class `t` predicted as `p`.
    pub confusion: Vec<u64>,
    /// IoU of each class; `None` for a class absent from both truth and prediction.
    pub per_class_iou: Vec<Option<f64>>,
    /// The mean of the defined per-class IoUs.
    pub mean_iou: f64,
    /// The fraction of pixels predicted right.
    pub pixel_accuracy: f64,
}

/// [`SegmentationScores`] of `predicted` against `truth` (class per pixel, same length).
/// Errors when the lengths differ, there are no pixels, `num_classes` is 0, or a class is out
/// of range.
pub fn confusion_mean_iou(
    predicted: &[u8],
    truth: &[u8],
    num_classes: usize,
) -> std::result::Result<SegmentationScores, VisionError> {
    if predicted.len() != truth.len() || truth.is_empty() || num_classes == 0 {
        return Err(VisionError::Input(format!(
            "mean IoU needs as many predicted as true pixels, at least one, and classes: got \
             {} predicted, {} true, {num_classes} classes",
            predicted.len(),
            truth.len()
        )));
    }
    let k = num_classes;
    let mut confusion = vec![0u64; k * k];
    for (i, (&p, &t)) in predicted.iter().zip(truth).enumerate() {
        if p as usize >= k || t as usize >= k {
            return Err(VisionError::Input(format!(
                "pixel {i}: predicted class {p}, true class {t}, expected classes 0..{k}"
            )));
        }
        confusion[t as usize * k + p as usize] += 1;
    }
    let per_class_iou: Vec<Option<f64>> = (0..k)
        .map(|c| {
            let tp = confusion[c * k + c];
            let t: u64 = confusion[c * k..(c + 1) * k].iter().sum();
            let p: u64 = (0..k).map(|r| confusion[r * k + c]).sum();
            let union = t + p - tp;
            (union > 0).then(|| tp as f64 / union as f64)
        })
        .collect();
    let defined: Vec<f64> = per_class_iou.iter().flatten().copied().collect();
    let mean_iou = defined.iter().sum::<f64>() / defined.len() as f64;
    let correct: u64 = (0..k).map(|c| confusion[c * k + c]).sum();
    let pixel_accuracy = correct as f64 / truth.len() as f64;
    Ok(SegmentationScores { confusion, per_class_iou, mean_iou, pixel_accuracy })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_iou_by_hand() {
        // truth 0 0 1 1 2, predicted 0 1 1 1 0: class 0: tp 1, union 3 -> 1/3;
        // class 1: tp 2, union 3 -> 2/3; class 2: tp 0, union 1 -> 0.
        let s = confusion_mean_iou(&[0, 1, 1, 1, 0], &[0, 0, 1, 1, 2], 3).unwrap();
        assert_eq!(s.per_class_iou, vec![Some(1.0 / 3.0), Some(2.0 / 3.0), Some(0.0)]);
        assert!((s.mean_iou - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.pixel_accuracy, 0.6);
        // A class absent from both is left out of the mean.
        let s = confusion_mean_iou(&[0, 1], &[0, 1], 3).unwrap();
        assert_eq!((s.per_class_iou[2], s.mean_iou), (None, 1.0));
        assert!(confusion_mean_iou(&[0, 3], &[0, 1], 3)
            .unwrap_err()
            .to_string()
            .contains("pixel 1"));
        assert!(confusion_mean_iou(&[], &[], 3).is_err());
        assert!(confusion_mean_iou(&[0], &[0, 1], 3).is_err());
    }

    #[test]
    fn bilinear_kernel_matches_fcn() {
        // k = 4 (factor 2): taps 0.25, 0.75, 0.75, 0.25 along each axis.
        let k = bilinear_kernel(4);
        assert_eq!(&k[..4], &[0.0625, 0.1875, 0.1875, 0.0625]);
        assert_eq!(k[5], 0.5625);
    }

    #[test]
    fn plans_and_bad_configs() {
        let c = FcnConfig::new(1, 32, 32, 3);
        assert_eq!(c.plan().unwrap(), (vec![1, 0], 2));
        assert_eq!(FcnConfig { skips: 0, ..c.clone() }.plan().unwrap(), (vec![], 8));
        let e = FcnConfig { skips: 3, ..c.clone() }.plan().unwrap_err().to_string();
        assert!(e.contains("skip 3"), "{e}");
        let e = FcnConfig { height: 20, ..c.clone() }.plan().unwrap_err().to_string();
        assert!(e.contains("stride 8"), "{e}");
        let e = FcnConfig { num_classes: 1, ..c.clone() }.plan().unwrap_err().to_string();
        assert!(e.contains("num_classes = 1"), "{e}");
        let mut v = c.clone();
        v.stages[0] = ConvStage::valid(8, 3);
        assert!(v.plan().unwrap_err().to_string().contains("stage 0"));
    }
}
