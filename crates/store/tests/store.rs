//! One suite, run against both backends: an SQLite file and a real PostgreSQL server.

use postdoc_core::{
    Edit, Finding, KnobValue, Label, MetricPoint, Proposal, RunPurpose, RunRecord, TrialStatus, Verdict,
};
use postdoc_store::{DatasetVersion, Lease, Store, StoreError, StudyRecord, now_ms, testing};
use std::collections::BTreeMap;

async fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("lineage.db").display());
    (Store::open(&url).await.unwrap(), dir)
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let (store, _dir) = super::sqlite().await;
                super::$name(store).await;
            }
            #[tokio::test]
            async fn postgres() {
                let Some(url) = postdoc_store::testing::fresh_database(stringify!($name)).await else { return };
                let store = postdoc_store::Store::open(&url).await.unwrap();
                super::$name(store).await;
            }
        }
    )*};
}

both_backends!(
    tallies_and_slices,
    studies_are_unique_by_name,
    a_trial_goes_through_its_life,
    a_trial_finishes_once,
    leases_exclude_a_second_driver,
    metrics_round_trip,
    waiting_proposals_are_approved_or_rejected_once,
    dataset_versions_and_their_uses,
    papers_citations_and_cards
);

async fn papers_citations_and_cards(store: Store) {
    use postdoc_core::literature::{Card, Citation, Evidence, Paper, Section};
    let lora = Paper {
        id: "arxiv:2106.09685".into(),
        title: "LoRA".into(),
        authors: vec!["Edward J. Hu".into(), "Yelong Shen".into()],
        arxiv: Some("2106.09685".into()),
        citation_count: Some(10),
        categories: vec!["cs.CL".into()],
        source: "arxiv".into(),
        ..Paper::default()
    };
    store.save_paper(&lora).await.unwrap();
    // Another source's record fills what was missing and keeps the larger count.
    let from_s2 = Paper {
        abstract_text: Some("We propose LoRA.".into()),
        s2: Some("a8ca".into()),
        citation_count: Some(20000),
        source: "semantic-scholar".into(),
        ..lora.clone()
    };
    let merged = store.save_paper(&from_s2).await.unwrap();
    assert_eq!((merged.citation_count, merged.s2.as_deref()), (Some(20000), Some("a8ca")));
    let back = store.paper("arxiv:2106.09685").await.unwrap().unwrap();
    assert_eq!(back.authors, ["Edward J. Hu", "Yelong Shen"]);
    assert_eq!(back.abstract_text.as_deref(), Some("We propose LoRA."));
    assert_eq!(back.source, "arxiv", "the first source stays");
    assert_eq!(store.paper("arxiv:0000.0000").await.unwrap(), None);
    store
        .save_paper(&Paper {
            id: "arxiv:1902.00751".into(),
            title: "Adapters".into(),
            source: "arxiv".into(),
            ..Paper::default()
        })
        .await
        .unwrap();
    assert_eq!(store.papers().await.unwrap().len(), 2);

    let edge = Citation {
        citing: "arxiv:2106.09685".into(),
        cited: "arxiv:1902.00751".into(),
        influential: false,
        contexts: vec!["as in [4]".into()],
    };
    store.save_citation(&edge).await.unwrap();
    store
        .save_citation(&Citation { influential: true, contexts: vec!["adapters add layers".into()], ..edge.clone() })
        .await
        .unwrap();
    let edges = store.citations_of("arxiv:1902.00751").await.unwrap();
    assert_eq!(edges.len(), 1);
    assert!(edges[0].influential);
    assert_eq!(edges[0].contexts.len(), 2);

    let sections = vec![Section { kind: "method".into(), title: "Method".into(), text: "Low-rank updates.".into() }];
    store.save_sections("arxiv:2106.09685", &sections).await.unwrap();
    assert_eq!(store.sections("arxiv:2106.09685").await.unwrap(), sections);
    store.link_dataset("arxiv:2106.09685", "glue", "linked").await.unwrap();
    store.link_dataset("arxiv:2106.09685", "glue", "cites").await.unwrap();
    assert_eq!(
        store.datasets_of_paper("arxiv:2106.09685").await.unwrap(),
        [("glue".to_string(), "linked".to_string())]
    );

    let card = Card {
        id: 0,
        paper: "arxiv:2106.09685".into(),
        technique: "LoRA".into(),
        effect: Some("10,000 times fewer parameters".into()),
        setting: None,
        part: "optimizer".into(),
        section: "abstract".into(),
        evidence: [(
            "technique".to_string(),
            Evidence { section: "abstract".into(), sentence: "We propose LoRA.".into() },
        )]
        .into(),
        method: "extractive".into(),
    };
    let saved = store.save_cards("arxiv:2106.09685", "extractive", std::slice::from_ref(&card)).await.unwrap();
    assert!(saved[0].id > 0);
    let s = store.create_study(&study("cites")).await.unwrap();
    let citing = Proposal { cites: vec![saved[0].id], ..proposal("low-rank updates, as LoRA", Edit::Unchanged) };
    store.propose(s.id, &citing, None, None).await.unwrap();
    // Re-extracting replaces the cards no trial cites; a cited one stays.
    let again = store.save_cards("arxiv:2106.09685", "extractive", &[card]).await.unwrap();
    assert_ne!(again[0].id, saved[0].id);
    assert_eq!(store.cards(Some("arxiv:2106.09685")).await.unwrap().len(), 2);
    let cited = store.cards_of_trial(s.id, 0).await.unwrap();
    assert_eq!((cited.len(), cited[0].id), (1, saved[0].id));
    assert_eq!(cited[0].evidence["technique"].sentence, "We propose LoRA.");
    let proposed = store.events_of_kind(s.id, "proposed").await.unwrap();
    assert_eq!(
        proposed[0].payload["proposal"]["cites"],
        serde_json::json!([saved[0].id]),
        "the event holds the citation"
    );
}

