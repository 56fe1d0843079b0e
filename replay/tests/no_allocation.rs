//! After warm-up, pushing, folding, sampling and updating priorities allocate nothing.

use deeprl_replay::{Action, ActionKind, Batch, Experience, NStepFolder, PrioritizedConfig};
use deeprl_replay::{PrioritizedReplay, ReplayBuffer, Transition};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn push_sample_and_update_allocate_nothing_after_warm_up() {
    let mut uniform = ReplayBuffer::new(1_000, 4, ActionKind::Discrete).unwrap();
    let config = PrioritizedConfig::default();
    let mut prioritized = PrioritizedReplay::new(1_000, 4, ActionKind::Discrete, config).unwrap();
    let mut folder = NStepFolder::new(3, 0.99, 4, ActionKind::Discrete).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (mut batch, mut indices, errors) = (Batch::new(), vec![0usize; 64], vec![0.5f32; 64]);
    let mut round = |uniform: &mut ReplayBuffer, prioritized: &mut PrioritizedReplay, k: usize| {
        let obs = [k as f32; 4];
        let e = Experience {
            obs: &obs,
            action: Action::Discrete(k % 2),
            reward: 1.0,
            next_obs: &obs,
            discount: 0.99,
        };
        uniform.push(&e).unwrap();
        prioritized.push(&e).unwrap();
        let t = Transition {
            obs: &obs,
            action: Action::Discrete(0),
            reward: 1.0,
            next_obs: &obs,
            terminated: k % 50 == 49,
            truncated: false,
        };
        folder.push(&t, uniform).unwrap();
        if prioritized.len() >= 64 {
            uniform.sample(64, &mut rng, &mut batch).unwrap();
            prioritized.sample(64, 0.4, &mut rng, &mut batch).unwrap();
            indices.copy_from_slice(&batch.indices);
            prioritized.update_priorities(&indices, &errors).unwrap();
        }
    };
    for k in 0..100 {
        round(&mut uniform, &mut prioritized, k); // warm-up: the batch grows to its size
    }
    let info = allocation_counter::measure(|| {
        for k in 100..3_000 {
            round(&mut uniform, &mut prioritized, k);
        }
    });
    assert_eq!(info.count_total, 0, "{info:?}");
}
