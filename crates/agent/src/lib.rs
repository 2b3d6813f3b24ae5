//! LLM specialists: a model reads the lineage, looks at the recipe, edits it within its surface
//! through tools, checks the draft with a preflight and submits it as a trial.
//!
//! Each proposal is a fresh session (as in the CMU auto-research loop): the system prompt states
//! the specialist's role, surface and the study's rules; the first message is the lineage view.
//! Guards keep a session from burning the budget: caps on turns and tokens, the same call or a
//! short cycle of calls repeated (told once, then the session ends), malformed calls answered
//! with the parse error (and the proposal invalid after several in a row). A provider that stays
//! down makes the specialist unavailable, which is not a failed trial. Every prompt, call,
//! result and the model's reasoning go into the transcript, with the tokens and dollars spent.

mod brief;
mod guards;
mod tools;

pub use brief::Brief;

use postdoc_brain::anthropic::Anthropic;
use postdoc_brain::openai::OpenAiCompatible;
use postdoc_brain::{
    ApiKey, Brain, BrainError, Conversation, Endpoint, Message, ReplyOptions, RetryPolicy, Retrying, ToolChoice,
    canonical_arguments,
};
use postdoc_core::manifest::{BrainSpec, Provider};
use postdoc_core::transcript::EntryKind;
use postdoc_core::{Edit, Price, Proposal, ProposalRequest, ProposeError, Specialist, Transcript, Workbench};
use std::sync::Arc;
use tools::Outcome;

/// Limits and prices for one agent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgentSettings {
    /// Model replies per proposal.
    pub max_turns: u32,
    /// Tokens in and out per proposal.
    pub max_tokens: u64,
    /// Longest single reply.
    pub reply_tokens: u32,
    pub temperature: Option<f32>,
    pub price: Price,
    /// Walks a small model through the work: until the draft changes it may only look and
    /// change, after that only change, check and submit. Large models choose for themselves.
    pub guided: bool,
}

impl Default for AgentSettings {
    fn default() -> AgentSettings {
        AgentSettings {
            max_turns: 30,
            max_tokens: 400_000,
            reply_tokens: 4096,
            temperature: None,
            price: Price::default(),
            guided: false,
        }
    }
}

/// Malformed calls in a row after which the proposal is invalid.
const MALFORMED_IN_A_ROW: u32 = 3;
/// Replies in a row without a tool call after which the proposal is invalid.
const SILENT_IN_A_ROW: u32 = 3;

pub struct Agent {
    brief: Brief,
    brain: Arc<dyn Brain>,
    settings: AgentSettings,
}

impl Agent {
    pub fn new(brief: Brief, brain: Arc<dyn Brain>, settings: AgentSettings) -> Agent {
        Agent { brief, brain, settings }
    }
}

#[async_trait::async_trait]
impl Specialist for Agent {
    fn name(&self) -> &str {
        &self.brief.specialist
    }

    async fn propose(&self, request: ProposalRequest<'_>) -> Result<Proposal, ProposeError> {
        let Some(bench) = request.bench else {
            return Err(ProposeError::Unavailable("an agent needs a workbench to draft its change in".into()));
        };
        // A guided model may only name files that exist: small models make paths up.
        let files: Option<Vec<String>> = match self.settings.guided {
            true => {
                let listed = bench.list_files().await.map_err(|e| ProposeError::Unavailable(e.to_string()))?;
                Some(listed.into_iter().map(|(path, _)| path).collect())
            }
            false => None,
        };
        let system = self.brief.system_prompt(self.settings.max_turns);
        let first = self.brief.first_message(request.view, bench.parent(), request.best_knobs);
        let mut session = Session {
            agent: self,
            bench,
            conversation: Conversation {
                system: system.clone(),
                messages: vec![Message::User { text: first.clone() }],
                tools: tools::specs(&self.brief, files.as_deref()),
            },
            transcript: Transcript { brain: self.brain.describe(), ..Transcript::default() },
        };
        session.transcript.push(EntryKind::System, None, system, false);
        session.transcript.push(EntryKind::Prompt, None, first, false);
        let result = session.run().await;
        if let Err(e) = &result {
            session.transcript.push(EntryKind::Guard, None, e.to_string(), true);
        }
        bench.keep_transcript(session.transcript);
        result
    }
}

struct Session<'a> {
    agent: &'a Agent,
    bench: &'a dyn Workbench,
    conversation: Conversation,
    transcript: Transcript,
}

