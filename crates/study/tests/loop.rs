//! The whole loop on real recipes: real processes, real git, a real SQLite file.

mod common;

use common::*;
use postdoc_core::{Edit, Label, TrialStatus};
use postdoc_store::Store;
use postdoc_study::{RunOptions, StopReason};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_study_runs_end_to_end_on_the_example() {
    // Both specialists search with TPE (the default), so the study opens with draws of both.
    let recipe = recipe_from_example("tiny-logreg", |m| m.replace("strategy = \"random\"\n", ""));
    let url = sqlite_url(recipe.path());
    let options = RunOptions { max_trials: Some(6), parallel: Some(2), ..Default::default() };
    let reason = run(recipe.path(), &url, options).await.unwrap();
    assert_eq!(reason, StopReason::MaxTrials(6));

    let store = Store::open(&url).await.unwrap();
    let study = store.study("tiny-logreg").await.unwrap();
    let trials = store.trials(study.id).await.unwrap();
    let baseline = &trials[0];
    assert!(baseline.is_baseline());
    assert_eq!(baseline.label, Some(Label::Keep), "{:?}", baseline.reason);
    assert_eq!(baseline.runs, 3);
    let candidates: Vec<_> = trials.iter().filter(|t| !t.is_baseline()).collect();
    assert_eq!(candidates.len(), 6);
    for t in &candidates {
        assert_eq!(t.status, TrialStatus::Finished);
        assert!(t.label.is_some());
        assert!(t.commit.is_some(), "trial {} has a commit", t.number);
        assert!(t.patch.is_some(), "trial {} has its diff stored", t.number);
        assert!(t.parent.is_some());
        eprintln!("trial {} [{:?}] {:?} {:?}", t.number, t.label, t.score, t.reason);
    }
    assert!(candidates.iter().any(|t| t.patch.as_deref().unwrap().contains("+lr = ")), "knob edits show in the diffs");
    // A third of the budget opens the study, each trial drawing the knobs of one specialist or
    // of both, and no two trials the same combination.
    let optimizer = ["batch_size", "epochs", "l2", "lr"];
    let data = ["standardize"];
    let every_knob = ["batch_size", "epochs", "l2", "lr", "standardize"];
    let mut combinations = Vec::new();
    for t in &candidates[..2] {
        assert_eq!(t.specialist, postdoc_core::OPENING_SPECIALIST);
        let postdoc_core::Edit::Knobs { values } = &t.edit else { panic!("trial {} sets knobs", t.number) };
        let drawn: Vec<&str> = values.keys().map(String::as_str).collect();
        assert!([&optimizer[..], &data[..], &every_knob[..]].contains(&drawn.as_slice()), "{drawn:?}");
        combinations.push(drawn);
    }
    assert_ne!(combinations[0], combinations[1]);
    assert!(candidates[2..].iter().all(|t| ["optimizer", "data"].contains(&t.specialist.as_str())));
    // The searches learn from the opening through their own knobs: once its trials are in, a
    // search's random start is spent, and it models them (or explores on because none of them
    // beat the recipe's own values) rather than counting its start from nothing.
    let proposals: Vec<&str> = candidates[2..].iter().map(|t| t.hypothesis.as_str()).collect();
    assert!(
        proposals.iter().any(|h| h.contains("modelled on") || h.contains("has beaten the recipe's own")),
        "{proposals:?}"
    );
    // Every trial's commit is reachable from its ref, and the best ref points at the best.
    let repo = postdoc_git::Repo::open(recipe.path()).await.unwrap();
    for t in &candidates {
        let r = repo.read_ref(&format!("refs/postdoc/tiny-logreg/trials/{}", t.number)).await.unwrap();
        assert_eq!(r, t.commit.clone());
    }
    let best = postdoc_core::lineage::current_best(&trials).unwrap();
    assert_eq!(repo.read_ref("refs/postdoc/tiny-logreg/best").await.unwrap(), best.commit.clone());
    // Live metrics were recorded for the runs.
    let metrics = store.metrics(study.id, candidates[0].number).await.unwrap();
    assert!(metrics.iter().any(|m| m.name == "train_loss"), "{metrics:?}");
    // The bounded slice the scheduler reads shows exactly what the whole lineage would.
    let manifest = postdoc_core::Manifest::parse(&study.manifest, "m").unwrap();
    for specialist in [None, Some("optimizer"), Some("data"), Some(postdoc_core::OPENING_SPECIALIST)] {
        let sliced = postdoc_study::lineage_view(&store, &study, &manifest.study.objective, specialist).await.unwrap();
        let whole = postdoc_core::LineageView::build(&study.name, &manifest.study.objective, &trials, specialist);
        assert_eq!(sliced.render(), whole.render());
    }
    // The user's checkout is untouched.
    assert!(repo.uncommitted().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_killed_session_counts_up_to_its_last_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("l.db").display())).await.unwrap();
    let study = store
        .create_study(&postdoc_store::StudyRecord {
            id: 0,
            name: "s".into(),
            recipe: "/r".into(),
            base_commit: "c".into(),
            manifest: String::new(),
            comparability: String::new(),
            protected_hash: String::new(),
            created_ms: 0,
        })
        .await
        .unwrap();
    let null = serde_json::Value::Null;
    let pause = |ms| tokio::time::sleep(std::time::Duration::from_millis(ms));
    store.record_event(study.id, None, "session_started", &null).await.unwrap();
    pause(100).await;
    store.record_event(study.id, None, "setup_done", &null).await.unwrap(); // then killed
    pause(400).await;
    store.record_event(study.id, None, "session_started", &null).await.unwrap();
    pause(100).await;
    store.record_event(study.id, None, "session_ended", &null).await.unwrap();
    let active = postdoc_study::active_seconds_in(&store, study.id).await.unwrap();
    assert!((0.19..0.39).contains(&active), "two sessions of ~0.1 s each, not the 0.4 s between them: {active}");
}

