//! Whole proposals driven by recorded model turns served on loopback, through the real clients:
//! read, edit, preflight and submit; and the ways a session goes wrong.

mod common;

use common::{DirBench, anthropic_turn, openai_turn};
use postdoc_agent::{Agent, AgentSettings, Brief};
use postdoc_brain::anthropic::Anthropic;
use postdoc_brain::openai::OpenAiCompatible;
use postdoc_brain::testing::{Exchange, ReplayServer};
use postdoc_brain::{ApiKey, Brain, Endpoint, RetryPolicy, Retrying};
use postdoc_core::transcript::EntryKind;
use postdoc_core::{
    Direction, Edit, KnobSpec, KnobValues, LineageView, Objective, PathSet, Price, ProposalRequest, ProposeError,
    Specialist,
};
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "sk-agent-test-SECRET-9";

fn brief() -> Brief {
    Brief {
        specialist: "optimizer".into(),
        role: "Tune the optimizer and its schedule.".into(),
        objective: Objective { metric: "accuracy".into(), direction: Direction::Maximize },
        limits: "60 s of training".into(),
        surface: PathSet::new(&["train.py", "recipe.toml"]).unwrap(),
        protected: PathSet::new(&["eval.py", "benchmark/**"]).unwrap(),
        hidden: PathSet::new(&["benchmark/**"]).unwrap(),
        knobs_file: Some("recipe.toml".into()),
        knobs: [("lr".to_string(), KnobSpec::LogFloat([1e-4, 1.0])), ("steps".to_string(), KnobSpec::Int([10, 1000]))]
            .into_iter()
            .collect(),
    }
}

fn settings() -> AgentSettings {
    AgentSettings {
        max_turns: 8,
        price: Price { input_per_mtok: 2.0, output_per_mtok: 10.0 },
        ..AgentSettings::default()
    }
}

fn endpoint(url: String) -> Endpoint {
    let mut e = Endpoint::new(url, "test-model", Some(ApiKey::new(KEY)));
    e.idle_timeout = Duration::from_secs(5);
    e
}

fn openai(server: &ReplayServer) -> Arc<dyn Brain> {
    let client = OpenAiCompatible::new(endpoint(format!("{}/v1", server.url))).unwrap();
    Arc::new(Retrying::new(
        client,
        RetryPolicy { attempts: 3, base_delay: Duration::from_millis(10), max_delay: Duration::from_millis(20) },
    ))
}

async fn propose(agent: &Agent, bench: &DirBench) -> Result<postdoc_core::Proposal, ProposeError> {
    let objective = Objective { metric: "accuracy".into(), direction: Direction::Maximize };
    let view = LineageView::build("demo", &objective, &[], Some("optimizer"));
    let knobs: KnobValues = Default::default();
    agent
        .propose(ProposalRequest {
            seed: 1,
            turn: 0,
            view: &view,
            best_knobs: &knobs,
            start_knobs: &knobs,
            recipe_knobs: &knobs,
            history: &[],
            bench: Some(bench),
        })
        .await
}

