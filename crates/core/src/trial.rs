//! Trials and proposals: what a specialist submits and what the lineage records of it.

use crate::knob::KnobValues;
use crate::label::Label;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A trial's number within its study; the first baseline is trial 0.
pub type TrialNo = u64;

/// The specialist name under which the unmodified recipe runs.
pub const BASELINE_SPECIALIST: &str = "baseline";

/// The specialist name under which a study's opening trials run: each draws the knobs of every
/// built-in search at once, so that the first trials say something about every knob.
pub const OPENING_SPECIALIST: &str = "opening";

/// What a specialist asks the harness to try.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    pub specialist: String,
    /// One line saying what the change is expected to do and why.
    pub hypothesis: String,
    /// Expected change of the objective, in its own units, if the specialist states one.
    pub expected_delta: Option<f64>,
    /// The trial to build on; the current best when `None`.
    pub parent: Option<TrialNo>,
    pub edit: Edit,
    /// The technique cards (their numbers in the store) the hypothesis rests on.
    #[serde(default)]
    pub cites: Vec<i64>,
}

/// The change itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Edit {
    /// Nothing: the recipe as its parent has it (the baseline).
    Unchanged,
    /// Values to write into the specialist's knob file.
    Knobs { values: KnobValues },
    /// A unified diff against the parent, as `git apply` reads it.
    Patch { diff: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialStatus {
    Proposed,
    /// Proposed, and waiting for the researcher to approve or reject it.
    Waiting,
    Running,
    Finished,
}

impl TrialStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TrialStatus::Proposed => "proposed",
            TrialStatus::Waiting => "waiting",
            TrialStatus::Running => "running",
            TrialStatus::Finished => "finished",
        }
    }

    pub fn parse(s: &str) -> Option<TrialStatus> {
        [TrialStatus::Proposed, TrialStatus::Waiting, TrialStatus::Running, TrialStatus::Finished]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// Everything the lineage holds about one trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    pub number: TrialNo,
    pub parent: Option<TrialNo>,
    /// The trial this one re-runs after an infrastructure fault.
    pub retry_of: Option<TrialNo>,
    pub specialist: String,
    pub hypothesis: String,
    pub expected_delta: Option<f64>,
    pub edit: Edit,
    pub status: TrialStatus,
    pub commit: Option<String>,
    /// The change against the parent, as a unified diff.
    pub patch: Option<String>,
    pub label: Option<Label>,
    pub reason: Option<String>,
    /// The objective, averaged over the trial's successful runs.
    pub score: Option<f64>,
    /// Every metric the evaluator reported, averaged over successful runs.
    pub scores: BTreeMap<String, f64>,
    /// Successful runs behind `score` (seeds).
    pub runs: u32,
    /// Objective of each successful run, in run order.
    pub run_scores: Vec<f64>,
    pub train_seconds: f64,
    pub eval_seconds: f64,
    pub peak_rss_bytes: Option<u64>,
    pub artifact_bytes: Option<u64>,
    pub log_excerpt: Option<String>,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
}

impl TrialRecord {
    /// The trial as a specialist reads it: what was tried, how it ended, and the change.
    pub fn describe(&self) -> String {
        use std::fmt::Write;
        let mut s = format!("trial {} by {}", self.number, self.specialist);
        if let Some(p) = self.parent {
            let _ = write!(s, ", built on trial {p}");
        }
        let _ = write!(s, "\nhypothesis: {}", self.hypothesis);
        if let Some(d) = self.expected_delta {
            let _ = write!(s, " (expected {d:+})");
        }
        match (self.label, &self.reason) {
            (Some(l), Some(r)) if !r.is_empty() => {
                let _ = write!(s, "\nlabel: {l}: {r}");
            }
            (Some(l), _) => {
                let _ = write!(s, "\nlabel: {l}");
            }
            (None, _) => {
                let _ = write!(s, "\nstatus: {}", self.status.as_str());
            }
        }
        if let Some(score) = self.score {
            let _ = write!(s, "\nscore: {score} over {} run(s)", self.runs);
        }
        for (k, v) in &self.scores {
            let _ = write!(s, "\n  {k}: {v}");
        }
        let _ = write!(s, "\ncompute: {:.0} s training, {:.0} s evaluation", self.train_seconds, self.eval_seconds);
        if let Some(e) = self.log_excerpt.as_deref().filter(|e| !e.trim().is_empty()) {
            let _ = write!(s, "\nlog excerpt:\n{}", e.trim_end());
        }
        match (&self.edit, self.patch.as_deref()) {
            (_, Some(p)) if !p.is_empty() => {
                let _ = write!(s, "\nchange against its parent:\n{p}");
            }
            (Edit::Knobs { values }, _) => {
                let knobs: Vec<String> = values.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                let _ = write!(s, "\nknobs: {}", knobs.join(", "));
            }
            _ => {}
        }
        s
    }

