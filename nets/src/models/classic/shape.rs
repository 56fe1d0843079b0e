//! [`ShapeTrace`]: a model's spatial arithmetic run on its configured input shape before any
//! tensor exists, so that an input too small for the architecture is an error naming the
//! layer, and a layer sized by the input (LeNet-5's first fully connected layer) knows its
//! size. Output sizes follow torch: `floor((n + 2p - k) / s) + 1`, with `ceil_mode` the
//! ceiling, minus one when the last window would start in the right padding.

use candle_core::Result;

use super::model_error;

/// The shapes `[C, H, W]` after each traced layer of a model, computed from its configured
/// input with torch's window arithmetic; a window that does not fit is an error naming the
/// model, the layer and the map it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeTrace {
    model: String,
    input: [usize; 3],
    shape: [usize; 3],
    layers: Vec<(String, [usize; 3])>,
}

/// torch's output length of a window `k`, stride `s`, padding `p` over `n`; `None` when the
/// window is larger than the padded input.
fn window_out(n: usize, k: usize, s: usize, p: usize, ceil: bool) -> Option<usize> {
    let padded = n + 2 * p;
    if padded < k || s == 0 {
        return None;
    }
    let num = padded - k;
    let mut out = if ceil { num.div_ceil(s) } else { num / s } + 1;
    if ceil && (out - 1) * s >= n + p {
        out -= 1;
    }
    Some(out)
}

impl ShapeTrace {
    /// A trace of `model` from `input` `[C, H, W]`.
    pub fn new(model: &str, input: [usize; 3]) -> Self {
        Self { model: model.to_string(), input, shape: input, layers: Vec::new() }
    }

    /// The current shape `[C, H, W]`.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Every traced layer with the shape after it, in order.
    pub fn layers(&self) -> &[(String, [usize; 3])] {
        &self.layers
    }

    fn window(
        &mut self,
        name: &str,
        what: &str,
        k: usize,
        s: usize,
        p: usize,
        ceil: bool,
    ) -> Result<()> {
        let [c, h, w] = self.shape;
        match (window_out(h, k, s, p, ceil), window_out(w, k, s, p, ceil)) {
            (Some(oh), Some(ow)) => {
                self.shape = [c, oh, ow];
                Ok(())
            }
            _ => {
                let [ic, ih, iw] = self.input;
                Err(model_error(
                    &self.model,
                    format!(
                        "an input of {ic}x{ih}x{iw} is too small: layer {name} ({what} {k}x{k}, \
                         stride {s}, padding {p}) gets a {h}x{w} map"
                    ),
                ))
            }
        }
    }

    /// A convolution to `out_channels` with a `k x k` kernel.
    pub fn conv(
        &mut self,
        name: &str,
        out_channels: usize,
        k: usize,
        s: usize,
        p: usize,
    ) -> Result<()> {
        self.window(name, "kernel", k, s, p, false)?;
        self.shape[0] = out_channels;
        self.layers.push((name.to_string(), self.shape));
        Ok(())
    }

    /// A max or average pool with a `k x k` window.
    pub fn pool(&mut self, name: &str, k: usize, s: usize, p: usize, ceil: bool) -> Result<()> {
        self.window(name, "window", k, s, p, ceil)?;
        self.layers.push((name.to_string(), self.shape));
        Ok(())
    }

    /// A layer that keeps the spatial size and sets the depth (a concatenation, an inception
    /// module, a 'same' block).
    pub fn depth(&mut self, name: &str, channels: usize) {
        self.shape[0] = channels;
        self.layers.push((name.to_string(), self.shape));
    }

    /// A fixed spatial output (adaptive pooling).
    pub fn resize(&mut self, name: &str, h: usize, w: usize) {
        self.shape = [self.shape[0], h, w];
        self.layers.push((name.to_string(), self.shape));
    }
}

/// `trace` of the configured input, or its error followed by the smallest square input
/// (up to 4096) for which `trace` succeeds.
pub(crate) fn traced(
    input: [usize; 3],
    trace: impl Fn([usize; 3]) -> Result<ShapeTrace>,
) -> Result<ShapeTrace> {
    trace(input).map_err(|e| {
        let smallest = (1..=4096).find(|&side| trace([input[0], side, side]).is_ok());
        match smallest {
            Some(s) => {
                candle_core::Error::Msg(format!("{e}; the smallest square input is {s}x{s}"))
            }
            None => e,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::window_out;

    #[test]
    fn window_arithmetic_is_torchs() {
        // ResNet's stem on 224: conv 7/2/3 -> 112, max-pool 3/2/1 -> 56.
        assert_eq!(window_out(224, 7, 2, 3, false), Some(112));
        assert_eq!(window_out(112, 3, 2, 1, false), Some(56));
        // GoogLeNet's ceil-mode pools: 112 -> 56, 28 -> 14 (2/2), 14 -> 7 (3/2).
        assert_eq!(window_out(112, 3, 2, 0, true), Some(56));
        assert_eq!(window_out(14, 3, 2, 0, true), Some(7));
        assert_eq!(window_out(14, 3, 2, 0, false), Some(6));
        // The last window may not start in the right padding: n 5, k 2, s 2, p 1 gives 3.
        assert_eq!(window_out(5, 2, 2, 1, true), Some(3));
        assert_eq!(window_out(4, 5, 1, 0, false), None);
    }
}
