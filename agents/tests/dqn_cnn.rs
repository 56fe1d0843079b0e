//! The DQN family's CNN torso (MinAtar's network, Young & Tian 2019) on MinAtar/Breakout-v1:
//! parameter count, learning through the agent API with finite losses, Q-values against a
//! plain-loop computation from the stored weights, the training (graph-recording) forward
//! against the acting forward, exact resume, and flat observations as an error.

use candle_core::{Device, Tensor};
use deeprl_agents::dqn::network::{q_values, Torso};
use deeprl_agents::dqn::{Dqn, DqnConfig, TorsoKind};
use deeprl_agents::{
    spec, ActionBuf, Agent, AgentState, BuildContext, NullLogger, RunConfig, Runner, Transition,
};

const ENV: &str = "MinAtar/Breakout-v1";

fn table(pairs: &[&str]) -> toml::Table {
    let mut t = toml::Table::new();
    for p in pairs {
        let (k, v) = deeprl_agents::config::parse_assignment(p).unwrap();
        t.insert(k, v);
    }
    t
}

fn build(
    agent: &str,
    env_id: &str,
    seed: u64,
    pairs: &[&str],
) -> deeprl_agents::Result<Box<dyn Agent>> {
    let env = deeprl_envs::make(env_id).unwrap();
    let ctx = BuildContext { env_id, env: &*env, seed, device: Device::Cpu, total_steps: None };
    (spec::find(agent)?.build)(&ctx, &table(pairs))
}

fn cnn_config() -> DqnConfig {
    DqnConfig {
        torso: TorsoKind::Cnn,
        net_arch: vec![128],
        buffer_size: 1000,
        learning_starts: 100,
        batch_size: 16,
        train_freq: 1,
        target_update_interval: 100,
        lr: 2.5e-4,
        total_timesteps: 1000,
        exploration_initial_eps: 1.0,
        exploration_final_eps: 0.1,
        ..DqnConfig::default()
    }
}

fn dqn(config: DqnConfig, seed: u64) -> Dqn {
    let env = deeprl_envs::make(ENV).unwrap();
    let ctx =
        BuildContext { env_id: ENV, env: &*env, seed, device: Device::Cpu, total_steps: None };
    Dqn::new("dqn", config, &ctx).unwrap()
}

