//! The lineage view: what a specialist is shown before it proposes, built from the trial records
//! alone (no I/O) and rendered as text for people and models.

use crate::label::Label;
use crate::manifest::{Direction, NoiseSpec, Objective};
use crate::noise::{Noise, Reference};
use crate::trial::{Edit, TrialRecord, TrialStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

/// How many trials the leaderboard and the recent-activity list show.
const LIST_LEN: usize = 10;
/// The trials built on the best that a view lists one by one (the latest); earlier ones are
/// summarized by label, so a view stays readable, and cheap, however long the best has stood.
pub const CHILDREN_SHOWN: usize = 30;
/// A specialist whose last this-many finished trials kept nothing is told it is saturating.
pub const SATURATION_WINDOW: usize = 5;

#[derive(Debug, Clone, Serialize)]
pub struct LineageView {
    pub study: String,
    pub objective: Objective,
    /// The specialist this view is for, if any; it gets the saturation note.
    pub specialist: Option<String>,
    pub baseline: Option<TrialRecord>,
    pub noise: Noise,
    pub best: Option<TrialRecord>,
    /// Kept trials, best score first.
    pub leaderboard: Vec<TrialRecord>,
    /// From the baseline to the best, following parents.
    pub ancestry: Vec<TrialRecord>,
    /// Trials built on the best, failures included: the latest [`CHILDREN_SHOWN`].
    pub children_of_best: Vec<TrialRecord>,
    /// Labels of the trials built on the best that are not listed (older ones).
    pub earlier_children: BTreeMap<Label, usize>,
    /// Latest trials first, running ones included.
    pub recent: Vec<TrialRecord>,
    pub label_counts: BTreeMap<Label, usize>,
    pub saturation: Option<String>,
    /// What the researcher wrote (`postdoc note`, a rejection's note), oldest first.
    pub notes: Vec<ResearcherNote>,
}

/// A note from the researcher, shown to every specialist from then on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResearcherNote {
    /// The trial it is about, if any (a rejected proposal).
    pub trial: Option<u64>,
    pub text: String,
}

/// The current best: the most recent keep (each keep had to beat the best before it).
pub fn current_best(trials: &[TrialRecord]) -> Option<&TrialRecord> {
    trials.iter().filter(|t| t.is_kept()).max_by_key(|t| (t.finished_ms.unwrap_or(0), t.number))
}

/// The baseline: the unmodified recipe's trial, the latest one not lost to an infrastructure fault.
pub fn baseline(trials: &[TrialRecord]) -> Option<&TrialRecord> {
    trials.iter().filter(|t| t.is_baseline() && t.label != Some(Label::HarnessAbort)).max_by_key(|t| t.number)
}

/// The study's noise: pooled over the configurations a candidate is judged against (the
/// baseline and every kept trial), each run on several seeds. Failed and discarded trials stay
/// out: an unstable configuration must not widen the margin every later candidate faces.
pub fn study_noise(trials: &[TrialRecord]) -> Noise {
    Noise::pooled(trials.iter().filter(|t| t.is_kept()).map(|t| t.run_scores.as_slice()))
}

/// What `trial` is known to score, as gain (larger is better).
pub fn reference(trial: &TrialRecord, direction: Direction) -> Option<Reference> {
    trial.score.map(|s| Reference { mean: direction.gain(s), runs: trial.runs.max(1) })
}

/// A change to try again on the current best: a trial that beat the trial it built on by more
/// than the noise demands, yet is not in the best's line because, while it ran, another line of
/// the study overtook its parent. Either it was judged against a best that lacks its change and
/// discarded, or it was kept first and the other line's trial, finishing later, beat it.
#[derive(Debug, Clone, PartialEq)]
pub struct Overtaken<'a> {
    pub trial: &'a TrialRecord,
    pub parent: &'a TrialRecord,
    /// How far it beat its parent, in gain units.
    pub gain_over_parent: f64,
}

