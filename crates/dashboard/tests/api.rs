//! Every route of the dashboard against a real SQLite lineage store, over real HTTP on loopback.

use postdoc_core::transcript::EntryKind;
use postdoc_core::{
    BASELINE_SPECIALIST, Edit, KnobValue, Label, MetricPoint, Proposal, RunPurpose, RunRecord, Transcript, Verdict,
};
use postdoc_dashboard::{Access, Dashboard};
use postdoc_store::{Store, StudyRecord, now_ms};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, HOST, ORIGIN, SET_COOKIE};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

const HOSTILE: &str = "<script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\">";

fn run(idx: u32, score: Option<f64>) -> RunRecord {
    RunRecord {
        idx,
        purpose: if idx == 0 { RunPurpose::Screen } else { RunPurpose::Confirm },
        seed: 7 + u64::from(idx),
        exit_code: Some(0),
        signal: None,
        timed_out: false,
        train_seconds: 3.0,
        eval_seconds: 1.0,
        cpu_seconds: Some(2.5),
        peak_rss_bytes: Some(1 << 20),
        artifact_bytes: Some(4096),
        score,
        scores: score.map(|s| BTreeMap::from([("accuracy".to_string(), s)])).unwrap_or_default(),
        findings: vec![],
        log_tail: format!("epoch 1\n{HOSTILE}\n"),
        eval_log_tail: String::new(),
        started_ms: now_ms(),
        finished_ms: now_ms(),
    }
}

fn proposal(specialist: &str, hypothesis: &str, edit: Edit) -> Proposal {
    Proposal {
        specialist: specialist.into(),
        hypothesis: hypothesis.into(),
        expected_delta: Some(0.05),
        parent: None,
        edit,
        cites: Vec::new(),
    }
}

fn knobs(lr: f64) -> Edit {
    Edit::Knobs { values: [("lr".to_string(), KnobValue::Float(lr))].into() }
}

async fn finish(store: &Store, study: i64, n: u64, label: Label, scores: &[f64]) {
    store.start(study, n, "0123abcd", "diff --git a/recipe.toml b/recipe.toml\n-lr = 0.1\n+lr = 0.01\n").await.unwrap();
    for (i, s) in scores.iter().enumerate() {
        store.record_run(study, n, &run(i as u32, Some(*s))).await.unwrap();
    }
    store.finish(study, n, &Verdict { label, reason: format!("{label} for the test"), excerpt: None }).await.unwrap();
}

/// A study in a real store: the baseline (0.50 over two seeds), a keep by the optimizer (0.60)
/// with a metric curve and a transcript, a size_blocked trial, and a proposal waiting for
/// approval whose hypothesis is hostile markup.
async fn study() -> (Store, StudyRecord, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("lineage.db").display())).await.unwrap();
    let record = StudyRecord {
        id: 0,
        name: "tiny-logreg".into(),
        recipe: dir.path().display().to_string(),
        base_commit: "0123abcd".into(),
        manifest: include_str!("../../../examples/tiny-logreg/postdoc.toml").into(),
        comparability: "{}".into(),
        protected_hash: "sha256:00".into(),
        created_ms: now_ms(),
    };
    let s = store.create_study(&record).await.unwrap();
    store
        .propose(s.id, &proposal(BASELINE_SPECIALIST, "the recipe as it is", Edit::Unchanged), None, None)
        .await
        .unwrap();
    finish(&store, s.id, 0, Label::Keep, &[0.49, 0.51]).await;
    store.propose(s.id, &proposal("optimizer", "lower the learning rate", knobs(0.01)), Some(0), None).await.unwrap();
    let curve: Vec<MetricPoint> = (0..4)
        .map(|i| MetricPoint {
            run_idx: 0,
            step: Some(i * 10),
            name: "loss".into(),
            value: 1.0 / (i + 1) as f64,
            at_ms: 1 + i,
        })
        .collect();
    store.record_metrics(s.id, 1, &curve).await.unwrap();
    let mut transcript = Transcript { brain: "local test".into(), turns: 1, ..Default::default() };
    transcript.push(EntryKind::ToolCall, Some("set_knob"), HOSTILE, false);
    store
        .record_event(s.id, Some(1), postdoc_study::TRANSCRIPT_EVENT, &serde_json::to_value(&transcript).unwrap())
        .await
        .unwrap();
    finish(&store, s.id, 1, Label::Keep, &[0.59, 0.61]).await;
    store.propose(s.id, &proposal("data", "a much larger model", knobs(0.5)), Some(1), None).await.unwrap();
    store.start(s.id, 2, "4567", "").await.unwrap();
    store
        .finish(s.id, 2, &Verdict { label: Label::SizeBlocked, reason: "artifact too big".into(), excerpt: None })
        .await
        .unwrap();
    let n = store.propose(s.id, &proposal("optimizer", HOSTILE, knobs(0.02)), Some(1), None).await.unwrap();
    store.hold(s.id, n).await.unwrap();
    let n = store.propose(s.id, &proposal("optimizer", "another idea", knobs(0.03)), Some(1), None).await.unwrap();
    store.hold(s.id, n).await.unwrap();
    (store, s, dir)
}

