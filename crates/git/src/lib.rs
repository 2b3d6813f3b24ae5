//! The recipe as a git repository, driven through the `git` command line: worktrees for trials,
//! commits and refs for their changes, diffs for the lineage. Operations on one repository are
//! serialized (git's own locks are not meant for a crowd), and hooks and the user's identity never
//! take part in the harness's commits.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{0} is not inside a git repository (run `git init` and commit the recipe first)")]
    NotARepo(PathBuf),
    #[error("the repository at {0} has no commits yet: commit the recipe first")]
    NoCommits(PathBuf),
    #[error("git is not installed or cannot run: {0}")]
    Missing(std::io::Error),
    #[error("`git {args}` failed: {stderr}")]
    Failed { args: String, stderr: String },
    #[error("the patch does not apply: {0}")]
    Apply(String),
}

type Result<T> = std::result::Result<T, GitError>;

/// A file in a commit's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    pub path: String,
    pub executable: bool,
}

#[derive(Debug, Clone)]
pub struct Repo {
    root: PathBuf,
    lock: Arc<Mutex<()>>,
}

/// Settings that make every git call the same whatever the user's configuration says, and keep
/// git from spawning background maintenance after each of the harness's many small commits.
const FIXED_CONFIG: [&str; 18] = [
    "-c",
    "maintenance.auto=false",
    "-c",
    "gc.auto=0",
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "user.name=postdoc",
    "-c",
    "user.email=postdoc@localhost",
    "-c",
    "commit.gpgsign=false",
    "-c",
    "core.quotepath=off",
    "-c",
    "color.ui=false",
    "-c",
    "diff.noprefix=false",
];

