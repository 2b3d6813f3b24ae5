//! OpenAI-compatible Chat Completions, streamed: OpenAI itself and the servers people run
//! themselves (vLLM, SGLang, Ollama, the llama.cpp server, OpenRouter, the Hugging Face router).
//!
//! Servers differ in small ways this client tolerates: reasoning arrives as `reasoning_content`
//! or `reasoning`; a tool call may come whole or in pieces, with or without its `index`; usage
//! may come in a last chunk with no choices, inside the last choice chunk, or not at all (then it
//! is estimated and marked so); `finish_reason` may say `stop` for a reply that made tool calls.

use crate::sse::{Flow, read_events};
use crate::{
    Brain, BrainError, Conversation, Endpoint, Message, Reply, ReplyOptions, StopReason, ToolCall, ToolChoice, Usage,
    short, status_error,
};
use serde_json::{Value, json};

const PROVIDER: &str = "the Chat Completions server";

/// A Chat Completions client; `base_url` ends before `/chat/completions` (e.g.
/// `https://api.openai.com/v1`, `http://127.0.0.1:11434/v1`).
pub struct OpenAiCompatible {
    endpoint: Endpoint,
    client: reqwest::Client,
}

impl OpenAiCompatible {
    pub fn new(endpoint: Endpoint) -> Result<OpenAiCompatible, BrainError> {
        let client = endpoint.client()?;
        Ok(OpenAiCompatible { endpoint, client })
    }

    /// The request body: a pure function of the conversation, so tests can check it.
    pub fn request_body(&self, conversation: &Conversation, options: &ReplyOptions) -> Value {
        let mut messages = vec![json!({"role": "system", "content": conversation.system})];
        for message in &conversation.messages {
            messages.push(match message {
                Message::User { text } => json!({"role": "user", "content": text}),
                Message::Assistant { text, tool_calls } if tool_calls.is_empty() => {
                    json!({"role": "assistant", "content": text})
                }
                Message::Assistant { text, tool_calls } => json!({
                    "role": "assistant",
                    "content": if text.is_empty() { Value::Null } else { Value::String(text.clone()) },
                    "tool_calls": tool_calls.iter().map(|c| json!({
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments},
                    })).collect::<Vec<_>>(),
                }),
                // The format has no error flag: the content says it.
                Message::Tool { call_id, content, is_error } => json!({
                    "role": "tool",
                    "tool_call_id": call_id,
                    "content": if *is_error { format!("error: {content}") } else { content.clone() },
                }),
            });
        }
        let mut body = json!({
            "model": self.endpoint.model,
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        // OpenAI's own reasoning models refuse `max_tokens`; the servers people run accept it,
        // and not all of them know the newer name.
        let limit =
            if self.endpoint.base_url.contains("api.openai.com") { "max_completion_tokens" } else { "max_tokens" };
        body[limit] = json!(options.max_tokens);
        if let Some(t) = options.temperature {
            body["temperature"] = json!(t);
        }
        if !conversation.tools.is_empty() {
            body["tools"] = conversation
                .tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "function": {
                        "name": t.name, "description": t.description, "parameters": t.parameters,
                    }})
                })
                .collect();
            body["tool_choice"] = match &options.tool_choice {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::Any | ToolChoice::Among(_) => json!("required"),
                ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
            };
        }
        body
    }
}

#[async_trait::async_trait]
impl Brain for OpenAiCompatible {
    fn describe(&self) -> String {
        format!("openai-compatible {} at {}", self.endpoint.model, self.endpoint.base_url)
    }

    async fn reply(&self, conversation: &Conversation, options: &ReplyOptions) -> Result<Reply, BrainError> {
        let body = self.request_body(conversation, options);
        let mut request = self.client.post(format!("{}/chat/completions", self.endpoint.base_url)).json(&body);
        if let Some(key) = &self.endpoint.key {
            request = request.bearer_auth(key.expose());
        }
        let response = tokio::time::timeout(self.endpoint.connect_timeout, request.send())
            .await
            .map_err(|_| BrainError::transient(format!("{PROVIDER} did not answer within the connect timeout")))?
            .map_err(|e| request_error(&e))?;
        if !response.status().is_success() {
            return Err(status_error(PROVIDER, response).await);
        }
        let mut reply = StreamedReply::default();
        let finished =
            read_events(PROVIDER, response, self.endpoint.idle_timeout, |event| reply.event(&event.data)).await?;
        reply.finish(finished, &body)
    }
}