/// Serves the dashboard on a free loopback port with `access`, read first as `postdoc serve`
/// does (so every answer below also shows a warmed server follows changes); returns its address.
async fn serve(store: Store, study: StudyRecord, access: Access) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dashboard = Dashboard::new(store, study).unwrap();
    dashboard.warm().await.unwrap();
    tokio::spawn(postdoc_dashboard::serve(listener, dashboard, access));
    addr
}

fn loopback() -> Access {
    Access::for_address("127.0.0.1:0".parse().unwrap(), None).unwrap()
}

async fn get(addr: SocketAddr, path: &str) -> (StatusCode, Value) {
    let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

async fn post(addr: SocketAddr, path: &str, body: Value) -> (StatusCode, Value) {
    let r = reqwest::Client::new().post(format!("http://{addr}{path}")).json(&body).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_from_the_binary() {
    let (store, s, _dir) = study().await;
    let addr = serve(store, s, loopback()).await;
    for (path, kind, needle) in [
        ("/", "text/html", "<script src=\"/app.js\" defer></script>"),
        ("/app.js", "text/javascript", "new EventSource(\"/api/stream\")"),
        ("/app.css", "text/css", "--keep:"),
    ] {
        let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(r.headers()[CONTENT_TYPE].to_str().unwrap().starts_with(kind), "{path}");
        let csp = r.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap().to_string();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
        let body = r.text().await.unwrap();
        assert!(body.contains(needle), "{path} lacks {needle}");
        // The page carries no study data: nothing the specialists wrote is ever markup.
        assert!(!body.contains("window.pwned"), "{path}");
    }
    let (status, body) = get(addr, "/nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("no such page"));
}

#[tokio::test]
async fn the_script_builds_the_page_from_text_only() {
    // The one way study data could turn into markup is an HTML-parsing sink; the page has none.
    let script = include_str!("../assets/app.js");
    for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"] {
        assert!(!script.contains(sink), "app.js uses {sink}");
    }
    assert!(script.contains("document.createTextNode(String(c))"), "strings become text nodes");
}

#[tokio::test]
async fn the_overview_has_the_baseline_the_best_and_the_curves() {
    let (store, s, _dir) = study().await;
    let addr = serve(store, s, loopback()).await;
    let (status, o) = get(addr, "/api/overview").await;
    assert_eq!(status, StatusCode::OK, "{o}");
    assert_eq!(o["study"], "tiny-logreg");
    assert_eq!(o["objective"], json!({"metric": "accuracy", "direction": "maximize"}));
    let summary = &o["summary"];
    assert!((summary["baseline"]["score"].as_f64().unwrap() - 0.50).abs() < 1e-9);
    assert_eq!(summary["best"]["number"], 1);
    assert_eq!(summary["trials"], 4, "four candidates; the baseline is not counted");
    assert_eq!(summary["labels"], json!({"keep": 1, "size_blocked": 1}));
    assert_eq!(summary["waiting"].as_array().unwrap().len(), 2);
    assert!(summary["noise"]["sigma"].as_f64().unwrap() > 0.0);
    let progress = o["progress"].as_array().unwrap();
    let best: Vec<f64> = progress.iter().map(|p| p["best"].as_f64().unwrap()).collect();
    assert_eq!(progress.iter().map(|p| p["trial"].as_u64().unwrap()).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert!((best[0] - 0.50).abs() < 1e-9 && (best[1] - 0.60).abs() < 1e-9 && (best[2] - 0.60).abs() < 1e-9);
    assert_eq!(progress[2]["compute_seconds"], 16.0, "two runs of 4 s each, twice");
    assert!(o["updated"].as_i64().unwrap() > 0);
    let latest: Vec<u64> = o["latest"].as_array().unwrap().iter().map(|t| t["number"].as_u64().unwrap()).collect();
    assert_eq!(latest, vec![2, 1, 0], "finished trials, newest first");
    assert_eq!(o["kept"][1]["delta"].as_f64().map(|d| (d * 1e9).round() / 1e9), Some(0.1));
    assert_eq!(o["failures"]["size_blocked"][0]["number"], 2);
}

#[tokio::test]
async fn the_tree_has_every_trial_and_the_path_to_the_best() {
    let (store, s, _dir) = study().await;
    let addr = serve(store, s, loopback()).await;
    let (status, t) = get(addr, "/api/trials").await;
    assert_eq!(status, StatusCode::OK);
    let tree = &t["tree"];
    assert_eq!(tree["number"], json!([0, 1, 2, 3, 4]));
    assert_eq!(tree["label"][2], "size_blocked");
    assert_eq!(tree["parent"][2], 1);
    assert_eq!(tree["status"][3], "waiting");
    assert_eq!(tree["specialists"][tree["specialist"][2].as_u64().unwrap() as usize], "data");
    assert_eq!(tree["hypothesis"][3], HOSTILE, "sent as a string, as it was written");
    assert_eq!(t["best"], 1);
    assert_eq!(t["path_to_best"], json!([0, 1]));
}

#[tokio::test]
async fn answers_follow_changes_made_elsewhere() {
    let (store, s, _dir) = study().await;
    let addr = serve(store.clone(), s.clone(), loopback()).await;
    let (_, before) = get(addr, "/api/trials").await;
    let (_, overview) = get(addr, "/api/overview").await;
    let trials_before = overview["summary"]["trials"].as_u64().unwrap();
    assert_eq!(get(addr, "/api/trials").await.1, before, "nothing changed, the same answer");
    // Another process (the running session) finishes a waiting trial and proposes a new one:
    // the server read the study before, and must now read what changed.
    store.approve(s.id, 3).await.unwrap();
    finish(&store, s.id, 3, Label::Keep, &[0.70]).await;
    let n = store.propose(s.id, &proposal("data", "more reversal problems", knobs(0.04)), Some(3), None).await.unwrap();
    let (_, after) = get(addr, "/api/trials").await;
    assert_eq!(after["tree"]["number"], json!([0, 1, 2, 3, 4, n]));
    assert_eq!(after["tree"]["label"][3], "keep");
    assert_eq!(after["tree"]["score"][3], 0.70);
    assert_eq!(after["tree"]["status"][5], "proposed");
    assert_eq!(after["best"], 3);
    assert_eq!(after["path_to_best"], json!([0, 1, 3]));
    let (_, overview) = get(addr, "/api/overview").await;
    assert_eq!(overview["summary"]["trials"].as_u64().unwrap(), trials_before + 1);
    assert_eq!(overview["latest"][0]["number"], 3);
    assert_eq!(overview["updated"], store.last_event_id(s.id).await.unwrap());
    let (_, d) = get(addr, "/api/specialists").await;
    let optimizer = d["specialists"].as_array().unwrap().iter().find(|r| r["name"] == "optimizer").unwrap();
    assert_eq!(optimizer["keeps"], 2);
}

#[tokio::test]
async fn a_trial_comes_with_its_runs_curves_knobs_and_transcript() {
    let (store, s, _dir) = study().await;
    let addr = serve(store, s, loopback()).await;
    let (status, d) = get(addr, "/api/trials/1").await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["trial"]["hypothesis"], "lower the learning rate");
    assert_eq!(d["knobs"], json!({"lr": 0.01}));
    assert_eq!(d["parent_knobs"], Value::Null, "the baseline set no knob");
    assert!((d["measured_delta"].as_f64().unwrap() - 0.10).abs() < 1e-9);
    assert_eq!(d["trial"]["expected_delta"], 0.05);
    assert_eq!(d["runs"].as_array().unwrap().len(), 2);
    assert_eq!(d["metrics"].as_array().unwrap().len(), 4);
    assert_eq!(d["transcript"]["entries"][0]["text"], HOSTILE);
    let kinds: Vec<&str> = d["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"transcript") && kinds.contains(&"finished"), "{kinds:?}");
    let marker = d["events"].as_array().unwrap().iter().find(|e| e["kind"] == "transcript").unwrap();
    assert_eq!(marker["payload"], Value::Null, "the transcript is sent once");

    let (status, d) = get(addr, "/api/trials/2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(d["parent_knobs"], json!({"lr": 0.01}));
    assert_eq!(d["measured_delta"], Value::Null, "no score, no measured change");
    assert_eq!(d["transcript"], Value::Null);

    let (status, e) = get(addr, "/api/trials/99").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(e["error"].as_str().unwrap().contains("no trial 99"), "{e}");
    let r = reqwest::get(format!("http://{addr}/api/trials/minus-one")).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn specialists_are_credited_and_charged() {
    let (store, s, _dir) = study().await;
    let addr = serve(store, s, loopback()).await;
    let (status, d) = get(addr, "/api/specialists").await;
    assert_eq!(status, StatusCode::OK);
    let records = d["specialists"].as_array().unwrap();
    let names: Vec<&str> = records.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["data", "optimizer"], "the baseline is no specialist");
    assert_eq!(records[0]["waste"], json!({"size_blocked": 1}));
    assert_eq!((records[1]["trials"].as_u64(), records[1]["keeps"].as_u64()), (Some(3), Some(1)));
    assert!((records[1]["improvement"].as_f64().unwrap() - 0.10).abs() < 1e-9);
}

#[tokio::test]
async fn papers_and_data_pages_show_what_the_trials_rest_on() {
    use postdoc_core::literature::{Card, Evidence, Paper};
    let (store, s, _dir) = study().await;
    let lora = Paper {
        id: "arxiv:2106.09685".into(),
        title: HOSTILE.into(),
        authors: vec!["E. Hu".into()],
        year: Some(2021),
        source: "arxiv".into(),
        ..Paper::default()
    };
    store.save_paper(&lora).await.unwrap();
    let card = Card {
        id: 0,
        paper: lora.id.clone(),
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
    let saved = store.save_cards(&lora.id, "extractive", &[card]).await.unwrap();
    let citing = Proposal { cites: vec![saved[0].id], ..proposal("optimizer", "low-rank updates", knobs(0.04)) };
    let n = store.propose(s.id, &citing, Some(1), None).await.unwrap();
    let v = postdoc_store::DatasetVersion {
        version: "ab".repeat(32),
        rows: 600,
        bytes: 9000,
        format: "jsonl".into(),
        shape: None,
        source: "benchmark/problems.jsonl at 0123abcd".into(),
        licence: None,
        derived_from: None,
        transform: None,
        created_ms: now_ms(),
    };
    store.record_dataset_use(s.id, None, None, &v, "evaluation", "benchmark/problems.jsonl").await.unwrap();
    store.record_dataset_use(s.id, Some(n), Some(0), &v, "training", "train_data.jsonl").await.unwrap();
    let addr = serve(store, s, loopback()).await;

    let (status, papers) = get(addr, "/api/papers").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(papers["total"], 1);
    let p = &papers["papers"][0];
    assert_eq!(p["title"], HOSTILE, "sent as a JSON string, for the page to show as text");
    assert_eq!(p["cited_in_trials"], json!([n]));
    assert_eq!(p["cards"][0]["technique"], "LoRA");
    let (_, trial) = get(addr, &format!("/api/trials/{n}")).await;
    assert_eq!(trial["cites"][0]["card"]["technique"], "LoRA");
    assert_eq!(trial["data"][0]["role"], "training");

    let (status, data) = get(addr, "/api/data").await;
    assert_eq!(status, StatusCode::OK);
    let version = &data["versions"][0];
    assert_eq!(version["uses"], 2);
    assert_eq!(version["roles"], json!(["evaluation", "training"]));
    assert_eq!(version["lineage"][0]["rows"], 600);
}

#[tokio::test]
async fn oversight_approves_rejects_and_takes_notes_through_the_store() {
    let (store, s, _dir) = study().await;
    let addr = serve(store.clone(), s.clone(), loopback()).await;
    let (status, d) = get(addr, "/api/notes").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(d["study"], "tiny-logreg", "the page's header reads the name here");
    assert_eq!(d["waiting"].as_array().unwrap().len(), 2);
    assert_eq!(d["notes"], json!([]));

    let (status, d) = post(addr, "/api/trials/3/approve", json!({})).await;
    assert_eq!((status, &d), (StatusCode::OK, &json!({"approved": 3})));
    assert_eq!(store.queued(s.id).await.unwrap(), vec![3], "it runs at the next free slot");
    let (status, d) = post(addr, "/api/trials/3/approve", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(d["error"].as_str().unwrap().contains("not waiting"), "{d}");
    let (status, _) = post(addr, "/api/trials/42/approve", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _) = post(addr, "/api/trials/4/reject", json!({"note": "  Keep the learning rate.  "})).await;
    assert_eq!(status, StatusCode::OK);
    let t = store.trial(&s, 4).await.unwrap();
    assert_eq!(t.label, Some(Label::Discard));
    assert_eq!(t.reason.as_deref(), Some("rejected by the researcher: Keep the learning rate."));

    let (status, d) = post(addr, "/api/notes", json!({"text": HOSTILE})).await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    let (status, d) = post(addr, "/api/notes", json!({"text": "   "})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(d["error"], "the note is empty");
    let (status, d) = post(addr, "/api/notes", json!({"text": "x".repeat(4001)})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(d["error"].as_str().unwrap().contains("at most 4000"));
    let r = reqwest::Client::new().post(format!("http://{addr}/api/notes")).body("text=hi").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "a form post is not the page's JSON");
    let d: Value = r.json().await.unwrap();
    assert!(d["error"].as_str().unwrap().contains("Content-Type"), "{d}");
    let (status, d) = post(addr, "/api/notes", json!({"text": "a", "extra": 1})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(d["error"].as_str().unwrap().contains("unknown field `extra`"), "{d}");

    let notes: Vec<String> = store.notes(s.id).await.unwrap().into_iter().map(|n| n.text).collect();
    assert_eq!(notes, vec!["Keep the learning rate.".to_string(), HOSTILE.to_string()]);
    let (_, d) = get(addr, "/api/notes").await;
    assert_eq!(d["waiting"], json!([]));
    assert_eq!(d["notes"][1]["text"], HOSTILE);
}

/// Reads the event stream until `count` more `change` events have come, or the time is up.
async fn changes(response: &mut reqwest::Response, count: usize) -> Vec<i64> {
    let mut text = String::new();
    let mut ids = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while ids.len() < count {
        let chunk = tokio::time::timeout_at(deadline, response.chunk()).await.expect("a change in time").unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk.expect("the stream stays open")));
        ids = text
            .split("\n\n")
            .filter(|e| e.contains("event: change"))
            .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: "))?.parse().ok())
            .collect();
    }
    ids
}

#[tokio::test]
async fn the_stream_says_when_the_study_changes() {
    let (store, s, _dir) = study().await;
    let addr = serve(store.clone(), s.clone(), loopback()).await;
    let mut r = reqwest::get(format!("http://{addr}/api/stream")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/event-stream"));
    let first = changes(&mut r, 1).await;
    assert_eq!(first, vec![store.last_event_id(s.id).await.unwrap()], "the current state at once");
    // A change made elsewhere (another process's `postdoc note`) reaches the page.
    store.add_note(s.id, "from the terminal").await.unwrap();
    let next = changes(&mut r, 1).await;
    assert!(next[0] > first[0], "{first:?} then {next:?}");
}

#[tokio::test]
async fn loopback_answers_only_to_loopback_names_and_its_own_pages() {
    let (store, s, _dir) = study().await;
    let addr = serve(store, s, loopback()).await;
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/api/overview");
    let r = client.get(&url).header(HOST, "evil.example").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "a rebound name is refused");
    let r = client.get(&url).header(HOST, format!("localhost:{}", addr.port())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let note = format!("http://{addr}/api/notes");
    let r = client.post(&note).header(ORIGIN, "http://evil.example").json(&json!({"text": "x"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "another site's page cannot change the study");
    let r =
        client.post(&note).header(ORIGIN, format!("http://{addr}")).json(&json!({"text": "x"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn any_other_address_needs_the_token_on_every_request() {
    let (store, s, _dir) = study().await;
    let token = "s3cret-token-0123456789";
    let access = Access::for_address("0.0.0.0:8440".parse().unwrap(), Some(token.into())).unwrap();
    let addr = serve(store, s, access).await;
    let client = reqwest::Client::new();
    let api = format!("http://{addr}/api/overview");
    for path in ["/", "/app.js", "/api/overview", "/api/stream", "/api/trials/1"] {
        let r = client.get(format!("http://{addr}{path}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path} without the token");
    }
    let r = client.post(format!("http://{addr}/api/notes")).json(&json!({"text": "x"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = client.get(&api).bearer_auth("s3cret-token-0123456789-not").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "a wrong token");
    let r = client.get(&api).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The printed link carries it once; the page's own requests then carry the cookie it sets.
    let r = client.get(format!("http://{addr}/?token={token}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_string();
    let r = client.get(&api).header(COOKIE, &pair).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = client.get(&api).header(HOST, "anything.example").bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "with a token, any name the machine is reached by");
}

#[tokio::test]
async fn a_report_carries_the_study_and_no_markup_from_it() {
    let (store, s, _dir) = study().await;
    store.add_note(s.id, HOSTILE).await.unwrap();
    let dashboard = Dashboard::new(store, s).unwrap();
    let diff = format!("diff --git a/recipe.toml b/recipe.toml\n-lr = 0.1\n+lr = 0.01 # {HOSTILE}\n");
    let report = dashboard.report(Some(diff)).await.unwrap();

    let html = report.html();
    // Two scripts only: the data block and the page's own code, allowed by its hash.
    assert_eq!(html.matches("<script").count(), 2, "{html:.2000}");
    assert!(!html.contains("window.pwned=1</script>") && !html.contains("<img src=x"), "study text stays escaped");
    let start = html.find("id=\"postdoc-report\">").unwrap() + "id=\"postdoc-report\">".len();
    let end = start + html[start..].find("</script>").unwrap();
    let data: Value = serde_json::from_str(&html[start..end]).unwrap();
    assert_eq!(data["study"], "tiny-logreg");
    assert!(data["best_diff"].as_str().unwrap().contains(HOSTILE), "the escapes read back as the text");
    let answers = &data["answers"];
    for route in [
        "/api/overview",
        "/api/trials",
        "/api/specialists",
        "/api/notes",
        "/api/trials/0",
        "/api/trials/1",
        "/api/trials/2",
    ] {
        assert!(answers[route].is_object(), "the report lacks {route}");
    }
    assert_eq!(answers["/api/overview"]["kept"][1]["number"], 1);
    assert_eq!(answers["/api/overview"]["failures"]["size_blocked"][0]["reason"], "artifact too big");
    let script = include_str!("../assets/app.js");
    assert!(!script.contains("</script") && !include_str!("../assets/app.css").contains("</style"));
    use base64::Engine;
    use sha2::Digest;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script.as_bytes()));
    assert!(html.contains(&format!("script-src 'sha256-{hash}'")), "only the page's own code may run");

    let md = report.markdown();
    for part in [
        "# Study tiny-logreg: report",
        "- Baseline: 0.5 ± 0.0141 over 2 seed(s) (trial 0)",
        "- Best: 0.6 (+0.1 vs baseline, 7.1× the noise): trial 1 by optimizer: lower the learning rate",
        "| 1 | optimizer | 0.6 | 0.0141 | +0.1 | lower the learning rate |",
        "Path to the best: trial 0 → 1.",
        "```diff\ndiff --git a/recipe.toml b/recipe.toml",
        "### size_blocked (1)\n\n- trial 2 by data: artifact too big (a much larger model)",
        "| data | 1 | 0 | 1 |",
        "## Researcher notes\n\n- &lt;script&gt;window.pwned=1&lt;/script&gt;&lt;img src=x onerror=\"window.pwned=2\"&gt;",
    ] {
        assert!(md.contains(part), "the Markdown lacks {part:?}:\n{md}");
    }
    // Outside the diff's code block, no markup from the study is left to render.
    let fence = md.find("```diff").unwrap();
    let after = fence + md[fence..].find("\n```\n").unwrap();
    assert!(!md[..fence].contains('<') && !md[after..].contains('<'), "{md}");
}
