//! Raw stepping throughput: every built-in env with random actions and automatic reset
//! (single thread, the env inside its Gymnasium `TimeLimit`), the type-erased `make` path,
//! the vector env with 8 and 64 CartPole copies, sequential and parallel, and the MinAtar
//! games (full action set, sticky actions, their registry time limits).
//!
//! `cargo bench -p deeprl-envs --bench step`; throughput is reported in steps per second.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use deeprl_envs::classic_control::{
    Acrobot, CartPole, MountainCar, MountainCarContinuous, Pendulum,
};
use deeprl_envs::mdp::FiniteMdp;
use deeprl_envs::minatar::{
    Breakout, Freeway, BREAKOUT_MAX_STEPS, FREEWAY_MAX_STEPS, N_ACTIONS as MINATAR_ACTIONS,
};
use deeprl_envs::toy_text::{Blackjack, BlackjackConfig, CliffWalking, FrozenLake, Taxi};
use deeprl_envs::vector::{Execution, VecEnv};
use deeprl_envs::wrappers::TimeLimit;
use deeprl_envs::{make, ActionRef, DynEnv, Env};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::hint::black_box;

/// One step with a random discrete action; resets when the episode ends.
fn step_discrete<E: Env<Action = usize>>(env: &mut E, rng: &mut SmallRng, n: usize) {
    let action = rng.random_range(0..n);
    match env.step(&action) {
        Ok(s) if s.terminated || s.truncated => drop(black_box(env.reset(None))),
        Ok(s) => drop(black_box(s.obs)),
        Err(e) => panic!("{e}"),
    }
}

/// One step with a random action in [-high, high]; resets when the episode ends.
fn step_continuous<E: Env<Action = [f32; 1]>>(env: &mut E, rng: &mut SmallRng, high: f32) {
    let action = [rng.random_range(-high..high)];
    match env.step(&action) {
        Ok(s) if s.terminated || s.truncated => drop(black_box(env.reset(None))),
        Ok(s) => drop(black_box(s.obs)),
        Err(e) => panic!("{e}"),
    }
}

fn discrete<E: Env<Action = usize>>(c: &mut Criterion, name: &str, mut env: E, n: usize) {
    let mut group = c.benchmark_group("env_step");
    group.throughput(Throughput::Elements(1));
    let mut rng = SmallRng::seed_from_u64(0);
    env.reset(Some(0));
    group.bench_function(name, |b| b.iter(|| step_discrete(&mut env, &mut rng, n)));
    group.finish();
}

fn continuous<E: Env<Action = [f32; 1]>>(c: &mut Criterion, name: &str, mut env: E, high: f32) {
    let mut group = c.benchmark_group("env_step");
    group.throughput(Throughput::Elements(1));
    let mut rng = SmallRng::seed_from_u64(0);
    env.reset(Some(0));
    group.bench_function(name, |b| b.iter(|| step_continuous(&mut env, &mut rng, high)));
    group.finish();
}

fn builtin_envs(c: &mut Criterion) {
    discrete(c, "CartPole-v1", TimeLimit::new(CartPole::new(), 500), 2);
    discrete(c, "MountainCar-v0", TimeLimit::new(MountainCar::new(), 200), 3);
    continuous(
        c,
        "MountainCarContinuous-v0",
        TimeLimit::new(MountainCarContinuous::new(), 999),
        1.0,
    );
    discrete(c, "Acrobot-v1", TimeLimit::new(Acrobot::new(), 500), 3);
    continuous(c, "Pendulum-v1", TimeLimit::new(Pendulum::new(), 200), 2.0);
    discrete(c, "FrozenLake-v1", TimeLimit::new(FrozenLake::v1(), 100), 4);
    discrete(c, "FrozenLake8x8-v1", TimeLimit::new(FrozenLake::v1_8x8(), 200), 4);
    discrete(c, "Taxi-v4", TimeLimit::new(Taxi::new(), 200), 6);
    discrete(c, "CliffWalking-v1", CliffWalking::new(false), 4);
    discrete(c, "Blackjack-v1", Blackjack::new(BlackjackConfig::default()), 2);
    // The three-state MDP refuses some actions in some states: always play a possible one.
    let mut group = c.benchmark_group("env_step");
    group.throughput(Throughput::Elements(1));
    let mut env = TimeLimit::new(FiniteMdp::three_state_example(), 200);
    let mut state = env.reset(Some(0));
    group.bench_function("ThreeStateMdp-v0", |b| {
        b.iter(|| {
            let action = [0, 0, 1][state];
            state = match env.step(&action) {
                Ok(s) if s.terminated || s.truncated => env.reset(None),
                Ok(s) => s.obs,
                Err(e) => panic!("{e}"),
            };
        })
    });
    group.finish();
}

fn type_erased(c: &mut Criterion) {
    let mut group = c.benchmark_group("dyn_env_step");
    group.throughput(Throughput::Elements(1));
    let mut env = make("CartPole-v1").expect("registered");
    let mut obs = [0.0f32; 4];
    let mut rng = SmallRng::seed_from_u64(0);
    env.reset_into(Some(0), &mut obs).expect("reset");
    group.bench_function("CartPole-v1 via make", |b| {
        b.iter(|| {
            let out = env.step_into(ActionRef::Discrete(rng.random_range(0..2)), &mut obs);
            if out.expect("step").done() {
                env.reset_into(None, &mut obs).expect("reset");
            }
            black_box(&obs);
        })
    });
    group.finish();
}

/// Steps a vector of `n` copies of `make()` with random discrete actions.
fn vector_of<E: DynEnv>(
    c: &mut Criterion,
    name: &str,
    n: usize,
    n_actions: usize,
    make: fn() -> E,
) {
    let mut group = c.benchmark_group("vec_env_step");
    group.throughput(Throughput::Elements(n as u64));
    for (label, execution) in
        [("sequential", Execution::Sequential), ("parallel", Execution::Parallel)]
    {
        let mut venv = VecEnv::new(n, make, execution).expect("vec env");
        venv.reset(Some(0)).expect("reset");
        let mut rng = SmallRng::seed_from_u64(0);
        let mut actions = vec![0usize; n];
        group.bench_function(format!("{name} x{n} {label}"), |b| {
            b.iter(|| {
                actions.iter_mut().for_each(|a| *a = rng.random_range(0..n_actions));
                black_box(venv.step_discrete(&actions).expect("step").obs);
            })
        });
    }
    group.finish();
}

fn vector(c: &mut Criterion) {
    let cartpole = || TimeLimit::new(CartPole::new(), 500);
    vector_of(c, "CartPole-v1", 8, 2, cartpole);
    vector_of(c, "CartPole-v1", 64, 2, cartpole);
    vector_of(c, "CartPole-v1", 1024, 2, cartpole);
    vector_of(c, "Acrobot-v1", 64, 3, || TimeLimit::new(Acrobot::new(), 500));
    vector_of(c, "Acrobot-v1", 256, 3, || TimeLimit::new(Acrobot::new(), 500));
}

fn minatar(c: &mut Criterion) {
    let breakout = TimeLimit::new(Breakout::new(), BREAKOUT_MAX_STEPS);
    discrete(c, "MinAtar/Breakout-v1", breakout, MINATAR_ACTIONS);
    let freeway = TimeLimit::new(Freeway::new(), FREEWAY_MAX_STEPS);
    discrete(c, "MinAtar/Freeway-v1", freeway, MINATAR_ACTIONS);
}

criterion_group!(benches, builtin_envs, type_erased, vector, minatar);
criterion_main!(benches);
