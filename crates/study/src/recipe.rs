//! Opening a recipe: its repository, its manifest, and the checks that come before any study.

use crate::StudyError;
use postdoc_core::Manifest;
use postdoc_git::Repo;
use std::path::{Path, PathBuf};

pub const MANIFEST_FILE: &str = "postdoc.toml";

/// A recipe as found on disk: a git repository with a valid manifest at its top.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub repo: Repo,
    pub manifest: Manifest,
    pub manifest_text: String,
    pub manifest_path: PathBuf,
}

impl Recipe {
    /// Opens the recipe at `dir`, reading `manifest` (default `dir/postdoc.toml`).
    pub async fn open(dir: &Path, manifest: Option<&Path>) -> Result<Recipe, StudyError> {
        let manifest_path = manifest.map(Path::to_path_buf).unwrap_or_else(|| dir.join(MANIFEST_FILE));
        let manifest_text = std::fs::read_to_string(&manifest_path)
            .map_err(|source| StudyError::ManifestMissing { path: manifest_path.clone(), source })?;
        let shown = manifest_path.display().to_string();
        let manifest = Manifest::parse(&manifest_text, &shown)?;
        let repo = Repo::open(dir).await?;
        let dir_abs = std::fs::canonicalize(dir).map_err(|source| StudyError::Io {
            what: "cannot resolve",
            path: dir.to_path_buf(),
            source,
        })?;
        let root_abs = std::fs::canonicalize(repo.root()).unwrap_or_else(|_| repo.root().to_path_buf());
        if dir_abs != root_abs {
            return Err(StudyError::NotTopLevel { manifest: manifest_path, root: root_abs });
        }
        Ok(Recipe { repo, manifest, manifest_text, manifest_path })
    }

    pub fn root(&self) -> &Path {
        self.repo.root()
    }
}

/// A commented starting manifest for the recipe at `dir`, naming the study after the folder.
pub fn init_manifest(study_name: &str) -> String {
    format!(
        r#"# postdoc.toml: how postdoc runs research on this recipe.
# Every key is checked on load; an unknown key is an error, not ignored.

[study]
name = "{study_name}"                  # names git refs: refs/postdoc/<name>/...
objective = {{ metric = "accuracy", direction = "maximize" }}   # a key of the evaluator's JSON
budget = {{ max_trials = 50, wall_clock = "2h" }}               # also: compute_seconds = 3600
parallel = 1                          # trials at once

# Run once per study before any trial. $POSTDOC_ENV is a folder shared by every trial; when it
# holds a virtual environment (bin/), trials and the evaluator run with it on their PATH.
# [setup]
# command = "python3 -m venv $POSTDOC_ENV && $POSTDOC_ENV/bin/pip install -q -r requirements.txt"

[run]
# Runs in the trial's own worktree with POSTDOC_TRIAL, POSTDOC_OUT (write artifacts here),
# POSTDOC_METRICS (append {{"step": n, "loss": x}} lines for live curves), POSTDOC_SEED and
# POSTDOC_BUDGET_S set.
command = "python3 train.py"
# preflight = "python3 -m py_compile train.py"   # a cheap check before the real run
budget = {{ seconds = 300, memory = "8GiB" }}

[evaluate]
# Runs from a pristine copy of the protected files, never from the trial's tree; reads
# $POSTDOC_OUT and prints one JSON object of metrics as its last line.
command = "python3 eval.py"
budget = {{ seconds = 60 }}
protected = ["eval.py"]               # the evaluator and its data: no specialist may edit them
gates = []                            # e.g. ["accuracy >= 0.5"]
# artifact_max_bytes = "16MB"

[noise]
baseline_repeats = 3                  # seeds for the unmodified recipe: measures the noise
confirm_seeds = 2                     # fresh seeds a win is re-run on before it is kept

[[specialist]]
name = "optimizer"
strategy = "random"
knobs_file = "recipe.toml"            # the values below are written here for each trial
knobs = {{ lr = {{ log_float = [1e-4, 1e-1] }} }}
"#
    )
}
