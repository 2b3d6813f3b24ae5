//! A dataset file as a stream of rows, whatever its format: JSON Lines, JSON (an array of
//! objects, or objects one after another), CSV, Parquet and Arrow (IPC file or stream, as the
//! Hugging Face `datasets` library writes them). Rows are read one at a time (Parquet and Arrow
//! a batch at a time), so a file larger than memory can be read.
//!
//! A row is a JSON object. A line or element that cannot be one is *malformed*: it is reported
//! with the file and line it is on, and either skipped (and counted) or fatal, as the caller
//! chooses.

use arrow_array::{Array, RecordBatch};
use serde_json::{Map, Value};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// A field longer than this is refused rather than held in memory.
pub const MAX_LINE_BYTES: usize = 64 << 20;
/// Rows per batch read from Parquet.
const BATCH_ROWS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Jsonl,
    Json,
    Csv,
    Parquet,
    Arrow,
}

impl FileFormat {
    /// The format a file's name says it has.
    pub fn of(path: &Path) -> Result<FileFormat, ReadError> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_ascii_lowercase();
        let ext = name.rsplit('.').next().unwrap_or("");
        Ok(match ext {
            "jsonl" | "ndjson" => FileFormat::Jsonl,
            "json" => FileFormat::Json,
            "csv" => FileFormat::Csv,
            "parquet" | "pq" => FileFormat::Parquet,
            "arrow" | "feather" | "ipc" => FileFormat::Arrow,
            _ => return Err(ReadError::UnknownFormat { path: path.to_path_buf() }),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Jsonl => "jsonl",
            FileFormat::Json => "json",
            FileFormat::Csv => "csv",
            FileFormat::Parquet => "parquet",
            FileFormat::Arrow => "arrow",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{}: cannot tell the format from the name (expected .jsonl, .ndjson, .json, .csv, .parquet or .arrow)",
        path.display()
    )]
    UnknownFormat { path: PathBuf },
    /// One row that cannot be read; the rest of the file may still be.
    #[error("{}:{line}: {message}", path.display())]
    Malformed { path: PathBuf, line: u64, message: String },
    /// The file as a whole cannot be read (a Parquet footer that is not one, say).
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

/// What to do with a malformed row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnMalformed {
    /// Report it, count it, go on.
    #[default]
    Skip,
    /// Stop at it.
    Fail,
}

/// One row: where it is (the line it starts on for text formats, its index from 1 for
/// Parquet and Arrow) and its fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: u64,
    pub fields: Map<String, Value>,
}

/// Malformed rows skipped so far: how many, and the first few in full.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Skipped {
    pub count: u64,
    pub first: Vec<String>,
}

/// Malformed rows kept in full for the report.
const SKIPPED_SHOWN: usize = 20;

impl Skipped {
    fn note(&mut self, e: &ReadError) {
        self.count += 1;
        if self.first.len() < SKIPPED_SHOWN {
            self.first.push(e.to_string());
        }
    }
}

/// The rows of one file.
pub struct Rows {
    path: PathBuf,
    source: Source,
    policy: OnMalformed,
    skipped: Skipped,
    done: bool,
}

enum Source {
    Lines {
        reader: Box<dyn BufRead + Send>,
        line: u64,
    },
    Json(JsonElements),
    Csv {
        reader: csv::Reader<Box<dyn Read + Send>>,
        headers: Vec<String>,
    },
    Batches {
        batches: Box<dyn Iterator<Item = Result<RecordBatch, String>> + Send>,
        pending: std::vec::IntoIter<Row>,
        next: u64,
    },
}

impl Rows {
    pub fn open(path: &Path, policy: OnMalformed) -> Result<Rows, ReadError> {
        Rows::open_as(path, FileFormat::of(path)?, policy)
    }