/// A failure to send: connection refused or reset, a timeout, a bad URL. Only the URL's
/// shape is a configuration mistake; the rest may pass.
pub(crate) fn request_error(e: &reqwest::Error) -> BrainError {
    // reqwest's message names the URL but never a header, so the key cannot appear in it.
    if e.is_builder() {
        BrainError::Refused(format!("cannot send the request: {e}"))
    } else {
        BrainError::transient(format!("cannot reach the provider: {e}"))
    }
}

#[derive(Default)]
struct StreamedReply {
    text: String,
    reasoning: String,
    calls: Vec<ToolCall>,
    /// The `index` each call in `calls` was streamed under.
    call_index: Vec<Option<u64>>,
    finish: Option<String>,
    usage: Option<Usage>,
}

impl StreamedReply {
    fn event(&mut self, data: &str) -> Result<Flow, BrainError> {
        let data = data.trim();
        if data == "[DONE]" {
            return Ok(Flow::Done);
        }
        if data.is_empty() {
            return Ok(Flow::More);
        }
        let chunk: Value = serde_json::from_str(data).map_err(|e| {
            BrainError::transient(format!("{PROVIDER} streamed a chunk that is not JSON ({e}): {}", short(data, 200)))
        })?;
        if let Some(error) = chunk.get("error") {
            let message = error.get("message").and_then(Value::as_str).map(str::to_string).unwrap_or(error.to_string());
            return Err(BrainError::transient(format!("{PROVIDER} reported an error mid-stream: {message}")));
        }
        if let Some(usage) = chunk.get("usage").filter(|u| !u.is_null()) {
            self.usage = Some(Usage {
                input_tokens: usage.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0),
                output_tokens: usage.get("completion_tokens").and_then(Value::as_u64).unwrap_or(0),
                estimated: false,
            });
        }
        for choice in chunk.get("choices").and_then(Value::as_array).into_iter().flatten() {
            if let Some(delta) = choice.get("delta") {
                self.delta(delta)?;
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finish = Some(reason.to_string());
            }
        }
        Ok(Flow::More)
    }

    fn delta(&mut self, delta: &Value) -> Result<(), BrainError> {
        if let Some(text) = delta.get("content").and_then(Value::as_str) {
            self.text.push_str(text);
        }
        for field in ["reasoning_content", "reasoning"] {
            if let Some(text) = delta.get(field).and_then(Value::as_str) {
                self.reasoning.push_str(text);
            }
        }
        for piece in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
            let index = piece.get("index").and_then(Value::as_u64);
            let id = piece.get("id").and_then(Value::as_str).filter(|s| !s.is_empty());
            let function = piece.get("function");
            let name = function.and_then(|f| f.get("name")).and_then(Value::as_str).filter(|s| !s.is_empty());
            let arguments = function.and_then(|f| f.get("arguments")).and_then(|a| match a {
                Value::String(s) => Some(s.clone()),
                Value::Null => None,
                // Some servers send the arguments as an object rather than its JSON text.
                other => Some(other.to_string()),
            });
            // A piece continues the call streamed under the same index; without an index, the
            // last call, unless it brings a new id.
            let at = match index {
                Some(i) => self.call_index.iter().position(|c| *c == Some(i)),
                None if id.is_some_and(|id| self.calls.last().is_none_or(|c| c.id != id)) => None,
                None => self.calls.len().checked_sub(1),
            };
            let at = match at {
                Some(at) => at,
                None => {
                    self.calls.push(ToolCall { id: String::new(), name: String::new(), arguments: String::new() });
                    self.call_index.push(index);
                    self.calls.len() - 1
                }
            };
            let call = &mut self.calls[at];
            if let Some(id) = id {
                call.id = id.to_string();
            }
            if let Some(name) = name {
                call.name.push_str(name);
            }
            if let Some(arguments) = arguments {
                call.arguments.push_str(&arguments);
            }
        }
        Ok(())
    }

    fn finish(mut self, done: bool, request: &Value) -> Result<Reply, BrainError> {
        if !done && self.finish.is_none() {
            return Err(BrainError::transient(format!("{PROVIDER}'s stream ended before the reply was complete")));
        }
        for (n, call) in self.calls.iter_mut().enumerate() {
            if call.id.is_empty() {
                call.id = format!("call_{n}");
            }
            if call.name.is_empty() {
                return Err(BrainError::transient(format!("{PROVIDER} streamed a tool call without a name")));
            }
        }
        let stop = match self.finish.as_deref() {
            _ if !self.calls.is_empty() => StopReason::ToolUse,
            Some("stop") | None => StopReason::EndTurn,
            Some("length") => StopReason::MaxTokens,
            Some(other) => StopReason::Other(other.to_string()),
        };
        let usage = self.usage.unwrap_or_else(|| {
            let written: usize =
                self.text.len() + self.reasoning.len() + self.calls.iter().map(|c| c.arguments.len()).sum::<usize>();
            Usage::estimate(request.to_string().len(), written)
        });
        Ok(Reply { text: self.text, reasoning: self.reasoning, tool_calls: self.calls, usage, stop })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ApiKey, ToolSpec};

    fn client(base: &str) -> OpenAiCompatible {
        OpenAiCompatible::new(Endpoint::new(base, "m", Some(ApiKey::new("k")))).unwrap()
    }

    #[test]
    fn the_request_carries_the_conversation_in_chat_completions_form() {
        let conversation = Conversation {
            system: "be brief".into(),
            messages: vec![
                Message::User { text: "hi".into() },
                Message::Assistant {
                    text: String::new(),
                    tool_calls: vec![ToolCall { id: "c1".into(), name: "read".into(), arguments: "{\"p\":1}".into() }],
                },
                Message::Tool { call_id: "c1".into(), content: "no such file".into(), is_error: true },
            ],
            tools: vec![ToolSpec { name: "read".into(), description: "reads".into(), parameters: json!({}) }],
        };
        let options = ReplyOptions { max_tokens: 100, temperature: Some(0.5), tool_choice: ToolChoice::Any };
        let body = client("http://127.0.0.1:1/v1").request_body(&conversation, &options);
        assert_eq!(body["messages"][0], json!({"role": "system", "content": "be brief"}));
        assert_eq!(body["messages"][2]["content"], Value::Null);
        assert_eq!(body["messages"][2]["tool_calls"][0]["function"]["arguments"], "{\"p\":1}");
        assert_eq!(
            body["messages"][3],
            json!({"role": "tool", "tool_call_id": "c1", "content": "error: no such file"})
        );
        assert_eq!(body["tool_choice"], "required");
        assert_eq!(body["max_tokens"], 100);
        assert_eq!(body["tools"][0]["function"]["name"], "read");
        let last = ReplyOptions { tool_choice: ToolChoice::Tool("read".into()), ..options.clone() };
        let forced = client("http://127.0.0.1:1/v1").request_body(&conversation, &last);
        assert_eq!(forced["tool_choice"], json!({"type": "function", "function": {"name": "read"}}));
        let openai = client("https://api.openai.com/v1").request_body(&conversation, &options);
        assert_eq!(openai["max_completion_tokens"], 100);
        assert!(openai.get("max_tokens").is_none());
    }

    fn replay(chunks: &[&str]) -> Result<Reply, BrainError> {
        let mut reply = StreamedReply::default();
        let mut done = false;
        for chunk in chunks {
            if let Flow::Done = reply.event(chunk)? {
                done = true;
                break;
            }
        }
        reply.finish(done, &json!({}))
    }

    #[test]
    fn tool_calls_without_an_index_and_with_object_arguments_are_reassembled() {
        let reply = replay(&[
            r#"{"choices":[{"delta":{"tool_calls":[{"id":"a","function":{"name":"read","arguments":{"path":"x"}}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"id":"b","function":{"name":"grep","arguments":"{\"q\":"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"\"y\"}"}}]},"finish_reason":"stop"}]}"#,
        ])
        .unwrap();
        assert_eq!(reply.stop, StopReason::ToolUse);
        assert_eq!(reply.tool_calls.len(), 2);
        assert_eq!(reply.tool_calls[0].arguments, r#"{"path":"x"}"#);
        assert_eq!(reply.tool_calls[1].arguments, r#"{"q":"y"}"#);
        assert!(reply.usage.estimated);
    }

    #[test]
    fn a_stream_cut_before_its_end_is_transient() {
        let err = replay(&[r#"{"choices":[{"delta":{"content":"Hel"}}]}"#]).unwrap_err();
        assert!(matches!(err, BrainError::Transient { .. }), "{err:?}");
        let err = replay(&[r#"{"error":{"message":"upstream overloaded"}}"#]).unwrap_err();
        assert!(err.to_string().contains("upstream overloaded"), "{err}");
    }
}
