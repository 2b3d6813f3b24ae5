-- A watcher (the dashboard, `postdoc status`) reads the events in order from the last one it
-- saw and by kind (notes, session markers, transcripts), the trials by status (running,
-- waiting) and the latest trials of a label; without these a long study is scanned whole.
CREATE INDEX events_in_order ON events (study_id, id);
CREATE INDEX events_by_kind ON events (study_id, kind, id);
CREATE INDEX trials_by_status ON trials (study_id, status);
DROP INDEX trials_by_label;
CREATE INDEX trials_by_label ON trials (study_id, label, number);
-- Covers the tally (counts, labels and compute of every trial) read on every scheduling pass.
CREATE INDEX trials_tally ON trials (study_id, specialist, label, retry_of, train_seconds, eval_seconds);
