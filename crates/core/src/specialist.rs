//! The interface every proposer plugs into: built-in search strategies and LLM agents alike.

use crate::knob::KnobValues;
use crate::label::Label;
use crate::lineage::LineageView;
use crate::transcript::Transcript;
use crate::trial::{Proposal, TrialNo};

/// One earlier trial as a search strategy learns from it: the knob values it ran with, how it
/// scored, and how it ended. Failures teach as much as scores do.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The values of the specialist's knobs in the trial's recipe.
    pub knobs: KnobValues,
    /// The score turned so that larger is better ([`crate::Direction::gain`]); `None` when the
    /// trial has no score to trust (a failure, or a run stopped early).
    pub gain: Option<f64>,
    pub label: Label,
}

/// What a specialist is given when asked for its next proposal.
#[derive(Clone)]
pub struct ProposalRequest<'a> {
    /// Seed for this proposal, derived from the study seed and the proposal's position, so a
    /// resumed study proposes what an uninterrupted one would have.
    pub seed: u64,
    pub view: &'a LineageView,
    /// The knob values the current best recipe has in this specialist's knob file.
    pub best_knobs: &'a KnobValues,
    /// The specialist's latest finished trials, oldest first, and the current best among them.
    pub history: &'a [Observation],
    /// Where a specialist that edits code drafts its change; `None` for search strategies,
    /// which only set knobs.
    pub bench: Option<&'a dyn Workbench>,
}

/// Why a workbench could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BenchError {
    /// The request cannot be met (no such file or trial, a path outside the recipe); the
    /// specialist is told and may try something else.
    #[error("{0}")]
    Refused(String),
    /// The workbench itself failed (git, the file system, the store): not the specialist's fault.
    #[error("the workbench failed: {0}")]
    Broken(String),
}

/// Where a specialist that edits code drafts its proposal: a copy of the recipe at the trial it
/// builds on, and the loop's view of earlier trials. The loop provides it, since files,
/// processes and the store are effects; the specialist only asks. Surface and protected-path
/// checks are the specialist's to make before writing, and the loop makes them again on the
/// committed change.
#[async_trait::async_trait]
pub trait Workbench: Send + Sync {
    /// The trial the draft builds on.
    fn parent(&self) -> TrialNo;
    /// Starts the draft over from `trial`'s recipe, dropping the edits so far.
    async fn start_from(&self, trial: TrialNo) -> Result<(), BenchError>;
    /// Every file of the draft with its size in bytes, relative to the recipe's root, sorted.
    async fn list_files(&self) -> Result<Vec<(String, u64)>, BenchError>;
    async fn read_file(&self, path: &str) -> Result<String, BenchError>;
    async fn write_file(&self, path: &str, text: &str) -> Result<(), BenchError>;
    /// The draft's change against its parent as a unified diff; empty when nothing changed.
    async fn diff(&self) -> Result<String, BenchError>;
    /// The recipe's syntax check and a smoke run of the draft at a tiny budget, as a report.
    async fn preflight(&self) -> Result<String, BenchError>;
    /// One earlier trial as `postdoc show` prints it.
    async fn show_trial(&self, trial: TrialNo) -> Result<String, BenchError>;
    /// The change from trial `from`'s recipe to trial `to`'s.
    async fn diff_trials(&self, from: TrialNo, to: TrialNo) -> Result<String, BenchError>;
    /// Keeps the proposal's transcript, to be stored with the trial it becomes (or with the
    /// record of why it became none).
    fn keep_transcript(&self, transcript: Transcript);
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// The specialist produced something that is not a usable proposal; recorded as
    /// `invalid_proposal` against it.
    #[error("invalid proposal: {0}")]
    Invalid(String),
    /// The specialist could not work (its model provider is down); not its fault.
    #[error("specialist unavailable: {0}")]
    Unavailable(String),
}

#[async_trait::async_trait]
pub trait Specialist: Send + Sync {
    fn name(&self) -> &str;

    async fn propose(&self, request: ProposalRequest<'_>) -> Result<Proposal, ProposeError>;
}
