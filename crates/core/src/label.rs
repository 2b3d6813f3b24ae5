//! Labels, the harness's closed verdict on a trial, and the one classifier that assigns them.
//!
//! Every stage of a trial reports what it observed as [`Finding`]s; the classifier picks the
//! finding of highest priority, and only a trial with no finding at all is judged by the keep
//! rule. The priority order, highest first:
//!
//! 1. `harness_abort`: the harness or its machine failed; says nothing about the proposal, retried.
//! 2. `invalid_proposal`: the proposal could not be applied (bad patch, unknown knob, bad value).
//! 3. `illegal_edit`: the edit touches a protected path or leaves the specialist's surface.
//! 4. `preflight_crash`: the cheap check before the run failed, or the run could not start.
//! 5. `train_overrun`: the run hit its time budget and was stopped (its exit status follows from that).
//! 6. `crash`: the run failed, or the evaluator could not score what it produced (no JSON, NaN).
//! 7. `contaminated`: the run trained on the benchmark (its training examples hold benchmark
//!    items), whatever it scores.
//! 8. `size_blocked`: the artifacts exceed the size cap; they are not evaluated.
//! 9. `eval_overrun`: the evaluator hit its time budget.
//! 10. `gate_miss`: a gate on the evaluator's metrics failed.
//! 11. `discard` for a run stopped early (multi-fidelity): it was clearly behind at a rung.
//! 12. `keep` or `discard`: the noise-aware keep rule.

use crate::noise::Decision;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    Keep,
    Discard,
    Crash,
    PreflightCrash,
    InvalidProposal,
    IllegalEdit,
    SizeBlocked,
    TrainOverrun,
    EvalOverrun,
    GateMiss,
    HarnessAbort,
    Contaminated,
}

impl Label {
    pub const ALL: [Label; 12] = [
        Label::Keep,
        Label::Discard,
        Label::Crash,
        Label::PreflightCrash,
        Label::InvalidProposal,
        Label::IllegalEdit,
        Label::SizeBlocked,
        Label::TrainOverrun,
        Label::EvalOverrun,
        Label::GateMiss,
        Label::HarnessAbort,
        Label::Contaminated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Label::Keep => "keep",
            Label::Discard => "discard",
            Label::Crash => "crash",
            Label::PreflightCrash => "preflight_crash",
            Label::InvalidProposal => "invalid_proposal",
            Label::IllegalEdit => "illegal_edit",
            Label::SizeBlocked => "size_blocked",
            Label::TrainOverrun => "train_overrun",
            Label::EvalOverrun => "eval_overrun",
            Label::GateMiss => "gate_miss",
            Label::HarnessAbort => "harness_abort",
            Label::Contaminated => "contaminated",
        }
    }

    /// A failure that is the proposal's fault (wasted budget), as opposed to keep, discard and
    /// infrastructure faults.
    pub fn is_failure(self) -> bool {
        !matches!(self, Label::Keep | Label::Discard | Label::HarnessAbort)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Label {
    type Err = String;
    fn from_str(s: &str) -> Result<Label, String> {
        Label::ALL.into_iter().find(|l| l.as_str() == s).ok_or_else(|| format!("unknown label `{s}`"))
    }
}

/// Something a stage of a trial observed that decides its label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    HarnessFault {
        reason: String,
    },
    InvalidProposal {
        reason: String,
    },
    IllegalEdit {
        reason: String,
    },
    PreflightCrash {
        reason: String,
        excerpt: String,
    },
    TrainOverrun {
        seconds: f64,
        budget: f64,
    },
    Crash {
        reason: String,
        excerpt: String,
    },
    Contaminated {
        reason: String,
    },
    SizeBlocked {
        bytes: u64,
        limit: u64,
    },
    EvalOverrun {
        seconds: f64,
        budget: f64,
    },
    GateMiss {
        gate: String,
        value: Option<f64>,
    },
    /// The run was behind the others at a rung of the early-stopping schedule and was stopped.
    StoppedEarly {
        reason: String,
    },
}

