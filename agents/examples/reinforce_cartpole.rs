//! REINFORCE on CartPole-v1 until the mean return of the last 100 episodes reaches 475
//! (Gymnasium's reward threshold; `--threshold` to change it), for a few seeds; prints episodes, steps and wall time, and
//! where the time went (acting, env steps, updates).
//!
//! ```text
//! cargo run -p deeprl-agents --release --example reinforce_cartpole -- \
//!     [--seeds 0,1,2] [--threshold 475] [--max-episodes 5000] [--set key=value]...
//! ```

use deeprl_agents::reinforce::Reinforce;
use deeprl_agents::{ActionBuf, Agent, BuildContext, Transition};
use std::collections::VecDeque;
use std::error::Error;
use std::time::{Duration, Instant};

struct Outcome {
    solved: bool,
    episodes: usize,
    steps: u64,
    wall: Duration,
    act: Duration,
    env: Duration,
    learn: Duration,
}

fn run(
    seed: u64,
    threshold: f64,
    max_episodes: usize,
    table: &toml::Table,
) -> Result<Outcome, Box<dyn Error>> {
    let mut env = deeprl_envs::make("CartPole-v1")?;
    let ctx = BuildContext {
        env_id: "CartPole-v1",
        env: &*env,
        seed,
        device: candle_core::Device::Cpu,
        total_steps: None,
    };
    let mut agent = Reinforce::from_table(&ctx, table)?;
    let mut action = ActionBuf::for_space(&env.action_space());
    let (mut obs, mut next_obs) = (vec![0.0; env.obs_len()], vec![0.0; env.obs_len()]);
    let mut recent = VecDeque::with_capacity(100);
    let (mut act_t, mut env_t, mut learn_t) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let start = Instant::now();
    let mut steps = 0u64;
    env.reset_into(Some(seed), &mut obs)?;
    for episode in 1..=max_episodes {
        let mut ret = 0.0;
        loop {
            let t0 = Instant::now();
            agent.act(&obs, &mut action)?;
            let t1 = Instant::now();
            let out = env.step_into(action.as_ref(), &mut next_obs)?;
            let t2 = Instant::now();
            let transition = Transition {
                obs: &obs,
                action: action.as_ref(),
                reward: out.reward,
                next_obs: &next_obs,
                terminated: out.terminated,
                truncated: out.truncated,
            };
            agent.observe(&transition)?;
            let t3 = Instant::now();
            act_t += t1 - t0;
            env_t += t2 - t1;
            learn_t += t3 - t2;
            steps += 1;
            ret += out.reward;
            if out.done() {
                env.reset_into(None, &mut obs)?;
                break;
            }
            std::mem::swap(&mut obs, &mut next_obs);
        }
        if recent.len() == 100 {
            recent.pop_front();
        }
        recent.push_back(ret);
        let mean = recent.iter().sum::<f64>() / recent.len() as f64;
        if recent.len() == 100 && mean >= threshold {
            let wall = start.elapsed();
            return Ok(Outcome {
                solved: true,
                episodes: episode,
                steps,
                wall,
                act: act_t,
                env: env_t,
                learn: learn_t,
            });
        }
    }
    Ok(Outcome {
        solved: false,
        episodes: max_episodes,
        steps,
        wall: start.elapsed(),
        act: act_t,
        env: env_t,
        learn: learn_t,
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut seeds = vec![0u64, 1, 2];
    let mut max_episodes = 5000;
    let mut threshold = 475.0;
    let mut table = toml::Table::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--seeds" => {
                seeds = value()?.split(',').map(str::parse).collect::<Result<_, _>>()?;
            }
            "--max-episodes" => max_episodes = value()?.parse()?,
            "--threshold" => threshold = value()?.parse()?,
            "--set" => {
                let (k, v) = deeprl_agents::config::parse_assignment(&value()?)?;
                table.insert(k, v);
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    for seed in seeds {
        let o = run(seed, threshold, max_episodes, &table)?;
        println!(
            "seed {seed}: {} after {} episodes, {} steps, {:.2} s (act {:.2} s, env {:.2} s, \
             observe+update {:.2} s)",
            if o.solved { "reached the threshold" } else { "did NOT reach the threshold" },
            o.episodes,
            o.steps,
            o.wall.as_secs_f64(),
            o.act.as_secs_f64(),
            o.env.as_secs_f64(),
            o.learn.as_secs_f64(),
        );
    }
    Ok(())
}
