//! Decoding rows into domain records. Both backends store only integers, floats and text (JSON
//! as text, times as epoch milliseconds), which is what lets one set of queries serve both.

use crate::{Result, StoreError};
use postdoc_core::{Edit, Label, MetricPoint, RunPurpose, RunRecord, TrialNode, TrialRecord, TrialStatus};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StudyRecord {
    pub id: i64,
    pub name: String,
    /// Absolute path of the recipe repository.
    pub recipe: String,
    pub base_commit: String,
    /// The manifest text the study was created with.
    pub manifest: String,
    pub comparability: String,
    pub protected_hash: String,
    pub created_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRecord {
    pub id: i64,
    pub trial: Option<u64>,
    pub kind: String,
    pub payload: serde_json::Value,
    pub at_ms: i64,
}

/// Who drives a study.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub host: String,
    pub pid: i64,
    pub heartbeat_ms: i64,
}

pub(crate) fn get<'r, T>(row: &'r AnyRow, col: &'static str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(col).map_err(|source| StoreError::Query { what: col, source })
}

fn json<T: serde::de::DeserializeOwned>(text: &str, what: &'static str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt { what, detail: e.to_string() })
}

pub(crate) fn study(r: &AnyRow) -> Result<StudyRecord> {
    Ok(StudyRecord {
        id: get(r, "id")?,
        name: get(r, "name")?,
        recipe: get(r, "recipe")?,
        base_commit: get(r, "base_commit")?,
        manifest: get(r, "manifest")?,
        comparability: get(r, "comparability")?,
        protected_hash: get(r, "protected_hash")?,
        created_ms: get(r, "created_ms")?,
    })
}

pub(crate) fn lease(r: &AnyRow) -> Result<Lease> {
    Ok(Lease {
        owner: get(r, "owner")?,
        host: get(r, "host")?,
        pid: get(r, "pid")?,
        heartbeat_ms: get(r, "heartbeat_ms")?,
    })
}

pub(crate) fn event(r: &AnyRow) -> Result<EventRecord> {
    let payload: String = get(r, "payload")?;
    Ok(EventRecord {
        id: get(r, "id")?,
        trial: get::<Option<i64>>(r, "trial")?.map(|t| t as u64),
        kind: get(r, "kind")?,
        payload: json(&payload, "event payload")?,
        at_ms: get(r, "at_ms")?,
    })
}

pub(crate) fn trial(r: &AnyRow) -> Result<TrialRecord> {
    let edit: String = get(r, "edit")?;
    let scores: String = get(r, "scores")?;
    let run_scores: String = get(r, "run_scores")?;
    Ok(TrialRecord {
        number: get::<i64>(r, "number")? as u64,
        parent: get::<Option<i64>>(r, "parent")?.map(|p| p as u64),
        retry_of: get::<Option<i64>>(r, "retry_of")?.map(|p| p as u64),
        specialist: get(r, "specialist")?,
        hypothesis: get(r, "hypothesis")?,
        expected_delta: get(r, "expected_delta")?,
        edit: json::<Edit>(&edit, "trial edit")?,
        status: status(r)?,
        commit: get(r, "commit_sha")?,
        patch: get(r, "patch")?,
        label: label(r)?,
        reason: get(r, "reason")?,
        score: get(r, "score")?,
        scores: json(&scores, "trial scores")?,
        runs: get::<i64>(r, "runs")? as u32,
        run_scores: json(&run_scores, "trial run scores")?,
        train_seconds: get(r, "train_seconds")?,
        eval_seconds: get(r, "eval_seconds")?,
        peak_rss_bytes: get::<Option<i64>>(r, "peak_rss_bytes")?.map(|b| b as u64),
        artifact_bytes: get::<Option<i64>>(r, "artifact_bytes")?.map(|b| b as u64),
        log_excerpt: get(r, "log_excerpt")?,
        created_ms: get(r, "created_ms")?,
        started_ms: get(r, "started_ms")?,
        finished_ms: get(r, "finished_ms")?,
    })
}

fn status(r: &AnyRow) -> Result<TrialStatus> {
    let status: String = get(r, "status")?;
    TrialStatus::parse(&status).ok_or(StoreError::Corrupt { what: "trial status", detail: status })
}

fn label(r: &AnyRow) -> Result<Option<Label>> {
    let label: Option<String> = get(r, "label")?;
    label.map(|l| l.parse::<Label>().map_err(|detail| StoreError::Corrupt { what: "trial label", detail })).transpose()
}

pub(crate) fn node(r: &AnyRow) -> Result<TrialNode> {
    Ok(TrialNode {
        number: get::<i64>(r, "number")? as u64,
        parent: get::<Option<i64>>(r, "parent")?.map(|p| p as u64),
        retry_of: get::<Option<i64>>(r, "retry_of")?.map(|p| p as u64),
        specialist: get(r, "specialist")?,
        hypothesis: get(r, "hypothesis")?,
        status: status(r)?,
        label: label(r)?,
        score: get(r, "score")?,
        compute_seconds: get(r, "compute_seconds")?,
        finished_ms: get(r, "finished_ms")?,
    })
}

pub(crate) fn run(r: &AnyRow) -> Result<RunRecord> {
    let purpose: String = get(r, "purpose")?;
    let scores: String = get(r, "scores")?;
    let findings: String = get(r, "findings")?;
    Ok(RunRecord {
        idx: get::<i64>(r, "idx")? as u32,
        purpose: RunPurpose::parse(&purpose)
            .ok_or(StoreError::Corrupt { what: "run purpose", detail: purpose.clone() })?,
        seed: get::<i64>(r, "seed")? as u64,
        exit_code: get::<Option<i64>>(r, "exit_code")?.map(|c| c as i32),
        signal: get::<Option<i64>>(r, "signal")?.map(|c| c as i32),
        timed_out: get::<i64>(r, "timed_out")? != 0,
        train_seconds: get(r, "train_seconds")?,
        eval_seconds: get(r, "eval_seconds")?,
        cpu_seconds: get(r, "cpu_seconds")?,
        peak_rss_bytes: get::<Option<i64>>(r, "peak_rss_bytes")?.map(|b| b as u64),
        artifact_bytes: get::<Option<i64>>(r, "artifact_bytes")?.map(|b| b as u64),
        score: get(r, "score")?,
        scores: json(&scores, "run scores")?,
        findings: json(&findings, "run findings")?,
        log_tail: get(r, "log_tail")?,
        eval_log_tail: get(r, "eval_log_tail")?,
        started_ms: get(r, "started_ms")?,
        finished_ms: get(r, "finished_ms")?,
    })
}

pub(crate) fn metric(r: &AnyRow) -> Result<MetricPoint> {
    Ok(MetricPoint {
        run_idx: get::<i64>(r, "run_idx")? as u32,
        step: get(r, "step")?,
        name: get(r, "name")?,
        value: get(r, "value")?,
        at_ms: get(r, "at_ms")?,
    })
}
