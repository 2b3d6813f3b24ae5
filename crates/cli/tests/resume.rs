//! Killing `postdoc run` with SIGKILL at random moments, then starting it again, continues the
//! same study: running trials become `harness_abort` and are retried, nothing is lost or counted
//! twice, no process outlives its trial, and the store stays sound.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const MAX_TRIALS: u64 = 14;
const KILLS: usize = 12;

/// Trials that take a few hundred milliseconds, so kills land in every phase.
fn slow_recipe(token: &str) -> tempfile::TempDir {
    let manifest = format!(
        r#"[study]
name = "resume"
objective = {{ metric = "score", direction = "maximize" }}
budget = {{ max_trials = {MAX_TRIALS} }}
parallel = 2

[run]
command = "sleep 0.$((POSTDOC_SEED % 4 + 1)) && echo {token} > /dev/null && awk -v s=$POSTDOC_SEED 'BEGIN {{ srand(s); print rand() }}' > $POSTDOC_OUT/value"
budget = {{ seconds = 20 }}

[evaluate]
command = "sh eval.sh"
budget = {{ seconds = 20 }}
protected = ["eval.sh"]

[noise]
baseline_repeats = 2
confirm_seeds = 1

[[specialist]]
name = "knob"
knobs_file = "recipe.toml"
knobs = {{ x = {{ float = [0.0, 1.0] }} }}
"#
    );
    recipe(&[
        ("postdoc.toml", &manifest),
        ("eval.sh", "sleep 0.1; echo \"{\\\"score\\\": $(cat $POSTDOC_OUT/value)}\"\n"),
        ("recipe.toml", "x = 0.5\n"),
    ])
}

fn export(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let out = postdoc(dir).args(["export", "--format", "jsonl"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn sigkill_at_random_moments_loses_and_repeats_nothing() {
    let token = format!("postdoc-resume-{}", std::process::id());
    let dir = slow_recipe(&token);
    let bin = assert_cmd::cargo::cargo_bin("postdoc");
    // A fixed sequence of pseudo-random delays: the test is the same on every machine.
    let mut state: u64 = 0x2545F4914F6CDD1D;
    for _ in 0..KILLS {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = Duration::from_millis(150 + state % 900);
        let mut child = std::process::Command::new(&bin)
            .arg("-C")
            .arg(dir.path())
            .arg("run")
            .env_remove("POSTDOC_STORE")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL: no chance to clean up
        child.wait().unwrap();
    }
    let out = postdoc(dir.path()).arg("run").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));

    let trials = export(dir.path());
    let by_id: BTreeMap<u64, &serde_json::Value> = trials.iter().map(|t| (t["id"].as_u64().unwrap(), t)).collect();
    assert!(trials.iter().all(|t| t["status"] == "finished"), "every trial ended");
    let aborted: Vec<u64> =
        trials.iter().filter(|t| t["label"] == "harness_abort").map(|t| t["id"].as_u64().unwrap()).collect();
    assert!(!aborted.is_empty(), "at least one kill landed while a trial ran");
    eprintln!("{} trials, {} lost to kills and retried", trials.len(), aborted.len());

    // Each proposal (the root of its retry chain) ends in at most one counted trial.
    let root = |mut id: u64| {
        while let Some(prev) = by_id[&id]["retry_of"].as_u64() {
            id = prev;
        }
        id
    };
    let counted: Vec<&serde_json::Value> =
        trials.iter().filter(|t| t["specialist"] != "baseline" && t["label"] != "harness_abort").collect();
    assert_eq!(counted.len() as u64, MAX_TRIALS, "exactly the budget was spent");
    let roots: BTreeSet<u64> = counted.iter().map(|t| root(t["id"].as_u64().unwrap())).collect();
    assert_eq!(roots.len(), counted.len(), "no proposal was counted twice");
    // Every aborted trial was retried once (same proposal), or given up after repeated faults.
    for id in &aborted {
        let retries: Vec<&&serde_json::Value> =
            by_id.values().filter(|t| t["retry_of"].as_u64() == Some(*id)).collect();
        assert!(retries.len() <= 1, "trial {id} retried {} times", retries.len());
        if let Some(r) = retries.first() {
            assert_eq!(r["edit"], by_id[id]["edit"], "a retry runs the same proposal");
            assert_eq!(r["hypothesis"], by_id[id]["hypothesis"]);
        }
    }
    let baseline_kept = trials.iter().filter(|t| t["specialist"] == "baseline" && t["label"] == "keep").count();
    assert_eq!(baseline_kept, 1);

    // No process of any trial outlived its session.
    let ps = std::process::Command::new("pgrep").arg("-f").arg(&token).output().unwrap();
    assert!(ps.stdout.is_empty(), "leftover processes: {}", String::from_utf8_lossy(&ps.stdout));

    // The SQLite file is sound.
    let db = dir.path().join(".postdoc/lineage.db");
    let check = std::process::Command::new("python3")
        .arg("-c")
        .arg("import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('pragma integrity_check').fetchone()[0])")
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), "ok");
    // Nothing the study did shows in the researcher's checkout.
    sh(dir.path(), "test -z \"$(git status --porcelain --untracked-files=no)\"");
}
