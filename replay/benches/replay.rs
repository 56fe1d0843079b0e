//! Replay throughput on one core with capacity 10^6: push, uniform sample of 64, prioritized
//! sample of 64 with weights, and a priority update of 64, for CartPole-sized observations
//! (4 floats) and MinAtar-sized ones (10x10x4 = 400 floats).
//!
//! `cargo bench -p deeprl-replay --bench replay`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use deeprl_replay::{
    Action, ActionKind, Batch, Experience, PrioritizedConfig, PrioritizedReplay, ReplayBuffer,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::hint::black_box;

const CAPACITY: usize = 1_000_000;

fn experience(obs: &[f32], k: usize) -> Experience<'_> {
    Experience { obs, action: Action::Discrete(k % 4), reward: 1.0, next_obs: obs, discount: 0.99 }
}

fn bench_obs_len(c: &mut Criterion, label: &str, obs_len: usize) {
    let mut group = c.benchmark_group(format!("replay/{label}"));
    let obs = vec![0.5f32; obs_len];
    let mut rng = SmallRng::seed_from_u64(0);

    let mut uniform = ReplayBuffer::new(CAPACITY, obs_len, ActionKind::Discrete).expect("buffer");
    group.throughput(Throughput::Elements(1));
    let mut k = 0;
    group.bench_function("push", |b| {
        b.iter(|| {
            k += 1;
            black_box(uniform.push(&experience(&obs, k)).expect("push"))
        })
    });
    while uniform.len() < CAPACITY {
        uniform.push(&experience(&obs, uniform.len())).expect("push");
    }
    let mut batch = Batch::new();
    group.throughput(Throughput::Elements(64));
    group.bench_function("uniform sample 64", |b| {
        b.iter(|| uniform.sample(64, &mut rng, &mut batch).expect("sample"))
    });
    drop(uniform);

    let config = PrioritizedConfig::default();
    let mut per =
        PrioritizedReplay::new(CAPACITY, obs_len, ActionKind::Discrete, config).expect("buffer");
    let mut errors = vec![0.0f32; 64];
    for start in (0..CAPACITY).step_by(64) {
        let indices: Vec<usize> =
            (0..64).map(|j| per.push(&experience(&obs, start + j)).expect("push")).collect();
        errors.iter_mut().for_each(|e| *e = rng.random::<f32>() * 2.0 - 1.0);
        per.update_priorities(&indices, &errors).expect("update");
    }
    group.bench_function("prioritized sample 64 with weights", |b| {
        b.iter(|| per.sample(64, 0.4, &mut rng, &mut batch).expect("sample"))
    });
    per.sample(64, 0.4, &mut rng, &mut batch).expect("sample");
    let indices = batch.indices.clone();
    group.bench_function("priority update 64", |b| {
        b.iter(|| {
            errors.iter_mut().for_each(|e| *e = rng.random::<f32>());
            per.update_priorities(&indices, &errors).expect("update")
        })
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("prioritized push", |b| {
        b.iter(|| {
            k += 1;
            black_box(per.push(&experience(&obs, k)).expect("push"))
        })
    });
    group.finish();
}

fn replay(c: &mut Criterion) {
    bench_obs_len(c, "obs4", 4);
    bench_obs_len(c, "obs400", 400);
}

criterion_group!(benches, replay);
criterion_main!(benches);
