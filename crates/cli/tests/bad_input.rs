//! Bad input: a clear error that says what and where, a non-zero exit, no panic, and a store
//! that still reads afterwards.

mod common;

use common::*;

/// Runs and returns the one `error:` line of stderr (progress lines and a log excerpt may
/// surround it), checking the failure is clean.
fn fails(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.output().unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    errors[0].to_string()
}

const EVAL_OK: &str = "echo '{\"score\": 1}'\n";

#[test]
fn a_missing_or_malformed_manifest() {
    let dir = tempfile::tempdir().unwrap();
    sh(dir.path(), "git init -q");
    let e = fails(postdoc(dir.path()).arg("run"));
    assert!(e.contains("cannot read the manifest") && e.contains("postdoc.toml"), "{e}");

    let dir = recipe(&[("postdoc.toml", "[study]\nname = \"x\"\nobjectiv = 3\n")]);
    let e = fails(postdoc(dir.path()).arg("run"));
    assert!(e.contains("postdoc.toml:3:1: study.objectiv: unknown field `objectiv`"), "{e}");

    let dir = recipe(&[("postdoc.toml", "[study\nname = 1\n")]);
    let e = fails(postdoc(dir.path()).arg("status"));
    assert!(e.contains("postdoc.toml:1:"), "{e}");
}

#[test]
fn not_a_repository_or_uncommitted_changes() {
    let dir = shell_recipe("true", EVAL_OK);
    sh(dir.path(), "rm -rf .git");
    let e = fails(postdoc(dir.path()).arg("run"));
    assert!(e.contains("is not inside a git repository"), "{e}");

    let dir = shell_recipe("true", EVAL_OK);
    sh(dir.path(), "echo 'x = 0.9' > recipe.toml");
    let e = fails(postdoc(dir.path()).arg("run"));
    assert!(e.contains("uncommitted changes (recipe.toml)"), "{e}");

    let e = fails(postdoc(std::path::Path::new("/nonexistent/recipe")).arg("run"));
    assert!(e.contains("/nonexistent/recipe is not a directory"), "{e}");
}

#[test]
fn a_run_command_that_does_not_exist() {
    let dir = shell_recipe("no-such-trainer --fast", EVAL_OK);
    let e = fails(postdoc(dir.path()).arg("run"));
    assert!(e.contains("the baseline") && e.contains("preflight_crash") && e.contains("could not start"), "{e}");
    // The store is intact and says what happened.
    let out = postdoc(dir.path()).args(["show", "0"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("preflight_crash"));
}

#[test]
fn an_evaluator_without_json_or_with_nan() {
    let dir = shell_recipe("true", "echo 'accuracy is great'\n");
    let e = fails(postdoc(dir.path()).arg("run"));
    assert!(e.contains("ended as crash") && e.contains("printed no JSON object"), "{e}");

    let dir = shell_recipe("true", "echo '{\"score\": NaN}'\n");
    let e = fails(postdoc(dir.path()).arg("run"));
    assert!(e.contains("score = NaN"), "{e}");

    let dir = shell_recipe("true", "echo '{\"loss\": 1}'\n");
    let e = fails(postdoc(dir.path()).arg("run"));
    assert!(e.contains("did not report the objective `score`"), "{e}");
}

#[test]
fn a_failed_baseline_can_be_fixed_and_rerun() {
    let dir = shell_recipe("exit 3", EVAL_OK);
    let e = fails(postdoc(dir.path()).arg("run"));
    assert!(e.contains("ended as crash: training failed: exit status 3"), "{e}");
    sh(dir.path(), "sed -i 's/exit 3/true/' postdoc.toml && git -c user.name=t -c user.email=t@t commit -qam fix");
    let out = postdoc(dir.path()).arg("run").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
}

#[test]
fn an_unreachable_store() {
    let dir = shell_recipe("true", EVAL_OK);
    let e = fails(postdoc(dir.path()).args(["--store", "postgres://postdoc:hunter2@127.0.0.1:1/lineage", "run"]));
    assert!(e.contains("cannot open the lineage store at postgres://postdoc:***@127.0.0.1:1/lineage"), "{e}");
    assert!(!e.contains("hunter2"));
    let e = fails(postdoc(dir.path()).args(["--store", "redis://localhost", "run"]));
    assert!(e.contains("must start with sqlite:// or postgres://"), "{e}");
}

#[test]
fn bad_flags_and_unknown_names() {
    let dir = shell_recipe("true", EVAL_OK);
    let e = fails(postdoc(dir.path()).args(["run", "--parallel", "0"]));
    assert!(e.contains("--parallel must be at least 1"), "{e}");
    let e = fails(postdoc(dir.path()).arg("status"));
    assert!(e.contains("no study has run"), "{e}");
    let out = postdoc(dir.path()).args(["run", "--max-trials", "lots"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "clap's usage errors exit 2");
    let parent = tempfile::tempdir().unwrap();
    let e = fails(postdoc(parent.path()).args(["example", "imagenet"]).arg(parent.path().join("x")));
    assert!(e.contains("no bundled example named `imagenet`"), "{e}");
}

#[test]
fn the_demo_says_what_to_install_when_python_is_missing() {
    // A PATH with git but no python3.
    let bin = tempfile::tempdir().unwrap();
    let git = std::process::Command::new("sh").args(["-c", "command -v git"]).output().unwrap();
    let git = String::from_utf8(git.stdout).unwrap();
    std::os::unix::fs::symlink(git.trim(), bin.path().join("git")).unwrap();
    let target = tempfile::tempdir().unwrap();
    let demo_dir = target.path().join("demo");
    let e = fails(postdoc(target.path()).env("PATH", bin.path()).args(["demo", "--dir"]).arg(&demo_dir));
    assert!(e.contains("python3 is not on the PATH") && e.contains("sudo apt install python3 python3-venv"), "{e}");
    assert!(!demo_dir.exists(), "nothing is written before the check passes");
}
