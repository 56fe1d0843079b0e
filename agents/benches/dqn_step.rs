//! DQN hot paths: the greedy action for one CartPole observation (host copy), and one gradient
//! step of the zoo's 4-256-256-2 network at batch 64 (sample, online forward, target forward
//! without a graph, gather, Huber, backward, clip, Adam) and of the same net as Rainbow's
//! (C51 with 51 atoms, noisy, dueling, double, prioritized, 3-step), each on the default path
//! (the host learner) and on candle's autograd (`learner = "candle"`). Then the MinAtar
//! network (Breakout's `4x10x10` observations, a 3x3 convolution with 16 filters, 128 hidden
//! units, 3 actions) at batch 32 with MinAtar DQN's settings (centered RMSprop, Huber) and as
//! Rainbow (noisy dueling C51, double, prioritized, 3-step), each on both paths, and its
//! greedy action. Run with `RAYON_NUM_THREADS=1 taskset -c 0` for the one-core figures.

use candle_core::Device;
use criterion::{criterion_group, criterion_main, Criterion};
use deeprl_agents::dqn::{Dqn, DqnConfig, LearnerKind, OptimizerKind, TorsoKind};
use deeprl_agents::{ActionBuf, Agent, BuildContext, Transition};
use deeprl_envs::ActionRef;

/// A MinAtar/Breakout-v1 agent with the CNN torso, its replay filled with 1000 made-up
/// transitions (sparse 0/1 images).
fn minatar_agent(config: DqnConfig) -> Dqn {
    let env = deeprl_envs::make("MinAtar/Breakout-v1").unwrap();
    let ctx = BuildContext {
        env_id: "MinAtar/Breakout-v1",
        env: &*env,
        seed: 0,
        device: Device::Cpu,
        total_steps: None,
    };
    let mut agent = Dqn::new("dqn", config, &ctx).unwrap();
    let image = |k: usize| -> Vec<f32> {
        (0..400).map(|i| (k * 7919 + i * 104_729).is_multiple_of(9) as u8 as f32).collect()
    };
    for k in 0..1000usize {
        let (obs, next) = (image(k), image(k + 1));
        let t = Transition {
            obs: &obs,
            action: ActionRef::Discrete(k % 3),
            reward: (k % 7 == 0) as u8 as f64,
            next_obs: &next,
            terminated: k % 50 == 49,
            truncated: false,
        };
        agent.observe(&t).unwrap();
    }
    agent
}

/// MinAtar DQN's settings (`presets/dqn__MinAtar-Breakout-v1.toml`), no training in `observe`.
fn minatar() -> DqnConfig {
    DqnConfig {
        torso: TorsoKind::Cnn,
        net_arch: vec![128],
        batch_size: 32,
        learning_starts: 1_000_000,
        buffer_size: 10_000,
        optimizer: OptimizerKind::Rmsprop,
        rmsprop_alpha: 0.95,
        rmsprop_eps: 0.01,
        rmsprop_centered: true,
        lr: 2.5e-4,
        ..DqnConfig::default()
    }
}

fn bench_minatar(c: &mut Criterion) {
    let mut a = minatar_agent(minatar());
    assert!(a.uses_host_learner());
    let mut action = ActionBuf::Discrete(0);
    let obs: Vec<f32> = (0..400).map(|i| (i % 11 == 0) as u8 as f32).collect();
    c.bench_function("dqn act_greedy minatar cnn16-128-3", |b| {
        b.iter(|| a.act_greedy(std::hint::black_box(&obs), &mut action).unwrap())
    });
    c.bench_function("dqn gradient_step minatar cnn16-128-3 batch 32 (host)", |b| {
        b.iter(|| a.gradient_step().unwrap())
    });
    let mut a = minatar_agent(DqnConfig { learner: LearnerKind::Candle, ..minatar() });
    c.bench_function("dqn gradient_step minatar cnn16-128-3 batch 32 (candle)", |b| {
        b.iter(|| a.gradient_step().unwrap())
    });
    let rainbow = DqnConfig {
        torso: TorsoKind::Cnn,
        net_arch: vec![128],
        batch_size: 32,
        learning_starts: 1_000_000,
        buffer_size: 10_000,
        v_min: -10.0,
        v_max: 10.0,
        ..DqnConfig::rainbow()
    };
    let mut r = minatar_agent(rainbow.clone());
    assert!(r.uses_host_learner());
    c.bench_function("rainbow gradient_step minatar cnn16-128-3x51 batch 32 (host)", |b| {
        b.iter(|| r.gradient_step().unwrap())
    });
    let mut r = minatar_agent(DqnConfig { learner: LearnerKind::Candle, ..rainbow });
    c.bench_function("rainbow gradient_step minatar cnn16-128-3x51 batch 32 (candle)", |b| {
        b.iter(|| r.gradient_step().unwrap())
    });
}

