//! A dataset's version: a hash of its normalised content, so the same rows have the same
//! version whatever file they are in. Normalised means each row as canonical JSON (object keys
//! sorted, no spaces, numbers as JSON writes them), one per line, in the file's order: the same
//! rows written as JSON Lines with other spacing or key order, or as Parquet, hash the same; a
//! changed, added, removed or reordered row changes the version.
//!
//! The hash is BLAKE3: as strong as SHA-256 for naming content, and several times faster over
//! a large file, because it works on many 1 KiB pieces of its input at once (so the rows are
//! given to it a megabyte at a time, not one by one). The rows are hashed in order on one
//! thread, so its speed bounds the inspection's.

use crate::formats::{self, Shape};
use crate::read::{FileFormat, OnMalformed, ReadError, Rows};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// What a dataset file holds, named by its content.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fingerprint {
    /// The BLAKE3 hash of the normalised rows, in hex.
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
    hash: blake3::Hasher,
    /// Rows not yet hashed: up to [`HASHED_AT_ONCE`] bytes.
    pending: Vec<u8>,
    rows: u64,
    buf: Vec<u8>,
    shapes: BTreeMap<Shape, u64>,
}

/// Bytes of rows handed to the hash at once (enough for it to work on many pieces together).
const HASHED_AT_ONCE: usize = 1 << 20;

impl Hasher {
    pub fn add(&mut self, row: &serde_json::Map<String, Value>) {
        self.buf.clear();
        canonical_line(row, &mut self.buf);
        self.pending.extend_from_slice(&self.buf);
        self.hash_when_full();
        self.count(formats::recognise(row));
    }

    /// [`Hasher::add`] for rows whose canonical lines were written elsewhere (on other
    /// threads): `lines` holds them one after another, as [`canonical_line`] writes them, and
    /// `shapes` their shapes.
    pub(crate) fn add_canonical(&mut self, lines: &[u8], shapes: impl IntoIterator<Item = Option<Shape>>) {
        if self.pending.is_empty() && lines.len() >= HASHED_AT_ONCE / 8 {
            // Long enough to be hashed as it is, without a copy.
            self.hash.update(lines);
        } else {
            self.pending.extend_from_slice(lines);
            self.hash_when_full();
        }
        for shape in shapes {
            self.count(shape);
        }
    }

    fn hash_when_full(&mut self) {
        if self.pending.len() >= HASHED_AT_ONCE {
            self.hash.update(&self.pending);
            self.pending.clear();
        }
    }

