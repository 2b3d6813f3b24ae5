//! Decontamination of a dataset file: the rows of a training set that hold no item of the
//! evaluation sets, written as a clean copy, and a report of which rows held which items.
//! The copy is written to a temporary file beside the output and renamed at the end, so a
//! failure never leaves half a file under the output's name.

use crate::contamination::{EvalIndex, EvalItem, Record, Settings};
use crate::formats::recognise;
use crate::read::scan::View;
use crate::read::{OnMalformed, ReadError, Row, Rows};
use crate::version::canonical_line;
use crate::write::{RowWriter, WriteError};
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CleanError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("{}: the clean copy is written as JSON Lines; name it .jsonl", path.display())]
    OutputFormat { path: PathBuf },
    #[error("{}: the output would overwrite the training set", path.display())]
    SameFile { path: PathBuf },
    #[error("the evaluation sets hold no text to check against ({})", files.join(", "))]
    NoEvalText { files: Vec<String> },
}

/// The evaluation items of a dataset file: one per row, named `FILE:LINE`, holding the strings
/// of `fields` (every string in the row when `fields` is empty).
pub fn eval_items(path: &Path, fields: &[String], policy: OnMalformed) -> Result<Vec<EvalItem>, ReadError> {
    let mut items = Vec::new();
    for row in Rows::open(path, policy)? {
        let row = row?;
        let record = if fields.is_empty() {
            Record::from_value(&Value::Object(row.fields))
        } else {
            let chosen: serde_json::Map<String, Value> =
                row.fields.into_iter().filter(|(k, _)| fields.contains(k)).collect();
            Record::from_value(&Value::Object(chosen))
        };
        items.push(EvalItem { name: format!("{}:{}", path.display(), row.line), texts: record.fields });
    }
    Ok(items)
}

/// A training row that held evaluation items.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Removed {
    pub line: u64,
    /// The items it held and how each was found.
    pub items: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CleanReport {
    pub rows: u64,
    pub kept: u64,
    pub removed: u64,
    pub skipped: u64,
    pub eval_items: usize,
    /// Evaluation items found in the training set at least once.
    pub eval_items_found: usize,
    /// The first removed rows, in order.
    pub examples: Vec<Removed>,
    /// The version of the clean copy.
    pub version: String,
}

/// Removed rows listed in full in the report.
const EXAMPLES: usize = 20;

/// Copies the rows of `train` that hold no item of `index` to `out` (JSON Lines).
pub fn decontaminate(
    train: &Path,
    index: &EvalIndex,
    out: &Path,
    policy: OnMalformed,
) -> Result<CleanReport, CleanError> {
    let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    if ext != "jsonl" && ext != "ndjson" {
        return Err(CleanError::OutputFormat { path: out.to_path_buf() });
    }
    if let (Ok(a), Ok(b)) = (train.canonicalize(), out.canonicalize())
        && a == b
    {
        return Err(CleanError::SameFile { path: out.to_path_buf() });
    }
    let mut rows = Rows::open(train, policy)?;
    let mut w = RowWriter::create(out, None)?;
    let mut report = CleanReport {
        rows: 0,
        kept: 0,
        removed: 0,
        skipped: 0,
        eval_items: index.len(),
        eval_items_found: 0,
        examples: Vec::new(),
        version: String::new(),
    };
    let mut found = vec![false; index.len()];
    // Rows are checked, and the kept ones written out as canonical lines, on every core; the
    // copy and the report are made in file order.
    let check = |row: Row, _| {
        let Row { line, fields } = row;
        let mut texts = Vec::new();
        fields.values().for_each(|v| v.for_each_string(&mut |s| texts.push(s)));
        let hits = index.check_texts(&texts);
        let kept = hits.is_empty().then(|| {
            let mut canonical = Vec::new();
            canonical_line(&fields, &mut canonical);
            (canonical, recognise(&fields))
        });
        (line, hits, kept)
    };
    rows.map_each(check, |(line, hits, kept)| {
        report.rows += 1;
        if let Some((canonical, shape)) = kept {
            w.write_canonical(&canonical, shape)?;
            report.kept += 1;
            return Ok::<_, CleanError>(());
        }
        report.removed += 1;
        for item in hits.keys() {
            found[*item] = true;
        }
        if report.examples.len() < EXAMPLES {
            let items = hits.iter().map(|(i, kind)| (index.name(*i).to_string(), kind.to_string())).collect();
            report.examples.push(Removed { line, items });
        }
        Ok(())
    })?;
    report.version = w.finish()?.version;
    report.skipped = rows.skipped().count;
    report.eval_items_found = found.iter().filter(|f| **f).count();
    Ok(report)
}

