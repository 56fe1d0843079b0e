//! The host learner against candle's autograd: from identical weights and identical sampled
//! batches, both paths give the same loss and the same updated weights, for every
//! component of the DQN family and both torsos (the MLP on CartPole-like observations, the
//! MinAtar CNN on Breakout-like `4x10x10` images); checkpoints cross between them; a step
//! allocates nothing.
//!
//! **Tolerances.** The two paths compute the same expressions in `f32` but sum in different
//! orders (gemm's blocking against candle's, a loop against `sum_all`), so values differ by
//! rounding: a few units in the last place of each sum, relative 1e-7 to 1e-6 after a few
//! layers. The loss is compared at relative 1e-5 (about 100 ulps). A weight moves by at most
//! about `lr` per step (Adam's and RMSprop's normalised steps), and rounding-level gradient
//! differences change that move by a relative amount of the same order, so weights are
//! compared at `1e-4 lr` per step taken plus a few ulps of the weight itself. A wrong
//! gradient moves weights by `lr`-sized amounts in other directions and fails by orders of
//! magnitude (dropping the ReLU mask, the `1 / batch` factor or the tie rule of the dueling
//! max was checked to fail these tests).
//!
//! Most cases use `adam_eps = 0.1`, comparable to the gradients here, so that a step also
//! depends on each gradient's magnitude and not only on its sign: Adam with a tiny epsilon
//! would hide a wrongly scaled gradient.
//!
//! With `DEEPRL_TEST_DEVICE=cuda` (a `--features cuda` build) the candle side runs on the
//! GPU, so the same cases check candle's CUDA kernels against the host learner.

use candle_core::{Device, Tensor};
use deeprl_agents::dqn::{Dqn, DqnConfig};
use deeprl_agents::{Agent, AgentState, BuildContext, Transition};
use deeprl_envs::ActionRef;

const LR: f64 = 1e-3;

fn table(pairs: &[&str]) -> toml::Table {
    let mut t = toml::Table::new();
    for p in pairs {
        let (k, v) = deeprl_agents::config::parse_assignment(p).unwrap();
        t.insert(k, v);
    }
    t
}

/// A DQN agent on CartPole-v1 with `pairs` over small-net defaults; `learner` is "auto" or
/// "candle".
fn agent(pairs: &[&str], learner: &str) -> Dqn {
    agent_on("CartPole-v1", pairs, learner)
}

/// A DQN agent with the MinAtar CNN torso (16 filters, then `net_arch`) on
/// MinAtar/Breakout-v1 (`4x10x10` observations, 3 actions).
fn cnn_agent(pairs: &[&str], learner: &str) -> Dqn {
    let mut all = vec!["torso=\"cnn\""];
    all.extend_from_slice(pairs);
    agent_on("MinAtar/Breakout-v1", &all, learner)
}

/// [`cnn_agent`] with a small net (`net_arch=[32]`, batch 8) under `pairs`.
fn small_cnn(pairs: &[&str], learner: &str) -> Dqn {
    cnn_agent(&[&["net_arch=[32]", "batch_size=8"], pairs].concat(), learner)
}

/// Builds an agent from config pairs and a learner name.
type Maker = fn(&[&str], &str) -> Dqn;

/// Where the candle learner's tensors live: `$DEEPRL_TEST_DEVICE` (`cpu`, the default, or
/// `cuda`), one device for the whole test binary.
fn candle_device() -> Device {
    deeprl_nets::device::test_device().unwrap_or_else(|e| panic!("{e}"))
}

fn agent_on(env_id: &str, pairs: &[&str], learner: &str) -> Dqn {
    let env = deeprl_envs::make(env_id).unwrap();
    let device = if learner == "candle" { candle_device() } else { Device::Cpu };
    let ctx = BuildContext { env_id, env: &*env, seed: 7, device, total_steps: None };
    let lr = format!("lr={LR}");
    let learner = format!("learner=\"{learner}\"");
    let mut all = vec![
        "net_arch=[32, 24]",
        "batch_size=16",
        "buffer_size=1000",
        "learning_starts=1000000",
        "random_warmup=false",
        "adam_eps=0.1",
        "v_min=-5",
        "v_max=5",
        "atoms=11",
        lr.as_str(),
        learner.as_str(),
    ];
    all.extend_from_slice(pairs);
    Dqn::from_table("dqn", DqnConfig::default(), &ctx, &table(&all)).unwrap()
}

