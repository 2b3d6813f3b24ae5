use super::*;
use crate::knob::KnobValue;

fn trial(number: u64, parent: Option<u64>, specialist: &str, label: Option<Label>, score: Option<f64>) -> TrialRecord {
    TrialRecord {
        number,
        parent,
        retry_of: None,
        specialist: specialist.into(),
        hypothesis: format!("idea {number}"),
        expected_delta: None,
        edit: Edit::Knobs { values: [("lr".to_string(), KnobValue::Float(0.01))].into() },
        status: if label.is_some() { TrialStatus::Finished } else { TrialStatus::Running },
        commit: None,
        patch: None,
        label,
        reason: label.map(|l| format!("because {l}")),
        score,
        scores: BTreeMap::new(),
        runs: u32::from(score.is_some()),
        run_scores: score.into_iter().collect(),
        train_seconds: 1.0,
        eval_seconds: 0.5,
        peak_rss_bytes: None,
        artifact_bytes: None,
        log_excerpt: None,
        created_ms: number as i64,
        started_ms: Some(number as i64),
        finished_ms: label.map(|_| 100 + number as i64),
    }
}

fn objective() -> Objective {
    Objective { metric: "accuracy".into(), direction: Direction::Maximize }
}

fn study() -> Vec<TrialRecord> {
    let mut baseline = trial(0, None, crate::trial::BASELINE_SPECIALIST, Some(Label::Keep), Some(0.30));
    baseline.run_scores = vec![0.29, 0.30, 0.31];
    baseline.runs = 3;
    let mut crashed = trial(4, Some(3), "opt", Some(Label::Crash), None);
    crashed.log_excerpt = Some("Traceback (most recent call last):\nZeroDivisionError: division by zero".into());
    vec![
        baseline,
        trial(1, Some(0), "opt", Some(Label::Discard), Some(0.28)),
        trial(2, Some(0), "opt", Some(Label::Keep), Some(0.40)),
        trial(3, Some(2), "data", Some(Label::Keep), Some(0.50)),
        crashed,
        trial(5, Some(3), "opt", Some(Label::HarnessAbort), None),
        trial(6, Some(3), "opt", None, None),
    ]
}

#[test]
fn view_finds_best_ancestry_and_children() {
    let v = LineageView::build("tiny", &objective(), &study(), None);
    assert_eq!(v.best.as_ref().map(|b| b.number), Some(3));
    assert_eq!(v.ancestry.iter().map(|t| t.number).collect::<Vec<_>>(), vec![0, 2, 3]);
    // Failures stay visible to the next proposer; infrastructure faults do not.
    assert_eq!(v.children_of_best.iter().map(|t| t.number).collect::<Vec<_>>(), vec![4, 6]);
    assert_eq!(v.leaderboard.iter().map(|t| t.number).collect::<Vec<_>>(), vec![3, 2, 0]);
    assert_eq!(v.recent[0].number, 6, "running trials come first");
    assert_eq!(v.label_counts[&Label::Keep], 2);
    assert!((v.noise.sigma - 0.01).abs() < 1e-9);
    assert!(v.saturation.is_none());
}

#[test]
fn minimize_ranks_low_scores_first() {
    let objective = Objective { metric: "loss".into(), direction: Direction::Minimize };
    let v = LineageView::build("tiny", &objective, &study(), None);
    assert_eq!(v.leaderboard[0].number, 0);
}

#[test]
fn saturation_after_five_trials_without_progress() {
    let mut trials = study();
    for n in 10..15 {
        trials.push(trial(n, Some(3), "data", Some(Label::Discard), Some(0.45)));
    }
    let v = LineageView::build("tiny", &objective(), &trials, Some("data"));
    assert!(v.saturation.as_deref().unwrap().contains("trials 10, 11, 12, 13, 14"));
    let v = LineageView::build("tiny", &objective(), &trials, Some("opt"));
    assert!(v.saturation.is_none(), "opt has fewer than five finished trials since it last kept one");
}

#[test]
fn render_shows_failures_with_their_excerpt() {
    let text = LineageView::build("tiny", &objective(), &study(), None).render();
    insta::assert_snapshot!(text);
}

#[test]
fn long_standing_best_lists_its_latest_children_and_counts_the_rest() {
    let mut trials = study();
    for n in 100..140 {
        let label = if n % 4 == 0 { Label::Crash } else { Label::Discard };
        trials.push(trial(n, Some(3), "opt", Some(label), None));
    }
    let v = LineageView::build("tiny", &objective(), &trials, None);
    assert_eq!(v.children_of_best.len(), CHILDREN_SHOWN);
    assert_eq!(v.children_of_best.last().unwrap().number, 139);
    let earlier: usize = v.earlier_children.values().sum();
    // Trials 4 and 6 (one unfinished) plus 40 new ones: 42 children, 30 listed.
    assert_eq!(earlier + v.children_of_best.iter().filter(|t| t.label.is_some()).count(), 41);
    assert!(v.render().contains("earlier ones, not listed"));
}

