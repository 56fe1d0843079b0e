//! N-step returns: folds consecutive transitions into n-step experiences.
//!
//! Multi-step learning (Sutton 1988; used by Rainbow, Hessel et al. 2018) bootstraps from the
//! state `n` steps later:
//!
//! ```text
//! R_t^(n) = r_t + gamma r_{t+1} + ... + gamma^(n-1) r_{t+n-1},  target = R_t^(n) + gamma^n max_a Q(s_{t+n}, a)
//! ```
//!
//! The folder keeps the last `n - 1` transitions of the running episode. Each new transition
//! completes the window of the oldest one, which is emitted as the experience
//! `(s_t, a_t, R_t^(n), s_{t+n}, gamma^n)`. When an episode ends, every pending transition is
//! emitted with the shorter return it has: `m` remaining steps give discount `gamma^m`, or 0
//! if the episode terminated; a truncated episode keeps bootstrapping from its true final
//! observation.

use crate::buffer::ExperienceSink;
use crate::error::{ReplayError, Result};
use crate::experience::{discount_after, Action, ActionKind, Experience};

/// One environment step, as the agent saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition<'a> {
    pub obs: &'a [f32],
    pub action: Action<'a>,
    pub reward: f64,
    /// The observation after the step: the true final observation when the episode ended.
    pub next_obs: &'a [f32],
    pub terminated: bool,
    pub truncated: bool,
}

/// Turns transitions into n-step experiences and pushes them into a buffer; allocates nothing
/// after construction. `n = 1` gives one-step experiences with discount `gamma` or 0.
#[derive(Debug, Clone)]
pub struct NStepFolder {
    n: usize,
    gamma: f64,
    obs_len: usize,
    action: ActionKind,
    obs: Vec<f32>,
    actions_discrete: Vec<usize>,
    actions_continuous: Vec<f32>,
    rewards: Vec<f64>,
    /// Ring position of the oldest pending transition, and how many are pending.
    start: usize,
    count: usize,
}

impl NStepFolder {
    /// A folder of `n >= 1` steps with discount `gamma` in `[0, 1]`.
    pub fn new(n: usize, gamma: f64, obs_len: usize, action: ActionKind) -> Result<Self> {
        if n == 0 {
            return Err(ReplayError::InvalidConfig("n-step returns need n >= 1".into()));
        }
        if !(0.0..=1.0).contains(&gamma) {
            return Err(ReplayError::OutOfUnitInterval { name: "gamma", value: gamma });
        }
        let dim = match action {
            ActionKind::Discrete => 0,
            ActionKind::Continuous { dim } => dim,
        };
        Ok(NStepFolder {
            n,
            gamma,
            obs_len,
            action,
            obs: vec![0.0; n * obs_len],
            actions_discrete: vec![0; n],
            actions_continuous: vec![0.0; n * dim],
            rewards: vec![0.0; n],
            start: 0,
            count: 0,
        })
    }

    /// The number of transitions waiting for their window to fill.
    pub fn pending(&self) -> usize {
        self.count
    }

    /// Drops the pending transitions (when an episode is abandoned without an end flag).
    pub fn clear(&mut self) {
        self.start = 0;
        self.count = 0;
    }

    fn check(&self, t: &Transition<'_>) -> Result<()> {
        for (which, got) in [("obs", t.obs.len()), ("next_obs", t.next_obs.len())] {
            if got != self.obs_len {
                return Err(ReplayError::ObsLength { which, got, expected: self.obs_len });
            }
        }
        match (self.action, t.action) {
            (ActionKind::Discrete, Action::Discrete(_)) => {}
            (ActionKind::Continuous { dim }, Action::Continuous(v)) if v.len() == dim => {}
            (kind, action) => {
                return Err(ReplayError::InvalidAction(format!(
                    "{action:?} does not fit a folder of {kind:?} actions"
                )))
            }
        }
        if !t.reward.is_finite() {
            return Err(ReplayError::NonFinite { which: "reward", value: t.reward });
        }
        Ok(())
    }

    /// Adds a transition and pushes every experience it completes into `sink`; returns how
    /// many were pushed.
    pub fn push(&mut self, t: &Transition<'_>, sink: &mut impl ExperienceSink) -> Result<usize> {
        self.check(t)?;
        let slot = (self.start + self.count) % self.n;
        self.obs[slot * self.obs_len..(slot + 1) * self.obs_len].copy_from_slice(t.obs);
        match t.action {
            Action::Discrete(a) => self.actions_discrete[slot] = a,
            Action::Continuous(v) => {
                self.actions_continuous[slot * v.len()..(slot + 1) * v.len()].copy_from_slice(v)
            }
        }
        self.rewards[slot] = t.reward;
        self.count += 1;
        if t.terminated || t.truncated {
            let mut pushed = 0;
            while self.count > 0 {
                self.emit_oldest(t.next_obs, t.terminated, sink)?;
                pushed += 1;
            }
            self.start = 0;
            Ok(pushed)
        } else if self.count == self.n {
            self.emit_oldest(t.next_obs, false, sink)?;
            Ok(1)
        } else {
            Ok(0)
        }
    }