/// The `k`-th made-up transition: CartPole-like observations, rewards in [-1, 2], an
/// episode end every 23 steps (terminated) or 31 (truncated).
fn transition(k: usize, obs: &mut [f32; 4], next: &mut [f32; 4]) -> (usize, f64, bool, bool) {
    let x = k as f32;
    *obs = [(x * 0.37).sin(), (x * 0.11).cos() * 2.0, (x * 0.23).sin() * 0.2, (x * 0.05).cos()];
    *next = [obs[0] * 0.9 + 0.05, obs[1] - 0.1, obs[2] * 1.1, obs[3] * 0.8];
    let reward = ((x * 0.71).sin() * 1.5 + 0.5) as f64;
    ((k * 7 + k / 3) % 2, reward, k % 23 == 22, k % 31 == 30)
}

/// The `k`-th made-up MinAtar-like transition: sparse 0/1 images `[4, 10, 10]` (about one
/// cell in six set), the reward and episode ends of [`transition`], actions in `0..3`.
fn image_transition(k: usize, obs: &mut [f32], next: &mut [f32]) -> (usize, f64, bool, bool) {
    let cell =
        |k: usize, i: usize| (k * 7919 + i * 104_729 + (i * i) % 13).is_multiple_of(6) as u8 as f32;
    for (i, (o, n)) in obs.iter_mut().zip(next.iter_mut()).enumerate() {
        *o = cell(k, i);
        *n = cell(k + 1, i);
    }
    let (_, reward, terminated, truncated) = transition(k, &mut [0.0; 4], &mut [0.0; 4]);
    ((k * 5 + k / 7) % 3, reward, terminated, truncated)
}

fn observe(agent: &mut Dqn, range: std::ops::Range<usize>) {
    let (mut obs, mut next) = ([0.0; 400], [0.0; 400]);
    let images = agent.config().torso == deeprl_agents::dqn::TorsoKind::Cnn;
    let len = if images { 400 } else { 4 };
    for k in range {
        let (a, reward, terminated, truncated) = if images {
            image_transition(k, &mut obs, &mut next)
        } else {
            let (mut o, mut n) = ([0.0; 4], [0.0; 4]);
            let out = transition(k, &mut o, &mut n);
            obs[..4].copy_from_slice(&o);
            next[..4].copy_from_slice(&n);
            out
        };
        let (obs, next) = (&obs[..len], &next[..len]);
        let t = Transition {
            obs,
            action: ActionRef::Discrete(a),
            reward,
            next_obs: next,
            terminated,
            truncated,
        };
        agent.observe(&t).unwrap();
    }
}

/// Every online and target weight, flat.
fn weights(agent: &Dqn) -> Vec<f32> {
    let mut out = Vec::new();
    for net in [agent.online().unwrap(), agent.target().unwrap()] {
        for v in net.vars() {
            out.extend(v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap());
        }
    }
    out
}

/// Asserts that `host` and `candle` hold the same weights after `steps` steps.
fn assert_close(what: &str, steps: usize, host: &[f32], candle: &[f32]) {
    assert_eq!(host.len(), candle.len());
    let mut worst = (0.0f32, 0);
    for (i, (&h, &c)) in host.iter().zip(candle).enumerate() {
        let tol = 1e-4 * LR as f32 * steps.max(1) as f32 + 4.0 * f32::EPSILON * c.abs();
        // NaN counts as the worst excess.
        let excess = (h - c).abs() / tol;
        if excess.is_nan() || excess > worst.0 {
            worst = (if excess.is_nan() { f32::INFINITY } else { excess }, i);
        }
    }
    let i = worst.1;
    assert!(
        worst.0 <= 1.0,
        "{what}, after {steps} steps: weight {i} is {} on the host and {} through candle",
        host[i],
        candle[i]
    );
}

fn assert_loss_close(what: &str, step: usize, host: f64, candle: f64) {
    let rel = (host - candle).abs() / candle.abs().max(1e-6);
    assert!(rel <= 1e-5, "{what}, step {step}: loss {host} on the host, {candle} through candle");
}

/// Fills both agents' replay with the same 300 transitions, then takes `steps` gradient
/// steps on each, comparing losses and weights after the first and the last.
fn equivalent(what: &str, pairs: &[&str], steps: usize) {
    equivalent_with(agent, what, pairs, steps)
}

