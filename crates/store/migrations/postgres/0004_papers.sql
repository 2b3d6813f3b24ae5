-- The literature: papers (keyed `arxiv:ID`, `doi:...`, `s2:...`, `local:HASH`), their authors,
-- the citation edges between them, their sections, the datasets linked to them, and the technique
-- cards read from them. Like dataset versions, papers belong to the store, not to one study;
-- which cards a trial cites belongs to the study, with an event.
CREATE TABLE papers (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    abstract TEXT,
    year BIGINT,
    published TEXT,
    venue TEXT,
    arxiv TEXT,
    doi TEXT,
    s2 TEXT,
    openalex TEXT,
    url TEXT,
    pdf_url TEXT,
    citation_count BIGINT,
    influential_count BIGINT,
    categories TEXT NOT NULL,
    source TEXT NOT NULL,
    added_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);

CREATE TABLE paper_authors (
    paper TEXT NOT NULL REFERENCES papers (id),
    position BIGINT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (paper, position)
);
CREATE INDEX paper_authors_by_name ON paper_authors (name);

CREATE TABLE citations (
    citing TEXT NOT NULL,
    cited TEXT NOT NULL,
    influential BIGINT NOT NULL,
    contexts TEXT NOT NULL,
    PRIMARY KEY (citing, cited)
);
CREATE INDEX citations_by_cited ON citations (cited);

CREATE TABLE paper_sections (
    paper TEXT NOT NULL REFERENCES papers (id),
    idx BIGINT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (paper, idx)
);

CREATE TABLE paper_datasets (
    paper TEXT NOT NULL REFERENCES papers (id),
    dataset TEXT NOT NULL,
    relation TEXT NOT NULL,
    PRIMARY KEY (paper, dataset)
);

CREATE TABLE technique_cards (
    id BIGSERIAL PRIMARY KEY,
    paper TEXT NOT NULL REFERENCES papers (id),
    technique TEXT NOT NULL,
    effect TEXT,
    setting TEXT,
    part TEXT NOT NULL,
    section TEXT NOT NULL,
    evidence TEXT NOT NULL,
    method TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX technique_cards_by_paper ON technique_cards (paper);

CREATE TABLE trial_cards (
    study_id BIGINT NOT NULL REFERENCES studies (id),
    trial BIGINT NOT NULL,
    card BIGINT NOT NULL REFERENCES technique_cards (id),
    PRIMARY KEY (study_id, trial, card)
);
