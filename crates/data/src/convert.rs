//! Converting a dataset file from the shape it is in to the shape a training script expects,
//! streamed row by row into JSON Lines or Parquet, with an account of every row that could not
//! be converted and why.

use crate::formats::{self, Shape};
use crate::read::{OnMalformed, ReadError, Rows};
use crate::write::{OutputFormat, RowWriter, WriteError};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("{}: the output would overwrite the input", path.display())]
    SameFile { path: PathBuf },
    #[error("{}: no row could be converted to {to}{}", path.display(), first_reason(.report))]
    NothingConverted { path: PathBuf, to: Shape, report: Box<ConvertReport> },
}

fn first_reason(report: &ConvertReport) -> String {
    match report.unmapped.first() {
        Some(u) => format!(" (line {}: {})", u.lines.first().copied().unwrap_or(0), u.reason),
        None if report.rows == 0 => " (it has no rows)".into(),
        None => String::new(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvertSettings {
    pub to: Shape,
    /// The shape of every row, when the caller knows it; else each row's is recognised.
    pub from: Option<Shape>,
    /// Preference pairs become their chosen side (a conversation) rather than being refused.
    pub chosen_only: bool,
    pub on_malformed: OnMalformed,
}

/// Rows not converted for one reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnmappedRows {
    pub reason: String,
    pub count: u64,
    /// The first few rows' lines.
    pub lines: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConvertReport {
    pub to: Shape,
    pub rows: u64,
    pub written: u64,
    /// Malformed rows skipped.
    pub skipped: u64,
    /// The shapes the rows came in (`unknown` for none postdoc knows).
    pub shapes: BTreeMap<String, u64>,
    /// Rows not converted, by reason, the most common first.
    pub unmapped: Vec<UnmappedRows>,
    /// The version of what was written.
    pub version: Option<String>,
}

/// Lines kept per reason, and distinct reasons kept (the rest are counted under one).
const LINES_SHOWN: usize = 5;
const REASONS_KEPT: usize = 50;

/// The Parquet schema of rows of `shape`.
pub fn schema(shape: Shape) -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    let list_of = |name: &str, a: &str, b: &str| {
        let item = Field::new("item", DataType::Struct(Fields::from(vec![text(a), text(b)])), false);
        Field::new(name, DataType::List(Arc::new(item)), false)
    };
    let fields = match shape {
        Shape::Messages => vec![list_of("messages", "role", "content")],
        Shape::Sharegpt => vec![list_of("conversations", "from", "value")],
        other => other.columns().iter().map(|c| text(c)).collect(),
    };
    Arc::new(Schema::new(fields))
}

pub fn convert(input: &Path, out: &Path, settings: ConvertSettings) -> Result<ConvertReport, ConvertError> {
    if let (Ok(a), Ok(b)) = (input.canonicalize(), out.canonicalize())
        && a == b
    {
        return Err(ConvertError::SameFile { path: out.to_path_buf() });
    }
    let mut rows = Rows::open(input, settings.on_malformed)?;
    let schema = (OutputFormat::of(out) == Some(OutputFormat::Parquet)).then(|| schema(settings.to));
    let mut w = RowWriter::create(out, schema)?;
    let mut report = ConvertReport {
        to: settings.to,
        rows: 0,
        written: 0,
        skipped: 0,
        shapes: BTreeMap::new(),
        unmapped: Vec::new(),
        version: None,
    };
    let mut unmapped: BTreeMap<String, (u64, Vec<u64>)> = BTreeMap::new();
    for row in rows.by_ref() {
        let row = row?;
        report.rows += 1;
        let shape = settings.from.or_else(|| formats::recognise(&row.fields));
        *report.shapes.entry(shape.map_or("unknown", Shape::as_str).to_string()).or_default() += 1;
        let converted = match shape {
            Some(shape) => formats::read(&row.fields, shape)
                .map(|e| if settings.chosen_only { formats::chosen_only(e) } else { e })
                .and_then(|e| formats::write(&e, settings.to))
                .map_err(|u| u.0),
            None => {
                let names: Vec<&str> = row.fields.keys().map(String::as_str).collect();
                Err(format!("its fields ({}) match no known shape", names.join(", ")))
            }
        };
        match converted {
            Ok(value) => w.write(&value)?,
            Err(reason) => {
                let reason = if unmapped.len() >= REASONS_KEPT && !unmapped.contains_key(&reason) {
                    "other reasons".to_string()
                } else {
                    reason
                };
                let (count, lines) = unmapped.entry(reason).or_default();
                *count += 1;
                if lines.len() < LINES_SHOWN {
                    lines.push(row.line);
                }
            }
        }
    }
    report.skipped = rows.skipped().count;
    report.unmapped =
        unmapped.into_iter().map(|(reason, (count, lines))| UnmappedRows { reason, count, lines }).collect();
    report.unmapped.sort_by(|a, b| b.count.cmp(&a.count).then(a.lines.cmp(&b.lines)));
    if w.rows() == 0 {
        return Err(ConvertError::NothingConverted {
            path: input.to_path_buf(),
            to: settings.to,
            report: Box::new(report),
        });
    }
    let written = w.finish()?;
    report.written = written.rows;
    report.version = Some(written.version);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::partial_path;
    use serde_json::{Value, json};

    fn settings(to: Shape) -> ConvertSettings {
        ConvertSettings { to, from: None, chosen_only: false, on_malformed: OnMalformed::Skip }
    }

    #[test]
    fn a_mixed_file_converts_what_it_can_and_accounts_for_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("mixed.jsonl");
        let rows = [
            json!({"instruction": "Say hi", "input": "", "output": "hi"}),
            json!({"conversations": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}]}),
            json!({"prompt": "Q", "chosen": "good", "rejected": "bad"}),
            json!({"text": "raw text"}),
            json!({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]}),
        ];
        let mut text: String = rows.iter().map(|r| format!("{r}\n")).collect();
        text.push_str("{broken\n");
        std::fs::write(&input, text).unwrap();

        let out = dir.path().join("out.parquet");
        let report = convert(&input, &out, settings(Shape::PromptCompletion)).unwrap();
        assert_eq!((report.rows, report.written, report.skipped), (5, 2, 1));
        assert_eq!(report.shapes["alpaca"], 1);
        assert_eq!(report.shapes["unknown"], 1);
        let reasons: Vec<(&str, &[u64])> =
            report.unmapped.iter().map(|u| (u.reason.as_str(), u.lines.as_slice())).collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons.iter().any(|(r, l)| r.contains("--chosen-only") && *l == [3]), "{reasons:?}");
        assert!(reasons.iter().any(|(r, l)| r.contains("fields (text)") && *l == [4]), "{reasons:?}");
        assert!(reasons.iter().any(|(r, l)| r.contains("system message") && *l == [5]), "{reasons:?}");
        let back: Vec<Value> =
            Rows::open(&out, OnMalformed::Fail).unwrap().map(|r| Value::Object(r.unwrap().fields)).collect();
        assert_eq!(
            back,
            [json!({"prompt": "Say hi", "completion": "hi"}), json!({"prompt": "2+2?", "completion": "4"})]
        );

        // The chosen side of the pair converts when asked for.
        let out = dir.path().join("out.jsonl");
        let report = convert(&input, &out, ConvertSettings { chosen_only: true, ..settings(Shape::Messages) }).unwrap();
        assert_eq!(report.written, 4);
        assert!(std::fs::read_to_string(&out).unwrap().contains(r#"{"content":"good","role":"assistant"}"#));
    }

    #[test]
    fn nothing_converted_is_an_error_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("plain.jsonl");
        std::fs::write(&input, "{\"text\": \"a\"}\n{\"text\": \"b\"}\n").unwrap();
        let out = dir.path().join("out.jsonl");
        let e = convert(&input, &out, settings(Shape::Messages)).unwrap_err();
        assert!(e.to_string().contains("no row could be converted to messages (line 1: its fields (text)"), "{e}");
        assert!(!out.exists() && !partial_path(&out).exists());
        let empty = dir.path().join("empty.jsonl");
        std::fs::write(&empty, "").unwrap();
        let e = convert(&empty, &out, settings(Shape::Messages)).unwrap_err();
        assert!(e.to_string().contains("it has no rows"), "{e}");
        let e = convert(&input, &input, settings(Shape::Messages)).unwrap_err();
        assert!(e.to_string().contains("would overwrite the input"), "{e}");
        // A forced shape reads every row as that shape.
        let forced = ConvertSettings { from: Some(Shape::Alpaca), ..settings(Shape::Messages) };
        let e = convert(&input, &out, forced).unwrap_err();
        assert!(e.to_string().contains("no `instruction` field"), "{e}");
    }
}
