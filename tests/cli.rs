//! Smoke tests of the `deeprl` binary.

use std::process::Command;

fn deeprl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_deeprl")).args(args).output().expect("run deeprl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn envs_lists_every_id_with_spaces_and_a_random_episode() {
    let (ok, stdout, stderr) = deeprl(&["envs"]);
    assert!(ok, "{stderr}");
    for id in [
        "CartPole-v1",
        "Pendulum-v1",
        "FrozenLake8x8-v1",
        "Taxi-v4",
        "Blackjack-v1",
        "ThreeStateMdp-v0",
    ] {
        assert!(stdout.lines().any(|l| l.starts_with(id)), "{id} missing:\n{stdout}");
    }
    let cartpole = stdout.lines().find(|l| l.starts_with("CartPole-v1")).unwrap();
    assert!(
        cartpole.contains("Discrete(2)") && cartpole.contains("Box(") && cartpole.contains("500"),
        "{cartpole}"
    );
    // The same seed plays the same episodes.
    assert_eq!(deeprl(&["envs", "--seed", "3"]).1, deeprl(&["envs", "--seed", "3"]).1);
}

#[test]
fn check_env_passes_a_builtin_and_rejects_an_unknown_id() {
    let (ok, stdout, _) = deeprl(&["check-env", "Acrobot-v1"]);
    assert!(ok && stdout.contains("all checks passed"), "{stdout}");
    let (ok, _, stderr) = deeprl(&["check-env", "Nope-v0"]);
    assert!(!ok && stderr.contains("unknown environment id 'Nope-v0'"), "{stderr}");
}

/// A device the binary cannot use is an error that names it and says what would work, not a
/// panic; in a CPU-only build that includes `cuda`.
#[test]
fn train_rejects_an_unknown_or_unavailable_device() {
    let base = ["train", "--env", "CartPole-v1", "--agent", "dqn", "--steps", "10", "--quiet"];
    let (ok, _, stderr) = deeprl(&[&base[..], &["--device", "tpu"]].concat());
    assert!(!ok && stderr.contains("unknown device `tpu`: use cpu or cuda"), "{stderr}");
    if cfg!(not(feature = "cuda")) {
        let (ok, _, stderr) = deeprl(&[&base[..], &["--device", "cuda"]].concat());
        assert!(!ok && stderr.contains("cannot use cuda"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
