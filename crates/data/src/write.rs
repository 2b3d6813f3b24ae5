//! Writing rows to a dataset file, JSON Lines or Parquet, so that nothing is ever half-written:
//! rows go to a temporary file beside the output, which takes the output's name only when the
//! last row is written and synced. A writer dropped before it finishes removes its temporary
//! file.

use crate::formats::Shape;
use crate::version::Hasher;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use serde_json::Value;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Rows gathered before they become a Parquet row batch.
const PARQUET_BATCH: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Format { path: PathBuf, message: String },
    #[error("{}: {expected}", path.display())]
    Unsupported { path: PathBuf, expected: String },
}

/// The file formats rows are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Jsonl,
    Parquet,
}

impl OutputFormat {
    /// The format an output's name asks for.
    pub fn of(path: &Path) -> Option<OutputFormat> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        match ext.as_str() {
            "jsonl" | "ndjson" => Some(OutputFormat::Jsonl),
            "parquet" | "pq" => Some(OutputFormat::Parquet),
            _ => None,
        }
    }
}

/// Where an output is written before it is complete.
pub fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

enum Sink {
    Jsonl(BufWriter<File>),
    Parquet { writer: Box<ArrowWriter<File>>, schema: SchemaRef, pending: Vec<Value> },
}

/// What was written: the rows and their version (see `version.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub rows: u64,
    pub version: String,
    pub shape: Option<Shape>,
}

pub struct RowWriter {
    out: PathBuf,
    partial: PathBuf,
    sink: Option<Sink>,
    /// Hashes each row as it is written: JSON Lines output is those canonical lines themselves.
    hasher: Hasher,
}

impl RowWriter {
    /// A writer to `out`, in the format its name says. Parquet needs the rows' `schema` (the
    /// columns and their types); JSON Lines takes any rows.
    pub fn create(out: &Path, schema: Option<SchemaRef>) -> Result<RowWriter, WriteError> {
        let format = OutputFormat::of(out).ok_or_else(|| WriteError::Unsupported {
            path: out.to_path_buf(),
            expected: "name the output .jsonl or .parquet".into(),
        })?;
        let partial = partial_path(out);
        let io = |source| WriteError::Io { path: partial.clone(), source };
        let file = File::create(&partial).map_err(io)?;
        let sink = match (format, schema) {
            (OutputFormat::Jsonl, _) => Sink::Jsonl(BufWriter::with_capacity(1 << 20, file)),
            (OutputFormat::Parquet, Some(schema)) => {
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                    .build();
                match ArrowWriter::try_new(file, schema.clone(), Some(props)) {
                    Ok(writer) => {
                        Sink::Parquet { writer: Box::new(writer), schema, pending: Vec::with_capacity(PARQUET_BATCH) }
                    }
                    Err(e) => {
                        let _ = std::fs::remove_file(&partial);
                        return Err(WriteError::Format { path: out.to_path_buf(), message: e.to_string() });
                    }
                }
            }
            (OutputFormat::Parquet, None) => {
                let _ = std::fs::remove_file(&partial);
                return Err(WriteError::Unsupported {
                    path: out.to_path_buf(),
                    expected: "rows of no fixed schema are written as JSON Lines; name the output .jsonl".into(),
                });
            }
        };
        Ok(RowWriter { out: out.to_path_buf(), partial, sink: Some(sink), hasher: Hasher::default() })
    }

    /// Writes one row (a JSON object).
    pub fn write(&mut self, row: &Value) -> Result<(), WriteError> {
        let Value::Object(fields) = row else {
            return Err(WriteError::Format {
                path: self.out.clone(),
                message: format!("a row must be a JSON object, not {row}"),
            });
        };
        self.hasher.add(fields);
        let io = |source| WriteError::Io { path: self.partial.clone(), source };
        match self.sink.as_mut().expect("a writer is used until it finishes") {
            Sink::Jsonl(w) => w.write_all(self.hasher.last_line()).map_err(io)?,
            Sink::Parquet { pending, .. } => {
                pending.push(row.clone());
                if pending.len() >= PARQUET_BATCH {
                    self.flush_parquet()?;
                }
            }
        }
        Ok(())
    }

    /// Writes one row given as its canonical line (as `version::canonical_line` writes it,
    /// perhaps on another thread) and its shape: JSON Lines output is that line itself.
    pub(crate) fn write_canonical(&mut self, line: &[u8], shape: Option<Shape>) -> Result<(), WriteError> {
        match self.sink.as_mut().expect("a writer is used until it finishes") {
            Sink::Jsonl(w) => {
                w.write_all(line).map_err(|source| WriteError::Io { path: self.partial.clone(), source })?;
                self.hasher.add_canonical(line, [shape]);
                Ok(())
            }
            Sink::Parquet { .. } => {
                let row: Value = serde_json::from_slice(line).map_err(|e| WriteError::Format {
                    path: self.out.clone(),
                    message: format!("not a canonical JSON line: {e}"),
                })?;
                self.write(&row)
            }
        }
    }