/// A stored variable as `(dims, values)`.
fn var(agent: &Dqn, name: &str) -> (Vec<usize>, Vec<f32>) {
    let data = agent.online().unwrap().varmap.data().lock().unwrap();
    let v = data.get(name).unwrap_or_else(|| panic!("no variable {name}"));
    (v.dims().to_vec(), v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
}

#[test]
fn cnn_torso_has_the_minatar_shape_and_parameter_count() {
    let agent = dqn(cnn_config(), 0);
    let net = agent.online().unwrap();
    assert_eq!(net.shape.torso, Torso::minatar([4, 10, 10], vec![128]));
    assert_eq!(net.shape.obs_dim, 400);
    // Breakout: 4 channels, 6 actions. conv 16 x 4 x 3 x 3 + 16; flatten 16 * 8 * 8 = 1024;
    // dense 1024 x 128 + 128; head 128 x 6 + 6.
    let conv = 16 * 4 * 3 * 3 + 16;
    let dense = 16 * 8 * 8 * 128 + 128;
    let head = 128 * 6 + 6;
    assert_eq!(conv + dense + head, 132_566);
    let count: usize = net.vars().iter().map(|v| v.elem_count()).sum();
    assert_eq!(count, 132_566);
    assert_eq!(var(&agent, "conv.weight").0, vec![16, 4, 3, 3]);
    assert_eq!(var(&agent, "conv.bias").0, vec![16]);
    assert_eq!(var(&agent, "l0.weight").0, vec![1024, 128]);
    assert_eq!(var(&agent, "l1.weight").0, vec![128, 6]);
    // torch's default bound 1/sqrt(fan_in) = 1/6 for the convolution, and the same seed
    // gives the same weights.
    let w = var(&agent, "conv.weight").1;
    assert!(w.iter().all(|x| x.abs() <= 1.0 / 6.0) && w.iter().any(|x| x.abs() > 0.1));
    assert_eq!(w, var(&dqn(cnn_config(), 0), "conv.weight").1);
    assert_ne!(w, var(&dqn(cnn_config(), 1), "conv.weight").1);
}

/// `Q(obs)` by plain loops over the stored weights: 3x3 valid convolution + ReLU, flatten
/// (channel-major, as torch's `Flatten`), ReLU dense layer, linear head; in f64.
fn q_by_hand(agent: &Dqn, obs: &[f32]) -> Vec<f64> {
    let (cw, cb) = (var(agent, "conv.weight").1, var(agent, "conv.bias").1);
    let (w0, b0) = (var(agent, "l0.weight").1, var(agent, "l0.bias").1);
    let (w1, b1) = (var(agent, "l1.weight").1, var(agent, "l1.bias").1);
    let mut features = vec![0.0f64; 1024];
    for o in 0..16 {
        for y in 0..8 {
            for x in 0..8 {
                let mut s = cb[o] as f64;
                for c in 0..4 {
                    for i in 0..3 {
                        for j in 0..3 {
                            let wv = cw[((o * 4 + c) * 3 + i) * 3 + j] as f64;
                            s += wv * obs[c * 100 + (y + i) * 10 + (x + j)] as f64;
                        }
                    }
                }
                features[(o * 8 + y) * 8 + x] = s.max(0.0);
            }
        }
    }
    let hidden: Vec<f64> = (0..128)
        .map(|k| {
            let s: f64 = (0..1024).map(|i| features[i] * w0[i * 128 + k] as f64).sum();
            (s + b0[k] as f64).max(0.0)
        })
        .collect();
    (0..6)
        .map(|a| (0..128).map(|k| hidden[k] * w1[k * 6 + a] as f64).sum::<f64>() + b1[a] as f64)
        .collect()
}

#[test]
fn learns_through_the_agent_api_and_acts_on_the_trained_weights() {
    let mut agent = dqn(cnn_config(), 7);
    let mut env = deeprl_envs::make(ENV).unwrap();
    let n = env.obs_len();
    let (mut obs, mut next) = (vec![0.0; n], vec![0.0; n]);
    env.reset_into(Some(7), &mut obs).unwrap();
    let mut action = ActionBuf::for_space(&env.action_space());
    let mut losses = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..400 {
        agent.act(&obs, &mut action).unwrap();
        let out = env.step_into(action.as_ref(), &mut next).unwrap();
        let t = Transition {
            obs: &obs,
            action: action.as_ref(),
            reward: out.reward,
            next_obs: &next,
            terminated: out.terminated,
            truncated: out.truncated,
        };
        if let Some(info) = agent.observe(&t).unwrap() {
            losses.push(info.loss);
        }
        if seen.len() < 8 && obs.iter().sum::<f32>() > 0.0 {
            seen.extend_from_slice(&obs);
        }
        if out.done() {
            env.reset_into(None, &mut obs).unwrap();
        } else {
            std::mem::swap(&mut obs, &mut next);
        }
    }
    assert_eq!(losses.len(), 300, "one gradient step per env step after learning_starts");
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    assert_eq!(agent.counters().updates, 300);
    assert_eq!(agent.counters().target_updates, 4);
    // The weights moved, and acting reads the trained weights (the acting path's detached
    // convolution shares the variables' storage).
    assert_ne!(var(&agent, "conv.weight").1, var(&dqn(cnn_config(), 7), "conv.weight").1);
    let obs = seen[..400].to_vec();
    let got = agent.q_values(&obs).unwrap();
    let want = q_by_hand(&agent, &obs);
    for (g, w) in got.iter().zip(&want) {
        assert!((*g as f64 - w).abs() < 1e-4 * (1.0 + w.abs()), "acting {got:?} vs hand {want:?}");
    }
    // The training forward (recording the graph, the tracked convolution) on a batch gives
    // the same Q-values as acting on each observation alone.
    let rows = seen.len() / 400;
    let net = agent.online().unwrap();
    let x = Tensor::from_slice(&seen, (rows, 400), &Device::Cpu).unwrap();
    let batch: Vec<Vec<f32>> =
        q_values(&net.forward(&x, &net.ones(rows).unwrap(), true).unwrap(), None)
            .unwrap()
            .to_vec2()
            .unwrap();
    for (r, row) in batch.iter().enumerate() {
        let single = agent.q_values(&seen[r * 400..(r + 1) * 400]).unwrap();
        for (a, b) in row.iter().zip(&single) {
            assert!((a - b).abs() < 1e-5, "row {r}: training {row:?} vs acting {single:?}");
        }
    }
}

fn weights(agent: &dyn Agent) -> Vec<u32> {
    let mut s = AgentState::new();
    agent.save(&mut s).unwrap();
    let names: Vec<String> = s.array_names().map(String::from).collect();
    let mut bits = Vec::new();
    for n in names.iter().filter(|n| n.starts_with("dqn.online.") || n.starts_with("dqn.target.")) {
        if let Some(deeprl_agents::state::Array::F32 { data, .. }) = s.array(n) {
            bits.extend(data.iter().map(|x| x.to_bits()));
        }
    }
    bits
}

#[test]
fn resume_with_the_cnn_torso_continues_bit_for_bit() {
    for agent in ["dqn", "rainbow"] {
        let pairs = [
            "torso=\"cnn\"",
            "total_timesteps=400",
            "net_arch=[32]",
            "buffer_size=300",
            "batch_size=16",
            "learning_starts=100",
            "train_freq=2",
            "target_update_interval=50",
            "exploration_initial_eps=1.0",
            "exploration_final_eps=0.1",
        ];
        let config = RunConfig {
            steps: 400,
            eval_every: 0,
            eval_episodes: 1,
            checkpoint_every: 250,
            ..RunConfig::default()
        };
        let make = || deeprl_envs::make(ENV).unwrap();
        let full = build(agent, ENV, 5, &pairs).unwrap();
        let mut run = Runner::new(make(), make(), full, config.clone(), 5, None).unwrap();
        let mut saved: Option<AgentState> = None;
        run.run(
            &mut NullLogger,
            &mut |r| {
                if r.step() == 250 {
                    let mut s = AgentState::new();
                    r.save(&mut s)?;
                    saved = Some(s);
                }
                Ok(())
            },
            &mut |_| {},
        )
        .unwrap();
        let end = weights(run.agent());
        let path =
            std::env::temp_dir().join(format!("dqn-cnn-resume-{}-{agent}", std::process::id()));
        saved.unwrap().write(&path).unwrap();
        let state = AgentState::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let fresh = build(agent, ENV, 5, &pairs).unwrap();
        let start = weights(fresh.as_ref());
        let mut resumed = Runner::resume(make(), make(), fresh, config, None, &state).unwrap();
        assert_eq!(resumed.step(), 250);
        resumed.run(&mut NullLogger, &mut |_| Ok(()), &mut |_| {}).unwrap();
        let resumed_end = weights(resumed.agent());
        assert!(!end.is_empty());
        assert_ne!(start, end, "{agent}: the run did not train");
        assert_eq!(end, resumed_end, "{agent}: the resumed run ends elsewhere");
    }
}

#[test]
fn cnn_torso_on_flat_observations_is_an_error_naming_torso() {
    let e = match build("dqn", "CartPole-v1", 0, &["torso=\"cnn\""]) {
        Ok(_) => panic!("torso = \"cnn\" was accepted on CartPole"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("`torso`") && e.contains("[channels, height, width]"), "{e}");
    assert!(e.contains("CartPole-v1") && e.contains("Box"), "{e}");
    // A discrete observation space is no image either.
    let e = match build("dqn", "FrozenLake-v1", 0, &["torso=\"cnn\""]) {
        Ok(_) => panic!("torso = \"cnn\" was accepted on FrozenLake"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("`torso`") && e.contains("Discrete"), "{e}");
    // A checkpoint of the MLP torso does not load into the CNN torso.
    let mlp = build("dqn", ENV, 0, &["net_arch=[32]"]).unwrap();
    let mut s = AgentState::new();
    mlp.save(&mut s).unwrap();
    let mut cnn = build("dqn", ENV, 0, &["net_arch=[32]", "torso=\"cnn\""]).unwrap();
    let e = cnn.load(&s).unwrap_err().to_string();
    assert!(e.contains("torso"), "{e}");
}
