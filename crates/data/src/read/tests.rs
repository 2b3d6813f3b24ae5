use super::*;
use arrow_array::{ArrayRef, Int64Array, ListArray, StringArray};
use arrow_schema::{DataType, Field, Schema};
use serde_json::json;
use std::sync::Arc;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn all(path: &Path, policy: OnMalformed) -> (Vec<Row>, Skipped, Option<String>) {
    let mut rows = Rows::open(path, policy).unwrap();
    let mut out = Vec::new();
    let mut error = None;
    for r in rows.by_ref() {
        match r {
            Ok(row) => out.push(row),
            Err(e) => error = Some(e.to_string()),
        }
    }
    (out, rows.skipped().clone(), error)
}

fn texts(rows: &[Row], key: &str) -> Vec<Value> {
    rows.iter().map(|r| r.fields.get(key).cloned().unwrap_or(Value::Null)).collect()
}

#[test]
fn json_lines_skip_or_stop_at_what_is_malformed_and_say_where() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"{\"a\": \"one\"}\n\n{\"a\": \"two\"}\r\n{not json}\n[1, 2]\n".to_vec();
    bytes.extend_from_slice(b"{\"a\": \"\xff\xfe\"}\n{\"a\": \"three\"}");
    let path = write(dir.path(), "train.jsonl", &bytes);

    let (rows, skipped, error) = all(&path, OnMalformed::Skip);
    assert_eq!(texts(&rows, "a"), vec![json!("one"), json!("two"), json!("three")]);
    assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![1, 3, 7], "blank lines count as lines");
    assert_eq!(error, None);
    assert_eq!(skipped.count, 3);
    let shown = format!("{}", path.display());
    assert!(skipped.first[0].starts_with(&format!("{shown}:4: not JSON")), "{:?}", skipped.first);
    assert_eq!(skipped.first[1], format!("{shown}:5: a JSON array, not an object"));
    assert!(skipped.first[2].starts_with(&format!("{shown}:6: not UTF-8")), "{:?}", skipped.first);

    let (rows, _, error) = all(&path, OnMalformed::Fail);
    assert_eq!(rows.len(), 2, "stops at the first malformed line");
    assert!(error.unwrap().starts_with(&format!("{shown}:4: not JSON")));
}

#[test]
fn a_line_over_the_limit_is_refused_in_its_place_without_being_held() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"{\"a\": \"first\"}\n{\"a\": \"".to_vec();
    bytes.resize(MAX_LINE_BYTES + 100, b'x');
    bytes.extend_from_slice(b"\"}\n{\"a\": \"ok\"}\n");
    let path = write(dir.path(), "big.jsonl", &bytes);
    let expected = all(&path, OnMalformed::Skip);
    let (rows, skipped, _) = &expected;
    assert_eq!(texts(rows, "a"), vec![json!("first"), json!("ok")]);
    assert_eq!(skipped.count, 1);
    assert!(skipped.first[0].contains(":2: the line is"), "{:?}", skipped.first);
    assert!(skipped.first[0].contains("over the 67108864-byte limit"), "{:?}", skipped.first);
    // Read in parallel (here in chunks far smaller than the line), the same.
    assert_eq!(all_in_parallel(&path, OnMalformed::Skip, 2, 1 << 10), expected);
}

#[test]
fn json_arrays_and_loose_objects_are_read_element_by_element() {
    let dir = tempfile::tempdir().unwrap();
    let tricky = r#"[
  {"q": "a ] in a string, and a \" quote", "n": [1, {"x": "}"}]},
  {"q": "second"}
]"#;
    let path = write(dir.path(), "a.json", tricky.as_bytes());
    let (rows, skipped, error) = all(&path, OnMalformed::Fail);
    assert_eq!(error, None);
    assert_eq!(skipped.count, 0);
    assert_eq!(texts(&rows, "q"), vec![json!("a ] in a string, and a \" quote"), json!("second")]);
    assert_eq!(rows[0].fields["n"], json!([1, {"x": "}"}]));
    assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 3]);

    let path = write(dir.path(), "loose.json", b"{\"q\": 1}\n{\"q\": 2}\n");
    let (rows, _, _) = all(&path, OnMalformed::Fail);
    assert_eq!(texts(&rows, "q"), vec![json!(1), json!(2)]);

    // A cut-off file: the elements before the cut are read, then the error says where.
    let path = write(dir.path(), "cut.json", b"[{\"q\": 1},\n{\"q\": \"unfinished");
    let (rows, _, error) = all(&path, OnMalformed::Skip);
    assert_eq!(texts(&rows, "q"), vec![json!(1)]);
    assert_eq!(error.unwrap(), format!("{}:2: the file ends inside a string", path.display()));

    // Elements that are not objects are malformed rows like any other.
    let path = write(dir.path(), "mixed.json", b"[{\"q\": 1}, \"text\", {\"q\": 3}]");
    let (rows, skipped, _) = all(&path, OnMalformed::Skip);
    assert_eq!(texts(&rows, "q"), vec![json!(1), json!(3)]);
    assert_eq!(skipped.count, 1);
}