impl Session<'_> {
    async fn run(&mut self) -> Result<Proposal, ProposeError> {
        let settings = self.agent.settings;
        let mut options = ReplyOptions {
            max_tokens: settings.reply_tokens,
            temperature: settings.temperature,
            tool_choice: ToolChoice::Auto,
        };
        let mut repetition = guards::Repetition::default();
        let (mut malformed, mut silent) = (0, 0);
        // Whether the draft differs from where it started (a knob set or a file edited).
        let mut changed = false;
        loop {
            let spent = self.transcript.spend.input_tokens + self.transcript.spend.output_tokens;
            if self.transcript.turns >= settings.max_turns {
                return Err(invalid(format!("used all {} turns without submitting", settings.max_turns)));
            }
            if spent >= settings.max_tokens {
                return Err(invalid(format!(
                    "used {spent} tokens, over the cap of {} per proposal, without submitting",
                    settings.max_tokens
                )));
            }
            let left = settings.max_turns.saturating_sub(self.transcript.turns);
            if left == 2 && settings.max_turns > 2 {
                self.tell(if changed {
                    "Two turns left: submit your draft now, or this session's work is lost."
                } else {
                    "Two turns left: make your change now (set a knob or edit a file), then submit it, or this \
                     session's work is lost."
                });
            }
            options.tool_choice = if left == 1 && changed {
                // The last turn can only submit a changed draft: one handed in beats a session lost.
                ToolChoice::Tool("submit".into())
            } else if settings.guided {
                let phase: &[&str] = match (changed, self.agent.brief.knobs.is_empty()) {
                    (true, _) => &["submit", "preflight", "set_knob", "edit_file"],
                    (false, false) => &["set_knob", "edit_file"],
                    // A code edit quotes the text it replaces: the model reads first.
                    (false, true) => &["edit_file", "read_file", "list_files"],
                };
                ToolChoice::Among(phase.iter().map(|t| t.to_string()).collect())
            } else {
                ToolChoice::Auto
            };
            let reply = self.agent.brain.reply(&self.conversation, &options).await.map_err(|e| match e {
                BrainError::Refused(why) => ProposeError::Unavailable(format!("the provider refused: {why}")),
                other => ProposeError::Unavailable(other.to_string()),
            })?;
            self.transcript.turns += 1;
            let usage = reply.usage;
            self.transcript.spend += settings.price.spend(usage.input_tokens, usage.output_tokens, usage.estimated);
            if !reply.reasoning.trim().is_empty() {
                self.transcript.push(EntryKind::Reasoning, None, reply.reasoning.clone(), false);
            }
            if !reply.text.trim().is_empty() {
                self.transcript.push(EntryKind::Reply, None, reply.text.clone(), false);
            }
            self.conversation
                .messages
                .push(Message::Assistant { text: reply.text.clone(), tool_calls: reply.tool_calls.clone() });
            if reply.tool_calls.is_empty() {
                silent += 1;
                if silent >= SILENT_IN_A_ROW {
                    return Err(invalid(format!("replied {silent} times in a row without calling a tool")));
                }
                self.tell("Work through the tools: make your change, check it with preflight, then call submit.");
                continue;
            }
            silent = 0;
            let mut ended = None;
            for call in &reply.tool_calls {
                self.transcript.push(EntryKind::ToolCall, Some(&call.name), call.arguments.clone(), false);
                // Calls after the one that ended the session are answered, never run: every
                // call of a turn needs its result in the conversation.
                let outcome = if ended.is_some() {
                    Outcome::Refused("not run: the session ended with an earlier call".into())
                } else {
                    tools::call(&self.agent.brief, self.bench, &call.name, &call.arguments).await
                };
                let (mut content, is_error) = match outcome {
                    Outcome::Done(text) => {
                        malformed = 0;
                        match call.name.as_str() {
                            "set_knob" | "edit_file" => changed = true,
                            "start_from" => changed = false,
                            _ => {}
                        }
                        (text, false)
                    }
                    Outcome::Refused(why) => {
                        malformed = 0;
                        (why, true)
                    }
                    Outcome::Malformed(why) => {
                        malformed += 1;
                        if malformed >= MALFORMED_IN_A_ROW && ended.is_none() {
                            ended = Some(Err(invalid(format!(
                                "{malformed} malformed tool calls in a row; the last: {why}"
                            ))));
                        }
                        (why, true)
                    }
                    Outcome::Broken(why) => {
                        ended.get_or_insert(Err(ProposeError::Unavailable(format!("the workbench failed: {why}"))));
                        (format!("the workbench failed: {why}"), true)
                    }
                    Outcome::Submit { hypothesis, expected_delta, diff, cites } => {
                        ended.get_or_insert(Ok(Proposal {
                            specialist: self.agent.brief.specialist.clone(),
                            hypothesis,
                            expected_delta,
                            parent: Some(self.bench.parent()),
                            edit: Edit::Patch { diff },
                            cites,
                        }));
                        ("submitted".to_string(), false)
                    }
                };
                if ended.is_none() {
                    match repetition.observe(&call.name, &canonical_arguments(&call.arguments)) {
                        guards::Verdict::Fine => {}
                        guards::Verdict::Warn(w) => {
                            self.transcript.push(EntryKind::Guard, None, w.clone(), false);
                            content = format!("{content}\n\n{w}");
                        }
                        guards::Verdict::End(why) => ended = Some(Err(invalid(why))),
                    }
                }
                self.transcript.push(EntryKind::ToolResult, Some(&call.name), content.clone(), is_error);
                self.conversation.messages.push(Message::Tool { call_id: call.id.clone(), content, is_error });
            }
            if let Some(end) = ended {
                return end;
            }
        }
    }

    /// A message from postdoc to the model.
    fn tell(&mut self, text: &str) {
        self.transcript.push(EntryKind::Prompt, None, text, false);
        self.conversation.messages.push(Message::User { text: text.into() });
    }
}

