//! Where a study keeps its files inside the recipe's `.postdoc/` folder (ignored by git).

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    study: String,
}

impl Layout {
    pub fn new(recipe: &Path, study: &str) -> Layout {
        Layout { root: recipe.join(".postdoc"), study: study.to_string() }
    }

    /// `.postdoc/` itself.
    pub fn dot_postdoc(&self) -> &Path {
        &self.root
    }

    /// The default store: an SQLite file shared by the recipe's studies.
    pub fn default_store_url(recipe: &Path) -> String {
        format!("sqlite://{}", recipe.join(".postdoc").join("lineage.db").display())
    }

    pub fn study_dir(&self) -> PathBuf {
        self.root.join("studies").join(&self.study)
    }

    /// What the setup command builds (a virtual environment, say), shared by every trial.
    pub fn env_dir(&self) -> PathBuf {
        self.study_dir().join("env")
    }

    pub fn run_dir(&self, trial: u64, run: u32) -> PathBuf {
        self.study_dir().join("trials").join(trial.to_string()).join(format!("run-{run}"))
    }

    pub fn worktrees(&self) -> PathBuf {
        self.root.join("worktrees")
    }

    pub fn worktree(&self, name: &str) -> PathBuf {
        self.worktrees().join(format!("{}-{name}", self.study))
    }

    /// The worktree executor slot `slot` runs its trials in, one after another.
    pub fn slot_worktree(&self, slot: usize) -> PathBuf {
        self.worktree(&format!("slot{slot}"))
    }

    /// Makes `.postdoc/` and keeps it out of the recipe's git status without touching the
    /// recipe's own `.gitignore`.
    pub fn ensure(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(self.study_dir())?;
        std::fs::create_dir_all(self.worktrees())?;
        let ignore = self.root.join(".gitignore");
        if !ignore.exists() {
            std::fs::write(ignore, "# postdoc's working files: the lineage store, worktrees, artifacts.\n*\n")?;
        }
        Ok(())
    }

    pub fn study_ref(&self, leaf: &str) -> String {
        format!("refs/postdoc/{}/{leaf}", self.study)
    }
}
