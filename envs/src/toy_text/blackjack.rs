//! Blackjack: beat the dealer by drawing cards to a sum close to 21 without going over.
//!
//! Source: Sutton & Barto, *Reinforcement Learning: An Introduction* (2nd ed.), example
//! 5.1, as implemented by Gymnasium 1.4 `gymnasium.envs.toy_text.blackjack.BlackjackEnv`
//! (`Blackjack-v1`), with the same rules and options.
//!
//! Rules:
//! * Infinite deck: every card is drawn from `[1, 2, ..., 9, 10, 10, 10, 10]` ([`DECK`])
//!   uniformly (1 is an ace; jack, queen and king count 10).
//! * `reset` deals two cards to the dealer (the first is shown), then two to the player.
//! * An ace is *usable* when counting it as 11 keeps the sum at most 21; the hand's sum
//!   then counts it as 11. A sum above 21 is a bust.
//! * Observation `[player_sum, dealer_showing, usable_ace]`, in the space
//!   `MultiDiscrete([32, 11, 2])` (Gymnasium's `Tuple(Discrete(32), Discrete(11),
//!   Discrete(2))`). Actions: 0 stick, 1 hit.
//! * Hit: the player draws a card; a bust terminates with reward -1, otherwise reward 0.
//! * Stick: the dealer draws while their sum is below 17 (a soft 17 stands), then the
//!   episode terminates with reward +1, 0 or -1 as the player's score (0 when bust) is
//!   higher than, equal to or lower than the dealer's.
//! * `natural` (not with `sab`): a player's natural (ace + ten-card as the first two cards)
//!   that wins pays 1.5 instead of 1. `sab` (Sutton & Barto's rules): a player's natural wins
//!   (+1) whenever the dealer has no natural, also against a dealer's 21.
//!
//! The transition model ([`Env::transition_model`], [`default_rules_model`]): Gymnasium has
//! no `P` for Blackjack; this one is exact for the infinite deck under the default rules
//! (`natural = false`, `sab = false`), where the observation is a Markov state (the dealer's
//! hidden card and later cards are independent of the past). State index
//! [`state_index`]`(sum, card, ace) = sum * 22 + card * 2 + ace` over the 32x11x2 grid of
//! observations (704 states). Decision states (sum 4..=21 without a usable ace, 12..=21 with
//! one; card 1..=10) have both actions; every other state (busts, impossible observations)
//! has no possible action. `P[s][hit]` lists one entry per card value 1..=10 (probability
//! 1/13, 4/13 for 10), leading to the observation the env returns, with reward -1 and
//! `terminated` on a bust; `P[s][stick]` lists the outcomes lose, draw, win (those with
//! non-zero probability) with rewards -1, 0, +1, all `terminated` and leading back to `s`
//! (the env's observation after sticking). The dealer's final-score distribution comes from
//! an exact recursion over the dealer's (raw sum, holds an ace) states. With `natural` or
//! `sab` the reward of sticking on 21 depends on whether the 21 is a natural, which the
//! observation does not tell, so `transition_model()` returns `None` for those envs.

use crate::env::{check_discrete, entropy_rng, reseed, Env, EnvRng, Step};
use crate::error::{EnvError, EpisodePhase, Result};
use crate::mdp::{Transition, TransitionModel};
use crate::render::{Canvas, Frame};
use crate::space::Space;
use rand::Rng;
use std::sync::OnceLock;

/// The infinite deck's card values, drawn uniformly.
pub const DECK: [u8; 13] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 10, 10];
/// The most cards a hand can hold (21 aces and one more).
pub const MAX_CARDS: usize = 22;
/// Number of model states: the 32 x 11 x 2 observations.
pub const N_STATES: usize = 32 * 11 * 2;
/// Action 0: stick.
pub const STICK: usize = 0;
/// Action 1: hit.
pub const HIT: usize = 1;

/// The model state index of an observation `(player_sum, dealer_card, usable_ace)`.
pub fn state_index(player_sum: usize, dealer_card: usize, usable_ace: usize) -> usize {
    player_sum * 22 + dealer_card * 2 + usable_ace
}

/// The observation of a model state index (inverse of [`state_index`]).
pub fn state_obs(index: usize) -> [usize; 3] {
    [index / 22, (index % 22) / 2, index % 2]
}

/// A hand of cards (values 1..=10), stored inline so that dealing allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hand {
    cards: [u8; MAX_CARDS],
    len: u8,
    raw: u8,
    has_ace: bool,
}

impl Hand {
    const EMPTY: Hand = Hand { cards: [0; MAX_CARDS], len: 0, raw: 0, has_ace: false };

