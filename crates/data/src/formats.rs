//! The shapes post-training data comes in, recognised row by row and converted between: Alpaca
//! (instruction / input / output), ShareGPT conversations, OpenAI-style messages, prompt /
//! completion, preference pairs (prompt / chosen / rejected, with strings, message lists or
//! Anthropic HH transcripts) and prompt / answer for reinforcement learning with verifiable
//! rewards.
//!
//! Every row is read into one of three meanings (a conversation to imitate, a preferred and a
//! rejected reply to the same prompt, or a prompt with a checkable answer) and written out in the
//! target shape. A row the target cannot hold without losing something (a system message in
//! Alpaca, a multi-turn prompt in a single prompt string, a conversation with no rejected reply
//! as a preference pair) is not written, and the reason is returned instead: nothing is dropped
//! in silence.

use crate::read::scan::{Fields, View};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::fmt;

/// A row shape postdoc recognises and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// `{"messages": [{"role", "content"}, ...]}`
    Messages,
    /// `{"conversations": [{"from", "value"}, ...]}`
    Sharegpt,
    /// `{"instruction", "input", "output"}` (also Dolly's `context` / `response`)
    Alpaca,
    /// `{"prompt", "completion"}` (also `response`)
    PromptCompletion,
    /// `{"prompt", "chosen", "rejected"}`
    Preference,
    /// `{"prompt", "answer"}` (also `question`, `problem`; `ground_truth`, `final_answer`, `solution`)
    PromptAnswer,
}

impl Shape {
    pub const ALL: [Shape; 6] = [
        Shape::Messages,
        Shape::Sharegpt,
        Shape::Alpaca,
        Shape::PromptCompletion,
        Shape::Preference,
        Shape::PromptAnswer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Shape::Messages => "messages",
            Shape::Sharegpt => "sharegpt",
            Shape::Alpaca => "alpaca",
            Shape::PromptCompletion => "prompt-completion",
            Shape::Preference => "preference",
            Shape::PromptAnswer => "prompt-answer",
        }
    }

    pub fn parse(name: &str) -> Option<Shape> {
        Shape::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The columns a row of this shape has when written, in order.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Shape::Messages => &["messages"],
            Shape::Sharegpt => &["conversations"],
            Shape::Alpaca => &["instruction", "input", "output"],
            Shape::PromptCompletion => &["prompt", "completion"],
            Shape::Preference => &["prompt", "chosen", "rejected"],
            Shape::PromptAnswer => &["prompt", "answer"],
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }

    /// A role by any of the names datasets use for it.
    fn parse(name: &str) -> Option<Role> {
        Some(match name.to_ascii_lowercase().as_str() {
            "system" => Role::System,
            "user" | "human" | "prompter" => Role::User,
            "assistant" | "gpt" | "chatgpt" | "bard" | "bing" | "model" | "bot" => Role::Assistant,
            "tool" | "function" | "observation" | "ipython" => Role::Tool,
            _ => return None,
        })
    }

    /// ShareGPT's name for it.
    fn sharegpt(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "human",
            Role::Assistant => "gpt",
            Role::Tool => "tool",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    fn new(role: Role, content: impl Into<String>) -> Message {
        Message { role, content: content.into() }
    }
}

/// What a row means, whatever shape it came in.
#[derive(Debug, Clone, PartialEq)]
pub enum Example {
    /// A conversation to learn to continue (the assistant's turns are the targets).
    Chat(Vec<Message>),
    /// Two replies to one prompt, the first preferred.
    Preference { prompt: Vec<Message>, chosen: Vec<Message>, rejected: Vec<Message> },
    /// A prompt whose reply can be checked against an answer.
    Verifiable { prompt: Vec<Message>, answer: String },
}

/// Why a row was not converted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Unmapped(pub String);

impl fmt::Display for Unmapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn unmapped<T>(why: impl Into<String>) -> Result<T, Unmapped> {
    Err(Unmapped(why.into()))
}

/// Field names for each part, most common first.
const PROMPT_KEYS: [&str; 3] = ["prompt", "question", "problem"];
const ANSWER_KEYS: [&str; 4] = ["answer", "ground_truth", "final_answer", "solution"];
const COMPLETION_KEYS: [&str; 2] = ["completion", "response"];

fn first_key<'a>(row: &'a Map<String, Value>, keys: &[&'static str]) -> Option<(&'static str, &'a Value)> {
    keys.iter().find_map(|k| row.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)))
}

/// The shape a row has, if it has one postdoc knows. Decided by the fields present, the most
/// specific first (a preference row also has a prompt; a message list beats loose fields).
pub fn recognise(row: &Map<String, Value>) -> Option<Shape> {
    recognise_fields(row)
}

