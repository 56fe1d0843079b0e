//! Blackjack: rules, options, state, rendering, and the model against Monte Carlo.

use super::{assert_frames_differ, check_bad_input};
use crate::env::{Env, EnvRng};
use crate::error::EnvError;
use crate::mdp::TransitionModel;
use crate::toy_text::blackjack::{
    dealer_final_distribution, default_rules_model, state_index, state_obs, DECK, HIT, N_STATES,
    STICK,
};
use crate::toy_text::{Blackjack, BlackjackConfig, BlackjackState, Hand};
use rand::{Rng, SeedableRng};
use std::collections::HashMap;

fn hands(player: &[u8], dealer: &[u8]) -> BlackjackState {
    BlackjackState {
        player: Hand::from_cards(player).unwrap(),
        dealer: Hand::from_cards(dealer).unwrap(),
    }
}

fn stick_reward(config: BlackjackConfig, player: &[u8], dealer: &[u8]) -> f64 {
    let mut env = Blackjack::new(config);
    env.reset(Some(0));
    env.set_state(hands(player, dealer)).unwrap();
    let s = env.step(&STICK).unwrap();
    assert!(s.terminated);
    s.reward
}

#[test]
fn hands_count_aces_as_gymnasium() {
    let h = Hand::from_cards(&[1, 6]).unwrap();
    assert_eq!((h.sum(), h.usable_ace(), h.is_natural()), (17, true, false));
    let h = Hand::from_cards(&[1, 6, 8]).unwrap();
    assert_eq!((h.sum(), h.usable_ace()), (15, false));
    let h = Hand::from_cards(&[1, 10]).unwrap();
    assert_eq!((h.sum(), h.is_natural()), (21, true));
    assert!(!Hand::from_cards(&[1, 5, 5]).unwrap().is_natural());
    let h = Hand::from_cards(&[10, 9, 5]).unwrap();
    assert_eq!((h.sum(), h.is_bust(), h.score()), (24, true, 0));
    assert_eq!(Hand::from_cards(&[1; 21]).unwrap().sum(), 21);
    assert!(Hand::from_cards(&[]).is_err());
    assert!(Hand::from_cards(&[0, 5]).is_err());
    assert!(Hand::from_cards(&[11, 5]).is_err());
    assert!(Hand::from_cards(&[1; 23]).is_err());
}

#[test]
fn rewards_follow_natural_and_sab_options() {
    let plain = BlackjackConfig::default();
    let natural = BlackjackConfig { natural: true, sab: false };
    let sab = BlackjackConfig { natural: false, sab: true };
    // Dealer stands on 17 or more, so these sticks are deterministic.
    assert_eq!(stick_reward(plain, &[10, 9], &[10, 8]), 1.0);
    assert_eq!(stick_reward(plain, &[10, 8], &[10, 8]), 0.0);
    assert_eq!(stick_reward(plain, &[10, 7], &[1, 7]), -1.0); // soft 18 stands
    assert_eq!(stick_reward(plain, &[1, 10], &[10, 9]), 1.0);
    assert_eq!(stick_reward(natural, &[1, 10], &[10, 9]), 1.5);
    assert_eq!(stick_reward(sab, &[1, 10], &[10, 9]), 1.0);
    // A natural against a dealer's three-card 21: a push, except under sab.
    assert_eq!(stick_reward(plain, &[10, 1], &[10, 5, 6]), 0.0);
    assert_eq!(stick_reward(natural, &[10, 1], &[10, 5, 6]), 0.0);
    assert_eq!(stick_reward(sab, &[10, 1], &[10, 5, 6]), 1.0);
    // Both natural: a push everywhere; a three-card 21 is no natural.
    assert_eq!(stick_reward(sab, &[1, 10], &[10, 1]), 0.0);
    assert_eq!(stick_reward(natural, &[1, 5, 5], &[10, 9]), 1.0);
    // `natural` is ignored with `sab`.
    assert_eq!(stick_reward(BlackjackConfig { natural: true, sab: true }, &[1, 10], &[10, 9]), 1.0);
}

#[test]
fn hit_bust_state_and_errors() {
    let mut env = Blackjack::default();
    let obs = env.reset(Some(4));
    assert!(env.observation_space().contains_values(&obs.map(|x| x as f32)));
    env.set_state(hands(&[10, 10, 1], &[7, 3])).unwrap();
    let before = env.state();
    let s = env.step(&HIT).unwrap();
    assert_eq!(s.obs[1], 7);
    assert_eq!(s.terminated, s.obs[0] > 21);
    assert_eq!(s.reward, if s.terminated { -1.0 } else { 0.0 });
    assert_eq!(&env.state().player.cards()[..3], before.player.cards());
    let bust = hands(&[10, 10, 5], &[7, 3]);
    assert!(matches!(env.set_state(bust), Err(EnvError::InvalidState(_))));
    let fresh = Blackjack::default().state();
    assert!(env.set_state(fresh).is_err(), "empty hands are rejected");
    check_bad_input(Blackjack::default(), 2, &[1, 1, 0]);
}

