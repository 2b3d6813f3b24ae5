//! The loop: a study's sessions, from opening the recipe to the last label.
//!
//! ```text
//! propose (specialist) -> prepare (worktree, edit, commit, surface check) -> preflight
//!   -> run (executor, budgets) -> evaluate (pristine copy, gates) -> classify -> decide -> record
//! ```
//!
//! Effects sit behind the crates this one drives: the [`postdoc_store::Store`], an
//! [`postdoc_exec::Executor`], the recipe's [`postdoc_git::Repo`], and each
//! [`postdoc_core::Specialist`]. Every step is recorded before the next begins, so a session
//! killed at any moment is resumed by the next one without losing or repeating a trial.

mod contamination;
mod datasets;
mod early_stop;
mod layout;
mod recipe;
mod session;
mod summary;
mod trial;
mod workbench;

pub use layout::Layout;
pub use postdoc_core::knobs_file::{read_knobs, write_knobs};
pub use recipe::{MANIFEST_FILE, Recipe, init_manifest};
pub use session::{
    Approval, Progress, Reporter, RunOptions, Session, SilentReporter, StopReason, TRANSCRIPT_EVENT, lineage_view,
};
pub use summary::{Summary, active_seconds, active_seconds_in};

use postdoc_core::{Label, ManifestError};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("cannot read the manifest {path}: {source}")]
    ManifestMissing {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Git(#[from] postdoc_git::GitError),
    #[error(transparent)]
    Store(#[from] postdoc_store::StoreError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{manifest} must sit at the top of its git repository ({root})")]
    NotTopLevel { manifest: PathBuf, root: PathBuf },
    #[error("the recipe has uncommitted changes ({}): commit them so every trial starts from a known recipe", .0.join(", "))]
    Uncommitted(Vec<String>),
    #[error(
        "protected path `{0}` matches no file in the recipe's commit: the evaluator could not run from a pristine copy"
    )]
    ProtectedMissing(String),
    #[error("the contamination benchmark `{0}` is not a file in the recipe's commit")]
    BenchmarkMissing(String),
    #[error(
        "study `{study}` was started with a different objective, run/evaluate command or protected files; \
         its trials would not be comparable. Name a new study in [study].name"
    )]
    Incomparable { study: String },
    #[error("study `{study}` is being run by {owner} (heartbeat {age_s:.0}s ago); stop it first")]
    Busy { study: String, owner: String, age_s: f64 },
    #[error("the setup command failed: {reason}\n{excerpt}")]
    Setup { reason: String, excerpt: String },
    #[error("the unmodified recipe (the baseline) ended as {label}: {reason}{}", excerpt_block(.excerpt))]
    Baseline { label: Label, reason: String, excerpt: Option<String> },
    #[error("lost the study's lease to another orchestrator; stopping")]
    LeaseLost,
    #[error("specialist `{specialist}` cannot reach its model: {reason}")]
    Brain { specialist: String, reason: String },
}

fn excerpt_block(excerpt: &Option<String>) -> String {
    match excerpt {
        Some(e) if !e.trim().is_empty() => format!("\n{}", e.trim_end()),
        _ => String::new(),
    }
}