impl Finding {
    fn label(&self) -> Label {
        match self {
            Finding::HarnessFault { .. } => Label::HarnessAbort,
            Finding::InvalidProposal { .. } => Label::InvalidProposal,
            Finding::IllegalEdit { .. } => Label::IllegalEdit,
            Finding::PreflightCrash { .. } => Label::PreflightCrash,
            Finding::TrainOverrun { .. } => Label::TrainOverrun,
            Finding::Crash { .. } => Label::Crash,
            Finding::Contaminated { .. } => Label::Contaminated,
            Finding::SizeBlocked { .. } => Label::SizeBlocked,
            Finding::EvalOverrun { .. } => Label::EvalOverrun,
            Finding::GateMiss { .. } => Label::GateMiss,
            Finding::StoppedEarly { .. } => Label::Discard,
        }
    }

    /// Position in the documented priority order; lower wins.
    fn rank(&self) -> u8 {
        match self {
            Finding::HarnessFault { .. } => 0,
            Finding::InvalidProposal { .. } => 1,
            Finding::IllegalEdit { .. } => 2,
            Finding::PreflightCrash { .. } => 3,
            Finding::TrainOverrun { .. } => 4,
            Finding::Crash { .. } => 5,
            Finding::Contaminated { .. } => 6,
            Finding::SizeBlocked { .. } => 7,
            Finding::EvalOverrun { .. } => 8,
            Finding::GateMiss { .. } => 9,
            Finding::StoppedEarly { .. } => 10,
        }
    }

    fn reason(&self) -> String {
        match self {
            Finding::HarnessFault { reason }
            | Finding::InvalidProposal { reason }
            | Finding::IllegalEdit { reason }
            | Finding::PreflightCrash { reason, .. }
            | Finding::Crash { reason, .. }
            | Finding::Contaminated { reason }
            | Finding::StoppedEarly { reason } => reason.clone(),
            Finding::TrainOverrun { seconds, budget } => {
                format!("training ran {seconds:.1}s, over its {budget:.0}s budget, and was stopped")
            }
            Finding::SizeBlocked { bytes, limit } => {
                format!("artifacts are {bytes} bytes, over the {limit}-byte cap")
            }
            Finding::EvalOverrun { seconds, budget } => {
                format!("evaluation ran {seconds:.1}s, over its {budget:.0}s budget, and was stopped")
            }
            Finding::GateMiss { gate, value: Some(v) } => format!("gate `{gate}` failed: measured {v}"),
            Finding::GateMiss { gate, value: None } => {
                format!("gate `{gate}` failed: the evaluator did not report it")
            }
        }
    }

    fn excerpt(&self) -> Option<&str> {
        match self {
            Finding::PreflightCrash { excerpt, .. } | Finding::Crash { excerpt, .. } => Some(excerpt),
            _ => None,
        }
    }
}

/// The classifier's output: one label, why, and for crashes the end of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub label: Label,
    pub reason: String,
    pub excerpt: Option<String>,
}

/// Assigns exactly one label: the highest-priority finding, else the keep rule's decision.
pub fn classify(findings: &[Finding], decision: Option<&Decision>) -> Verdict {
    if let Some(top) = findings.iter().min_by_key(|f| f.rank()) {
        return Verdict { label: top.label(), reason: top.reason(), excerpt: top.excerpt().map(str::to_string) };
    }
    match decision {
        Some(d) => Verdict {
            label: if d.keep { Label::Keep } else { Label::Discard },
            reason: d.reason.clone(),
            excerpt: None,
        },
        None => Verdict {
            label: Label::HarnessAbort,
            reason: "the trial ended with neither a finding nor a decision".into(),
            excerpt: None,
        },
    }
}

