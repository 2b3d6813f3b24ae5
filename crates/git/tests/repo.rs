//! The git layer against real repositories.

use postdoc_git::{GitError, Repo};
use std::path::Path;
use std::process::Command;

fn sh(dir: &Path, script: &str) {
    let ok = Command::new("sh").arg("-c").arg(script).current_dir(dir).status().unwrap().success();
    assert!(ok, "{script}");
}

fn git_out(dir: &Path, args: &str) -> String {
    let out = Command::new("git").args(args.split(' ')).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "git {args}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn head_of(worktree: &Path) -> String {
    git_out(worktree, "rev-parse HEAD")
}

fn recipe() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    sh(
        dir.path(),
        "git init -q -b main && printf 'lr = 0.1\\n' > recipe.toml && printf 'print(1)\\n' > eval.py && printf '#!/bin/sh\\n' > run.sh && chmod +x run.sh \
         && git add -A && git -c user.name=t -c user.email=t@t commit -qm init",
    );
    dir
}

#[tokio::test]
async fn refuses_what_is_not_a_recipe_repository() {
    let plain = tempfile::tempdir().unwrap();
    assert!(matches!(Repo::open(plain.path()).await, Err(GitError::NotARepo(_))));
    sh(plain.path(), "git init -q");
    let repo = Repo::open(plain.path()).await.unwrap();
    assert!(matches!(repo.head().await, Err(GitError::NoCommits(_))));
}

#[tokio::test]
async fn sees_uncommitted_changes_but_not_untracked_files() {
    let dir = recipe();
    let repo = Repo::open(dir.path()).await.unwrap();
    assert!(repo.uncommitted().await.unwrap().is_empty());
    sh(dir.path(), "echo junk > untracked.txt");
    assert!(repo.uncommitted().await.unwrap().is_empty());
    sh(dir.path(), "echo 'lr = 0.2' > recipe.toml");
    assert_eq!(repo.uncommitted().await.unwrap(), vec!["recipe.toml"]);
}

