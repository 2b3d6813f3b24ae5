//! A study at a glance, computed from its records alone.

use postdoc_core::lineage::{baseline, current_best, study_noise};
use postdoc_core::{Label, Manifest, Noise, TrialRecord, TrialStatus};
use postdoc_store::EventRecord;
use serde::Serialize;
use std::collections::BTreeMap;

/// Seconds the study has been driven, over all its sessions. A session killed without saying
/// goodbye counts up to its last recorded event.
pub fn active_seconds(events: &[EventRecord], now_ms: i64) -> f64 {
    let mut total_ms = 0i64;
    let mut session: Option<(i64, i64)> = None; // (start, last event)
    for e in events {
        match (e.kind.as_str(), session) {
            ("session_started", Some((start, last))) => {
                total_ms += last - start;
                session = Some((e.at_ms, e.at_ms));
            }
            ("session_started", None) => session = Some((e.at_ms, e.at_ms)),
            ("session_ended", Some((start, _))) => {
                total_ms += e.at_ms - start;
                session = None;
            }
            (_, Some((start, _))) => session = Some((start, e.at_ms)),
            _ => {}
        }
    }
    if let Some((start, _)) = session {
        total_ms += now_ms - start;
    }
    total_ms.max(0) as f64 / 1000.0
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub study: String,
    pub base_commit: String,
    pub baseline: Option<TrialRecord>,
    pub noise: Noise,
    pub best: Option<TrialRecord>,
    pub labels: BTreeMap<Label, usize>,
    pub running: Vec<TrialRecord>,
    pub queued: usize,
    /// Candidate trials counted against the budget.
    pub trials: u64,
    pub max_trials: u64,
    pub compute_seconds: f64,
    pub compute_budget: Option<f64>,
    pub active_seconds: f64,
    pub wall_clock_budget: Option<f64>,
}

impl Summary {
    pub fn compute(
        study: &str,
        base_commit: &str,
        manifest: &Manifest,
        trials: &[TrialRecord],
        events: &[EventRecord],
        now_ms: i64,
    ) -> Summary {
        let mut labels = BTreeMap::new();
        for t in trials.iter().filter(|t| !t.is_baseline()) {
            if let Some(l) = t.label {
                *labels.entry(l).or_insert(0) += 1;
            }
        }
        Summary {
            study: study.to_string(),
            base_commit: base_commit.to_string(),
            baseline: baseline(trials).cloned(),
            noise: study_noise(trials),
            best: current_best(trials).cloned(),
            labels,
            running: trials.iter().filter(|t| t.status == TrialStatus::Running).cloned().collect(),
            queued: trials.iter().filter(|t| t.status == TrialStatus::Proposed).count(),
            trials: trials.iter().filter(|t| t.is_counted()).count() as u64,
            max_trials: manifest.study.budget.max_trials,
            compute_seconds: trials.iter().map(TrialRecord::compute_seconds).sum(),
            compute_budget: manifest.study.budget.compute_seconds.map(|s| s.0),
            active_seconds: active_seconds(events, now_ms),
            wall_clock_budget: manifest.study.budget.wall_clock.map(|s| s.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, at_ms: i64) -> EventRecord {
        EventRecord { id: at_ms, trial: None, kind: kind.into(), payload: serde_json::Value::Null, at_ms }
    }

    #[test]
    fn active_time_spans_sessions_and_skips_downtime() {
        let events = vec![
            ev("session_started", 1_000),
            ev("proposed", 3_000),
            ev("session_ended", 5_000), // 4 s
            ev("session_started", 100_000),
            ev("finished", 102_000), // killed: counts to its last event, 2 s
            ev("session_started", 200_000),
            ev("proposed", 201_000),
        ];
        assert_eq!(active_seconds(&events, 203_000), 4.0 + 2.0 + 3.0);
        assert_eq!(active_seconds(&[], 5), 0.0);
    }
}