    /// Compute this trial spent, in seconds (training plus evaluation, all runs).
    pub fn compute_seconds(&self) -> f64 {
        self.train_seconds + self.eval_seconds
    }

    pub fn is_kept(&self) -> bool {
        self.label == Some(Label::Keep)
    }

    /// A run of the unmodified recipe rather than a specialist's proposal.
    pub fn is_baseline(&self) -> bool {
        self.specialist == BASELINE_SPECIALIST
    }

    /// Counts against the study's trial budget: a candidate that did not end as an
    /// infrastructure fault.
    pub fn is_counted(&self) -> bool {
        counts_against_budget(&self.specialist, self.label)
    }
}

/// The budget rule: candidates count, the baseline and infrastructure faults do not.
pub fn counts_against_budget(specialist: &str, label: Option<Label>) -> bool {
    specialist != BASELINE_SPECIALIST && label != Some(Label::HarnessAbort)
}

/// Aggregates over a study's trials: what counts against the budget, the compute spent, the
/// proposals each specialist made and the labels candidates ended with. One rule, whether the
/// store sums it in the database or a watcher over the trials it holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Candidate trials that count against the budget (not the baseline, not `harness_abort`).
    pub counted: u64,
    pub compute_seconds: f64,
    /// Proposals per specialist, retries not included.
    pub proposals: BTreeMap<String, u64>,
    /// Labels of finished candidate trials.
    pub labels: BTreeMap<Label, usize>,
}

impl Tally {
    /// Adds `n` trials by `specialist` that ended with `label` (none yet: `None`), `first` of
    /// them proposals rather than retries, which spent `compute_seconds` together.
    pub fn add(&mut self, specialist: &str, label: Option<Label>, n: u64, first: u64, compute_seconds: f64) {
        self.compute_seconds += compute_seconds;
        *self.proposals.entry(specialist.to_string()).or_insert(0) += first;
        if counts_against_budget(specialist, label) {
            self.counted += n;
        }
        if let (Some(l), false) = (label, specialist == BASELINE_SPECIALIST) {
            *self.labels.entry(l).or_insert(0) += n as usize;
        }
    }

    pub fn of_nodes<'a>(nodes: impl IntoIterator<Item = &'a TrialNode>) -> Tally {
        let mut tally = Tally::default();
        for n in nodes {
            tally.add(&n.specialist, n.label, 1, u64::from(n.retry_of.is_none()), n.compute_seconds);
        }
        tally
    }
}

/// A trial as one node of the lineage tree and one point of the progress curves: what it is,
/// how it ended, what it cost; no diff, logs or runs, so a whole study's worth stays small.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialNode {
    pub number: TrialNo,
    pub parent: Option<TrialNo>,
    pub retry_of: Option<TrialNo>,
    pub specialist: String,
    /// The start of the hypothesis, for a tooltip.
    pub hypothesis: String,
    pub status: TrialStatus,
    pub label: Option<Label>,
    pub score: Option<f64>,
    pub compute_seconds: f64,
    pub finished_ms: Option<i64>,
}

impl TrialNode {
    pub fn is_baseline(&self) -> bool {
        self.specialist == BASELINE_SPECIALIST
    }

    /// Counts against the study's trial budget, as [`TrialRecord::is_counted`].
    pub fn is_counted(&self) -> bool {
        counts_against_budget(&self.specialist, self.label)
    }
}

/// Why a run of a trial's recipe happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunPurpose {
    /// The unmodified recipe, repeated over seeds to measure the noise.
    Baseline,
    /// A candidate's first run.
    Screen,
    /// A candidate that beat the best, re-run on a fresh seed.
    Confirm,
}

impl RunPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            RunPurpose::Baseline => "baseline",
            RunPurpose::Screen => "screen",
            RunPurpose::Confirm => "confirm",
        }
    }

    pub fn parse(s: &str) -> Option<RunPurpose> {
        [RunPurpose::Baseline, RunPurpose::Screen, RunPurpose::Confirm].into_iter().find(|p| p.as_str() == s)
    }
}

/// One execution of a trial's recipe on one seed, then of the evaluator on what it produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub idx: u32,
    pub purpose: RunPurpose,
    pub seed: u64,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub train_seconds: f64,
    pub eval_seconds: f64,
    pub cpu_seconds: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
    pub artifact_bytes: Option<u64>,
    /// The objective, when the evaluator scored the run.
    pub score: Option<f64>,
    pub scores: BTreeMap<String, f64>,
    pub findings: Vec<crate::label::Finding>,
    pub log_tail: String,
    pub eval_log_tail: String,
    pub started_ms: i64,
    pub finished_ms: i64,
}

/// One point of a live metric curve a recipe wrote to `POSTDOC_METRICS`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    pub run_idx: u32,
    pub step: Option<i64>,
    pub name: String,
    pub value: f64,
    pub at_ms: i64,
}
