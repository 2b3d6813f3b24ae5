//! What the pages show, computed from the trial nodes alone (no I/O): the progress curves, the
//! path to the best, and each specialist's record.

use postdoc_core::{Direction, Label, TrialNo, TrialNode, TrialStatus};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// One point of the progress curves: after a finished trial, what the study had spent and the
/// best it had kept.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProgressPoint {
    pub trial: TrialNo,
    /// Candidate trials counted against the budget so far (the baseline's runs are 0).
    pub trials: u64,
    /// Compute seconds spent so far, the baseline's included.
    pub compute_seconds: f64,
    /// The trial's own score, when it has one.
    pub score: Option<f64>,
    pub label: Option<Label>,
    /// The best kept score so far, in the objective's own units.
    pub best: Option<f64>,
}

/// The finished trials in the order their verdicts came (ties by number): the one order the
/// curves, the latest trials and the specialists' credit are read in.
fn in_verdict_order(nodes: &[TrialNode]) -> Vec<&TrialNode> {
    let mut finished: Vec<&TrialNode> = nodes.iter().filter(|n| n.finished_ms.is_some()).collect();
    finished.sort_by_key(|n| (n.finished_ms, n.number));
    finished
}

/// Best-so-far against trials and against compute, in the order trials finished (a keep is
/// judged against the best as it stood then). Unfinished trials are left out.
pub fn progress(nodes: &[TrialNode]) -> Vec<ProgressPoint> {
    let (mut trials, mut compute, mut best): (u64, f64, Option<f64>) = (0, 0.0, None);
    in_verdict_order(nodes)
        .into_iter()
        .map(|n| {
            trials += u64::from(n.is_counted());
            compute += n.compute_seconds;
            if n.label == Some(Label::Keep)
                && let Some(s) = n.score
            {
                // The latest keep is the best (each had to beat the one before it).
                best = Some(s);
            }
            ProgressPoint { trial: n.number, trials, compute_seconds: compute, score: n.score, label: n.label, best }
        })
        .collect()
}

/// At most about `max` points of a long curve: every point where the best moved, every keep,
/// the last, and an even sample of the rest, so the chart of a huge study stays light and keeps
/// its shape.
pub fn thin(points: Vec<ProgressPoint>, max: usize) -> Vec<ProgressPoint> {
    if points.len() <= max {
        return points;
    }
    let (len, stride) = (points.len(), points.len().div_ceil(max.max(1)));
    let mut last_best = None;
    points
        .into_iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let moved = p.best != last_best;
            last_best = p.best;
            (moved || i % stride == 0 || i + 1 == len || p.label == Some(Label::Keep)).then_some(p)
        })
        .collect()
}

/// The `n` trials that finished last, newest first.
pub fn latest(nodes: &[TrialNode], n: usize) -> Vec<&TrialNode> {
    in_verdict_order(nodes).into_iter().rev().take(n).collect()
}

/// The current best: the keep that finished last (each keep beat the best before it).
pub fn best(nodes: &[TrialNode]) -> Option<&TrialNode> {
    nodes.iter().filter(|n| n.label == Some(Label::Keep)).max_by_key(|n| (n.finished_ms.unwrap_or(0), n.number))
}

/// The trials from the study's first baseline to `best`, following parents, oldest first.
pub fn path_to(nodes: &[TrialNode], best: TrialNo) -> Vec<TrialNo> {
    let parents: HashMap<TrialNo, Option<TrialNo>> = nodes.iter().map(|n| (n.number, n.parent)).collect();
    let mut path = vec![best];
    let mut at = best;
    while let Some(Some(p)) = parents.get(&at) {
        if path.contains(p) {
            break; // a cycle would be a corrupt store; show what was found
        }
        path.push(*p);
        at = *p;
    }
    path.reverse();
    path
}

/// One specialist's record.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct SpecialistRecord {
    pub name: String,
    /// Candidate trials counted against the budget.
    pub trials: u64,
    pub keeps: u64,
    /// Trials that ended with a failure label, by label.
    pub waste: BTreeMap<Label, u64>,
    pub running: u64,
    pub compute_seconds: f64,
    /// How much its keeps moved the best, in the objective's units, towards better (positive is
    /// an improvement whichever the direction).
    pub improvement: f64,
    /// `improvement` per counted trial: how much a turn given to this specialist has been worth.
    pub improvement_per_trial: f64,
}

