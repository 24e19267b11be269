//! Unit tests of the reasoning fields, the template variables they make and the token
//! attribution of [`ReasoningTracker`].

use serde_json::json;

use super::*;

fn param_of(thinking: Value, effort: Value, kwargs: Value) -> String {
    match request(Some(&thinking), Some(&effort), Some(&kwargs)) {
        Ok(r) => panic!("accepted: {r:?}"),
        Err(e) => e.param().unwrap_or("<none>").to_string(),
    }
}

#[test]
fn thinking_fields_are_read_and_checked() {
    let r = request(Some(&json!({"type": "disabled"})), None, None).expect("valid");
    assert_eq!(r.thinking, Some(false));
    let r = request(
        None,
        Some(&json!("high")),
        Some(&json!({"enable_thinking": true, "x": [1]})),
    )
    .expect("valid");
    assert_eq!((r.thinking, r.effort), (Some(true), Some(Effort::High)));
    assert_eq!(r.template_kwargs.get("x"), Some(&json!([1])));
    let none = request(None, None, None).expect("valid");
    assert_eq!(none, ReasoningRequest::default());

    assert_eq!(
        param_of(json!({"type": "maybe"}), Value::Null, Value::Null),
        "thinking.type"
    );
    assert_eq!(param_of(json!(true), Value::Null, Value::Null), "thinking");
    assert_eq!(
        param_of(Value::Null, json!("extreme"), Value::Null),
        "reasoning_effort"
    );
    assert_eq!(
        param_of(Value::Null, json!(3), Value::Null),
        "reasoning_effort"
    );
    assert_eq!(
        param_of(Value::Null, Value::Null, json!("enable_thinking=false")),
        "chat_template_kwargs"
    );
    assert_eq!(
        param_of(Value::Null, Value::Null, json!({"enable_thinking": "no"})),
        "chat_template_kwargs.enable_thinking"
    );
    assert_eq!(
        param_of(Value::Null, Value::Null, json!({"messages": []})),
        "chat_template_kwargs.messages"
    );
    assert_eq!(
        param_of(
            json!({"type": "enabled"}),
            Value::Null,
            json!({"enable_thinking": false})
        ),
        "thinking"
    );
}

#[test]
fn message_reasoning_is_a_string_on_assistant_messages() {
    assert_eq!(
        message_reasoning(1, "assistant", Some(&json!("hm"))).expect("valid"),
        Some("hm".to_string())
    );
    assert_eq!(message_reasoning(0, "user", None).expect("valid"), None);
    for (role, value) in [("assistant", json!(5)), ("user", json!("x"))] {
        let e = message_reasoning(2, role, Some(&value)).expect_err("refused");
        assert_eq!(e.param(), Some("messages[2].reasoning_content"));
    }
}

#[test]
fn template_variables_follow_the_template_and_the_default() {
    let qwen = TemplateReasoning::of_source("{% if enable_thinking is defined %}<think>");
    let r1 = TemplateReasoning::of_source("<|Assistant|><think>\n");
    let plain = TemplateReasoning::of_source("{{ messages[0].content }}");
    // DeepSeek V3.1 style: a bare `thinking` variable; a message field or a string is not one.
    let v31 = TemplateReasoning::of_source(
        "{%- if not thinking is defined %}{% set thinking = false %}{% endif %}\
         {% if thinking %}<think>{% else %}</think>{% endif %}",
    );
    let field = TemplateReasoning::of_source("{{ message.thinking }}{{ 'thinking' }} thinking");
    assert_eq!((qwen.switch, qwen.thinks), (Some("enable_thinking"), true));
    assert_eq!((r1.switch, r1.thinks), (None, true));
    assert_eq!((v31.switch, v31.thinks), (Some("thinking"), true));
    assert_eq!((field.switch, field.thinks), (None, false));
    assert!(!plain.thinks);

    let off = ReasoningRequest {
        thinking: Some(false),
        effort: Some(Effort::Low),
        ..ReasoningRequest::default()
    };
    let vars = template_variables(&off, qwen, true);
    assert_eq!(vars.get("enable_thinking"), Some(&json!(false)));
    assert_eq!(vars.get("reasoning_effort"), Some(&json!("low")));
    // A template that does not read enable_thinking does not get it.
    assert!(!template_variables(&off, r1, true).contains_key("enable_thinking"));
    // The server default applies when the request says nothing.
    let vars = template_variables(&ReasoningRequest::default(), qwen, false);
    assert_eq!(vars.get("enable_thinking"), Some(&json!(false)));
    let vars = template_variables(&off, v31, true);
    assert_eq!(vars.get("thinking"), Some(&json!(false)));
    assert!(!vars.contains_key("enable_thinking"));
    // The kwargs' own value of the switch is never overridden.
    let mut kwargs = ReasoningRequest::default();
    kwargs
        .template_kwargs
        .insert("thinking".into(), json!(true));
    assert_eq!(
        template_variables(&kwargs, v31, false)["thinking"],
        json!(true)
    );
}

/// Pushes each token and returns (reasoning, content, reasoning tokens).
fn split(starts: bool, tokens: &[&str]) -> (Option<String>, String, usize) {
    split_whole(starts, tokens.iter().copied(), "")
}

#[test]
fn tokens_inside_the_block_and_its_tags_count_as_reasoning() {
    // Open tag, 2 tokens of reasoning, close tag, 2 tokens of answer.
    let (r, c, n) = split(false, &["<think>", "a", " b", "</think>", "\n\nYes", "."]);
    assert_eq!((r.as_deref(), c.as_str(), n), (Some("a b"), "Yes.", 4));
    // A close tag split over tokens, the last one straddling into the answer: reasoning.
    let (r, c, n) = split(true, &["x", "</", "think>\n\nA", "B"]);
    assert_eq!((r.as_deref(), c.as_str(), n), (Some("x"), "AB", 3));
    // Whitespace and a partial open tag before the block count once it opens.
    let (r, _, n) = split(false, &["\n", "<", "think>", "r", "</think>"]);
    assert_eq!((r.as_deref(), n), (Some("r"), 5));
    // A whole block in one token.
    let (r, c, n) = split(false, &[" ", "<think>a</think>b", "c"]);
    assert_eq!((r.as_deref(), c.as_str(), n), (Some("a"), "bc", 2));
}

#[test]
fn output_without_reasoning_has_no_reasoning_tokens() {
    let (r, c, n) = split(false, &[" ", "<", "b>", " <think>"]);
    assert_eq!((r, c.as_str(), n), (None, " <b> <think>", 0));
    // The prompt opened the block and the model never closed it: all reasoning.
    let (r, c, n) = split(true, &["a", "b", "c"]);
    assert_eq!((r.as_deref(), c.as_str(), n), (Some("abc"), "", 3));
}

#[test]
fn a_prefix_decides_by_its_last_tag() {
    assert!(still_open(true, "Let me see"));
    assert!(!still_open(true, "Hmm.</think>\n\nThe answer"));
    assert!(still_open(false, "<think>\nFirst"));
    assert!(!still_open(false, "<think>a</think> b"));
    assert!(!still_open(false, "plain"));
}
