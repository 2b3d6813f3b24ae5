//! The noise-aware keep rule.
//!
//! The unmodified recipe runs on several seeds first; the spread of its score is the study's
//! noise, refined as more configurations are run on several seeds (pooled within-configuration
//! variance). A candidate is screened on one seed: if it does not beat the current best by the
//! one-sided Student-t margin for that comparison it is discarded. One that does is re-run on
//! fresh confirmation seeds and kept only if the mean of those new runs alone (the screening run
//! was selected for being high) beats the best by the margin for their count. All arithmetic is
//! on "gain", the score turned so larger is better.
//!
//! Every win is confirmed, however far beyond the margin, unless the scores have not varied from
//! seed to seed at all (more seeds would repeat them). The best is what every later candidate is
//! judged against, so it must be known on several seeds: its mean is then not one lucky run, and
//! its spread joins the pooled noise. A recipe's noise is often far smaller once it trains well
//! than at the weak recipe a study starts from: tiny-golf's starting recipe varies by 0.018 bits
//! per byte from seed to seed, its good recipes by a few thousandths. Kept on one run, a first
//! large win left the baseline's spread as the study's only noise, and the margin it set (0.07
//! bits) discarded every later improvement of that size.

use crate::manifest::NoiseSpec;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// How noisy the score is: a pooled standard deviation and its degrees of freedom.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Noise {
    pub sigma: f64,
    pub df: u32,
}

/// What the current best is known to score: the mean gain over `runs` runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    pub mean: f64,
    pub runs: u32,
}

/// The keep rule's final word on a trial that passed every other check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub keep: bool,
    /// Measured improvement over the best, in gain units (positive is better).
    pub delta: f64,
    /// The improvement the noise demanded.
    pub margin: f64,
    pub reason: String,
}

/// The outcome of the single screening run.
#[derive(Debug, Clone, PartialEq)]
pub enum Screen {
    Decided(Decision),
    /// A win on the screening run: run the confirmation seeds before keeping it.
    Confirm {
        delta: f64,
        margin: f64,
    },
}

impl Noise {
    /// Pools the within-group variance of every group of runs of one configuration.
    pub fn pooled<'a>(groups: impl IntoIterator<Item = &'a [f64]>) -> Noise {
        let (mut ss, mut df) = (0.0, 0u32);
        for g in groups {
            if g.len() < 2 {
                continue;
            }
            let mean = g.iter().sum::<f64>() / g.len() as f64;
            ss += g.iter().map(|x| (x - mean).powi(2)).sum::<f64>();
            df += g.len() as u32 - 1;
        }
        Noise { sigma: if df == 0 { 0.0 } else { (ss / df as f64).sqrt() }, df }
    }

    /// The improvement a mean of `n` candidate runs must show over `best` to count as real.
    pub fn margin(&self, spec: &NoiseSpec, n: u32, best: Reference) -> f64 {
        let se = self.sigma * (1.0 / n.max(1) as f64 + 1.0 / best.runs.max(1) as f64).sqrt();
        let t = if self.df == 0 || se == 0.0 {
            0.0
        } else {
            StudentsT::new(0.0, 1.0, self.df as f64).map(|d| d.inverse_cdf(spec.confidence)).unwrap_or(f64::INFINITY)
        };
        t * se + spec.min_delta
    }
}

/// Judges the screening run's gain against the best.
pub fn screen(gain: f64, best: Reference, noise: Noise, spec: &NoiseSpec) -> Screen {
    let delta = gain - best.mean;
    let margin = noise.margin(spec, 1, best);
    if delta <= margin || delta <= 0.0 {
        return Screen::Decided(Decision {
            keep: false,
            delta,
            margin,
            reason: if delta <= 0.0 {
                format!("no better than the best ({})", signed(delta))
            } else {
                format!("{} is within the noise margin {}", signed(delta), fmt(margin))
            },
        });
    }
    if spec.confirm_seeds == 0 {
        let reason = format!("beats the best by {} (margin {}; confirmation is off)", signed(delta), fmt(margin));
        return Screen::Decided(Decision { keep: true, delta, margin, reason });
    }
    // Where every configuration run on several seeds scored the same on each, more seeds would
    // repeat the score.
    if noise.df > 0 && noise.sigma == 0.0 {
        let reason = format!("beats the best by {} (the scores do not vary from seed to seed)", signed(delta));
        return Screen::Decided(Decision { keep: true, delta, margin, reason });
    }
    Screen::Confirm { delta, margin }
}