/// The end of a log that explains a failure: from the last Python traceback if there is one,
/// else the last lines; at most `max_bytes`.
pub fn log_excerpt(log: &str, max_bytes: usize) -> String {
    let start = log.rfind("Traceback (most recent call last)").unwrap_or_else(|| {
        let lines: Vec<usize> = log.match_indices('\n').map(|(i, _)| i + 1).collect();
        let trimmed = log.trim_end_matches('\n').len();
        lines.iter().rev().filter(|&&i| i < trimmed).nth(14).copied().unwrap_or(0)
    });
    let mut text = &log[start..];
    if text.len() > max_bytes {
        let mut cut = text.len() - max_bytes;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text = &text[cut..];
    }
    text.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crash() -> Finding {
        Finding::Crash { reason: "exit status 1".into(), excerpt: "boom".into() }
    }

    #[test]
    fn overrun_wins_over_the_crash_it_causes() {
        let v = classify(&[crash(), Finding::TrainOverrun { seconds: 12.0, budget: 10.0 }], None);
        assert_eq!(v.label, Label::TrainOverrun);
        assert!(v.reason.contains("over its 10s budget"));
    }

    #[test]
    fn priority_order_is_the_documented_one() {
        let ordered = [
            Finding::HarnessFault { reason: "disk".into() },
            Finding::InvalidProposal { reason: "bad".into() },
            Finding::IllegalEdit { reason: "eval.py".into() },
            Finding::PreflightCrash { reason: "syntax".into(), excerpt: String::new() },
            Finding::TrainOverrun { seconds: 2.0, budget: 1.0 },
            crash(),
            Finding::Contaminated { reason: "trained on the benchmark".into() },
            Finding::SizeBlocked { bytes: 10, limit: 5 },
            Finding::EvalOverrun { seconds: 2.0, budget: 1.0 },
            Finding::GateMiss { gate: "a >= 1".into(), value: Some(0.0) },
            Finding::StoppedEarly { reason: "stopped early at step 100".into() },
        ];
        let labels: Vec<Label> = (0..ordered.len()).map(|i| classify(&ordered[i..], None).label).collect();
        assert_eq!(
            labels,
            vec![
                Label::HarnessAbort,
                Label::InvalidProposal,
                Label::IllegalEdit,
                Label::PreflightCrash,
                Label::TrainOverrun,
                Label::Crash,
                Label::Contaminated,
                Label::SizeBlocked,
                Label::EvalOverrun,
                Label::GateMiss,
                Label::Discard
            ]
        );
        // Order of the findings in the slice does not matter, only their priority.
        let mut reversed = ordered.to_vec();
        reversed.reverse();
        assert_eq!(classify(&reversed, None).label, Label::HarnessAbort);
    }

    #[test]
    fn decision_only_without_findings() {
        let keep = Decision { keep: true, delta: 0.2, margin: 0.1, reason: "beats best".into() };
        assert_eq!(classify(&[], Some(&keep)).label, Label::Keep);
        assert_eq!(
            classify(&[Finding::GateMiss { gate: "g".into(), value: None }], Some(&keep)).label,
            Label::GateMiss
        );
        assert_eq!(classify(&[], None).label, Label::HarnessAbort);
    }

    #[test]
    fn labels_round_trip_through_text() {
        for l in Label::ALL {
            assert_eq!(l.as_str().parse::<Label>(), Ok(l));
            assert_eq!(serde_json::to_string(&l).unwrap(), format!("\"{l}\""));
        }
    }

    #[test]
    fn excerpt_starts_at_the_last_traceback() {
        let log = "step 1\nTraceback (most recent call last):\n  old\nValueError: a\nstep 2\nTraceback (most recent call last):\n  File \"train.py\", line 3\nZeroDivisionError: division by zero\n";
        let e = log_excerpt(log, 4096);
        assert!(e.starts_with("Traceback"));
        assert!(e.ends_with("ZeroDivisionError: division by zero"));
        assert!(!e.contains("ValueError"));
        let many: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let e = log_excerpt(&many, 4096);
        assert!(e.starts_with("line 85") && e.ends_with("line 99"), "{e}");
        assert!(log_excerpt(&many, 10).len() <= 10);
    }
}
