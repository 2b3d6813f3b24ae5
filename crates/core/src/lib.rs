//! postdoc's domain: manifests, knobs, surfaces, gates, labels, the keep rule and the lineage
//! view. Everything here is pure: no files, processes, network or clocks, so the rules of a study
//! can be tested on values alone.

pub mod early_stop;
pub mod gate;
pub mod knob;
pub mod knobs_file;
pub mod label;
pub mod lineage;
pub mod literature;
pub mod manifest;
pub mod noise;
pub mod specialist;
pub mod surface;
pub mod transcript;
pub mod trial;
pub mod units;

pub use gate::Gate;
pub use knob::{KnobSpec, KnobValue, KnobValues};
pub use label::{Finding, Label, Verdict, classify};
pub use lineage::LineageView;
pub use manifest::{Direction, Manifest, ManifestError, Objective};
pub use noise::{Decision, Noise, Reference};
pub use specialist::{BenchError, Observation, ProposalRequest, ProposeError, Share, Specialist, Usage, Workbench};
pub use surface::{EditViolation, PathSet};
pub use transcript::{Price, Spend, Transcript};
pub use trial::{
    BASELINE_SPECIALIST, Edit, MetricPoint, OPENING_SPECIALIST, Proposal, RunPurpose, RunRecord, Tally, TrialNo,
    TrialNode, TrialRecord, TrialStatus, counts_against_budget,
};
