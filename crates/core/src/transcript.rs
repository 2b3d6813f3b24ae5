//! The audit record of a proposal made by a model: the exact prompt, every tool call and its
//! result, the model's reasoning, and what it cost. Stored with the trial and printed by
//! `postdoc show TRIAL --transcript`.

use serde::{Deserialize, Serialize};

/// What one entry of a transcript is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// The system prompt.
    System,
    /// A message to the model from postdoc (the lineage view, a nudge, a guard's warning).
    Prompt,
    /// Reasoning the provider streamed apart from the answer.
    Reasoning,
    /// The model's answer text.
    Reply,
    /// A call the model made; `text` holds its arguments as written.
    ToolCall,
    /// What the call returned.
    ToolResult,
    /// A guard ended the proposal or warned the model.
    Guard,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::System => "system",
            EntryKind::Prompt => "prompt",
            EntryKind::Reasoning => "reasoning",
            EntryKind::Reply => "reply",
            EntryKind::ToolCall => "tool call",
            EntryKind::ToolResult => "tool result",
            EntryKind::Guard => "guard",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: EntryKind,
    /// The tool, for calls and results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    pub text: String,
    /// A result that was an error (a refused edit, a malformed call).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
}

/// Tokens and dollars; summed per proposal, specialist and study.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Spend {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub dollars: f64,
    /// Some token counts were estimated because the provider reported none.
    #[serde(default)]
    pub estimated: bool,
}

impl std::ops::AddAssign for Spend {
    fn add_assign(&mut self, other: Spend) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.dollars += other.dollars;
        self.estimated |= other.estimated;
    }
}

/// Dollars per million tokens, from the study's configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

impl Price {
    pub fn spend(&self, input_tokens: u64, output_tokens: u64, estimated: bool) -> Spend {
        Spend {
            input_tokens,
            output_tokens,
            dollars: (input_tokens as f64 * self.input_per_mtok + output_tokens as f64 * self.output_per_mtok) / 1e6,
            estimated,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// Provider and model (never a key).
    pub brain: String,
    pub entries: Vec<Entry>,
    /// Model replies asked for.
    pub turns: u32,
    pub spend: Spend,
}

impl Transcript {
    pub fn push(&mut self, kind: EntryKind, tool: Option<&str>, text: impl Into<String>, is_error: bool) {
        self.entries.push(Entry { kind, tool: tool.map(str::to_string), text: text.into(), is_error });
    }

    /// The transcript as a person reads it.
    pub fn render(&self) -> String {
        let mut out = format!(
            "brain: {}\nturns: {}, tokens in {} out {}{}, ${:.4}\n",
            self.brain,
            self.turns,
            self.spend.input_tokens,
            self.spend.output_tokens,
            if self.spend.estimated { " (estimated)" } else { "" },
            self.spend.dollars
        );
        for e in &self.entries {
            let head = match (&e.tool, e.is_error) {
                (Some(tool), true) => format!("{} {tool} (error)", e.kind.as_str()),
                (Some(tool), false) => format!("{} {tool}", e.kind.as_str()),
                (None, _) => e.kind.as_str().to_string(),
            };
            out.push_str(&format!("\n── {head} ──\n{}\n", e.text.trim_end()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spend_prices_tokens_per_million() {
        let price = Price { input_per_mtok: 3.0, output_per_mtok: 15.0 };
        let mut total = price.spend(1_000_000, 0, false);
        total += price.spend(2_000, 1_000, true);
        assert_eq!(total.input_tokens, 1_002_000);
        assert!((total.dollars - (3.0 + 0.006 + 0.015)).abs() < 1e-12, "{}", total.dollars);
        assert!(total.estimated);
    }

    #[test]
    fn a_rendered_transcript_names_each_entry_and_its_tool() {
        let mut t = Transcript { brain: "local smollm2".into(), turns: 1, ..Default::default() };
        t.push(EntryKind::ToolCall, Some("edit"), r#"{"path":"eval.py"}"#, false);
        t.push(EntryKind::ToolResult, Some("edit"), "eval.py is protected", true);
        let text = t.render();
        assert!(text.contains("── tool call edit ──\n{\"path\":\"eval.py\"}"), "{text}");
        assert!(text.contains("── tool result edit (error) ──\neval.py is protected"), "{text}");
        assert!(text.starts_with("brain: local smollm2\nturns: 1"), "{text}");
    }
}