fn dataset(version: &str, source: &str) -> DatasetVersion {
    DatasetVersion {
        version: version.into(),
        rows: 3,
        bytes: 120,
        format: "jsonl".into(),
        shape: Some("messages".into()),
        source: source.into(),
        licence: None,
        derived_from: None,
        transform: None,
        created_ms: now_ms(),
    }
}

async fn dataset_versions_and_their_uses(store: Store) {
    let raw = dataset("aa11", "train.jsonl");
    store.record_dataset(&raw).await.unwrap();
    // Seen again with a licence: the first source stays, the licence is filled in.
    store
        .record_dataset(&DatasetVersion { licence: Some("mit".into()), ..dataset("aa11", "copy.jsonl") })
        .await
        .unwrap();
    let clean = DatasetVersion {
        derived_from: Some("aa11".into()),
        transform: Some(serde_json::json!({"op": "decontaminate", "against": ["bb22"], "removed": 1})),
        ..dataset("aa22", "clean.jsonl")
    };
    store.record_dataset(&clean).await.unwrap();
    let converted = DatasetVersion { derived_from: Some("aa22".into()), ..dataset("cc33", "clean.parquet") };
    store.record_dataset(&converted).await.unwrap();

    let known = store.dataset("aa1").await.unwrap().unwrap();
    assert_eq!((known.source.as_str(), known.licence.as_deref()), ("train.jsonl", Some("mit")));
    assert!(store.dataset("aa").await.is_err(), "a prefix naming two versions is refused");
    assert_eq!(store.dataset("ff").await.unwrap(), None);
    assert_eq!(store.dataset("not hex").await.unwrap(), None);
    let chain: Vec<String> = store.dataset_lineage("cc33").await.unwrap().into_iter().map(|v| v.version).collect();
    assert_eq!(chain, ["cc33", "aa22", "aa11"]);
    let lineage = store.dataset_lineage("aa22").await.unwrap();
    assert_eq!(lineage[0].transform.as_ref().unwrap()["op"], "decontaminate");
    let derived: Vec<String> =
        store.datasets_derived_from("aa11").await.unwrap().into_iter().map(|v| v.version).collect();
    assert_eq!(derived, ["aa22"]);
    assert_eq!(store.datasets().await.unwrap().len(), 3);

    let s = store.create_study(&study("with data")).await.unwrap();
    store.propose(s.id, &proposal("baseline", Edit::Unchanged), None, None).await.unwrap();
    store
        .record_dataset_use(
            s.id,
            None,
            None,
            &dataset("dd44", "benchmark/problems.jsonl"),
            "evaluation",
            "benchmark/problems.jsonl",
        )
        .await
        .unwrap();
    store.record_dataset_use(s.id, Some(0), Some(1), &raw, "training", "train_data.jsonl").await.unwrap();
    let uses = store.dataset_uses(s.id, Some(0)).await.unwrap();
    assert_eq!(uses.len(), 1);
    assert_eq!((uses[0].trial, uses[0].run_idx, uses[0].role.as_str()), (Some(0), Some(1), "training"));
    assert_eq!(uses[0].study, "with data");
    assert_eq!(store.dataset_uses(s.id, None).await.unwrap().len(), 2);
    assert_eq!(store.uses_of_dataset("dd44").await.unwrap()[0].role, "evaluation");
    let events = store.events_of_kind(s.id, "dataset_used").await.unwrap();
    assert_eq!(events.len(), 2, "each use is an event");
    assert_eq!(events[1].payload["version"], "aa11");
}

