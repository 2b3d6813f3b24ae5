//! The interface every proposer plugs into: built-in search strategies and LLM agents alike.

use crate::knob::KnobValues;
use crate::label::Label;
use crate::lineage::LineageView;
use crate::trial::Proposal;

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
#[derive(Debug, Clone)]
pub struct ProposalRequest<'a> {
    /// Seed for this proposal, derived from the study seed and the proposal's position, so a
    /// resumed study proposes what an uninterrupted one would have.
    pub seed: u64,
    pub view: &'a LineageView,
    /// The knob values the current best recipe has in this specialist's knob file.
    pub best_knobs: &'a KnobValues,
    /// The specialist's latest finished trials, oldest first, and the current best among them.
    pub history: &'a [Observation],
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
