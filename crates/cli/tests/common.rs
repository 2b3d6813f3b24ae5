#![allow(dead_code, unreachable_pub)]

use assert_cmd::Command;
use std::path::Path;

pub fn postdoc(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("postdoc").unwrap();
    cmd.arg("-C").arg(dir).env_remove("POSTDOC_STORE").env("NO_COLOR", "1");
    cmd
}

pub fn sh(dir: &Path, script: &str) {
    let out = std::process::Command::new("sh").arg("-c").arg(script).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A recipe made of the given files, committed.
pub fn recipe(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        std::fs::write(dir.path().join(path), text).unwrap();
    }
    sh(dir.path(), "git init -q -b main && git add -A && git -c user.name=t -c user.email=t@t commit -qm recipe");
    dir
}

/// The bundled example, written by `postdoc example`.
pub fn example() -> tempfile::TempDir {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("recipe");
    postdoc(parent.path()).args(["example", "tiny-logreg"]).arg(&dir).assert().success();
    // Keep the parent alive by moving the recipe into a TempDir of its own.
    let keep = tempfile::tempdir().unwrap();
    std::fs::remove_dir(keep.path()).unwrap();
    std::fs::rename(&dir, keep.path()).unwrap();
    keep
}

pub fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A shell recipe whose run and evaluate commands are given.
pub fn shell_recipe(run: &str, evaluate: &str) -> tempfile::TempDir {
    let manifest = format!(
        r#"[study]
name = "shell"
objective = {{ metric = "score", direction = "maximize" }}
budget = {{ max_trials = 2 }}

[run]
command = "{run}"
budget = {{ seconds = 10 }}

[evaluate]
command = "sh eval.sh"
budget = {{ seconds = 10 }}
protected = ["eval.sh"]

[noise]
baseline_repeats = 2

[[specialist]]
name = "knob"
knobs_file = "recipe.toml"
knobs = {{ x = {{ float = [0.0, 1.0] }} }}
"#
    );
    recipe(&[("postdoc.toml", &manifest), ("eval.sh", evaluate), ("recipe.toml", "x = 0.5\n")])
}
