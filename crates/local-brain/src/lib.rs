//! A brain that needs no network and no key: a GGUF instruct model (llama family, quantized)
//! run in-process on the CPU with candle, its tokenizer rebuilt from the file's metadata.
//!
//! Small models rarely write a well-formed tool call on their own, so every reply is one:
//! decoding is constrained to `{"name": TOOL, "arguments": {...}}` where postdoc writes the
//! JSON's structure and the model chooses the tool, each enumerated value, and writes each
//! number and string within what the tool's schema allows. The result always parses, and every
//! required argument is there. Decoding is greedy, or drawn at a temperature from a generator
//! seeded by the conversation, so a conversation replays the same way.

mod chat;
mod decode;
mod fetch;
mod tokenizer;

pub use fetch::{DEFAULT_MODEL_FILE, FetchError, default_model, model_cache};

use candle_core::Device;
use candle_core::quantized::gguf_file;
use candle_transformers::models::quantized_llama::ModelWeights;
use postdoc_brain::{
    Brain, BrainError, Conversation, Message, Reply, ReplyOptions, StopReason, ToolCall, ToolChoice, ToolSpec, Usage,
    canonical_arguments,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokenizer::Vocabulary;

/// Calls back within which a model is not let to repeat one.
const RECENT_CALLS: usize = 3;
/// Replies drawn at most, looking for a call worth making.
const MAX_DRAWS: u64 = 6;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read the model file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path} is not a model postdoc can run: {reason}")]
    Unsupported { path: PathBuf, reason: String },
}

/// The model and its state between replies; one reply at a time.
pub(crate) struct Engine {
    model: ModelWeights,
    vocab: Vocabulary,
    device: Device,
    /// Tokens the model has seen in the current reply (the position of the next one).
    position: usize,
    context: usize,
    /// The model's state after earlier prompts (their system turn, and the whole last prompt):
    /// a conversation grows by appending, so the next reply feeds only what is new.
    saved: Vec<Saved>,
}

struct Saved {
    tokens: Vec<u32>,
    model: ModelWeights,
    /// For the token after `tokens`.
    logits: Vec<f32>,
}

pub struct LocalModel {
    engine: Arc<Mutex<Engine>>,
    name: String,
}

impl LocalModel {
    /// Loads a GGUF file: the weights, and the tokenizer from its metadata.
    pub fn load(path: &Path) -> Result<LocalModel, LoadError> {
        let read = |reason: String| LoadError::Read { path: path.to_path_buf(), reason };
        let unsupported = |reason: String| LoadError::Unsupported { path: path.to_path_buf(), reason };
        let mut file = std::fs::File::open(path).map_err(|e| read(e.to_string()))?;
        let content = gguf_file::Content::read(&mut file).map_err(|e| unsupported(e.to_string()))?;
        let architecture =
            content.metadata.get("general.architecture").and_then(|v| v.to_string().ok()).cloned().unwrap_or_default();
        if architecture != "llama" {
            return Err(unsupported(format!("architecture `{architecture}` (only llama-family models run here)")));
        }
        let context = content
            .metadata
            .get("llama.context_length")
            .and_then(|v| v.to_u32().ok())
            .map(|c| c as usize)
            .unwrap_or(2048);
        let vocab = Vocabulary::from_gguf(&content).map_err(unsupported)?;
        let device = Device::Cpu;
        let model = ModelWeights::from_gguf(content, &mut file, &device).map_err(|e| unsupported(e.to_string()))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(LocalModel {
            engine: Arc::new(Mutex::new(Engine { model, vocab, device, position: 0, context, saved: Vec::new() })),
            name,
        })
    }
}

impl Engine {
    /// Feeds a reply's prompt, from the longest saved state it extends, and returns the logits
    /// for the reply's first token. `system` is where the system turn ends in `prompt`. A prompt
    /// fed before (a reply decoded again) costs nothing.
    fn begin(&mut self, prompt: &[u32], system: usize) -> Result<Vec<f32>, String> {
        let resumable = self
            .saved
            .iter()
            .filter(|s| s.tokens.len() <= prompt.len() && prompt.starts_with(&s.tokens))
            .max_by_key(|s| s.tokens.len());
        match resumable {
            Some(saved) => {
                self.model = saved.model.clone();
                self.position = saved.tokens.len();
                if saved.tokens.len() == prompt.len() {
                    return Ok(saved.logits.clone());
                }
            }
            None => self.restart(),
        }
        if self.position < system && system < prompt.len() {
            let logits = self.feed(&prompt[self.position..system])?;
            self.save(&prompt[..system], logits);
        }
        let logits = self.feed(&prompt[self.position..])?;
        self.save(prompt, logits.clone());
        Ok(logits)
    }

    /// Back to an empty context.
    fn restart(&mut self) {
        self.model.clear_kv_cache();
        self.position = 0;
    }