/// [`recognise`] of a row however it was read.
pub(crate) fn recognise_fields(row: &impl Fields) -> Option<Shape> {
    let has = |k: &str| row.get(k).is_some_and(|v| !v.is_null());
    let is_array = |k: &str| row.get(k).is_some_and(View::is_array);
    if has("chosen") && has("rejected") {
        return Some(Shape::Preference);
    }
    if is_array("messages") {
        return Some(Shape::Messages);
    }
    if is_array("conversations") || is_array("conversation") {
        return Some(Shape::Sharegpt);
    }
    if has("instruction") && (has("output") || has("response")) {
        return Some(Shape::Alpaca);
    }
    if PROMPT_KEYS.iter().any(|k| has(k)) {
        if COMPLETION_KEYS.iter().any(|k| has(k)) {
            return Some(Shape::PromptCompletion);
        }
        if ANSWER_KEYS.iter().any(|k| has(k)) {
            return Some(Shape::PromptAnswer);
        }
    }
    None
}

/// Reads a row of shape `shape` into what it means.
pub fn read(row: &Map<String, Value>, shape: Shape) -> Result<Example, Unmapped> {
    match shape {
        Shape::Messages => {
            let list = row.get("messages").ok_or_else(|| Unmapped("no `messages` field".into()))?;
            Ok(Example::Chat(messages(list, "role", "content")?))
        }
        Shape::Sharegpt => {
            let list = ["conversations", "conversation"]
                .iter()
                .find_map(|k| row.get(*k))
                .ok_or_else(|| Unmapped("no `conversations` field".into()))?;
            let mut turns = messages(list, "from", "value")?;
            if let Some(system) = row.get("system").and_then(Value::as_str).filter(|s| !s.is_empty())
                && turns.first().is_none_or(|m| m.role != Role::System)
            {
                turns.insert(0, Message::new(Role::System, system));
            }
            Ok(Example::Chat(turns))
        }
        Shape::Alpaca => {
            let instruction = text(row, "instruction")?;
            let input = ["input", "context"].iter().find_map(|k| row.get(*k).and_then(Value::as_str)).unwrap_or("");
            let output = ["output", "response"]
                .iter()
                .find_map(|k| row.get(*k).and_then(Value::as_str))
                .ok_or_else(|| Unmapped("no `output` text".into()))?;
            let user = if input.trim().is_empty() { instruction } else { format!("{instruction}\n\n{input}") };
            let mut turns = Vec::new();
            if let Some(system) = row.get("system").and_then(Value::as_str).filter(|s| !s.is_empty()) {
                turns.push(Message::new(Role::System, system));
            }
            turns.push(Message::new(Role::User, user));
            turns.push(Message::new(Role::Assistant, output));
            Ok(Example::Chat(turns))
        }
        Shape::PromptCompletion => {
            let (_, prompt) = first_key(row, &PROMPT_KEYS).ok_or_else(|| Unmapped("no prompt".into()))?;
            let (_, completion) = first_key(row, &COMPLETION_KEYS).ok_or_else(|| Unmapped("no completion".into()))?;
            let mut turns = prompt_turns(prompt)?;
            turns.extend(reply_turns(completion)?);
            Ok(Example::Chat(turns))
        }
        Shape::PromptAnswer => {
            let (_, prompt) = first_key(row, &PROMPT_KEYS).ok_or_else(|| Unmapped("no prompt".into()))?;
            let (key, answer) = first_key(row, &ANSWER_KEYS).ok_or_else(|| Unmapped("no answer".into()))?;
            let answer = match answer {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return unmapped(format!("`{key}` is not a string or a number")),
            };
            Ok(Example::Verifiable { prompt: prompt_turns(prompt)?, answer })
        }
        Shape::Preference => {
            let chosen = row.get("chosen").ok_or_else(|| Unmapped("no `chosen` reply".into()))?;
            let rejected = row.get("rejected").ok_or_else(|| Unmapped("no `rejected` reply".into()))?;
            match first_key(row, &PROMPT_KEYS) {
                Some((_, prompt)) => {
                    let prompt = prompt_turns(prompt)?;
                    Ok(Example::Preference { prompt, chosen: reply_turns(chosen)?, rejected: reply_turns(rejected)? })
                }
                // Without a prompt, both replies are whole conversations (TRL's implicit prompt,
                // Anthropic HH's transcripts): the prompt is what they share.
                None => {
                    let chosen = conversation(chosen)?;
                    let rejected = conversation(rejected)?;
                    let shared = chosen.iter().zip(&rejected).take_while(|(a, b)| a == b).count();
                    let shared = chosen[..shared].iter().rposition(|m| m.role != Role::Assistant).map_or(0, |i| i + 1);
                    if shared == 0 {
                        return unmapped("`chosen` and `rejected` share no prompt");
                    }
                    if shared == chosen.len() || shared == rejected.len() {
                        return unmapped("`chosen` or `rejected` has no reply after the shared prompt");
                    }
                    Ok(Example::Preference {
                        prompt: chosen[..shared].to_vec(),
                        chosen: chosen[shared..].to_vec(),
                        rejected: rejected[shared..].to_vec(),
                    })
                }
            }
        }
    }
}

