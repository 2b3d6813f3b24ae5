//! Multi-fidelity: asynchronous successive halving (ASHA) on a metric the run reports while it
//! trains. Each rung is a step count; when a run reaches one, its metric there joins every
//! earlier run's, and a run outside the best `keep` share of them is stopped: its trial is a
//! `discard` that says where it stopped, and the compute it would have spent is saved.
//! Decisions are made as runs arrive (no waiting for a cohort), so slots never idle.

use crate::manifest::Direction;
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
}

/// Why a run should stop.
#[derive(Debug, Clone, PartialEq)]
pub struct Behind {
    /// How many runs reached the rung, this one included.
    pub runs: usize,
    /// The gain a run needed to go on.
    pub needed: f64,
}

impl Rungs {
    pub fn new(spec: &EarlyStopSpec) -> Rungs {
        Rungs { gains: vec![Vec::new(); spec.rungs.len()] }
    }

    /// Adds a run's gain at a rung (a rung the manifest no longer has is ignored).
    pub fn record(&mut self, rung: usize, gain: f64) {
        if let Some(values) = self.gains.get_mut(rung) {
            values.push(gain);
        }
    }

    /// Whether a run whose gain at `rung` (already recorded) is `gain` falls outside the best
    /// `keep` share of the runs there; `None` while too few runs have reached it.
    pub fn behind(&self, spec: &EarlyStopSpec, rung: usize, gain: f64) -> Option<Behind> {
        let values = self.gains.get(rung)?;
        if values.len() < spec.min_runs.max(1) {
            return None;
        }
        let mut sorted = values.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let go_on = ((spec.keep * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        let needed = sorted[go_on - 1];
        (gain < needed).then_some(Behind { runs: sorted.len(), needed })
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
        rungs.record(0, 0.5);
        rungs.record(0, 0.2);
        assert_eq!(rungs.behind(&s, 0, 0.2), None, "too few runs to judge");
        rungs.record(0, 0.4);
        // Three runs, one goes on: the best.
        assert_eq!(rungs.behind(&s, 0, 0.4), Some(Behind { runs: 3, needed: 0.5 }));
        assert_eq!(rungs.behind(&s, 0, 0.5), None);
        rungs.record(0, 0.45);
        // Four runs: two go on (the share rounds up).
        assert_eq!(rungs.behind(&s, 0, 0.45), None);
        assert_eq!(rungs.behind(&s, 0, 0.2), Some(Behind { runs: 4, needed: 0.45 }));
        assert_eq!(rungs.behind(&s, 1, 0.0), None, "nobody reached the second rung");
        rungs.record(7, 1.0);
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
