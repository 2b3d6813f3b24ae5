//! A provider on loopback for tests: it answers each request with the next recorded exchange,
//! streaming the body in the pieces the test chose (so tool arguments can be split anywhere),
//! pausing or breaking the connection where told, and keeps every request it received.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A piece of a response body.
#[derive(Debug, Clone)]
pub enum Piece {
    Bytes(Vec<u8>),
    /// Silence on the connection.
    Pause(Duration),
    /// The connection breaks here.
    Break,
}

/// One recorded answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<Piece>,
}

impl Exchange {
    /// A `200` event stream of `text` cut into pieces of `piece` bytes.
    pub fn sse(text: &str, piece: usize) -> Exchange {
        Exchange {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            body: text.as_bytes().chunks(piece.max(1)).map(|c| Piece::Bytes(c.to_vec())).collect(),
        }
    }

    /// A whole JSON body with `status`.
    pub fn json(status: u16, body: &str) -> Exchange {
        Exchange {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: vec![Piece::Bytes(body.as_bytes().to_vec())],
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Exchange {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The stream stops after its first `bytes` bytes, with the connection broken (after a
    /// moment, so that what came before reaches the client first).
    pub fn broken_after(mut self, bytes: usize) -> Exchange {
        let whole: Vec<u8> = self
            .body
            .iter()
            .flat_map(|p| match p {
                Piece::Bytes(b) => b.clone(),
                _ => Vec::new(),
            })
            .collect();
        self.body = vec![
            Piece::Bytes(whole[..bytes.min(whole.len())].to_vec()),
            Piece::Pause(Duration::from_millis(50)),
            Piece::Break,
        ];
        self
    }
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Script {
    exchanges: VecDeque<Exchange>,
    received: Vec<Received>,
}

/// The server; it stops when dropped with its runtime.
pub struct ReplayServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    script: Arc<Mutex<Script>>,
}

impl ReplayServer {
    /// Starts on a free loopback port, on the current tokio runtime.
    pub async fn start(exchanges: Vec<Exchange>) -> std::io::Result<ReplayServer> {
        let script = Arc::new(Mutex::new(Script { exchanges: exchanges.into(), received: Vec::new() }));
        let app = axum::Router::new().fallback(answer).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(ReplayServer { url, script })
    }

    /// Queues more exchanges.
    pub fn push(&self, exchange: Exchange) {
        self.script.lock().unwrap_or_else(|e| e.into_inner()).exchanges.push_back(exchange);
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap_or_else(|e| e.into_inner()).received.clone()
    }

    /// How many recorded exchanges are still unplayed.
    pub fn remaining(&self) -> usize {
        self.script.lock().unwrap_or_else(|e| e.into_inner()).exchanges.len()
    }
}

async fn answer(State(script): State<Arc<Mutex<Script>>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let headers = request
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = axum::body::to_bytes(request.into_body(), usize::MAX).await.unwrap_or_default();
    let exchange = {
        let mut script = script.lock().unwrap_or_else(|e| e.into_inner());
        script.received.push(Received { path, headers, body: String::from_utf8_lossy(&body).into_owned() });
        script.exchanges.pop_front()
    };
    let exchange =
        exchange.unwrap_or_else(|| Exchange::json(500, r#"{"error":{"message":"no exchange left to replay"}}"#));
    let pieces = futures_util::stream::iter(exchange.body).then(|piece| async move {
        match piece {
            Piece::Bytes(b) => Ok(Bytes::from(b)),
            Piece::Pause(d) => {
                tokio::time::sleep(d).await;
                Ok(Bytes::new())
            }
            Piece::Break => Err(std::io::Error::other("the recorded connection breaks here")),
        }
    });
    let mut response = Response::new(Body::from_stream(pieces));
    *response.status_mut() = StatusCode::from_u16(exchange.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in exchange.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().insert(n, v);
        }
    }
    response
}

/// A Chat Completions stream in which the model says `text` and makes `calls` (name and
/// arguments), the arguments streamed in pieces of 7 characters.
pub fn openai_turn(text: &str, calls: &[(&str, &str)], usage: (u64, u64)) -> String {
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        format!(
            "data: {}\n\n",
            serde_json::json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let mut s = chunk(serde_json::json!({"role": "assistant", "content": text}), None);
    for (i, (name, args)) in calls.iter().enumerate() {
        s += &chunk(
            serde_json::json!({"tool_calls": [{"index": i, "id": format!("call_{i}_{name}"), "type": "function", "function": {"name": name, "arguments": ""}}]}),
            None,
        );
        let chars: Vec<char> = args.chars().collect();
        for piece in chars.chunks(7) {
            let piece: String = piece.iter().collect();
            s += &chunk(serde_json::json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}), None);
        }
    }
    s += &chunk(serde_json::json!({}), Some(if calls.is_empty() { "stop" } else { "tool_calls" }));
    s += &format!(
        "data: {}\n\n",
        serde_json::json!({"choices": [], "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1}})
    );
    s + "data: [DONE]\n\n"
}

/// The same in Anthropic's Messages format.
pub fn anthropic_turn(text: &str, calls: &[(&str, &str)], usage: (u64, u64)) -> String {
    let event = |name: &str, data: serde_json::Value| format!("event: {name}\ndata: {data}\n\n");
    let mut s = event(
        "message_start",
        serde_json::json!({"type": "message_start", "message": {"usage": {"input_tokens": usage.0, "output_tokens": 1}}}),
    );
    s += &event(
        "content_block_start",
        serde_json::json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    );
    s += &event(
        "content_block_delta",
        serde_json::json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
    );
    for (i, (name, args)) in calls.iter().enumerate() {
        let index = i + 1;
        s += &event(
            "content_block_start",
            serde_json::json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": format!("toolu_{i}"), "name": name, "input": {}}}),
        );
        let chars: Vec<char> = args.chars().collect();
        for piece in chars.chunks(5) {
            let piece: String = piece.iter().collect();
            s += &event(
                "content_block_delta",
                serde_json::json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}}),
            );
        }
    }
    let stop = if calls.is_empty() { "end_turn" } else { "tool_use" };
    s += &event(
        "message_delta",
        serde_json::json!({"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": usage.1}}),
    );
    s + &event("message_stop", serde_json::json!({"type": "message_stop"}))
}
