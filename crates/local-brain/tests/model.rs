//! The real model, run on the CPU: it loads, its tokenizer matches the file's, and its replies
//! are tool calls that parse and carry every required argument.

use postdoc_brain::{Brain, Conversation, Message, ReplyOptions, ToolSpec};
use postdoc_local_brain::LocalModel;
use std::path::Path;

fn model() -> LocalModel {
    let path = postdoc_local_brain::default_model(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("models")).unwrap();
    LocalModel::load(&path).unwrap()
}

fn tools() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "set_knob".into(),
            description: "Sets a knob of the recipe to a value within its range.".into(),
            parameters: serde_json::json!({
                "type": "object",
                "properties": {"name": {"type": "string", "enum": ["lr", "steps"]}, "value": {}},
                "required": ["name", "value"],
            }),
        },
        ToolSpec {
            name: "submit".into(),
            description: "Submits the change, with a one-line hypothesis.".into(),
            parameters: serde_json::json!({
                "type": "object",
                "properties": {"hypothesis": {"type": "string"}, "expected_delta": {"type": "number"}},
                "required": ["hypothesis", "expected_delta"],
            }),
        },
    ]
}

#[tokio::test]
async fn replies_are_tool_calls_that_parse_with_every_required_argument() {
    let brain = model();
    let mut conversation = Conversation {
        system: "You tune a training recipe. Set the learning rate knob `lr`, then submit.".into(),
        messages: vec![Message::User { text: "The learning rate is 0.001 and training is slow. Raise it.".into() }],
        tools: tools(),
    };
    for _ in 0..2 {
        let reply = brain.reply(&conversation, &ReplyOptions { max_tokens: 256, ..Default::default() }).await.unwrap();
        assert_eq!(reply.tool_calls.len(), 1);
        let call = &reply.tool_calls[0];
        let args: serde_json::Value = serde_json::from_str(&call.arguments).unwrap();
        let tool = conversation.tools.iter().find(|t| t.name == call.name).expect("a tool that was offered");
        for key in tool.parameters["required"].as_array().unwrap() {
            assert!(args.get(key.as_str().unwrap()).is_some(), "{} lacks {key}: {}", call.name, call.arguments);
        }
        if call.name == "set_knob" {
            assert!(["lr", "steps"].contains(&args["name"].as_str().unwrap()), "{args}");
        }
        assert!(reply.usage.input_tokens > 50 && reply.usage.output_tokens > 5, "{:?}", reply.usage);
        conversation.messages.push(Message::Assistant { text: String::new(), tool_calls: reply.tool_calls.clone() });
        conversation.messages.push(Message::Tool { call_id: call.id.clone(), content: "done".into(), is_error: false });
    }
    assert!(brain.describe().contains("SmolLM2-135M-Instruct"));
}

#[test]
fn a_file_that_is_not_a_model_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.gguf");
    std::fs::write(&path, b"not a model at all").unwrap();
    let err = LocalModel::load(&path).err().unwrap().to_string();
    assert!(err.contains("notes.gguf") && err.contains("not a model postdoc can run"), "{err}");
    let missing = LocalModel::load(&dir.path().join("absent.gguf")).err().unwrap().to_string();
    assert!(missing.contains("cannot read the model file"), "{missing}");
}
