//! `deeprl record`: a GIF of a trained agent playing greedy episodes.

use anyhow::{bail, Context, Result};
use deeprl::agents::evaluate;
use deeprl::envs::render::Frame;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct RecordArgs {
    /// A run directory written by `deeprl train` (or its checkpoint file).
    #[arg(long)]
    checkpoint: PathBuf,
    /// The GIF to write.
    #[arg(long)]
    out: PathBuf,
    /// Episodes to record, one after the other.
    #[arg(long, default_value_t = 1)]
    episodes: u64,
    /// Frames per second of the animation.
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// The seed of the recorded episodes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Step cap of one episode, for envs without a time limit.
    #[arg(long, default_value_t = 1000)]
    max_steps: u64,
}

/// Encodes frames as an endlessly repeating GIF at `fps`, written to a temporary file and
/// renamed over `out` so that a failure leaves no half-written GIF.
pub fn write_gif(frames: &[Frame], fps: u32, out: &Path) -> Result<()> {
    let Some(first) = frames.first() else { bail!("no frames to write") };
    let (w, h) = (u16::try_from(first.width)?, u16::try_from(first.height)?);
    super::write_atomically(out, |tmp| {
        let file = File::create(tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut encoder = gif::Encoder::new(BufWriter::new(file), w, h, &[])?;
        encoder.set_repeat(gif::Repeat::Infinite)?;
        let delay = (100 / fps.clamp(1, 100)) as u16;
        for f in frames {
            if (f.width, f.height) != (first.width, first.height) {
                bail!(
                    "frames change size from {}x{} to {}x{}",
                    first.width,
                    first.height,
                    f.width,
                    f.height
                );
            }
            let mut frame = gif::Frame::from_rgb_speed(w, h, &f.rgb, 10);
            frame.delay = delay;
            encoder.write_frame(&frame)?;
        }
        encoder.into_inner()?.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(())
    })
}

pub fn run(args: &RecordArgs) -> Result<ExitCode> {
    anyhow::ensure!(args.episodes > 0, "--episodes must be at least 1");
    let mut loaded = super::load(&args.checkpoint, "cpu")?;
    let b = &mut loaded.built;
    if b.eval_env.render_rgb().is_none() {
        let mut obs = vec![0.0; b.eval_env.obs_len()];
        b.eval_env.reset_into(Some(0), &mut obs)?;
        if b.eval_env.render_rgb().is_none() {
            bail!("{} draws no RGB frames, so it cannot be recorded", loaded.spec.env_id);
        }
    }
    let mut frames = Vec::new();
    let result = evaluate(
        b.eval_env.as_mut(),
        b.agent.as_mut(),
        args.episodes,
        args.seed,
        args.max_steps,
        b.success,
        &mut |env| {
            frames.extend(env.render_rgb());
            Ok(())
        },
    )?;
    write_gif(&frames, args.fps, &args.out)?;
    println!(
        "wrote {} ({} frames, {} episodes, mean return {:.2})",
        args.out.display(),
        frames.len(),
        result.episodes,
        result.mean_return
    );
    Ok(ExitCode::SUCCESS)
}
