//! Eight CartPoles stepped together into one observation buffer, with a simple hand-written
//! policy; finished episodes restart at once and their final observations are kept.
//!
//! `cargo run --release --example vector_env`
use deeprl::envs::make;
use deeprl::envs::vector::{Execution, VecEnv};

fn main() -> anyhow::Result<()> {
    let mut envs = VecEnv::try_new(8, || make("CartPole-v1"), Execution::Sequential)?;
    let mut obs = envs.reset(Some(42))?.to_vec(); // 8 rows of [x, x_dot, theta, theta_dot]
    let mut actions = vec![0usize; envs.num_envs()];
    let (mut returns, mut finished) = (vec![0.0; envs.num_envs()], vec![]);
    while finished.len() < 32 {
        for (action, row) in actions.iter_mut().zip(obs.chunks(4)) {
            *action = usize::from(row[2] + 0.5 * row[3] > 0.0); // push toward the lean
        }
        let step = envs.step_discrete(&actions)?;
        for (i, episode_return) in returns.iter_mut().enumerate() {
            *episode_return += step.rewards[i];
            if step.done(i) {
                finished.push(*episode_return);
                *episode_return = 0.0;
            }
        }
        obs.copy_from_slice(step.obs);
    }
    let mean = finished.iter().sum::<f64>() / finished.len() as f64;
    println!("{} episodes, mean return {mean:.1} (500 is the time limit)", finished.len());
    Ok(())
}