fn equivalent_with(make: Maker, what: &str, pairs: &[&str], steps: usize) {
    let (mut host, mut candle) = (make(pairs, "auto"), make(pairs, "candle"));
    assert!(host.uses_host_learner() && !candle.uses_host_learner());
    observe(&mut host, 0..300);
    observe(&mut candle, 0..300);
    assert_eq!(weights(&host), weights(&candle), "{what}: the same initial weights");
    for step in 1..=steps {
        let (h, c) = (host.gradient_step().unwrap(), candle.gradient_step().unwrap());
        assert_loss_close(what, step, h, c);
        if step == 1 || step == steps {
            assert_close(what, step, &weights(&host), &weights(&candle));
        }
    }
    let (h, c) = (host.counters(), candle.counters());
    assert!((h.last_q - c.last_q).abs() <= 1e-5 * c.last_q.abs().max(1.0), "{what}: mean Q");
}

#[test]
fn plain_and_double_dqn_with_huber_and_mse() {
    equivalent("plain, Huber", &[], 6);
    equivalent("plain, Adam's default epsilon", &["adam_eps=1e-8"], 6);
    equivalent("double, MSE", &["double=true", "loss=\"mse\""], 6);
    equivalent("no hidden layer", &["net_arch=[]"], 4);
}

#[test]
fn dueling_heads() {
    equivalent("dueling max", &["dueling=\"max\""], 6);
    equivalent("dueling mean, double", &["dueling=\"mean\"", "double=true"], 6);
}

#[test]
fn prioritized_replay_and_n_step_returns() {
    equivalent("prioritized, 3-step", &["prioritized=true", "n_step=3"], 6);
}

#[test]
fn clipping_and_rmsprop() {
    // max_grad_norm 0.05 is far below these gradients' norm: every step is clipped.
    equivalent("clipped", &["max_grad_norm=0.05"], 6);
    equivalent("rmsprop", &["optimizer=\"rmsprop\"", "rmsprop_eps=0.01", "rmsprop_alpha=0.95"], 6);
    let centered = ["optimizer=\"rmsprop\"", "rmsprop_centered=true", "rmsprop_eps=0.01"];
    equivalent("centered rmsprop", &centered, 6);
}

#[test]
fn c51_and_noisy_nets() {
    equivalent("C51", &["distributional=true"], 6);
    equivalent("C51, double", &["distributional=true", "double=true"], 4);
    equivalent("noisy, dueling mean", &["noisy=true", "dueling=\"mean\""], 6);
    let rainbow = [
        "distributional=true",
        "noisy=true",
        "dueling=\"mean\"",
        "double=true",
        "prioritized=true",
        "n_step=3",
        "max_grad_norm=0.5",
    ];
    equivalent("rainbow", &rainbow, 6);
}

/// Two advantage outputs tied exactly: candle's `max` backward sends the gradient to both,
/// and so must the host learner.
#[test]
fn dueling_max_ties_follow_candle() {
    let pairs = ["dueling=\"max\""];
    let (mut host, mut candle) = (agent(&pairs, "auto"), agent(&pairs, "candle"));
    for a in [&host, &candle] {
        let net = a.online().unwrap();
        let adv = net.layers.last().unwrap();
        // Column 1 of the advantage layer := column 0, so A(s, 0) == A(s, 1) for every s.
        let w = adv.weight.as_tensor();
        let col = w.narrow(1, 0, 1).unwrap();
        adv.weight.set(&Tensor::cat(&[&col, &col], 1).unwrap()).unwrap();
        let b = adv.bias.as_tensor();
        let col = b.narrow(1, 0, 1).unwrap();
        adv.bias.set(&Tensor::cat(&[&col, &col], 1).unwrap()).unwrap();
    }
    let x = [[0.3f32, -1.2, 0.7, 0.1], [1.0, 0.5, -0.25, -2.0]];
    let x = Tensor::new(&x, &candle_device()).unwrap();
    let net = candle.online().unwrap();
    let out: Vec<Vec<f32>> = net
        .forward(&x, &net.ones(2).unwrap(), false)
        .unwrap()
        .squeeze(2)
        .unwrap()
        .to_vec2()
        .unwrap();
    assert!(out.iter().all(|q| q[0] == q[1]), "the advantages tie: {out:?}");
    observe(&mut host, 0..300);
    observe(&mut candle, 0..300);
    let (h, c) = (host.gradient_step().unwrap(), candle.gradient_step().unwrap());
    assert_loss_close("tied dueling max", 1, h, c);
    assert_close("tied dueling max", 1, &weights(&host), &weights(&candle));
}