/// The overtaken trials among `trials`, largest gain over their parent first. With trials in
/// parallel, two specialists often improve the same parent side by side; the one that finishes
/// second is judged against the first one's recipe and discarded (or, when it finishes first, is
/// kept and then beaten), and its gain is lost unless the two are combined, as a researcher
/// would. In tiny-golf a wider model kept on the starting optimizer was beaten by a tuned
/// optimizer on the starting model, and the study spent its remaining trials on the narrow one.
/// Only knob changes are taken (they apply to any recipe; a patch may not), and each only once:
/// a later trial of the same change, or of part of it, built on another parent (running ones
/// count) means it has been tried again already.
pub fn overtaken<'a>(
    trials: &'a [TrialRecord],
    best: &TrialRecord,
    direction: Direction,
    noise: Noise,
    spec: &NoiseSpec,
) -> Vec<Overtaken<'a>> {
    let by_number: BTreeMap<u64, &TrialRecord> = trials.iter().map(|t| (t.number, t)).collect();
    let line: Vec<u64> = ancestry(&by_number, best.number).iter().map(|t| t.number).collect();
    let mut found: Vec<Overtaken<'a>> = trials
        .iter()
        .filter(|t| match t.label {
            Some(Label::Discard) => true,
            Some(Label::Keep) => !t.is_baseline() && !line.contains(&t.number),
            _ => false,
        })
        .filter(|t| matches!(t.edit, Edit::Knobs { .. }))
        .filter(|t| t.parent.is_some_and(|p| p != best.number))
        .filter_map(|t| {
            let parent = *by_number.get(&t.parent?)?;
            let (mine, theirs) = (reference(t, direction)?, reference(parent, direction)?);
            let gain_over_parent = mine.mean - theirs.mean;
            let margin = noise.margin(spec, mine.runs, theirs);
            (gain_over_parent > margin && gain_over_parent > 0.0).then_some(Overtaken {
                trial: t,
                parent,
                gain_over_parent,
            })
        })
        .filter(|o| {
            !trials.iter().any(|u| u.number > o.trial.number && u.parent != o.trial.parent && repeats(u, o.trial))
        })
        .collect();
    found.sort_by(|a, b| b.gain_over_parent.total_cmp(&a.gain_over_parent).then(a.trial.number.cmp(&b.trial.number)));
    found
}

/// `trial` and the trials it descends from, newest first, as far as `trials` reach back.
fn ancestry<'a>(trials: &BTreeMap<u64, &'a TrialRecord>, trial: u64) -> Vec<&'a TrialRecord> {
    let mut line: Vec<&TrialRecord> = Vec::new();
    let mut cursor = Some(trial);
    while let Some(t) = cursor.and_then(|n| trials.get(&n)) {
        if line.iter().any(|a| a.number == t.number) {
            break; // a cycle cannot come from the harness, but never loop on a bad store
        }
        line.push(t);
        cursor = t.parent;
    }
    line
}

/// Whether `later`'s knob edit is `earlier`'s, or a part of it (a combination carries only the
/// values its original changed).
fn repeats(later: &TrialRecord, earlier: &TrialRecord) -> bool {
    match (&later.edit, &earlier.edit) {
        (Edit::Knobs { values: part }, Edit::Knobs { values: whole }) => {
            !part.is_empty() && part.iter().all(|(k, v)| whole.get(k) == Some(v))
        }
        _ => false,
    }
}