/// Writes what a row means in shape `to`, or says why it cannot be.
pub fn write(example: &Example, to: Shape) -> Result<Value, Unmapped> {
    // Each target takes one of the meanings; the others map where nothing is lost.
    let chat = || -> Result<Vec<Message>, Unmapped> {
        match example {
            Example::Chat(turns) => Ok(turns.clone()),
            Example::Verifiable { prompt, answer } => {
                let mut turns = prompt.clone();
                turns.push(Message::new(Role::Assistant, answer.clone()));
                Ok(turns)
            }
            Example::Preference { .. } => unmapped(
                "a preference pair is not one conversation (convert to preference, or keep the chosen reply with --chosen-only)",
            ),
        }
    };
    match to {
        Shape::Messages => {
            let turns = chat()?;
            check_chat(&turns)?;
            Ok(
                json!({ "messages": turns.iter().map(|m| json!({"role": m.role.as_str(), "content": m.content})).collect::<Vec<_>>() }),
            )
        }
        Shape::Sharegpt => {
            let turns = chat()?;
            check_chat(&turns)?;
            Ok(
                json!({ "conversations": turns.iter().map(|m| json!({"from": m.role.sharegpt(), "value": m.content})).collect::<Vec<_>>() }),
            )
        }
        Shape::Alpaca => {
            let turns = chat()?;
            let (prompt, reply) = single_turn(&turns, "alpaca")?;
            if prompt.iter().any(|m| m.role == Role::System) {
                return unmapped("alpaca has no place for a system message");
            }
            Ok(json!({"instruction": prompt[0].content, "input": "", "output": reply}))
        }
        Shape::PromptCompletion => {
            let turns = chat()?;
            let (prompt, reply) = single_turn(&turns, "prompt-completion")?;
            let prompt = one_prompt(prompt, "prompt-completion")?;
            Ok(json!({"prompt": prompt, "completion": reply}))
        }
        Shape::PromptAnswer => match example {
            Example::Verifiable { prompt, answer } => {
                Ok(json!({"prompt": one_prompt(prompt, "prompt-answer")?, "answer": answer}))
            }
            Example::Chat(turns) => {
                let (prompt, reply) = single_turn(turns, "prompt-answer")?;
                Ok(json!({"prompt": one_prompt(prompt, "prompt-answer")?, "answer": reply}))
            }
            Example::Preference { .. } => unmapped("a preference pair has no single answer"),
        },
        Shape::Preference => match example {
            Example::Preference { prompt, chosen, rejected } => {
                let prompt = one_prompt(prompt, "preference")?;
                let reply = |turns: &[Message], which: &str| -> Result<String, Unmapped> {
                    match turns {
                        [m] if m.role == Role::Assistant => Ok(m.content.clone()),
                        _ => unmapped(format!("the {which} reply is not one assistant message")),
                    }
                };
                Ok(
                    json!({"prompt": prompt, "chosen": reply(chosen, "chosen")?, "rejected": reply(rejected, "rejected")?}),
                )
            }
            _ => unmapped("no rejected reply to make a preference pair"),
        },
    }
}

/// Keeps only the preferred side of a preference pair, as a conversation.
pub fn chosen_only(example: Example) -> Example {
    match example {
        Example::Preference { mut prompt, chosen, .. } => {
            prompt.extend(chosen);
            Example::Chat(prompt)
        }
        other => other,
    }
}

fn check_chat(turns: &[Message]) -> Result<(), Unmapped> {
    if !turns.iter().any(|m| m.role == Role::Assistant) {
        return unmapped("the conversation has no assistant reply to learn");
    }
    Ok(())
}

/// A conversation that is a prompt followed by one assistant reply.
fn single_turn<'a>(turns: &'a [Message], to: &str) -> Result<(&'a [Message], &'a str), Unmapped> {
    match turns.split_last() {
        Some((last, prompt)) if last.role == Role::Assistant && !prompt.is_empty() => {
            if prompt.iter().any(|m| m.role == Role::Assistant || m.role == Role::Tool) {
                let turns = prompt.iter().filter(|m| m.role == Role::User).count();
                return unmapped(format!("a conversation of {turns} turns does not fit {to}, which holds one"));
            }
            Ok((prompt, &last.content))
        }
        _ => unmapped(format!("the conversation does not end with an assistant reply to a prompt, as {to} needs")),
    }
}

