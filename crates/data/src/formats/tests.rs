use super::*;

/// Recognises `row`, expects `shape`, converts it to `to`, and compares with `expected`: a JSON
/// row, or `!reason` for a row that must not convert (the reason must contain the text).
fn check(row: Value, shape: Shape, to: Shape, expected: &str) {
    let Value::Object(row) = row else { panic!("a row is an object") };
    assert_eq!(recognise(&row), Some(shape), "recognised shape of {row:?}");
    let converted = read(&row, shape).and_then(|e| write(&e, to));
    match expected.strip_prefix('!') {
        Some(reason) => match converted {
            Err(Unmapped(why)) => assert!(why.contains(reason), "{row:?} -> {to}: `{why}` lacks `{reason}`"),
            Ok(v) => panic!("{row:?} -> {to} converted to {v}, expected it to be refused: {reason}"),
        },
        None => {
            let expected: Value = serde_json::from_str(expected).expect("expected JSON");
            assert_eq!(converted.unwrap_or_else(|e| panic!("{row:?} -> {to}: {e}")), expected);
        }
    }
}

#[test]
fn alpaca_rows() {
    let row = json!({"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"});
    check(
        row.clone(),
        Shape::Alpaca,
        Shape::Messages,
        r#"{"messages": [{"role": "user", "content": "Add the numbers.\n\n2 and 3"}, {"role": "assistant", "content": "5"}]}"#,
    );
    check(
        row.clone(),
        Shape::Alpaca,
        Shape::PromptCompletion,
        r#"{"prompt": "Add the numbers.\n\n2 and 3", "completion": "5"}"#,
    );
    check(
        row.clone(),
        Shape::Alpaca,
        Shape::PromptAnswer,
        r#"{"prompt": "Add the numbers.\n\n2 and 3", "answer": "5"}"#,
    );
    check(
        row,
        Shape::Alpaca,
        Shape::Sharegpt,
        r#"{"conversations": [{"from": "human", "value": "Add the numbers.\n\n2 and 3"}, {"from": "gpt", "value": "5"}]}"#,
    );
    // Dolly's names, and an empty input that adds nothing.
    check(
        json!({"instruction": "Name a colour.", "context": "", "response": "Blue."}),
        Shape::Alpaca,
        Shape::Alpaca,
        r#"{"instruction": "Name a colour.", "input": "", "output": "Blue."}"#,
    );
    check(json!({"instruction": "x", "output": "y"}), Shape::Alpaca, Shape::Preference, "!no rejected reply");
}

#[test]
fn sharegpt_and_messages_rows() {
    let sharegpt = json!({"system": "Be brief.", "conversations": [
        {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello."},
        {"from": "human", "value": "Bye"}, {"from": "gpt", "value": "Bye."}]});
    check(
        sharegpt.clone(),
        Shape::Sharegpt,
        Shape::Messages,
        r#"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Bye."}]}"#,
    );
    check(sharegpt.clone(), Shape::Sharegpt, Shape::PromptCompletion, "!a conversation of 2 turns");
    check(sharegpt, Shape::Sharegpt, Shape::Alpaca, "!a conversation of 2 turns");
    // OpenAI content parts are joined; a system message has no place in Alpaca or a prompt string.
    let messages = json!({"messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [{"type": "text", "text": "What is "}, {"type": "text", "text": "2+2?"}]},
        {"role": "assistant", "content": "4"}]});
    check(
        messages.clone(),
        Shape::Messages,
        Shape::Sharegpt,
        r#"{"conversations": [{"from": "system", "value": "You are terse."}, {"from": "human", "value": "What is 2+2?"}, {"from": "gpt", "value": "4"}]}"#,
    );
    check(messages.clone(), Shape::Messages, Shape::Alpaca, "!no place for a system message");
    check(messages, Shape::Messages, Shape::PromptCompletion, "!no place for the system message");
    check(
        json!({"messages": [{"role": "user", "content": "Hi"}]}),
        Shape::Messages,
        Shape::Messages,
        "!no assistant reply",
    );
    check(
        json!({"messages": [{"role": "narrator", "content": "Once"}]}),
        Shape::Messages,
        Shape::Messages,
        "!role `narrator`",
    );
    check(json!({"messages": []}), Shape::Messages, Shape::Sharegpt, "!empty");
    check(
        json!({"messages": [{"role": "user", "content": {"image": 1}}, {"role": "assistant", "content": "x"}]}),
        Shape::Messages,
        Shape::Messages,
        "!message 1 has no text",
    );
}

