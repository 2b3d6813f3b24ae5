//! A dataset's version: a hash of its normalised content, so the same rows have the same
//! version whatever file they are in. Normalised means each row as canonical JSON (object keys
//! sorted, no spaces, numbers as JSON writes them), one per line, in the file's order: the same
//! rows written as JSON Lines with other spacing or key order, or as Parquet, hash the same; a
//! changed, added, removed or reordered row changes the version.

use crate::formats::{self, Shape};
use crate::read::{FileFormat, OnMalformed, ReadError, Rows};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// What a dataset file holds, named by its content.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fingerprint {
    /// The SHA-256 of the normalised rows, in hex.
    pub version: String,
    pub rows: u64,
    /// The file's size in bytes.
    pub bytes: u64,
    pub format: String,
    /// The post-training shape most of its rows have, if any.
    pub shape: Option<Shape>,
}

impl Fingerprint {
    /// The version as people see it (as git shortens a commit).
    pub fn short(&self) -> &str {
        short(&self.version)
    }
}

/// The first twelve characters of a version.
pub fn short(version: &str) -> &str {
    &version[..version.len().min(12)]
}

/// Hashes rows one at a time.
#[derive(Default)]
pub struct Hasher {
    sha: Sha256,
    rows: u64,
    buf: Vec<u8>,
    shapes: BTreeMap<Shape, u64>,
}

impl Hasher {
    pub fn add(&mut self, row: &serde_json::Map<String, Value>) {
        self.buf.clear();
        write_object(row, &mut self.buf);
        self.buf.push(b'\n');
        self.sha.update(&self.buf);
        self.rows += 1;
        if let Some(shape) = formats::recognise(row) {
            *self.shapes.entry(shape).or_default() += 1;
        }
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The last row added, as the canonical JSON line that was hashed (ending in a newline).
    pub fn last_line(&self) -> &[u8] {
        &self.buf
    }

    /// The version, the row count, and the shape more than half of the rows have.
    pub fn finish(self) -> (String, u64, Option<Shape>) {
        let version = self.sha.finalize().iter().map(|b| format!("{b:02x}")).collect();
        let shape = self.shapes.iter().max_by_key(|(_, n)| **n).filter(|(_, n)| **n * 2 > self.rows).map(|(s, _)| *s);
        (version, self.rows, shape)
    }
}

/// The fingerprint of a dataset file. A malformed row makes the file unversionable (its content
/// is not well defined), so reading is strict.
pub fn fingerprint(path: &Path) -> Result<Fingerprint, ReadError> {
    let format = FileFormat::of(path)?;
    let bytes = std::fs::metadata(path).map_err(|source| ReadError::Io { path: path.to_path_buf(), source })?.len();
    let mut hasher = Hasher::default();
    for row in Rows::open_as(path, format, OnMalformed::Fail)? {
        hasher.add(&row?.fields);
    }
    let (version, rows, shape) = hasher.finish();
    Ok(Fingerprint { version, rows, bytes, format: format.as_str().into(), shape })
}

/// Canonical JSON: keys sorted whatever order the map keeps them in.
fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => write_object(map, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("a JSON scalar serializes"),
    }
}

fn write_object(map: &serde_json::Map<String, Value>, out: &mut Vec<u8>) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    out.push(b'{');
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, key).expect("a string serializes");
        out.push(b':');
        write_value(&map[key], out);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::schema;
    use crate::write::RowWriter;
    use serde_json::json;

    #[test]
    fn the_same_rows_have_one_version_in_any_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jsonl");
        std::fs::write(
            &a,
            "{\"prompt\": \"2+2=\", \"completion\": \"4\"}\n\n{\"prompt\":\"x\",\"completion\":\"y\"}\n",
        )
        .unwrap();
        let b = dir.path().join("b.jsonl");
        std::fs::write(&b, "{\"completion\":\"4\",\"prompt\":\"2+2=\"}\n{\"completion\": \"y\", \"prompt\": \"x\"}")
            .unwrap();
        let c = dir.path().join("c.parquet");
        let mut w = RowWriter::create(&c, Some(schema(Shape::PromptCompletion))).unwrap();
        w.write(&json!({"prompt": "2+2=", "completion": "4"})).unwrap();
        w.write(&json!({"prompt": "x", "completion": "y"})).unwrap();
        w.finish().unwrap();
        let (fa, fb, fc) = (fingerprint(&a).unwrap(), fingerprint(&b).unwrap(), fingerprint(&c).unwrap());
        assert_eq!(fa.version, fb.version);
        assert_eq!(fa.version, fc.version);
        assert_eq!(fa.version.len(), 64);
        assert_eq!(fa.short().len(), 12);
        assert_eq!((fa.rows, fa.shape), (2, Some(Shape::PromptCompletion)));
        assert_eq!((fc.format.as_str(), fa.format.as_str()), ("parquet", "jsonl"));

        // Any change to the rows is another version: a value, the order, one row more.
        for changed in [
            "{\"prompt\": \"2+2=\", \"completion\": \"5\"}\n{\"prompt\":\"x\",\"completion\":\"y\"}\n",
            "{\"prompt\":\"x\",\"completion\":\"y\"}\n{\"prompt\": \"2+2=\", \"completion\": \"4\"}\n",
            "{\"prompt\": \"2+2=\", \"completion\": \"4\"}\n{\"prompt\":\"x\",\"completion\":\"y\"}\n{\"prompt\":\"x\",\"completion\":\"y\"}\n",
        ] {
            std::fs::write(&b, changed).unwrap();
            assert_ne!(fingerprint(&b).unwrap().version, fa.version, "{changed}");
        }
    }

    #[test]
    fn canonical_json_sorts_nested_keys() {
        let mut out = Vec::new();
        let Value::Object(row) = json!({"b": {"z": 1, "a": [true, null, 1.5]}, "a": "é\n"}) else { unreachable!() };
        write_object(&row, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"a":"é\n","b":{"a":[true,null,1.5],"z":1}}"#);
    }

    #[test]
    fn a_malformed_file_has_no_version() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.jsonl");
        std::fs::write(&bad, "{\"a\": 1}\n{oops\n").unwrap();
        let e = fingerprint(&bad).unwrap_err();
        assert!(e.to_string().contains("bad.jsonl:2"), "{e}");
        let empty = dir.path().join("empty.jsonl");
        std::fs::write(&empty, "").unwrap();
        let f = fingerprint(&empty).unwrap();
        assert_eq!((f.rows, f.shape), (0, None));
    }
}
