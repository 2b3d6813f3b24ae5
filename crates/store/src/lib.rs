//! The lineage store: one interface over SQLite (the embedded default) and PostgreSQL (shared by
//! several machines), chosen by URL.
//!
//! Every state change appends an event and updates the tables it projects into in one
//! transaction, so the event log and the queryable tables never disagree, and a process killed at
//! any moment leaves either the whole change or none of it.

mod datasets;
mod papers;
mod rows;
#[doc(hidden)]
pub mod testing;

use postdoc_core::{MetricPoint, Proposal, RunRecord, TrialNo, TrialNode, TrialRecord, Verdict};
use serde_json::Value;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Connection, Row, SqlSafeStr};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use datasets::{DatasetUse, DatasetVersion};
pub use postdoc_core::Tally;
pub use rows::{EventRecord, Lease, StudyRecord};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the lineage store at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("the lineage store at {url} could not be migrated: {reason}")]
    Migrate { url: String, reason: String },
    #[error("lineage store query failed ({what}): {source}")]
    Query {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("the lineage store holds malformed data ({what}): {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("no study named `{0}` in the lineage store")]
    NoStudy(String),
    #[error("no trial {1} in study `{0}`")]
    NoTrial(String, TrialNo),
    #[error("trial {trial} is not {expected}: only a proposal waiting for approval can be approved or rejected")]
    WrongStatus { trial: TrialNo, expected: String },
}

type Result<T> = std::result::Result<T, StoreError>;

/// The event holding a researcher's note.
pub const NOTE_EVENT: &str = "note";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on the lineage store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Where it is, any password hidden.
    url: String,
}

fn q(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { what, source }
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// `url` with any password replaced, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme + 3], &userinfo[..colon], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// The columns `rows::node` reads: a trial as a node of the lineage tree.
const NODE_COLUMNS: &str = "number, parent, retry_of, specialist, substr(hypothesis, 1, 120) AS hypothesis, status, \
                            label, score, train_seconds + eval_seconds AS compute_seconds, finished_ms";

fn migrator(backend: Backend) -> Migrator {
    let sql: [&'static str; 4] = match backend {
        Backend::Sqlite => [
            include_str!("../migrations/sqlite/0001_lineage.sql"),
            include_str!("../migrations/sqlite/0002_watch_indexes.sql"),
            include_str!("../migrations/sqlite/0003_datasets.sql"),
            include_str!("../migrations/sqlite/0004_papers.sql"),
        ],
        Backend::Postgres => [
            include_str!("../migrations/postgres/0001_lineage.sql"),
            include_str!("../migrations/postgres/0002_watch_indexes.sql"),
            include_str!("../migrations/postgres/0003_datasets.sql"),
            include_str!("../migrations/postgres/0004_papers.sql"),
        ],
    };
    let names = ["lineage", "watch indexes", "datasets", "papers"];
    let migrations = (1..).zip(names).zip(sql).map(|((version, name), sql)| {
        Migration::new(version, name.into(), MigrationType::Simple, sql.into_sql_str(), false)
    });
    Migrator::with_migrations(migrations.collect())
}

/// A finished candidate as the allocation of slots sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentOutcome {
    pub specialist: String,
    pub label: postdoc_core::Label,
    pub score: Option<f64>,
    /// The score of the trial it built on.
    pub parent_score: Option<f64>,
    /// The commit the trial ran, and the one of the trial it built on (`None` when it never
    /// reached a commit).
    pub commit: Option<String>,
    pub parent_commit: Option<String>,
}