async fn waiting_proposals_are_approved_or_rejected_once(store: Store) {
    let s = store.create_study(&study("oversight")).await.unwrap();
    store.propose(s.id, &proposal("baseline", Edit::Unchanged), None, None).await.unwrap();
    let knobs = Edit::Knobs { values: [("lr".to_string(), KnobValue::Float(0.01))].into() };
    for _ in 0..2 {
        let n = store.propose(s.id, &proposal("lower lr", knobs.clone()), Some(0), None).await.unwrap();
        store.hold(s.id, n).await.unwrap();
    }
    assert_eq!(store.queued(s.id).await.unwrap(), vec![0], "waiting trials do not run");
    assert_eq!(store.waiting(s.id).await.unwrap().iter().map(|t| t.number).collect::<Vec<_>>(), vec![1, 2]);

    store.approve(s.id, 1).await.unwrap();
    assert_eq!(store.queued(s.id).await.unwrap(), vec![0, 1]);
    let again = store.approve(s.id, 1).await.unwrap_err().to_string();
    assert!(again.contains("trial 1 is not waiting"), "{again}");

    store.reject(s.id, 2, "  Do not touch the learning rate again.  ").await.unwrap();
    let t = store.trial(&s, 2).await.unwrap();
    assert_eq!((t.status, t.label), (TrialStatus::Finished, Some(postdoc_core::Label::Discard)));
    assert_eq!(t.reason.as_deref(), Some("rejected by the researcher: Do not touch the learning rate again."));
    assert!(store.reject(s.id, 2, "twice").await.is_err());
    assert!(store.reject(s.id, 0, "the baseline").await.is_err(), "only waiting trials can be rejected");

    store.add_note(s.id, "Prefer smaller models.").await.unwrap();
    let notes = store.notes(s.id).await.unwrap();
    let notes: Vec<(Option<u64>, &str)> = notes.iter().map(|n| (n.trial, n.text.as_str())).collect();
    assert_eq!(notes, vec![(Some(2), "Do not touch the learning rate again."), (None, "Prefer smaller models.")]);
}

fn study(name: &str) -> StudyRecord {
    StudyRecord {
        id: 0,
        name: name.into(),
        recipe: "/tmp/recipe".into(),
        base_commit: "abc123".into(),
        manifest: "[study]".into(),
        comparability: "{}".into(),
        protected_hash: "sha256:00".into(),
        created_ms: now_ms(),
    }
}

