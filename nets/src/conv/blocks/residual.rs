//! ResNet's basic residual unit (He et al. 2016, "Deep residual learning for image
//! recognition", figure 2 and option B of section 3.3):
//!
//! `y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`
//!
//! with 3x3 convolutions (padding 1, no bias; `conv1` has the unit's stride) and the
//! identity as shortcut, or, when the feature-map size or the depth changes (stride != 1 or
//! in != out), a projection: a 1x1 convolution with the unit's stride and a batch norm.
//! Parameter names as torchvision's `BasicBlock`: `conv1`, `bn1`, `conv2`, `bn2`,
//! `downsample.0` (conv), `downsample.1` (batch norm); with [`ResidualUnit::with_se`] the
//! SE-ResNet gate sits on the residual branch before the addition, under `se.`.
//! Training and evaluation differ through the batch norms ([`ModuleT`]).

use candle_core::{Module, ModuleT, Result, Tensor};
use candle_nn::VarBuilder;

use crate::conv::blocks::SqueezeExcite;
use crate::conv::fast_relu::relu;
use crate::conv::fast_residual::residual_unit;
use crate::conv::{check_input, BatchNorm, Conv2d, Conv2dConfig};

/// A basic residual unit; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct ResidualUnit {
    in_channels: usize,
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    projection: Option<(Conv2d, BatchNorm)>,
    se: Option<SqueezeExcite>,
}

impl ResidualUnit {
    /// A unit from `in_channels` to `out_channels` whose first convolution has `stride`.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        stride: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let conv = |i, o, k, s, p, name: &str| {
            Conv2d::new(Conv2dConfig::new(i, o, k).stride(s).padding(p).bias(false), vb.pp(name))
        };
        let projection = if stride != 1 || in_channels != out_channels {
            Some((
                conv(in_channels, out_channels, 1, stride, 0, "downsample.0")?,
                BatchNorm::new_2d(out_channels, vb.pp("downsample.1"))?,
            ))
        } else {
            None
        };
        Ok(Self {
            in_channels,
            conv1: conv(in_channels, out_channels, 3, stride, 1, "conv1")?,
            bn1: BatchNorm::new_2d(out_channels, vb.pp("bn1"))?,
            conv2: conv(out_channels, out_channels, 3, 1, 1, "conv2")?,
            bn2: BatchNorm::new_2d(out_channels, vb.pp("bn2"))?,
            projection,
            se: None,
        })
    }

    /// Adds a squeeze-and-excitation gate (reduction `ratio`) on the residual branch, built
    /// from `vb.pp("se")` (SE-ResNet).
    pub fn with_se(mut self, ratio: usize, vb: VarBuilder) -> Result<Self> {
        let channels = self.conv2.config().out_channels;
        self.se = Some(SqueezeExcite::new(channels, ratio, vb.pp("se"))?);
        Ok(self)
    }

    /// Whether the shortcut is a 1x1 projection (rather than the identity).
    pub fn has_projection(&self) -> bool {
        self.projection.is_some()
    }

    /// The number of trainable parameters (convolutions, batch-norm scales and shifts, the
    /// projection and the SE gate; not the running statistics).
    pub fn parameter_count(&self) -> usize {
        let projection = self
            .projection
            .as_ref()
            .map_or(0, |(c, bn)| c.parameter_count() + bn.parameter_count());
        self.conv1.parameter_count()
            + self.bn1.parameter_count()
            + self.conv2.parameter_count()
            + self.bn2.parameter_count()
            + projection
            + self.se.as_ref().map_or(0, SqueezeExcite::parameter_count)
    }
}

impl ResidualUnit {
    /// The whole unit as one CPU op (`fast_residual`), where every convolution and batch
    /// norm pair fuses and there is no SE gate; `None` elsewhere.
    fn forward_fused(&self, x: &Tensor, train: bool) -> Result<Option<Tensor>> {
        let fuses = self.se.is_none()
            && self.bn1.fuses_with(&self.conv1, x)
            && self.bn2.fuses_with(&self.conv2, x)
            && self.projection.as_ref().is_none_or(|(conv, bn)| bn.fuses_with(conv, x));
        if !fuses {
            return Ok(None);
        }
        let (stage1, h) = self.bn1.conv_stage(&self.conv1, x.dims(), train)?;
        let (stage2, out) = self.bn2.conv_stage(&self.conv2, &h, train)?;
        let projection = match &self.projection {
            Some((conv, bn)) => Some(bn.conv_stage(conv, x.dims(), train)?.0),
            None => None,
        };
        // The projection's output has the unit's output shape (same stride, the 3x3
        // window's padding keeps the size as the 1x1 window does); the op checks it.
        let (y, stats) = residual_unit(x, stage1, stage2, projection)?;
        let mut stats = stats.into_iter();
        self.bn1.record_batch_stats(stats.next().flatten(), &h)?;
        self.bn2.record_batch_stats(stats.next().flatten(), &out)?;
        if let Some((_, bn)) = &self.projection {
            bn.record_batch_stats(stats.next().flatten(), &out)?;
        }
        Ok(Some(y))
    }
}