fn invalid(why: String) -> ProposeError {
    ProposeError::Invalid(why)
}

/// The brain a manifest's `[brain]` describes, with retries, and the agent's limits from it.
/// The key is read from the environment variable the spec names (or the provider's usual one);
/// a server of one's own may need none.
pub fn connect(spec: &BrainSpec) -> Result<(Arc<dyn Brain>, AgentSettings), String> {
    let provider = spec.provider.ok_or("the brain names no provider")?;
    let defaults = AgentSettings::default();
    let settings = AgentSettings {
        max_turns: spec.max_turns.unwrap_or(defaults.max_turns),
        max_tokens: spec.max_tokens.unwrap_or(defaults.max_tokens),
        temperature: spec.temperature,
        price: spec.price.unwrap_or_default(),
        ..defaults
    };
    let policy = RetryPolicy::default();
    let brain: Arc<dyn Brain> = match provider {
        Provider::Openai => Arc::new(Retrying::new(
            OpenAiCompatible::new(endpoint(spec, provider)?).map_err(|e| e.to_string())?,
            policy,
        )),
        Provider::Anthropic => {
            Arc::new(Retrying::new(Anthropic::new(endpoint(spec, provider)?).map_err(|e| e.to_string())?, policy))
        }
        // A small model's replies are one tool call each: a few hundred tokens is plenty.
        Provider::Local => return Ok((local(spec)?, AgentSettings { reply_tokens: 512, guided: true, ..settings })),
    };
    Ok((brain, settings))
}

fn endpoint(spec: &BrainSpec, provider: Provider) -> Result<Endpoint, String> {
    let model = spec.model.clone().ok_or("the brain names no model")?;
    let base_url = spec.base_url.clone().unwrap_or_else(|| provider.default_base_url().to_string());
    let var = spec.api_key_env.clone().unwrap_or_else(|| provider.default_key_env().to_string());
    let key = ApiKey::from_env(&var);
    if key.is_none() && (spec.api_key_env.is_some() || base_url == provider.default_base_url()) {
        return Err(format!("the environment variable {var} holds no key for {}", provider.as_str()));
    }
    Ok(Endpoint::new(base_url, model, key))
}

/// The local model the spec names, or the default one (fetched once into the model cache).
fn local(spec: &BrainSpec) -> Result<Arc<dyn Brain>, String> {
    let file = match &spec.model {
        Some(file) => std::path::PathBuf::from(file),
        None => {
            let cache = postdoc_local_brain::model_cache();
            tracing::info!(cache = %cache.display(), "using the default local model");
            postdoc_local_brain::default_model(&cache).map_err(|e| e.to_string())?
        }
    };
    Ok(Arc::new(postdoc_local_brain::LocalModel::load(&file).map_err(|e| e.to_string())?))
}
