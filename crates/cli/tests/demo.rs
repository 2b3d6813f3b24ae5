//! The README's first command, end to end on the real example: Python, numpy installed by the
//! recipe's setup into the study folder, the pretrained base model, the evaluator and the
//! contamination check, with one candidate trial to keep it short.

mod common;

use common::*;

#[test]
fn the_demo_sets_up_studies_and_summarises_the_example() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("demo");
    let out = postdoc(parent.path()).args(["demo", "--max-trials", "1", "--dir"]).arg(&dir).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), stderr_of(&out));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("postdoc demo finished (reached the budget of 1 trials)"), "{stdout}");
    assert!(stdout.contains("baseline   accuracy 0."), "{stdout}");
    assert!(stdout.contains(&format!("postdoc -C {} best [--branch NAME]", dir.display())), "{stdout}");

    // The study is there to inspect: the baseline's three seeds and one candidate, none of
    // them contaminated (the recipe's own problems are not the benchmark's).
    let export = postdoc(&dir).args(["export", "--format", "jsonl"]).output().unwrap();
    let trials: Vec<serde_json::Value> =
        String::from_utf8_lossy(&export.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(trials.len(), 2, "{trials:?}");
    assert_eq!(trials[0]["label"], "keep");
    assert_eq!(trials[0]["runs"], 3);
    assert!(trials[0]["score"].as_f64().unwrap() < 0.3, "the starting recipe leaves headroom: {}", trials[0]["score"]);
    assert!(trials.iter().all(|t| t["label"] != "contaminated"), "{trials:?}");
    assert!(dir.join(".postdoc/studies/tiny-posttrain/env/pyvenv.cfg").exists(), "numpy lives in the study's venv");
}
