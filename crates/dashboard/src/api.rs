//! The JSON API the page reads, and the event stream that tells it when to read again.

use crate::model;
use crate::snapshot::Snapshot;
use crate::{Dashboard, Inner};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use postdoc_core::{Edit, Noise, Tally, Transcript, TrialNo};
use postdoc_store::StoreError;
use postdoc_study::{StudyError, Summary, TRANSCRIPT_EVENT};
use serde::Deserialize;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// How often the stream looks for new events.
const POLL: Duration = Duration::from_millis(500);
/// The longest note or rejection reason accepted.
const MAX_NOTE_CHARS: usize = 4000;

pub(crate) enum ApiError {
    Store(StoreError),
    Study(StudyError),
    BadRequest(String),
    NotFound(String),
    /// A request body that is not the JSON the route takes (its status says how).
    Body(StatusCode, String),
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        ApiError::Body(r.status(), r.body_text())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::Store(e)
    }
}

impl From<StudyError> for ApiError {
    fn from(e: StudyError) -> ApiError {
        ApiError::Study(e)
    }
}

impl ApiError {
    pub(crate) fn message(&self) -> String {
        match self {
            ApiError::Store(e) => e.to_string(),
            ApiError::Study(e) => e.to_string(),
            ApiError::BadRequest(m) | ApiError::NotFound(m) | ApiError::Body(_, m) => m.clone(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Store(StoreError::NoTrial(..)) | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Store(StoreError::WrongStatus { .. }) => StatusCode::CONFLICT,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Body(status, _) => *status,
            ApiError::Store(_) | ApiError::Study(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = (self.status(), self.message());
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::warn!("dashboard: {message}");
        }
        (status, Json(json!({ "error": message }))).into_response()
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

pub(crate) async fn not_found() -> ApiError {
    ApiError::NotFound("no such page or API route".into())
}

/// Examples shown of each failure label.
const FAILURE_EXAMPLES: usize = 3;
/// Points of the progress curves sent at most (about): enough for any chart.
const PROGRESS_POINTS: usize = 2000;
/// Trials the overview lists as the latest.
const LATEST: usize = 12;

/// The study at a glance: the summary, its progress curves, what was kept and with what
/// noise, and examples of each failure.
pub(crate) async fn overview_data(d: &Inner, snapshot: &Snapshot) -> Result<Value, ApiError> {
    let nodes = &snapshot.nodes;
    let summary = Summary::read_with(&d.store, &d.study, &d.manifest, Tally::of_nodes(nodes)).await?;
    // The papers behind each change, through the technique cards it cites (one query for all).
    let mut cited: std::collections::HashMap<TrialNo, Vec<Value>> = std::collections::HashMap::new();
    for (trial, c, title) in d.store.cited_cards(d.study.id).await? {
        cited
            .entry(trial)
            .or_default()
            .push(json!({"id": c.paper, "title": title, "card": c.id, "technique": c.technique}));
    }
    let mut kept: Vec<Value> = Vec::new();
    for t in d.store.kept_trials(d.study.id).await? {
        // Nodes come in number order.
        let parent = t.parent.and_then(|p| nodes.binary_search_by_key(&p, |n| n.number).ok());
        let parent = parent.and_then(|i| nodes[i].score);
        let papers = cited.remove(&t.number).unwrap_or_default();
        kept.push(json!({
            "number": t.number, "parent": t.parent, "specialist": t.specialist, "hypothesis": t.hypothesis,
            "score": t.score, "runs": t.runs,
            // The trial's own run-to-run spread, beside the study's pooled noise.
            "spread": (t.run_scores.len() > 1).then(|| Noise::pooled([t.run_scores.as_slice()]).sigma),
            "delta": t.score.zip(parent).map(|(s, p)| s - p), "finished_ms": t.finished_ms,
            "papers": papers,
        }));
    }
    let mut failures = serde_json::Map::new();
    for label in summary.labels.keys().filter(|l| l.is_failure()) {
        let examples = d.store.latest_with_label(d.study.id, *label, FAILURE_EXAMPLES).await?;
        let examples: Vec<Value> = examples
            .iter()
            .map(|t| json!({"number": t.number, "specialist": t.specialist, "hypothesis": t.hypothesis, "reason": t.reason}))
            .collect();
        failures.insert(label.to_string(), Value::Array(examples));
    }
    Ok(json!({
        "study": d.study.name,
        "objective": d.manifest.study.objective,
        "summary": summary,
        "progress": model::thin(model::progress(nodes), PROGRESS_POINTS),
        "latest": model::latest(nodes, LATEST),
        "kept": kept,
        "failures": failures,
        "updated": snapshot.event_id,
    }))
}

/// An answer computed once per snapshot of the study, then served as the same bytes.
async fn once_per_change<F>(
    d: Dashboard,
    cell: impl FnOnce(&Snapshot) -> &OnceCell<Bytes>,
    compute: impl FnOnce(Arc<Inner>, Arc<Snapshot>) -> F,
) -> Result<Response, ApiError>
where
    F: Future<Output = Result<Value, ApiError>>,
{
    let bytes = answer(&d.inner, cell, compute).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

async fn answer<F>(
    inner: &Arc<Inner>,
    cell: impl FnOnce(&Snapshot) -> &OnceCell<Bytes>,
    compute: impl FnOnce(Arc<Inner>, Arc<Snapshot>) -> F,
) -> Result<Bytes, ApiError>
where
    F: Future<Output = Result<Value, ApiError>>,
{
    let snapshot = inner.snapshots.current(&inner.store, inner.study.id).await?;
    let bytes = cell(&snapshot)
        .get_or_try_init(|| async {
            let value = compute(inner.clone(), snapshot.clone()).await?;
            Ok::<_, ApiError>(Bytes::from(serde_json::to_vec(&value).expect("JSON values serialize")))
        })
        .await?
        .clone();
    Ok(bytes)
}

/// Reads the whole study and computes the overview, so the first page opened is served at once.
pub(crate) async fn warm(inner: &Arc<Inner>) -> Result<(), ApiError> {
    answer(inner, |s| &s.overview, |d, s| async move { overview_data(&d, &s).await }).await.map(drop)
}

pub(crate) async fn overview(State(d): State<Dashboard>) -> Result<Response, ApiError> {
    once_per_change(d, |s| &s.overview, |d, s| async move { overview_data(&d, &s).await }).await
}

/// Every trial as a node of the lineage tree, with the path to the best.
pub(crate) fn trials_data(d: &Inner, snapshot: &Snapshot) -> Value {
    let nodes = &snapshot.nodes;
    let best = model::best(nodes).map(|b| b.number);
    let path = best.map(|b| model::path_to(nodes, b)).unwrap_or_default();
    json!({
        "objective": d.manifest.study.objective,
        "tree": model::tree(nodes),
        "best": best,
        "path_to_best": path,
    })
}

pub(crate) async fn trials(State(d): State<Dashboard>) -> Result<Response, ApiError> {
    once_per_change(d, |s| &s.trials, |d, s| async move { Ok(trials_data(&d, &s)) }).await
}

/// One trial: the record, its runs and metric curves, its events, and the agent's transcript.
pub(crate) async fn trial_data(d: &Inner, number: TrialNo) -> Result<Value, ApiError> {
    let t = d.store.trial(&d.study, number).await?;
    let runs = d.store.runs(d.study.id, number).await?;
    let metrics = d.store.metrics(d.study.id, number).await?;
    let data = d.store.dataset_uses(d.study.id, Some(number)).await?;
    let mut cites: Vec<Value> = Vec::new();
    for c in d.store.cards_of_trial(d.study.id, number).await? {
        let title = d.store.paper(&c.paper).await?.map(|p| p.title).unwrap_or_default();
        cites.push(json!({"card": c, "title": title}));
    }
    let mut events = d.store.events(d.study.id, Some(number)).await?;
    let transcript = events
        .iter()
        .rev()
        .find(|e| e.kind == TRANSCRIPT_EVENT)
        .and_then(|e| serde_json::from_value::<Transcript>(e.payload.clone()).ok());
    // The transcript is sent once, on its own; the event stays in the list as a marker.
    for e in events.iter_mut().filter(|e| e.kind == TRANSCRIPT_EVENT) {
        e.payload = Value::Null;
    }
    let parent = match t.parent {
        Some(p) => Some(d.store.trial(&d.study, p).await?),
        None => None,
    };
    let knobs_of = |edit: &Edit| match edit {
        Edit::Knobs { values } => Some(values.clone()),
        _ => None,
    };
    // What the change did, against the trial it was built on.
    let parent_score = parent.as_ref().and_then(|p| p.score);
    Ok(json!({
        "objective": d.manifest.study.objective,
        "knobs": knobs_of(&t.edit),
        "parent_knobs": parent.as_ref().and_then(|p| knobs_of(&p.edit)),
        "parent_score": parent_score,
        "measured_delta": t.score.zip(parent_score).map(|(s, p)| s - p),
        "trial": t,
        "runs": runs,
        "metrics": metrics,
        "events": events,
        "transcript": transcript,
        "data": data,
        "cites": cites,
    }))
}

pub(crate) async fn trial(State(d): State<Dashboard>, Path(number): Path<TrialNo>) -> ApiResult {
    Ok(Json(trial_data(&d.inner, number).await?))
}

/// Each specialist's record: trials, keeps, waste by label, improvement per trial.
pub(crate) fn specialists_data(d: &Inner, snapshot: &Snapshot) -> Value {
    json!({ "specialists": model::specialists(&snapshot.nodes, d.manifest.study.objective.direction) })
}

pub(crate) async fn specialists(State(d): State<Dashboard>) -> Result<Response, ApiError> {
    once_per_change(d, |s| &s.specialists, |d, s| async move { Ok(specialists_data(&d, &s)) }).await
}

/// Papers shown on the page at most (the most cited by this study's trials, then the newest).
const PAPERS_SHOWN: usize = 2000;

/// The library: every paper with its technique cards, linked datasets, citation counts and the
/// trials of this study that cite its cards.
pub(crate) async fn papers_data(d: &Inner) -> Result<Value, ApiError> {
    use std::collections::{BTreeSet, HashMap};
    let papers = d.store.papers().await?;
    let mut cards: HashMap<String, Vec<postdoc_core::literature::Card>> = HashMap::new();
    for c in d.store.cards(None).await? {
        cards.entry(c.paper.clone()).or_default().push(c);
    }
    let mut citing: HashMap<String, BTreeSet<TrialNo>> = HashMap::new();
    for (trial, card, _) in d.store.cited_cards(d.study.id).await? {
        citing.entry(card.paper).or_default().insert(trial);
    }
    let counts: HashMap<String, (i64, i64)> =
        d.store.citation_counts().await?.into_iter().map(|(id, r, c)| (id, (r, c))).collect();
    // Newest first, then (stably) the papers this study's trials cite most.
    let mut shown: Vec<&postdoc_core::literature::Paper> = papers.iter().rev().collect();
    shown.sort_by_key(|p| std::cmp::Reverse(citing.get(&p.id).map_or(0, BTreeSet::len)));
    shown.truncate(PAPERS_SHOWN);
    let mut rows = Vec::with_capacity(shown.len());
    for p in shown {
        let (references, cited_by) = counts.get(&p.id).copied().unwrap_or((0, 0));
        rows.push(json!({
            "id": p.id, "title": p.title, "authors": p.authors.iter().take(6).collect::<Vec<_>>(),
            "year": p.year, "venue": p.venue, "url": p.url, "citation_count": p.citation_count,
            "abstract": p.abstract_text, "cards": cards.get(&p.id).map_or(&[][..], Vec::as_slice),
            "datasets": d.store.datasets_of_paper(&p.id).await?,
            "references": references, "cited_by": cited_by,
            "cited_in_trials": citing.get(&p.id).cloned().unwrap_or_default(),
        }));
    }
    Ok(json!({ "papers": rows, "total": papers.len() }))
}

/// Read on every request: papers join the store without any event of the study's.
pub(crate) async fn papers(State(d): State<Dashboard>) -> ApiResult {
    Ok(Json(papers_data(&d.inner).await?))
}

/// The data the study touched: each dataset version it used, with what made it and which runs.
pub(crate) async fn data_data(d: &Inner) -> Result<Value, ApiError> {
    let uses = d.store.dataset_uses(d.study.id, None).await?;
    let mut by_version: Vec<(String, Vec<&postdoc_store::DatasetUse>)> = Vec::new();
    for u in &uses {
        match by_version.iter_mut().find(|(v, _)| *v == u.version) {
            Some((_, list)) => list.push(u),
            None => by_version.push((u.version.clone(), vec![u])),
        }
    }
    let mut versions = Vec::new();
    for (version, list) in by_version {
        let lineage = d.store.dataset_lineage(&version).await?;
        let runs: Vec<Value> = list
            .iter()
            .take(50)
            .map(|u| json!({"trial": u.trial, "run": u.run_idx, "role": u.role, "path": u.path}))
            .collect();
        let roles: std::collections::BTreeSet<&str> = list.iter().map(|u| u.role.as_str()).collect();
        versions.push(json!({
            "version": version, "lineage": lineage, "roles": roles, "uses": list.len(), "runs": runs,
        }));
    }
    Ok(json!({ "versions": versions }))
}

pub(crate) async fn data(State(d): State<Dashboard>) -> Result<Response, ApiError> {
    once_per_change(d, |s| &s.data, |d, _| async move { data_data(&d).await }).await
}

/// The researcher's notes and the proposals waiting for approval (with the study's name: the
/// page's header reads this small answer on every change).
pub(crate) async fn notes_data(d: &Inner) -> Result<Value, ApiError> {
    let waiting = d.store.waiting(d.study.id).await?;
    Ok(json!({ "study": d.study.name, "notes": d.store.notes(d.study.id).await?, "waiting": waiting }))
}

pub(crate) async fn notes(State(d): State<Dashboard>) -> Result<Response, ApiError> {
    once_per_change(d, |s| &s.notes, |d, _| async move { notes_data(&d).await }).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoteBody {
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RejectBody {
    #[serde(default)]
    note: String,
}

fn checked_note(text: &str, required: bool) -> Result<&str, ApiError> {
    let text = text.trim();
    if required && text.is_empty() {
        return Err(ApiError::BadRequest("the note is empty".into()));
    }
    if text.chars().count() > MAX_NOTE_CHARS {
        return Err(ApiError::BadRequest(format!("a note may be at most {MAX_NOTE_CHARS} characters")));
    }
    Ok(text)
}

/// A note every specialist's lineage view shows from now on (as `postdoc note`).
pub(crate) async fn add_note(
    State(d): State<Dashboard>,
    body: Result<Json<NoteBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let (d, Json(body)) = (&d.inner, body?);
    let text = checked_note(&body.text, true)?;
    d.store.add_note(d.study.id, text).await?;
    Ok((StatusCode::CREATED, Json(json!({ "noted": text }))).into_response())
}

/// Lets a waiting proposal run (as `postdoc approve`).
pub(crate) async fn approve(State(d): State<Dashboard>, Path(number): Path<TrialNo>) -> ApiResult {
    let d = &d.inner;
    d.store.trial(&d.study, number).await?;
    d.store.approve(d.study.id, number).await?;
    Ok(Json(json!({ "approved": number })))
}

/// Turns a waiting proposal down (as `postdoc reject`); the note joins the lineage.
pub(crate) async fn reject(
    State(d): State<Dashboard>,
    Path(number): Path<TrialNo>,
    body: Result<Json<RejectBody>, JsonRejection>,
) -> ApiResult {
    let (d, Json(body)) = (&d.inner, body?);
    let note = checked_note(&body.note, false)?;
    d.store.trial(&d.study, number).await?;
    d.store.reject(d.study.id, number, note).await?;
    Ok(Json(json!({ "rejected": number })))
}

/// `change` events carrying the study's latest event id: one at once, then one whenever the
/// study changes. The page reloads what it shows when one arrives.
pub(crate) async fn stream(State(d): State<Dashboard>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = futures_util::stream::unfold((d, None::<i64>), |(d, last)| async move {
        loop {
            match d.inner.store.last_event_id(d.inner.study.id).await {
                Ok(id) if Some(id) != last => {
                    let event = Event::default().event("change").id(id.to_string()).data(id.to_string());
                    return Some((Ok(event), (d, Some(id))));
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("dashboard: cannot read the study's events: {e}"),
            }
            tokio::time::sleep(POLL).await;
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