    pub fn open_as(path: &Path, format: FileFormat, policy: OnMalformed) -> Result<Rows, ReadError> {
        let io = |source| ReadError::Io { path: path.to_path_buf(), source };
        let invalid = |message: String| ReadError::Invalid { path: path.to_path_buf(), message };
        let file = File::open(path).map_err(io)?;
        if file.metadata().map_err(io)?.is_dir() {
            return Err(invalid("is a folder, not a file".into()));
        }
        let source = match format {
            FileFormat::Jsonl => Source::Lines { reader: Box::new(BufReader::with_capacity(1 << 20, file)), line: 0 },
            FileFormat::Json => Source::Json(JsonElements::new(Box::new(BufReader::with_capacity(1 << 20, file)))),
            FileFormat::Csv => {
                let reader: Box<dyn Read + Send> = Box::new(BufReader::with_capacity(1 << 20, file));
                let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(reader);
                let headers = match reader.headers() {
                    Ok(h) => h.iter().map(str::to_string).collect(),
                    Err(e) => return Err(invalid(format!("cannot read the header line: {e}"))),
                };
                Source::Csv { reader, headers }
            }
            FileFormat::Parquet => {
                let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .map_err(|e| invalid(format!("not a readable Parquet file: {e}")))?;
                let reader = builder
                    .with_batch_size(BATCH_ROWS)
                    .build()
                    .map_err(|e| invalid(format!("not a readable Parquet file: {e}")))?;
                batches(reader.map(|b| b.map_err(|e| e.to_string())))
            }
            FileFormat::Arrow => {
                // An Arrow IPC file starts with its magic; `datasets` writes the stream format.
                let mut magic = [0u8; 6];
                let is_file = (&file).read_exact(&mut magic).is_ok() && &magic == b"ARROW1";
                let file = File::open(path).map_err(io)?;
                if is_file {
                    let reader = arrow_ipc::reader::FileReader::try_new(file, None)
                        .map_err(|e| invalid(format!("not a readable Arrow file: {e}")))?;
                    batches(reader.map(|b| b.map_err(|e| e.to_string())))
                } else {
                    let reader = arrow_ipc::reader::StreamReader::try_new(BufReader::new(file), None)
                        .map_err(|e| invalid(format!("not a readable Arrow file or stream: {e}")))?;
                    batches(reader.map(|b| b.map_err(|e| e.to_string())))
                }
            }
        };
        Ok(Rows { path: path.to_path_buf(), source, policy, skipped: Skipped::default(), done: false })
    }

    /// The malformed rows skipped so far.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn skipped(&self) -> &Skipped {
        &self.skipped
    }

    fn malformed(&self, line: u64, message: String) -> ReadError {
        ReadError::Malformed { path: self.path.clone(), line, message }
    }

    /// The next row, a malformed one, the end (`None`), or an error that ends the file.
    fn next_raw(&mut self) -> Option<Result<Row, ReadError>> {
        match &mut self.source {
            Source::Lines { reader, line } => loop {
                *line += 1;
                let at = *line;
                let mut bytes = Vec::new();
                match read_line_into(reader.as_mut(), &mut bytes) {
                    Ok(None) => return None,
                    Ok(Some(end)) => match row_of_line(end, &bytes, at) {
                        None => continue,
                        Some(row) => return Some(row.map_err(|m| self.malformed(at, m))),
                    },
                    Err(e) => return Some(Err(ReadError::Io { path: self.path.clone(), source: e })),
                }
            },
            Source::Json(elements) => match elements.next() {
                Ok(None) => None,
                Ok(Some((at, bytes))) => Some(row_from_json(&bytes, at).map_err(|m| self.malformed(at, m))),
                Err(JsonScanError::Io(e)) => Some(Err(ReadError::Io { path: self.path.clone(), source: e })),
                Err(JsonScanError::Syntax { line, message }) => {
                    // The structure is lost: nothing after this point can be trusted.
                    self.done = true;
                    Some(Err(self.malformed(line, message)))
                }
            },
            Source::Csv { reader, headers } => {
                let mut record = csv::ByteRecord::new();
                match reader.read_byte_record(&mut record) {
                    Ok(false) => None,
                    Ok(true) => {
                        let at = record.position().map_or(0, |p| p.line());
                        let mut fields = Map::new();
                        for (name, value) in headers.iter().zip(record.iter()) {
                            match std::str::from_utf8(value) {
                                Ok(v) => fields.insert(name.clone(), Value::String(v.to_string())),
                                Err(e) => {
                                    let message =
                                        format!("field `{name}` is not UTF-8 (invalid byte at {})", e.valid_up_to());
                                    return Some(Err(self.malformed(at, message)));
                                }
                            };
                        }
                        Some(Ok(Row { line: at, fields }))
                    }
                    Err(e) => {
                        let at = e.position().map_or(0, |p| p.line());
                        let message = match e.kind() {
                            csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                                format!("{len} fields where the header has {expected_len}")
                            }
                            csv::ErrorKind::Io(err) => {
                                return Some(Err(ReadError::Io {
                                    path: self.path.clone(),
                                    source: io::Error::new(err.kind(), err.to_string()),
                                }));
                            }
                            _ => e.to_string(),
                        };
                        Some(Err(self.malformed(at, message)))
                    }
                }
            }
            Source::Batches { batches, pending, next } => loop {
                if let Some(row) = pending.next() {
                    return Some(Ok(row));
                }
                match batches.next()? {
                    Ok(batch) => {
                        let rows = rows_of_batch(&batch, *next);
                        *next += batch.num_rows() as u64;
                        *pending = rows.into_iter();
                    }
                    Err(message) => {
                        self.done = true;
                        return Some(Err(ReadError::Invalid { path: self.path.clone(), message }));
                    }
                }
            },
        }
    }
}

