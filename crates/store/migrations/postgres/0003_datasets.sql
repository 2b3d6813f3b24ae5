-- Datasets by content: each version is named by the hash of its normalised rows, and says where
-- it was first seen, under what licence, and which version and transformation it was made from.
-- Versions belong to the store, not to one study: two studies that train on the same rows share
-- one version.
CREATE TABLE dataset_versions (
    version TEXT PRIMARY KEY,
    row_count BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    format TEXT NOT NULL,
    shape TEXT,
    source TEXT NOT NULL,
    licence TEXT,
    derived_from TEXT,
    transform TEXT,
    created_ms BIGINT NOT NULL
);
CREATE INDEX dataset_versions_by_parent ON dataset_versions (derived_from);

-- Which data a study and each of its trials' runs used, written with a `dataset_used` event.
CREATE TABLE dataset_uses (
    id BIGSERIAL PRIMARY KEY,
    study_id BIGINT NOT NULL REFERENCES studies (id),
    trial BIGINT,
    run_idx BIGINT,
    version TEXT NOT NULL REFERENCES dataset_versions (version),
    role TEXT NOT NULL,
    path TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX dataset_uses_by_trial ON dataset_uses (study_id, trial);
CREATE INDEX dataset_uses_by_version ON dataset_uses (version);
