//! Which specialist gets a free slot: a bandit over how far their recent moves take the recipe.
//!
//! Every specialist first makes a few proposals in turn (a first proposal whose run was stopped
//! early does not count: it has told the bandit nothing). After that each is judged by its last
//! [`WINDOW`] finished trials: how much each changed the score of the trial it built on (its
//! move, negative when it made things worse), and how many failed. The moves are taken as
//! normal draws whose spread and mean are drawn from their posterior (Thompson sampling); the
//! specialist's value is the expected gain of its next trial over its parent,
//! `E[max(0, move)]`, times a drawn chance that the trial does not fail. The highest value wins.
//!
//! The spread counts as much as the mean. A specialist whose moves scatter widely, some down
//! and some up, holds the levers that matter and may find a large gain once its search has
//! learnt their direction; one whose moves barely change the score cannot, however often it is
//! kept by a hair. A bandit on the rate of keeps alone gives its turns to the latter: on a
//! post-training recipe it fed the specialist owning data-format knobs (small, frequent keeps)
//! and starved the one owning the learning rate (two unlucky draws, then the largest gains).
//!
//! The spread is taken about the moves' own mean, as the conjugate (normal-inverse-gamma)
//! posterior has it, not about no move. Moves that all fell far are a specialist reliably making
//! things worse, not one of uncertain effect: measured about no move, the reinforcement-learning
//! specialist of the same recipe, whose every proposal lost a third of the score, looked the
//! most promising of the three and took a third of the study's turns.

use crate::tpe::normal_cdf;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma, StandardNormal};

/// Finished trials per specialist that the bandit looks back on.
pub const WINDOW: usize = 10;
/// Proposals each specialist makes in turn before the bandit decides.
pub const WARM_UP: u64 = 2;

/// One specialist that could propose: its proposals so far, how many of its trials were
/// stopped early, and the moves of its recent finished trials, newest first. A move is the
/// trial's score minus its parent's, as gains (larger is better); `None` for a trial that failed.
#[derive(Debug, Clone)]
pub struct Arm<'a> {
    pub proposals: u64,
    pub stopped: u64,
    pub recent: &'a [Option<f64>],
}

impl Arm<'_> {
    /// Whether the specialist still takes its first turns: fewer than [`WARM_UP`] proposals, not
    /// counting up to [`WARM_UP`] of them that were stopped early. A stopped run says only that
    /// it was behind at a rung, so a specialist whose first, random draws were stopped has not
    /// been judged yet; it gets those turns back once.
    fn warming(&self) -> bool {
        self.proposals < WARM_UP + self.stopped.min(WARM_UP)
    }
}

