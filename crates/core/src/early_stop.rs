//! Multi-fidelity: asynchronous successive halving (ASHA) on a metric the run reports while it
//! trains. Each rung is a step count; when a run reaches one, its metric there joins every
//! earlier run's, and a run outside the best `keep` share of them is stopped: its trial is a
//! `discard` that says where it stopped, and the compute it would have spent is saved. A run is
//! stopped only when it is clearly behind: by more than twice the run-to-run noise the
//! baseline's seeds show at that rung (past where they ended, at the last rung they reached),
//! so a run that is merely unlucky there goes on.
//! Decisions are made as runs arrive (no waiting for a cohort), so slots never idle.

use crate::manifest::Direction;
use crate::noise::Noise;
use serde::Serialize;

/// `[early_stop]` in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EarlyStopSpec {
    /// A metric the run appends to `$POSTDOC_METRICS` with a `step`.
    pub metric: String,
    pub direction: Direction,
    /// Steps where runs are compared, increasing.
    pub rungs: Vec<i64>,
    /// Share of runs at a rung that go on past it.
    pub keep: f64,
    /// Runs that must have reached a rung before any is stopped there.
    pub min_runs: usize,
}

/// The metric values (as gains: larger is better) every run had at each rung.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rungs {
    gains: Vec<Vec<f64>>,
    /// The baseline's runs at each rung: seeds of one recipe, so their spread is the noise.
    baseline: Vec<Vec<f64>>,
}

/// Why a run should stop.
#[derive(Debug, Clone, PartialEq)]
pub struct Behind {
    /// How many runs reached the rung, this one included.
    pub runs: usize,
    /// The gain the best `keep` share of runs reached there.
    pub needed: f64,
    /// How far below `needed` a run may fall before it is clearly behind.
    pub margin: f64,
}

/// A run must be this many standard deviations of the rung's noise behind to be stopped.
const NOISE_MARGINS: f64 = 2.0;

impl Rungs {
    pub fn new(spec: &EarlyStopSpec) -> Rungs {
        Rungs { gains: vec![Vec::new(); spec.rungs.len()], baseline: vec![Vec::new(); spec.rungs.len()] }
    }

    /// Adds a run's gain at a rung (a rung the manifest no longer has is ignored).
    pub fn record(&mut self, rung: usize, gain: f64, of_baseline: bool) {
        if let Some(values) = self.gains.get_mut(rung) {
            values.push(gain);
        }
        if of_baseline && let Some(values) = self.baseline.get_mut(rung) {
            values.push(gain);
        }
    }

    /// Whether a run whose gain at `rung` (already recorded) is `gain` falls clearly outside
    /// the best `keep` share of the runs there; `None` while too few runs have reached it.
    pub fn behind(&self, spec: &EarlyStopSpec, rung: usize, gain: f64) -> Option<Behind> {
        let values = self.gains.get(rung)?;
        if values.len() < spec.min_runs.max(1) {
            return None;
        }
        let mut sorted = values.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let go_on = ((spec.keep * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        let needed = sorted[go_on - 1];
        let margin = NOISE_MARGINS * self.noise_at(rung).sigma;
        (gain < needed - margin).then_some(Behind { runs: sorted.len(), needed, margin })
    }

    /// The baseline seeds' spread at `rung`; where the seeds ended before it, their spread at
    /// the last rung they reached stands in, so no rung judges runs as if they had no noise.
    fn noise_at(&self, rung: usize) -> Noise {
        let known = |r: usize| Some(Noise::pooled([self.baseline.get(r)?.as_slice()])).filter(|n| n.df > 0);
        (0..=rung).rev().find_map(known).unwrap_or(Noise { sigma: 0.0, df: 0 })
    }
}

/// Which rungs a run passes on its way from `from` (exclusive; `None` before its first line) to
/// `to` (inclusive).
pub fn rungs_passed(spec: &EarlyStopSpec, from: Option<i64>, to: i64) -> impl Iterator<Item = usize> + '_ {
    spec.rungs.iter().enumerate().filter(move |(_, r)| from.is_none_or(|f| f < **r) && **r <= to).map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> EarlyStopSpec {
        EarlyStopSpec {
            metric: "dev_accuracy".into(),
            direction: Direction::Maximize,
            rungs: vec![100, 300, 900],
            keep: 1.0 / 3.0,
            min_runs: 3,
        }
    }

    #[test]
    fn a_run_outside_the_best_share_is_behind() {
        let s = spec();
        let mut rungs = Rungs::new(&s);
        rungs.record(0, 0.5, false);
        rungs.record(0, 0.2, false);
        assert_eq!(rungs.behind(&s, 0, 0.2), None, "too few runs to judge");
        rungs.record(0, 0.4, false);
        // Three runs, one goes on: the best.
        assert_eq!(rungs.behind(&s, 0, 0.4), Some(Behind { runs: 3, needed: 0.5, margin: 0.0 }));
        assert_eq!(rungs.behind(&s, 0, 0.5), None);
        rungs.record(0, 0.45, false);
        // Four runs: two go on (the share rounds up).
        assert_eq!(rungs.behind(&s, 0, 0.45), None);
        assert_eq!(rungs.behind(&s, 0, 0.2), Some(Behind { runs: 4, needed: 0.45, margin: 0.0 }));
        assert_eq!(rungs.behind(&s, 1, 0.0), None, "nobody reached the second rung");
        rungs.record(7, 1.0, false);
    }

    #[test]
    fn a_run_within_the_baselines_noise_of_the_best_share_goes_on() {
        let s = spec();
        let mut rungs = Rungs::new(&s);
        // The baseline's seeds spread by a standard deviation of 0.05 at the first rung.
        for gain in [0.30, 0.35, 0.40] {
            rungs.record(0, gain, true);
        }
        rungs.record(0, 0.60, false);
        rungs.record(0, 0.55, false);
        rungs.record(0, 0.46, false);
        // Six runs, two go on: 0.55 is the bar, and 0.10 (two sigmas) below it is still in.
        assert_eq!(rungs.behind(&s, 0, 0.46), None);
        let b = rungs.behind(&s, 0, 0.40).expect("0.40 is clearly behind");
        assert_eq!((b.runs, b.needed), (6, 0.55));
        assert!((b.margin - 0.10).abs() < 1e-12, "{}", b.margin);
        // The baseline's seeds ended before the second rung: their spread at the first stands in.
        for gain in [0.5, 0.7, 0.75] {
            rungs.record(1, gain, false);
        }
        assert_eq!(rungs.behind(&s, 1, 0.7), None, "0.05 behind the bar, within two sigmas");
        let b = rungs.behind(&s, 1, 0.5).expect("0.25 behind is clearly behind");
        assert_eq!((b.runs, b.needed), (3, 0.75));
        assert!((b.margin - 0.10).abs() < 1e-12, "{}", b.margin);
    }

    #[test]
    fn rungs_passed_between_two_lines() {
        let s = spec();
        assert_eq!(rungs_passed(&s, None, 50).collect::<Vec<_>>(), Vec::<usize>::new());
        assert_eq!(rungs_passed(&s, None, 100).collect::<Vec<_>>(), vec![0]);
        assert_eq!(rungs_passed(&s, Some(100), 1000).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(rungs_passed(&s, Some(300), 300).collect::<Vec<_>>(), Vec::<usize>::new());
    }
}