fn proposal(hypothesis: &str, edit: Edit) -> Proposal {
    Proposal {
        specialist: "optimizer".into(),
        hypothesis: hypothesis.into(),
        expected_delta: Some(0.1),
        parent: None,
        edit,
        cites: Vec::new(),
    }
}

fn run(idx: u32, score: Option<f64>) -> RunRecord {
    RunRecord {
        idx,
        purpose: if idx == 0 { RunPurpose::Screen } else { RunPurpose::Confirm },
        seed: 100 + idx as u64,
        exit_code: Some(0),
        signal: None,
        timed_out: false,
        train_seconds: 2.0,
        eval_seconds: 0.5,
        cpu_seconds: Some(1.9),
        peak_rss_bytes: Some(1000 * (idx as u64 + 1)),
        artifact_bytes: Some(64),
        score,
        scores: score
            .map(|s| BTreeMap::from([("accuracy".to_string(), s), ("loss".to_string(), 1.0 - s)]))
            .unwrap_or_default(),
        findings: if score.is_none() {
            vec![Finding::Crash { reason: "exit 1".into(), excerpt: "boom".into() }]
        } else {
            vec![]
        },
        log_tail: "step 1\n".into(),
        eval_log_tail: String::new(),
        started_ms: now_ms(),
        finished_ms: now_ms(),
    }
}

async fn studies_are_unique_by_name(store: Store) {
    let a = store.create_study(&study("alpha")).await.unwrap();
    assert!(a.id > 0);
    assert_eq!(store.find_study("alpha").await.unwrap(), Some(a.clone()));
    assert!(store.find_study("beta").await.unwrap().is_none());
    assert!(matches!(store.study("beta").await, Err(StoreError::NoStudy(_))));
    assert!(store.create_study(&study("alpha")).await.is_err(), "a second study of the same name must be refused");
    store.create_study(&study("beta")).await.unwrap();
    assert_eq!(
        store.studies().await.unwrap().iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        vec!["alpha", "beta"]
    );
}

async fn a_trial_goes_through_its_life(store: Store) {
    let s = store.create_study(&study("life")).await.unwrap();
    let base = store.propose(s.id, &proposal("baseline", Edit::Unchanged), None, None).await.unwrap();
    assert_eq!(base, 0);
    let knobs = Edit::Knobs { values: [("lr".to_string(), KnobValue::Float(0.01))].into() };
    let n = store.propose(s.id, &proposal("lower lr", knobs.clone()), Some(0), None).await.unwrap();
    assert_eq!(n, 1);
    let t = store.trial(&s, 1).await.unwrap();
    assert_eq!((t.status, t.parent, t.edit.clone()), (TrialStatus::Proposed, Some(0), knobs));

    store.start(s.id, 1, "deadbeef", "diff --git a/recipe.toml").await.unwrap();
    store.record_run(s.id, 1, &run(0, Some(0.5))).await.unwrap();
    store.record_run(s.id, 1, &run(1, Some(0.7))).await.unwrap();
    store.record_run(s.id, 1, &run(2, None)).await.unwrap();
    let t = store.trial(&s, 1).await.unwrap();
    assert_eq!(t.status, TrialStatus::Running);
    assert_eq!(t.runs, 2, "only scored runs count");
    assert!((t.score.unwrap() - 0.6).abs() < 1e-12);
    assert!((t.scores["loss"] - 0.4).abs() < 1e-12);
    assert_eq!(t.run_scores, vec![0.5, 0.7]);
    assert!((t.train_seconds - 6.0).abs() < 1e-12, "costs add up over every run, failed ones too");
    assert_eq!(t.peak_rss_bytes, Some(3000));

    let verdict = Verdict { label: Label::Keep, reason: "beats the best".into(), excerpt: None };
    store.finish(s.id, 1, &verdict).await.unwrap();
    let t = store.trial(&s, 1).await.unwrap();
    assert_eq!((t.status, t.label, t.commit.as_deref()), (TrialStatus::Finished, Some(Label::Keep), Some("deadbeef")));
    assert_eq!(t.patch.as_deref(), Some("diff --git a/recipe.toml"));

    let runs = store.runs(s.id, 1).await.unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[2].findings, run(2, None).findings);

    let kinds: Vec<String> = store.events(s.id, Some(1)).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec!["proposed", "started", "run_finished", "run_finished", "run_finished", "finished"]);
    let all = store.events(s.id, None).await.unwrap();
    assert_eq!(all[0].kind, "study_created");
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "events keep their order");
}