    fn count(&mut self, shape: Option<Shape>) {
        self.rows += 1;
        if let Some(shape) = shape {
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
        let mut hash = self.hash;
        hash.update(&self.pending);
        let version = hash.finalize().to_hex().to_string();
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
    // Rows are written out canonically on every core and hashed in file order.
    Rows::open_as(path, format, OnMalformed::Fail)?.map_each(
        |row, _| {
            let mut line = Vec::new();
            canonical_line(&row.fields, &mut line);
            (line, formats::recognise(&row.fields))
        },
        |(line, shape)| {
            hasher.add_canonical(&line, [shape]);
            Ok::<_, ReadError>(())
        },
    )?;
    let (version, rows, shape) = hasher.finish();
    Ok(Fingerprint { version, rows, bytes, format: format.as_str().into(), shape })
}

/// A row as the version hashes it: canonical JSON and a newline.
pub(crate) fn canonical_line(row: &serde_json::Map<String, Value>, out: &mut Vec<u8>) {
    write_object(row, out);
    out.push(b'\n');
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
        Value::String(s) => write_string(s, out),
        scalar => serde_json::to_writer(&mut *out, scalar).expect("a JSON scalar serializes"),
    }
}

fn write_object(map: &serde_json::Map<String, Value>, out: &mut Vec<u8>) {
    out.push(b'{');
    let member = |i: usize, key: &str, value: &Value, out: &mut Vec<u8>| {
        if i > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        write_value(value, out);
    };
    // Maps mostly keep their keys sorted already: then nothing is sorted or gathered.
    if map.keys().zip(map.keys().skip(1)).all(|(a, b)| a <= b) {
        for (i, (key, value)) in map.iter().enumerate() {
            member(i, key, value, out);
        }
    } else {
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        for (i, key) in keys.into_iter().enumerate() {
            member(i, key, &map[key], out);
        }
    }
    out.push(b'}');
}

/// A JSON string exactly as serde_json writes it (`\"`, `\\`, the short escapes of control
/// characters, `\u00XX` for the others, everything else as it is), copying the runs that need
/// nothing whole.
pub(crate) fn write_string(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let (mut start, mut i) = (0, 0);
    loop {
        i = next_special(bytes, i);
        let Some(&b) = bytes.get(i) else { break };
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Where the first byte at or after `i` is that a JSON string escapes (below 0x20, a quote or a
/// backslash), or the end. Runs of other bytes, nearly all of a text, are passed 32 bytes at a
/// time where the CPU can (eight otherwise).
pub(crate) fn next_special(bytes: &[u8], mut i: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        i = unsafe { skip_plain_avx2(bytes, i) };
    }
    while let Some(word) = bytes.get(i..i + 8)
        && !any_special(word)
    {
        i += 8;
    }
    while bytes.get(i).is_some_and(|&b| b >= 0x20 && b != b'"' && b != b'\\') {
        i += 1;
    }
    i
}

/// Passes whole blocks of 32 bytes none of which is special; stops at the first special byte,
/// or where fewer than 32 bytes are left.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn skip_plain_avx2(bytes: &[u8], mut i: usize) -> usize {
    use std::arch::x86_64::*;
    while i + 32 <= bytes.len() {
        // SAFETY: the 32 bytes from i are in the slice.
        let v = unsafe { _mm256_loadu_si256(bytes.as_ptr().add(i).cast()) };
        let quote = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'"' as i8));
        let backslash = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'\\' as i8));
        // v <= 0x1f as an unsigned byte: the smaller of the two is v itself.
        let control = _mm256_cmpeq_epi8(_mm256_min_epu8(v, _mm256_set1_epi8(0x1f)), v);
        let special = _mm256_movemask_epi8(_mm256_or_si256(_mm256_or_si256(quote, backslash), control)) as u32;
        if special != 0 {
            return i + special.trailing_zeros() as usize;
        }
        i += 32;
    }
    i
}

/// Whether any of eight bytes is below 0x20, a quote or a backslash: the bytes a JSON string
/// escapes (exact either way: the classic tests for a byte below n <= 128, and for a zero byte
/// after an exclusive or).
fn any_special(word: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let w = u64::from_le_bytes(word.try_into().expect("eight bytes"));
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
    (below_space | zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\')))) != 0
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

    proptest::proptest! {
        /// Strings are written byte for byte as serde_json writes them, whatever they hold.
        #[test]
        fn strings_are_written_as_serde_json_writes_them(text in "(\\PC|[\\x00-\\x1f\"\\\\\x7f])*") {
            let mut out = Vec::new();
            write_string(&text, &mut out);
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&text).unwrap());
        }

        /// Long runs that need no escape, passed a block at a time, with the odd byte that does.
        #[test]
        fn long_plain_runs_are_written_as_serde_json_writes_them(text in "([a-zé 日]{0,90}[\\x00-\\x1f\"\\\\]?){0,5}") {
            let mut out = Vec::new();
            write_string(&text, &mut out);
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&text).unwrap());
        }

        /// Rows whose keys come in any order are written with them sorted.
        #[test]
        fn rows_are_written_with_their_keys_sorted(keys in proptest::collection::vec("[a-z\"]{0,4}", 0..8)) {
            let row: serde_json::Map<String, Value> =
                keys.iter().enumerate().map(|(i, k)| (k.clone(), json!({"z": i, "a": [k]}))).collect();
            let mut out = Vec::new();
            canonical_line(&row, &mut out);
            let mut sorted: Vec<(&String, &Value)> = row.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            let expected: Vec<String> = sorted
                .iter()
                .map(|(k, v)| format!("{}:{{\"a\":{},\"z\":{}}}", serde_json::to_string(k).unwrap(), v["a"], v["z"]))
                .collect();
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), format!("{{{}}}\n", expected.join(",")));
        }
    }
}
