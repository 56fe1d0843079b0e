//! FrozenLake, CliffWalking and Taxi.

use super::{assert_frames_differ, check_bad_input};
use crate::env::Env;
use crate::error::EnvError;
use crate::mdp::Transition;
use crate::toy_text::frozen_lake::{DOWN, LEFT, RIGHT};
use crate::toy_text::{cliff_walking, taxi};
use crate::toy_text::{
    generate_random_map, CliffWalking, FrozenLake, FrozenLakeConfig, FrozenLakeMap, Taxi,
};

fn custom(rows: &[&str]) -> crate::error::Result<FrozenLake> {
    FrozenLake::new(FrozenLakeConfig::with_map(FrozenLakeMap::Custom(
        rows.iter().map(|r| r.to_string()).collect(),
    )))
}

fn t(probability: f64, next_state: usize, reward: f64, terminated: bool) -> Transition {
    Transition { probability, next_state, reward, terminated }
}

#[test]
fn frozen_lake_table_uses_two_different_thirds() {
    let env = FrozenLake::v1();
    let m = env.transition_model().unwrap();
    let (fail, success) = (0.33333333333333337, 0.3333333333333333);
    assert_ne!(fail, success);
    // From 0 moving DOWN: LEFT (stay), DOWN (4), RIGHT (1), in that order, not merged.
    assert_eq!(
        m.transitions(0, DOWN),
        &[t(fail, 0, 0.0, false), t(success, 4, 0.0, false), t(fail, 1, 0.0, false)]
    );
    // 14 RIGHT into the goal 15; the hole 5 and the goal are absorbing.
    assert_eq!(m.transitions(14, RIGHT)[1], t(success, 15, 1.0, true));
    for a in 0..4 {
        assert_eq!(m.transitions(5, a), &[t(1.0, 5, 0.0, true)]);
        assert_eq!(m.transitions(15, a), &[t(1.0, 15, 0.0, true)]);
    }
    assert_eq!(m.initial_distribution()[0], 1.0);
    let still = FrozenLake::new(FrozenLakeConfig::default().slippery(false)).unwrap();
    assert_eq!(still.transition_model().unwrap().transitions(0, RIGHT), &[t(1.0, 1, 0.0, false)]);
}

#[test]
fn frozen_lake_config_success_rate_and_rewards() {
    let cfg = FrozenLakeConfig {
        map: FrozenLakeMap::Custom(vec!["SFH".into(), "FFG".into()]),
        is_slippery: true,
        success_rate: 0.8,
        reward_schedule: (10.0, -5.0, -1.0),
    };
    let env = FrozenLake::new(cfg.clone()).unwrap();
    let m = env.transition_model().unwrap();
    let fail = (1.0 - 0.8) / 2.0;
    assert_eq!(
        m.transitions(1, RIGHT),
        &[t(fail, 4, -1.0, false), t(0.8, 2, -5.0, true), t(fail, 1, -1.0, false)]
    );
    assert_eq!(m.transitions(4, RIGHT)[1], t(0.8, 5, 10.0, true));
    // Entering the start tile counts as frozen.
    assert_eq!(m.transitions(1, LEFT)[1], t(0.8, 0, -1.0, false));
    assert_eq!(env.map_rows(), vec!["SFH", "FFG"]);
    assert_eq!((env.nrow(), env.ncol(), env.tile(2)), (2, 3, Some('H')));
    for bad in [-0.1, 1.5, f64::NAN] {
        let err =
            FrozenLake::new(FrozenLakeConfig { success_rate: bad, ..cfg.clone() }).unwrap_err();
        assert!(matches!(err, EnvError::InvalidConfig(_)), "{err}");
    }
    let err =
        FrozenLake::new(FrozenLakeConfig { reward_schedule: (f64::INFINITY, 0.0, 0.0), ..cfg })
            .unwrap_err();
    assert!(err.to_string().contains("non-finite"), "{err}");
}

#[test]
fn frozen_lake_rejects_bad_maps_naming_the_problem() {
    let cases: [(&[&str], &str); 7] = [
        (&["FFF", "FFG"], "no start"),
        (&["SFS", "FFG"], "2 start tiles"),
        (&["SFF", "FFF"], "no goal"),
        (&["SFF", "FG"], "ragged rows: row 1"),
        (&["SFX", "FFG"], "unknown tile 'X' at row 0, column 2"),
        (&[], "empty"),
        (&["", ""], "empty"),
    ];
    for (rows, needle) in cases {
        let err = custom(rows).unwrap_err();
        assert!(matches!(err, EnvError::InvalidMap(_)), "{rows:?}: {err}");
        assert!(err.to_string().contains(needle), "{rows:?}: {err}");
    }
    let err = FrozenLake::new(FrozenLakeConfig::with_map(FrozenLakeMap::Named("5x5".into())))
        .unwrap_err();
    assert!(err.to_string().contains("\"5x5\""), "{err}");
}