/// Every specialist's record (the baseline's runs left out), in name order.
pub fn specialists(nodes: &[TrialNode], direction: Direction) -> Vec<SpecialistRecord> {
    let mut by_name: BTreeMap<&str, SpecialistRecord> = BTreeMap::new();
    let mut best_gain: Option<f64> = None;
    // Unfinished trials last: they count as trials and compute, and move no best.
    let unfinished = nodes.iter().filter(|n| n.finished_ms.is_none());
    for n in in_verdict_order(nodes).into_iter().chain(unfinished) {
        let keep_gain = (n.label == Some(Label::Keep)).then(|| n.score.map(|s| direction.gain(s))).flatten();
        if n.is_baseline() {
            if keep_gain.is_some() {
                best_gain = keep_gain;
            }
            continue;
        }
        let r = by_name
            .entry(n.specialist.as_str())
            .or_insert_with(|| SpecialistRecord { name: n.specialist.clone(), ..SpecialistRecord::default() });
        r.trials += u64::from(n.is_counted());
        r.compute_seconds += n.compute_seconds;
        r.running += u64::from(n.status == postdoc_core::TrialStatus::Running);
        match n.label {
            Some(Label::Keep) => {
                r.keeps += 1;
                if let (Some(g), Some(b)) = (keep_gain, best_gain) {
                    r.improvement += g - b;
                }
                if keep_gain.is_some() {
                    best_gain = keep_gain;
                }
            }
            Some(l) if l.is_failure() => *r.waste.entry(l).or_insert(0) += 1,
            _ => {}
        }
    }
    by_name
        .into_values()
        .map(|mut r| {
            r.improvement_per_trial = if r.trials > 0 { r.improvement / r.trials as f64 } else { 0.0 };
            r
        })
        .collect()
}

/// Above this many trials the tree is sent without hypotheses: the page names a trial by its
/// number, specialist, label and score, and opens it for the rest.
pub const DETAILED_TREE: usize = 2000;

/// Every trial as a node of the lineage tree, one column per field (a long study's tree is
/// one answer of a few bytes a trial, not an object with every key repeated).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tree {
    pub number: Vec<TrialNo>,
    pub parent: Vec<Option<TrialNo>>,
    /// Index into `specialists`.
    pub specialist: Vec<u32>,
    pub specialists: Vec<String>,
    pub status: Vec<TrialStatus>,
    pub label: Vec<Option<Label>>,
    pub score: Vec<Option<f64>>,
    /// The start of each hypothesis, while the study has at most [`DETAILED_TREE`] trials.
    pub hypothesis: Option<Vec<String>>,
}

/// The tree's columns, in the nodes' (number) order.
pub fn tree(nodes: &[TrialNode]) -> Tree {
    let mut names: Vec<String> = Vec::new();
    let mut index: HashMap<&str, u32> = HashMap::new();
    let specialist = nodes
        .iter()
        .map(|n| {
            *index.entry(n.specialist.as_str()).or_insert_with(|| {
                names.push(n.specialist.clone());
                (names.len() - 1) as u32
            })
        })
        .collect();
    Tree {
        number: nodes.iter().map(|n| n.number).collect(),
        parent: nodes.iter().map(|n| n.parent).collect(),
        specialist,
        specialists: names,
        status: nodes.iter().map(|n| n.status).collect(),
        label: nodes.iter().map(|n| n.label).collect(),
        score: nodes.iter().map(|n| n.score).collect(),
        hypothesis: (nodes.len() <= DETAILED_TREE).then(|| nodes.iter().map(|n| n.hypothesis.clone()).collect()),
    }
}