    /// A hand holding `cards`: 1 to [`MAX_CARDS`] values in 1..=10.
    pub fn from_cards(cards: &[u8]) -> Result<Hand> {
        if cards.is_empty() || cards.len() > MAX_CARDS {
            return Err(EnvError::InvalidState(format!(
                "a hand of {} cards: expected 1 to {MAX_CARDS}",
                cards.len()
            )));
        }
        if let Some(c) = cards.iter().find(|c| !(1..=10).contains(*c)) {
            return Err(EnvError::InvalidState(format!(
                "card value {c} in {cards:?}: expected 1 (ace) to 10"
            )));
        }
        let mut hand = Hand::EMPTY;
        cards.iter().for_each(|&c| hand.push(c));
        Ok(hand)
    }

    fn push(&mut self, card: u8) {
        if (self.len as usize) < MAX_CARDS {
            self.cards[self.len as usize] = card;
            self.len += 1;
            self.raw = self.raw.saturating_add(card);
            self.has_ace |= card == 1;
        }
    }

    /// The cards, in the order dealt.
    pub fn cards(&self) -> &[u8] {
        &self.cards[..self.len as usize]
    }

    /// Gymnasium's `usable_ace`: an ace counted as 11 keeps the sum at most 21.
    pub fn usable_ace(&self) -> bool {
        self.has_ace && self.raw + 10 <= 21
    }

    /// Gymnasium's `sum_hand`: the sum with a usable ace counted as 11.
    pub fn sum(&self) -> usize {
        self.raw as usize + if self.usable_ace() { 10 } else { 0 }
    }

    /// True when the sum is above 21.
    pub fn is_bust(&self) -> bool {
        self.sum() > 21
    }

    /// Gymnasium's `score`: the sum, or 0 for a bust.
    pub fn score(&self) -> usize {
        if self.is_bust() {
            0
        } else {
            self.sum()
        }
    }

    /// Gymnasium's `is_natural`: exactly an ace and a ten-card.
    pub fn is_natural(&self) -> bool {
        self.len == 2 && self.has_ace && self.raw == 11
    }
}

/// The whole game state: both hands (the dealer's second card is hidden from the agent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlackjackState {
    pub player: Hand,
    pub dealer: Hand,
}

/// Blackjack's options, as Gymnasium's keyword arguments (both `false` for `Blackjack-v1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlackjackConfig {
    /// Pay 1.5 for a winning natural (ignored with `sab`).
    pub natural: bool,
    /// Sutton & Barto's rules: a natural wins unless the dealer also has one.
    pub sab: bool,
}

/// The Blackjack environment; see the module documentation.
#[derive(Debug, Clone)]
pub struct Blackjack {
    config: BlackjackConfig,
    player: Hand,
    dealer: Hand,
    rng: EnvRng,
    phase: EpisodePhase,
}

impl Default for Blackjack {
    fn default() -> Self {
        Self::new(BlackjackConfig::default())
    }
}

fn draw_card(rng: &mut EnvRng) -> u8 {
    DECK[rng.random_range(0..DECK.len() as u32) as usize]
}

impl Blackjack {
    /// A Blackjack env with the given options, not yet reset.
    pub fn new(config: BlackjackConfig) -> Self {
        Blackjack {
            config,
            player: Hand::EMPTY,
            dealer: Hand::EMPTY,
            rng: entropy_rng(),
            phase: EpisodePhase::NeedsReset,
        }
    }

    /// The options.
    pub fn config(&self) -> BlackjackConfig {
        self.config
    }

    /// Both hands.
    pub fn state(&self) -> BlackjackState {
        BlackjackState { player: self.player, dealer: self.dealer }
    }

    /// Sets both hands and continues a running episode from them. The player must not be
    /// bust (a bust ends the episode); on error nothing changes.
    pub fn set_state(&mut self, state: BlackjackState) -> Result<()> {
        // Hands can only be built valid (`Hand::from_cards`), except the empty one.
        for (who, hand) in [("player", &state.player), ("dealer", &state.dealer)] {
            if hand.len == 0 {
                return Err(EnvError::InvalidState(format!(
                    "the {who}'s hand is empty: a running episode needs cards"
                )));
            }
        }
        if state.player.is_bust() {
            return Err(EnvError::InvalidState(format!(
                "the player's hand {:?} is bust (sum {}): a running episode needs a sum of at most 21",
                state.player.cards(),
                state.player.sum()
            )));
        }
        self.player = state.player;
        self.dealer = state.dealer;
        self.phase = EpisodePhase::Running;
        Ok(())
    }

    /// The observation `[player_sum, dealer_showing, usable_ace]`.
    pub fn obs(&self) -> [usize; 3] {
        [self.player.sum(), self.dealer.cards[0] as usize, self.player.usable_ace() as usize]
    }
}