impl ModuleT for ResidualUnit {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        check_input("ResidualUnit", x.dims(), 4, self.in_channels, "[N, C, H, W]")?;
        match self.forward_fused(x, train)? {
            Some(y) => Ok(y),
            None => self.forward_layers(x, train),
        }
    }
}

impl ResidualUnit {
    /// The unit layer by layer (an SE gate, other devices): each convolution and its batch
    /// norm (and what follows) still run as one op on CPU.
    fn forward_layers(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let h = self.bn1.forward_conv_relu_t(&self.conv1, x, train)?;
        let shortcut = match &self.projection {
            Some((conv, bn)) => bn.forward_conv_t(conv, x, train)?,
            None => x.clone(),
        };
        match &self.se {
            // The gate sits between the batch norm and the addition.
            Some(se) => {
                let h = self.bn2.forward_conv_t(&self.conv2, &h, train)?;
                relu(&(se.forward(&h)? + shortcut)?)
            }
            // conv2, bn2, the addition and the ReLU in one op on CPU.
            None => self.bn2.forward_conv_add_relu_t(&self.conv2, &h, &shortcut, train),
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};
    use candle_nn::{VarBuilder, VarMap};

    use super::ResidualUnit;
    use crate::conv::init::torch_default_init;
    use crate::test_util::var_scaled;

    /// The unit as one op gives the layer-by-layer path's outputs, gradients (input and
    /// every parameter) and running statistics bit for bit: identity shortcuts (16 channels
    /// on a 16-wide map take the shifted GEMMs) and projections, f32 and f64, training and
    /// evaluation.
    #[test]
    fn fused_unit_equals_the_layers() {
        let cases =
            [(16, 16, 1, [2, 16, 5, 16]), (3, 4, 2, [2, 3, 7, 6]), (16, 32, 2, [2, 16, 8, 8])];
        for dtype in [DType::F64, DType::F32] {
            for (i, o, stride, xs) in cases {
                for train in [true, false] {
                    let at = format!("{i}->{o} stride {stride} {dtype:?} train {train}");
                    let unit = |map: &VarMap| {
                        let vb = VarBuilder::from_varmap(map, dtype, &Device::Cpu);
                        let unit = ResidualUnit::new(i, o, stride, vb).unwrap();
                        torch_default_init(map, 3).unwrap();
                        // Non-trivial batch-norm parameters and running statistics.
                        let data = map.data().lock().unwrap();
                        let mut names: Vec<&String> = data.keys().collect();
                        names.sort();
                        for (k, name) in names.into_iter().enumerate() {
                            let var = &data[name];
                            if name.contains("bn") || name.contains("downsample.1") {
                                let (scale, shift) =
                                    if name.ends_with("var") { (0.5, 1.0) } else { (1.0, 0.0) };
                                let v = var_scaled(var.dims(), 40 + k as u64, scale, shift);
                                var.set(&v.as_tensor().to_dtype(dtype).unwrap()).unwrap();
                            }
                        }
                        unit
                    };
                    let (map_f, map_l) = (VarMap::new(), VarMap::new());
                    let (unit_f, unit_l) = (unit(&map_f), unit(&map_l));
                    let x = var_scaled(&xs, 7, 1.0, 0.1);
                    let x = candle_core::Var::from_tensor(&x.as_tensor().to_dtype(dtype).unwrap())
                        .unwrap();
                    let yf = unit_f.forward_fused(x.as_tensor(), train).unwrap().unwrap();
                    let yl = unit_l.forward_layers(x.as_tensor(), train).unwrap();
                    let u = var_scaled(yf.dims(), 8, 1.0, 0.0).as_tensor().to_dtype(dtype).unwrap();
                    let same = |a: &Tensor, b: &Tensor, what: &str| {
                        let a = a.to_dtype(DType::F64).unwrap().flatten_all().unwrap();
                        let b = b.to_dtype(DType::F64).unwrap().flatten_all().unwrap();
                        let (a, b) = (a.to_vec1::<f64>().unwrap(), b.to_vec1::<f64>().unwrap());
                        let first = a.iter().zip(&b).position(|(u, v)| u.to_bits() != v.to_bits());
                        assert!(
                            a.len() == b.len() && first.is_none(),
                            "{at}: {what} differ at {first:?}"
                        );
                    };
                    same(&yf, &yl, "outputs");
                    let gf = yf.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
                    let gl = yl.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
                    same(gf.get(&x).unwrap(), gl.get(&x).unwrap(), "input gradients");
                    let (pf, pl) = (map_f.data().lock().unwrap(), map_l.data().lock().unwrap());
                    assert_eq!(pf.len(), pl.len());
                    for (name, vf) in pf.iter() {
                        let vl = &pl[name];
                        same(vf.as_tensor(), vl.as_tensor(), name);
                        if name.contains("running") {
                            continue;
                        }
                        let (a, b) = (gf.get(vf).unwrap(), gl.get(vl).unwrap());
                        same(a, b, &format!("{name} gradients"));
                    }
                }
            }
        }
    }
}
