//! REINFORCE: the policy heads' log-probabilities, entropies and gradients against hand
//! computations, returns and advantages, the host forward against candle's, learning on
//! CartPole and on a continuous target task, bit-for-bit resume, and bad input.

use candle_core::{DType, Device, Tensor, Var};
use deeprl_agents::reinforce::host_mlp::HostMlp;
use deeprl_agents::reinforce::policy::{self, HALF_LOG_2PI};
use deeprl_agents::reinforce::returns::{discounted_returns, normalize, NORMALIZE_EPS};
use deeprl_agents::reinforce::{Reinforce, ReinforceConfig};
use deeprl_agents::{ActionBuf, Agent, AgentError, AgentState, BuildContext, Transition};
use deeprl_envs::{ActionRef, DynEnv, Env, Space, Step};
use deeprl_nets::mlp::{Activation, Mlp, MlpConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

fn table(pairs: &[&str]) -> toml::Table {
    pairs
        .iter()
        .map(|p| deeprl_agents::config::parse_assignment(p).unwrap())
        .collect::<toml::Table>()
}

fn build(env: &dyn DynEnv, seed: u64, pairs: &[&str]) -> deeprl_agents::Result<Reinforce> {
    let ctx = BuildContext { env_id: "test", env, seed, device: Device::Cpu, total_steps: None };
    Reinforce::from_table(&ctx, &table(pairs))
}

/// Plays `episodes` episodes (the first from `reset(seed)`), appending each action taken to
/// `log` and each episode's return to `returns`; stops early after `max_steps` steps.
fn play(
    agent: &mut Reinforce,
    env: &mut dyn DynEnv,
    obs: &mut Vec<f32>,
    episodes: usize,
    max_steps: usize,
    log: &mut Vec<ActionBuf>,
    returns: &mut Vec<f64>,
) {
    let mut action = ActionBuf::for_space(&env.action_space());
    let mut next = vec![0.0; obs.len()];
    let (mut done_episodes, mut steps, mut ret) = (0, 0, 0.0);
    while done_episodes < episodes && steps < max_steps {
        agent.act(obs, &mut action).unwrap();
        let out = env.step_into(action.as_ref(), &mut next).unwrap();
        let t = Transition {
            obs,
            action: action.as_ref(),
            reward: out.reward,
            next_obs: &next,
            terminated: out.terminated,
            truncated: out.truncated,
        };
        agent.observe(&t).unwrap();
        log.push(action.clone());
        steps += 1;
        ret += out.reward;
        if out.done() {
            env.reset_into(None, obs).unwrap();
            returns.push(ret);
            ret = 0.0;
            done_episodes += 1;
        } else {
            obs.copy_from_slice(&next);
        }
    }
}

fn weight_bits(agent: &Reinforce) -> Vec<(String, Vec<u32>)> {
    let data = agent.policy_vars().data().lock().unwrap();
    let mut v: Vec<_> = data
        .iter()
        .map(|(k, var)| {
            let values = var.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            (k.clone(), values.iter().map(|x| x.to_bits()).collect())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn categorical_log_prob_and_entropy_by_hand() {
    let logits = [1.0f64, 2.0, 3.0];
    let lse = 3.0 + (1.0 + (-1.0f64).exp() + (-2.0f64).exp()).ln();
    let p: Vec<f64> = logits.iter().map(|l| (l - lse).exp()).collect();
    let entropy: f64 = -p.iter().map(|p| p * p.ln()).sum::<f64>();
    let t = Tensor::new(&[[1.0f32, 2.0, 3.0], [1.0, 2.0, 3.0]], &Device::Cpu).unwrap();
    let a = Tensor::new(&[0u32, 2], &Device::Cpu).unwrap();
    let lp: Vec<f32> = policy::categorical_log_prob(&t, &a).unwrap().to_vec1().unwrap();
    assert!(close(lp[0] as f64, 1.0 - lse, 1e-6), "{lp:?}");
    assert!(close(lp[1] as f64, 3.0 - lse, 1e-6), "{lp:?}");
    let h: Vec<f32> = policy::categorical_entropy(&t).unwrap().to_vec1().unwrap();
    assert!(close(h[0] as f64, entropy, 1e-6) && close(h[1] as f64, entropy, 1e-6));
    // A uniform policy over 4 actions has entropy ln 4.
    let u = Tensor::zeros((1, 4), DType::F32, &Device::Cpu).unwrap();
    let h: Vec<f32> = policy::categorical_entropy(&u).unwrap().to_vec1().unwrap();
    assert!(close(h[0] as f64, 4f64.ln(), 1e-6));

    // The gradient of log pi(a) with respect to the logits is onehot(a) - softmax.
    let v = Var::new(&[[1.0f32, 2.0, 3.0]], &Device::Cpu).unwrap();
    let a = Tensor::new(&[1u32], &Device::Cpu).unwrap();
    let g = policy::categorical_log_prob(v.as_tensor(), &a).unwrap().sum_all().unwrap();
    let grads = g.backward().unwrap();
    let got: Vec<Vec<f32>> = grads.get(&v).unwrap().to_vec2().unwrap();
    for (i, (&gi, &pi)) in got[0].iter().zip(&p).enumerate() {
        let expected = if i == 1 { 1.0 - pi } else { -pi };
        assert!(close(gi as f64, expected, 1e-6), "{got:?}");
    }
}

#[test]
fn gaussian_log_prob_entropy_and_gradients_by_hand() {
    let (mu, log_std, a) = ([0.5f64, -1.0], [0.1f64, -0.3], [1.0f64, 0.0]);
    let mut lp = 0.0;
    let mut entropy = 0.0;
    for i in 0..2 {
        let s = log_std[i].exp();
        let z = (a[i] - mu[i]) / s;
        lp += -0.5 * z * z - log_std[i] - 0.5 * (2.0 * std::f64::consts::PI).ln();
        entropy += 0.5 + 0.5 * (2.0 * std::f64::consts::PI).ln() + log_std[i];
    }
    assert!(close(HALF_LOG_2PI, 0.5 * (2.0 * std::f64::consts::PI).ln(), 1e-15));
    let dev = Device::Cpu;
    let mean = Var::new(&[[0.5f32, -1.0]], &dev).unwrap();
    let ls = Var::new(&[0.1f32, -0.3], &dev).unwrap();
    let act = Tensor::new(&[[1.0f32, 0.0]], &dev).unwrap();
    let got = policy::gaussian_log_prob(mean.as_tensor(), ls.as_tensor(), &act).unwrap();
    assert!(close(got.to_vec1::<f32>().unwrap()[0] as f64, lp, 1e-6));
    let h = policy::gaussian_entropy(ls.as_tensor()).unwrap().to_scalar::<f32>().unwrap();
    assert!(close(h as f64, entropy, 1e-6));

    // d log pi / d mu_i = (a_i - mu_i) / sigma_i^2 and d log pi / d log sigma_i = z_i^2 - 1:
    // a sample above the mean pulls the mean up; a sample further than one sigma widens.
    let grads = got.sum_all().unwrap().backward().unwrap();
    let g_mu: Vec<Vec<f32>> = grads.get(&mean).unwrap().to_vec2().unwrap();
    let g_ls: Vec<f32> = grads.get(&ls).unwrap().to_vec1().unwrap();
    for i in 0..2 {
        let s2 = (2.0 * log_std[i]).exp();
        let z2 = (a[i] - mu[i]).powi(2) / s2;
        assert!(close(g_mu[0][i] as f64, (a[i] - mu[i]) / s2, 1e-6), "{g_mu:?}");
        assert!(close(g_ls[i] as f64, z2 - 1.0, 1e-6), "{g_ls:?}");
    }
    assert!(g_mu[0][0] > 0.0 && g_mu[0][1] > 0.0);
}

#[test]
fn host_sampling_matches_the_distributions() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let logits = [0.0f32, (2.0f32).ln(), f32::NEG_INFINITY, (5.0f32).ln()];
    let mut counts = [0usize; 4];
    let n = 80_000;
    for _ in 0..n {
        counts[policy::sample_categorical(&logits, &mut rng)] += 1;
    }
    // Probabilities 1/8, 2/8, 0, 5/8; 4 standard errors is under 0.008 here.
    for (c, p) in counts.iter().zip([0.125, 0.25, 0.0, 0.625]) {
        assert!((*c as f64 / n as f64 - p).abs() < 0.008, "{counts:?}");
    }
    assert_eq!(policy::argmax(&[0.1, 3.0, 3.0, -1.0]), 1);

    let (mean, std) = ([1.0f32, -2.0], [0.5f32, 2.0]);
    let mut out = [0.0f32; 2];
    let (mut s1, mut s2) = ([0.0f64; 2], [0.0f64; 2]);
    for _ in 0..n {
        policy::sample_gaussian(&mean, &std, &mut rng, &mut out);
        for i in 0..2 {
            s1[i] += out[i] as f64;
            s2[i] += (out[i] as f64).powi(2);
        }
    }
    for i in 0..2 {
        let m = s1[i] / n as f64;
        let sd = (s2[i] / n as f64 - m * m).sqrt();
        assert!((m - mean[i] as f64).abs() < 4.0 * std[i] as f64 / (n as f64).sqrt());
        assert!((sd / std[i] as f64 - 1.0).abs() < 0.02, "{sd}");
    }
    let mut clipped = [0.0f32; 3];
    policy::clip_into(
        &[-3.0, 0.5, 9.0],
        &[-2.0, -2.0, f32::NEG_INFINITY],
        &[2.0, 2.0, f32::INFINITY],
        &mut clipped,
    );
    assert_eq!(clipped, [-2.0, 0.5, 9.0]);
}

#[test]
fn returns_and_advantages_by_hand() {
    let mut g = [0.0f32; 4];
    discounted_returns(&[1.0, 0.0, -2.0, 4.0], 0.9, &mut g);
    let g3 = 4.0;
    let g2 = -2.0 + 0.9 * g3;
    let g1 = 0.0 + 0.9 * g2;
    let g0 = 1.0 + 0.9 * g1;
    assert_eq!(g, [g0 as f32, g1 as f32, g2 as f32, g3 as f32]);
    let mut undiscounted = [0.0f32; 3];
    discounted_returns(&[1.0, 1.0, 1.0], 1.0, &mut undiscounted);
    assert_eq!(undiscounted, [3.0, 2.0, 1.0]);

    let mut a = [2.0f32, 4.0, 6.0, 8.0];
    normalize(&mut a, NORMALIZE_EPS);
    // mean 5, unbiased std sqrt(20/3).
    let sd = (20.0f64 / 3.0).sqrt() + NORMALIZE_EPS;
    for (x, v) in a.iter().zip([2.0, 4.0, 6.0, 8.0]) {
        assert!(close(*x as f64, (v - 5.0) / sd, 1e-6));
    }
    let mean: f32 = a.iter().sum::<f32>() / 4.0;
    assert!(mean.abs() < 1e-6);
}

#[test]
fn host_forward_equals_candle_forward() {
    let dev = Device::Cpu;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for act in [
        Activation::Relu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Elu(1.0),
        Activation::LeakyRelu(0.01),
        Activation::Gelu,
        Activation::Silu,
        Activation::Identity,
    ] {
        // 19 inputs: the dot product has a vectorised part and a remainder.
        let config = MlpConfig { activation: act, ..MlpConfig::new(vec![19, 37, 16, 3]) };
        let vm = candle_nn::VarMap::new();
        let mlp = Mlp::seeded(&config, &vm, "", DType::F32, &dev, 5).unwrap();
        let mut host = HostMlp::new(&mlp, act, Activation::Identity).unwrap();
        assert_eq!((host.input_len(), host.output_len()), (19, 3));
        for _ in 0..5 {
            let x: Vec<f32> = (0..19).map(|_| rng.random_range(-3.0..3.0)).collect();
            let want: Vec<Vec<f32>> = mlp
                .forward(&Tensor::from_slice(&x, (1, 19), &dev).unwrap())
                .unwrap()
                .to_vec2()
                .unwrap();
            let got = host.forward(&x);
            for (g, w) in got.iter().zip(&want[0]) {
                assert!((g - w).abs() <= 2e-6 * (1.0 + w.abs()), "{act:?}: {got:?} vs {want:?}");
            }
        }
    }
    // Through the agent: after updates the host copy follows the trained weights.
    let mut env = deeprl_envs::make("CartPole-v1").unwrap();
    let mut agent = build(&*env, 0, &[]).unwrap();
    let mut obs = vec![0.0; 4];
    env.reset_into(Some(0), &mut obs).unwrap();
    play(&mut agent, &mut *env, &mut obs, 5, usize::MAX, &mut vec![], &mut vec![]);
    assert_eq!(agent.updates(), 5);
    let want: Vec<Vec<f32>> = agent
        .policy()
        .forward(&Tensor::from_slice(&obs, (1, 4), &dev).unwrap())
        .unwrap()
        .to_vec2()
        .unwrap();
    let got = agent.policy_output(&obs).unwrap().to_vec();
    for (g, w) in got.iter().zip(&want[0]) {
        assert!((g - w).abs() <= 2e-6 * (1.0 + w.abs()), "{got:?} vs {want:?}");
    }
}

/// Runs REINFORCE on CartPole-v1 and returns the episode at which the mean return of the last
/// 100 episodes first reached `threshold`, if it did within `max_episodes`.
fn cartpole_episodes_to(
    seed: u64,
    pairs: &[&str],
    threshold: f64,
    max_episodes: usize,
) -> Option<usize> {
    let mut env = deeprl_envs::make("CartPole-v1").unwrap();
    let mut agent = build(&*env, seed, pairs).unwrap();
    let mut obs = vec![0.0; 4];
    env.reset_into(Some(seed), &mut obs).unwrap();
    let mut recent = VecDeque::new();
    for episode in 1..=max_episodes {
        let mut returns = vec![];
        play(&mut agent, &mut *env, &mut obs, 1, usize::MAX, &mut vec![], &mut returns);
        recent.push_back(returns[0]);
        if recent.len() > 100 {
            recent.pop_front();
        }
        if recent.len() == 100 && recent.iter().sum::<f64>() / 100.0 >= threshold {
            return Some(episode);
        }
    }
    None
}

/// CartPole-v1 with the default config (PyTorch's REINFORCE example): the 100-episode mean
/// return reaches 195 (the CartPole-v0 threshold). Over seeds 0..12 this took 100-335
/// episodes, except seed 6, whose policy collapses early to an almost deterministic one and
/// never recovers (a known failure of REINFORCE at lr 1e-2; with the baseline it reaches 195
/// in 268 episodes). The budget of 800 episodes is over twice the slowest seed.
#[test]
fn cartpole_reaches_195() {
    for seed in [0, 1] {
        let episodes = cartpole_episodes_to(seed, &[], 195.0, 800);
        assert!(episodes.is_some(), "seed {seed} did not reach 195 in 800 episodes");
    }
    // The learned baseline solves it too.
    let episodes = cartpole_episodes_to(0, &["baseline=true"], 195.0, 800);
    assert!(episodes.is_some(), "with a baseline: did not reach 195 in 800 episodes");
}

/// A one-step continuous task: observe a target `c ~ U(-1, 1)`, act `a` in `[-2, 2]`, get
/// `-(a - c)^2`. The best policy puts its mean on `c` with a small sigma (return near 0); the
/// initial one (mean near 0, sigma 1) gets about `-(1/3 + 1) = -1.33`.
#[derive(Clone)]
struct Target {
    rng: ChaCha8Rng,
    c: f32,
}

impl Target {
    fn new() -> Self {
        Target { rng: ChaCha8Rng::seed_from_u64(0), c: 0.0 }
    }
}

impl Env for Target {
    type Obs = [f32; 1];
    type Action = [f32; 1];
    fn observation_space(&self) -> Space {
        Space::boxed(vec![-1.0], vec![1.0])
    }
    fn action_space(&self) -> Space {
        Space::boxed(vec![-2.0], vec![2.0])
    }
    fn reset(&mut self, seed: Option<u64>) -> [f32; 1] {
        deeprl_envs::reseed(&mut self.rng, seed);
        self.c = self.rng.random_range(-1.0..1.0);
        [self.c]
    }
    fn step(&mut self, action: &[f32; 1]) -> deeprl_envs::Result<Step<[f32; 1]>> {
        let reward = -((action[0] - self.c) as f64).powi(2);
        Ok(Step { obs: [self.c], reward, terminated: true, truncated: false })
    }
}

#[test]
fn gaussian_policy_learns_a_continuous_target() {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| deeprl_envs::register("ReinforceTarget-v0", Target::new).unwrap());
    let mut env = deeprl_envs::make("ReinforceTarget-v0").unwrap();
    // One-step episodes: several per update, or the normalised advantage of a lone step is 0.
    let pairs = ["episodes_per_update=32", "hidden_sizes=[32]", "activation=\"tanh\""];
    let seed = 4;
    let mut agent = build(&*env, seed, &pairs).unwrap();
    let mut obs = vec![0.0; 1];
    env.reset_into(Some(seed), &mut obs).unwrap();
    let mut returns = vec![];
    play(&mut agent, &mut *env, &mut obs, 6400, usize::MAX, &mut vec![], &mut returns);
    let mean = |r: &[f64]| r.iter().sum::<f64>() / r.len() as f64;
    // The 32 episodes before the first update, and the last 320. Over seeds 0..8 the last
    // 320 averaged -0.026 to -0.045 and the learned log sigma ended between -1.85 and -1.95.
    let (first, last) = (mean(&returns[..32]), mean(&returns[returns.len() - 320..]));
    assert!(first < -0.6, "the untrained policy already scores {first}");
    assert!(last > -0.1, "after 200 updates the mean return is {last} (first 32: {first})");
    // The learned sigma shrank from 1.
    let log_std = agent.policy_vars().data().lock().unwrap()["log_std"].to_vec1::<f32>().unwrap();
    assert!(log_std[0] < -1.0, "log_std {log_std:?}");
    // The greedy action is the clipped mean, near the target.
    let mut action = ActionBuf::for_space(&env.action_space());
    agent.act_greedy(&[0.5], &mut action).unwrap();
    let ActionBuf::Continuous(a) = &action else { panic!("{action:?}") };
    assert!((a[0] - 0.5).abs() < 0.2, "{a:?}");
}

#[test]
fn the_update_uses_the_unclipped_gaussian_sample() {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| deeprl_envs::register("ReinforceTargetClip-v0", Target::new).unwrap());
    let mut env = deeprl_envs::make("ReinforceTargetClip-v0").unwrap();
    // sigma = e^2 = 7.4 on a box of [-2, 2]: most samples are clipped.
    let mut agent = build(&*env, 0, &["log_std_init=2.0", "episodes_per_update=100"]).unwrap();
    let mut obs = vec![0.0; 1];
    env.reset_into(Some(0), &mut obs).unwrap();
    let mut taken = vec![];
    play(&mut agent, &mut *env, &mut obs, 20, usize::MAX, &mut taken, &mut vec![]);
    let stored = &agent.batch().actions;
    assert_eq!(stored.len(), 20);
    let mut outside = 0;
    for (s, t) in stored.iter().zip(&taken) {
        let ActionBuf::Continuous(t) = t else { panic!("{t:?}") };
        assert_eq!(s.clamp(-2.0, 2.0), t[0]);
        outside += usize::from(s.abs() > 2.0);
    }
    assert!(outside >= 5, "{stored:?}");
    // An action the runner chose itself (not the last sample, clipped) is stored as given.
    let t = Transition {
        obs: &[0.3],
        action: ActionRef::Continuous(&[1.25]),
        reward: -1.0,
        next_obs: &[0.3],
        terminated: true,
        truncated: false,
    };
    agent.observe(&t).unwrap();
    assert_eq!(agent.batch().actions[20], 1.25);
}

/// Trains `episodes` episodes and a few steps into the next one, checkpoints through a file,
/// loads into a fresh agent of the same config, and continues both on identical envs: every
/// action and every weight stays bit-identical. A third agent trained straight through from
/// the same seed agrees too.
fn resume_bit_for_bit(env_id: &str, pairs: &[&str], episodes: usize, extra_steps: usize) {
    let seed = 9;
    let mut env_a = deeprl_envs::make(env_id).unwrap();
    let mut a = build(&*env_a, seed, pairs).unwrap();
    let mut obs_a = vec![0.0; env_a.obs_len()];
    env_a.reset_into(Some(seed), &mut obs_a).unwrap();
    let mut log_a = vec![];
    play(&mut a, &mut *env_a, &mut obs_a, episodes, usize::MAX, &mut log_a, &mut vec![]);
    play(&mut a, &mut *env_a, &mut obs_a, 1, extra_steps, &mut log_a, &mut vec![]);
    assert!(a.updates() >= 1);

    let dir =
        std::env::temp_dir().join(format!("deeprl-reinforce-{}-{env_id}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("agent.safetensors");
    let mut state = AgentState::new();
    a.save(&mut state).unwrap();
    state.write(&path).unwrap();
    let mut env_b = deeprl_envs::make(env_id).unwrap();
    let mut b = build(&*env_b, 1234, pairs).unwrap(); // another seed: everything comes from the file
    b.load(&AgentState::read(&path).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(weight_bits(&a), weight_bits(&b));

    // Bring env B to env A's state by replaying the same actions from the same seed.
    let mut obs_b = vec![0.0; env_b.obs_len()];
    env_b.reset_into(Some(seed), &mut obs_b).unwrap();
    let mut next = vec![0.0; obs_b.len()];
    for action in &log_a {
        if env_b.step_into(action.as_ref(), &mut next).unwrap().done() {
            env_b.reset_into(None, &mut obs_b).unwrap();
        } else {
            obs_b.copy_from_slice(&next);
        }
    }
    assert_eq!(obs_a, obs_b);

    let (mut more_a, mut more_b) = (vec![], vec![]);
    play(&mut a, &mut *env_a, &mut obs_a, 4, usize::MAX, &mut more_a, &mut vec![]);
    play(&mut b, &mut *env_b, &mut obs_b, 4, usize::MAX, &mut more_b, &mut vec![]);
    assert_eq!(more_a, more_b);
    assert_eq!(a.updates(), b.updates());
    assert!(a.updates() >= 3);
    assert_eq!(weight_bits(&a), weight_bits(&b));

    // The same seed from scratch, straight through.
    let mut env_c = deeprl_envs::make(env_id).unwrap();
    let mut c = build(&*env_c, seed, pairs).unwrap();
    let mut obs_c = vec![0.0; env_c.obs_len()];
    env_c.reset_into(Some(seed), &mut obs_c).unwrap();
    let mut log_c = vec![];
    let total = log_a.len() + more_a.len();
    play(&mut c, &mut *env_c, &mut obs_c, usize::MAX, total, &mut log_c, &mut vec![]);
    assert_eq!(log_c.len(), total);
    assert_eq!(weight_bits(&a), weight_bits(&c));
}

#[test]
fn resume_is_bit_for_bit_categorical_with_baseline() {
    resume_bit_for_bit("CartPole-v1", &["episodes_per_update=2", "baseline=true"], 5, 7);
}

#[test]
fn resume_is_bit_for_bit_gaussian() {
    resume_bit_for_bit("Pendulum-v1", &["episodes_per_update=1", "hidden_sizes=[16]"], 2, 30);
}

/// An env whose action space is MultiDiscrete, which REINFORCE does not support.
struct MultiAction;

impl DynEnv for MultiAction {
    fn observation_space(&self) -> Space {
        Space::boxed(vec![0.0; 2], vec![1.0; 2])
    }
    fn action_space(&self) -> Space {
        Space::MultiDiscrete { nvec: vec![2, 3] }
    }
    fn obs_len(&self) -> usize {
        2
    }
    fn reset_into(&mut self, _: Option<u64>, _: &mut [f32]) -> deeprl_envs::Result<()> {
        Ok(())
    }
    fn step_into(
        &mut self,
        _: ActionRef<'_>,
        _: &mut [f32],
    ) -> deeprl_envs::Result<deeprl_envs::StepOutcome> {
        unreachable!("never stepped")
    }
    fn render_text(&self) -> Option<String> {
        None
    }
    fn render_rgb(&self) -> Option<deeprl_envs::Frame> {
        None
    }
    fn max_episode_steps(&self) -> Option<usize> {
        None
    }
    fn transition_model(&self) -> Option<&deeprl_envs::mdp::TransitionModel> {
        None
    }
}

#[test]
fn bad_input_is_an_error_naming_the_problem() {
    let err = build(&MultiAction, 0, &[]).err().unwrap();
    assert!(matches!(err, AgentError::Incompatible { .. }), "{err}");
    assert!(err.to_string().contains("MultiDiscrete"), "{err}");

    let env = deeprl_envs::make("CartPole-v1").unwrap();
    let spec = deeprl_agents::spec::find("reinforce").unwrap();
    let ctx = BuildContext {
        env_id: "CartPole-v1",
        env: &*env,
        seed: 0,
        device: Device::Cpu,
        total_steps: None,
    };
    let err = (spec.build)(&ctx, &table(&["gama=0.9"])).err().unwrap().to_string();
    assert!(
        err.contains("unknown config key `gama`") && err.contains("did you mean `gamma`"),
        "{err}"
    );
    let err = (spec.build)(&ctx, &table(&["episodes_per_update=0"])).err().unwrap().to_string();
    assert!(err.contains("episodes_per_update"), "{err}");
    let err = (spec.build)(&ctx, &table(&["activation=\"rleu\""])).err().unwrap().to_string();
    assert!(err.contains("did you mean `relu`"), "{err}");
    let err = (spec.build)(&ctx, &table(&["gamma=1.5"])).err().unwrap().to_string();
    assert!(err.contains("gamma"), "{err}");
    let err = (spec.build)(&ctx, &table(&["hidden_sizes=[64, 0]"])).err().unwrap().to_string();
    assert!(err.contains("hidden_sizes[1] is zero"), "{err}");
    assert!((spec.defaults)().contains_key("baseline"));
    assert_eq!((spec.defaults)()["gamma"].as_float(), Some(ReinforceConfig::default().gamma));

    let mut agent = (spec.build)(&ctx, &toml::Table::new()).unwrap();
    let mut action = ActionBuf::Discrete(0);
    let err = agent.act(&[0.0; 3], &mut action).unwrap_err().to_string();
    assert!(err.contains("observation of 3 values, the policy takes 4"), "{err}");
    let t = Transition {
        obs: &[0.0; 4],
        action: ActionRef::Discrete(2),
        reward: 1.0,
        next_obs: &[0.0; 4],
        terminated: false,
        truncated: false,
    };
    let err = agent.observe(&t).unwrap_err().to_string();
    assert!(err.contains("does not fit the policy"), "{err}");
    let t = Transition { action: ActionRef::Continuous(&[0.0]), ..t };
    assert!(agent.observe(&t).is_err());
    let t = Transition { action: ActionRef::Discrete(1), reward: f64::NAN, ..t };
    assert!(agent.observe(&t).unwrap_err().to_string().contains("not finite"));

    // A checkpoint of another architecture is refused with the reason.
    let mut state = AgentState::new();
    agent.save(&mut state).unwrap();
    let mut other = build(&*env, 0, &["hidden_sizes=[8]"]).unwrap();
    let err = other.load(&state).unwrap_err().to_string();
    assert!(err.contains("hidden_sizes"), "{err}");
    let pendulum = deeprl_envs::make("Pendulum-v1").unwrap();
    let mut other = build(&*pendulum, 0, &[]).unwrap();
    assert!(other.load(&state).is_err());
}
