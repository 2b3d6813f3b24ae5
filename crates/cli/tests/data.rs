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