#[test]
fn random_maps_are_valid_and_deterministic_per_seed() {
    let a = generate_random_map(8, 0.8, Some(3)).unwrap();
    assert_eq!(a, generate_random_map(8, 0.8, Some(3)).unwrap());
    let others: Vec<_> = (4..8).map(|s| generate_random_map(8, 0.8, Some(s)).unwrap()).collect();
    assert!(others.iter().any(|m| *m != a));
    for map in others.iter().chain([&a]) {
        assert_eq!(map.len(), 8);
        assert!(map.iter().all(|r| r.len() == 8));
        assert!(map[0].starts_with('S') && map[7].ends_with('G'));
        // A path exists: value iteration on the non-slippery lake reaches the start.
        let env = FrozenLake::new(
            FrozenLakeConfig::with_map(FrozenLakeMap::Custom(map.clone())).slippery(false),
        )
        .unwrap();
        let m = env.transition_model().unwrap();
        let mut v = vec![0.0f64; 64];
        for _ in 0..64 {
            for s in 0..64 {
                v[s] = (0..4)
                    .map(|a| {
                        m.transitions(s, a)
                            .iter()
                            .map(|t| t.reward + if t.terminated { 0.0 } else { v[t.next_state] })
                            .sum::<f64>()
                    })
                    .fold(0.0, f64::max);
            }
        }
        assert_eq!(v[0], 1.0, "{map:?}");
    }
    assert_eq!(generate_random_map(3, 1.0, Some(0)).unwrap(), vec!["SFF", "FFF", "FFG"]);
    let env = FrozenLake::new(FrozenLakeConfig::with_map(FrozenLakeMap::Random {
        size: 5,
        p: 0.7,
        seed: Some(9),
    }))
    .unwrap();
    assert_eq!(env.map_rows(), generate_random_map(5, 0.7, Some(9)).unwrap());
    for (size, p) in [(1, 0.8), (4, 0.0), (4, -1.0), (4, f64::NAN)] {
        assert!(matches!(generate_random_map(size, p, None), Err(EnvError::InvalidConfig(_))));
    }
}

#[test]
fn frozen_lake_steps_state_and_rendering() {
    let mut env = FrozenLake::new(FrozenLakeConfig::default().slippery(false)).unwrap();
    assert_eq!(env.reset(Some(0)), 0);
    assert_eq!(env.render_text().unwrap(), "\n\x1b[41mS\x1b[0mFFF\nFHFH\nFFFH\nHFFG\n");
    let before = env.render_rgb().unwrap();
    let s = env.step(&DOWN).unwrap();
    assert_eq!((s.obs, s.reward, s.terminated, s.truncated), (4, 0.0, false, false));
    assert!(env.render_text().unwrap().starts_with("  (Down)\nSFFF\n\x1b[41mF\x1b[0mHFH\n"));
    assert_frames_differ(&before, &env.render_rgb().unwrap(), 256, 256);
    let s = env.step(&RIGHT).unwrap();
    assert_eq!((s.obs, s.terminated), (5, true));
    env.set_state(14).unwrap();
    let s = env.step(&RIGHT).unwrap();
    assert_eq!((s.obs, s.reward, s.terminated), (15, 1.0, true));
    assert!(matches!(env.set_state(16), Err(EnvError::InvalidState(_))));
    assert_eq!(env.state(), 15);
    let big = FrozenLake::v1_8x8();
    assert_eq!(big.render_rgb().unwrap().width, 512);
    check_bad_input(FrozenLake::v1(), 4, &[0, 1, 2, 3, 1, 2]);
    // Same seed, same episode.
    let run = |seed| {
        let mut env = FrozenLake::v1();
        env.reset(Some(seed));
        (0..30).map(|i| env.step(&(i % 4)).map(|s| s.obs).ok()).collect::<Vec<_>>()
    };
    assert_eq!(run(11), run(11));
}

