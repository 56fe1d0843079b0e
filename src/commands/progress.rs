//! The progress bar of long work: steps, steps per second, ETA and the running mean return;
//! silent when stderr is not a terminal or when asked to be quiet.

use deeprl::agents::Status;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

pub struct ProgressLine {
    bar: ProgressBar,
}

impl ProgressLine {
    /// A bar over `total` steps, starting at `done`.
    pub fn new(total: u64, done: u64, quiet: bool) -> Self {
        let bar = ProgressBar::new(total);
        if quiet || !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        let style =
            ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {per_sec}  ETA {eta}  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_position(done);
        bar.reset_eta();
        ProgressLine { bar }
    }

    pub fn update(&mut self, status: Status) {
        self.bar.set_position(status.step);
        let mut msg = format!("episodes {}", status.episode);
        if let Some(mean) = status.mean_return {
            msg.push_str(&format!("  mean return {mean:.2}"));
        }
        if let Some(eval) = status.last_eval {
            msg.push_str(&format!("  eval {:.2}", eval.mean_return));
        }
        self.bar.set_message(msg);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
