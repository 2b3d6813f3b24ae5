//! `postdoc data`: a dataset file inspected through the binary, and its bad input.

mod common;

use common::*;
use serde_json::{Value, json};

fn jsonl(dir: &std::path::Path, name: &str, rows: &[Value], extra: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    text.push_str(extra);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn inspect_prints_a_table_and_json_of_what_is_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        json!({"instruction": "Reverse the word", "input": "cat", "output": "tac"}),
        json!({"instruction": "Reverse the word", "input": "dog", "output": "god"}),
        json!({"instruction": "Reverse the word", "input": "cat", "output": "tac"}),
        json!({"instruction": "Shift each letter", "input": "", "output": null}),
    ];
    let path = jsonl(dir.path(), "alpaca.jsonl", &rows, "{broken\n");

    let out = postdoc(dir.path()).args(["data", "inspect"]).arg(&path).arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["rows"], 4);
    assert_eq!(report["skipped"], 1);
    assert_eq!(report["exact_duplicates"]["count"], 1);
    assert_eq!(report["exact_duplicates"]["examples"], json!([[3, 1]]));
    let input = report["columns"].as_array().unwrap().iter().find(|c| c["name"] == "input").unwrap();
    assert_eq!(input["empty"], 1);
    let output = report["columns"].as_array().unwrap().iter().find(|c| c["name"] == "output").unwrap();
    assert_eq!(output["nulls"], 1);
    assert!(report["skipped_examples"][0].as_str().unwrap().contains("alpaca.jsonl:5: not JSON"));

    let out = postdoc(dir.path()).args(["data", "inspect"]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("exact duplicates") && table.contains("line 3 repeats line 1"), "{table}");
    assert!(table.contains("instruction"), "{table}");
}

