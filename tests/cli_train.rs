//! The training workflow through the `deeprl` binary: train, evaluate, record, plot, resume,
//! and clear errors on bad input.

use deeprl::tensorboard::read::{scalars_and_texts, Contents};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn deeprl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_deeprl")).args(args).output().expect("run deeprl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("deeprl-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn json_line(stdout: &str) -> Value {
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON line ({e}): {stdout}"))
}

fn train_json(args: &[&str]) -> Value {
    let (ok, stdout, stderr) = deeprl(args);
    assert!(ok, "train failed: {stderr}");
    assert_eq!(stdout.lines().count(), 1, "--json prints one line: {stdout}");
    json_line(&stdout)
}

#[test]
fn train_eval_record_plot_with_the_random_agent() {
    let logdir = temp_dir("random");
    let logdir_s = logdir.to_str().unwrap();
    let summary = train_json(&[
        "train",
        "--env",
        "CartPole-v1",
        "--agent",
        "random",
        "--steps",
        "2000",
        "--seed",
        "4",
        "--set",
        "eval_every=1000",
        "--set",
        "eval_episodes=5",
        "--logdir",
        logdir_s,
        "--json",
    ]);
    for key in [
        "env",
        "agent",
        "seed",
        "steps",
        "episodes",
        "wall_s",
        "eval_mean_return",
        "eval_std_return",
        "run_dir",
    ] {
        assert!(summary.get(key).is_some(), "{key} missing in {summary}");
    }
    assert_eq!(summary["steps"], 2000);
    assert!(summary.get("success_rate").is_none(), "CartPole has no success criterion");
    let run_dir = PathBuf::from(summary["run_dir"].as_str().unwrap());
    let name = run_dir.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("CartPole-v1__random__4__"), "{name}");
    for file in ["config.toml", "checkpoint.safetensors", "scalars.csv", "summary.json"] {
        assert!(run_dir.join(file).is_file(), "{file} missing");
    }
    let config = std::fs::read_to_string(run_dir.join("config.toml")).unwrap();
    assert!(config.contains("eval_every = 1000 # --set"), "{config}");

    // The TensorBoard file holds the scalars and the config text, with valid CRCs.
    let events = std::fs::read_dir(&run_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().contains("tfevents"))
        .expect("an event file");
    let Contents { scalars, texts } = scalars_and_texts(&std::fs::read(&events).unwrap()).unwrap();
    let episodes = summary["episodes"].as_u64().unwrap() as usize;
    let returns: Vec<_> = scalars.iter().filter(|s| s.tag == "rollout/episode_return").collect();
    assert_eq!(returns.len(), episodes);
    assert!(returns.iter().all(|s| s.value >= 1.0 && s.value <= 500.0));
    let evals: Vec<_> = scalars.iter().filter(|s| s.tag == "eval/mean_return").collect();
    assert_eq!(evals.iter().map(|s| s.step).collect::<Vec<_>>(), vec![1000, 2000]);
    assert_eq!(evals[1].value as f64, summary["eval_mean_return"].as_f64().unwrap() as f32 as f64);
    assert!(scalars.iter().any(|s| s.tag == "time/sps" && s.value > 0.0));
    assert!(texts.iter().any(|(tag, text)| tag == "config" && text.contains("steps = 2000")));

    // Evaluate: the same fields, and the same numbers for the same seed.
    let run = run_dir.to_str().unwrap();
    let (ok, stdout, stderr) = deeprl(&["eval", "--checkpoint", run, "--episodes", "7", "--json"]);
    assert!(ok, "{stderr}");
    let eval = json_line(&stdout);
    assert_eq!(eval["eval_episodes"], 7);
    let again = json_line(&deeprl(&["eval", "--checkpoint", run, "--episodes", "7", "--json"]).1);
    assert_eq!(eval, again);

    // Record a GIF.
    let gif = logdir.join("episode.gif");
    let (ok, stdout, stderr) =
        deeprl(&["record", "--checkpoint", run, "--out", gif.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let bytes = std::fs::read(&gif).unwrap();
    assert!(bytes.starts_with(b"GIF89a"), "not a GIF");
    let frames: usize =
        stdout.split_whitespace().find_map(|w| w.trim_start_matches('(').parse().ok()).unwrap();
    assert!(frames >= 2, "{stdout}");

    // Plot two seeds as one group.
    let summary2 = train_json(&[
        "train",
        "--env",
        "CartPole-v1",
        "--agent",
        "random",
        "--steps",
        "2000",
        "--seed",
        "5",
        "--logdir",
        logdir_s,
        "--json",
    ]);
    let png = logdir.join("curves.png");
    let (ok, stdout, stderr) = deeprl(&[
        "plot",
        run,
        summary2["run_dir"].as_str().unwrap(),
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("1 lines"), "{stdout}");
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    // Labels split them into two lines.
    let (a, b) =
        (format!("first={run}"), format!("second={}", summary2["run_dir"].as_str().unwrap()));
    let (ok, stdout, stderr) = deeprl(&["plot", &a, &b, "--out", png.to_str().unwrap()]);
    assert!(ok && stdout.contains("2 lines"), "{stdout}{stderr}");
    std::fs::remove_dir_all(&logdir).unwrap();
}

/// The best evaluation's weights are kept in `best.safetensors` (SB3's EvalCallback best
/// model): the summary names its step and return, which is the highest evaluation logged, and
/// evaluating that file with the run's seed and episode count reproduces the return.
#[test]
fn the_best_evaluation_is_kept_and_reproducible() {
    let logdir = temp_dir("best");
    let summary = train_json(&[
        "train",
        "--env",
        "CartPole-v1",
        "--agent",
        "dqn",
        "--steps",
        "4000",
        "--seed",
        "2",
        "--set",
        "eval_every=1000",
        "--set",
        "eval_episodes=5",
        "--logdir",
        logdir.to_str().unwrap(),
        "--json",
    ]);
    let run_dir = PathBuf::from(summary["run_dir"].as_str().unwrap());
    let best = summary["best_eval_mean_return"].as_f64().expect("best_eval_mean_return");
    let step = summary["best_eval_step"].as_u64().expect("best_eval_step");
    let csv = std::fs::read_to_string(run_dir.join("scalars.csv")).unwrap();
    let evals: Vec<(u64, f64)> = csv
        .lines()
        .filter_map(|l| l.strip_prefix("eval/mean_return,"))
        .map(|l| {
            let (s, v) = l.split_once(',').unwrap();
            (s.parse().unwrap(), v.parse().unwrap())
        })
        .collect();
    assert_eq!(evals.iter().map(|e| e.0).collect::<Vec<_>>(), vec![1000, 2000, 3000, 4000]);
    let first_max = evals.iter().fold(evals[0], |m, &e| if e.1 > m.1 { e } else { m });
    assert_eq!((step, best), first_max, "{evals:?}");
    assert!(best >= summary["eval_mean_return"].as_f64().unwrap());
    let file = run_dir.join("best.safetensors");
    let (ok, stdout, stderr) = deeprl(&[
        "eval",
        "--checkpoint",
        file.to_str().unwrap(),
        "--episodes",
        "5",
        "--seed",
        "2",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(json_line(&stdout)["eval_mean_return"].as_f64().unwrap(), best);
}

fn fails_with(args: &[&str], needles: &[&str]) {
    let (ok, stdout, stderr) = deeprl(args);
    assert!(!ok, "{args:?} should fail:\n{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{args:?}: `{needle}` not in:\n{stderr}");
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let logdir = temp_dir("bad");
    let l = logdir.to_str().unwrap();
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--logdir", l, "--steps", "100"];
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>, needles: &[&str]| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        fails_with(&refs, needles)
    };
    run(train(&["--env", "CartPoel-v1", "--agent", "random"]), &["CartPoel-v1", "CartPole-v1"]);
    run(
        train(&["--env", "CartPole-v1", "--agent", "randon"]),
        &["randon", "did you mean `random`"],
    );
    run(
        train(&["--env", "CartPole-v1", "--agent", "random", "--set", "eval_evry=5"]),
        &["eval_evry", "did you mean `eval_every`"],
    );
    run(
        train(&["--env", "CartPole-v1", "--agent", "random", "--set", "eval_episodes=many"]),
        &["eval_episodes", "integer"],
    );
    run(
        train(&["--env", "CartPole-v1", "--agent", "random", "--set", "eval_episodes=0"]),
        &["eval_episodes"],
    );
    // Nothing was written by the failed runs.
    assert_eq!(std::fs::read_dir(&logdir).unwrap().count(), 0);

    // A log directory that cannot be created (below a file).
    let file = logdir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    fails_with(
        &["train", "--env", "CartPole-v1", "--agent", "random", "--logdir", file.to_str().unwrap()],
        &["cannot create the run directory"],
    );

    // Missing and corrupt checkpoints.
    fails_with(&["eval", "--checkpoint", l], &["no such checkpoint"]);
    let corrupt = logdir.join("checkpoint.safetensors");
    std::fs::write(&corrupt, b"not a checkpoint at all").unwrap();
    fails_with(&["eval", "--checkpoint", corrupt.to_str().unwrap()], &["not a deeprl checkpoint"]);
    std::fs::remove_dir_all(&logdir).unwrap();
}

/// The rows of `scalars.csv` up to `step`, without wall-clock-dependent tags.
fn curve(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("scalars.csv"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("time/"))
        .map(String::from)
        .collect()
}

/// Trains `agent` on `env` for `steps` in one go, and in two parts (interrupted at `half`,
/// then resumed): both end with the same numbers and the same checkpointed agent.
fn check_resume(env: &str, agent: &str, half: &str, steps: &str, sets: &[&str]) {
    let logdir = temp_dir(&format!("resume-{agent}"));
    let l = logdir.to_str().unwrap();
    let mut common = vec!["--env", env, "--agent", agent, "--seed", "9", "--logdir", l, "--json"];
    for set in sets {
        common.extend_from_slice(&["--set", set]);
    }
    let mut full = vec!["train", "--steps", steps];
    full.extend_from_slice(&common);
    let whole = train_json(&full);
    let mut part = vec!["train", "--steps", half];
    part.extend_from_slice(&common);
    let first = train_json(&part);
    let dir = first["run_dir"].as_str().unwrap().to_string();
    let resumed = train_json(&["train", "--resume", &dir, "--steps", steps, "--json"]);
    for key in ["steps", "episodes", "eval_mean_return", "eval_std_return"] {
        assert_eq!(whole[key], resumed[key], "{agent}: {key}");
    }
    // The interrupted run's final evaluation at `half` is the only extra row.
    let at_half = format!(",{half},");
    let mut a = curve(Path::new(whole["run_dir"].as_str().unwrap()));
    let b: Vec<String> =
        curve(Path::new(&dir)).into_iter().filter(|r| !r.contains(&at_half)).collect();
    a.retain(|r| !r.contains(&at_half));
    assert_eq!(a, b, "{agent}: logged scalars");
    // The agents' final states are identical, bit for bit.
    let state = |dir: &str| {
        deeprl::agents::AgentState::read(Path::new(dir).join("checkpoint.safetensors")).unwrap()
    };
    let (x, y) = (state(whole["run_dir"].as_str().unwrap()), state(&dir));
    let names: Vec<&str> = x.array_names().collect();
    assert!(!names.is_empty() || agent == "random");
    assert_eq!(names, y.array_names().collect::<Vec<_>>());
    for name in names {
        assert_eq!(x.array(name), y.array(name), "{agent}: {name}");
    }
    std::fs::remove_dir_all(&logdir).unwrap();
}

#[test]
fn resume_continues_an_interrupted_run_exactly() {
    check_resume("CartPole-v1", "random", "1500", "3000", &["eval_every=1000"]);
    check_resume("Taxi-v3", "q-learning", "5077", "12000", &["eval_every=4000"]);
    check_resume(
        "CartPole-v1",
        "reinforce",
        "2345",
        "6000",
        &["eval_every=2000", "eval_episodes=3", "target_return=inf"],
    );
}

#[test]
fn reinforce_solves_cartpole_from_the_cli() {
    // Greedy 100-episode mean >= 475 (the preset stops there); seeds 0-11 all solve it within
    // 50k steps (0.5 s each), so 200k is a wide margin.
    for seed in ["0", "1"] {
        let logdir = temp_dir(&format!("reinforce-{seed}"));
        let summary = train_json(&[
            "train",
            "--env",
            "CartPole-v1",
            "--agent",
            "reinforce",
            "--seed",
            seed,
            "--logdir",
            logdir.to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(summary["reached_target"], true, "{summary}");
        assert!(summary["eval_mean_return"].as_f64().unwrap() >= 475.0);
        assert_eq!(summary["eval_episodes"], 100);
        std::fs::remove_dir_all(&logdir).unwrap();
    }
}

#[test]
fn a_checkpoint_of_another_agent_or_env_is_refused() {
    let logdir = temp_dir("mismatch");
    let summary = train_json(&[
        "train",
        "--env",
        "FrozenLake-v1",
        "--agent",
        "q-learning",
        "--steps",
        "500",
        "--logdir",
        logdir.to_str().unwrap(),
        "--json",
    ]);
    let file = Path::new(summary["run_dir"].as_str().unwrap()).join("checkpoint.safetensors");
    let state = deeprl::agents::AgentState::read(&file).unwrap();
    for (key, value) in [("run.agent", "td"), ("run.env", "FrozenLake8x8-v1")] {
        let mut edited = state.clone();
        edited.put_meta(key, value).unwrap();
        let other = logdir.join(format!("{}.safetensors", key.replace('.', "-")));
        edited.write(&other).unwrap();
        fails_with(
            &["eval", "--checkpoint", other.to_str().unwrap()],
            &["does not fit", "checkpoint"],
        );
    }
    std::fs::remove_dir_all(&logdir).unwrap();
}

#[test]
fn tabular_agents_on_cartpole_say_why_not() {
    fails_with(
        &["train", "--env", "CartPole-v1", "--agent", "q-learning", "--steps", "10"],
        &["q-learning", "CartPole-v1", "discrete observation"],
    );
}