/// A prompt that is one user message (a system message cannot be held in a prompt string).
fn one_prompt(prompt: &[Message], to: &str) -> Result<String, Unmapped> {
    match prompt {
        [m] if m.role == Role::User => Ok(m.content.clone()),
        _ if prompt.iter().any(|m| m.role == Role::System) => {
            unmapped(format!("{to} holds the prompt as one string, with no place for the system message"))
        }
        _ => unmapped(format!("{to} holds the prompt as one string, and this one has {} messages", prompt.len())),
    }
}

fn text(row: &Map<String, Value>, key: &str) -> Result<String, Unmapped> {
    match row.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => unmapped(format!("`{key}` is not a string")),
        None => unmapped(format!("no `{key}` field")),
    }
}

/// A list of messages, each an object with a role and a content field.
fn messages(list: &Value, role_key: &str, content_key: &str) -> Result<Vec<Message>, Unmapped> {
    let Value::Array(items) = list else { return unmapped("the message list is not a list") };
    if items.is_empty() {
        return unmapped("the message list is empty");
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let name = item.get(role_key).and_then(Value::as_str).unwrap_or("");
            let role = Role::parse(name)
                .ok_or_else(|| Unmapped(format!("message {} has role `{name}`, which postdoc does not know", i + 1)))?;
            let content = content(item.get(content_key))
                .ok_or_else(|| Unmapped(format!("message {} has no text in `{content_key}`", i + 1)))?;
            Ok(Message::new(role, content))
        })
        .collect()
}

/// The text of a message's content: a string, or OpenAI's list of parts (text parts joined).
fn content(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Null => Some(String::new()),
        Value::Array(parts) => {
            let texts: Option<Vec<&str>> = parts
                .iter()
                .map(|p| match p {
                    Value::String(s) => Some(s.as_str()),
                    _ if p.get("type").and_then(Value::as_str) == Some("text") => p.get("text").and_then(Value::as_str),
                    _ => None,
                })
                .collect();
            texts.map(|t| t.join(""))
        }
        _ => None,
    }
}

/// A prompt: a string (one user message) or a list of messages.
fn prompt_turns(value: &Value) -> Result<Vec<Message>, Unmapped> {
    match value {
        Value::String(s) => Ok(vec![Message::new(Role::User, s.clone())]),
        Value::Array(_) => messages(value, "role", "content"),
        _ => unmapped("the prompt is neither a string nor a list of messages"),
    }
}

/// A reply: a string (one assistant message) or a list of messages.
fn reply_turns(value: &Value) -> Result<Vec<Message>, Unmapped> {
    match value {
        Value::String(s) => Ok(vec![Message::new(Role::Assistant, s.clone())]),
        Value::Array(_) => messages(value, "role", "content"),
        _ => unmapped("the reply is neither a string nor a list of messages"),
    }
}

/// A whole conversation: a list of messages, or an Anthropic HH transcript
/// (`"\n\nHuman: ... \n\nAssistant: ..."`).
fn conversation(value: &Value) -> Result<Vec<Message>, Unmapped> {
    match value {
        Value::Array(_) => messages(value, "role", "content"),
        Value::String(s) => transcript(s),
        _ => unmapped("a reply is neither a string nor a list of messages"),
    }
}

fn transcript(text: &str) -> Result<Vec<Message>, Unmapped> {
    const MARKS: [(&str, Role); 2] = [("\n\nHuman:", Role::User), ("\n\nAssistant:", Role::Assistant)];
    let mut turns: Vec<Message> = Vec::new();
    let mut rest = text;
    let mut current: Option<Role> = None;
    loop {
        let next = MARKS
            .iter()
            .filter_map(|(mark, role)| rest.find(mark).map(|at| (at, *mark, *role)))
            .min_by_key(|(at, _, _)| *at);
        let (body, after) = match next {
            Some((at, mark, role)) => (&rest[..at], Some((mark, role, at))),
            None => (rest, None),
        };
        match current {
            Some(role) => turns.push(Message::new(role, body.trim())),
            None if !body.trim().is_empty() => return unmapped("text before the first Human: or Assistant: turn"),
            None => {}
        }
        match after {
            Some((mark, role, at)) => {
                current = Some(role);
                rest = &rest[at + mark.len()..];
            }
            None => break,
        }
    }
    if turns.is_empty() {
        return unmapped("a reply string that is not a Human:/Assistant: transcript");
    }
    Ok(turns)
}

#[cfg(test)]
mod tests;