async fn a_trial_finishes_once(store: Store) {
    let s = store.create_study(&study("once")).await.unwrap();
    let n = store.propose(s.id, &proposal("x", Edit::Patch { diff: "d".into() }), Some(0), None).await.unwrap();
    let v = Verdict { label: Label::Crash, reason: "exit 1".into(), excerpt: Some("Traceback".into()) };
    store.finish(s.id, n, &v).await.unwrap();
    let again = Verdict { label: Label::Keep, reason: "second verdict".into(), excerpt: None };
    assert!(store.finish(s.id, n, &again).await.is_err());
    let t = store.trial(&s, n).await.unwrap();
    assert_eq!(
        (t.label, t.log_excerpt.as_deref()),
        (Some(Label::Crash), Some("Traceback")),
        "the first verdict stands"
    );
    assert!(matches!(store.trial(&s, 99).await, Err(StoreError::NoTrial(_, 99))));
}

async fn leases_exclude_a_second_driver(store: Store) {
    let s = store.create_study(&study("lease")).await.unwrap();
    let me = Lease { owner: "host:1".into(), host: "host".into(), pid: 1, heartbeat_ms: 10 };
    let other = Lease { owner: "host:2".into(), host: "host".into(), pid: 2, heartbeat_ms: 20 };
    assert!(store.take_lease(s.id, &me, None).await.unwrap());
    assert!(!store.take_lease(s.id, &other, None).await.unwrap(), "a held lease cannot be taken");
    let stale_guess = Lease { heartbeat_ms: 9, ..me.clone() };
    assert!(
        !store.take_lease(s.id, &other, Some(&stale_guess)).await.unwrap(),
        "take-over must name the current holder"
    );
    assert!(store.heartbeat(s.id, "host:1").await.unwrap());
    let current = store.lease(s.id).await.unwrap().unwrap();
    assert!(current.heartbeat_ms > 10);
    assert!(store.take_lease(s.id, &other, Some(&current)).await.unwrap());
    assert!(!store.heartbeat(s.id, "host:1").await.unwrap(), "the old holder learns it lost the lease");
    store.release_lease(s.id, "host:2").await.unwrap();
    assert!(store.lease(s.id).await.unwrap().is_none());
}

async fn metrics_round_trip(store: Store) {
    let s = store.create_study(&study("metrics")).await.unwrap();
    let n = store.propose(s.id, &proposal("x", Edit::Unchanged), Some(0), None).await.unwrap();
    let points: Vec<MetricPoint> = (0..5)
        .map(|i| MetricPoint {
            run_idx: 0,
            step: Some(i),
            name: "loss".into(),
            value: 1.0 / (i + 1) as f64,
            at_ms: 1000 + i,
        })
        .collect();
    store.record_metrics(s.id, n, &points).await.unwrap();
    assert_eq!(store.metrics(s.id, n).await.unwrap(), points);
}

