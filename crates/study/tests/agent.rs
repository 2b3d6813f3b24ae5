//! An agent specialist in a real study: its model (recorded turns served on loopback) reads the
//! recipe, sets knobs and edits code in its draft, runs the preflight and submits; the trial runs
//! and is judged like any other, and the transcript is stored with it.

mod common;

use common::*;
use postdoc_brain::testing::{Exchange, ReplayServer, openai_turn};
use postdoc_core::{Edit, Label, TrialStatus};
use postdoc_store::Store;
use postdoc_study::{RunOptions, StopReason, TRANSCRIPT_EVENT};

const KEY_VAR: &str = "POSTDOC_TEST_AGENT_KEY";
const KEY: &str = "sk-study-test-DO-NOT-STORE-7";

fn manifest(text: String, url: &str) -> String {
    let head = text.split("[[specialist]]").next().unwrap().to_string();
    let head =
        head.replace("max_trials = 30", "max_trials = 2").replace("baseline_repeats = 3", "baseline_repeats = 2");
    head + &format!(
        r#"[brain]
provider = "openai"
model = "replayed-model"
base_url = "{url}/v1"
api_key_env = "{KEY_VAR}"
price = {{ input_per_mtok = 1.0, output_per_mtok = 4.0 }}

[[specialist]]
name = "tuner"
strategy = "agent"
role = "Tune the optimizer and the data scaling."
surface = ["train.py"]
knobs_file = "recipe.toml"
knobs = {{ lr = {{ log_float = [1e-4, 1.0] }}, standardize = {{ choice = [true, false] }} }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_proposes_through_its_tools_and_the_trial_runs_with_its_transcript() {
    // SAFETY: no other test in this binary reads or writes the environment.
    unsafe { std::env::set_var(KEY_VAR, KEY) };
    let server = ReplayServer::start(vec![
        // First proposal: look, change two knobs and a line of code, check, submit.
        Exchange::sse(&openai_turn("Reading the knobs.", &[("read_file", r#"{"path": "recipe.toml"}"#)], (800, 20)), 17),
        Exchange::sse(
            &openai_turn(
                "",
                &[
                    ("set_knob", r#"{"name": "standardize", "value": true}"#),
                    ("set_knob", r#"{"name": "lr", "value": 0.05}"#),
                    ("edit_file", r#"{"path": "train.py", "search": "import json\n", "replace": "import json  # standardized inputs\n"}"#),
                ],
                (1200, 90),
            ),
            23,
        ),
        Exchange::sse(&openai_turn("", &[("preflight", "{}")], (1500, 10)), 64),
        Exchange::sse(
            &openai_turn(
                "",
                &[("submit", r#"{"hypothesis": "standardized inputs train faster at a higher rate", "expected_delta": 0.05}"#)],
                (1600, 30),
            ),
            64,
        ),
        // Second proposal: a protected edit, then calls that never parse.
        Exchange::sse(&openai_turn("", &[("edit_file", r#"{"path": "eval.py", "search": "a", "replace": "b"}"#)], (900, 10)), 64),
        Exchange::sse(&openai_turn("", &[("submit", "{not json")], (900, 10)), 64),
        Exchange::sse(&openai_turn("", &[("set_knob", "[]")], (900, 10)), 64),
        Exchange::sse(&openai_turn("", &[("preflight", "oops")], (900, 10)), 64),
    ])
    .await
    .unwrap();
    let dir = recipe_from_example("tiny-logreg", |m| manifest(m, &server.url));
    let url = sqlite_url(dir.path());
    let stop = run(dir.path(), &url, RunOptions::default()).await.unwrap();
    let store = Store::open(&url).await.unwrap();
    let study = store.study("tiny-logreg").await.unwrap();
    let paused = store.events_of_kind(study.id, "specialist_unavailable").await.unwrap();
    assert!(paused.is_empty(), "{:?}", paused.iter().map(|e| e.payload["reason"].clone()).collect::<Vec<_>>());
    assert_eq!(stop, StopReason::MaxTrials(2));

    let trials = store.trials(study.id).await.unwrap();
    let first = trials.iter().find(|t| t.specialist == "tuner").expect("the agent proposed");
    assert_eq!(first.status, TrialStatus::Finished);
    assert_eq!(first.hypothesis, "standardized inputs train faster at a higher rate");
    assert!(matches!(&first.edit, Edit::Patch { .. }), "{:?}", first.edit);
    let patch = first.patch.as_deref().unwrap();
    assert!(patch.contains("+standardize = true") && patch.contains("+import json  # standardized inputs"), "{patch}");
    assert!(first.score.is_some() && !first.label.unwrap().is_failure(), "{first:?}");

    let second = trials.iter().filter(|t| t.specialist == "tuner").nth(1).expect("a second proposal");
    assert_eq!(second.label, Some(Label::InvalidProposal));
    assert!(second.reason.as_deref().unwrap().contains("malformed"), "{:?}", second.reason);

    // The first message was the lineage; the key went only into the Authorization header.
    let received = server.received();
    assert_eq!(received.len(), 8);
    let first_request = received[0].json();
    assert!(first_request["messages"][1]["content"].as_str().unwrap().contains("Baseline (trial"), "{first_request}");
    assert_eq!(received[0].header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert!(received[2].json().to_string().contains("standardize = true (was false)"));
    assert!(received[3].json().to_string().contains("smoke run"), "the preflight's report reaches the model");

    for t in [first, second] {
        let events = store.events(study.id, Some(t.number)).await.unwrap();
        let transcript = events.iter().find(|e| e.kind == TRANSCRIPT_EVENT).expect("a transcript is stored");
        let parsed: postdoc_core::Transcript = serde_json::from_value(transcript.payload.clone()).unwrap();
        assert!(parsed.brain.contains("replayed-model"));
        assert!(parsed.spend.dollars > 0.0);
    }
    store.close().await;
    // The draft's worktree goes with the session, and the key is nowhere in the store.
    assert!(!dir.path().join(".postdoc/worktrees/draft-tuner").exists());
    let mut leaked = Vec::new();
    for entry in walk(&dir.path().join(".postdoc")) {
        if std::fs::read(&entry).is_ok_and(|bytes| bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes())) {
            leaked.push(entry);
        }
    }
    assert!(leaked.is_empty(), "the key was written to {leaked:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_trials_run_while_an_agent_drafts_and_go_on_when_the_dollars_are_spent() {
    // The agent thinks for a while before its first call; the random specialist's trials go on.
    let mut slow = Exchange::sse(
        &openai_turn(
            "",
            &[
                (
                    "edit_file",
                    r#"{"path": "train.py", "search": "import json\n", "replace": "import json  # slow thought\n"}"#,
                ),
                ("submit", r#"{"hypothesis": "a comment changes nothing"}"#),
            ],
            (500, 50),
        ),
        4096,
    );
    slow.body.insert(0, postdoc_brain::testing::Piece::Pause(std::time::Duration::from_secs(6)));
    let malformed = openai_turn("", &[("submit", "{")], (10, 5));
    let mut exchanges = vec![slow];
    exchanges.extend((0..3).map(|_| Exchange::sse(&malformed, 64)));
    let server = ReplayServer::start(exchanges).await.unwrap();
    let dir = recipe_from_example("tiny-logreg", |m| {
        let head = m.split("[[specialist]]").next().unwrap().to_string();
        head.replace("max_trials = 30", "max_trials = 5, max_dollars = 0.005")
            .replace("baseline_repeats = 3", "baseline_repeats = 2")
            + &format!(
                r#"[brain]
provider = "openai"
model = "replayed-model"
base_url = "{}/v1"
price = {{ input_per_mtok = 10.0, output_per_mtok = 10.0 }}

[[specialist]]
name = "tuner"
strategy = "agent"
surface = ["train.py"]

[[specialist]]
name = "optimizer"
strategy = "random"
knobs_file = "recipe.toml"
knobs = {{ lr = {{ log_float = [1e-3, 0.1] }}, epochs = {{ int = [1, 4] }} }}
"#,
                server.url
            )
    });
    let url = sqlite_url(dir.path());
    run(dir.path(), &url, RunOptions::default()).await.unwrap();
    let store = Store::open(&url).await.unwrap();
    let study = store.study("tiny-logreg").await.unwrap();
    let trials = store.trials(study.id).await.unwrap();
    let agent = trials.iter().find(|t| t.specialist == "tuner" && t.label != Some(Label::InvalidProposal)).unwrap();
    assert!(agent.patch.as_deref().unwrap().contains("slow thought"));
    let during: Vec<u64> = trials
        .iter()
        .filter(|t| t.specialist == "optimizer" && t.finished_ms.is_some_and(|f| f < agent.created_ms))
        .map(|t| t.number)
        .collect();
    assert!(!during.is_empty(), "no optimizer trial finished while the agent drafted: {trials:#?}");
    assert_eq!(trials.iter().filter(|t| t.specialist != "baseline").count(), 5);

    // The first proposal cost $0.0055, over the study's $0.005: the agent proposed no more and
    // the random specialist took the rest of the budget.
    assert_eq!(server.remaining(), 3, "the agent was asked again after the money ran out");
    assert_eq!(trials.iter().filter(|t| t.specialist == "tuner").count(), 1);
    let spent = store.events_of_kind(study.id, "model_budget_spent").await.unwrap();
    assert_eq!(spent.len(), 1);
    assert_eq!(spent[0].payload["paused"], serde_json::json!(["tuner"]));
    let recipe = postdoc_study::Recipe::open(dir.path(), None).await.unwrap();
    let summary = postdoc_study::Summary::read(&store, &study, &recipe.manifest).await.unwrap();
    let tuner = summary.model_spend["tuner"];
    assert_eq!((tuner.input_tokens, tuner.output_tokens), (500, 50));
    assert!((tuner.dollars - 0.0055).abs() < 1e-12, "{tuner:?}");
    assert_eq!(summary.dollar_budget, Some(0.005));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_changes_wait_for_the_researcher_and_notes_reach_the_next_proposals() {
    let edit = |comment: &str| {
        let args =
            format!(r#"{{"path": "train.py", "search": "import json\n", "replace": "import json  # {comment}\n"}}"#);
        openai_turn("", &[("edit_file", &args), ("submit", &format!(r#"{{"hypothesis": "{comment}"}}"#))], (100, 10))
    };
    let knob = openai_turn(
        "",
        &[
            ("set_knob", r#"{"name": "lr", "value": 0.01}"#),
            ("submit", r#"{"hypothesis": "a knob, no approval needed"}"#),
        ],
        (100, 10),
    );
    let server = ReplayServer::start(vec![
        Exchange::sse(&edit("first"), 64),
        Exchange::sse(&edit("second"), 64),
        Exchange::sse(&knob, 64),
    ])
    .await
    .unwrap();
    let dir = recipe_from_example("tiny-logreg", |m| {
        let head = m.split("[[specialist]]").next().unwrap().to_string();
        head.replace("max_trials = 30", "max_trials = 3")
            .replace("parallel = 2", "parallel = 1")
            .replace("baseline_repeats = 3", "baseline_repeats = 2")
            + &format!(
                r#"[brain]
provider = "openai"
model = "replayed-model"
base_url = "{}/v1"

[[specialist]]
name = "tuner"
strategy = "agent"
surface = ["train.py"]
knobs_file = "recipe.toml"
knobs = {{ lr = {{ log_float = [1e-3, 0.1] }} }}
"#,
                server.url
            )
    });
    let url = sqlite_url(dir.path());
    let options = RunOptions { approve: postdoc_study::Approval::Expensive, ..RunOptions::default() };
    let study_run = {
        let (dir, url) = (dir.path().to_path_buf(), url.clone());
        tokio::spawn(async move { run(&dir, &url, options).await })
    };

    // The researcher, from another terminal: approve the first code change, turn the second down.
    let store = Store::open(&url).await.unwrap();
    let mut decided = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    while decided.len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let Ok(study) = store.study("tiny-logreg").await else { continue };
        for t in store.waiting(study.id).await.unwrap() {
            if decided.is_empty() {
                store.approve(study.id, t.number).await.unwrap();
                store.add_note(study.id, "Prefer knobs to code.").await.unwrap();
            } else {
                store.reject(study.id, t.number, "Leave train.py alone.").await.unwrap();
            }
            decided.push(t.number);
        }
    }
    if decided.len() < 2 {
        if study_run.is_finished() {
            panic!("the study ended early: {:?}", study_run.await);
        }
        let study = store.study("tiny-logreg").await.unwrap();
        let trials: Vec<_> = store
            .trials(study.id)
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.number, t.status, t.label, t.reason))
            .collect();
        let events: Vec<_> =
            store.events(study.id, None).await.unwrap().into_iter().map(|e| (e.trial, e.kind)).collect();
        panic!(
            "two proposals should have waited, decided {decided:?}; trials {trials:?}; events {events:?}; requests {}",
            server.received().len()
        );
    }
    let stopped = match tokio::time::timeout(std::time::Duration::from_secs(30), study_run).await {
        Ok(s) => s,
        Err(_) => {
            let study = store.study("tiny-logreg").await.unwrap();
            let trials: Vec<_> = store
                .trials(study.id)
                .await
                .unwrap()
                .into_iter()
                .map(|t| (t.number, t.status, t.label, t.reason))
                .collect();
            let events: Vec<_> =
                store.events(study.id, None).await.unwrap().into_iter().map(|e| (e.trial, e.kind)).collect();
            panic!("decided {decided:?}; trials {trials:?}; events {events:?}; requests {}", server.received().len());
        }
    };
    assert_eq!(stopped.unwrap().unwrap(), StopReason::MaxTrials(3));

    let study = store.study("tiny-logreg").await.unwrap();
    let approved = store.trial(&study, decided[0]).await.unwrap();
    assert!(approved.score.is_some() && approved.hypothesis == "first", "{approved:?}");
    let rejected = store.trial(&study, decided[1]).await.unwrap();
    assert_eq!((rejected.label, rejected.runs), (Some(Label::Discard), 0));
    assert_eq!(rejected.reason.as_deref(), Some("rejected by the researcher: Leave train.py alone."));
    let waited = store.events_of_kind(study.id, "awaiting_approval").await.unwrap();
    assert_eq!(waited.iter().map(|e| e.trial.unwrap()).collect::<Vec<_>>(), decided);
    let knob_trial =
        store.trials(study.id).await.unwrap().into_iter().find(|t| t.hypothesis.starts_with("a knob")).unwrap();
    assert!(knob_trial.score.is_some(), "a knob change runs without approval");

    // The last proposal's lineage carried both notes.
    let lineage = server.received()[2].json()["messages"][1]["content"].as_str().unwrap().to_string();
    assert!(lineage.contains("## Notes from the researcher"), "{lineage}");
    assert!(lineage.contains("- Prefer knobs to code."), "{lineage}");
    assert!(lineage.contains(&format!("- on trial {}: Leave train.py alone.", decided[1])), "{lineage}");
}