#[test]
fn cliff_walking_rules_and_rendering() {
    let mut env = CliffWalking::new(false);
    assert_eq!(env.reset(Some(0)), cliff_walking::START);
    let text = env.render_text().unwrap();
    assert_eq!(text.lines().nth(3).unwrap(), "x  C  C  C  C  C  C  C  C  C  C  T");
    assert_eq!(text.lines().next().unwrap(), "o  o  o  o  o  o  o  o  o  o  o  o");
    let before = env.render_rgb().unwrap();
    let s = env.step(&1).unwrap();
    assert_eq!((s.obs, s.reward, s.terminated), (36, -100.0, false));
    let s = env.step(&0).unwrap();
    assert_eq!((s.obs, s.reward), (24, -1.0));
    assert_frames_differ(&before, &env.render_rgb().unwrap(), 720, 240);
    env.set_state(35).unwrap();
    let s = env.step(&2).unwrap();
    assert_eq!((s.obs, s.reward, s.terminated), (47, -1.0, true));
    let m = env.transition_model().unwrap();
    assert_eq!(m.transitions(47, 0), &[t(1.0, 35, -1.0, false)]);
    let slippery = CliffWalking::new(true);
    let third = 1.0 / 3.0;
    assert_eq!(
        slippery.transition_model().unwrap().transitions(36, 1),
        &[t(third, 24, -1.0, false), t(third, 36, -100.0, false), t(third, 36, -1.0, false)]
    );
    assert!(env.set_state(48).is_err());
    check_bad_input(CliffWalking::new(false), 4, &[0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]);
}

#[test]
fn taxi_rules_encoding_and_rendering() {
    for s in 0..taxi::N_STATES {
        let (r, c, p, d) = taxi::decode(s);
        assert_eq!(taxi::encode(r, c, p, d), s);
    }
    let mut env = Taxi::new();
    let m = env.transition_model().unwrap();
    let isd = m.initial_distribution();
    assert_eq!(isd.iter().filter(|&&p| p > 0.0).count(), 300);
    assert!(isd.iter().all(|&p| p == 0.0 || p == 1.0 / 300.0));
    // Taxi at R (0, 0) with the passenger there, destination B.
    let s = taxi::encode(0, 0, 0, 3);
    assert_eq!(m.transitions(s, 4), &[t(1.0, taxi::encode(0, 0, 4, 3), -1.0, false)]);
    assert_eq!(m.transitions(s, 5), &[t(1.0, s, -10.0, false)]);
    // Wall east of (0, 1); drop at the wrong stand G leaves the passenger there.
    assert_eq!(m.transitions(taxi::encode(0, 1, 0, 3), 2)[0].next_state, taxi::encode(0, 1, 0, 3));
    assert_eq!(
        m.transitions(taxi::encode(0, 4, 4, 3), 5),
        &[t(1.0, taxi::encode(0, 4, 1, 3), -1.0, false)]
    );
    let done = taxi::encode(4, 3, 3, 3);
    assert_eq!(m.transitions(taxi::encode(4, 3, 4, 3), 5), &[t(1.0, done, 20.0, true)]);
    assert_eq!(m.transitions(done, 4)[0].next_state, taxi::encode(4, 3, 4, 3));
    assert_eq!(Taxi::action_mask(s).unwrap(), [true, false, true, false, true, false]);
    assert!(Taxi::action_mask(500).is_err());
    env.reset(Some(2));
    env.set_state(s).unwrap();
    let text = env.render_text().unwrap();
    assert!(text.starts_with("+---------+\n|\x1b[34;1m\x1b[43mR\x1b[0m\x1b[0m: |"), "{text:?}");
    assert!(text.contains("|Y| : |\x1b[35mB\x1b[0m: |"), "{text:?}");
    let before = env.render_rgb().unwrap();
    let step = env.step(&4).unwrap();
    assert_eq!(step.reward, -1.0);
    assert!(env.render_text().unwrap().contains("\x1b[42mR\x1b[0m"));
    assert!(env.render_text().unwrap().ends_with("  (Pickup)\n"));
    assert_frames_differ(&before, &env.render_rgb().unwrap(), 550, 350);
    assert!(env.set_state(500).is_err());
    // A random walk rarely ends Taxi; drive it with pickups/dropoffs from a set state.
    let mut env2 = Taxi::new();
    env2.reset(Some(0));
    env2.set_state(taxi::encode(4, 3, 4, 3)).unwrap();
    let mut twin = env2.clone();
    assert!(env2.step(&6).is_err());
    assert_eq!(env2.step(&5).unwrap(), twin.step(&5).unwrap());
    assert!(matches!(env2.step(&0), Err(EnvError::StepAfterEpisodeEnd { .. })));
    assert_eq!(Taxi::new().step(&0).unwrap_err(), EnvError::StepBeforeReset);
}