/// Two searches improve the same recipe side by side: the score is `a + b`, and a run with
/// `b` changed takes a second and a half, so `fast`'s changes are kept while `slow`'s run.
fn side_by_side_recipe() -> tempfile::TempDir {
    let manifest = r#"
[study]
name = "side-by-side"
objective = { metric = "score", direction = "maximize" }
budget = { max_trials = 10 }
parallel = 2

[run]
command = "a=$(sed -n 's/^a = //p' recipe.toml); b=$(sed -n 's/^b = //p' recipe.toml); if [ \"$b\" != 0 ]; then sleep 1.5; fi; echo $((a + b)) > $POSTDOC_OUT/value"
budget = { seconds = 10 }

[[specialist]]
name = "fast"
strategy = "random"
knobs_file = "recipe.toml"
knobs = { a = { int = [0, 20] } }

[[specialist]]
name = "slow"
strategy = "random"
knobs_file = "recipe.toml"
knobs = { b = { int = [0, 5] } }
"#;
    recipe_scored_by_run(manifest, "a = 0\nb = 0\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_overtaken_while_it_ran_is_combined_with_the_new_best() {
    let recipe = side_by_side_recipe();
    let url = sqlite_url(recipe.path());
    run(recipe.path(), &url, RunOptions::default()).await.unwrap();
    let store = Store::open(&url).await.unwrap();
    let study = store.study("side-by-side").await.unwrap();
    let trials = store.trials(study.id).await.unwrap();
    let by_number = |n: u64| trials.iter().find(|t| t.number == n).unwrap();
    // The knob values in a trial's recipe.
    let knobs_of = |t: &postdoc_core::TrialRecord| -> (String, String) {
        let text = knobs_text(recipe.path(), t);
        let value = |k: &str| text.lines().find_map(|l| l.strip_prefix(&format!("{k} = "))).unwrap().to_string();
        (value("a"), value("b"))
    };
    let lineage: Vec<_> = trials.iter().map(|t| (t.number, t.parent, &t.hypothesis, t.label, t.score)).collect();
    let combined: Vec<_> = trials.iter().filter(|t| t.hypothesis.starts_with("combine:")).collect();
    assert!(!combined.is_empty(), "{lineage:#?}");
    for c in &combined {
        // The change of a trial of the same search that beat the trial it built on, now built
        // on another: the best when it was proposed, which lacked the first one's change (it
        // was discarded, or kept and then beaten by another line).
        let named = c.hypothesis["combine: trial ".len()..].split('\'').next().unwrap();
        let original = by_number(named.parse().unwrap());
        assert!(original.number < c.number);
        assert_eq!(original.specialist, c.specialist);
        let line = std::iter::successors(c.parent, |&n| by_number(n).parent).collect::<Vec<_>>();
        match original.label {
            Some(Label::Discard) => {}
            Some(Label::Keep) => assert!(!line.contains(&original.number), "{lineage:#?}"),
            other => panic!("trial {} ended {other:?}", original.number),
        }
        let parent_then = by_number(original.parent.unwrap());
        assert!(original.score.unwrap() > parent_then.score.unwrap());
        assert_ne!(c.parent, original.parent);
        // Only the value it changed, and on a best that had not changed that knob itself: the
        // recipe holds both searches' changes.
        let (Edit::Knobs { values: part }, Edit::Knobs { values: whole }) = (&c.edit, &original.edit) else {
            panic!("knob edits")
        };
        assert_eq!(part.len(), 1, "{part:?} of {whole:?}");
        assert!(part.iter().all(|(k, v)| whole.get(k) == Some(v)), "{part:?} of {whole:?}");
        let (mine, then, best) = (knobs_of(c), knobs_of(parent_then), knobs_of(by_number(c.parent.unwrap())));
        let (changed, kept) = if part.contains_key("a") { (&mine.0, &mine.1) } else { (&mine.1, &mine.0) };
        let (before, at_best) = if part.contains_key("a") { (&then.0, &best.0) } else { (&then.1, &best.1) };
        assert_ne!(changed, before);
        assert_eq!(before, at_best, "the best had changed the same knob: {lineage:#?}");
        assert_ne!(kept, "0", "{lineage:#?}");
        // Each change is combined once.
        assert_eq!(
            combined.iter().filter(|d| d.hypothesis.starts_with(&format!("combine: trial {named}'"))).count(),
            1
        );
    }
}

/// A specialist whose knobs the opening drew only into failures is still owed its first turns:
/// here every `w` but the recipe's own crashes the run, so each opening trial that drew `shape`'s
/// knob failed, which says where not to go, not what `shape`'s search would find.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_draws_that_failed_leave_a_specialist_its_first_turns() {
    let manifest = r#"
[study]
name = "opening-failures"
objective = { metric = "score", direction = "maximize" }
budget = { max_trials = 9 }
parallel = 1

[run]
command = "w=$(sed -n 's/^w = //p' recipe.toml); x=$(sed -n 's/^x = //p' recipe.toml); [ \"$w\" = 5 ] || exit 1; echo $x > $POSTDOC_OUT/value"
budget = { seconds = 10 }

[[specialist]]
name = "shape"
knobs_file = "recipe.toml"
knobs = { w = { int = [1, 100] } }

[[specialist]]
name = "tune"
knobs_file = "recipe.toml"
knobs = { x = { float = [0.0, 1.0] } }
"#;
    let recipe = recipe_scored_by_run(manifest, "w = 5\nx = 0.1\n");
    let url = sqlite_url(recipe.path());
    run(recipe.path(), &url, RunOptions::default()).await.unwrap();
    let store = Store::open(&url).await.unwrap();
    let study = store.study("opening-failures").await.unwrap();
    let trials = store.trials(study.id).await.unwrap();
    let lineage: Vec<_> = trials.iter().map(|t| (t.number, &t.specialist, &t.hypothesis, t.label)).collect();
    let drew_w = |t: &postdoc_core::TrialRecord| matches!(&t.edit, Edit::Knobs { values } if values.contains_key("w"));
    let opening: Vec<_> = trials.iter().filter(|t| t.specialist == postdoc_core::OPENING_SPECIALIST).collect();
    assert_eq!(opening.len(), 3, "{lineage:#?}");
    let drawn: Vec<_> = opening.iter().filter(|t| drew_w(t)).collect();
    assert!(drawn.len() >= 2, "{lineage:#?}");
    assert!(drawn.iter().all(|t| t.label == Some(Label::Crash)), "{lineage:#?}");
    let own = trials.iter().filter(|t| t.specialist == "shape").count();
    assert!(own >= 2, "shape proposed {own} trials of its own: {lineage:#?}");
}