    /// Keeps the current state as that after `tokens`, with at most one other state beside it:
    /// the shortest earlier one it extends (the system turn), which the next proposal starts from.
    fn save(&mut self, tokens: &[u32], logits: Vec<f32>) {
        self.saved.retain(|s| s.tokens.len() < tokens.len() && tokens.starts_with(&s.tokens));
        self.saved.sort_by_key(|s| s.tokens.len());
        self.saved.truncate(1);
        self.saved.push(Saved { tokens: tokens.to_vec(), model: self.model.clone(), logits });
    }

    /// Feeds tokens; returns the logits for the next one.
    fn feed(&mut self, tokens: &[u32]) -> Result<Vec<f32>, String> {
        let mut logits = Vec::new();
        // Long prompts go in pieces: attention over a whole prompt at once costs memory
        // quadratic in its length.
        for piece in tokens.chunks(256) {
            if self.position + piece.len() >= self.context {
                return Err(format!("the conversation outgrew the model's context of {} tokens", self.context));
            }
            let input = candle_core::Tensor::new(piece, &self.device)
                .and_then(|t| t.unsqueeze(0))
                .map_err(|e| e.to_string())?;
            let out = self.model.forward(&input, self.position).map_err(|e| e.to_string())?;
            logits = out
                .squeeze(0)
                .and_then(|t| t.to_dtype(candle_core::DType::F32))
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|e| e.to_string())?;
            self.position += piece.len();
        }
        Ok(logits)
    }

    /// The prompt's tokens and where its system turn ends, dropping the oldest exchanges (never
    /// the system turn or the first message, the lineage) until it leaves room for `reply` tokens.
    fn prompt(&self, conversation: &Conversation, reply: usize) -> Result<(Vec<u32>, usize), String> {
        let system = self.vocab.encode(&chat::system(conversation))?.len();
        let mut trimmed = conversation.clone();
        loop {
            let tokens = self.vocab.encode(&chat::render(&trimmed))?;
            if tokens.len() + reply < self.context || trimmed.messages.len() <= 2 {
                return Ok((tokens, system));
            }
            trimmed.messages.remove(1);
            // A tool result never opens the kept part: its call went with what was dropped.
            while trimmed.messages.len() > 2 && matches!(trimmed.messages[1], Message::Tool { .. }) {
                trimmed.messages.remove(1);
            }
        }
    }
}

/// How fast the model reads a prompt and writes a reply, in tokens per second.
#[derive(Debug, Clone, Copy)]
pub struct Speed {
    pub prefill: f64,
    pub decode: f64,
}

impl LocalModel {
    /// Reads a prompt of `prompt` tokens, then writes `reply` tokens greedily, unconstrained;
    /// for benchmarks.
    pub fn measure(&self, prompt: usize, reply: usize) -> Result<Speed, String> {
        let mut engine = self.engine.lock().unwrap_or_else(|e| e.into_inner());
        let text = "The recipe post-trains a small language model on problems it makes itself. ".repeat(prompt / 8 + 1);
        let tokens: Vec<u32> = engine.vocab.encode(&text)?.into_iter().take(prompt).collect();
        engine.saved.clear();
        engine.restart();
        let started = std::time::Instant::now();
        let mut logits = engine.feed(&tokens)?;
        let prefill = tokens.len() as f64 / started.elapsed().as_secs_f64();
        let started = std::time::Instant::now();
        for _ in 0..reply {
            let next = (0..logits.len()).max_by(|a, b| logits[*a].total_cmp(&logits[*b])).unwrap_or(0) as u32;
            logits = engine.feed(&[next])?;
        }
        let decode = reply as f64 / started.elapsed().as_secs_f64();
        Ok(Speed { prefill, decode })
    }
}

#[async_trait::async_trait]
impl Brain for LocalModel {
    fn describe(&self) -> String {
        format!("local {} on the CPU", self.name)
    }

