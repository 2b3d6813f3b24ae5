//! The data a study touches, versioned in the lineage store: its protected evaluation data, once
//! per study, and the examples each run trained on (the file the contamination rule reads), so
//! every trial records exactly which data it used. Versioning never fails a study: a file that
//! cannot be read as a dataset is reported and left unversioned.

use crate::StudyError;
use postdoc_core::TrialNo;
use postdoc_data::FileFormat;
use postdoc_data::version::{Fingerprint, fingerprint};
use postdoc_eval::Pristine;
use postdoc_store::{DatasetVersion, Store, now_ms};
use std::path::Path;

/// The role of data the study evaluates on.
pub(crate) const EVALUATION: &str = "evaluation";
/// The role of the examples a run trained on.
pub(crate) const TRAINING: &str = "training";

fn record(f: Fingerprint, source: String) -> DatasetVersion {
    DatasetVersion {
        version: f.version,
        rows: f.rows,
        bytes: f.bytes,
        format: f.format,
        shape: f.shape.map(|s| s.to_string()),
        source,
        licence: None,
        derived_from: None,
        transform: None,
        created_ms: now_ms(),
    }
}

/// Versions every protected file that is a dataset (by its name: `.jsonl`, `.csv`, `.parquet`,
/// ...), from the study's pristine snapshot, unless the study has already recorded its
/// evaluation data. `scratch` is a folder the files may be written to for reading.
pub(crate) async fn register_evaluation_data(
    store: &Store,
    study: i64,
    base_commit: &str,
    pristine: &Pristine,
    scratch: &Path,
) -> Result<(), StudyError> {
    if store.dataset_uses(study, None).await?.iter().any(|u| u.trial.is_none() && u.role == EVALUATION) {
        return Ok(());
    }
    for path in pristine.paths().filter(|p| FileFormat::of(Path::new(p)).is_ok()) {
        let file = pristine.file(path).expect("a path the snapshot listed");
        let copy = scratch.join(Path::new(path).file_name().expect("a file has a name"));
        let read = std::fs::create_dir_all(scratch)
            .and_then(|()| std::fs::write(&copy, &file.contents))
            .map_err(|e| e.to_string())
            .and_then(|()| fingerprint(&copy).map_err(|e| e.to_string()));
        let _ = std::fs::remove_file(&copy);
        match read {
            Ok(f) => {
                let source = format!("{path} at {}", &base_commit[..base_commit.len().min(10)]);
                store.record_dataset_use(study, None, None, &record(f, source), EVALUATION, path).await?;
            }
            Err(e) => tracing::warn!(file = path, "protected file not versioned: {e}"),
        }
    }
    Ok(())
}

/// Versions the examples a run trained on (`file`, written by the run) and records that the
/// trial's run used them.
pub(crate) async fn record_training_data(
    store: &Store,
    study: i64,
    trial: TrialNo,
    run: u32,
    file: &Path,
    shown_as: &str,
) -> Result<(), StudyError> {
    let path = file.to_path_buf();
    let read = tokio::task::spawn_blocking(move || fingerprint(&path)).await;
    match read {
        Ok(Ok(f)) => {
            let source = format!("trial {trial} run {run}: {shown_as}");
            store.record_dataset_use(study, Some(trial), Some(run), &record(f, source), TRAINING, shown_as).await?;
        }
        Ok(Err(e)) => tracing::warn!(trial, run, "training data not versioned: {e}"),
        Err(e) => tracing::warn!(trial, run, "training data not versioned: {e}"),
    }
    Ok(())
}
