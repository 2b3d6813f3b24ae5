//! The conversation as a ChatML prompt, with the tools described the way small instruct models
//! were taught (a `<tools>` list in the system turn, calls as `<tool_call>` JSON).

use postdoc_brain::{Conversation, Message};

/// Longest tool result or message a small model is shown, in characters; its context is short
/// and every token of prompt costs time on a CPU.
pub(crate) const MAX_MESSAGE: usize = 1500;

/// The system turn alone: it opens every prompt of a study's proposals, so its state is kept.
pub(crate) fn system(conversation: &Conversation) -> String {
    let tools: Vec<serde_json::Value> = conversation
        .tools
        .iter()
        .map(|t| serde_json::json!({"name": t.name, "description": t.description, "parameters": t.parameters}))
        .collect();
    format!(
        "<|im_start|>system\n{}\n\nYou have access to these tools:\n<tools>\n{}\n</tools>\nCall one tool per turn, as \
         <tool_call>{{\"name\": ..., \"arguments\": {{...}}}}</tool_call>.<|im_end|>\n",
        conversation.system.trim(),
        tools.iter().map(|t| t.to_string()).collect::<Vec<_>>().join("\n"),
    )
}

pub(crate) fn render(conversation: &Conversation) -> String {
    let mut out = system(conversation);
    for message in &conversation.messages {
        match message {
            Message::User { text } => {
                out.push_str(&format!("<|im_start|>user\n{}<|im_end|>\n", clip(text)));
            }
            Message::Assistant { text, tool_calls } => {
                out.push_str("<|im_start|>assistant\n");
                if !text.trim().is_empty() {
                    out.push_str(&clip(text));
                    out.push('\n');
                }
                for call in tool_calls {
                    let arguments: serde_json::Value = serde_json::from_str(&call.arguments)
                        .unwrap_or(serde_json::Value::String(call.arguments.clone()));
                    // Name first, as the model writes its calls.
                    let name = serde_json::Value::String(call.name.clone());
                    out.push_str(&format!(
                        "<tool_call>\n{{\"name\": {name}, \"arguments\": {arguments}}}\n</tool_call>"
                    ));
                }
                out.push_str("<|im_end|>\n");
            }
            Message::Tool { content, is_error, .. } => {
                let head = if *is_error { "The call failed: " } else { "" };
                out.push_str(&format!(
                    "<|im_start|>user\n<tool_response>\n{head}{}\n</tool_response><|im_end|>\n",
                    clip(content)
                ));
            }
        }
    }
    out.push_str("<|im_start|>assistant\n");
    out
}

fn clip(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= MAX_MESSAGE {
        return text.to_string();
    }
    let head: String = text.chars().take(MAX_MESSAGE).collect();
    format!("{head}\n… (cut)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use postdoc_brain::{ToolCall, ToolSpec};

    #[test]
    fn a_conversation_renders_as_chatml_ending_with_the_assistants_turn() {
        let conversation = Conversation {
            system: "Tune the recipe.".into(),
            messages: vec![
                Message::User { text: "The lineage.".into() },
                Message::Assistant {
                    text: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "1".into(),
                        name: "set_knob".into(),
                        arguments: r#"{"name":"lr","value":0.1}"#.into(),
                    }],
                },
                Message::Tool { call_id: "1".into(), content: "lr = 0.1 (was 0.01)".into(), is_error: false },
            ],
            tools: vec![ToolSpec {
                name: "set_knob".into(),
                description: "Sets a knob.".into(),
                parameters: serde_json::json!({"type": "object"}),
            }],
        };
        let prompt = render(&conversation);
        assert!(
            prompt.starts_with("<|im_start|>system\nTune the recipe.\n\nYou have access to these tools:\n<tools>\n{")
        );
        assert!(
            prompt.contains("<tool_call>\n{\"name\": \"set_knob\", \"arguments\": {\"name\":\"lr\",\"value\":0.1}}\n</tool_call><|im_end|>"),
            "{prompt}"
        );
        assert!(prompt.contains("<tool_response>\nlr = 0.1 (was 0.01)\n</tool_response>"));
        assert!(prompt.ends_with("<|im_end|>\n<|im_start|>assistant\n"));
    }
}