#[tokio::test]
async fn reopening_keeps_the_lineage() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("l.db").display());
    let store = Store::open(&url).await.unwrap();
    store.create_study(&study("kept")).await.unwrap();
    store.close().await;
    let store = Store::open(&url).await.unwrap();
    let mut s = store.find_study("kept").await.unwrap().unwrap();
    s.base_commit = "fedcba".into();
    store.rebase_study(&s).await.unwrap();
    assert_eq!(store.study("kept").await.unwrap().base_commit, "fedcba");
    assert_eq!(store.events(s.id, None).await.unwrap().last().unwrap().kind, "rebased");
}

#[tokio::test]
async fn unreachable_or_malformed_urls_fail_clearly() {
    let err = Store::open("postgres://nobody:secret@127.0.0.1:1/none").await.unwrap_err().to_string();
    assert!(err.starts_with("cannot open the lineage store at postgres://nobody:***@127.0.0.1:1/none"), "{err}");
    assert!(!err.contains("secret"), "passwords never reach messages");
    let err = Store::open("mysql://x").await.unwrap_err().to_string();
    assert!(err.contains("must start with sqlite:// or postgres://"), "{err}");
    let err = Store::open("sqlite:///dev/null/x/y.db").await.unwrap_err().to_string();
    assert!(err.starts_with("cannot open the lineage store at sqlite:///dev/null/x/y.db"), "{err}");
}

#[test]
fn testing_helper_names_the_server() {
    assert!(testing::server_url().starts_with("postgres"));
}

