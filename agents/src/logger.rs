//! Where a run's numbers go: the [`Logger`] trait and the tag names (namespaced as in SB3
//! and CleanRL, so TensorBoard groups them the same way).

use crate::error::Result;

/// The scalar tags a run writes.
pub mod tags {
    pub const EPISODE_RETURN: &str = "rollout/episode_return";
    pub const EPISODE_LENGTH: &str = "rollout/episode_length";
    pub const EPSILON: &str = "rollout/epsilon";
    pub const LOSS: &str = "train/loss";
    pub const LR: &str = "train/lr";
    pub const EVAL_MEAN_RETURN: &str = "eval/mean_return";
    pub const EVAL_STD_RETURN: &str = "eval/std_return";
    pub const EVAL_SUCCESS_RATE: &str = "eval/success_rate";
    pub const SPS: &str = "time/sps";
    pub const CONFIG: &str = "config";
}

/// Receives a run's scalars (and its config as text).
pub trait Logger {
    /// Records `value` for `tag` at env step `step`.
    fn scalar(&mut self, tag: &str, step: u64, value: f64) -> Result<()>;

    /// Records a text (the resolved config, as TensorBoard's text plugin shows it).
    fn text(&mut self, _tag: &str, _step: u64, _text: &str) -> Result<()> {
        Ok(())
    }

    /// Writes out what is buffered.
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A logger that drops everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullLogger;

impl Logger for NullLogger {
    fn scalar(&mut self, _tag: &str, _step: u64, _value: f64) -> Result<()> {
        Ok(())
    }
}

/// A logger that keeps everything in memory (for tests and for summaries).
#[derive(Debug, Default, Clone)]
pub struct MemoryLogger {
    pub scalars: Vec<(String, u64, f64)>,
    pub texts: Vec<(String, u64, String)>,
}

impl MemoryLogger {
    /// The values logged under `tag`, in order.
    pub fn values(&self, tag: &str) -> Vec<(u64, f64)> {
        self.scalars.iter().filter(|(t, ..)| t == tag).map(|&(_, s, v)| (s, v)).collect()
    }
}

impl Logger for MemoryLogger {
    fn scalar(&mut self, tag: &str, step: u64, value: f64) -> Result<()> {
        self.scalars.push((tag.to_string(), step, value));
        Ok(())
    }

    fn text(&mut self, tag: &str, step: u64, text: &str) -> Result<()> {
        self.texts.push((tag.to_string(), step, text.to_string()));
        Ok(())
    }
}

/// Sends everything to several loggers.
pub struct Tee<'a>(pub Vec<&'a mut dyn Logger>);

impl Logger for Tee<'_> {
    fn scalar(&mut self, tag: &str, step: u64, value: f64) -> Result<()> {
        self.0.iter_mut().try_for_each(|l| l.scalar(tag, step, value))
    }

    fn text(&mut self, tag: &str, step: u64, text: &str) -> Result<()> {
        self.0.iter_mut().try_for_each(|l| l.text(tag, step, text))
    }

    fn flush(&mut self) -> Result<()> {
        self.0.iter_mut().try_for_each(|l| l.flush())
    }
}