/// The tool results the model was shown in the `n`th request (Chat Completions format).
fn tool_results(server: &ReplayServer, n: usize) -> Vec<String> {
    let body = server.received()[n].json();
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_proposal_reads_edits_checks_and_submits() {
    let server = ReplayServer::start(vec![
        Exchange::sse(&openai_turn("Let me look.", &[("read_file", r#"{"path": "train.py"}"#)], (1000, 20)), 9),
        Exchange::sse(
            &openai_turn(
                "",
                &[
                    ("edit_file", r#"{"path": "train.py", "search": "steps = 100", "replace": "steps = 300"}"#),
                    ("set_knob", r#"{"name": "lr", "value": 0.05}"#),
                ],
                (1500, 60),
            ),
            13,
        ),
        Exchange::sse(&openai_turn("", &[("preflight", "{}")], (1800, 10)), 64),
        Exchange::sse(
            &openai_turn(
                "Submitting.",
                &[("submit", r#"{"hypothesis": "three times the steps at half the rate converge further", "expected_delta": 0.04}"#)],
                (2000, 40),
            ),
            5,
        ),
    ])
    .await
    .unwrap();
    let bench = DirBench::new();
    let agent = Agent::new(brief(), openai(&server), settings());
    let proposal = propose(&agent, &bench).await.unwrap();

    assert_eq!(proposal.specialist, "optimizer");
    assert_eq!(proposal.hypothesis, "three times the steps at half the rate converge further");
    assert_eq!(proposal.expected_delta, Some(0.04));
    assert_eq!(proposal.parent, Some(3));
    let Edit::Patch { diff } = &proposal.edit else { panic!("expected a patch, got {:?}", proposal.edit) };
    assert!(diff.contains("-steps = 100\n+steps = 300"), "{diff}");
    assert!(
        diff.contains("-lr = 0.1 # learning rate\n+lr = 0.05 # learning rate"),
        "the knob file keeps its comment: {diff}"
    );
    assert_eq!(*bench.preflights.lock().unwrap(), 1);

    // The model saw the file it asked for, then the results of both edits.
    assert!(tool_results(&server, 1)[0].contains("def train():"));
    let second = tool_results(&server, 2);
    assert!(second[1].starts_with("edited `train.py`"), "{second:?}");
    assert_eq!(second[2], "lr = 0.05 (was 0.1)");
    assert!(tool_results(&server, 3)[3].contains("preflight passed"));
    let request = server.received()[0].json();
    assert!(
        request["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("You may change only these files: train.py, recipe.toml")
    );
    assert_eq!(request["tools"].as_array().unwrap().len(), 14);

    let t = bench.transcript();
    assert_eq!(t.turns, 4);
    assert_eq!((t.spend.input_tokens, t.spend.output_tokens), (6300, 130));
    assert!((t.spend.dollars - (6300.0 * 2.0 + 130.0 * 10.0) / 1e6).abs() < 1e-12);
    let calls: Vec<&str> =
        t.entries.iter().filter(|e| e.kind == EntryKind::ToolCall).map(|e| e.tool.as_deref().unwrap()).collect();
    assert_eq!(calls, ["read_file", "edit_file", "set_knob", "preflight", "submit"]);
    assert_eq!(t.entries[0].kind, EntryKind::System);
    assert!(!t.render().contains(KEY) && !format!("{t:?}").contains(KEY));
}

#[tokio::test]
async fn anthropic_drives_a_proposal_the_same_way() {
    let server = ReplayServer::start(vec![
        Exchange::sse(
            &anthropic_turn("Raising the steps.", &[("set_knob", r#"{"name": "steps", "value": 400}"#)], (900, 30)),
            11,
        ),
        Exchange::sse(&anthropic_turn("", &[("submit", r#"{"hypothesis": "more steps"}"#)], (1000, 15)), 17),
    ])
    .await
    .unwrap();
    let bench = DirBench::new();
    let brain = Arc::new(Anthropic::new(endpoint(server.url.clone())).unwrap());
    let proposal = propose(&Agent::new(brief(), brain, settings()), &bench).await.unwrap();
    let Edit::Patch { diff } = &proposal.edit else { panic!() };
    assert!(diff.contains("+steps = 400"), "{diff}");
    let second = server.received()[1].json();
    let results = second["messages"][2]["content"].as_array().unwrap();
    assert_eq!(results[0]["type"], "tool_result");
    assert_eq!(results[0]["content"], "steps = 400 (was 100)");
    assert_eq!(bench.transcript().spend.output_tokens, 45);
}

#[tokio::test]
async fn edits_outside_the_surface_are_refused_with_the_reason() {
    let server = ReplayServer::start(vec![
        Exchange::sse(
            &openai_turn(
                "",
                &[
                    ("edit_file", r#"{"path": "eval.py", "search": "0.5", "replace": "0.99"}"#),
                    ("edit_file", r#"{"path": "README.md", "search": "notes", "replace": "hello"}"#),
                    ("read_file", r#"{"path": "benchmark/problems.jsonl"}"#),
                    ("submit", r#"{"hypothesis": "nothing yet"}"#),
                ],
                (100, 10),
            ),
            20,
        ),
        Exchange::sse(&openai_turn("", &[("set_knob", r#"{"name": "lr", "value": 5.0}"#)], (100, 10)), 20),
        Exchange::sse(
            &openai_turn(
                "",
                &[("set_knob", r#"{"name": "lr", "value": 0.2}"#), ("submit", r#"{"hypothesis": "a higher rate"}"#)],
                (100, 10),
            ),
            20,
        ),
    ])
    .await
    .unwrap();
    let bench = DirBench::new();
    let proposal = propose(&Agent::new(brief(), openai(&server), settings()), &bench).await.unwrap();
    let results = tool_results(&server, 1);
    assert!(results[0].contains("`eval.py` is protected"), "{results:?}");
    assert!(
        results[1].contains("`README.md` is outside the surface") && results[1].contains("train.py, recipe.toml"),
        "{results:?}"
    );
    assert!(results[2].contains("held-out benchmark"), "{results:?}");
    assert!(results[3].contains("changes nothing yet"), "{results:?}");
    assert!(tool_results(&server, 2)[4].contains("outside its range"), "{:?}", tool_results(&server, 2));
    let Edit::Patch { diff } = &proposal.edit else { panic!() };
    assert!(!diff.contains("eval.py") && !diff.contains("README"), "{diff}");
    assert_eq!(std::fs::read_to_string(bench.dir.path().join("eval.py")).unwrap(), common::EVAL);
    let errors = bench.transcript().entries.iter().filter(|e| e.kind == EntryKind::ToolResult && e.is_error).count();
    assert_eq!(errors, 5);
}

#[tokio::test]
async fn malformed_calls_are_answered_then_end_the_proposal() {
    let server = ReplayServer::start(vec![
        Exchange::sse(&openai_turn("", &[("edit_file", r#"{"path": "train.py", "search": "#)], (10, 5)), 30),
        Exchange::sse(&openai_turn("", &[("rewrite_everything", "{}")], (10, 5)), 30),
        Exchange::sse(&openai_turn("", &[("set_knob", r#"{"value": 1}"#)], (10, 5)), 30),
    ])
    .await
    .unwrap();
    let bench = DirBench::new();
    let err = propose(&Agent::new(brief(), openai(&server), settings()), &bench).await.unwrap_err();
    assert!(matches!(&err, ProposeError::Invalid(m) if m.contains("3 malformed tool calls")), "{err:?}");
    assert!(tool_results(&server, 1)[0].contains("not valid"), "{:?}", tool_results(&server, 1));
    assert!(tool_results(&server, 2)[1].contains("there is no tool `rewrite_everything`"));
    assert!(bench.transcript().entries.last().unwrap().text.contains("malformed"));
}

#[tokio::test]
async fn a_cycle_of_identical_calls_is_warned_then_ends_the_proposal() {
    let read = openai_turn("", &[("read_file", r#"{"path": "recipe.toml"}"#)], (10, 5));
    let server = ReplayServer::start((0..4).map(|_| Exchange::sse(&read, 40)).collect()).await.unwrap();
    let bench = DirBench::new();
    let err = propose(&Agent::new(brief(), openai(&server), settings()), &bench).await.unwrap_err();
    assert!(matches!(&err, ProposeError::Invalid(m) if m.contains("repeated")), "{err:?}");
    assert!(tool_results(&server, 2)[1].contains("Another repetition ends this proposal"));
    assert_eq!(server.received().len(), 4);
}

#[tokio::test]
async fn a_rate_limit_costs_a_wait_and_a_dead_provider_makes_the_specialist_unavailable() {
    let submit = openai_turn(
        "",
        &[("set_knob", r#"{"name": "steps", "value": 50}"#), ("submit", r#"{"hypothesis": "fewer steps"}"#)],
        (10, 5),
    );
    let server = ReplayServer::start(vec![
        Exchange::json(429, r#"{"error": {"message": "slow down"}}"#).header("retry-after", "0"),
        Exchange::sse(&submit, 40),
    ])
    .await
    .unwrap();
    let bench = DirBench::new();
    assert!(propose(&Agent::new(brief(), openai(&server), settings()), &bench).await.is_ok());
    assert_eq!(server.received().len(), 2);

    let down = ReplayServer::start((0..3).map(|_| Exchange::json(503, "{}")).collect()).await.unwrap();
    let bench = DirBench::new();
    let err = propose(&Agent::new(brief(), openai(&down), settings()), &bench).await.unwrap_err();
    assert!(matches!(&err, ProposeError::Unavailable(m) if m.contains("after 3 attempts")), "{err:?}");
    assert_eq!(bench.transcript().turns, 0, "a transcript is kept even when no reply came");
}

#[tokio::test]
async fn a_session_that_never_submits_ends_at_the_turn_cap() {
    let chat = openai_turn("I think the learning rate is fine.", &[], (10, 5));
    let mut exchanges = vec![Exchange::sse(&openai_turn("", &[("list_files", "{}")], (10, 5)), 50)];
    for i in 1..8 {
        // Different calls, and talk between them, so neither the repetition guard nor the
        // silence guard ends the session first.
        let look = openai_turn("", &[("read_file", &format!(r#"{{"path": "train.py", "from_line": {i}}}"#))], (10, 5));
        exchanges.push(Exchange::sse(if i % 2 == 0 { &look } else { &chat }, 50));
    }
    let server = ReplayServer::start(exchanges).await.unwrap();
    let bench = DirBench::new();
    let err = propose(&Agent::new(brief(), openai(&server), settings()), &bench).await.unwrap_err();
    assert!(matches!(&err, ProposeError::Invalid(m) if m.contains("all 8 turns")), "{err:?}");
    let listing = &tool_results(&server, 1)[0];
    assert!(listing.contains("eval.py") && listing.contains("protected") && listing.contains("train.py"), "{listing}");
    assert!(listing.contains("benchmark/problems.jsonl") && listing.contains("hidden"), "{listing}");
    let last = server.received()[7].json();
    assert!(last.to_string().contains("Two turns left"), "the agent is warned before the cap");
}