impl LineageView {
    pub fn build(study: &str, objective: &Objective, trials: &[TrialRecord], specialist: Option<&str>) -> LineageView {
        let by_number: BTreeMap<u64, &TrialRecord> = trials.iter().map(|t| (t.number, t)).collect();
        let best = current_best(trials).cloned();
        let direction = objective.direction;
        let mut leaderboard: Vec<TrialRecord> = trials.iter().filter(|t| t.is_kept()).cloned().collect();
        leaderboard.sort_by(|a, b| {
            let g = |t: &TrialRecord| t.score.map(|s| direction.gain(s)).unwrap_or(f64::NEG_INFINITY);
            g(b).total_cmp(&g(a)).then(a.number.cmp(&b.number))
        });
        leaderboard.truncate(LIST_LEN);

        let mut ancestry: Vec<TrialRecord> = match &best {
            Some(b) => ancestry(&by_number, b.number).into_iter().cloned().collect(),
            None => Vec::new(),
        };
        ancestry.reverse();

        let mut children_of_best: Vec<TrialRecord> = match &best {
            Some(b) => trials
                .iter()
                .filter(|t| t.parent == Some(b.number) && t.label != Some(Label::HarnessAbort))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        let mut earlier_children = BTreeMap::new();
        if children_of_best.len() > CHILDREN_SHOWN {
            for t in children_of_best.drain(..children_of_best.len() - CHILDREN_SHOWN) {
                if let Some(l) = t.label {
                    *earlier_children.entry(l).or_insert(0) += 1;
                }
            }
        }
        let mut recent: Vec<TrialRecord> = trials.iter().filter(|t| !t.is_baseline()).cloned().collect();
        recent.sort_by_key(|t| std::cmp::Reverse((t.finished_ms.unwrap_or(i64::MAX), t.number)));
        recent.truncate(LIST_LEN);

        let mut label_counts = BTreeMap::new();
        for t in trials.iter().filter(|t| !t.is_baseline()) {
            if let Some(l) = t.label {
                *label_counts.entry(l).or_insert(0) += 1;
            }
        }
        let saturation = specialist.and_then(|name| {
            let mut mine: Vec<&TrialRecord> = trials
                .iter()
                .filter(|t| t.specialist == name && t.status == TrialStatus::Finished && t.label != Some(Label::HarnessAbort))
                .collect();
            mine.sort_by_key(|t| (t.finished_ms, t.number));
            let last: Vec<&&TrialRecord> = mine.iter().rev().take(SATURATION_WINDOW).collect();
            (last.len() == SATURATION_WINDOW && last.iter().all(|t| !t.is_kept())).then(|| {
                format!(
                    "Your last {SATURATION_WINDOW} trials made no progress (trials {}). Try a different direction rather than small variations of them.",
                    last.iter().rev().map(|t| t.number.to_string()).collect::<Vec<_>>().join(", ")
                )
            })
        });
        LineageView {
            study: study.to_string(),
            objective: objective.clone(),
            specialist: specialist.map(str::to_string),
            baseline: baseline(trials).cloned(),
            noise: study_noise(trials),
            best,
            leaderboard,
            ancestry,
            children_of_best,
            earlier_children,
            recent,
            label_counts,
            saturation,
            notes: Vec::new(),
        }
    }

    /// The view as text: what a person reads with `postdoc lineage` and what a model is prompted with.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let dir = match self.objective.direction {
            Direction::Maximize => "maximize",
            Direction::Minimize => "minimize",
        };
        let _ = writeln!(out, "# Study `{}`: {dir} {}", self.study, self.objective.metric);
        match &self.baseline {
            Some(b) if b.score.is_some() => {
                let _ = writeln!(
                    out,
                    "Baseline (trial {}, the unmodified recipe): {} over {} seed(s); noise sigma {} ({} degrees of freedom).",
                    b.number,
                    score(b.score),
                    b.runs,
                    num(self.noise.sigma),
                    self.noise.df
                );
            }
            Some(b) => {
                let _ = writeln!(
                    out,
                    "Baseline (trial 0): {}.",
                    b.label.map(|l| l.to_string()).unwrap_or_else(|| b.status.as_str().into())
                );
            }
            None => {
                let _ = writeln!(out, "Baseline: not run yet.");
            }
        }
        if let Some(best) = &self.best {
            let gain = match (best.score, self.baseline.as_ref().and_then(|b| b.score)) {
                (Some(s), Some(b)) if !best.is_baseline() => {
                    format!(" ({} vs baseline)", signed(s - b))
                }
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "Current best: trial {} by {}: {}{gain} over {} seed(s).",
                best.number,
                best.specialist,
                score(best.score),
                best.runs
            );
            if !best.is_baseline() {
                let _ = writeln!(out, "  Hypothesis: {}", best.hypothesis);
                if let Some(k) = knobs(&best.edit) {
                    let _ = writeln!(out, "  Knobs: {k}");
                }
            }
        }
        let total: usize = self.label_counts.values().sum();
        if total > 0 {
            let counts: Vec<String> = self.label_counts.iter().map(|(l, n)| format!("{l} {n}")).collect();
            let _ = writeln!(out, "Finished trials: {total} ({}).", counts.join(", "));
        }