#[test]
fn rendering_shows_the_hands() {
    let mut env = Blackjack::default();
    env.reset(Some(0));
    env.set_state(hands(&[1, 6], &[10, 7])).unwrap();
    let text = env.render_text().unwrap();
    assert_eq!(text, "Dealer: 10 ?\nPlayer: A 6 (sum 17, usable ace)\n");
    let a = env.render_rgb().unwrap();
    env.step(&STICK).unwrap();
    assert_eq!(
        env.render_text().unwrap(),
        "Dealer: 10 7 (sum 17)\nPlayer: A 6 (sum 17, usable ace)\n"
    );
    let b = env.render_rgb().unwrap();
    assert_frames_differ(&a, &b, 600, 500);
    env.set_state(hands(&[9, 9], &[10, 7])).unwrap();
    assert_frames_differ(&b, &env.render_rgb().unwrap(), 600, 500);
}

#[test]
fn model_layout_and_dealer_distribution() {
    let m = default_rules_model();
    assert_eq!((m.n_states(), m.n_actions()), (N_STATES, 2));
    assert!(Blackjack::new(BlackjackConfig { natural: true, sab: false })
        .transition_model()
        .is_none());
    assert!(Blackjack::new(BlackjackConfig { natural: false, sab: true })
        .transition_model()
        .is_none());
    for d in 1..=10 {
        let dist = dealer_final_distribution(d);
        assert!((dist.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{d}: {dist:?}");
    }
    let bust = |d| dealer_final_distribution(d)[5];
    assert!(
        (0.40..0.44).contains(&bust(6))
            && (0.20..0.23).contains(&bust(10))
            && (0.10..0.13).contains(&bust(1))
    );
    let mut decision = 0;
    for s in 0..N_STATES {
        assert_eq!(state_index(state_obs(s)[0], state_obs(s)[1], state_obs(s)[2]), s);
        if m.is_possible(s, HIT) {
            decision += 1;
            assert!(m.is_possible(s, STICK));
            assert!(m.transitions(s, STICK).iter().all(|t| t.terminated && t.next_state == s));
            assert_eq!(m.transitions(s, HIT).len(), 10);
        } else {
            assert!(m.possible_actions(s).next().is_none());
        }
    }
    assert_eq!(decision, (18 + 10) * 10);
    // Sticking on 4 loses unless the dealer busts.
    let lose = m.transitions(state_index(4, 10, 0), STICK);
    assert_eq!(lose.len(), 2);
    assert_eq!(lose[1].probability, bust(10));
    // Hitting a hard 20: only an ace keeps the player alive.
    let hit = m.transitions(state_index(20, 5, 0), HIT);
    assert_eq!((hit[0].next_state, hit[0].terminated), (state_index(21, 5, 0), false));
    assert!(hit[1..].iter().all(|t| t.terminated && t.reward == -1.0));
}

/// Outcome key: (next state, reward in halves, terminated).
type Key = (usize, i64, bool);

fn key(next: usize, reward: f64, terminated: bool) -> Key {
    (next, (reward * 2.0) as i64, terminated)
}

/// Largest |z| of the observed outcome frequencies against the model, over the (state,
/// action) pairs seen at least `min_n` times; also checks that no outcome falls outside
/// the model. Returns (max |z|, number of pairs compared).
fn max_z(
    m: &TransitionModel,
    counts: &HashMap<(usize, usize), HashMap<Key, usize>>,
    min_n: usize,
) -> (f64, usize) {
    let (mut worst, mut pairs) = (0.0f64, 0);
    for (&(s, a), seen) in counts {
        let mut expected: HashMap<Key, f64> = HashMap::new();
        for t in m.transitions(s, a) {
            *expected.entry(key(t.next_state, t.reward, t.terminated)).or_default() +=
                t.probability;
        }
        for k in seen.keys() {
            assert!(
                expected.contains_key(k),
                "state {:?} action {a}: outcome {k:?} not in the model",
                state_obs(s)
            );
        }
        let n: usize = seen.values().sum();
        if n < min_n {
            continue;
        }
        pairs += 1;
        for (k, &p) in &expected {
            let f = *seen.get(k).unwrap_or(&0) as f64 / n as f64;
            let sd = (p * (1.0 - p) / n as f64).sqrt().max(1e-12);
            worst = worst.max((f - p).abs() / sd);
        }
    }
    (worst, pairs)
}

#[test]
fn model_matches_monte_carlo_in_natural_play() {
    let m = default_rules_model();
    let mut env = Blackjack::default();
    let mut policy = EnvRng::seed_from_u64(99);
    let mut counts: HashMap<(usize, usize), HashMap<Key, usize>> = HashMap::new();
    let mut starts = vec![0usize; N_STATES];
    let episodes = 400_000;
    env.reset(Some(2024));
    for _ in 0..episodes {
        let [p, d, u] = env.reset(None);
        let mut s = state_index(p, d, u);
        starts[s] += 1;
        loop {
            let a = policy.random_range(0..2);
            let step = env.step(&a).unwrap();
            let next = state_index(step.obs[0], step.obs[1], step.obs[2]);
            *counts
                .entry((s, a))
                .or_default()
                .entry(key(next, step.reward, step.terminated))
                .or_default() += 1;
            if step.terminated {
                break;
            }
            s = next;
        }
    }
    let (z, pairs) = max_z(m, &counts, 1000);
    assert!(pairs >= 150, "only {pairs} well-visited pairs");
    eprintln!("natural play: {pairs} pairs, max |z| = {z:.2}");
    assert!(z < 5.0, "max |z| = {z}");
    let mut z0 = 0.0f64;
    for (s, &p) in m.initial_distribution().iter().enumerate() {
        let f = starts[s] as f64 / episodes as f64;
        if p == 0.0 {
            assert_eq!(starts[s], 0, "{:?}", state_obs(s));
        } else {
            z0 = z0.max((f - p).abs() / (p * (1.0 - p) / episodes as f64).sqrt());
        }
    }
    assert!(z0 < 5.0, "initial distribution: max |z| = {z0}");
}

/// A player's hand with the given observation; with `hard_ace`, a hard hand holding an ace.
fn player_hand(sum: usize, usable: bool, hard_ace: bool) -> Vec<u8> {
    match (usable, sum) {
        (true, _) => vec![1, (sum - 11) as u8],
        (false, 12..=21) if hard_ace => vec![10, (sum - 11) as u8, 1],
        (false, 12..=20) => vec![10, (sum - 10) as u8],
        (false, 21) => vec![10, 9, 2],
        (false, _) => vec![2, (sum - 2) as u8],
    }
}

#[test]
fn model_matches_monte_carlo_from_every_decision_state() {
    let m = default_rules_model();
    let mut env = Blackjack::default();
    env.reset(Some(7));
    let mut deal = EnvRng::seed_from_u64(8);
    let mut counts: HashMap<(usize, usize), HashMap<Key, usize>> = HashMap::new();
    let per_pair = 3000;
    for s in (0..N_STATES).filter(|&s| m.is_possible(s, HIT)) {
        let [sum, card, usable] = state_obs(s);
        for a in [STICK, HIT] {
            for i in 0..per_pair {
                let player = player_hand(sum, usable == 1, i % 2 == 1);
                let hidden = DECK[deal.random_range(0..DECK.len())];
                env.set_state(hands(&player, &[card as u8, hidden])).unwrap();
                assert_eq!(env.obs(), [sum, card, usable]);
                let step = env.step(&a).unwrap();
                let next = state_index(step.obs[0], step.obs[1], step.obs[2]);
                *counts
                    .entry((s, a))
                    .or_default()
                    .entry(key(next, step.reward, step.terminated))
                    .or_default() += 1;
            }
        }
    }
    let (z, pairs) = max_z(m, &counts, per_pair);
    assert_eq!(pairs, 2 * 280);
    eprintln!("every decision state: {pairs} pairs, max |z| = {z:.2}");
    assert!(z < 5.0, "max |z| = {z}");
}

#[test]
fn model_return_of_a_policy_matches_simulated_episodes() {
    // Sutton & Barto's example policy: stick on 20 or 21, otherwise hit.
    let policy = |s: usize| if state_obs(s)[0] >= 20 { STICK } else { HIT };
    let m = default_rules_model();
    // Policy evaluation; the raw card sum grows with every hit, so 30 sweeps are exact.
    let mut v = vec![0.0f64; N_STATES];
    for _ in 0..30 {
        for s in (0..N_STATES).filter(|&s| m.is_possible(s, HIT)) {
            v[s] = m
                .transitions(s, policy(s))
                .iter()
                .map(|t| {
                    t.probability * (t.reward + if t.terminated { 0.0 } else { v[t.next_state] })
                })
                .sum();
        }
    }
    let exact: f64 = m.initial_distribution().iter().zip(&v).map(|(p, x)| p * x).sum();
    let mut env = Blackjack::default();
    env.reset(Some(31));
    let episodes = 400_000;
    let (mut total, mut total_sq) = (0.0, 0.0);
    for _ in 0..episodes {
        let [p, d, u] = env.reset(None);
        let mut s = state_index(p, d, u);
        let mut ret = 0.0;
        loop {
            let step = env.step(&policy(s)).unwrap();
            ret += step.reward;
            if step.terminated {
                break;
            }
            s = state_index(step.obs[0], step.obs[1], step.obs[2]);
        }
        total += ret;
        total_sq += ret * ret;
    }
    let mean = total / episodes as f64;
    let se = ((total_sq / episodes as f64 - mean * mean) / episodes as f64).sqrt();
    eprintln!("stick-on-20 policy: model {exact:.5}, Monte Carlo {mean:.5} +- {se:.5}");
    assert!((mean - exact).abs() < 5.0 * se, "model {exact}, Monte Carlo {mean} +- {se}");
}
