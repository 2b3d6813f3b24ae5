//! Both wire formats against recorded exchanges served on loopback: streams cut into arbitrary
//! pieces, and the ways providers fail (rate limits, server errors, dropped and stalled streams,
//! malformed events, refused keys).

use postdoc_brain::anthropic::Anthropic;
use postdoc_brain::openai::OpenAiCompatible;
use postdoc_brain::testing::{Exchange, Piece, ReplayServer};
use postdoc_brain::{
    ApiKey, Brain, BrainError, Conversation, Endpoint, Message, Reply, ReplyOptions, RetryPolicy, Retrying, StopReason,
    ToolSpec,
};
use std::time::Duration;

const KEY: &str = "sk-test-NEVER-SHOWN-42";
const OPENAI_STREAM: &str = include_str!("fixtures/openai-tool-calls.sse");
const ANTHROPIC_STREAM: &str = include_str!("fixtures/anthropic-tool-use.sse");

fn conversation() -> Conversation {
    Conversation {
        system: "You are the optimizer specialist.".into(),
        messages: vec![Message::User { text: "The lineage so far: baseline 0.31.".into() }],
        tools: vec![ToolSpec {
            name: "set_knob".into(),
            description: "Sets a knob".into(),
            parameters: serde_json::json!({"type": "object", "properties": {"name": {"type": "string"}}}),
        }],
    }
}

fn endpoint(base: String) -> Endpoint {
    let mut e = Endpoint::new(base, "test-model", Some(ApiKey::new(KEY)));
    e.connect_timeout = Duration::from_secs(5);
    e.idle_timeout = Duration::from_millis(300);
    e
}

fn openai(server: &ReplayServer) -> OpenAiCompatible {
    OpenAiCompatible::new(endpoint(format!("{}/v1", server.url))).unwrap()
}

fn anthropic(server: &ReplayServer) -> Anthropic {
    Anthropic::new(endpoint(server.url.clone())).unwrap()
}

fn quick_retries(attempts: u32) -> RetryPolicy {
    RetryPolicy { attempts, base_delay: Duration::from_millis(10), max_delay: Duration::from_millis(50) }
}

fn assert_no_key(text: &str) {
    assert!(!text.contains(KEY) && !text.contains("NEVER-SHOWN"), "the key leaked into: {text}");
}

fn check_openai_reply(reply: &Reply) {
    assert_eq!(reply.text, "I will read the knobs first.");
    assert_eq!(reply.reasoning, "The learning rate looks high; halve it.");
    assert_eq!(reply.stop, StopReason::ToolUse);
    let calls: Vec<(&str, &str, &str)> =
        reply.tool_calls.iter().map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.as_str())).collect();
    assert_eq!(
        calls,
        [
            ("call_read", "read_file", r#"{"path": "recipe.toml"}"#),
            ("call_knob", "set_knob", r#"{"name": "lr", "value": 0.0015, "note": "ü ✓"}"#),
        ]
    );
    assert_eq!((reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.estimated), (1234, 56, false));
}

#[tokio::test]
async fn chat_completions_streams_reassemble_whatever_the_chunking() {
    for piece in [1, 3, 7, 64, 100_000] {
        let server = ReplayServer::start(vec![Exchange::sse(OPENAI_STREAM, piece)]).await.unwrap();
        let reply = openai(&server).reply(&conversation(), &ReplyOptions::default()).await.unwrap();
        check_openai_reply(&reply);
        let received = server.received();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].path, "/v1/chat/completions");
        assert_eq!(received[0].header("authorization"), Some(format!("Bearer {KEY}").as_str()));
        let body = received[0].json();
        assert_eq!(body["model"], "test-model");
        assert_eq!(body["stream"], true);
        assert_eq!(body["messages"][1]["content"], "The lineage so far: baseline 0.31.");
    }
}

