//! Test helpers: real recipes in real git repositories.
#![allow(dead_code, unreachable_pub)]

use postdoc_store::Store;
use postdoc_study::{Recipe, RunOptions, Session, SilentReporter};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub fn example_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name)
}

pub fn sh(dir: &Path, script: &str) {
    let out = std::process::Command::new("sh").arg("-c").arg(script).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
}

pub fn commit_all(dir: &Path, message: &str) {
    sh(dir, &format!("git add -A && git -c user.name=t -c user.email=t@t commit -qm '{message}'"));
}

/// A copy of a bundled example as a fresh git repository, with `edit` applied to its manifest.
pub fn recipe_from_example(name: &str, edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(example_dir(name)).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
    }
    let manifest = dir.path().join("postdoc.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, edit(text)).unwrap();
    sh(dir.path(), "git init -q -b main && printf '__pycache__/\\n' > .gitignore");
    commit_all(dir.path(), "recipe");
    dir
}

/// A recipe made of the given files.
pub fn recipe_from_files(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    sh(dir.path(), "git init -q -b main && printf '__pycache__/\\n' > .gitignore");
    commit_all(dir.path(), "recipe");
    dir
}

/// A recipe whose run writes its score to `$POSTDOC_OUT/value` and whose protected evaluator
/// reports it: `manifest` is the study's manifest without an `[evaluate]` section (this adds
/// it), `knobs` the text of its `recipe.toml`.
pub fn recipe_scored_by_run(manifest: &str, knobs: &str) -> tempfile::TempDir {
    let manifest = format!(
        "{manifest}\n[evaluate]\ncommand = \"sh eval.sh\"\nbudget = {{ seconds = 10 }}\nprotected = [\"eval.sh\"]\n"
    );
    recipe_from_files(&[
        ("postdoc.toml", &manifest),
        ("eval.sh", "echo \"{\\\"score\\\": $(cat $POSTDOC_OUT/value)}\"\n"),
        ("recipe.toml", knobs),
    ])
}

/// The text of `recipe.toml` in a trial's commit of the recipe repository at `dir`.
pub fn knobs_text(dir: &Path, t: &postdoc_core::TrialRecord) -> String {
    let show = std::process::Command::new("git")
        .args(["show", &format!("{}:recipe.toml", t.commit.as_deref().unwrap())])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(show.status.success(), "git show: {}", String::from_utf8_lossy(&show.stderr));
    String::from_utf8(show.stdout).unwrap()
}

pub fn sqlite_url(dir: &Path) -> String {
    postdoc_study::Layout::default_store_url(dir)
}

pub async fn start(dir: &Path, store_url: &str, options: RunOptions) -> Result<Session, postdoc_study::StudyError> {
    let recipe = Recipe::open(dir, None).await?;
    let store = Store::open(store_url).await?;
    Session::start(recipe, store, options, Arc::new(SilentReporter)).await
}

pub async fn run(
    dir: &Path,
    store_url: &str,
    options: RunOptions,
) -> Result<postdoc_study::StopReason, postdoc_study::StudyError> {
    let session = start(dir, store_url, options).await?;
    let (_tx, rx) = tokio::sync::watch::channel(false);
    session.run(rx).await
}