#[test]
fn prompt_completion_and_answer_rows() {
    check(
        json!({"prompt": "2+2=", "completion": "4"}),
        Shape::PromptCompletion,
        Shape::Messages,
        r#"{"messages": [{"role": "user", "content": "2+2="}, {"role": "assistant", "content": "4"}]}"#,
    );
    // TRL's conversational prompt and completion.
    check(
        json!({"prompt": [{"role": "user", "content": "Hi"}], "completion": [{"role": "assistant", "content": "Hey"}]}),
        Shape::PromptCompletion,
        Shape::PromptCompletion,
        r#"{"prompt": "Hi", "completion": "Hey"}"#,
    );
    check(
        json!({"question": "Natalia sold 48 clips...", "answer": "... #### 72"}),
        Shape::PromptAnswer,
        Shape::PromptAnswer,
        r#"{"prompt": "Natalia sold 48 clips...", "answer": "... #### 72"}"#,
    );
    check(
        json!({"problem": "1+1?", "ground_truth": 2}),
        Shape::PromptAnswer,
        Shape::Messages,
        r#"{"messages": [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}]}"#,
    );
    check(
        json!({"prompt": "p", "answer": {"x": 1}}),
        Shape::PromptAnswer,
        Shape::Messages,
        "!not a string or a number",
    );
}

#[test]
fn preference_rows() {
    let explicit = json!({"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."});
    check(
        explicit.clone(),
        Shape::Preference,
        Shape::Preference,
        r#"{"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."}"#,
    );
    check(explicit.clone(), Shape::Preference, Shape::Messages, "!--chosen-only");
    check(explicit, Shape::Preference, Shape::PromptAnswer, "!no single answer");
    // TRL's implicit prompt: two whole conversations sharing their start.
    check(
        json!({"chosen": [{"role": "user", "content": "Sky colour?"}, {"role": "assistant", "content": "Blue."}],
               "rejected": [{"role": "user", "content": "Sky colour?"}, {"role": "assistant", "content": "Green."}]}),
        Shape::Preference,
        Shape::Preference,
        r#"{"prompt": "Sky colour?", "chosen": "Blue.", "rejected": "Green."}"#,
    );
    // Anthropic HH transcripts.
    check(
        json!({"chosen": "\n\nHuman: Is water wet?\n\nAssistant: Yes, in everyday use.",
               "rejected": "\n\nHuman: Is water wet?\n\nAssistant: No."}),
        Shape::Preference,
        Shape::Preference,
        r#"{"prompt": "Is water wet?", "chosen": "Yes, in everyday use.", "rejected": "No."}"#,
    );
    check(
        json!({"chosen": "\n\nHuman: A\n\nAssistant: B\n\nHuman: C\n\nAssistant: D",
               "rejected": "\n\nHuman: A\n\nAssistant: B\n\nHuman: C\n\nAssistant: E"}),
        Shape::Preference,
        Shape::Preference,
        "!this one has 3 messages",
    );
    check(
        json!({"chosen": "Paris.", "rejected": "Lyon."}),
        Shape::Preference,
        Shape::Preference,
        "!text before the first Human:",
    );
    check(
        json!({"chosen": "\n\nHuman: A\n\nAssistant: B", "rejected": "\n\nHuman: Z\n\nAssistant: B"}),
        Shape::Preference,
        Shape::Preference,
        "!share no prompt",
    );
}

#[test]
fn the_chosen_side_of_a_pair_is_a_conversation() {
    let Value::Object(row) = json!({"prompt": "Q", "chosen": "good", "rejected": "bad"}) else { unreachable!() };
    let e = chosen_only(read(&row, Shape::Preference).unwrap());
    assert_eq!(write(&e, Shape::PromptCompletion).unwrap(), json!({"prompt": "Q", "completion": "good"}));
}

#[test]
fn rows_of_no_known_shape_are_not_guessed() {
    for row in [
        json!({"text": "plain pretraining text"}),
        json!({"prompt": "only a prompt"}),
        json!({"instruction": "x"}),
        json!({}),
    ] {
        let Value::Object(row) = row else { unreachable!() };
        assert_eq!(recognise(&row), None, "{row:?}");
    }
    assert_eq!(Shape::parse("prompt-completion"), Some(Shape::PromptCompletion));
    assert_eq!(Shape::parse("chatml"), None);
    for s in Shape::ALL {
        assert_eq!(Shape::parse(s.as_str()), Some(s));
    }
}
