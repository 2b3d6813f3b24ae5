-- The lineage: studies, an append-only event log, and the trial, run and metric tables the
-- events project into (written in the same transaction as their event).
CREATE TABLE studies (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    recipe TEXT NOT NULL,
    base_commit TEXT NOT NULL,
    manifest TEXT NOT NULL,
    comparability TEXT NOT NULL,
    protected_hash TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    study_id BIGINT NOT NULL REFERENCES studies (id),
    trial BIGINT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX events_by_trial ON events (study_id, trial);

CREATE TABLE trials (
    study_id BIGINT NOT NULL REFERENCES studies (id),
    number BIGINT NOT NULL,
    parent BIGINT,
    retry_of BIGINT,
    specialist TEXT NOT NULL,
    hypothesis TEXT NOT NULL,
    expected_delta DOUBLE PRECISION,
    edit TEXT NOT NULL,
    status TEXT NOT NULL,
    commit_sha TEXT,
    patch TEXT,
    label TEXT,
    reason TEXT,
    score DOUBLE PRECISION,
    scores TEXT NOT NULL DEFAULT '{}',
    runs BIGINT NOT NULL DEFAULT 0,
    run_scores TEXT NOT NULL DEFAULT '[]',
    train_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
    eval_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
    peak_rss_bytes BIGINT,
    artifact_bytes BIGINT,
    log_excerpt TEXT,
    created_ms BIGINT NOT NULL,
    started_ms BIGINT,
    finished_ms BIGINT,
    PRIMARY KEY (study_id, number)
);
CREATE INDEX trials_by_label ON trials (study_id, label);

CREATE TABLE runs (
    study_id BIGINT NOT NULL REFERENCES studies (id),
    trial BIGINT NOT NULL,
    idx BIGINT NOT NULL,
    purpose TEXT NOT NULL,
    seed BIGINT NOT NULL,
    exit_code BIGINT,
    signal BIGINT,
    timed_out BIGINT NOT NULL,
    train_seconds DOUBLE PRECISION NOT NULL,
    eval_seconds DOUBLE PRECISION NOT NULL,
    cpu_seconds DOUBLE PRECISION,
    peak_rss_bytes BIGINT,
    artifact_bytes BIGINT,
    score DOUBLE PRECISION,
    scores TEXT NOT NULL,
    findings TEXT NOT NULL,
    log_tail TEXT NOT NULL,
    eval_log_tail TEXT NOT NULL,
    started_ms BIGINT NOT NULL,
    finished_ms BIGINT NOT NULL,
    PRIMARY KEY (study_id, trial, idx)
);

CREATE TABLE metrics (
    study_id BIGINT NOT NULL REFERENCES studies (id),
    trial BIGINT NOT NULL,
    run_idx BIGINT NOT NULL,
    step BIGINT,
    name TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX metrics_by_trial ON metrics (study_id, trial);

-- Which orchestrator drives a study: one at a time, taken over when its heartbeat is stale.
CREATE TABLE leases (
    study_id BIGINT PRIMARY KEY REFERENCES studies (id),
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    heartbeat_ms BIGINT NOT NULL
);
