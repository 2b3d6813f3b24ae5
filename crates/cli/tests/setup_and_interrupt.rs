//! The setup command, and stopping a study with Ctrl-C.

mod common;

use common::*;

const SETUP_MANIFEST: &str = r#"[study]
name = "setup"
objective = { metric = "score", direction = "maximize" }
budget = { max_trials = 2 }

[setup]
command = "mkdir -p $POSTDOC_ENV/bin && printf '#!/bin/sh\necho 7\n' > $POSTDOC_ENV/bin/seven && chmod +x $POSTDOC_ENV/bin/seven && echo ran >> $POSTDOC_ENV/../setup-count"

[run]
command = "seven > $POSTDOC_OUT/value"
budget = { seconds = 10 }

[evaluate]
command = "sh eval.sh"
budget = { seconds = 10 }
protected = ["eval.sh"]

[noise]
baseline_repeats = 2

[[specialist]]
name = "knob"
knobs_file = "recipe.toml"
knobs = { x = { float = [0.0, 1.0] } }
"#;

#[test]
fn setup_runs_once_and_its_environment_reaches_every_process() {
    let dir = recipe(&[
        ("postdoc.toml", SETUP_MANIFEST),
        ("eval.sh", "echo \"{\\\"score\\\": $(cat $POSTDOC_OUT/value)}\"\n"),
        ("recipe.toml", "x = 0.5\n"),
    ]);
    let out = postdoc(dir.path()).arg("run").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let status = postdoc(dir.path()).args(["status", "--json"]).output().unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["baseline"]["score"], 7.0, "the run found the tool setup installed on its PATH");
    postdoc(dir.path()).args(["run", "--max-trials", "3"]).assert().success();
    let count = std::fs::read_to_string(dir.path().join(".postdoc/studies/setup/setup-count")).unwrap();
    assert_eq!(count.lines().count(), 1, "setup runs once per study, not per session");
}

#[test]
fn a_failing_setup_is_a_clear_error() {
    let manifest = SETUP_MANIFEST.replace("mkdir -p $POSTDOC_ENV/bin &&", "echo 'no compiler here' >&2 && exit 4 &&");
    let dir =
        recipe(&[("postdoc.toml", &manifest), ("eval.sh", "echo '{\"score\": 1}'\n"), ("recipe.toml", "x = 0.5\n")]);
    let out = postdoc(dir.path()).arg("run").output().unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("error: the setup command failed: exit status 4"), "{err}");
    assert!(err.contains("no compiler here"), "the setup's own words are shown: {err}");
}

#[test]
fn ctrl_c_stops_cleanly_and_the_next_run_retries() {
    let manifest = r#"[study]
name = "interrupt"
objective = { metric = "score", direction = "maximize" }
budget = { max_trials = 3 }

[run]
command = "sleep 2 && echo 1 > $POSTDOC_OUT/value"
budget = { seconds = 30 }

[evaluate]
command = "sh eval.sh"
budget = { seconds = 10 }
protected = ["eval.sh"]

[noise]
baseline_repeats = 1

[[specialist]]
name = "knob"
knobs_file = "recipe.toml"
knobs = { x = { float = [0.0, 1.0] } }
"#;
    let dir = recipe(&[
        ("postdoc.toml", manifest),
        ("eval.sh", "echo \"{\\\"score\\\": $(cat $POSTDOC_OUT/value)}\"\n"),
        ("recipe.toml", "x = 0.5\n"),
    ]);
    let bin = assert_cmd::cargo::cargo_bin("postdoc");
    let child = std::process::Command::new(&bin)
        .arg("-C")
        .arg(dir.path())
        .arg("run")
        .env_remove("POSTDOC_STORE")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1000)); // inside the baseline's run
    // SAFETY: kill(2) sends SIGINT to the child we started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("Stopped: interrupted"), "{err}");
    let show = postdoc(dir.path()).args(["show", "0", "--json"]).output().unwrap();
    let show: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(show["trial"]["label"], "harness_abort");
    assert_eq!(show["trial"]["reason"], "interrupted by the researcher");
    let out = postdoc(dir.path()).arg("run").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let status = postdoc(dir.path()).args(["status", "--json"]).output().unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["baseline"]["number"], 1, "the baseline was retried as trial 1");
    assert_eq!(status["trials"], 3);
}
