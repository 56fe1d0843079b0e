//! The MinAtar presets resolve (defaults, then the preset's values, then `--set`), build their
//! agent on MinAtar/Breakout-v1 (the CNN torso on the host learner) and train for a few
//! hundred steps: the gradient steps that the preset's schedule implies all happen.

use candle_core::Device;
use deeprl::agents::{NullLogger, Runner};
use deeprl::runs::RunSpec;

/// Resolves `agent`'s preset on Breakout with a short budget, checks that `preset_keys` come
/// from the preset, runs it, and returns the agent's number of gradient steps.
fn run(agent: &str, preset_keys: &[&str], overrides: &[&str]) -> f64 {
    let mut sets: Vec<String> = ["steps=400", "buffer_size=2000", "eval_every=0"]
        .iter()
        .chain(overrides)
        .map(|s| s.to_string())
        .collect();
    sets.push("learning_starts=100".into());
    let spec = RunSpec::resolve("MinAtar/Breakout-v1", agent, 3, None, &sets).unwrap();
    let preset = format!("preset {agent}__MinAtar-Breakout-v1");
    for key in preset_keys {
        assert_eq!(spec.sources.get(*key), Some(&preset), "{agent}: `{key}`");
    }
    let built = spec.build(&Device::Cpu).unwrap();
    let mut runner =
        Runner::new(built.env, built.eval_env, built.agent, built.run, spec.seed, built.success)
            .unwrap();
    let summary = runner.run(&mut NullLogger, &mut |_| Ok(()), &mut |_| {}).unwrap();
    assert_eq!(summary.steps, 400);
    let mut updates = 0.0;
    runner.agent().scalars(&mut |tag, value| {
        if tag == "train/n_updates" {
            updates = value;
        }
    });
    updates
}

#[test]
fn rainbow_minatar_preset_builds_and_trains() {
    let keys = ["torso", "noisy", "dueling", "distributional", "v_max", "n_step", "adam_eps"];
    // train_freq 4 after 100 steps: 75 gradient steps.
    assert_eq!(run("rainbow", &keys, &[]), 75.0);
}

#[test]
fn dqn_minatar_preset_builds_and_trains() {
    // train_freq 1 after 100 steps: 300 gradient steps.
    assert_eq!(run("dqn", &["torso", "optimizer", "rmsprop_centered"], &[]), 300.0);
}