#[test]
fn inspect_writes_every_duplicate_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    // Eight copies of the first row: seven duplicates, more than the report shows.
    let first = json!({"prompt": "Sort the letters of cab", "completion": "abc"});
    let mut rows = vec![first; 8];
    rows.push(json!({"prompt": "Sort the letters of dog", "completion": "dgo"}));
    let path = jsonl(dir.path(), "pc.jsonl", &rows, "");
    let dups = dir.path().join("dups.jsonl");
    let out = postdoc(dir.path())
        .args(["data", "inspect", "--json", "--no-near"])
        .arg(&path)
        .arg("--duplicates")
        .arg(&dups)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["exact_duplicates"]["count"], 7);
    assert_eq!(report["exact_duplicates"]["examples"].as_array().unwrap().len(), 5);
    let written: Vec<Value> =
        std::fs::read_to_string(&dups).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let lines: Vec<u64> = written.iter().map(|d| d["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, (2..=8).collect::<Vec<u64>>());
    assert!(written.iter().all(|d| d["repeats"] == 1 && d["kind"] == "exact"), "{written:?}");
}

#[test]
fn inspect_refuses_bad_input_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = jsonl(dir.path(), "t.jsonl", &[json!({"a": 1})], "[1, 2]\n");
    let out = postdoc(dir.path()).args(["data", "inspect", "--strict"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("t.jsonl:2: a JSON array, not an object"), "{}", stderr_of(&out));

    let out = postdoc(dir.path()).args(["data", "inspect", "missing.parquet"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("cannot read missing.parquet"), "{}", stderr_of(&out));

    let txt = dir.path().join("notes.txt");
    std::fs::write(&txt, "hello").unwrap();
    let out = postdoc(dir.path()).args(["data", "inspect"]).arg(&txt).output().unwrap();
    assert!(stderr_of(&out).contains("cannot tell the format from the name"), "{}", stderr_of(&out));

    let out = postdoc(dir.path()).args(["data", "inspect", "--near-threshold", "1.5"]).arg(&path).output().unwrap();
    assert!(stderr_of(&out).contains("--near-threshold must be above 0 and at most 1"), "{}", stderr_of(&out));
}

#[test]
fn decontaminate_writes_a_clean_copy_and_names_the_overlaps() {
    let dir = tempfile::tempdir().unwrap();
    let eval = jsonl(
        dir.path(),
        "bench.jsonl",
        &[json!({"prompt": "Reverse the word: lighthouse"}), json!({"prompt": "Reverse the word: windmill"})],
        "",
    );
    let train = jsonl(
        dir.path(),
        "train.jsonl",
        &[
            json!({"prompt": "Reverse the word: harbour", "completion": "ruobrah"}),
            json!({"prompt": "reverse the word:  LIGHTHOUSE", "completion": "esuohthgil"}),
            json!({"prompt": "Reverse the word: anchor", "completion": "rohcna"}),
        ],
        "",
    );
    let clean = dir.path().join("clean.jsonl");
    let out = postdoc(dir.path())
        .args(["data", "decontaminate"])
        .arg(&train)
        .arg("--eval")
        .arg(&eval)
        .arg("--out")
        .arg(&clean)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(said.contains("3 rows read, 2 kept, 1 removed; 1 of 2 evaluation items found"), "{said}");
    assert!(said.contains("line 2: ") && said.contains("bench.jsonl:1 (normalised match)"), "{said}");
    let kept: Vec<Value> =
        std::fs::read_to_string(&clean).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[1]["completion"], "rohcna");

    // An output that is not JSON Lines is refused before anything is written.
    let out = postdoc(dir.path())
        .args(["data", "decontaminate"])
        .arg(&train)
        .arg("--eval")
        .arg(&eval)
        .args(["--out", "clean.csv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("name it .jsonl"), "{}", stderr_of(&out));
    assert!(!dir.path().join("clean.csv").exists());
}

#[test]
fn convert_and_versions_record_what_made_each_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("lineage.db").display());
    let rows = [
        json!({"instruction": "Reverse the word", "input": "cat", "output": "tac"}),
        json!({"conversations": [{"from": "human", "value": "Shift abc"}, {"from": "gpt", "value": "bcd"}]}),
        json!({"prompt": "2+2?", "chosen": "4", "rejected": "5"}),
    ];
    let raw = jsonl(dir.path(), "raw.jsonl", &rows, "");
    let out = dir.path().join("train.parquet");
    let run = postdoc(dir.path())
        .args(["--store", &store, "data", "convert"])
        .arg(&raw)
        .args(["--to", "prompt-completion", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr_of(&run));
    let said = String::from_utf8(run.stdout).unwrap();
    assert!(
        said.contains("3 rows read (alpaca 1, preference 1, sharegpt 1), 2 written as prompt-completion"),
        "{said}"
    );
    assert!(said.contains("1 not converted: a preference pair is not one conversation"), "{said}");
    assert!(said.contains("(recorded in the lineage store)"), "{said}");

    // The converted file's history: made from raw.jsonl by convert.
    let history =
        postdoc(dir.path()).args(["--store", &store, "--json", "data", "versions"]).arg(&out).output().unwrap();
    assert!(history.status.success(), "{}", stderr_of(&history));
    let h: Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(h["known"], true);
    let lineage = h["lineage"].as_array().unwrap();
    assert_eq!(lineage.len(), 2, "{h}");
    assert_eq!(lineage[0]["transform"]["op"], "convert");
    assert_eq!(lineage[0]["transform"]["to"], "prompt-completion");
    assert_eq!(lineage[0]["shape"], "prompt-completion");
    assert!(lineage[1]["source"].as_str().unwrap().ends_with("raw.jsonl"));

    // The same rows as JSON Lines are the same version.
    let again = dir.path().join("train.jsonl");
    postdoc(dir.path())
        .args(["data", "convert"])
        .arg(&raw)
        .args(["--to", "prompt-completion", "--out"])
        .arg(&again)
        .assert()
        .success();
    let a = postdoc(dir.path()).args(["--store", &store, "--json", "data", "versions"]).arg(&again).output().unwrap();
    let a: Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(a["version"], h["version"]);

    let all = postdoc(dir.path()).args(["--store", &store, "data", "versions"]).output().unwrap();
    let table = String::from_utf8(all.stdout).unwrap();
    assert!(table.contains("by convert"), "{table}");

    // Bad input: an unknown shape, nothing to convert, no store for versions.
    let bad = postdoc(dir.path())
        .args(["data", "convert"])
        .arg(&raw)
        .args(["--to", "chatml", "--out", "x.jsonl"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr_of(&bad).contains("unknown shape `chatml`"), "{}", stderr_of(&bad));
    let plain = jsonl(dir.path(), "plain.jsonl", &[json!({"text": "just text"})], "");
    let bad = postdoc(dir.path())
        .args(["data", "convert"])
        .arg(&plain)
        .args(["--to", "messages", "--out", "y.jsonl"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr_of(&bad).contains("no row could be converted to messages"), "{}", stderr_of(&bad));
    assert!(!dir.path().join("y.jsonl").exists());
    let bad = postdoc(dir.path()).args(["data", "versions"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr_of(&bad).contains("no lineage store here"), "{}", stderr_of(&bad));
}

#[test]
fn inspect_writes_an_html_page_with_plots() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<Value> =
        (0..50).map(|i| json!({"prompt": format!("<b>question {i}</b>"), "answer": "x".repeat(i)})).collect();
    let path = jsonl(dir.path(), "qa.jsonl", &rows, "");
    let page = dir.path().join("qa.html");
    let out = postdoc(dir.path()).args(["data", "inspect"]).arg(&path).arg("--html").arg(&page).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<svg") && html.contains("characters per row"));
    assert!(html.contains("&lt;b&gt;question"), "the data is shown as text");
    assert!(!html.contains("<script"));
    assert!(html.contains("prompt-answer 50"), "the shape is recognised");
}