    fn flush_parquet(&mut self) -> Result<(), WriteError> {
        let Some(Sink::Parquet { writer, schema, pending }) = self.sink.as_mut() else { return Ok(()) };
        if pending.is_empty() {
            return Ok(());
        }
        let format = |message: String| WriteError::Format { path: self.out.clone(), message };
        let mut decoder = arrow_json::ReaderBuilder::new(schema.clone())
            .with_batch_size(pending.len())
            .build_decoder()
            .map_err(|e| format(e.to_string()))?;
        decoder.serialize(pending).map_err(|e| format(format!("a row does not fit the schema: {e}")))?;
        if let Some(batch) = decoder.flush().map_err(|e| format(format!("a row does not fit the schema: {e}")))? {
            writer.write(&batch).map_err(|e| format(e.to_string()))?;
        }
        pending.clear();
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.hasher.rows()
    }

    /// Finishes the file and gives it the output's name.
    pub fn finish(mut self) -> Result<Written, WriteError> {
        self.flush_parquet()?;
        let io = |source| WriteError::Io { path: self.partial.clone(), source };
        let file = match self.sink.take().expect("a writer finishes once") {
            Sink::Jsonl(w) => w.into_inner().map_err(|e| io(e.into_error()))?,
            Sink::Parquet { writer, .. } => writer
                .into_inner()
                .map_err(|e| WriteError::Format { path: self.out.clone(), message: e.to_string() })?,
        };
        file.sync_all().map_err(io)?;
        std::fs::rename(&self.partial, &self.out)
            .map_err(|source| WriteError::Io { path: self.out.clone(), source })?;
        let (version, rows, shape) = std::mem::take(&mut self.hasher).finish();
        Ok(Written { rows, version, shape })
    }
}

impl Drop for RowWriter {
    fn drop(&mut self) {
        if self.sink.is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::{OnMalformed, Rows};
    use arrow_schema::{DataType, Field, Fields, Schema};
    use serde_json::json;
    use std::sync::Arc;

    fn messages_schema() -> SchemaRef {
        let message =
            Fields::from(vec![Field::new("role", DataType::Utf8, false), Field::new("content", DataType::Utf8, false)]);
        let item = Field::new("item", DataType::Struct(message), false);
        Arc::new(Schema::new(vec![Field::new("messages", DataType::List(Arc::new(item)), false)]))
    }

    #[test]
    fn parquet_and_jsonl_round_trip_through_the_reader() {
        let dir = tempfile::tempdir().unwrap();
        let rows: Vec<Value> = (0..5000)
            .map(|i| json!({"messages": [{"role": "user", "content": format!("q{i}")}, {"role": "assistant", "content": "a"}]}))
            .collect();
        for name in ["out.parquet", "out.jsonl"] {
            let out = dir.path().join(name);
            let mut w = RowWriter::create(&out, Some(messages_schema())).unwrap();
            for r in &rows {
                w.write(r).unwrap();
            }
            assert!(!out.exists(), "nothing under the output's name before the end");
            let written = w.finish().unwrap();
            assert_eq!(written.rows, 5000);
            assert_eq!(written.shape, Some(Shape::Messages));
            assert_eq!(written.version, crate::version::fingerprint(&out).unwrap().version, "{name}");
            assert!(!partial_path(&out).exists());
            let back: Vec<Value> =
                Rows::open(&out, OnMalformed::Fail).unwrap().map(|r| Value::Object(r.unwrap().fields)).collect();
            assert_eq!(back, rows, "{name}");
        }
    }

    #[test]
    fn a_failed_or_abandoned_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.parquet");
        let mut w = RowWriter::create(&out, Some(messages_schema())).unwrap();
        w.write(&json!({"messages": "not a list"})).unwrap();
        let e = w.finish().unwrap_err();
        assert!(e.to_string().contains("does not fit the schema"), "{e}");
        assert!(!out.exists() && !partial_path(&out).exists());

        let out = dir.path().join("out.jsonl");
        let mut w = RowWriter::create(&out, None).unwrap();
        w.write(&json!({"a": 1})).unwrap();
        drop(w);
        assert!(!out.exists() && !partial_path(&out).exists());

        let e = RowWriter::create(&dir.path().join("out.csv"), None).err().unwrap();
        assert!(e.to_string().contains(".jsonl or .parquet"), "{e}");
        let e = RowWriter::create(&dir.path().join("x.parquet"), None).err().unwrap();
        assert!(e.to_string().contains("no fixed schema"), "{e}");
        assert!(!dir.path().join("x.parquet.partial").exists());
        let e = RowWriter::create(&dir.path().join("missing/out.jsonl"), None).err().unwrap();
        assert!(e.to_string().contains("cannot write"), "{e}");
    }
}
