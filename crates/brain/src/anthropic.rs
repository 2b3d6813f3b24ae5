//! Anthropic Messages, streamed.
//!
//! The format differs from Chat Completions in ways the conversion here absorbs: the system
//! prompt stands apart, tool results travel inside a user message (all the results of one
//! assistant turn together, before any text), tool inputs are JSON objects rather than text,
//! and empty text blocks are refused.

use crate::openai::request_error;
use crate::sse::{Flow, read_events};
use crate::{
    Brain, BrainError, Conversation, Endpoint, Message, Reply, ReplyOptions, StopReason, ToolCall, ToolChoice, Usage,
    short, status_error,
};
use serde_json::{Value, json};

const PROVIDER: &str = "Anthropic";
const VERSION: &str = "2023-06-01";

/// A Messages client; `base_url` ends before `/v1/messages` (e.g. `https://api.anthropic.com`).
pub struct Anthropic {
    endpoint: Endpoint,
    client: reqwest::Client,
}

impl Anthropic {
    pub fn new(endpoint: Endpoint) -> Result<Anthropic, BrainError> {
        let client = endpoint.client()?;
        Ok(Anthropic { endpoint, client })
    }

    /// The request body: a pure function of the conversation, so tests can check it.
    pub fn request_body(&self, conversation: &Conversation, options: &ReplyOptions) -> Value {
        let mut messages: Vec<(&str, Vec<Value>)> = Vec::new();
        for message in &conversation.messages {
            let (role, blocks) = match message {
                Message::User { text } => ("user", text_block(text).into_iter().collect::<Vec<_>>()),
                Message::Assistant { text, tool_calls } => {
                    let mut blocks: Vec<Value> = text_block(text).into_iter().collect();
                    for call in tool_calls {
                        // The model's arguments as it wrote them; text that is not a JSON object
                        // (the agent answered it with the parse error) goes back as an empty input.
                        let input = serde_json::from_str::<Value>(&call.arguments)
                            .ok()
                            .filter(Value::is_object)
                            .unwrap_or_else(|| json!({}));
                        blocks.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}));
                    }
                    ("assistant", blocks)
                }
                Message::Tool { call_id, content, is_error } => {
                    let mut block = json!({"type": "tool_result", "tool_use_id": call_id, "content": content});
                    if *is_error {
                        block["is_error"] = json!(true);
                    }
                    ("user", vec![block])
                }
            };
            if blocks.is_empty() {
                continue;
            }
            match messages.last_mut() {
                Some((last, previous)) if *last == role => previous.extend(blocks),
                _ => messages.push((role, blocks)),
            }
        }
        let messages: Vec<Value> =
            messages.into_iter().map(|(role, content)| json!({"role": role, "content": content})).collect();
        let mut body = json!({
            "model": self.endpoint.model,
            "max_tokens": options.max_tokens,
            "messages": messages,
            "stream": true,
        });
        if !conversation.system.is_empty() {
            body["system"] = json!(conversation.system);
        }
        if let Some(t) = options.temperature {
            body["temperature"] = json!(t);
        }
        if !conversation.tools.is_empty() {
            body["tools"] = conversation
                .tools
                .iter()
                .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
                .collect();
            body["tool_choice"] = match &options.tool_choice {
                ToolChoice::Auto => json!({"type": "auto"}),
                ToolChoice::Any | ToolChoice::Among(_) => json!({"type": "any"}),
                ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
            };
        }
        body
    }
}

fn text_block(text: &str) -> Option<Value> {
    (!text.trim().is_empty()).then(|| json!({"type": "text", "text": text}))
}

#[async_trait::async_trait]
impl Brain for Anthropic {
    fn describe(&self) -> String {
        format!("anthropic {} at {}", self.endpoint.model, self.endpoint.base_url)
    }