async fn tallies_and_slices(store: Store) {
    let s = store.create_study(&study("tally")).await.unwrap();
    let base =
        Proposal { specialist: postdoc_core::BASELINE_SPECIALIST.into(), ..proposal("baseline", Edit::Unchanged) };
    store.propose(s.id, &base, None, None).await.unwrap();
    store.start(s.id, 0, "c0", "").await.unwrap();
    store.record_run(s.id, 0, &run(0, Some(0.5))).await.unwrap();
    let keep = Verdict { label: Label::Keep, reason: "baseline".into(), excerpt: None };
    store.finish(s.id, 0, &keep).await.unwrap();
    for i in 1..=6u64 {
        let n = store.propose(s.id, &proposal(&format!("idea {i}"), Edit::Unchanged), Some(0), None).await.unwrap();
        if i <= 4 {
            store.start(s.id, n, &format!("c{n}"), "").await.unwrap();
            store.record_run(s.id, n, &run(0, Some(0.1 * i as f64))).await.unwrap();
            let label = if i == 2 { Label::HarnessAbort } else { Label::Discard };
            store.finish(s.id, n, &Verdict { label, reason: "x".into(), excerpt: None }).await.unwrap();
        }
    }
    let retry = store.propose(s.id, &proposal("idea 2", Edit::Unchanged), Some(0), Some(2)).await.unwrap();
    let tally = store.tally(s.id).await.unwrap();
    assert_eq!(tally.counted, 6, "five fresh proposals and one retry; the aborted one does not count");
    assert!((tally.compute_seconds - 5.0 * 2.5).abs() < 1e-9);
    assert_eq!(tally.proposals["optimizer"], 6, "retries are not new proposals");
    assert_eq!(tally.proposals[postdoc_core::BASELINE_SPECIALIST], 1);
    assert_eq!(tally.labels[&Label::Discard], 3);
    assert_eq!(tally.labels[&Label::HarnessAbort], 1);
    assert!(!tally.labels.contains_key(&Label::Keep), "the baseline is not a candidate");
    assert_eq!(store.queued(s.id).await.unwrap(), vec![5, 6, retry]);
    assert_eq!(store.baselines(s.id).await.unwrap().len(), 1);
    let slice = store.lineage_trials(s.id, Some("optimizer"), 3).await.unwrap();
    let numbers: Vec<u64> = slice.iter().map(|t| t.number).collect();
    // Baseline (kept and best), its children but the one lost to an infrastructure fault (2),
    // and nothing twice.
    assert_eq!(numbers, vec![0, 1, 3, 4, 5, 6, 7]);
    assert_eq!(store.children_labels(s.id, 0).await.unwrap(), [(Label::Discard, 3)].into());
    // What a search strategy learns from: finished trials, oldest first, faults left out.
    let numbers = |trials: Vec<postdoc_core::TrialRecord>| trials.iter().map(|t| t.number).collect::<Vec<_>>();
    assert_eq!(numbers(store.finished_trials(s.id, 2).await.unwrap()), vec![3, 4]);
    assert_eq!(numbers(store.finished_trials(s.id, 10).await.unwrap()), vec![0, 1, 3, 4]);
    let recent = store.recent_outcomes(s.id, 10).await.unwrap();
    let recent: Vec<_> = recent.iter().map(|o| (o.specialist.as_str(), o.label, o.score, o.parent_score)).collect();
    // Newest first, each with the score of the baseline it built on.
    let outcome = |i: u64| ("optimizer", Label::Discard, Some(0.1 * i as f64), Some(0.5));
    assert_eq!(recent, vec![outcome(4), outcome(3), outcome(1)]);
    // With the commits they ran and built on, to tell which knobs each changed.
    let commits: Vec<_> = store
        .recent_outcomes(s.id, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.commit.unwrap_or_default(), o.parent_commit.unwrap_or_default()))
        .collect();
    let pair = |n: u64| (format!("c{n}"), "c0".to_string());
    assert_eq!(commits, vec![pair(4), pair(3), pair(1)]);

    // The tree's nodes: every trial, in order, with what it ended as and cost.
    let nodes = store.trial_nodes(s.id).await.unwrap();
    assert_eq!(nodes.iter().map(|n| n.number).collect::<Vec<_>>(), (0..=7).collect::<Vec<_>>());
    assert!(nodes[0].is_baseline() && !nodes[0].is_counted());
    assert_eq!((nodes[0].label, nodes[0].score, nodes[0].compute_seconds), (Some(Label::Keep), Some(0.5), 2.5));
    assert_eq!(
        (nodes[3].hypothesis.as_str(), nodes[3].parent, nodes[3].label),
        ("idea 3", Some(0), Some(Label::Discard))
    );
    assert!(!nodes[2].is_counted(), "lost to an infrastructure fault");
    assert_eq!((nodes[7].retry_of, nodes[7].status, nodes[7].label), (Some(2), TrialStatus::Proposed, None));
    assert!(nodes[7].finished_ms.is_none() && nodes[1].finished_ms.is_some());
    let long = "x".repeat(500);
    let n = store.propose(s.id, &proposal(&long, Edit::Unchanged), Some(0), None).await.unwrap();
    assert_eq!(store.trial_nodes(s.id).await.unwrap()[n as usize].hypothesis.len(), 120, "only its start");

    // Every change moves the last event id on.
    let before = store.last_event_id(s.id).await.unwrap();
    assert!(before > 0);
    store.add_note(s.id, "a note").await.unwrap();
    assert!(store.last_event_id(s.id).await.unwrap() > before);
    let discards = store.latest_with_label(s.id, Label::Discard, 2).await.unwrap();
    assert_eq!(discards.iter().map(|t| t.number).collect::<Vec<_>>(), vec![4, 3], "the latest first");
    assert!(store.latest_with_label(s.id, Label::Crash, 5).await.unwrap().is_empty());
    let other = store.create_study(&study("quiet")).await.unwrap();
    let quiet = store.last_event_id(other.id).await.unwrap();
    assert!(quiet > 0, "its creation is an event");
    store.add_note(s.id, "another").await.unwrap();
    assert_eq!(store.last_event_id(other.id).await.unwrap(), quiet, "another study's changes are not its own");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_may_open_a_new_store_at_once() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("lineage.db").display());
        let (a, b) = tokio::join!(Store::open(&url), Store::open(&url));
        let (a, b) = (a.unwrap(), b.unwrap());
        a.create_study(&study("shared")).await.unwrap();
        assert_eq!(b.study("shared").await.unwrap().name, "shared");
    }
}
