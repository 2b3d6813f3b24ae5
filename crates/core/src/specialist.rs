//! The interface every proposer plugs into: built-in search strategies and LLM agents alike.

use crate::knob::KnobValues;
use crate::label::Label;
use crate::lineage::LineageView;
use crate::manifest::Manifest;
use crate::transcript::Transcript;
use crate::trial::{Proposal, TrialNo};

/// One earlier trial as a search strategy learns from it: the knob values it ran with, how it
/// scored, and how it ended. Failures teach as much as scores do.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The values of the specialist's knobs in the trial's recipe (and, where the study gives
    /// them, of the recipe's other search knobs).
    pub knobs: KnobValues,
    /// The score turned so that larger is better ([`crate::Direction::gain`]); `None` when the
    /// trial has no score to trust (a failure, or a run stopped early).
    pub gain: Option<f64>,
    pub label: Label,
    /// How close the trial came to the study's caps, where the harness measured it.
    pub usage: Usage,
}

impl Observation {
    /// A finished trial as a search under `manifest` learns from it: a failure has no score to
    /// trust, and a run killed at its budget or stopped early (done without a score) would
    /// have used at least what it used of the caps.
    pub fn of_trial(
        knobs: KnobValues,
        label: Label,
        score: Option<f64>,
        artifact_bytes: Option<u64>,
        train_seconds: f64,
        runs: u32,
        manifest: &Manifest,
    ) -> Observation {
        let gain = if label.is_failure() { None } else { score.map(|s| manifest.study.objective.direction.gain(s)) };
        let stopped = label == Label::TrainOverrun || (!label.is_failure() && gain.is_none());
        let usage = Usage::measured(
            artifact_bytes,
            manifest.evaluate.artifact_max_bytes.map(|b| b.0),
            train_seconds,
            runs,
            manifest.run.budget.seconds.0,
            stopped,
        );
        Observation { knobs, gain, label, usage }
    }

    /// A study's trials seen through one specialist's knobs: trials that left those knobs at the
    /// same values are one setting, judged by the best it did (a score over a run stopped early
    /// over a failure), in the place of its first trial. When another specialist's move makes the
    /// best recipe worse or fail, the setting of these knobs is not to blame.
    pub fn best_per_setting(history: Vec<Observation>) -> Vec<Observation> {
        let rank = |o: &Observation| match (o.label.is_failure(), o.gain) {
            (true, _) => (0, f64::NEG_INFINITY),
            (false, None) => (1, f64::NEG_INFINITY),
            (false, Some(g)) => (2, g),
        };
        let mut settings: Vec<Observation> = Vec::with_capacity(history.len());
        for o in history {
            match settings.iter_mut().find(|s| s.knobs == o.knobs) {
                Some(s) => {
                    let (a, b) = (rank(&o), rank(s));
                    if a.0 > b.0 || (a.0 == b.0 && a.1 > b.1) {
                        *s = o;
                    }
                }
                None => settings.push(o),
            }
        }
        settings
    }
}

/// How much of the study's caps a trial used. The harness measures these on every run, not only
/// on the ones that cross a cap, so a search can learn where the caps lie before it hits them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// Artifact bytes as a share of `artifact_max_bytes`.
    pub artifact: Option<Share>,
    /// Seconds of one training run as a share of the run budget.
    pub train_time: Option<Share>,
}

impl Usage {
    /// A trial's measurements against the caps: its largest artifact against `artifact_cap`, and
    /// its training seconds, summed over `runs` runs (a confirmed trial ran several), per run
    /// against `run_budget`. A run killed at the budget or stopped early for being behind
    /// (`stopped`) would have taken at least what it took.
    pub fn measured(
        artifact_bytes: Option<u64>,
        artifact_cap: Option<u64>,
        train_seconds: f64,
        runs: u32,
        run_budget: f64,
        stopped: bool,
    ) -> Usage {
        let artifact = match (artifact_bytes, artifact_cap) {
            (Some(bytes), Some(cap)) if cap > 0 => Some(Share { used: bytes as f64 / cap as f64, at_least: false }),
            _ => None,
        };
        let train_time = (run_budget > 0.0 && train_seconds > 0.0)
            .then(|| Share { used: train_seconds / f64::from(runs.max(1)) / run_budget, at_least: stopped });
        Usage { artifact, train_time }
    }
}

/// A share of a cap: 1.0 is the cap itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share {
    pub used: f64,
    /// The run was stopped (at the cap, or early for being behind), so it would have used at
    /// least `used`.
    pub at_least: bool,
}