fn agent(config: DqnConfig) -> Dqn {
    let env = deeprl_envs::make("CartPole-v1").unwrap();
    let ctx = BuildContext {
        env_id: "CartPole-v1",
        env: &*env,
        seed: 0,
        device: Device::Cpu,
        total_steps: None,
    };
    let mut agent = Dqn::new("dqn", config, &ctx).unwrap();
    // Fill the replay with 1000 made-up CartPole-like transitions (no training yet).
    for k in 0..1000u32 {
        let x = (k as f32 * 0.37).sin();
        let obs = [x, -x, 0.5 * x, 0.1];
        let next = [x * 0.9, -x, 0.4 * x, 0.1];
        let t = Transition {
            obs: &obs,
            action: ActionRef::Discrete((k % 2) as usize),
            reward: 1.0,
            next_obs: &next,
            terminated: k % 50 == 49,
            truncated: false,
        };
        agent.observe(&t).unwrap();
    }
    agent
}

fn zoo() -> DqnConfig {
    DqnConfig {
        net_arch: vec![256, 256],
        batch_size: 64,
        learning_starts: 1_000_000,
        buffer_size: 10_000,
        ..DqnConfig::default()
    }
}

fn bench(c: &mut Criterion) {
    let mut a = agent(zoo());
    assert!(a.uses_host_learner());
    let mut action = ActionBuf::Discrete(0);
    let obs = [0.01f32, -0.2, 0.03, 0.1];
    c.bench_function("dqn act_greedy 4-256-256-2", |b| {
        b.iter(|| a.act_greedy(std::hint::black_box(&obs), &mut action).unwrap())
    });
    c.bench_function("dqn gradient_step 4-256-256-2 batch 64 (host)", |b| {
        b.iter(|| a.gradient_step().unwrap())
    });
    let mut a = agent(DqnConfig { learner: LearnerKind::Candle, ..zoo() });
    c.bench_function("dqn gradient_step 4-256-256-2 batch 64 (candle)", |b| {
        b.iter(|| a.gradient_step().unwrap())
    });
    let rainbow =
        DqnConfig { distributional: true, v_min: 0.0, v_max: 100.0, ..DqnConfig::rainbow() }
            .with_zoo_net();
    let mut r = agent(rainbow.clone());
    assert!(r.uses_host_learner());
    c.bench_function("rainbow gradient_step 4-256-256-2x51 batch 64 (host)", |b| {
        b.iter(|| r.gradient_step().unwrap())
    });
    let mut r = agent(DqnConfig { learner: LearnerKind::Candle, ..rainbow });
    c.bench_function("rainbow gradient_step 4-256-256-2x51 batch 64 (candle)", |b| {
        b.iter(|| r.gradient_step().unwrap())
    });
}

trait ZooNet {
    fn with_zoo_net(self) -> Self;
}

impl ZooNet for DqnConfig {
    fn with_zoo_net(self) -> Self {
        DqnConfig {
            net_arch: vec![256, 256],
            batch_size: 64,
            learning_starts: 1_000_000,
            buffer_size: 10_000,
            ..self
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = bench, bench_minatar
}
criterion_main!(benches);