    /// Emits the oldest pending transition with the return over all pending ones.
    fn emit_oldest(
        &mut self,
        next_obs: &[f32],
        terminated: bool,
        sink: &mut impl ExperienceSink,
    ) -> Result<()> {
        let (i, steps) = (self.start, self.count);
        let reward =
            (0..steps).rev().fold(0.0, |acc, k| self.rewards[(i + k) % self.n] + self.gamma * acc);
        let action = match self.action {
            ActionKind::Discrete => Action::Discrete(self.actions_discrete[i]),
            ActionKind::Continuous { dim } => {
                Action::Continuous(&self.actions_continuous[i * dim..(i + 1) * dim])
            }
        };
        let experience = Experience {
            obs: &self.obs[i * self.obs_len..(i + 1) * self.obs_len],
            action,
            reward: reward as f32,
            next_obs,
            discount: discount_after(self.gamma, steps, terminated),
        };
        sink.push(&experience)?;
        self.start = (i + 1) % self.n;
        self.count -= 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::ReplayBuffer;

    /// Plays `rewards` as one episode on observations 0, 1, 2, ... ending as told.
    fn play(
        folder: &mut NStepFolder,
        buf: &mut ReplayBuffer,
        first: usize,
        rewards: &[f64],
        end: Option<bool>,
    ) {
        for (k, &r) in rewards.iter().enumerate() {
            let (s, s2) = ((first + k) as f32, (first + k + 1) as f32);
            let last = k + 1 == rewards.len();
            let t = Transition {
                obs: &[s],
                action: Action::Discrete(first + k),
                reward: r,
                next_obs: &[s2],
                terminated: last && end == Some(true),
                truncated: last && end == Some(false),
            };
            folder.push(&t, buf).unwrap();
        }
    }

    fn stored(buf: &ReplayBuffer) -> Vec<(f32, f32, f32, f32)> {
        (0..buf.len())
            .map(|i| {
                let e = buf.get(i).unwrap();
                (e.obs[0], e.reward, e.next_obs[0], e.discount)
            })
            .collect()
    }

    #[test]
    fn three_step_returns_by_hand_with_a_termination_mid_window() {
        let gamma = 0.5;
        let mut folder = NStepFolder::new(3, gamma, 1, ActionKind::Discrete).unwrap();
        let mut buf = ReplayBuffer::new(100, 1, ActionKind::Discrete).unwrap();
        // Episode 1: rewards 1, 2, 4, 8 then terminated.
        play(&mut folder, &mut buf, 0, &[1.0, 2.0, 4.0, 8.0], Some(true));
        assert_eq!(folder.pending(), 0);
        assert_eq!(
            stored(&buf),
            vec![
                (0.0, 1.0 + 0.5 * 2.0 + 0.25 * 4.0, 3.0, 0.125), // full window: gamma^3
                (1.0, 2.0 + 0.5 * 4.0 + 0.25 * 8.0, 4.0, 0.0),   // ends in the terminal step
                (2.0, 4.0 + 0.5 * 8.0, 4.0, 0.0),
                (3.0, 8.0, 4.0, 0.0),
            ]
        );
        assert_eq!(buf.get(1).unwrap().action, Action::Discrete(1));
    }

    #[test]
    fn truncation_flushes_with_bootstrapping_discounts() {
        let mut folder = NStepFolder::new(3, 0.5, 1, ActionKind::Discrete).unwrap();
        let mut buf = ReplayBuffer::new(100, 1, ActionKind::Discrete).unwrap();
        // An episode shorter than n, truncated: both experiences bootstrap from obs 12.
        play(&mut folder, &mut buf, 10, &[1.0, 1.0], Some(false));
        assert_eq!(stored(&buf), vec![(10.0, 1.5, 12.0, 0.25), (11.0, 1.0, 12.0, 0.5)]);
        // The next episode starts clean: nothing of the first leaks into its windows.
        play(&mut folder, &mut buf, 20, &[2.0, 2.0, 2.0], None);
        assert_eq!(stored(&buf)[2], (20.0, 2.0 + 1.0 + 0.5, 23.0, 0.125));
        assert_eq!(folder.pending(), 2);
    }

    #[test]
    fn one_step_is_the_plain_transition() {
        let mut folder = NStepFolder::new(1, 0.99, 1, ActionKind::Discrete).unwrap();
        let mut buf = ReplayBuffer::new(10, 1, ActionKind::Discrete).unwrap();
        play(&mut folder, &mut buf, 0, &[1.0, -1.0], Some(false));
        assert_eq!(stored(&buf), vec![(0.0, 1.0, 1.0, 0.99), (1.0, -1.0, 2.0, 0.99)]);
        play(&mut folder, &mut buf, 5, &[3.0], Some(true));
        assert_eq!(stored(&buf)[2], (5.0, 3.0, 6.0, 0.0));
    }

    #[test]
    fn bad_transitions_are_rejected_without_a_trace() {
        let mut folder = NStepFolder::new(2, 0.9, 2, ActionKind::Discrete).unwrap();
        let mut buf = ReplayBuffer::new(10, 2, ActionKind::Discrete).unwrap();
        let bad = Transition {
            obs: &[0.0],
            action: Action::Discrete(0),
            reward: 0.0,
            next_obs: &[0.0, 0.0],
            terminated: false,
            truncated: false,
        };
        assert!(matches!(
            folder.push(&bad, &mut buf),
            Err(ReplayError::ObsLength { which: "obs", got: 1, expected: 2 })
        ));
        let nan = Transition { obs: &[0.0, 0.0], reward: f64::NAN, ..bad };
        assert!(folder.push(&nan, &mut buf).is_err());
        assert_eq!(folder.pending(), 0);
        assert!(NStepFolder::new(0, 0.9, 2, ActionKind::Discrete).is_err());
        assert!(NStepFolder::new(3, 1.5, 2, ActionKind::Discrete).is_err());
    }
}
