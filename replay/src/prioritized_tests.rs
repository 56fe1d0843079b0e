//! Tests of prioritized replay: sampling frequencies, weights, priorities, errors, files.

use super::*;
use crate::experience::Action;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn replay(capacity: usize, pushes: usize, zeta: f64) -> PrioritizedReplay {
    let config = PrioritizedConfig { zeta, ..PrioritizedConfig::default() };
    let mut r = PrioritizedReplay::new(capacity, 1, ActionKind::Discrete, config).unwrap();
    for k in 0..pushes {
        let x = [k as f32];
        let e = Experience {
            obs: &x,
            action: Action::Discrete(k),
            reward: 0.0,
            next_obs: &x,
            discount: 0.9,
        };
        r.push(&e).unwrap();
    }
    r
}

/// Pearson's chi-square statistic of observed counts against expected probabilities.
fn chi_square(counts: &[usize], probabilities: &[f64]) -> f64 {
    let n: usize = counts.iter().sum();
    counts
        .iter()
        .zip(probabilities)
        .map(|(&c, &p)| (c as f64 - n as f64 * p).powi(2) / (n as f64 * p))
        .sum()
}

#[test]
fn sampling_frequencies_follow_p_to_the_zeta() {
    for zeta in [0.0, 0.6, 1.0] {
        let mut r = replay(8, 8, zeta);
        let errors = [0.1f32, 0.5, 1.0, 2.0, 0.0, 3.0, 0.25, 1.5];
        r.update_priorities(&(0..8).collect::<Vec<_>>(), &errors).unwrap();
        let scaled: Vec<f64> = errors.iter().map(|&d| (d.abs() as f64 + 1e-6).powf(zeta)).collect();
        let total: f64 = scaled.iter().sum();
        let expected: Vec<f64> = scaled.iter().map(|s| s / total).collect();
        for (i, &p) in expected.iter().enumerate() {
            assert!((r.probability(i).unwrap() - p).abs() < 1e-12);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut batch = Batch::new();
        let mut counts = [0usize; 8];
        for _ in 0..16_000 {
            r.sample(8, 0.4, &mut rng, &mut batch).unwrap();
            batch.indices.iter().for_each(|&i| counts[i] += 1);
        }
        // Experience 4 (TD error 0) has a tiny but positive probability when zeta > 0.
        let (counts, expected): (Vec<usize>, Vec<f64>) =
            counts.iter().zip(&expected).filter(|(_, &p)| p > 1e-3).map(|(&c, &p)| (c, p)).unzip();
        let norm: f64 = expected.iter().sum();
        let expected: Vec<f64> = expected.iter().map(|p| p / norm).collect();
        // 99.9% quantile of chi-square with 7 degrees of freedom is 24.3; stratified sampling
        // is less variable than independent draws, so this bound is generous.
        let stat = chi_square(&counts, &expected);
        assert!(stat < 24.3, "zeta {zeta}: chi-square {stat}, counts {counts:?}");
    }
}

#[test]
fn weights_are_the_normalised_importance_weights() {
    let mut r = replay(16, 10, 0.7);
    let errors: Vec<f32> = (0..10).map(|k| 0.2 + k as f32 * 0.3).collect();
    r.update_priorities(&(0..10).collect::<Vec<_>>(), &errors).unwrap();
    let beta = 0.5;
    let n = 10.0;
    let probs: Vec<f64> = (0..10).map(|i| r.probability(i).unwrap()).collect();
    let p_min = probs.iter().cloned().fold(f64::INFINITY, f64::min);
    let mut batch = Batch::new();
    r.sample(10, beta, &mut ChaCha8Rng::seed_from_u64(3), &mut batch).unwrap();
    for (&i, &w) in batch.indices.iter().zip(&batch.weights) {
        let expected = (n * probs[i]).powf(-beta) / (n * p_min).powf(-beta);
        assert!((w as f64 - expected).abs() < 1e-6, "index {i}: weight {w}, expected {expected}");
        assert!(w <= 1.0 + 1e-6);
        assert_eq!(batch.obs[batch.indices.iter().position(|&k| k == i).unwrap()], i as f32);
    }
    r.sample(10, 0.0, &mut ChaCha8Rng::seed_from_u64(3), &mut batch).unwrap();
    assert!(batch.weights.iter().all(|&w| w == 1.0), "beta 0: no correction");
}

#[test]
fn new_experiences_enter_with_the_maximum_priority() {
    let mut r = replay(8, 3, 0.6);
    assert_eq!(r.priority(2).unwrap(), PrioritizedConfig::default().initial_priority);
    r.update_priorities(&[0, 1], &[-2.0, 0.5]).unwrap();
    assert_eq!(r.priority(0).unwrap(), 2.0 + 1e-6);
    let x = [9.0];
    let e = Experience {
        obs: &x,
        action: Action::Discrete(0),
        reward: 0.0,
        next_obs: &x,
        discount: 0.0,
    };
    let i = r.push(&e).unwrap();
    assert_eq!(r.priority(i).unwrap(), 2.0 + 1e-6, "the largest updated priority");
    assert_eq!(r.priority(2).unwrap(), 1e6, "not yet replayed: still very large");
}

#[test]
fn bad_input_is_an_error_and_changes_nothing() {
    let mut r = replay(8, 4, 0.6);
    let before: Vec<f64> = (0..4).map(|i| r.priority(i).unwrap()).collect();
    let err = r.update_priorities(&[0, 1], &[1.0, f32::NAN]).unwrap_err();
    assert_eq!(err.to_string(), "TD error NaN at position 1 is not finite");
    assert!(matches!(
        r.update_priorities(&[0, 4], &[1.0, 1.0]),
        Err(ReplayError::IndexOutOfRange { index: 4, len: 4 })
    ));
    assert!(matches!(
        r.update_priorities(&[0], &[1.0, 1.0]),
        Err(ReplayError::LengthMismatch { .. })
    ));
    assert_eq!((0..4).map(|i| r.priority(i).unwrap()).collect::<Vec<_>>(), before);
    let mut batch = Batch::new();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    assert_eq!(
        r.sample(4, 1.5, &mut rng, &mut batch).unwrap_err().to_string(),
        "beta = 1.5 is outside [0, 1]"
    );
    assert!(matches!(
        r.sample(5, 0.5, &mut rng, &mut batch),
        Err(ReplayError::NotEnough { requested: 5, len: 4 })
    ));
    let bad = PrioritizedConfig { zeta: -0.1, ..PrioritizedConfig::default() };
    assert!(PrioritizedReplay::new(8, 1, ActionKind::Discrete, bad).is_err());
    assert!(replay(8, 0, 0.6).sample(1, 0.5, &mut rng, &mut batch).is_err());
}

#[test]
fn save_and_load_resume_sampling_exactly() {
    let mut r = replay(6, 9, 0.6);
    r.update_priorities(&[0, 3, 5], &[0.3, 2.0, 0.01]).unwrap();
    let path = std::env::temp_dir().join(format!("deeprl-per-{}.bin", std::process::id()));
    r.save(&path).unwrap();
    let back = PrioritizedReplay::load(&path).unwrap();
    assert_eq!(back.buffer(), r.buffer());
    assert_eq!(back.max_priority(), r.max_priority());
    for i in 0..r.len() {
        assert_eq!(back.priority(i).unwrap().to_bits(), r.priority(i).unwrap().to_bits());
    }
    let (mut a, mut b) = (Batch::new(), Batch::new());
    r.sample(6, 0.4, &mut ChaCha8Rng::seed_from_u64(5), &mut a).unwrap();
    back.sample(6, 0.4, &mut ChaCha8Rng::seed_from_u64(5), &mut b).unwrap();
    assert_eq!(a, b);
    // A uniform buffer's file is not a prioritized one.
    r.buffer().save(&path).unwrap();
    assert!(PrioritizedReplay::load(&path).unwrap_err().to_string().contains("kind"));
    std::fs::remove_file(&path).unwrap();
}
