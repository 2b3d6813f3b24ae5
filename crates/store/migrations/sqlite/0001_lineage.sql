-- The lineage: studies, an append-only event log, and the trial, run and metric tables the
-- events project into (written in the same transaction as their event).
CREATE TABLE studies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    recipe TEXT NOT NULL,
    base_commit TEXT NOT NULL,
    manifest TEXT NOT NULL,
    comparability TEXT NOT NULL,
    protected_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);

CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study_id INTEGER NOT NULL REFERENCES studies (id),
    trial INTEGER,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE INDEX events_by_trial ON events (study_id, trial);

CREATE TABLE trials (
    study_id INTEGER NOT NULL REFERENCES studies (id),
    number INTEGER NOT NULL,
    parent INTEGER,
    retry_of INTEGER,
    specialist TEXT NOT NULL,
    hypothesis TEXT NOT NULL,
    expected_delta REAL,
    edit TEXT NOT NULL,
    status TEXT NOT NULL,
    commit_sha TEXT,
    patch TEXT,
    label TEXT,
    reason TEXT,
    score REAL,
    scores TEXT NOT NULL DEFAULT '{}',
    runs INTEGER NOT NULL DEFAULT 0,
    run_scores TEXT NOT NULL DEFAULT '[]',
    train_seconds REAL NOT NULL DEFAULT 0,
    eval_seconds REAL NOT NULL DEFAULT 0,
    peak_rss_bytes INTEGER,
    artifact_bytes INTEGER,
    log_excerpt TEXT,
    created_ms INTEGER NOT NULL,
    started_ms INTEGER,
    finished_ms INTEGER,
    PRIMARY KEY (study_id, number)
);
CREATE INDEX trials_by_label ON trials (study_id, label);

CREATE TABLE runs (
    study_id INTEGER NOT NULL REFERENCES studies (id),
    trial INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    purpose TEXT NOT NULL,
    seed INTEGER NOT NULL,
    exit_code INTEGER,
    signal INTEGER,
    timed_out INTEGER NOT NULL,
    train_seconds REAL NOT NULL,
    eval_seconds REAL NOT NULL,
    cpu_seconds REAL,
    peak_rss_bytes INTEGER,
    artifact_bytes INTEGER,
    score REAL,
    scores TEXT NOT NULL,
    findings TEXT NOT NULL,
    log_tail TEXT NOT NULL,
    eval_log_tail TEXT NOT NULL,
    started_ms INTEGER NOT NULL,
    finished_ms INTEGER NOT NULL,
    PRIMARY KEY (study_id, trial, idx)
);

CREATE TABLE metrics (
    study_id INTEGER NOT NULL REFERENCES studies (id),
    trial INTEGER NOT NULL,
    run_idx INTEGER NOT NULL,
    step INTEGER,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE INDEX metrics_by_trial ON metrics (study_id, trial);

-- Which orchestrator drives a study: one at a time, taken over when its heartbeat is stale.
CREATE TABLE leases (
    study_id INTEGER PRIMARY KEY REFERENCES studies (id),
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    heartbeat_ms INTEGER NOT NULL
);