/// An index of the evaluation files, refusing sets with nothing to check.
pub fn eval_index(
    files: &[PathBuf],
    fields: &[String],
    settings: Settings,
    policy: OnMalformed,
) -> Result<EvalIndex, CleanError> {
    let mut items = Vec::new();
    for f in files {
        items.extend(eval_items(f, fields, policy)?);
    }
    if items.iter().all(|i| i.texts.is_empty()) {
        return Err(CleanError::NoEvalText { files: files.iter().map(|f| f.display().to_string()).collect() });
    }
    Ok(EvalIndex::new(items, settings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::partial_path;
    use serde_json::json;

    fn jsonl(dir: &Path, name: &str, rows: &[Value]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, rows.iter().map(|r| format!("{r}\n")).collect::<String>()).unwrap();
        path
    }

    #[test]
    fn writes_the_rows_that_hold_no_eval_item_and_says_which_did() {
        let dir = tempfile::tempdir().unwrap();
        let eval = jsonl(
            dir.path(),
            "eval.jsonl",
            &[
                json!({"prompt": "Reverse the word: lighthouse", "answer": "esuohthgil"}),
                json!({"prompt": "Shift each letter of zebra by one"}),
            ],
        );
        let train = jsonl(
            dir.path(),
            "train.jsonl",
            &[
                json!({"prompt": "Reverse the word: harbour", "completion": "ruobrah"}),
                json!({"messages": [{"role": "user", "content": "please REVERSE the word:   lighthouse"}]}),
                json!({"prompt": "Reverse the word: anchor", "completion": "rohcna"}),
            ],
        );
        let index = eval_index(std::slice::from_ref(&eval), &["prompt".into()], Settings::default(), OnMalformed::Fail)
            .unwrap();
        let out = dir.path().join("clean.jsonl");
        let report = decontaminate(&train, &index, &out, OnMalformed::Fail).unwrap();
        assert_eq!((report.rows, report.kept, report.removed), (3, 2, 1));
        assert_eq!((report.eval_items, report.eval_items_found), (2, 1));
        assert_eq!(report.examples[0].line, 2);
        assert_eq!(report.examples[0].items[0].0, format!("{}:1", eval.display()));
        assert_eq!(report.examples[0].items[0].1, "normalised match");
        let clean = std::fs::read_to_string(&out).unwrap();
        assert_eq!(clean.lines().count(), 2);
        assert!(!clean.contains("lighthouse"));
        assert!(!partial_path(&out).exists());
    }

    #[test]
    fn a_failure_leaves_no_output_behind() {
        let dir = tempfile::tempdir().unwrap();
        let eval = jsonl(dir.path(), "eval.jsonl", &[json!({"prompt": "a long enough evaluation prompt"})]);
        let train = dir.path().join("train.jsonl");
        std::fs::write(&train, "{\"prompt\": \"fine\"}\nnot json\n").unwrap();
        let index = eval_index(&[eval], &[], Settings::default(), OnMalformed::Fail).unwrap();
        let out = dir.path().join("clean.jsonl");
        let e = decontaminate(&train, &index, &out, OnMalformed::Fail).unwrap_err().to_string();
        assert!(e.contains("train.jsonl:2: not JSON"), "{e}");
        assert!(!out.exists() && !partial_path(&out).exists(), "nothing half-written");
        let e = decontaminate(&train, &index, &dir.path().join("clean.parquet"), OnMalformed::Skip).unwrap_err();
        assert!(e.to_string().contains("name it .jsonl"), "{e}");
        let e = decontaminate(&train, &index, &train, OnMalformed::Skip).unwrap_err();
        assert!(e.to_string().contains("would overwrite the training set"), "{e}");
        let empty = jsonl(dir.path(), "empty.jsonl", &[json!({"n": 1})]);
        let e = eval_index(&[empty], &[], Settings::default(), OnMalformed::Fail).err().unwrap();
        assert!(e.to_string().contains("hold no text to check against"), "{e}");
    }
}