impl Env for Blackjack {
    type Obs = [usize; 3];
    type Action = usize;

    fn observation_space(&self) -> Space {
        Space::MultiDiscrete { nvec: vec![32, 11, 2] }
    }

    fn action_space(&self) -> Space {
        Space::discrete(2)
    }

    fn reset(&mut self, seed: Option<u64>) -> [usize; 3] {
        reseed(&mut self.rng, seed);
        self.dealer = Hand::EMPTY;
        self.player = Hand::EMPTY;
        for hand in [&mut self.dealer, &mut self.player] {
            hand.push(draw_card(&mut self.rng));
            hand.push(draw_card(&mut self.rng));
        }
        self.phase = EpisodePhase::Running;
        self.obs()
    }

    fn step(&mut self, action: &usize) -> Result<Step<[usize; 3]>> {
        self.phase.check_step()?;
        check_discrete(*action, 2)?;
        let (reward, terminated) = if *action == HIT {
            self.player.push(draw_card(&mut self.rng));
            if self.player.is_bust() {
                (-1.0, true)
            } else {
                (0.0, false)
            }
        } else {
            while self.dealer.sum() < 17 {
                self.dealer.push(draw_card(&mut self.rng));
            }
            let (p, d) = (self.player.score(), self.dealer.score());
            let mut reward = (p > d) as i32 as f64 - (p < d) as i32 as f64;
            let BlackjackConfig { natural, sab } = self.config;
            if sab && self.player.is_natural() && !self.dealer.is_natural() {
                reward = 1.0;
            } else if !sab && natural && self.player.is_natural() && reward == 1.0 {
                reward = 1.5;
            }
            (reward, true)
        };
        self.phase = EpisodePhase::after_step(terminated, false);
        Ok(Step { obs: self.obs(), reward, terminated, truncated: false })
    }

    /// The hands: the dealer's shown card (the whole hand once the episode ended) and the
    /// player's cards with their sum.
    fn render_text(&self) -> Option<String> {
        let show = |cards: &[u8]| {
            let names: Vec<String> = cards
                .iter()
                .map(|&c| if c == 1 { "A".to_string() } else { c.to_string() })
                .collect();
            names.join(" ")
        };
        if self.player.len == 0 {
            return Some("no hand dealt: call reset\n".into());
        }
        let dealer = if matches!(self.phase, EpisodePhase::Running) {
            format!("Dealer: {} ?\n", show(&self.dealer.cards()[..1]))
        } else {
            format!("Dealer: {} (sum {})\n", show(self.dealer.cards()), self.dealer.sum())
        };
        let ace = if self.player.usable_ace() { ", usable ace" } else { "" };
        Some(format!(
            "{dealer}Player: {} (sum {}{ace})\n",
            show(self.player.cards()),
            self.player.sum()
        ))
    }

    /// Gymnasium's 600x500 green table: the dealer's cards on top (the hidden one face down
    /// while the episode runs), the player's cards below, the player's sum in large digits
    /// and a gold disc when the player holds a usable ace.
    fn render_rgb(&self) -> Option<Frame> {
        let mut canvas = Canvas::new(600, 500, [7, 99, 36]);
        let card = |canvas: &mut Canvas, x: f32, y: f32, value: Option<u8>| {
            canvas.rect(x, y, 40.0, 56.0, [30, 30, 30]);
            match value {
                Some(v) => {
                    canvas.rect(x + 2.0, y + 2.0, 36.0, 52.0, [250, 250, 250]);
                    let color = if v == 1 { [200, 20, 20] } else { [20, 20, 20] };
                    // Glyphs are 3 units wide with 1 unit between digits.
                    let (scale, units) = if v >= 10 { (3.0, 7.0) } else { (4.0, 3.0) };
                    let (w, h) = (units * scale, 5.0 * scale);
                    canvas.number(x + 20.0 - w / 2.0, y + 28.0 - h / 2.0, scale, v as u32, color);
                }
                None => canvas.rect(x + 2.0, y + 2.0, 36.0, 52.0, [150, 30, 40]),
            }
        };
        let running = matches!(self.phase, EpisodePhase::Running);
        for (i, &c) in self.dealer.cards().iter().enumerate() {
            let hidden = running && i > 0;
            let (x, y) = (20.0 + (i % 13) as f32 * 44.0, 20.0 + (i / 13) as f32 * 60.0);
            card(&mut canvas, x, y, (!hidden).then_some(c));
        }
        for (i, &c) in self.player.cards().iter().enumerate() {
            let (x, y) = (20.0 + (i % 13) as f32 * 44.0, 300.0 + (i / 13) as f32 * 60.0);
            card(&mut canvas, x, y, Some(c));
        }
        if self.player.len > 0 {
            canvas.number(230.0, 170.0, 16.0, self.player.sum() as u32, [255, 255, 255]);
        }
        if self.player.usable_ace() {
            canvas.circle(520.0, 210.0, 24.0, [230, 190, 40]);
        }
        Some(canvas.into_frame())
    }