/// The index of the arm that proposes next; `None` when there are no arms.
pub fn choose(arms: &[Arm<'_>], seed: u64) -> Option<usize> {
    let warming = arms.iter().enumerate().filter(|(_, a)| a.warming()).min_by_key(|(i, a)| (a.proposals, *i));
    if let Some((i, _)) = warming {
        return Some(i);
    }
    let windows: Vec<&[Option<f64>]> = arms.iter().map(|a| &a.recent[..a.recent.len().min(WINDOW)]).collect();
    // The prior's scale: the typical size of a move in this study, so that the values compare
    // across recipes whatever the units of their scores.
    let all: Vec<f64> = windows.iter().flat_map(|w| w.iter().flatten().copied()).collect();
    let scale = match all.len() {
        0 => 1.0,
        n => (all.iter().map(|m| m * m).sum::<f64>() / n as f64).sqrt().max(1e-12),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut best: Option<(usize, f64)> = None;
    for (i, window) in windows.iter().enumerate() {
        let value = draw_value(window, scale, &mut rng);
        if best.is_none_or(|(_, b)| value > b) {
            best = Some((i, value));
        }
    }
    best.map(|(i, _)| i)
}

/// Weight of the prior, in trials, on both the spread and the mean of an arm's moves.
const PRIOR_TRIALS: f64 = 1.0;

/// One Thompson draw of an arm's value: the expected gain of its next trial over its parent.
fn draw_value(window: &[Option<f64>], scale: f64, rng: &mut impl Rng) -> f64 {
    let moves: Vec<f64> = window.iter().flatten().copied().collect();
    let n = moves.len() as f64;
    let mean = if moves.is_empty() { 0.0 } else { moves.iter().sum::<f64>() / n };
    let scatter: f64 = moves.iter().map(|m| (m - mean) * (m - mean)).sum();
    // The normal-inverse-gamma posterior from a prior centred on no move: the spread about the
    // moves' mean, plus what the prior's disagreement with that mean adds.
    let weight = PRIOR_TRIALS + n;
    let shape = PRIOR_TRIALS / 2.0 + n / 2.0;
    let rate = PRIOR_TRIALS * scale * scale / 2.0 + scatter / 2.0 + PRIOR_TRIALS * n * mean * mean / (2.0 * weight);
    let variance = rate / Gamma::new(shape, 1.0).expect("a positive shape").sample(rng).max(1e-300);
    let sigma = variance.sqrt();
    // The mean shrunk towards no move by the prior's weight.
    let mu = n * mean / weight + sigma / weight.sqrt() * rng.sample::<f64, _>(StandardNormal);
    let p_success = beta_draw(1 + moves.len(), 1 + window.len() - moves.len(), rng);
    p_success * expected_improvement(mu, sigma)
}

/// `E[max(0, X)]` for `X ~ N(mu, sigma²)`.
fn expected_improvement(mu: f64, sigma: f64) -> f64 {
    if sigma <= 0.0 {
        return mu.max(0.0);
    }
    let z = mu / sigma;
    let pdf = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
    mu * normal_cdf(z) + sigma * pdf
}

/// A draw from Beta(a, b) for whole a and b: the a-th smallest of a + b - 1 uniforms.
fn beta_draw(a: usize, b: usize, rng: &mut impl Rng) -> f64 {
    let mut u: Vec<f64> = (0..a + b - 1).map(|_| rng.random::<f64>()).collect();
    u.sort_by(f64::total_cmp);
    u[a - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(moved: f64) -> Option<f64> {
        Some(moved)
    }

    const FAILED: Option<f64> = None;

    /// How often arm `of` wins over 1000 seeds.
    fn share(arms: &[Arm<'_>], of: usize) -> usize {
        (0..1000).filter(|&s| choose(arms, s) == Some(of)).count()
    }

    #[test]
    fn every_specialist_gets_its_first_turns() {
        let kept = [scored(0.1); 2];
        let arms = [Arm { proposals: 2, stopped: 0, recent: &kept }, Arm { proposals: 1, stopped: 0, recent: &[] }];
        assert_eq!(choose(&arms, 0), Some(1));
        assert_eq!(choose(&[], 0), None);
    }

    #[test]
    fn first_turns_stopped_early_are_given_back_once() {
        let moved = [scored(-0.1)];
        let steady = [scored(0.05), scored(0.03), scored(-0.02)];
        // Three proposals, two of them stopped early and only one judged: one more turn.
        let stopped = Arm { proposals: 3, stopped: 2, recent: &moved };
        let judged = Arm { proposals: 3, stopped: 0, recent: &steady };
        assert_eq!(share(&[judged.clone(), stopped.clone()], 1), 1000);
        // Once it has had its turns back, the bandit judges it like the others.
        let given_back = Arm { proposals: 4, ..stopped };
        let shares = share(&[judged, given_back], 1);
        assert!((50..700).contains(&shares), "{shares}");
        // Runs stopped after the first turns give nothing back beyond them.
        let late = Arm { proposals: 9, stopped: 5, recent: &moved };
        assert!(!late.warming());
    }

    #[test]
    fn slots_follow_the_gains() {
        let improving = [scored(0.05), scored(-0.01), scored(0.04), scored(0.06), scored(-0.02)];
        let stalled = [scored(-0.03), FAILED, scored(-0.02), FAILED, scored(-0.04)];
        let arms =
            [Arm { proposals: 5, stopped: 0, recent: &stalled }, Arm { proposals: 5, stopped: 0, recent: &improving }];
        let improving_share = share(&arms, 1);
        // The stalled specialist still gets an occasional turn.
        assert!((850..990).contains(&improving_share), "{improving_share}");
        assert_eq!(choose(&arms, 7), choose(&arms, 7), "reproducible from the seed");
    }

    #[test]
    fn knobs_that_move_the_score_far_beat_small_keeps() {
        // Small keeps, each within a hair of the parent, against moves that changed the score
        // by a tenth, one of them upwards.
        let nudging = [scored(0.004), scored(0.003), scored(-0.002), scored(0.004)];
        let levers = [scored(-0.1), scored(0.12), scored(-0.09), scored(-0.1)];
        let arms =
            [Arm { proposals: 4, stopped: 0, recent: &nudging }, Arm { proposals: 4, stopped: 0, recent: &levers }];
        // About two turns in three, though the first was kept three times and the second once.
        let levers_share = share(&arms, 1);
        assert!((600..800).contains(&levers_share), "{levers_share}");
    }

    #[test]
    fn moves_that_all_fell_far_earn_no_turns() {
        // Every proposal lost a third of the score, against small and mostly upward moves.
        let falling = [scored(-0.3), scored(-0.45), scored(-0.25), scored(-0.4)];
        let steady = [scored(0.03), scored(0.01), scored(-0.02), scored(0.04)];
        let arms =
            [Arm { proposals: 4, stopped: 0, recent: &falling }, Arm { proposals: 4, stopped: 0, recent: &steady }];
        let falling_share = share(&arms, 0);
        assert!(falling_share < 200, "{falling_share}");
    }

    #[test]
    fn failures_cost_turns() {
        let moves = [scored(0.05), scored(-0.05), scored(0.05), scored(-0.05)];
        let mut failing = moves.to_vec();
        failing.extend([FAILED, FAILED, FAILED, FAILED]);
        let arms =
            [Arm { proposals: 8, stopped: 0, recent: &failing }, Arm { proposals: 4, stopped: 0, recent: &moves }];
        let failing_share = share(&arms, 0);
        assert!(failing_share < 350, "{failing_share}");
    }

    #[test]
    fn only_the_recent_window_counts() {
        let mut old_success = vec![scored(-0.001); WINDOW];
        old_success.extend([scored(0.2); 20]);
        let steady = [scored(0.03), scored(-0.02), scored(-0.01), scored(0.02)];
        let arms = [
            Arm { proposals: 30, stopped: 0, recent: &old_success },
            Arm { proposals: 4, stopped: 0, recent: &steady },
        ];
        let first = share(&arms, 0);
        assert!(first < 300, "gains older than the window must not count: {first}");
    }

    #[test]
    fn expected_improvement_matches_the_normal_formula() {
        // E[max(0, X)] for X ~ N(0, 1) is 1/sqrt(2 pi).
        assert!((expected_improvement(0.0, 1.0) - 0.398_942_28).abs() < 1e-6);
        assert_eq!(expected_improvement(0.3, 0.0), 0.3);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mean =
            (0..200_000).map(|_| (-0.5 + 2.0 * rng.sample::<f64, _>(StandardNormal)).max(0.0)).sum::<f64>() / 200_000.0;
        assert!((expected_improvement(-0.5, 2.0) - mean).abs() < 0.01, "{mean}");
    }

    #[test]
    fn beta_draws_have_the_right_mean() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mean = (0..20000).map(|_| beta_draw(3, 7, &mut rng)).sum::<f64>() / 20000.0;
        assert!((mean - 0.3).abs() < 0.01, "{mean}");
    }
}