    async fn reply(&self, conversation: &Conversation, options: &ReplyOptions) -> Result<Reply, BrainError> {
        let body = self.request_body(conversation, options);
        let mut request = self
            .client
            .post(format!("{}/v1/messages", self.endpoint.base_url))
            .header("anthropic-version", VERSION)
            .json(&body);
        if let Some(key) = &self.endpoint.key {
            request = request.header("x-api-key", key.expose());
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
        reply.finish(finished)
    }
}

enum Block {
    Text,
    Thinking,
    Tool(usize),
    Other,
}

#[derive(Default)]
struct StreamedReply {
    text: String,
    reasoning: String,
    calls: Vec<ToolCall>,
    /// What each content block index streams into.
    blocks: Vec<(u64, Block)>,
    stop: Option<String>,
    usage: Usage,
}

impl StreamedReply {
    fn event(&mut self, data: &str) -> Result<Flow, BrainError> {
        if data.trim().is_empty() {
            return Ok(Flow::More);
        }
        let event: Value = serde_json::from_str(data).map_err(|e| {
            BrainError::transient(format!("{PROVIDER} streamed an event that is not JSON ({e}): {}", short(data, 200)))
        })?;
        match event.get("type").and_then(Value::as_str).unwrap_or("") {
            "message_start" => {
                let usage = event.pointer("/message/usage");
                let field = |name: &str| usage.and_then(|u| u.get(name)).and_then(Value::as_u64).unwrap_or(0);
                self.usage.input_tokens =
                    field("input_tokens") + field("cache_creation_input_tokens") + field("cache_read_input_tokens");
                self.usage.output_tokens = field("output_tokens");
            }
            "content_block_start" => {
                let index = event.get("index").and_then(Value::as_u64).unwrap_or(self.blocks.len() as u64);
                let block = event.get("content_block").cloned().unwrap_or(Value::Null);
                let kind = match block.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        self.text.push_str(block.get("text").and_then(Value::as_str).unwrap_or(""));
                        Block::Text
                    }
                    Some("thinking") => {
                        self.reasoning.push_str(block.get("thinking").and_then(Value::as_str).unwrap_or(""));
                        Block::Thinking
                    }
                    Some("tool_use") => {
                        self.calls.push(ToolCall {
                            id: block.get("id").and_then(Value::as_str).unwrap_or("").to_string(),
                            name: block.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                            arguments: String::new(),
                        });
                        Block::Tool(self.calls.len() - 1)
                    }
                    _ => Block::Other,
                };
                self.blocks.push((index, kind));
            }
            "content_block_delta" => {
                let index = event.get("index").and_then(Value::as_u64);
                let block = self.blocks.iter().rev().find(|(i, _)| Some(*i) == index).map(|(_, b)| b);
                let delta = event.get("delta").cloned().unwrap_or(Value::Null);
                let piece = |field: &str| delta.get(field).and_then(Value::as_str).unwrap_or("").to_string();
                match (block, delta.get("type").and_then(Value::as_str)) {
                    (Some(Block::Text), Some("text_delta")) => self.text.push_str(&piece("text")),
                    (Some(Block::Thinking), Some("thinking_delta")) => self.reasoning.push_str(&piece("thinking")),
                    (Some(Block::Tool(n)), Some("input_json_delta")) => {
                        let n = *n;
                        self.calls[n].arguments.push_str(&piece("partial_json"));
                    }
                    (None, _) => {
                        return Err(BrainError::transient(format!(
                            "{PROVIDER} streamed a delta for a content block it never started"
                        )));
                    }
                    _ => {} // signatures and block kinds this client does not keep
                }
            }
            "message_delta" => {
                if let Some(reason) = event.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop = Some(reason.to_string());
                }
                if let Some(out) = event.pointer("/usage/output_tokens").and_then(Value::as_u64) {
                    self.usage.output_tokens = out;
                }
            }
            "message_stop" => return Ok(Flow::Done),
            "error" => {
                let message = event
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| event.to_string());
                return Err(BrainError::transient(format!("{PROVIDER} reported an error mid-stream: {message}")));
            }
            _ => {} // ping, content_block_stop, and event types added later
        }
        Ok(Flow::More)
    }

    fn finish(mut self, done: bool) -> Result<Reply, BrainError> {
        if !done {
            return Err(BrainError::transient(format!("{PROVIDER}'s stream ended before the reply was complete")));
        }
        for call in &mut self.calls {
            // A tool whose input streamed no pieces was called with no arguments.
            if call.arguments.trim().is_empty() {
                call.arguments = "{}".into();
            }
        }
        let stop = match self.stop.as_deref() {
            Some("tool_use") => StopReason::ToolUse,
            Some("end_turn") | Some("stop_sequence") | None => StopReason::EndTurn,
            Some("max_tokens") => StopReason::MaxTokens,
            Some(other) => StopReason::Other(other.to_string()),
        };
        Ok(Reply { text: self.text, reasoning: self.reasoning, tool_calls: self.calls, usage: self.usage, stop })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ToolSpec;

    #[test]
    fn tool_results_travel_together_in_one_user_message_before_its_text() {
        let call = |id: &str, args: &str| ToolCall { id: id.into(), name: "read".into(), arguments: args.into() };
        let conversation = Conversation {
            system: "role".into(),
            messages: vec![
                Message::User { text: "lineage".into() },
                Message::Assistant {
                    text: " ".into(),
                    tool_calls: vec![call("t1", "{\"path\":\"a\"}"), call("t2", "{oops")],
                },
                Message::Tool { call_id: "t1".into(), content: "contents".into(), is_error: false },
                Message::Tool { call_id: "t2".into(), content: "bad JSON".into(), is_error: true },
                Message::User { text: "two turns left".into() },
            ],
            tools: vec![ToolSpec {
                name: "read".into(),
                description: "reads".into(),
                parameters: json!({"type": "object"}),
            }],
        };
        let brain = Anthropic::new(Endpoint::new("http://127.0.0.1:1", "claude", None)).unwrap();
        let body = brain.request_body(&conversation, &ReplyOptions::default());
        assert_eq!(body["system"], "role");
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3, "{body:#}");
        assert_eq!(messages[1]["content"].as_array().unwrap().len(), 2, "the blank text is dropped");
        assert_eq!(messages[1]["content"][0]["input"], json!({"path": "a"}));
        assert_eq!(messages[1]["content"][1]["input"], json!({}));
        let results = messages[2]["content"].as_array().unwrap();
        assert_eq!(results.len(), 3);
        assert_eq!(results[0]["tool_use_id"], "t1");
        assert_eq!(results[1]["is_error"], true);
        assert_eq!(results[2]["text"], "two turns left");
        assert_eq!(body["tool_choice"], json!({"type": "auto"}));
        assert_eq!(body["tools"][0]["input_schema"], json!({"type": "object"}));
        let last = ReplyOptions { tool_choice: ToolChoice::Tool("submit".into()), ..ReplyOptions::default() };
        let forced = brain.request_body(&conversation, &last);
        assert_eq!(forced["tool_choice"], json!({"type": "tool", "name": "submit"}));
    }

    #[test]
    fn a_delta_for_an_unknown_block_is_refused_as_a_broken_stream() {
        let mut reply = StreamedReply::default();
        let err = reply
            .event(r#"{"type":"content_block_delta","index":3,"delta":{"type":"text_delta","text":"x"}}"#)
            .err()
            .unwrap();
        assert!(matches!(err, BrainError::Transient { .. }), "{err:?}");
    }
}