/// Training inside `observe` (target updates, soft with tau < 1, and the acting copy's
/// refresh) ends in the same place on both paths, for both torsos; the acting copies give
/// the same Q-values.
#[test]
fn training_through_observe_with_soft_target_updates() {
    let pairs = [
        "learning_starts=100",
        "train_freq=4",
        "gradient_steps=2",
        "target_update_interval=10",
        "tau=0.3",
        "dueling=\"mean\"",
    ];
    let mut image = [0.0f32; 400];
    image_transition(5, &mut image, &mut [0.0; 400]);
    let cases: [(Maker, &[f32]); 2] = [(agent, &[0.1, -0.3, 0.05, 0.2]), (small_cnn, &image)];
    for (make, obs) in cases {
        let (mut host, mut candle) = (make(&pairs, "auto"), make(&pairs, "candle"));
        observe(&mut host, 0..160);
        observe(&mut candle, 0..160);
        assert_eq!(host.counters().updates, 30);
        assert_eq!(host.counters().target_updates, 16);
        assert_close("observe", 30, &weights(&host), &weights(&candle));
        let (qh, qc) = (host.q_values(obs).unwrap(), candle.q_values(obs).unwrap());
        for (a, b) in qh.iter().zip(&qc) {
            assert!((a - b).abs() < 1e-5, "acting copy: {qh:?} vs {qc:?}");
        }
    }
}

/// A checkpoint written by one path loads into the other (same `SavedState` form of the
/// optimizer state) and both continue alike; within one path a resume is exact.
#[test]
fn checkpoints_cross_between_the_paths() {
    let pairs = ["prioritized=true", "noisy=true", "dueling=\"max\"", "optimizer=\"rmsprop\""];
    let makers: [Maker; 2] = [agent, small_cnn];
    let paths = [("auto", "candle"), ("candle", "auto"), ("auto", "auto")];
    for (make, (from, to)) in makers.iter().flat_map(|m| paths.map(|p| (m, p))) {
        let agent = make;
        let mut first = agent(&pairs, from);
        observe(&mut first, 0..300);
        for _ in 0..3 {
            first.gradient_step().unwrap();
        }
        let mut state = AgentState::new();
        first.save(&mut state).unwrap();
        let mut second = agent(&pairs, to);
        second.load(&state).unwrap();
        assert_eq!(weights(&first), weights(&second), "{from} -> {to}: loaded weights");
        for step in 1..=3 {
            let (a, b) = (first.gradient_step().unwrap(), second.gradient_step().unwrap());
            if from == to {
                assert_eq!(a.to_bits(), b.to_bits(), "{from} -> {to}: resumed loss");
            } else {
                assert_loss_close(&format!("{from} -> {to}"), step, a, b);
            }
        }
        let (a, b) = (weights(&first), weights(&second));
        if from == to {
            assert_eq!(a, b, "{from} -> {to}: a resume is exact");
        } else {
            // The optimizer state came across: a fresh optimizer would move the weights by
            // up to lr more.
            assert_close(&format!("{from} -> {to}"), 3, &a, &b);
        }
    }
    // Another optimizer's checkpoint is refused.
    let mut state = AgentState::new();
    agent(&[], "auto").save(&mut state).unwrap();
    let err = agent(&["optimizer=\"rmsprop\""], "auto").load(&state).unwrap_err().to_string();
    assert!(err.contains("Adam") && err.contains("RMSprop"), "{err}");
}

/// The MinAtar torso (3x3 convolution, 16 filters, ReLU, flatten, dense layers) with each
/// head, the losses, the optimizers, prioritized weights, clipping and Rainbow's noisy dueling
/// C51: the host learner's im2col convolution and its weight gradient against candle's.
#[test]
fn cnn_torso_heads_and_options() {
    let cnn = small_cnn;
    equivalent_with(cnn, "cnn, plain Huber", &[], 4);
    equivalent_with(cnn, "cnn, no dense hidden layer", &["net_arch=[]"], 3);
    equivalent_with(cnn, "cnn, two dense hidden layers", &["net_arch=[24, 16]"], 3);
    let rms = ["optimizer=\"rmsprop\"", "rmsprop_centered=true", "rmsprop_eps=0.01"];
    equivalent_with(
        cnn,
        "cnn, double MSE, centered rmsprop",
        &[&rms[..], &["double=true", "loss=\"mse\""]].concat(),
        4,
    );
    equivalent_with(
        cnn,
        "cnn, dueling max, prioritized",
        &["dueling=\"max\"", "prioritized=true"],
        4,
    );
    equivalent_with(cnn, "cnn, C51", &["distributional=true"], 3);
    let rainbow = [
        "distributional=true",
        "noisy=true",
        "dueling=\"mean\"",
        "double=true",
        "prioritized=true",
        "n_step=3",
        "max_grad_norm=0.5",
    ];
    equivalent_with(cnn, "cnn, rainbow", &rainbow, 4);
}

