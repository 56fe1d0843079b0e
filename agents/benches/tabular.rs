//! Epsilon-greedy (0.1) Q-learning on Taxi: 2,000 episodes through `deeprl_envs::make("Taxi-v3")`
//! (a boxed `DynEnv` with the 200-step time limit), with the agent's `act` / `observe`, as the
//! runner drives it. One update per env step; the figure is updates (env steps) per second
//! of the whole loop, env included.
//!
//! `cargo bench -p deeprl-agents --bench tabular`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use deeprl_agents::spec::BuildContext;
use deeprl_agents::tabular::{QLearning, QLearningConfig};
use deeprl_agents::{ActionBuf, Agent, Transition};
use deeprl_envs::{make, DynEnv};
use std::hint::black_box;
use std::time::Instant;

const EPISODES: usize = 2_000;

/// Trains a fresh agent for [`EPISODES`] episodes; returns the env steps (= updates).
fn train(env: &mut dyn DynEnv, seed: u64) -> u64 {
    let config = QLearningConfig {
        epsilon_start: 0.1,
        epsilon_end: 0.1,
        lr: 0.1,
        gamma: 0.99,
        ..QLearningConfig::default()
    };
    let ctx = BuildContext {
        env_id: "Taxi-v3",
        env: &*env,
        seed,
        device: candle_core::Device::Cpu,
        total_steps: None,
    };
    let mut agent = QLearning::new(&ctx, &config).expect("Taxi is tabular");
    let mut obs = [0.0f32];
    let mut next = [0.0f32];
    let mut action = ActionBuf::Discrete(0);
    let mut steps = 0;
    env.reset_into(Some(seed), &mut obs).expect("reset");
    for _ in 0..EPISODES {
        loop {
            agent.act(&obs, &mut action).expect("act");
            let out = env.step_into(action.as_ref(), &mut next).expect("step");
            let t = Transition {
                obs: &obs,
                action: action.as_ref(),
                reward: out.reward,
                next_obs: &next,
                terminated: out.terminated,
                truncated: out.truncated,
            };
            black_box(agent.observe(&t).expect("observe"));
            steps += 1;
            if out.done() {
                env.reset_into(None, &mut obs).expect("reset");
                break;
            }
            obs = next;
        }
    }
    black_box(agent.q_values());
    steps
}

fn q_learning_taxi(c: &mut Criterion) {
    let mut env = make("Taxi-v3").expect("Taxi-v3 is built in");
    // The same seed every iteration: the same episodes, the same number of updates.
    let steps = train(&mut *env, 0);
    let mut times = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        train(&mut *env, 0);
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "q-learning Taxi-v3, {EPISODES} episodes: {steps} updates in {:.2} ms (median of 7), \
         {:.3e} updates/s",
        median * 1e3,
        steps as f64 / median
    );
    let mut group = c.benchmark_group("tabular");
    group.throughput(Throughput::Elements(steps));
    group.sample_size(20);
    group.bench_function("q_learning_taxi_2000_episodes", |b| b.iter(|| train(&mut *env, 0)));
    group.finish();
}

criterion_group!(benches, q_learning_taxi);
criterion_main!(benches);