/// Judges the confirmation runs' gains (not the screening run's) against the best.
pub fn confirm(gains: &[f64], best: Reference, noise: Noise, spec: &NoiseSpec) -> Decision {
    let n = gains.len() as u32;
    let mean = gains.iter().sum::<f64>() / gains.len().max(1) as f64;
    let delta = mean - best.mean;
    let margin = noise.margin(spec, n, best);
    let keep = n > 0 && delta > margin && delta > 0.0;
    let reason = if keep {
        format!("confirmed on {n} fresh seeds: beats the best by {} (margin {})", signed(delta), fmt(margin))
    } else {
        format!("not confirmed on {n} fresh seeds: {} against a margin of {}", signed(delta), fmt(margin))
    };
    Decision { keep, delta, margin, reason }
}

fn fmt(x: f64) -> String {
    format!("{x:.4}")
}

fn signed(x: f64) -> String {
    format!("{x:+.4}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> NoiseSpec {
        NoiseSpec::default()
    }

    #[test]
    fn pooled_noise_ignores_single_runs() {
        let a = [1.0, 2.0, 3.0];
        let b = [10.0];
        let n = Noise::pooled([&a[..], &b[..]]);
        assert_eq!(n.df, 2);
        assert!((n.sigma - 1.0).abs() < 1e-12);
        assert_eq!(Noise::pooled([&b[..]]), Noise { sigma: 0.0, df: 0 });
    }

    #[test]
    fn deterministic_scores_keep_any_real_gain() {
        let best = Reference { mean: 0.5, runs: 3 };
        let noise = Noise { sigma: 0.0, df: 2 };
        assert!(matches!(screen(0.51, best, noise, &spec()), Screen::Decided(Decision { keep: true, .. })));
        assert!(matches!(screen(0.5, best, noise, &spec()), Screen::Decided(Decision { keep: false, .. })));
    }

    #[test]
    fn small_gains_are_noise_and_every_win_is_confirmed() {
        let best = Reference { mean: 0.0, runs: 3 };
        let noise = Noise { sigma: 1.0, df: 2 };
        // t(0.95, 2) = 2.92, se = sqrt(1 + 1/3) = 1.155: the margin is about 3.37.
        let m = noise.margin(&spec(), 1, best);
        assert!((m - 3.372).abs() < 0.01, "{m}");
        assert!(matches!(screen(3.0, best, noise, &spec()), Screen::Decided(Decision { keep: false, .. })));
        assert!(matches!(screen(4.0, best, noise, &spec()), Screen::Confirm { .. }));
        // However far beyond the margin: the new best must be known on several seeds.
        assert!(matches!(screen(20.0, best, noise, &spec()), Screen::Confirm { .. }));
        let no_confirm = NoiseSpec { confirm_seeds: 0, ..spec() };
        assert!(matches!(screen(4.0, best, noise, &no_confirm), Screen::Decided(Decision { keep: true, .. })));
        assert!(confirm(&[4.0, 4.0], best, noise, &spec()).keep);
        assert!(!confirm(&[0.5, 1.0], best, noise, &spec()).keep);
    }

    #[test]
    fn unknown_noise_always_confirms() {
        let best = Reference { mean: 0.0, runs: 1 };
        let noise = Noise { sigma: 0.0, df: 0 };
        assert!(matches!(screen(100.0, best, noise, &spec()), Screen::Confirm { .. }));
        let no_confirm = NoiseSpec { confirm_seeds: 0, ..spec() };
        assert!(matches!(screen(100.0, best, noise, &no_confirm), Screen::Decided(Decision { keep: true, .. })));
    }

    #[test]
    fn min_delta_is_a_floor() {
        let best = Reference { mean: 0.0, runs: 3 };
        let s = NoiseSpec { min_delta: 0.5, ..spec() };
        let noise = Noise { sigma: 0.0, df: 2 };
        assert!(matches!(screen(0.4, best, noise, &s), Screen::Decided(Decision { keep: false, .. })));
    }
}
