//! Which specialist gets a free slot: a bandit over their recent rate of improvement.
//!
//! Every specialist first makes a few proposals in turn. After that each is scored by a draw from
//! the posterior of its chance to improve the best (a keep), given its last [`WINDOW`] finished
//! trials (Beta(1 + keeps, 1 + the rest), Thompson sampling), and the highest draw wins: a
//! specialist that keeps improving the recipe gets more of the budget, one that has stalled
//! still gets an occasional turn, and a failure counts against its specialist like any trial
//! that did not improve.

use postdoc_core::Label;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Finished trials per specialist that the bandit looks back on.
pub const WINDOW: usize = 10;
/// Proposals each specialist makes in turn before the bandit decides.
pub const WARM_UP: u64 = 2;

/// One specialist that could propose: its proposals so far and its recent labels, newest first.
#[derive(Debug, Clone)]
pub struct Arm<'a> {
    pub proposals: u64,
    pub recent: &'a [Label],
}

/// The index of the arm that proposes next; `None` when there are no arms.
pub fn choose(arms: &[Arm<'_>], seed: u64) -> Option<usize> {
    let warming = arms.iter().enumerate().filter(|(_, a)| a.proposals < WARM_UP).min_by_key(|(i, a)| (a.proposals, *i));
    if let Some((i, _)) = warming {
        return Some(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut best: Option<(usize, f64)> = None;
    for (i, arm) in arms.iter().enumerate() {
        let recent = &arm.recent[..arm.recent.len().min(WINDOW)];
        let keeps = recent.iter().filter(|l| **l == Label::Keep).count();
        let draw = beta_draw(1 + keeps, 1 + recent.len() - keeps, &mut rng);
        if best.is_none_or(|(_, b)| draw > b) {
            best = Some((i, draw));
        }
    }
    best.map(|(i, _)| i)
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

    #[test]
    fn every_specialist_gets_its_first_turns() {
        let labels = [Label::Keep; 2];
        let arms = [Arm { proposals: 2, recent: &labels }, Arm { proposals: 1, recent: &[] }];
        assert_eq!(choose(&arms, 0), Some(1));
        assert_eq!(choose(&[], 0), None);
    }

    #[test]
    fn slots_follow_the_rate_of_improvement() {
        let improving = [Label::Keep, Label::Discard, Label::Keep, Label::Keep, Label::Discard];
        let stalled = [Label::Discard, Label::SizeBlocked, Label::Discard, Label::Crash, Label::Discard];
        let arms = [Arm { proposals: 5, recent: &stalled }, Arm { proposals: 5, recent: &improving }];
        let picks: Vec<usize> = (0..1000).map(|s| choose(&arms, s).unwrap()).collect();
        let improving_share = picks.iter().filter(|&&i| i == 1).count();
        // Beta(4, 3) against Beta(1, 6): the improving specialist wins about 95% of draws, but
        // the stalled one is not starved.
        assert!((900..990).contains(&improving_share), "{improving_share}");
        assert_eq!(choose(&arms, 7), choose(&arms, 7), "reproducible from the seed");
    }

    #[test]
    fn only_the_recent_window_counts() {
        let mut old_success = vec![Label::Discard; WINDOW];
        old_success.extend([Label::Keep; 20]);
        let steady = [Label::Keep, Label::Discard, Label::Discard, Label::Discard];
        let arms = [Arm { proposals: 30, recent: &old_success }, Arm { proposals: 4, recent: &steady }];
        let first = (0..1000).filter(|&s| choose(&arms, s) == Some(0)).count();
        assert!(first < 300, "keeps older than the window must not count: {first}");
    }

    #[test]
    fn beta_draws_have_the_right_mean() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mean = (0..20000).map(|_| beta_draw(3, 7, &mut rng)).sum::<f64>() / 20000.0;
        assert!((mean - 0.3).abs() < 0.01, "{mean}");
    }
}