#[test]
fn researcher_notes_come_before_the_leaderboard() {
    let mut view = LineageView::build("s", &objective(), &study(), Some("opt"));
    view.notes = vec![
        ResearcherNote { trial: None, text: "Keep the batch size at 32.".into() },
        ResearcherNote { trial: Some(4), text: "No new dependencies.\n".into() },
    ];
    let text = view.render();
    let notes = text.find("## Notes from the researcher").expect("a notes section");
    assert!(notes < text.find("## Leaderboard").unwrap(), "{text}");
    assert!(text.contains("- Keep the batch size at 32.\n- on trial 4: No new dependencies.\n"), "{text}");
}

#[test]
fn a_change_overtaken_while_it_ran_is_offered_once_on_the_best() {
    let lr = |v: f64| Edit::Knobs { values: [("lr".to_string(), KnobValue::Float(v))].into() };
    let mut trials = study();
    // Built on trial 2 (0.40) beside trial 3, which was kept first: 0.47 beats its parent
    // clearly but not the new best (0.50).
    let mut overtaken_one = trial(7, Some(2), "opt", Some(Label::Discard), Some(0.47));
    overtaken_one.edit = lr(0.003);
    // Beats its parent by a hair only (within the noise).
    let mut within_noise = trial(8, Some(2), "opt", Some(Label::Discard), Some(0.405));
    within_noise.edit = lr(0.002);
    // Discarded against the best itself: nothing overtook it.
    let mut plain = trial(9, Some(3), "data", Some(Label::Discard), Some(0.45));
    plain.edit = lr(0.004);
    trials.extend([overtaken_one, within_noise, plain]);
    let best = current_best(&trials).unwrap().clone();
    assert_eq!(best.number, 3);
    let noise = Noise { sigma: 0.01, df: 2 };
    let spec = NoiseSpec::default();
    let found = overtaken(&trials, &best, Direction::Maximize, noise, &spec);
    let numbers: Vec<u64> = found.iter().map(|o| o.trial.number).collect();
    assert_eq!(numbers, [7]);
    assert_eq!(found[0].parent.number, 2);
    assert!((found[0].gain_over_parent - 0.07).abs() < 1e-9);

    // Once the same change has been tried on another parent (here still running), it is not
    // offered again.
    let mut again = trial(10, Some(3), "opt", None, None);
    again.edit = lr(0.003);
    trials.push(again);
    assert!(overtaken(&trials, &best, Direction::Maximize, noise, &spec).is_empty());

    // On a minimized objective, a lower score is the gain.
    let flipped: Vec<TrialRecord> = trials[..trials.len() - 1]
        .iter()
        .cloned()
        .map(|mut t| {
            t.score = t.score.map(|s| 1.0 - s);
            t
        })
        .collect();
    let found = overtaken(&flipped, &best, Direction::Minimize, noise, &spec);
    assert_eq!(found.iter().map(|o| o.trial.number).collect::<Vec<_>>(), [7]);
}

#[test]
fn a_change_kept_then_beaten_by_another_line_is_offered_on_the_best() {
    let knob = |k: &str, v: i64| Edit::Knobs { values: [(k.to_string(), KnobValue::Int(v))].into() };
    let mut trials = study();
    // Built on the baseline beside trial 2 and kept before trials 2 and 3 finished: it beat the
    // baseline (0.30) clearly, but the best (trial 3, 0.50) descends from trial 2, not from it.
    let mut sibling = trial(11, Some(0), "model", Some(Label::Keep), Some(0.45));
    sibling.edit = knob("context", 24);
    // Kept and beaten by its own child: the best's line holds it.
    let mut on_line = trial(12, Some(3), "model", Some(Label::Keep), Some(0.55));
    on_line.edit = knob("hidden", 300);
    let mut best = trial(13, Some(12), "opt", Some(Label::Keep), Some(0.60));
    best.edit = knob("steps", 9000);
    trials.extend([sibling, on_line, best]);
    let best = current_best(&trials).unwrap().clone();
    assert_eq!(best.number, 13);
    let noise = Noise { sigma: 0.01, df: 2 };
    let found = overtaken(&trials, &best, Direction::Maximize, noise, &NoiseSpec::default());
    // Trial 2 is in the best's line too; the baseline is no change to carry.
    assert_eq!(found.iter().map(|o| o.trial.number).collect::<Vec<_>>(), [11]);
    assert_eq!(found[0].parent.number, 0);
    assert!((found[0].gain_over_parent - 0.15).abs() < 1e-9);
}