#[test]
fn the_torsos_and_the_switch_choose_the_learner() {
    let env = deeprl_envs::make("MinAtar/Breakout-v1").unwrap();
    let ctx = BuildContext {
        env_id: "MinAtar/Breakout-v1",
        env: &*env,
        seed: 0,
        device: Device::Cpu,
        total_steps: Some(1234),
    };
    let config = DqnConfig { torso: deeprl_agents::dqn::TorsoKind::Cnn, ..DqnConfig::default() };
    let cnn = Dqn::new("dqn", config.clone(), &ctx).unwrap();
    assert!(cnn.uses_host_learner());
    let config = DqnConfig { learner: deeprl_agents::dqn::LearnerKind::Candle, ..config };
    assert!(!Dqn::new("dqn", config, &ctx).unwrap().uses_host_learner());
    // total_timesteps 0 (the default) became the run's length.
    assert_eq!(cnn.config().total_timesteps, 1234);
    assert!(agent(&[], "auto").uses_host_learner());
    assert!(!agent(&[], "candle").uses_host_learner());
    assert_eq!(agent(&[], "auto").config().total_timesteps, 100_000);
    assert_eq!(agent(&["total_timesteps=500"], "auto").config().total_timesteps, 500);
}

/// After the first steps (the optimizer's moment buffers), a gradient step allocates only
/// the `gemm` crate's packing scratch inside its matrix products (at most two blocks per
/// product, all freed: nothing is kept and the count does not grow). The learner's own code
/// is checked to allocate nothing by the unit test beside it (products as plain loops).
#[test]
fn host_gradient_steps_allocate_only_the_products_scratch() {
    let rainbow = [
        "distributional=true",
        "noisy=true",
        "dueling=\"max\"",
        "double=true",
        "prioritized=true",
        "n_step=3",
        "max_grad_norm=0.5",
    ];
    let minatar = ["net_arch=[128]", "batch_size=32"];
    let cnn_rainbow = [&rainbow[..], &minatar[..]].concat();
    // (config, CNN torso, dense layers, forward passes: online on s, target on s', online on
    // s' if double)
    for (pairs, cnn, layers, passes) in [
        (&["net_arch=[256, 256]", "batch_size=64"][..], false, 3, 2),
        (&rainbow[..], false, 4, 3),
        (&minatar[..], true, 2, 2),
        (&cnn_rainbow[..], true, 3, 3),
    ] {
        let mut a = if cnn { cnn_agent(pairs, "auto") } else { agent(pairs, "auto") };
        observe(&mut a, 0..300);
        for _ in 0..2 {
            a.gradient_step().unwrap();
        }
        // Products per step: each pass (the convolution's included), then dW of every layer
        // and dx of all but the first; with the CNN torso the first's dx and the
        // convolution's dW too.
        let products = match cnn {
            false => passes * layers + layers + layers - 1,
            true => passes * (layers + 1) + layers + layers + 1,
        };
        let mut counts = Vec::new();
        for _ in 0..3 {
            let info = allocation_counter::measure(|| {
                a.gradient_step().unwrap();
            });
            assert_eq!(info.count_current, 0, "{pairs:?}: memory kept: {info:?}");
            counts.push(info.count_total);
        }
        assert!(counts.iter().all(|&c| c == counts[0]), "{pairs:?}: {counts:?}");
        assert!(counts[0] <= 2 * products as u64, "{pairs:?}: {counts:?} for {products} products");
    }
}

/// Acting on the host copy with the CNN torso (its convolution by definition, then the dense
/// layers, noisy or not) allocates nothing.
#[test]
fn acting_with_the_cnn_torso_allocates_nothing() {
    let mut image = [0.0f32; 400];
    image_transition(3, &mut image, &mut [0.0; 400]);
    for pairs in [&[][..], &["noisy=true", "dueling=\"mean\"", "distributional=true"][..]] {
        let mut a = small_cnn(pairs, "auto");
        let mut action = deeprl_agents::ActionBuf::Discrete(0);
        a.act(&image, &mut action).unwrap();
        let info = allocation_counter::measure(|| {
            for _ in 0..5 {
                a.act(&image, &mut action).unwrap();
                a.act_greedy(&image, &mut action).unwrap();
            }
        });
        assert_eq!(info.count_total, 0, "{pairs:?}: {info:?}");
    }
}