        if !self.notes.is_empty() {
            let _ = writeln!(out, "\n## Notes from the researcher (follow them)");
            for n in &self.notes {
                match n.trial {
                    Some(t) => {
                        let _ = writeln!(out, "- on trial {t}: {}", n.text.trim());
                    }
                    None => {
                        let _ = writeln!(out, "- {}", n.text.trim());
                    }
                }
            }
        }

        if !self.leaderboard.is_empty() {
            let _ = writeln!(out, "\n## Leaderboard (kept trials)");
            for (i, t) in self.leaderboard.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{}. trial {} {} [{}] {}",
                    i + 1,
                    t.number,
                    score(t.score),
                    t.specialist,
                    one_line(&t.hypothesis)
                );
            }
        }
        if self.ancestry.len() > 1 {
            let _ = writeln!(out, "\n## Path to the best");
            for t in &self.ancestry {
                let what = if t.is_baseline() { "baseline".to_string() } else { one_line(&t.hypothesis) };
                let _ = writeln!(out, "- trial {} {}: {what}", t.number, score(t.score));
            }
        }
        if let Some(best) = &self.best {
            let _ = writeln!(out, "\n## Trials built on the best (trial {})", best.number);
            if self.children_of_best.is_empty() {
                let _ = writeln!(out, "None yet.");
            }
            if !self.earlier_children.is_empty() {
                let total: usize = self.earlier_children.values().sum();
                let counts: Vec<String> = self.earlier_children.iter().map(|(l, n)| format!("{l} {n}")).collect();
                let _ = writeln!(out, "({total} earlier ones, not listed: {})", counts.join(", "));
            }
            for t in &self.children_of_best {
                trial_line(&mut out, t);
            }
        }
        if !self.recent.is_empty() {
            let _ = writeln!(out, "\n## Recent activity");
            for t in &self.recent {
                trial_line(&mut out, t);
            }
        }
        if let Some(note) = &self.saturation {
            let _ = writeln!(out, "\n## Note\n{note}");
        }
        out
    }
}

fn trial_line(out: &mut String, t: &TrialRecord) {
    let status = match t.label {
        Some(l) => l.to_string(),
        None => t.status.as_str().to_string(),
    };
    let _ = write!(out, "- trial {} [{status}] by {}: {}", t.number, t.specialist, one_line(&t.hypothesis));
    if t.score.is_some() {
        let _ = write!(out, " -> {}", score(t.score));
    }
    if let Some(r) = &t.reason {
        let _ = write!(out, " ({})", one_line(r));
    }
    out.push('\n');
    if let Some(e) = t.log_excerpt.as_deref().filter(|e| !e.is_empty()) {
        for line in e.lines().rev().take(6).collect::<Vec<_>>().into_iter().rev() {
            let _ = writeln!(out, "    | {line}");
        }
    }
}

fn knobs(edit: &Edit) -> Option<String> {
    match edit {
        Edit::Knobs { values } => Some(values.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")),
        _ => None,
    }
}

fn one_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("").trim();
    if line.chars().count() > 160 {
        format!("{}...", line.chars().take(157).collect::<String>())
    } else {
        line.to_string()
    }
}

fn num(x: f64) -> String {
    format!("{x:.4}")
}

fn signed(x: f64) -> String {
    format!("{x:+.4}")
}

fn score(s: Option<f64>) -> String {
    s.map(num).unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests;
