//! A study at a glance, computed from its records alone.

use crate::StudyError;
use postdoc_core::lineage::{baseline, current_best, study_noise};
use postdoc_core::{Label, Manifest, Noise, Spend, Tally, Transcript, TrialRecord};
use postdoc_store::{EventRecord, Store, StudyRecord};
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
    /// Proposals waiting for the researcher's approval.
    pub waiting: Vec<TrialRecord>,
    pub queued: usize,
    /// Candidate trials counted against the budget.
    pub trials: u64,
    pub max_trials: u64,
    pub compute_seconds: f64,
    pub compute_budget: Option<f64>,
    pub active_seconds: f64,
    pub wall_clock_budget: Option<f64>,
    /// What each agent's model provider has cost, beside the compute seconds.
    pub model_spend: BTreeMap<String, Spend>,
    pub dollar_budget: Option<f64>,
}

/// Tokens and dollars each agent has spent, from the transcripts of its proposals (those that
/// became trials and those cut short by a provider that went down). Read from the transcript
/// events only: few, since each is a model session.
pub(crate) async fn model_spend(store: &Store, study: i64) -> Result<BTreeMap<String, Spend>, StudyError> {
    let mut spend: BTreeMap<String, Spend> = BTreeMap::new();
    for (kind, field) in [(crate::TRANSCRIPT_EVENT, None), ("specialist_unavailable", Some("transcript"))] {
        for e in store.events_of_kind(study, kind).await? {
            let Some(name) = e.payload.get("specialist").and_then(|s| s.as_str()) else { continue };
            let payload = match field {
                Some(f) => e.payload.get(f).cloned().unwrap_or_default(),
                None => e.payload.clone(),
            };
            if let Ok(t) = serde_json::from_value::<Transcript>(payload) {
                *spend.entry(name.to_string()).or_default() += t.spend;
            }
        }
    }
    Ok(spend)
}

/// Seconds the study has been driven, read from the store without reading every event: the
/// session markers, plus the last event of each session left open (killed, or running now, when
/// its last event is moments old).
pub async fn active_seconds_in(store: &Store, study: i64) -> Result<f64, StudyError> {
    let markers = store.session_events(study).await?;
    let mut events = Vec::with_capacity(markers.len() * 2);
    for (i, e) in markers.iter().enumerate() {
        events.push(e.clone());
        let next = markers.get(i + 1);
        if e.kind == "session_started" && next.is_none_or(|n| n.kind == "session_started") {
            // A session that never said goodbye lasted until its last event.
            if let Some(at_ms) = store.last_event_ms(study, e.id, next.map(|n| n.id)).await? {
                let last = EventRecord {
                    id: e.id,
                    trial: None,
                    kind: "last_event".into(),
                    payload: serde_json::Value::Null,
                    at_ms,
                };
                events.push(last);
            }
        }
    }
    let end = events.last().map(|e| e.at_ms).unwrap_or(0);
    Ok(active_seconds(&events, end))
}

impl Summary {
    /// The study at a glance, from aggregates and short lists (its cost does not grow with the
    /// number of trials).
    pub async fn read(store: &Store, study: &StudyRecord, manifest: &Manifest) -> Result<Summary, StudyError> {
        let tally = store.tally(study.id).await?;
        Summary::read_with(store, study, manifest, tally).await
    }

    /// The same, with the tally given by a caller that already holds the trials (the
    /// dashboard's snapshot), so only the short lists are read from the store.
    pub async fn read_with(
        store: &Store,
        study: &StudyRecord,
        manifest: &Manifest,
        tally: Tally,
    ) -> Result<Summary, StudyError> {
        let baselines = store.baselines(study.id).await?;
        let kept = store.kept_trials(study.id).await?;
        Ok(Summary {
            study: study.name.clone(),
            base_commit: study.base_commit.clone(),
            baseline: baseline(&baselines).cloned(),
            noise: study_noise(&kept),
            best: current_best(&kept).cloned(),
            labels: tally.labels,
            running: store.running(study.id).await?,
            waiting: store.waiting(study.id).await?,
            queued: store.queued(study.id).await?.len(),
            trials: tally.counted,
            max_trials: manifest.study.budget.max_trials,
            compute_seconds: tally.compute_seconds,
            compute_budget: manifest.study.budget.compute_seconds.map(|s| s.0),
            active_seconds: active_seconds_in(store, study.id).await?,
            wall_clock_budget: manifest.study.budget.wall_clock.map(|s| s.0),
            model_spend: model_spend(store, study.id).await?,
            dollar_budget: manifest.study.budget.max_dollars,
        })
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