/// While a trial whose screening run beat the best runs its confirmation seeds, the searches build
/// on it rather than on the best it is about to replace. Every run takes a moment, so the other
/// slot's trials are proposed while a win is being confirmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_made_while_a_win_is_confirmed_build_on_it() {
    let manifest = r#"
[study]
name = "confirming"
objective = { metric = "score", direction = "maximize" }
budget = { max_trials = 12 }
parallel = 2

[run]
command = "a=$(sed -n 's/^a = //p' recipe.toml); b=$(sed -n 's/^b = //p' recipe.toml); sleep 0.3; awk -v s=$POSTDOC_SEED -v a=$a -v b=$b 'BEGIN { srand(s); print a + b + rand() / 10 }' > $POSTDOC_OUT/value"
budget = { seconds = 10 }

[[specialist]]
name = "first"
strategy = "random"
knobs_file = "recipe.toml"
knobs = { a = { int = [0, 20] } }

[[specialist]]
name = "second"
strategy = "random"
knobs_file = "recipe.toml"
knobs = { b = { int = [0, 20] } }
"#;
    let recipe = recipe_scored_by_run(manifest, "a = 0\nb = 0\n");
    let url = sqlite_url(recipe.path());
    run(recipe.path(), &url, RunOptions::default()).await.unwrap();
    let store = Store::open(&url).await.unwrap();
    let study = store.study("confirming").await.unwrap();
    let trials = store.trials(study.id).await.unwrap();
    let by_number = |n: u64| trials.iter().find(|t| t.number == n).unwrap();
    let knobs_of = |t: &postdoc_core::TrialRecord| -> postdoc_core::KnobValues {
        postdoc_core::knobs_file::read_knobs(&knobs_text(recipe.path(), t), &["a".to_string(), "b".to_string()])
    };
    let lineage: Vec<_> =
        trials.iter().map(|t| (t.number, t.parent, t.runs, t.created_ms, t.finished_ms, t.label, t.score)).collect();
    // Trials proposed before the trial they build on had finished.
    let on_candidates: Vec<_> = trials
        .iter()
        .filter(|t| t.parent.is_some_and(|p| by_number(p).finished_ms.is_none_or(|f| f > t.created_ms)))
        .collect();
    assert!(!on_candidates.is_empty(), "{lineage:#?}");
    for t in on_candidates {
        let parent = by_number(t.parent.unwrap());
        // It was being confirmed: its screening run had beaten the best, and it ran fresh seeds.
        assert!(!parent.is_baseline() && parent.runs == 3, "trial {}: {lineage:#?}", t.number);
        // Its recipe holds the candidate's values of the knobs it did not set itself.
        let Edit::Knobs { values } = &t.edit else { panic!("knob edits") };
        let (mine, theirs) = (knobs_of(t), knobs_of(parent));
        for knob in ["a", "b"].iter().filter(|k| !values.contains_key(**k)) {
            assert_eq!(mine.get(*knob), theirs.get(*knob), "trial {} on {}: {lineage:#?}", t.number, parent.number);
        }
    }
}