#[tokio::test]
async fn messages_streams_reassemble_whatever_the_chunking() {
    for piece in [1, 5, 64, 100_000] {
        let server = ReplayServer::start(vec![Exchange::sse(ANTHROPIC_STREAM, piece)]).await.unwrap();
        let reply = anthropic(&server).reply(&conversation(), &ReplyOptions::default()).await.unwrap();
        assert_eq!(reply.text, "Longer warm-up, then submit.");
        assert_eq!(reply.reasoning, "Warm-up is too short for this batch size.");
        assert_eq!(reply.stop, StopReason::ToolUse);
        assert_eq!(reply.tool_calls.len(), 2);
        assert_eq!(reply.tool_calls[0].id, "toolu_1");
        assert_eq!(reply.tool_calls[0].arguments, r#"{"name": "warmup", "value": 150}"#);
        assert_eq!(reply.tool_calls[1].arguments, "{}", "a call with no input pieces has empty arguments");
        assert_eq!((reply.usage.input_tokens, reply.usage.output_tokens), (2500, 89));
        let received = server.received();
        assert_eq!(received[0].path, "/v1/messages");
        assert_eq!(received[0].header("x-api-key"), Some(KEY));
        assert_eq!(received[0].header("anthropic-version"), Some("2023-06-01"));
        assert_eq!(received[0].json()["system"], "You are the optimizer specialist.");
    }
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_then_the_reply_arrives() {
    let server = ReplayServer::start(vec![
        Exchange::json(429, r#"{"error":{"message":"Rate limit reached","type":"requests"}}"#)
            .header("retry-after", "0"),
        Exchange::json(503, r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#),
        Exchange::sse(OPENAI_STREAM, 11),
    ])
    .await
    .unwrap();
    let brain = Retrying::new(openai(&server), quick_retries(3));
    let reply = brain.reply(&conversation(), &ReplyOptions::default()).await.unwrap();
    check_openai_reply(&reply);
    assert_eq!(server.received().len(), 3);
}

#[tokio::test]
async fn a_provider_that_stays_down_is_unavailable_with_its_last_message() {
    let server = ReplayServer::start(vec![
        Exchange::json(500, r#"{"error":{"message":"internal"}}"#),
        Exchange::json(502, "<html>bad gateway</html>"),
        Exchange::json(529, r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#),
        Exchange::sse(ANTHROPIC_STREAM, 50),
    ])
    .await
    .unwrap();
    let brain = Retrying::new(anthropic(&server), quick_retries(3));
    let err = brain.reply(&conversation(), &ReplyOptions::default()).await.unwrap_err();
    match &err {
        BrainError::Unavailable { attempts, last } => {
            assert_eq!(*attempts, 3);
            assert!(last.contains("HTTP 529") && last.contains("Overloaded"), "{last}");
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert_eq!(server.remaining(), 1, "no fourth attempt");
    assert_no_key(&format!("{err} {err:?}"));
}

#[tokio::test]
async fn a_refused_key_is_not_retried_and_does_not_show_the_key() {
    let server = ReplayServer::start(vec![
        Exchange::json(
            401,
            r#"{"error":{"message":"Incorrect API key provided: sk-test-****-42","code":"invalid_api_key"}}"#,
        ),
        Exchange::sse(OPENAI_STREAM, 50),
    ])
    .await
    .unwrap();
    let err = Retrying::new(openai(&server), quick_retries(5))
        .reply(&conversation(), &ReplyOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, BrainError::Refused(m) if m.contains("HTTP 401") && m.contains("Incorrect API key")),
        "{err:?}"
    );
    assert_eq!(server.received().len(), 1);
    assert_no_key(&format!("{err} {err:?}"));
}

#[tokio::test]
async fn dropped_stalled_and_malformed_streams_are_transient() {
    let cases: Vec<(Exchange, &str)> = vec![
        (Exchange::sse(OPENAI_STREAM, 40).broken_after(900), "stream"),
        (
            Exchange {
                body: vec![Piece::Bytes(OPENAI_STREAM.as_bytes()[..500].to_vec()), Piece::Pause(Duration::from_secs(3))],
                ..Exchange::sse("", 1)
            },
            "silent",
        ),
        (Exchange::sse("data: {\"choices\": [{\"delta\": {\"content\": \"x\"}\n\n", 5), "not JSON"),
        (Exchange::sse(&OPENAI_STREAM[..OPENAI_STREAM.find("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1764000000,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},").unwrap()], 30), "ended before"),
    ];
    for (exchange, expect) in cases {
        let server = ReplayServer::start(vec![exchange]).await.unwrap();
        let err = openai(&server).reply(&conversation(), &ReplyOptions::default()).await.unwrap_err();
        match &err {
            BrainError::Transient { reason, .. } => assert!(reason.contains(expect), "{expect}: {reason}"),
            other => panic!("{expect}: expected a transient error, got {other:?}"),
        }
        assert_no_key(&format!("{err:?}"));
    }
    // The same for Messages: a stream without its message_stop was cut.
    let cut = &ANTHROPIC_STREAM[..ANTHROPIC_STREAM.find("event: message_stop").unwrap()];
    let server = ReplayServer::start(vec![Exchange::sse(cut, 64)]).await.unwrap();
    let err = anthropic(&server).reply(&conversation(), &ReplyOptions::default()).await.unwrap_err();
    assert!(matches!(&err, BrainError::Transient { reason, .. } if reason.contains("ended before")), "{err:?}");
    let mid_stream_error = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let server = ReplayServer::start(vec![Exchange::sse(mid_stream_error, 64)]).await.unwrap();
    let err = anthropic(&server).reply(&conversation(), &ReplyOptions::default()).await.unwrap_err();
    assert!(matches!(&err, BrainError::Transient { reason, .. } if reason.contains("Overloaded")), "{err:?}");
}

#[tokio::test]
async fn a_closed_port_is_transient_and_does_not_show_the_key() {
    // Bind then drop, so nothing listens on the port.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let brain = OpenAiCompatible::new(endpoint(format!("http://127.0.0.1:{port}/v1"))).unwrap();
    let err = brain.reply(&conversation(), &ReplyOptions::default()).await.unwrap_err();
    assert!(matches!(&err, BrainError::Transient { reason, .. } if reason.contains("cannot reach")), "{err:?}");
    assert_no_key(&format!("{err} {err:?}"));
    assert!(!brain.describe().contains(KEY));
}