    fn transition_model(&self) -> Option<&TransitionModel> {
        (!self.config.natural && !self.config.sab).then(default_rules_model)
    }
}

/// Probability of drawing card value `c` (1..=10).
fn card_probability(c: usize) -> f64 {
    if c == 10 {
        4.0 / 13.0
    } else {
        1.0 / 13.0
    }
}

/// The dealer's final result given the shown card (1..=10; other values are clamped to
/// that range): probabilities of ending on 17, 18, 19, 20, 21 and of going bust (index 5),
/// for the infinite deck.
pub fn dealer_final_distribution(showing: usize) -> [f64; 6] {
    let showing = showing.clamp(1, 10);
    // dist[raw][ace]: the distribution from a hand with this raw sum (aces as 1) holding
    // an ace or not; computed from the largest raw sum down (draws only increase it).
    let mut dist = [[[0.0f64; 6]; 2]; 27];
    for raw in (1..27).rev() {
        for ace in [false, true] {
            let total = if ace && raw + 10 <= 21 { raw + 10 } else { raw };
            dist[raw][ace as usize] = if total > 21 {
                [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
            } else if total >= 17 {
                let mut d = [0.0; 6];
                d[total - 17] = 1.0;
                d
            } else {
                let mut d = [0.0; 6];
                for c in 1..=10 {
                    let next = dist[raw + c][(ace || c == 1) as usize];
                    for (acc, p) in d.iter_mut().zip(next) {
                        *acc += card_probability(c) * p;
                    }
                }
                d
            };
        }
    }
    dist[showing][(showing == 1) as usize]
}

/// The exact transition model of `Blackjack-v1` (default rules) over observations; see the
/// module documentation for its layout. Built once per process.
pub fn default_rules_model() -> &'static TransitionModel {
    static MODEL: OnceLock<TransitionModel> = OnceLock::new();
    MODEL.get_or_init(|| build_model().expect("the Blackjack model is a valid distribution"))
}

fn build_model() -> Result<TransitionModel> {
    let dealer: Vec<[f64; 6]> = (0..=10).map(dealer_final_distribution).collect();
    let mut table = vec![vec![Vec::new(), Vec::new()]; N_STATES];
    for (index, row) in table.iter_mut().enumerate() {
        let [sum, card, ace] = state_obs(index);
        let decision = (1..=10).contains(&card)
            && if ace == 1 { (12..=21).contains(&sum) } else { (4..=21).contains(&sum) };
        if !decision {
            continue;
        }
        let d = &dealer[card];
        let win = d[5]
            + d[..5].iter().enumerate().filter(|(i, _)| i + 17 < sum).map(|(_, p)| p).sum::<f64>();
        let draw = if sum >= 17 { d[sum - 17] } else { 0.0 };
        let lose =
            d[..5].iter().enumerate().filter(|(i, _)| i + 17 > sum).map(|(_, p)| p).sum::<f64>();
        row[STICK] = [(lose, -1.0), (draw, 0.0), (win, 1.0)]
            .into_iter()
            .filter(|&(p, _)| p > 0.0)
            .map(|(probability, reward)| Transition {
                probability,
                next_state: index,
                reward,
                terminated: true,
            })
            .collect();
        // Without a usable ace an ace held can never become usable again (raw >= 12), so
        // the raw sum alone decides the future.
        let raw = if ace == 1 { sum - 10 } else { sum };
        row[HIT] = (1..=10)
            .map(|c| {
                let new_raw = raw + c;
                let usable = (ace == 1 || c == 1) && new_raw + 10 <= 21;
                let new_sum = new_raw + if usable { 10 } else { 0 };
                let bust = new_sum > 21;
                Transition {
                    probability: card_probability(c),
                    next_state: state_index(new_sum, card, usable as usize),
                    reward: if bust { -1.0 } else { 0.0 },
                    terminated: bust,
                }
            })
            .collect();
    }
    let mut initial = vec![0.0; N_STATES];
    for shown in 1..=10 {
        for c1 in 1..=10 {
            for c2 in 1..=10 {
                let hand = Hand::from_cards(&[c1 as u8, c2 as u8])?;
                let i = state_index(hand.sum(), shown, hand.usable_ace() as usize);
                initial[i] += card_probability(shown) * card_probability(c1) * card_probability(c2);
            }
        }
    }
    TransitionModel::new(table, initial)
}