impl Store {
    /// Opens (creating if needed) the store at `url`: `sqlite://PATH` or `postgres://...`; then
    /// brings its schema up to date.
    /// WAL for SQLite, then the migrations.
    async fn set_up(pool: &AnyPool, backend: Backend) -> std::result::Result<(), String> {
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL").execute(pool).await.map_err(|e| e.to_string())?;
        }
        migrator(backend).run(pool).await.map_err(|e| e.to_string())
    }

    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let shown = redact(url);
        let (backend, connect_url) = if let Some(path) = url.strip_prefix("sqlite://") {
            let file = std::path::Path::new(path.split('?').next().unwrap_or(path));
            if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| StoreError::Connect {
                    url: shown.clone(),
                    reason: format!("cannot create {}: {e}", parent.display()),
                })?;
            }
            let sep = if path.contains('?') { '&' } else { '?' };
            (Backend::Sqlite, format!("sqlite://{path}{sep}mode=rwc"))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::Connect {
                url: shown,
                reason: "the URL must start with sqlite:// or postgres://".into(),
            });
        };
        let options = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL survives a killed process with every committed transaction intact;
                        // NORMAL skips the fsync per commit that FULL would add.
                        sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                        // A small page cache per connection keeps memory flat as the lineage grows.
                        sqlx::query("PRAGMA cache_size = -512").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            });
        // One plain connection first: a refused or unknown server fails at once, where the pool
        // would retry until its acquire timeout.
        let probe = tokio::time::timeout(Duration::from_secs(15), sqlx::AnyConnection::connect(&connect_url))
            .await
            .map_err(|_| StoreError::Connect { url: shown.clone(), reason: "timed out after 15 s".into() })?
            .map_err(|e| StoreError::Connect { url: shown.clone(), reason: e.to_string() })?;
        let _ = probe.close().await;
        let pool = tokio::time::timeout(Duration::from_secs(15), options.connect(&connect_url))
            .await
            .map_err(|_| StoreError::Connect { url: shown.clone(), reason: "timed out after 15 s".into() })?
            .map_err(|e| StoreError::Connect { url: shown.clone(), reason: e.to_string() })?;
        // Two processes opening a new store at once (`postdoc run`, and `postdoc status` from
        // another terminal) race to set it up; the loser meets a locked file or tables the winner
        // has just made, and finds everything in place when it tries again.
        let mut attempt = 0;
        loop {
            match Self::set_up(&pool, backend).await {
                Ok(()) => break,
                Err(_) if attempt < 5 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                Err(reason) => return Err(StoreError::Migrate { url: shown, reason }),
            }
        }
        Ok(Store { pool, backend, url: shown })
    }

    /// A write transaction. SQLite's must take the write lock up front (`BEGIN IMMEDIATE`): a
    /// deferred one that reads and then writes fails at once with SQLITE_BUSY when another
    /// connection wrote in between, where an immediate one waits its turn.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let begin = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        };
        begin.map_err(q("begin"))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The store's URL, any password hidden.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---- studies ----

    pub async fn find_study(&self, name: &str) -> Result<Option<StudyRecord>> {
        let row = sqlx::query("SELECT * FROM studies WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("find study"))?;
        row.map(|r| rows::study(&r)).transpose()
    }

    pub async fn study(&self, name: &str) -> Result<StudyRecord> {
        self.find_study(name).await?.ok_or_else(|| StoreError::NoStudy(name.to_string()))
    }

    pub async fn studies(&self) -> Result<Vec<StudyRecord>> {
        let rows =
            sqlx::query("SELECT * FROM studies ORDER BY id").fetch_all(&self.pool).await.map_err(q("list studies"))?;
        rows.iter().map(rows::study).collect()
    }

    pub async fn create_study(&self, study: &StudyRecord) -> Result<StudyRecord> {
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO studies (name, recipe, base_commit, manifest, comparability, protected_hash, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(&study.name)
        .bind(&study.recipe)
        .bind(&study.base_commit)
        .bind(&study.manifest)
        .bind(&study.comparability)
        .bind(&study.protected_hash)
        .bind(study.created_ms)
        .fetch_one(&mut *tx)
        .await
        .map_err(q("create study"))?
        .try_get(0)
        .map_err(q("create study"))?;
        let event = serde_json::json!({"name": study.name, "recipe": study.recipe, "base_commit": study.base_commit});
        append(&mut tx, id, None, "study_created", &event).await?;
        tx.commit().await.map_err(q("commit"))?;
        Ok(StudyRecord { id, ..study.clone() })
    }

    /// Moves a study that has no usable baseline yet onto a new starting commit (the researcher
    /// fixed the recipe after its baseline failed).
    pub async fn rebase_study(&self, study: &StudyRecord) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE studies SET base_commit = $1, manifest = $2, comparability = $3, protected_hash = $4 WHERE id = $5",
        )
        .bind(&study.base_commit)
        .bind(&study.manifest)
        .bind(&study.comparability)
        .bind(&study.protected_hash)
        .bind(study.id)
        .execute(&mut *tx)
        .await
        .map_err(q("rebase study"))?;
        let event = serde_json::json!({"base_commit": study.base_commit, "protected_hash": study.protected_hash});
        append(&mut tx, study.id, None, "rebased", &event).await?;
        tx.commit().await.map_err(q("commit"))
    }

    // ---- leases ----

    pub async fn lease(&self, study: i64) -> Result<Option<Lease>> {
        let row = sqlx::query("SELECT owner, host, pid, heartbeat_ms FROM leases WHERE study_id = $1")
            .bind(study)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read lease"))?;
        row.map(|r| rows::lease(&r)).transpose()
    }

    /// Takes the study's lease if nobody holds it, or if it is still held as `previous` (the
    /// caller has decided that holder is gone). Returns whether it was taken; atomic on both
    /// backends.
    pub async fn take_lease(&self, study: i64, me: &Lease, previous: Option<&Lease>) -> Result<bool> {
        let taken = match previous {
            None => sqlx::query(
                "INSERT INTO leases (study_id, owner, host, pid, heartbeat_ms) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (study_id) DO NOTHING",
            )
            .bind(study)
            .bind(&me.owner)
            .bind(&me.host)
            .bind(me.pid)
            .bind(me.heartbeat_ms)
            .execute(&self.pool)
            .await
            .map_err(q("take lease"))?
            .rows_affected(),
            Some(old) => sqlx::query(
                "UPDATE leases SET owner = $1, host = $2, pid = $3, heartbeat_ms = $4
                 WHERE study_id = $5 AND owner = $6 AND heartbeat_ms = $7",
            )
            .bind(&me.owner)
            .bind(&me.host)
            .bind(me.pid)
            .bind(me.heartbeat_ms)
            .bind(study)
            .bind(&old.owner)
            .bind(old.heartbeat_ms)
            .execute(&self.pool)
            .await
            .map_err(q("take over lease"))?
            .rows_affected(),
        };
        Ok(taken == 1)
    }

    /// Renews the lease; false if someone else holds it now.
    pub async fn heartbeat(&self, study: i64, owner: &str) -> Result<bool> {
        let n = sqlx::query("UPDATE leases SET heartbeat_ms = $1 WHERE study_id = $2 AND owner = $3")
            .bind(now_ms())
            .bind(study)
            .bind(owner)
            .execute(&self.pool)
            .await
            .map_err(q("heartbeat"))?
            .rows_affected();
        Ok(n == 1)
    }

    pub async fn release_lease(&self, study: i64, owner: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE study_id = $1 AND owner = $2")
            .bind(study)
            .bind(owner)
            .execute(&self.pool)
            .await
            .map_err(q("release lease"))?;
        Ok(())
    }

    // ---- events ----

    /// Records an event that changes no table (a session starting, setup finishing, ...).
    pub async fn record_event(&self, study: i64, trial: Option<TrialNo>, kind: &str, payload: &Value) -> Result<()> {
        let mut tx = self.begin().await?;
        append(&mut tx, study, trial, kind, payload).await?;
        tx.commit().await.map_err(q("commit"))
    }

    pub async fn events(&self, study: i64, trial: Option<TrialNo>) -> Result<Vec<EventRecord>> {
        let rows =
            match trial {
                Some(t) => sqlx::query(
                    "SELECT id, trial, kind, payload, at_ms FROM events WHERE study_id = $1 AND trial = $2 ORDER BY id",
                )
                .bind(study)
                .bind(t as i64)
                .fetch_all(&self.pool)
                .await,
                None => {
                    sqlx::query("SELECT id, trial, kind, payload, at_ms FROM events WHERE study_id = $1 ORDER BY id")
                        .bind(study)
                        .fetch_all(&self.pool)
                        .await
                }
            }
            .map_err(q("read events"))?;
        rows.iter().map(rows::event).collect()
    }

    /// The study's events of one kind, oldest first.
    pub async fn events_of_kind(&self, study: i64, kind: &str) -> Result<Vec<EventRecord>> {
        let rows = sqlx::query(
            "SELECT id, trial, kind, payload, at_ms FROM events WHERE study_id = $1 AND kind = $2 ORDER BY id",
        )
        .bind(study)
        .bind(kind)
        .fetch_all(&self.pool)
        .await
        .map_err(q("read events"))?;
        rows.iter().map(rows::event).collect()
    }

    // ---- trials ----

    /// Records a proposal as a new trial and returns its number: 0 for a study's first trial,
    /// then counting up.
    pub async fn propose(
        &self,
        study: i64,
        proposal: &Proposal,
        parent: Option<TrialNo>,
        retry_of: Option<TrialNo>,
    ) -> Result<TrialNo> {
        let mut tx = self.begin().await?;
        let next: i64 = sqlx::query("SELECT COALESCE(MAX(number) + 1, 0) FROM trials WHERE study_id = $1")
            .bind(study)
            .fetch_one(&mut *tx)
            .await
            .map_err(q("next trial number"))?
            .try_get(0)
            .map_err(q("next trial number"))?;
        let edit = serde_json::to_string(&proposal.edit).expect("edits serialize");
        sqlx::query(
            "INSERT INTO trials (study_id, number, parent, retry_of, specialist, hypothesis, expected_delta, edit, status, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'proposed', $9)",
        )
        .bind(study)
        .bind(next)
        .bind(parent.map(|p| p as i64))
        .bind(retry_of.map(|p| p as i64))
        .bind(&proposal.specialist)
        .bind(&proposal.hypothesis)
        .bind(proposal.expected_delta)
        .bind(&edit)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(q("insert trial"))?;
        // The cards the hypothesis rests on (the proposal's event holds them too).
        for card in &proposal.cites {
            sqlx::query(
                "INSERT INTO trial_cards (study_id, trial, card) VALUES ($1, $2, $3) ON CONFLICT (study_id, trial, card) DO NOTHING",
            )
            .bind(study)
            .bind(next)
            .bind(*card)
            .execute(&mut *tx)
            .await
            .map_err(q("cite card"))?;
        }
        let payload = serde_json::json!({"proposal": proposal, "parent": parent, "retry_of": retry_of});
        append(&mut tx, study, Some(next as TrialNo), "proposed", &payload).await?;
        tx.commit().await.map_err(q("commit"))?;
        Ok(next as TrialNo)
    }

    /// The trial's commit exists and its runs begin.
    pub async fn start(&self, study: i64, trial: TrialNo, commit: &str, patch: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE trials SET status = 'running', commit_sha = $1, patch = $2, started_ms = $3 WHERE study_id = $4 AND number = $5")
            .bind(commit)
            .bind(patch)
            .bind(now_ms())
            .bind(study)
            .bind(trial as i64)
            .execute(&mut *tx)
            .await
            .map_err(q("start trial"))?;
        append(&mut tx, study, Some(trial), "started", &serde_json::json!({"commit": commit})).await?;
        tx.commit().await.map_err(q("commit"))
    }

    /// Records a finished run and refreshes the trial's aggregates (mean scores, costs).
    pub async fn record_run(&self, study: i64, trial: TrialNo, run: &RunRecord) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO runs (study_id, trial, idx, purpose, seed, exit_code, signal, timed_out, train_seconds, eval_seconds,
                cpu_seconds, peak_rss_bytes, artifact_bytes, score, scores, findings, log_tail, eval_log_tail, started_ms, finished_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
        )
        .bind(study)
        .bind(trial as i64)
        .bind(run.idx as i64)
        .bind(run.purpose.as_str())
        .bind(run.seed as i64)
        .bind(run.exit_code.map(i64::from))
        .bind(run.signal.map(i64::from))
        .bind(i64::from(run.timed_out))
        .bind(run.train_seconds)
        .bind(run.eval_seconds)
        .bind(run.cpu_seconds)
        .bind(run.peak_rss_bytes.map(|b| b as i64))
        .bind(run.artifact_bytes.map(|b| b as i64))
        .bind(run.score)
        .bind(serde_json::to_string(&run.scores).expect("scores serialize"))
        .bind(serde_json::to_string(&run.findings).expect("findings serialize"))
        .bind(&run.log_tail)
        .bind(&run.eval_log_tail)
        .bind(run.started_ms)
        .bind(run.finished_ms)
        .execute(&mut *tx)
        .await
        .map_err(q("insert run"))?;
        let runs = runs_in(&mut tx, study, trial).await?;
        let agg = Aggregate::of(&runs);
        sqlx::query(
            "UPDATE trials SET score = $1, scores = $2, runs = $3, run_scores = $4, train_seconds = $5, eval_seconds = $6,
                peak_rss_bytes = $7, artifact_bytes = $8 WHERE study_id = $9 AND number = $10",
        )
        .bind(agg.score)
        .bind(serde_json::to_string(&agg.scores).expect("scores serialize"))
        .bind(agg.run_scores.len() as i64)
        .bind(serde_json::to_string(&agg.run_scores).expect("scores serialize"))
        .bind(agg.train_seconds)
        .bind(agg.eval_seconds)
        .bind(agg.peak_rss_bytes.map(|b| b as i64))
        .bind(agg.artifact_bytes.map(|b| b as i64))
        .bind(study)
        .bind(trial as i64)
        .execute(&mut *tx)
        .await
        .map_err(q("update trial aggregates"))?;
        let payload = serde_json::json!({
            "idx": run.idx, "purpose": run.purpose, "seed": run.seed, "score": run.score,
            "findings": run.findings, "train_seconds": run.train_seconds, "eval_seconds": run.eval_seconds,
        });
        append(&mut tx, study, Some(trial), "run_finished", &payload).await?;
        tx.commit().await.map_err(q("commit"))
    }

    /// Appends live metric points (not events: curves are append-only data of their own).
    pub async fn record_metrics(&self, study: i64, trial: TrialNo, points: &[MetricPoint]) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for p in points {
            sqlx::query("INSERT INTO metrics (study_id, trial, run_idx, step, name, value, at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(study)
                .bind(trial as i64)
                .bind(p.run_idx as i64)
                .bind(p.step)
                .bind(&p.name)
                .bind(p.value)
                .bind(p.at_ms)
                .execute(&mut *tx)
                .await
                .map_err(q("insert metric"))?;
        }
        tx.commit().await.map_err(q("commit"))
    }

    /// Gives the trial its label; the one transition to `finished`.
    pub async fn finish(&self, study: i64, trial: TrialNo, verdict: &Verdict) -> Result<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE trials SET status = 'finished', label = $1, reason = $2, log_excerpt = $3, finished_ms = $4
             WHERE study_id = $5 AND number = $6 AND status <> 'finished'",
        )
        .bind(verdict.label.as_str())
        .bind(&verdict.reason)
        .bind(verdict.excerpt.as_deref())
        .bind(now_ms())
        .bind(study)
        .bind(trial as i64)
        .execute(&mut *tx)
        .await
        .map_err(q("finish trial"))?
        .rows_affected();
        if done != 1 {
            return Err(StoreError::Corrupt {
                what: "finish trial",
                detail: format!("trial {trial} is missing or already finished"),
            });
        }
        append(&mut tx, study, Some(trial), "finished", &serde_json::to_value(verdict).expect("verdicts serialize"))
            .await?;
        tx.commit().await.map_err(q("commit"))
    }

    pub async fn trials(&self, study: i64) -> Result<Vec<TrialRecord>> {
        let rows = sqlx::query("SELECT * FROM trials WHERE study_id = $1 ORDER BY number")
            .bind(study)
            .fetch_all(&self.pool)
            .await
            .map_err(q("list trials"))?;
        rows.iter().map(rows::trial).collect()
    }

    /// Every trial of the study as a node of its lineage tree, in number order: the columns a
    /// tree and its curves need and the first 120 characters of the hypothesis, nothing more.
    pub async fn trial_nodes(&self, study: i64) -> Result<Vec<TrialNode>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {NODE_COLUMNS} FROM trials WHERE study_id = $1 ORDER BY number"
        )))
        .bind(study)
        .fetch_all(&self.pool)
        .await
        .map_err(q("list trial nodes"))?;
        rows.iter().map(rows::node).collect()
    }

    /// The trials that events after `after` (an event id) touched, in number order: what a
    /// watcher holding every node up to that event must read again.
    pub async fn trial_nodes_touched_since(&self, study: i64, after: i64) -> Result<Vec<TrialNode>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {NODE_COLUMNS} FROM trials WHERE study_id = $1 AND number IN
                (SELECT trial FROM events WHERE study_id = $1 AND id > $2 AND trial IS NOT NULL)
             ORDER BY number"
        )))
        .bind(study)
        .bind(after)
        .fetch_all(&self.pool)
        .await
        .map_err(q("list touched trial nodes"))?;
        rows.iter().map(rows::node).collect()
    }

    /// The id of the study's latest event (0 before any): it grows with every change, so a
    /// watcher polls this one number to learn that something happened.
    pub async fn last_event_id(&self, study: i64) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM events WHERE study_id = $1")
            .bind(study)
            .fetch_one(&self.pool)
            .await
            .map_err(q("last event id"))?;
        row.try_get(0).map_err(q("last event id"))
    }

    /// Figures over all of a study's trials, computed in the database so a long study costs a
    /// scheduling pass no more than a short one.
    pub async fn tally(&self, study: i64) -> Result<Tally> {
        // One pass, over an index that covers it.
        let rows = sqlx::query(
            "SELECT specialist, label, COUNT(*) AS n, COUNT(CASE WHEN retry_of IS NULL THEN 1 END) AS first,
                    COALESCE(SUM(train_seconds + eval_seconds), 0.0) AS compute_seconds
             FROM trials WHERE study_id = $1 GROUP BY specialist, label",
        )
        .bind(study)
        .fetch_all(&self.pool)
        .await
        .map_err(q("tally trials"))?;
        let mut tally = Tally::default();
        for r in rows {
            let specialist: String = r.try_get("specialist").map_err(q("tally trials"))?;
            let label: Option<String> = r.try_get("label").map_err(q("tally trials"))?;
            let n: i64 = r.try_get("n").map_err(q("tally trials"))?;
            let first: i64 = r.try_get("first").map_err(q("tally trials"))?;
            let compute_seconds: f64 = r.try_get("compute_seconds").map_err(q("tally trials"))?;
            let label = match label {
                Some(l) => Some(
                    l.parse::<postdoc_core::Label>()
                        .map_err(|detail| StoreError::Corrupt { what: "trial label", detail })?,
                ),
                None => None,
            };
            tally.add(&specialist, label, n as u64, first as u64, compute_seconds);
        }
        Ok(tally)
    }

    /// Labels of the finished trials built on `parent` (infrastructure faults left out).
    pub async fn children_labels(&self, study: i64, parent: TrialNo) -> Result<BTreeMap<postdoc_core::Label, usize>> {
        let rows = sqlx::query(
            "SELECT label, COUNT(*) FROM trials WHERE study_id = $1 AND parent = $2 AND label IS NOT NULL
               AND label <> 'harness_abort' GROUP BY label",
        )
        .bind(study)
        .bind(parent as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(q("count children"))?;
        let mut counts = BTreeMap::new();
        for r in rows {
            let label: String = r.try_get(0).map_err(q("count children"))?;
            let n: i64 = r.try_get(1).map_err(q("count children"))?;
            let label = label.parse().map_err(|detail| StoreError::Corrupt { what: "trial label", detail })?;
            counts.insert(label, n as usize);
        }
        Ok(counts)
    }

    /// Trials running now.
    pub async fn running(&self, study: i64) -> Result<Vec<TrialRecord>> {
        self.trials_where(study, "status = 'running'", None).await
    }

    /// Proposals waiting for the researcher's approval, oldest first.
    pub async fn waiting(&self, study: i64) -> Result<Vec<TrialRecord>> {
        self.trials_where(study, "status = 'waiting'", None).await
    }

    /// Holds a proposed trial until the researcher approves or rejects it.
    pub async fn hold(&self, study: i64, trial: TrialNo) -> Result<()> {
        self.move_status(study, trial, "proposed", "waiting", "awaiting_approval", &Value::Null).await
    }

    /// Lets a waiting trial run.
    pub async fn approve(&self, study: i64, trial: TrialNo) -> Result<()> {
        self.move_status(study, trial, "waiting", "proposed", "approved", &Value::Null).await
    }

    /// Turns a waiting trial down: it ends `discard` without running, and the researcher's note
    /// joins the lineage every specialist reads.
    pub async fn reject(&self, study: i64, trial: TrialNo, note: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        let reason = if note.trim().is_empty() {
            "rejected by the researcher".to_string()
        } else {
            format!("rejected by the researcher: {}", note.trim())
        };
        let done = sqlx::query(
            "UPDATE trials SET status = 'finished', label = 'discard', reason = $1, finished_ms = $2
             WHERE study_id = $3 AND number = $4 AND status = 'waiting'",
        )
        .bind(&reason)
        .bind(now_ms())
        .bind(study)
        .bind(trial as i64)
        .execute(&mut *tx)
        .await
        .map_err(q("reject trial"))?
        .rows_affected();
        if done != 1 {
            return Err(StoreError::WrongStatus { trial, expected: "waiting".into() });
        }
        let verdict = postdoc_core::Verdict { label: postdoc_core::Label::Discard, reason, excerpt: None };
        append(&mut tx, study, Some(trial), "finished", &serde_json::to_value(verdict).expect("verdicts serialize"))
            .await?;
        if !note.trim().is_empty() {
            append(&mut tx, study, Some(trial), NOTE_EVENT, &serde_json::json!({"text": note.trim()})).await?;
        }
        tx.commit().await.map_err(q("commit"))
    }

    /// A researcher's note for every specialist's lineage view from now on.
    pub async fn add_note(&self, study: i64, text: &str) -> Result<()> {
        self.record_event(study, None, NOTE_EVENT, &serde_json::json!({"text": text.trim()})).await
    }

    /// The researcher's notes, oldest first.
    pub async fn notes(&self, study: i64) -> Result<Vec<postdoc_core::lineage::ResearcherNote>> {
        let events = self.events_of_kind(study, NOTE_EVENT).await?;
        Ok(events
            .into_iter()
            .filter_map(|e| {
                let text = e.payload.get("text")?.as_str()?.to_string();
                Some(postdoc_core::lineage::ResearcherNote { trial: e.trial, text })
            })
            .collect())
    }

    /// Moves `trial` from status `from` to `to` with an event, refusing any other status.
    async fn move_status(
        &self,
        study: i64,
        trial: TrialNo,
        from: &str,
        to: &str,
        event: &str,
        payload: &Value,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let moved = sqlx::query("UPDATE trials SET status = $1 WHERE study_id = $2 AND number = $3 AND status = $4")
            .bind(to)
            .bind(study)
            .bind(trial as i64)
            .bind(from)
            .execute(&mut *tx)
            .await
            .map_err(q("change trial status"))?
            .rows_affected();
        if moved != 1 {
            return Err(StoreError::WrongStatus { trial, expected: from.to_string() });
        }
        append(&mut tx, study, Some(trial), event, payload).await?;
        tx.commit().await.map_err(q("commit"))
    }

    /// The events that open and close sessions, in order.
    pub async fn session_events(&self, study: i64) -> Result<Vec<EventRecord>> {
        let rows = sqlx::query(
            "SELECT id, trial, kind, payload, at_ms FROM events
             WHERE study_id = $1 AND kind IN ('session_started', 'session_ended') ORDER BY +id",
        )
        .bind(study)
        .fetch_all(&self.pool)
        .await
        .map_err(q("read session events"))?;
        rows.iter().map(rows::event).collect()
    }

    /// When the last event with an id in `[from, until)` happened. Events are written in time
    /// order, so the last is the one with the highest id: one step down the `(study, id)` index
    /// rather than a scan of a session that may hold a whole study.
    pub async fn last_event_ms(&self, study: i64, from: i64, until: Option<i64>) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT at_ms FROM events WHERE study_id = $1 AND id >= $2 AND id < $3 ORDER BY id DESC LIMIT 1",
        )
        .bind(study)
        .bind(from)
        .bind(until.unwrap_or(i64::MAX))
        .fetch_optional(&self.pool)
        .await
        .map_err(q("last event"))?;
        row.map(|r| r.try_get(0)).transpose().map_err(q("last event"))
    }

    /// Trials waiting to run, oldest first.
    pub async fn queued(&self, study: i64) -> Result<Vec<TrialNo>> {
        let rows =
            sqlx::query("SELECT number FROM trials WHERE study_id = $1 AND status = 'proposed' ORDER BY +number")
                .bind(study)
                .fetch_all(&self.pool)
                .await
                .map_err(q("queued trials"))?;
        rows.iter().map(|r| r.try_get::<i64, _>(0).map(|n| n as TrialNo).map_err(q("queued trials"))).collect()
    }

    /// Runs of the unmodified recipe, oldest first.
    pub async fn baselines(&self, study: i64) -> Result<Vec<TrialRecord>> {
        self.trials_where(study, "specialist = 'baseline'", None).await
    }

    /// The part of the lineage a lineage view shows: kept trials, the baselines, trials built on
    /// the current best, the latest trials, and `specialist`'s latest finished ones. Bounded by
    /// what is kept, not by the study's length.
    pub async fn lineage_trials(
        &self,
        study: i64,
        specialist: Option<&str>,
        recent: usize,
    ) -> Result<Vec<TrialRecord>> {
        let mut trials = self.trials_where(study, "(label = 'keep' OR specialist = 'baseline')", None).await?;
        if let Some(best) = postdoc_core::lineage::current_best(&trials).map(|b| b.number) {
            let children = format!(
                "parent = {best} AND (label IS NULL OR label <> 'harness_abort') ORDER BY number DESC LIMIT {}",
                postdoc_core::lineage::CHILDREN_SHOWN
            );
            trials.extend(self.trials_where(study, &children, None).await?);
        }
        let latest =
            format!("1 = 1 ORDER BY COALESCE(finished_ms, 9223372036854775807) DESC, number DESC LIMIT {recent}");
        trials.extend(self.trials_where(study, &latest, None).await?);
        if let Some(name) = specialist {
            let mine = format!(
                "specialist = $2 AND status = 'finished' AND label <> 'harness_abort' ORDER BY finished_ms DESC, number DESC LIMIT {}",
                postdoc_core::lineage::SATURATION_WINDOW
            );
            trials.extend(self.trials_where(study, &mine, Some(name)).await?);
        }
        trials.sort_by_key(|t| t.number);
        trials.dedup_by_key(|t| t.number);
        Ok(trials)
    }

    /// The study's latest `limit` finished trials, the baselines among them (infrastructure
    /// faults left out), oldest first: what a search strategy learns from, each specialist
    /// through its own knobs.
    pub async fn finished_trials(&self, study: i64, limit: usize) -> Result<Vec<TrialRecord>> {
        let finished = format!("status = 'finished' AND label <> 'harness_abort' ORDER BY number DESC LIMIT {limit}");
        let mut trials = self.trials_where(study, &finished, None).await?;
        trials.reverse();
        Ok(trials)
    }

    /// The latest `limit` finished candidates (not the baseline, not infrastructure faults),
    /// newest first, each with the score of the trial it built on: each specialist's recent
    /// record, and how far its moves took the recipe.
    pub async fn recent_outcomes(&self, study: i64, limit: usize) -> Result<Vec<RecentOutcome>> {
        let sql = format!(
            "SELECT t.specialist, t.label, t.score, p.score AS parent_score, t.commit_sha, \
             p.commit_sha AS parent_commit FROM trials t \
             LEFT JOIN trials p ON p.study_id = t.study_id AND p.number = t.parent \
             WHERE t.study_id = $1 AND t.status = 'finished' AND t.specialist <> 'baseline' \
             AND t.label <> 'harness_abort' ORDER BY t.number DESC LIMIT {limit}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(study)
            .fetch_all(&self.pool)
            .await
            .map_err(q("list recent outcomes"))?;
        rows.iter()
            .map(|r| {
                let label: String = rows::get(r, "label")?;
                Ok(RecentOutcome {
                    specialist: rows::get(r, "specialist")?,
                    label: label.parse().map_err(|detail| StoreError::Corrupt { what: "trial label", detail })?,
                    score: rows::get(r, "score")?,
                    parent_score: rows::get(r, "parent_score")?,
                    commit: rows::get(r, "commit_sha")?,
                    parent_commit: rows::get(r, "parent_commit")?,
                })
            })
            .collect()
    }

    async fn trials_where(&self, study: i64, condition: &str, text: Option<&str>) -> Result<Vec<TrialRecord>> {
        let ordered = condition.contains("ORDER BY");
        // `+number` (and `+id` for events): without statistics SQLite would walk the whole
        // study in order through the primary key rather than use the condition's index and
        // sort the few rows it selects; the `+` keeps the order from choosing the index.
        let sql = format!(
            "SELECT * FROM trials WHERE study_id = $1 AND {condition}{}",
            if ordered { "" } else { " ORDER BY +number" }
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(study);
        if let Some(t) = text {
            query = query.bind(t);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(q("select trials"))?;
        rows.iter().map(rows::trial).collect()
    }

    /// The latest `limit` trials labelled `label`, newest first: examples of one kind of outcome.
    pub async fn latest_with_label(
        &self,
        study: i64,
        label: postdoc_core::Label,
        limit: usize,
    ) -> Result<Vec<TrialRecord>> {
        let condition = format!("label = $2 ORDER BY number DESC LIMIT {limit}");
        self.trials_where(study, &condition, Some(label.as_str())).await
    }

    /// The trials labelled `keep` (the baseline among them): what candidates are judged against.
    pub async fn kept_trials(&self, study: i64) -> Result<Vec<TrialRecord>> {
        let rows = sqlx::query("SELECT * FROM trials WHERE study_id = $1 AND label = 'keep' ORDER BY number")
            .bind(study)
            .fetch_all(&self.pool)
            .await
            .map_err(q("list kept trials"))?;
        rows.iter().map(rows::trial).collect()
    }

    pub async fn trial(&self, study: &StudyRecord, number: TrialNo) -> Result<TrialRecord> {
        let row = sqlx::query("SELECT * FROM trials WHERE study_id = $1 AND number = $2")
            .bind(study.id)
            .bind(number as i64)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read trial"))?;
        match row {
            Some(r) => rows::trial(&r),
            None => Err(StoreError::NoTrial(study.name.clone(), number)),
        }
    }

    pub async fn runs(&self, study: i64, trial: TrialNo) -> Result<Vec<RunRecord>> {
        let mut conn = self.pool.acquire().await.map_err(q("acquire"))?;
        runs_in(&mut conn, study, trial).await
    }

    pub async fn metrics(&self, study: i64, trial: TrialNo) -> Result<Vec<MetricPoint>> {
        let rows = sqlx::query("SELECT run_idx, step, name, value, at_ms FROM metrics WHERE study_id = $1 AND trial = $2 ORDER BY at_ms, step")
            .bind(study)
            .bind(trial as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(q("read metrics"))?;
        rows.iter().map(rows::metric).collect()
    }
}

async fn append(
    conn: &mut sqlx::AnyConnection,
    study: i64,
    trial: Option<TrialNo>,
    kind: &str,
    payload: &Value,
) -> Result<()> {
    sqlx::query("INSERT INTO events (study_id, trial, kind, payload, at_ms) VALUES ($1, $2, $3, $4, $5)")
        .bind(study)
        .bind(trial.map(|t| t as i64))
        .bind(kind)
        .bind(payload.to_string())
        .bind(now_ms())
        .execute(conn)
        .await
        .map_err(q("append event"))?;
    Ok(())
}

async fn runs_in(conn: &mut sqlx::AnyConnection, study: i64, trial: TrialNo) -> Result<Vec<RunRecord>> {
    let rows: Vec<AnyRow> = sqlx::query("SELECT * FROM runs WHERE study_id = $1 AND trial = $2 ORDER BY idx")
        .bind(study)
        .bind(trial as i64)
        .fetch_all(conn)
        .await
        .map_err(q("read runs"))?;
    rows.iter().map(rows::run).collect()
}

/// A trial's figures over its runs: means of scored runs, sums of costs.
struct Aggregate {
    score: Option<f64>,
    scores: BTreeMap<String, f64>,
    run_scores: Vec<f64>,
    train_seconds: f64,
    eval_seconds: f64,
    peak_rss_bytes: Option<u64>,
    artifact_bytes: Option<u64>,
}

impl Aggregate {
    fn of(runs: &[RunRecord]) -> Aggregate {
        let scored: Vec<&RunRecord> = runs.iter().filter(|r| r.score.is_some()).collect();
        let run_scores: Vec<f64> = scored.iter().filter_map(|r| r.score).collect();
        let mean = |xs: &[f64]| (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64);
        let mut by_metric: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for r in &scored {
            for (k, v) in &r.scores {
                by_metric.entry(k.clone()).or_default().push(*v);
            }
        }
        Aggregate {
            score: mean(&run_scores),
            scores: by_metric.into_iter().filter_map(|(k, v)| mean(&v).map(|m| (k, m))).collect(),
            run_scores,
            train_seconds: runs.iter().map(|r| r.train_seconds).sum(),
            eval_seconds: runs.iter().map(|r| r.eval_seconds).sum(),
            peak_rss_bytes: runs.iter().filter_map(|r| r.peak_rss_bytes).max(),
            artifact_bytes: runs.iter().filter_map(|r| r.artifact_bytes).max(),
        }
    }
}