#[test]
fn csv_rows_are_objects_of_their_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "t.csv", b"prompt,answer\n\"2+2, please\",4\nonly one field\n3+3,6\n");
    let (rows, skipped, _) = all(&path, OnMalformed::Skip);
    assert_eq!(texts(&rows, "prompt"), vec![json!("2+2, please"), json!("3+3")]);
    assert_eq!(texts(&rows, "answer"), vec![json!("4"), json!("6")]);
    assert_eq!(skipped.count, 1);
    assert_eq!(skipped.first[0], format!("{}:3: 1 fields where the header has 2", path.display()));
}

fn batch() -> RecordBatch {
    let values = Int64Array::from(vec![1, 2, 3]);
    let offsets = arrow_buffer::OffsetBuffer::new(vec![0, 2, 2, 3].into());
    let tags = ListArray::new(Arc::new(Field::new("item", DataType::Int64, true)), offsets, Arc::new(values), None);
    let schema = Schema::new(vec![
        Field::new("text", DataType::Utf8, true),
        Field::new("n", DataType::Int64, false),
        Field::new("tags", tags.data_type().clone(), true),
    ]);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![Some("a"), None, Some("c")])),
        Arc::new(Int64Array::from(vec![10, 20, 30])),
        Arc::new(tags),
    ];
    RecordBatch::try_new(Arc::new(schema), columns).unwrap()
}

fn expected_rows() -> Vec<Value> {
    vec![
        json!({"text": "a", "n": 10, "tags": [1, 2]}),
        json!({"text": null, "n": 20, "tags": []}),
        json!({"text": "c", "n": 30, "tags": [3]}),
    ]
}

#[test]
fn parquet_and_arrow_files_and_streams_read_as_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let b = batch();
    let parquet_path = dir.path().join("t.parquet");
    let mut w = parquet::arrow::ArrowWriter::try_new(File::create(&parquet_path).unwrap(), b.schema(), None).unwrap();
    w.write(&b).unwrap();
    w.close().unwrap();
    let file_path = dir.path().join("t.arrow");
    let mut w = arrow_ipc::writer::FileWriter::try_new(File::create(&file_path).unwrap(), &b.schema()).unwrap();
    w.write(&b).unwrap();
    w.finish().unwrap();
    let stream_path = dir.path().join("data-00000-of-00001.arrow");
    let mut w = arrow_ipc::writer::StreamWriter::try_new(File::create(&stream_path).unwrap(), &b.schema()).unwrap();
    w.write(&b).unwrap();
    w.write(&b).unwrap();
    w.finish().unwrap();

    for path in [&parquet_path, &file_path] {
        let (rows, _, error) = all(path, OnMalformed::Fail);
        assert_eq!(error, None, "{}", path.display());
        let got: Vec<Value> = rows.iter().map(|r| Value::Object(r.fields.clone())).collect();
        assert_eq!(got, expected_rows(), "{}", path.display());
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![1, 2, 3]);
    }
    let (rows, _, _) = all(&stream_path, OnMalformed::Fail);
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[5].line, 6, "rows are numbered across batches");
}

#[test]
fn files_that_are_not_what_they_say_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let fake = write(dir.path(), "fake.parquet", b"this is not parquet at all");
    let e = Rows::open(&fake, OnMalformed::Skip).err().unwrap().to_string();
    assert!(e.starts_with(&format!("{}: not a readable Parquet file", fake.display())), "{e}");
    let fake = write(dir.path(), "fake.arrow", b"nor this arrow");
    let e = Rows::open(&fake, OnMalformed::Skip).err().unwrap().to_string();
    assert!(e.contains("not a readable Arrow file"), "{e}");
    let e = Rows::open(&dir.path().join("data.txt"), OnMalformed::Skip).err().unwrap().to_string();
    assert!(e.contains("cannot tell the format from the name"), "{e}");
    let e = Rows::open(&dir.path().join("missing.jsonl"), OnMalformed::Skip).err().unwrap().to_string();
    assert!(e.contains("missing.jsonl") && e.contains("No such file"), "{e}");
    let empty = write(dir.path(), "empty.jsonl", b"");
    assert_eq!(all(&empty, OnMalformed::Fail).0.len(), 0, "an empty file has no rows");
}