/// Puts `touched` (nodes read again, in number order) into `nodes` (in number order), replacing
/// the old node of each and adding new ones in place.
pub fn merge(nodes: &mut Vec<TrialNode>, touched: Vec<TrialNode>) {
    for node in touched {
        match nodes.binary_search_by_key(&node.number, |n| n.number) {
            Ok(i) => nodes[i] = node,
            Err(i) => nodes.insert(i, node),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node: `(number, parent, specialist, label, score, compute, finished)`.
    fn node(
        number: TrialNo,
        parent: Option<TrialNo>,
        specialist: &str,
        label: Option<Label>,
        score: Option<f64>,
        finished: Option<i64>,
    ) -> TrialNode {
        TrialNode {
            number,
            parent,
            retry_of: None,
            specialist: specialist.into(),
            hypothesis: format!("idea {number}"),
            status: if finished.is_some() { TrialStatus::Finished } else { TrialStatus::Running },
            label,
            score,
            compute_seconds: 10.0,
            finished_ms: finished,
        }
    }

    fn study() -> Vec<TrialNode> {
        vec![
            node(0, None, "baseline", Some(Label::Keep), Some(0.50), Some(100)),
            node(1, Some(0), "optimizer", Some(Label::Discard), Some(0.52), Some(300)),
            // Finished before trial 1: curves follow the order of verdicts.
            node(2, Some(0), "data", Some(Label::Keep), Some(0.60), Some(200)),
            node(3, Some(2), "optimizer", Some(Label::SizeBlocked), None, Some(400)),
            node(4, Some(2), "optimizer", Some(Label::Keep), Some(0.70), Some(500)),
            node(5, Some(4), "data", Some(Label::HarnessAbort), None, Some(600)),
            node(6, Some(4), "data", None, None, None),
        ]
    }

    #[test]
    fn progress_follows_the_order_of_verdicts() {
        let points = progress(&study());
        let seen: Vec<(TrialNo, u64, f64, Option<f64>)> =
            points.iter().map(|p| (p.trial, p.trials, p.compute_seconds, p.best)).collect();
        assert_eq!(
            seen,
            vec![
                (0, 0, 10.0, Some(0.50)),
                (2, 1, 20.0, Some(0.60)),
                (1, 2, 30.0, Some(0.60)), // a better score than the baseline's, not kept
                (3, 3, 40.0, Some(0.60)),
                (4, 4, 50.0, Some(0.70)),
                (5, 4, 60.0, Some(0.70)), // an infrastructure fault costs compute, not a trial
            ]
        );
    }

    #[test]
    fn a_long_curve_is_thinned_but_keeps_every_move_of_the_best() {
        let mut nodes = vec![node(0, None, "baseline", Some(Label::Keep), Some(0.0), Some(0))];
        for i in 1..=10_000u64 {
            let keep = i % 2500 == 0;
            let label = if keep { Label::Keep } else { Label::Discard };
            nodes.push(node(i, Some(0), "s", Some(label), Some(i as f64 / 1e4), Some(i as i64)));
        }
        let all = progress(&nodes);
        let thinned = thin(all.clone(), 500);
        assert!(thinned.len() <= 510, "{}", thinned.len());
        let moves = |ps: &[ProgressPoint]| {
            ps.windows(2).filter(|w| w[0].best != w[1].best).map(|w| w[1].trial).collect::<Vec<_>>()
        };
        assert_eq!(moves(&thinned), moves(&all), "every step of the best curve is still there");
        assert_eq!(thinned.last(), all.last());
        assert_eq!(thin(all[..100].to_vec(), 500), all[..100].to_vec(), "a short curve is left whole");
        let latest: Vec<TrialNo> = latest(&nodes, 3).iter().map(|n| n.number).collect();
        assert_eq!(latest, vec![10_000, 9_999, 9_998]);
    }

    #[test]
    fn the_path_to_the_best_follows_parents() {
        let nodes = study();
        let b = best(&nodes).unwrap();
        assert_eq!(b.number, 4);
        assert_eq!(path_to(&nodes, b.number), vec![0, 2, 4]);
        assert_eq!(path_to(&nodes, 0), vec![0]);
        // A corrupt store with a cycle still ends.
        let cyclic = vec![node(1, Some(2), "a", None, None, None), node(2, Some(1), "a", None, None, None)];
        assert_eq!(path_to(&cyclic, 1), vec![2, 1]);
    }

    #[test]
    fn specialists_are_credited_with_what_their_keeps_moved() {
        let records = specialists(&study(), Direction::Maximize);
        assert_eq!(records.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), vec!["data", "optimizer"]);
        let (data, opt) = (&records[0], &records[1]);
        assert_eq!((data.trials, data.keeps, data.running), (2, 1, 1), "the fault does not count");
        assert!((data.improvement - 0.10).abs() < 1e-12, "{}", data.improvement);
        assert!((data.improvement_per_trial - 0.05).abs() < 1e-12);
        assert_eq!((opt.trials, opt.keeps), (3, 1));
        assert_eq!(opt.waste, BTreeMap::from([(Label::SizeBlocked, 1)]));
        assert!((opt.improvement - 0.10).abs() < 1e-12, "{}", opt.improvement);
        assert_eq!(data.waste, BTreeMap::new(), "harness_abort is not the specialist's waste");
        assert_eq!(opt.compute_seconds, 30.0);
    }

    #[test]
    fn the_tree_is_sent_as_columns() {
        let t = tree(&study());
        assert_eq!(t.number, vec![0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(t.parent[3], Some(2));
        assert_eq!(t.specialists, vec!["baseline", "optimizer", "data"]);
        assert_eq!(t.specialist, vec![0, 1, 2, 1, 1, 2, 2]);
        assert_eq!((t.label[3], t.status[6]), (Some(Label::SizeBlocked), TrialStatus::Running));
        assert_eq!(t.hypothesis.as_ref().map(|h| h[4].as_str()), Some("idea 4"));
        let long: Vec<TrialNode> = (0..=DETAILED_TREE as u64).map(|i| node(i, None, "s", None, None, None)).collect();
        assert_eq!(tree(&long).hypothesis, None, "a long study's tree leaves the hypotheses out");
        assert_eq!(tree(&long).number.len(), DETAILED_TREE + 1);
    }

    #[test]
    fn touched_nodes_replace_their_old_selves_and_new_ones_go_in_order() {
        let mut nodes = study();
        nodes.remove(3);
        let finished = node(6, Some(4), "data", Some(Label::Discard), Some(0.65), Some(700));
        let fresh = node(7, Some(4), "rl", None, None, None);
        merge(&mut nodes, vec![node(3, Some(2), "optimizer", None, None, None), finished.clone(), fresh.clone()]);
        assert_eq!(nodes.iter().map(|n| n.number).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(nodes[6], finished);
        assert_eq!(nodes[7], fresh);
    }

    #[test]
    fn improvement_is_positive_when_minimizing_too() {
        let nodes = vec![
            node(0, None, "baseline", Some(Label::Keep), Some(0.9), Some(1)),
            node(1, Some(0), "model", Some(Label::Keep), Some(0.6), Some(2)),
        ];
        let r = &specialists(&nodes, Direction::Minimize)[0];
        assert!((r.improvement - 0.3).abs() < 1e-12, "{}", r.improvement);
        assert_eq!(progress(&nodes).last().unwrap().best, Some(0.6));
    }
}