#[tokio::test]
async fn a_trial_is_a_commit_in_its_own_worktree() {
    let dir = recipe();
    let repo = Repo::open(dir.path()).await.unwrap();
    let base = repo.head().await.unwrap();
    let wt = dir.path().join(".postdoc/worktrees/t1");
    repo.add_worktree(&wt, &base).await.unwrap();
    std::fs::write(wt.join("recipe.toml"), "lr = 0.01\n").unwrap();
    let commit = repo
        .record_trial(&wt, &base, Some("trial 1: lower lr\n\nPostdoc-Trial: 1"), "refs/postdoc/s/trials/1")
        .await
        .unwrap();
    assert_ne!(commit, base);
    assert_eq!(head_of(&wt), commit, "the worktree's HEAD follows the trial");
    assert_eq!(git_out(&wt, "log -1 --format=%P%n%B"), format!("{base}\ntrial 1: lower lr\n\nPostdoc-Trial: 1"));
    assert_eq!(repo.changed_paths(&base, &commit).await.unwrap(), vec!["recipe.toml"]);
    let diff = repo.diff(&base, &commit).await.unwrap();
    assert!(diff.contains("-lr = 0.1") && diff.contains("+lr = 0.01"), "{diff}");

    assert_eq!(repo.read_ref("refs/postdoc/s/trials/1").await.unwrap(), Some(commit.clone()));
    assert_eq!(repo.read_ref("refs/postdoc/s/best").await.unwrap(), None);
    repo.create_branch("tuned", &commit).await.unwrap();
    assert!(repo.create_branch("tuned", &base).await.is_err(), "an existing branch is never moved");

    // An unchanged trial still gets a commit of its own.
    let wt2 = dir.path().join(".postdoc/worktrees/t2");
    repo.add_worktree(&wt2, &commit).await.unwrap();
    let same = repo.record_trial(&wt2, &commit, Some("trial 2: nothing"), "refs/postdoc/s/trials/2").await.unwrap();
    assert_ne!(same, commit);
    assert!(repo.changed_paths(&commit, &same).await.unwrap().is_empty());
    // A trial with no edit at all is its parent.
    let baseline = repo.record_trial(&wt2, &base, None, "refs/postdoc/s/trials/3").await.unwrap();
    assert_eq!(baseline, base);
    assert_eq!(repo.read_ref("refs/postdoc/s/trials/3").await.unwrap(), Some(base.clone()));
    assert_eq!(head_of(&wt2), base);

    // A reused worktree keeps nothing of its last use: not edits, not untracked or ignored files.
    std::fs::write(wt.join("recipe.toml"), "lr = 9\n").unwrap();
    std::fs::write(wt.join("scratch.bin"), "x").unwrap();
    std::fs::create_dir_all(wt.join("__pycache__")).unwrap();
    std::fs::write(wt.join(".gitignore"), "__pycache__/\n").unwrap();
    sh(&wt, "echo new > added.txt && git add added.txt && rm run.sh");
    repo.reset_worktree(&wt, &base).await.unwrap();
    assert_eq!(std::fs::read_to_string(wt.join("recipe.toml")).unwrap(), "lr = 0.1\n");
    assert!(!wt.join("added.txt").exists() && wt.join("run.sh").exists());
    // The next trial made there sees only its own change.
    std::fs::write(wt.join("recipe.toml"), "lr = 0.5\n").unwrap();
    let next = repo.record_trial(&wt, &base, Some("trial 4"), "refs/postdoc/s/trials/4").await.unwrap();
    assert_eq!(repo.changed_paths(&base, &next).await.unwrap(), vec!["recipe.toml"]);
    std::fs::write(wt.join("scratch.bin"), "x").unwrap();
    repo.reset_worktree(&wt, &base).await.unwrap();
    assert!(!wt.join("scratch.bin").exists() && !wt.join("__pycache__").exists() && !wt.join(".gitignore").exists());

    repo.remove_worktree(&wt).await.unwrap();
    repo.remove_worktree(&wt2).await.unwrap();
    assert!(!wt.exists() && !wt2.exists());
    assert!(repo.uncommitted().await.unwrap().is_empty(), "the user's checkout is untouched");
}

#[tokio::test]
async fn patches_apply_or_explain_why_not() {
    let dir = recipe();
    let repo = Repo::open(dir.path()).await.unwrap();
    let base = repo.head().await.unwrap();
    let wt = dir.path().join("wt");
    repo.add_worktree(&wt, &base).await.unwrap();
    let good = "--- a/recipe.toml\n+++ b/recipe.toml\n@@ -1 +1 @@\n-lr = 0.1\n+lr = 0.3\n";
    repo.apply_patch(&wt, good).await.unwrap();
    assert_eq!(std::fs::read_to_string(wt.join("recipe.toml")).unwrap(), "lr = 0.3\n");
    let stale = "--- a/recipe.toml\n+++ b/recipe.toml\n@@ -1 +1 @@\n-lr = 9\n+lr = 0.3\n";
    match repo.apply_patch(&wt, stale).await {
        Err(GitError::Apply(msg)) => assert!(msg.contains("recipe.toml"), "{msg}"),
        other => panic!("expected an apply error, got {other:?}"),
    }
}

#[tokio::test]
async fn reads_files_from_a_commit() {
    let dir = recipe();
    let repo = Repo::open(dir.path()).await.unwrap();
    let base = repo.head().await.unwrap();
    let files = repo.list_files(&base).await.unwrap();
    assert_eq!(files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), vec!["eval.py", "recipe.toml", "run.sh"]);
    assert!(files.iter().find(|f| f.path == "run.sh").unwrap().executable);
    let paths = vec!["eval.py".to_string(), "run.sh".to_string()];
    let contents = repo.read_files(&base, &paths).await.unwrap();
    assert_eq!(contents, vec![b"print(1)\n".to_vec(), b"#!/bin/sh\n".to_vec()]);
}