impl Iterator for Rows {
    type Item = Result<Row, ReadError>;

    fn next(&mut self) -> Option<Result<Row, ReadError>> {
        loop {
            if self.done {
                return None;
            }
            match self.next_raw()? {
                Ok(row) => return Some(Ok(row)),
                Err(e @ ReadError::Malformed { .. }) if self.policy == OnMalformed::Skip && !self.done => {
                    self.skipped.note(&e);
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

fn batches(iter: impl Iterator<Item = Result<RecordBatch, String>> + Send + 'static) -> Source {
    Source::Batches { batches: Box::new(iter), pending: Vec::new().into_iter(), next: 1 }
}

#[derive(Clone, Copy)]
enum LineEnd {
    /// The line was appended.
    Kept,
    /// The line was over the limit and nothing of it was kept: its length.
    TooLong(usize),
}

/// Appends the next line, without its end (`\n` or `\r\n`), to `out`; `None` at the end.
fn read_line_into(reader: &mut (impl BufRead + ?Sized), out: &mut Vec<u8>) -> io::Result<Option<LineEnd>> {
    let start = out.len();
    let mut total = 0usize;
    let mut any = false;
    loop {
        let buf = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            break;
        }
        any = true;
        let (chunk, found) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..i], Some(i)),
            None => (buf, None),
        };
        total += chunk.len();
        if total <= MAX_LINE_BYTES {
            out.extend_from_slice(chunk);
        }
        let used = found.map_or(buf.len(), |i| i + 1);
        reader.consume(used);
        if found.is_some() {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if total > MAX_LINE_BYTES {
        out.truncate(start);
        return Ok(Some(LineEnd::TooLong(total)));
    }
    if out.len() > start && out.last() == Some(&b'\r') {
        out.pop();
    }
    Ok(Some(LineEnd::Kept))
}

/// A line of a JSON Lines file (as [`read_line_into`] ended it, `bytes` what it kept) as a row:
/// `None` for a blank line, the message for a malformed one. Both ways of reading judge lines
/// here.
fn row_of_line(end: LineEnd, bytes: &[u8], at: u64) -> Option<Result<Row, String>> {
    Some(text_of_line(end, bytes)?.and_then(|text| row_from_text(text, at)))
}

/// The text of a line that is not blank (the message when it cannot be a row's).
fn text_of_line(end: LineEnd, bytes: &[u8]) -> Option<Result<&str, String>> {
    match end {
        LineEnd::TooLong(n) => Some(Err(format!("the line is {n} bytes, over the {MAX_LINE_BYTES}-byte limit"))),
        LineEnd::Kept if bytes.iter().all(u8::is_ascii_whitespace) => None,
        LineEnd::Kept => Some(utf8(bytes)),
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 (invalid byte at column {})", e.valid_up_to() + 1))
}

/// A JSON text that must be an object.
fn row_from_json(bytes: &[u8], line: u64) -> Result<Row, String> {
    row_from_text(utf8(bytes)?, line)
}

/// [`row_from_json`] of text already checked to be UTF-8 (so the parser does not check each
/// string again).
pub(crate) fn row_from_text(text: &str, line: u64) -> Result<Row, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(fields)) => Ok(Row { line, fields }),
        Ok(other) => Err(format!("a JSON {}, not an object", kind_of(&other))),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

enum JsonScanError {
    Io(io::Error),
    Syntax { line: u64, message: String },
}

/// The top-level values of a `.json` file, one at a time: the elements of an array, or
/// objects written one after another. Only the structure is scanned here (brackets, strings
/// and their escapes); each element is parsed on its own.
struct JsonElements {
    reader: Box<dyn BufRead + Send>,
    line: u64,
    state: JsonState,
}

#[derive(PartialEq)]
enum JsonState {
    Start,
    InArray,
    Loose,
    Done,
}

impl JsonElements {
    fn new(reader: Box<dyn BufRead + Send>) -> JsonElements {
        JsonElements { reader, line: 1, state: JsonState::Start }
    }

    fn peek(&mut self) -> Result<Option<u8>, JsonScanError> {
        let buf = self.reader.fill_buf().map_err(JsonScanError::Io)?;
        Ok(buf.first().copied())
    }

    fn bump(&mut self) -> Result<Option<u8>, JsonScanError> {
        let b = self.peek()?;
        if let Some(b) = b {
            self.reader.consume(1);
            if b == b'\n' {
                self.line += 1;
            }
        }
        Ok(b)
    }

    fn skip_space(&mut self) -> Result<Option<u8>, JsonScanError> {
        while let Some(b) = self.peek()? {
            if !b.is_ascii_whitespace() {
                return Ok(Some(b));
            }
            self.bump()?;
        }
        Ok(None)
    }

    fn syntax(&self, message: impl Into<String>) -> JsonScanError {
        JsonScanError::Syntax { line: self.line, message: message.into() }
    }

    /// The next element: the line it starts on and its bytes.
    fn next(&mut self) -> Result<Option<(u64, Vec<u8>)>, JsonScanError> {
        loop {
            let Some(b) = self.skip_space()? else {
                return match self.state {
                    JsonState::InArray => Err(self.syntax("the file ends inside the array (no closing `]`)")),
                    _ => Ok(None),
                };
            };
            match (&self.state, b) {
                (JsonState::Done, _) => return Err(self.syntax("text after the array's closing `]`")),
                (JsonState::Start, b'[') => {
                    self.bump()?;
                    self.state = JsonState::InArray;
                }
                (JsonState::Start, _) => self.state = JsonState::Loose,
                (JsonState::InArray, b']') => {
                    self.bump()?;
                    self.state = JsonState::Done;
                }
                (JsonState::InArray, b',') => {
                    self.bump()?;
                }
                _ => {
                    let at = self.line;
                    return Ok(Some((at, self.value()?)));
                }
            }
        }
    }

    /// One value's bytes, up to its end.
    fn value(&mut self) -> Result<Vec<u8>, JsonScanError> {
        let mut out = Vec::new();
        let mut depth = 0usize;
        loop {
            let Some(b) = self.peek()? else {
                return if depth == 0 && !out.is_empty() {
                    Ok(out)
                } else {
                    Err(self.syntax("the file ends inside a value"))
                };
            };
            if depth == 0 && !out.is_empty() && (b == b',' || b == b']' || b.is_ascii_whitespace()) {
                return Ok(out);
            }
            self.bump()?;
            out.push(b);
            if out.len() > MAX_LINE_BYTES {
                return Err(self.syntax(format!("an element over the {MAX_LINE_BYTES}-byte limit")));
            }
            match b {
                b'"' => self.string_rest(&mut out)?,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.checked_sub(1).ok_or_else(|| self.syntax("a closing bracket with no opening one"))?;
                    if depth == 0 {
                        return Ok(out);
                    }
                }
                _ => {}
            }
        }
    }

    fn string_rest(&mut self, out: &mut Vec<u8>) -> Result<(), JsonScanError> {
        loop {
            let Some(b) = self.bump()? else { return Err(self.syntax("the file ends inside a string")) };
            out.push(b);
            match b {
                b'\\' => {
                    let Some(e) = self.bump()? else { return Err(self.syntax("the file ends inside a string")) };
                    out.push(e);
                }
                b'"' => return Ok(()),
                _ => {}
            }
        }
    }
}

/// The rows of a record batch as JSON objects; `first` is the first row's index from 1.
fn rows_of_batch(batch: &RecordBatch, first: u64) -> Vec<Row> {
    let schema = batch.schema();
    let columns: Vec<(&str, &dyn Array)> =
        schema.fields().iter().zip(batch.columns()).map(|(f, c)| (f.name().as_str(), c.as_ref())).collect();
    (0..batch.num_rows())
        .map(|i| Row {
            line: first + i as u64,
            fields: columns.iter().map(|(name, col)| (name.to_string(), cell(*col, i))).collect(),
        })
        .collect()
}

/// One value of an Arrow array as JSON: numbers, strings, booleans, lists and structs as
/// themselves; anything else (dates, decimals, binary) as Arrow prints it.
fn cell(array: &dyn Array, i: usize) -> Value {
    use arrow_array::cast::AsArray;
    use arrow_array::types::*;
    use arrow_schema::DataType as T;
    if array.is_null(i) {
        return Value::Null;
    }
    macro_rules! number {
        ($t:ty) => {
            serde_json::json!(array.as_primitive::<$t>().value(i))
        };
    }
    match array.data_type() {
        T::Boolean => Value::Bool(array.as_boolean().value(i)),
        T::Int8 => number!(Int8Type),
        T::Int16 => number!(Int16Type),
        T::Int32 => number!(Int32Type),
        T::Int64 => number!(Int64Type),
        T::UInt8 => number!(UInt8Type),
        T::UInt16 => number!(UInt16Type),
        T::UInt32 => number!(UInt32Type),
        T::UInt64 => number!(UInt64Type),
        T::Float32 => number!(Float32Type),
        T::Float64 => number!(Float64Type),
        T::Utf8 => Value::String(array.as_string::<i32>().value(i).to_string()),
        T::LargeUtf8 => Value::String(array.as_string::<i64>().value(i).to_string()),
        T::Utf8View => Value::String(array.as_string_view().value(i).to_string()),
        T::List(_) => list(array.as_list::<i32>().value(i).as_ref()),
        T::LargeList(_) => list(array.as_list::<i64>().value(i).as_ref()),
        T::Struct(fields) => {
            let s = array.as_struct();
            Value::Object(
                fields.iter().zip(s.columns()).map(|(f, c)| (f.name().clone(), cell(c.as_ref(), i))).collect(),
            )
        }
        T::Dictionary(_, _) => match arrow_cast::cast(&array.slice(i, 1), &T::Utf8) {
            Ok(strings) => cell(strings.as_ref(), 0),
            Err(_) => printed(array, i),
        },
        _ => printed(array, i),
    }
}

fn list(values: &dyn Array) -> Value {
    Value::Array((0..values.len()).map(|j| cell(values, j)).collect())
}

fn printed(array: &dyn Array, i: usize) -> Value {
    let options = arrow_cast::display::FormatOptions::default();
    match arrow_cast::display::ArrayFormatter::try_new(array, &options) {
        Ok(f) => Value::String(f.value(i).to_string()),
        Err(_) => Value::Null,
    }
}

pub(crate) mod parallel;
pub(crate) mod scan;

#[cfg(test)]
mod tests;