    async fn reply(&self, conversation: &Conversation, options: &ReplyOptions) -> Result<Reply, BrainError> {
        let offered: Vec<ToolSpec> = match &options.tool_choice {
            ToolChoice::Tool(name) => conversation.tools.iter().filter(|t| &t.name == name).cloned().collect(),
            ToolChoice::Among(names) => {
                conversation.tools.iter().filter(|t| names.contains(&t.name)).cloned().collect()
            }
            ToolChoice::Auto | ToolChoice::Any => conversation.tools.clone(),
        };
        if offered.is_empty() {
            return Err(BrainError::Refused(
                "the local model answers only with tool calls, and no tool was offered".into(),
            ));
        }
        let pointless = pointless_calls(conversation);
        let engine = Arc::clone(&self.engine);
        let call_id = format!("local_{}", conversation.messages.len());
        let conversation = conversation.clone();
        let budget = options.max_tokens as usize;
        let temperature = options.temperature;
        let work = tokio::task::spawn_blocking(move || {
            let mut engine = engine.lock().unwrap_or_else(|e| e.into_inner());
            let (prompt, system) = engine.prompt(&conversation, budget.min(1024))?;
            let mut tools = offered;
            let mut written = 0;
            let mut draws: BTreeMap<String, u32> = BTreeMap::new();
            // Seeded by the conversation so far: the same conversation gets the same reply.
            let seed =
                prompt.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, t| (h ^ u64::from(*t)).wrapping_mul(0x100_0000_01b3));
            let mut attempt = 0u64;
            loop {
                let logits = engine.begin(&prompt, system)?;
                let left = budget.saturating_sub(written);
                let mut writer = decode::Writer::new(&mut engine, logits, left, temperature, seed ^ attempt);
                let (name, arguments) = writer.tool_call(&tools)?;
                written += writer.written();
                attempt += 1;
                // A small model's likeliest call is often one it just made or one that failed;
                // the agent's guards would refuse it. The model draws again (at a temperature,
                // the same tool may come with other values), then without that tool.
                if attempt < MAX_DRAWS && pointless.contains(&(name.clone(), canonical_arguments(&arguments))) {
                    let drawn = draws.entry(name.clone()).or_default();
                    *drawn += 1;
                    if (temperature.is_none() || *drawn >= 2) && tools.len() > 1 {
                        tools.retain(|t| t.name != name);
                    }
                    continue;
                }
                return Ok::<_, String>((prompt.len(), written, name, arguments));
            }
        });
        let (input, output, name, arguments) = work
            .await
            .map_err(|e| BrainError::Refused(format!("the local model failed: {e}")))?
            .map_err(|e| BrainError::Refused(format!("the local model failed: {e}")))?;
        Ok(Reply {
            text: String::new(),
            reasoning: String::new(),
            tool_calls: vec![ToolCall { id: call_id, name, arguments }],
            usage: Usage { input_tokens: input as u64, output_tokens: output as u64, estimated: false },
            stop: StopReason::ToolUse,
        })
    }
}

/// Calls not worth making again: the last few made (the agent's guards end a session that
/// repeats itself or cycles), and any that failed (tools answer the same call the same way).
fn pointless_calls(conversation: &Conversation) -> Vec<(String, String)> {
    let mut calls: BTreeMap<&str, (String, String)> = BTreeMap::new();
    let mut pointless = Vec::new();
    let mut recent = Vec::new();
    for message in &conversation.messages {
        match message {
            Message::Assistant { tool_calls, .. } => {
                for call in tool_calls {
                    let key = (call.name.clone(), canonical_arguments(&call.arguments));
                    calls.insert(&call.id, key.clone());
                    recent.push(key);
                }
            }
            Message::Tool { call_id, is_error: true, .. } => pointless.extend(calls.get(call_id.as_str()).cloned()),
            Message::Tool { .. } | Message::User { .. } => {}
        }
    }
    pointless.extend(recent.into_iter().rev().take(RECENT_CALLS));
    pointless
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str, name: &str, arguments: &str) -> Message {
        Message::Assistant {
            text: String::new(),
            tool_calls: vec![ToolCall { id: id.into(), name: name.into(), arguments: arguments.into() }],
        }
    }

    fn result(id: &str, is_error: bool) -> Message {
        Message::Tool { call_id: id.into(), content: "…".into(), is_error }
    }

    #[test]
    fn the_last_calls_and_the_failed_ones_are_not_worth_making_again() {
        let conversation = Conversation {
            system: String::new(),
            messages: vec![
                Message::User { text: "the lineage".into() },
                call("1", "read_file", r#"{"path": "a.py"}"#),
                result("1", true),
                call("2", "list_files", "{}"),
                result("2", false),
                call("3", "set_knob", r#"{"name":"lr","value":0.1}"#),
                result("3", false),
                call("4", "preflight", "{}"),
                result("4", false),
                call("5", "grep", r#"{"pattern":"x"}"#),
                result("5", false),
            ],
            tools: Vec::new(),
        };
        let pointless = pointless_calls(&conversation);
        let has = |name: &str, args: &str| pointless.contains(&(name.to_string(), canonical_arguments(args)));
        assert!(has("read_file", r#"{"path":"a.py"}"#), "it failed: {pointless:?}");
        assert!(has("set_knob", r#"{"value": 0.1, "name": "lr"}"#), "one of the last three, however spaced");
        assert!(has("preflight", "{}") && has("grep", r#"{"pattern":"x"}"#));
        assert!(!has("list_files", "{}"), "four calls back and it worked: {pointless:?}");
        assert!(!has("set_knob", r#"{"name":"lr","value":0.2}"#));
    }
}
