//! The binary, command by command, on the bundled example.

mod common;

use common::*;
use predicates::prelude::*;

#[test]
fn a_study_on_the_example_through_every_command() {
    let dir = example();
    let out = postdoc(dir.path()).args(["run", "--max-trials", "4", "--parallel", "2"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("Stopped: reached the budget of 4 trials."), "{err}");
    assert!(err.contains("trial   0 keep"), "{err}");

    let status = postdoc(dir.path()).args(["status", "--json"]).output().unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["trials"], 4);
    assert_eq!(status["baseline"]["runs"], 3);
    postdoc(dir.path()).arg("status").assert().success().stdout(predicate::str::contains("baseline"));

    let show = postdoc(dir.path()).args(["show", "1", "--json"]).output().unwrap();
    let show: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(show["trial"]["number"], 1);
    assert!(!show["runs"].as_array().unwrap().is_empty());
    assert_eq!(show["events"][0]["kind"], "proposed");
    postdoc(dir.path())
        .args(["show", "1", "--full"])
        .assert()
        .success()
        .stdout(predicate::str::contains("diff against the parent"));
    postdoc(dir.path()).args(["show", "99"]).assert().failure().stderr(predicate::str::contains("no trial 99"));
    postdoc(dir.path())
        .args(["show", "1", "--transcript"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("has no transcript: only agent specialists keep one"));
    postdoc(dir.path())
        .args(["approve", "1"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("trial 1 is not waiting"));
    postdoc(dir.path()).args(["reject", "1", "--note", "no"]).assert().failure();
    postdoc(dir.path()).args(["note", "  "]).assert().failure().stderr(predicate::str::contains("the note is empty"));
    postdoc(dir.path()).args(["note", "Keep epochs under 8."]).assert().success();
    postdoc(dir.path())
        .args(["lineage"])
        .assert()
        .success()
        .stdout(predicate::str::contains("## Notes from the researcher (follow them)\n- Keep epochs under 8."));
    postdoc(dir.path())
        .args(["run", "--max-trials", "4", "--brain", "local"])
        .assert()
        .success()
        .stderr(predicate::str::contains("--brain is not used: postdoc.toml declares no agent specialist"));
    postdoc(dir.path())
        .args(["run", "--brain", "gpt-4o"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("expected PROVIDER:MODEL"));

    postdoc(dir.path())
        .args(["lineage", "--specialist", "optimizer"])
        .assert()
        .success()
        .stdout(predicate::str::contains("# Study `tiny-logreg`: maximize accuracy"));
    postdoc(dir.path()).args(["lineage", "--specialist", "nobody"]).assert().failure();

    postdoc(dir.path()).args(["best", "--branch", "tuned"]).assert().success();
    sh(dir.path(), "git rev-parse --verify -q refs/heads/tuned");
    postdoc(dir.path())
        .args(["best", "--branch", "tuned"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("cannot create branch tuned"));

    let jsonl = postdoc(dir.path()).args(["export", "--format", "jsonl"]).output().unwrap();
    let records: Vec<serde_json::Value> =
        String::from_utf8(jsonl.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(records.len() >= 5);
    for key in ["id", "parent", "specialist", "hypothesis", "label", "scores", "compute_seconds", "commit"] {
        assert!(records[1].get(key).is_some(), "export lacks {key}");
    }
    let csv_path = dir.path().join("lineage.csv");
    postdoc(dir.path()).args(["export", "--format", "csv", "--out"]).arg(&csv_path).assert().success();
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert!(csv.starts_with("id,parent,retry_of,specialist,hypothesis,"));
    assert_eq!(csv.lines().filter(|l| l.starts_with(|c: char| c.is_ascii_digit())).count(), records.len());

    // The report: one self-contained HTML file with the study inside, and its Markdown twin.
    let html_path = dir.path().join("report.html");
    postdoc(dir.path())
        .args(["report", "--out"])
        .arg(&html_path)
        .assert()
        .success()
        .stdout(predicate::str::contains("wrote"));
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(
        html.contains("id=\"postdoc-report\"") && html.contains("Content-Security-Policy"),
        "data and policy inline"
    );
    assert!(!html.contains("src=\"/app.js\"") && !html.contains("href=\"/app.css\""), "nothing to fetch");
    assert!(html.contains("Keep epochs under 8."), "the researcher's note is in it");
    let md_path = dir.path().join("report.md");
    postdoc(dir.path()).args(["report", "--out"]).arg(&md_path).assert().success();
    let md = std::fs::read_to_string(&md_path).unwrap();
    for part in
        ["# Study tiny-logreg: report", "- Baseline: ", "## Specialists", "| optimizer |", "Keep epochs under 8."]
    {
        assert!(md.contains(part), "the Markdown report lacks {part}:\n{md}");
    }
    postdoc(dir.path())
        .args(["report", "--out", "/nonexistent-dir/r.html"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("cannot write /nonexistent-dir/r.html"));
    // The dashboard refuses to be reachable from elsewhere without a token.
    postdoc(dir.path())
        .args(["serve", "--bind", "0.0.0.0", "--port", "0"])
        .env_remove("POSTDOC_TOKEN")
        .assert()
        .failure()
        .stderr(predicate::str::contains("0.0.0.0:0 is reachable from other machines: give a token"));
    postdoc(dir.path())
        .args(["serve", "--bind", "0.0.0.0", "--port", "0", "--token", "short"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("at least 16 characters"));
    postdoc(dir.path())
        .args(["run", "--serve", "--bind", "0.0.0.0", "--port", "0", "--max-trials", "7"])
        .env_remove("POSTDOC_TOKEN")
        .assert()
        .failure()
        .stderr(predicate::str::contains("give a token"));

    // Running again resumes the same study and adds to it.
    postdoc(dir.path()).args(["run", "--max-trials", "6"]).assert().success();
    let status = postdoc(dir.path()).args(["status", "--json"]).output().unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["trials"], 6);
    // No worktree outlives its session.
    let list = std::process::Command::new("git").args(["worktree", "list"]).current_dir(dir.path()).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&list.stdout).lines().count(), 1, "{}", String::from_utf8_lossy(&list.stdout));
    // The researcher's checkout is clean throughout.
    sh(dir.path(), "test -z \"$(git status --porcelain --untracked-files=no)\"");
}

#[test]
fn init_writes_a_manifest_that_loads() {
    let dir = tempfile::tempdir().unwrap();
    sh(dir.path(), "git init -q");
    postdoc(dir.path()).arg("init").assert().success();
    let text = std::fs::read_to_string(dir.path().join("postdoc.toml")).unwrap();
    postdoc_core::Manifest::parse(&text, "postdoc.toml").unwrap();
    postdoc(dir.path()).arg("init").assert().failure().stderr(predicate::str::contains("already exists"));
    let plain = tempfile::tempdir().unwrap();
    postdoc(plain.path())
        .arg("init")
        .assert()
        .failure()
        .stderr(predicate::str::contains("not inside a git repository"));
}

#[test]
fn a_study_runs_on_postgres() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(url) = runtime.block_on(postdoc_store::testing::fresh_database("cli_postgres")) else { return };
    let dir = example();
    let out = postdoc(dir.path()).args(["--store", &url, "run", "--max-trials", "3"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(!dir.path().join(".postdoc/lineage.db").exists(), "nothing went to the default SQLite file");
    let status = postdoc(dir.path()).env("POSTDOC_STORE", &url).args(["status", "--json"]).output().unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["trials"], 3);
}