/// The rows, skipped lines and error of reading `path` on `workers` threads in chunks of about
/// `chunk` bytes.
fn all_in_parallel(
    path: &Path,
    policy: OnMalformed,
    workers: usize,
    chunk: usize,
) -> (Vec<Row>, Skipped, Option<String>) {
    let mut rows = Rows::open(path, policy).unwrap();
    let mut out = Vec::new();
    let add = |batch: &mut Vec<Option<Row>>, text: &str, line, _| {
        batch.push(Some(row_from_text(text, line)?));
        Ok(())
    };
    let result = rows.fold_lines_in_parallel(workers, chunk, &add, &mut |batch, taken| {
        out.extend(batch[taken].iter_mut().map(|row| row.take().unwrap()));
        Ok::<_, ReadError>(())
    });
    (out, rows.skipped().clone(), result.err().map(|e| e.to_string()))
}

#[test]
fn json_lines_read_in_parallel_are_read_as_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    for i in 0..300 {
        match i % 11 {
            0 => bytes.extend_from_slice(b"\n"),
            1 => bytes.extend_from_slice(b"   \r\n"),
            2 => bytes.extend_from_slice(b"{not json}\n"),
            3 => bytes.extend_from_slice(b"[1, 2]\n"),
            4 => bytes.extend_from_slice(b"{\"a\": \"\xff\"}\n"),
            5 => bytes.extend_from_slice(format!("{{\"a\": \"crlf {i}\"}}\r\n").as_bytes()),
            _ => bytes.extend_from_slice(format!("{{\"a\": \"row {i}\", \"n\": {i}}}\n").as_bytes()),
        }
    }
    bytes.extend_from_slice(b"{\"a\": \"no end of line\"}");
    let path = write(dir.path(), "mixed.jsonl", &bytes);
    for policy in [OnMalformed::Skip, OnMalformed::Fail] {
        let expected = all(&path, policy);
        for (workers, chunk) in [(1, 1), (2, 1), (2, 40), (3, 333), (2, 1 << 20)] {
            let got = all_in_parallel(&path, policy, workers, chunk);
            assert_eq!(got, expected, "{policy:?} on {workers} workers, chunks of {chunk} bytes");
        }
    }
    let planned = (0..300).filter(|i| i % 11 >= 5).count() + 1;
    assert_eq!(all(&path, OnMalformed::Skip).0.len(), planned, "the file is as planned");
    // However the file ends: a last line with a `\r` and no `\n`, a blank last line, a lone
    // line end, nothing at all.
    for (i, ending) in [&b"{\"a\": 1}\r"[..], b"{\"a\": 1}\n  ", b"\n", b"\r", b""].into_iter().enumerate() {
        let path = write(dir.path(), &format!("end{i}.jsonl"), &[&bytes[..200], ending].concat());
        let expected = all(&path, OnMalformed::Skip);
        for (workers, chunk) in [(1, 1), (2, 7), (2, 1 << 20)] {
            assert_eq!(all_in_parallel(&path, OnMalformed::Skip, workers, chunk), expected, "ending {ending:?}");
        }
    }
}

#[derive(Debug, PartialEq)]
enum Stop {
    Read(String),
    At(u64),
}

impl From<ReadError> for Stop {
    fn from(e: ReadError) -> Stop {
        Stop::Read(e.to_string())
    }
}

#[test]
fn mapping_stops_at_the_first_error_the_caller_returns() {
    let dir = tempfile::tempdir().unwrap();
    let lines: String = (1..=5000).map(|i| format!("{{\"n\": {i}}}\n")).collect();
    let path = write(dir.path(), "many.jsonl", lines.as_bytes());
    let mut rows = Rows::open(&path, OnMalformed::Fail).unwrap();
    let mut seen = Vec::new();
    let result = rows.map_each(
        |row, _| row.fields["n"].as_u64().unwrap(),
        |n| {
            seen.push(n);
            if n == 1234 { Err(Stop::At(n)) } else { Ok(()) }
        },
    );
    assert_eq!(result, Err(Stop::At(1234)));
    assert_eq!(seen, (1..=1234).collect::<Vec<_>>(), "in file order, nothing after the error");
    assert_eq!(rows.next().map(|r| r.is_ok()), None, "the rows are used up");
}