impl Repo {
    /// Opens the repository whose top level is `path`'s.
    pub async fn open(path: &Path) -> Result<Repo> {
        let out = raw(path, &["rev-parse", "--show-toplevel"], None).await?;
        if !out.status_ok {
            return Err(GitError::NotARepo(path.to_path_buf()));
        }
        let root = PathBuf::from(out.stdout_text().trim());
        Ok(Repo { root, lock: Arc::new(Mutex::new(())) })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    async fn git_in(&self, dir: &Path, args: &[&str], input: Option<&[u8]>) -> Result<Output> {
        let _guard = self.lock.lock().await;
        let out = raw(dir, args, input).await?;
        if out.status_ok {
            Ok(out)
        } else {
            Err(GitError::Failed { args: args.join(" "), stderr: out.stderr_text().trim().to_string() })
        }
    }

    async fn git(&self, args: &[&str]) -> Result<Output> {
        self.git_in(&self.root.clone(), args, None).await
    }

    /// The commit HEAD points at.
    pub async fn head(&self) -> Result<String> {
        match self.git(&["rev-parse", "--verify", "-q", "HEAD^{commit}"]).await {
            Ok(out) => Ok(out.stdout_text().trim().to_string()),
            Err(_) => Err(GitError::NoCommits(self.root.clone())),
        }
    }

    /// Tracked files with changes not yet committed (staged or not).
    pub async fn uncommitted(&self) -> Result<Vec<String>> {
        let out = self.git(&["status", "--porcelain=v1", "-z", "--untracked-files=no"]).await?;
        Ok(out.stdout_text().split('\0').filter(|e| e.len() > 3).map(|e| e[3..].to_string()).collect())
    }

    /// Checks out `commit` into a new detached worktree at `path`.
    pub async fn add_worktree(&self, path: &Path, commit: &str) -> Result<()> {
        let p = path.to_string_lossy();
        self.git(&["worktree", "add", "--force", "--detach", "-q", &p, commit]).await.map(drop)
    }

    /// Resets an existing worktree's files and index to `commit` and deletes everything untracked
    /// in it (ignored files included), leaving exactly the commit's tree: a reused worktree carries
    /// nothing over from the trial before. Its HEAD moves when the trial is recorded
    /// ([`Repo::record_trial`]); `read-tree` rather than `checkout` because checkout also clears
    /// merge state through the shared ref store, a few lock files per trial for nothing.
    pub async fn reset_worktree(&self, path: &Path, commit: &str) -> Result<()> {
        self.git_in(path, &["read-tree", "--reset", "-u", commit], None).await?;
        self.git_in(path, &["clean", "-q", "-ffdx"], None).await.map(drop)
    }

    /// Removes a worktree (whatever it holds) and forgets it.
    pub async fn remove_worktree(&self, path: &Path) -> Result<()> {
        let p = path.to_string_lossy();
        match self.git(&["worktree", "remove", "--force", "--force", &p]).await {
            Ok(_) => Ok(()),
            // Not a registered worktree (or half made): remove the folder, forget stale entries.
            Err(_) => {
                if path.exists() {
                    let _ = std::fs::remove_dir_all(path);
                }
                self.git(&["worktree", "prune"]).await.map(drop)
            }
        }
    }

    /// Applies a unified diff inside a worktree.
    pub async fn apply_patch(&self, worktree: &Path, diff: &str) -> Result<()> {
        let mut text = diff.to_string();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        match self.git_in(worktree, &["apply", "--whitespace=nowarn", "-"], Some(text.as_bytes())).await {
            Ok(_) => Ok(()),
            Err(GitError::Failed { stderr, .. }) => Err(GitError::Apply(stderr)),
            Err(e) => Err(e),
        }
    }

    /// Records a trial made in `worktree` on top of `parent`: with a `message`, everything in the
    /// worktree becomes a commit of its own (even an empty change, so each trial has one);
    /// without, the trial is `parent` itself. The worktree's HEAD and `refname` then point at it,
    /// in one ref transaction. Returns the trial's commit.
    ///
    /// Plumbing (`write-tree`, `commit-tree`) rather than `git commit`: the commit command also
    /// clears merge state and writes its message to a file, each a new file in `.git` per trial.
    pub async fn record_trial(
        &self,
        worktree: &Path,
        parent: &str,
        message: Option<&str>,
        refname: &str,
    ) -> Result<String> {
        let commit = match message {
            None => parent.to_string(),
            Some(message) => {
                self.git_in(worktree, &["add", "-A"], None).await?;
                let tree = self.git_in(worktree, &["write-tree"], None).await?.stdout_text();
                let out = self
                    .git_in(worktree, &["commit-tree", tree.trim(), "-p", parent], Some(message.as_bytes()))
                    .await?;
                out.stdout_text().trim().to_string()
            }
        };
        let updates = format!("option no-deref\nupdate HEAD {commit}\nupdate {refname} {commit}\n");
        self.git_in(worktree, &["update-ref", "--stdin"], Some(updates.as_bytes())).await?;
        Ok(commit)
    }

    /// Paths that differ between two commits (both sides of a rename).
    pub async fn changed_paths(&self, from: &str, to: &str) -> Result<Vec<String>> {
        let out = self.git(&["diff", "--no-renames", "--name-only", "-z", from, to]).await?;
        Ok(out.stdout_text().split('\0').filter(|p| !p.is_empty()).map(str::to_string).collect())
    }

    /// The unified diff between two commits and the paths it touches, from one `git diff`.
    pub async fn diff_and_paths(&self, from: &str, to: &str) -> Result<(String, Vec<String>)> {
        let diff = self.diff(from, to).await?;
        match paths_of_diff(&diff) {
            Some(paths) => Ok((diff, paths)),
            None => Ok((diff, self.changed_paths(from, to).await?)),
        }
    }

    /// The files of worktree `tree` as they are now, tracked or new (ignored files left out).
    pub async fn worktree_files(&self, tree: &Path) -> Result<Vec<String>> {
        let out = self.git_in(tree, &["ls-files", "-z", "--cached", "--others", "--exclude-standard"], None).await?;
        let mut files: Vec<String> =
            out.stdout_text().split('\0').filter(|p| !p.is_empty()).map(str::to_string).collect();
        files.sort();
        files.dedup();
        // A tracked file deleted in the worktree is still in the index.
        files.retain(|f| tree.join(f).is_file());
        Ok(files)
    }

    /// The change from `base` to worktree `tree` as it is now, new files included: the patch a
    /// draft becomes. Stages the worktree's files in its own index.
    pub async fn worktree_diff(&self, tree: &Path, base: &str) -> Result<String> {
        self.git_in(tree, &["add", "-A"], None).await?;
        let out =
            self.git_in(tree, &["diff", "--cached", "--no-ext-diff", "--no-color", "--binary", base], None).await?;
        Ok(out.stdout_text())
    }

    /// The unified diff between two commits.
    pub async fn diff(&self, from: &str, to: &str) -> Result<String> {
        Ok(self.git(&["diff", "--no-ext-diff", "--no-color", "--binary", from, to]).await?.stdout_text())
    }

    pub async fn update_ref(&self, name: &str, commit: &str) -> Result<()> {
        self.git(&["update-ref", name, commit]).await.map(drop)
    }

    pub async fn read_ref(&self, name: &str) -> Result<Option<String>> {
        match self.git(&["rev-parse", "--verify", "-q", name]).await {
            Ok(out) => Ok(Some(out.stdout_text().trim().to_string())),
            Err(GitError::Failed { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates branch `name` at `commit`; refuses to move an existing branch.
    pub async fn create_branch(&self, name: &str, commit: &str) -> Result<()> {
        self.git(&["branch", "--no-track", name, commit]).await.map(drop)
    }

    /// Every file in `commit`'s tree.
    pub async fn list_files(&self, commit: &str) -> Result<Vec<TreeFile>> {
        let out = self.git(&["ls-tree", "-r", "-z", "--full-tree", commit]).await?;
        Ok(out
            .stdout_text()
            .split('\0')
            .filter_map(|entry| {
                let (meta, path) = entry.split_once('\t')?;
                let mut parts = meta.split(' ');
                let mode = parts.next()?;
                (parts.next()? == "blob").then(|| TreeFile { path: path.to_string(), executable: mode == "100755" })
            })
            .collect())
    }

    /// The contents of `paths` at `commit`, read in one `git cat-file --batch`.
    pub async fn read_files(&self, commit: &str, paths: &[String]) -> Result<Vec<Vec<u8>>> {
        let input: String = paths.iter().map(|p| format!("{commit}:{p}\n")).collect();
        let out = self.git_in(&self.root.clone(), &["cat-file", "--batch"], Some(input.as_bytes())).await?;
        let mut data = &out.stdout[..];
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            let nl = data.iter().position(|&b| b == b'\n').ok_or_else(|| short(path))?;
            let header = String::from_utf8_lossy(&data[..nl]).to_string();
            let size: usize = match header.split(' ').collect::<Vec<_>>()[..] {
                [_, "blob", size] => size.parse().map_err(|_| short(path))?,
                _ => {
                    return Err(GitError::Failed {
                        args: "cat-file --batch".into(),
                        stderr: format!("{path}: {header}"),
                    });
                }
            };
            let body = data.get(nl + 1..nl + 1 + size).ok_or_else(|| short(path))?;
            files.push(body.to_vec());
            data = data.get(nl + 2 + size..).unwrap_or(&[]);
        }
        Ok(files)
    }
}

/// The paths a `git diff --no-renames` output touches, read from its `diff --git a/P b/P`
/// headers (both sides name the same path when renames are off, which makes an unquoted header
/// unambiguous even with spaces). `None` when a header cannot be read; the caller asks git.
pub fn paths_of_diff(diff: &str) -> Option<Vec<String>> {
    let mut paths = Vec::new();
    for line in diff.lines() {
        let Some(rest) = line.strip_prefix("diff --git ") else { continue };
        if rest.starts_with('"') {
            return None; // C-quoted names: leave them to git
        }
        let n = rest.len().checked_sub(5)? / 2;
        let (a, b) = (rest.get(..2 + n)?, rest.get(2 + n..)?);
        let path = a.strip_prefix("a/")?;
        if b.strip_prefix(" b/")? != path {
            return None;
        }
        paths.push(path.to_string());
    }
    Some(paths)
}

fn short(path: &str) -> GitError {
    GitError::Failed { args: "cat-file --batch".into(), stderr: format!("short output reading {path}") }
}

struct Output {
    status_ok: bool,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Output {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// The `git` executable, found on the PATH once rather than searched for on every call.
fn git_program() -> &'static Path {
    static PROGRAM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PROGRAM.get_or_init(|| {
        std::env::var_os("PATH")
            .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("git")).find(|p| p.is_file()))
            .unwrap_or_else(|| PathBuf::from("git"))
    })
}

async fn raw(dir: &Path, args: &[&str], input: Option<&[u8]>) -> Result<Output> {
    let mut cmd = Command::new(git_program());
    cmd.args(FIXED_CONFIG)
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound && !dir.exists() {
            GitError::NotARepo(dir.to_path_buf())
        } else {
            GitError::Missing(e)
        }
    })?;
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let feed = async {
        if let (Some(w), Some(data)) = (stdin.as_mut(), input) {
            let _ = w.write_all(data).await;
        }
        drop(stdin.take());
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (_, r1, r2) = tokio::join!(feed, stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
    r1.and(r2).map_err(GitError::Missing)?;
    let status = child.wait().await.map_err(GitError::Missing)?;
    Ok(Output { status_ok: status.success(), stdout: out, stderr: err })
}

#[cfg(test)]
mod tests {
    use super::paths_of_diff;

    #[test]
    fn diff_headers_give_their_paths() {
        let diff = "diff --git a/recipe.toml b/recipe.toml\nindex 1..2 100644\n--- a/recipe.toml\n+++ b/recipe.toml\n\
                    @@ -1 +1 @@\n-diff --git a/x b/x\n+y\ndiff --git a/my dir/a b.py b/my dir/a b.py\nnew file mode 100644\n";
        assert_eq!(paths_of_diff(diff), Some(vec!["recipe.toml".to_string(), "my dir/a b.py".to_string()]));
        assert_eq!(paths_of_diff("diff --git \"a/t\\tab\" \"b/t\\tab\"\n"), None);
        assert_eq!(paths_of_diff(""), Some(vec![]));
    }
}
