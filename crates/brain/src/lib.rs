//! The model providers behind LLM specialists ("brains").
//!
//! One conversation type and one [`Brain`] trait, with a client per wire format:
//! [`openai::OpenAiCompatible`] speaks Chat Completions (OpenAI itself, vLLM, SGLang, Ollama, the
//! llama.cpp server, OpenRouter, the Hugging Face router) and [`anthropic::Anthropic`] speaks
//! Messages. Both stream their replies (a long proposal is not cut by an HTTP timeout, and a
//! stalled stream is noticed), reassemble tool calls whose arguments arrive in pieces, and
//! report token usage. [`Retrying`] wraps any brain: transient failures (429, 5xx, timeouts,
//! dropped streams) are retried with backoff, and a provider that stays down is reported as
//! unavailable rather than burning the specialist's trials.
//!
//! Keys come only from environment variables and live in an [`ApiKey`], which never prints.

pub mod anthropic;
pub mod openai;
mod retry;
mod sse;
#[cfg(feature = "testing")]
pub mod testing;

pub use retry::{RetryPolicy, Retrying};

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A tool the model may call: its name, what it does, and a JSON Schema of its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// A call the model made: the arguments exactly as it wrote them (they may not parse; the
/// agent answers a malformed call with the parse error).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// A call's arguments in a form where key order and spacing do not matter, so two calls can be
/// compared by what they ask.
pub fn canonical_arguments(arguments: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(arguments) {
        // serde_json's maps are sorted by key, so printing is canonical.
        Ok(v) => v.to_string(),
        Err(_) => arguments.trim().to_string(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    User {
        text: String,
    },
    Assistant {
        text: String,
        tool_calls: Vec<ToolCall>,
    },
    /// What a tool call returned; `is_error` when the call was refused or failed.
    Tool {
        call_id: String,
        content: String,
        is_error: bool,
    },
}

/// Everything a brain is asked: the system prompt, the exchange so far, and the tools.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub system: String,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
}

/// Per-reply settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyOptions {
    pub max_tokens: u32,
    pub temperature: Option<f32>,
    /// Whether the reply must call a tool, or one tool in particular.
    pub tool_choice: ToolChoice,
}

impl Default for ReplyOptions {
    fn default() -> ReplyOptions {
        ReplyOptions { max_tokens: 2048, temperature: None, tool_choice: ToolChoice::Auto }
    }
}

/// What the model may answer with (the providers' `tool_choice`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ToolChoice {
    /// Text, tool calls, or both.
    #[default]
    Auto,
    /// At least one tool call.
    Any,
    /// A call of this tool.
    Tool(String),
    /// A call of one of these tools. The remote APIs cannot all narrow the choice to a set, so
    /// they ask for any tool call; the tool runner still refuses what does not fit.
    Among(Vec<String>),
}

/// Tokens a reply cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// The provider did not report usage, so the counts are estimated from the text (about four
    /// characters a token); the ledger says so rather than count nothing.
    #[serde(default)]
    pub estimated: bool,
}

impl Usage {
    pub(crate) fn estimate(input_chars: usize, output_chars: usize) -> Usage {
        Usage {
            input_tokens: input_chars.div_ceil(4) as u64,
            output_tokens: output_chars.div_ceil(4) as u64,
            estimated: true,
        }
    }
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.estimated |= other.estimated;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model finished its turn.
    EndTurn,
    /// The model wants its tool calls answered.
    ToolUse,
    /// The reply hit `max_tokens`.
    MaxTokens,
    Other(String),
}

/// One reply of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub text: String,
    /// Reasoning the provider streams apart from the answer (thinking blocks,
    /// `reasoning_content`), kept for the transcript.
    pub reasoning: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    pub stop: StopReason,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BrainError {
    /// Worth trying again: rate limited, overloaded, a server error, a timeout, a dropped stream.
    #[error("{reason}")]
    Transient { reason: String, retry_after: Option<Duration> },
    /// Trying again will not help: a bad key, an unknown model, a request the provider refuses.
    #[error("{0}")]
    Refused(String),
    /// Still failing after every retry.
    #[error("the provider is unavailable after {attempts} attempts: {last}")]
    Unavailable { attempts: u32, last: String },
}

impl BrainError {
    fn transient(reason: impl Into<String>) -> BrainError {
        BrainError::Transient { reason: reason.into(), retry_after: None }
    }
}

/// A model provider.
#[async_trait::async_trait]
pub trait Brain: Send + Sync {
    /// Provider and model, for logs and the lineage (never the key).
    fn describe(&self) -> String;

    async fn reply(&self, conversation: &Conversation, options: &ReplyOptions) -> Result<Reply, BrainError>;
}

/// An API key. Its `Debug` and `Display` never show it, so it cannot leak into a log line, an
/// error or the store by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// The key in environment variable `var`, if set and not empty.
    pub fn from_env(var: &str) -> Option<ApiKey> {
        std::env::var(var).ok().filter(|k| !k.trim().is_empty()).map(|k| ApiKey(k.trim().to_string()))
    }

    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// Where a provider lives and how long to wait for it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The base URL, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8000/v1` (Chat
    /// Completions) or `https://api.anthropic.com` (Messages).
    pub base_url: String,
    pub model: String,
    pub key: Option<ApiKey>,
    /// Time to connect and to receive the response's headers.
    pub connect_timeout: Duration,
    /// Longest silence within a streamed reply before it counts as dropped.
    pub idle_timeout: Duration,
}

impl Endpoint {
    pub fn new(base_url: impl Into<String>, model: impl Into<String>, key: Option<ApiKey>) -> Endpoint {
        Endpoint {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            model: model.into(),
            key,
            connect_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
        }
    }

    pub(crate) fn client(&self) -> Result<reqwest::Client, BrainError> {
        reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .build()
            .map_err(|e| BrainError::Refused(format!("cannot build an HTTP client: {e}")))
    }
}

/// Turns a non-success HTTP response into an error: 408, 409, 429 and 5xx are transient
/// (with the `Retry-After` the provider asked for), anything else is refused, with the
/// provider's own message.
pub(crate) async fn status_error(provider: &str, response: reqwest::Response) -> BrainError {
    let status = response.status();
    let retry_after = postdoc_web::retry_after(response.headers());
    let body = response.text().await.unwrap_or_default();
    let message = postdoc_web::error_message(&body);
    let reason = format!("{provider} answered HTTP {}: {message}", status.as_u16());
    if status.as_u16() == 408 || status.as_u16() == 409 || status.as_u16() == 429 || status.is_server_error() {
        BrainError::Transient { reason, retry_after }
    } else {
        BrainError::Refused(reason)
    }
}

pub(crate) use postdoc_web::short;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_never_prints() {
        let key = ApiKey::new("sk-secret-123");
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
        let endpoint = Endpoint::new("http://x/v1/", "m", Some(key));
        assert!(!format!("{endpoint:?}").contains("secret"), "{endpoint:?}");
        assert_eq!(endpoint.base_url, "http://x/v1");
    }
}