/// What a specialist is given when asked for its next proposal.
#[derive(Clone)]
pub struct ProposalRequest<'a> {
    /// Seed for this proposal, derived from the study seed and the proposal's position, so a
    /// resumed study proposes what an uninterrupted one would have.
    pub seed: u64,
    /// How many proposals this specialist made in the study before this one (0 for its first).
    pub turn: u64,
    pub view: &'a LineageView,
    /// The knob values the recipe a proposal builds on has in this specialist's knob file: the
    /// current best, or for a search, a trial being confirmed to replace it.
    pub best_knobs: &'a KnobValues,
    /// The values the same knobs have in the recipe the study started from (its baseline's).
    pub start_knobs: &'a KnobValues,
    /// The values every search knob of the study has in that recipe, the other specialists'
    /// among them: the recipe a proposal of knob values will run.
    pub recipe_knobs: &'a KnobValues,
    /// The study's latest finished trials (whoever proposed them), one per trial, oldest
    /// first, the current best among them, each with its values of every search knob of the
    /// study. A search that learns per setting of its own knobs merges them
    /// ([`Observation::best_per_setting`]); what a cap depends on is learned over all of them.
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
    /// Datasets on the Hugging Face Hub matching `query` (words, and `task:`, `language:`,
    /// `licence:` terms), as a short list. A workbench with no way to look refuses.
    async fn search_datasets(&self, query: &str) -> Result<String, BenchError> {
        Err(BenchError::Refused(format!("dataset search is not available here (asked for `{query}`)")))
    }
    /// Papers in the study's library matching `query`, best first, each with its technique
    /// cards' numbers. A workbench with no library refuses.
    async fn search_papers(&self, query: &str) -> Result<String, BenchError> {
        Err(BenchError::Refused(format!("there is no paper library here (asked for `{query}`)")))
    }
    /// One technique card: the technique, its claimed effect and setting, the part of a recipe
    /// it touches, the paper, and the sentences each rests on.
    async fn read_card(&self, card: i64) -> Result<String, BenchError> {
        Err(BenchError::Refused(format!("there is no paper library here (asked for card {card})")))
    }
    /// What is in a dataset (a file of the draft, or `hub:OWNER/NAME`): its columns, shapes,
    /// lengths, duplicates and a few rows, as a short report.
    async fn inspect_dataset(&self, target: &str) -> Result<String, BenchError> {
        Err(BenchError::Refused(format!("dataset inspection is not available here (asked for `{target}`)")))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_per_run_and_knows_what_was_cut_short() {
        let confirmed = Usage::measured(Some(75_000), Some(150_000), 90.0, 3, 60.0, false);
        assert_eq!(confirmed.artifact, Some(Share { used: 0.5, at_least: false }));
        assert_eq!(confirmed.train_time, Some(Share { used: 0.5, at_least: false }));
        // An overrun has no scored run; its one run was killed at the budget.
        let overrun = Usage::measured(None, Some(150_000), 60.2, 0, 60.0, true);
        assert_eq!(overrun.artifact, None);
        let time = overrun.train_time.unwrap();
        assert!(time.at_least && (time.used - 60.2 / 60.0).abs() < 1e-12, "{time:?}");
        // No cap, nothing to learn about it.
        assert_eq!(Usage::measured(Some(10), None, 0.0, 1, 60.0, false), Usage::default());
    }

    #[test]
    fn a_setting_is_judged_by_the_best_it_did() {
        use crate::KnobValue;
        let at = |lr: f64, gain: Option<f64>, label: Label| Observation {
            knobs: KnobValues::from([("lr".to_string(), KnobValue::Float(lr))]),
            gain,
            label,
            usage: Usage::default(),
        };
        let history = vec![
            at(0.01, Some(0.5), Label::Keep),
            at(0.1, None, Label::Crash),
            at(0.01, Some(0.2), Label::Discard),
            at(0.001, None, Label::Crash),
            at(0.01, Some(0.7), Label::Keep),
            at(0.1, None, Label::Discard),
            at(0.001, Some(0.1), Label::Discard),
            at(0.01, None, Label::Crash),
        ];
        let settings = Observation::best_per_setting(history);
        assert_eq!(
            settings,
            vec![
                at(0.01, Some(0.7), Label::Keep),
                // A run stopped early beats a failure; a failure alone stays a failure.
                at(0.1, None, Label::Discard),
                at(0.001, Some(0.1), Label::Discard),
            ]
        );
    }
}
