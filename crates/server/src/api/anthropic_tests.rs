use kaiyuan_chat::Content;
use serde_json::json;

use super::*;

fn param(body: Value) -> String {
    match messages(&body) {
        Ok(_) => panic!("{body} accepted"),
        Err(e) => e.param().unwrap_or_default().to_string(),
    }
}

fn text(m: &Message) -> &str {
    match &m.content {
        Some(Content::Text(t)) => t,
        _ => "",
    }
}

#[test]
fn a_conversation_with_tools_becomes_chat_messages() {
    let p = messages(&json!({
        "model": "m", "max_tokens": 64, "system": [{"type": "text", "text": "Be brief."}],
        "stop_sequences": ["END"], "metadata": {"user_id": "u1"},
        "tools": [{"name": "get_weather", "description": "w",
                   "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "thinking": {"type": "enabled", "budget_tokens": 100},
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Use the tool.", "signature": "x"},
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}]},
                {"type": "text", "text": "And tomorrow?"}]}
        ]
    }))
    .unwrap();
    let roles: Vec<_> = p.messages.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool", "user"]);
    assert_eq!(text(&p.messages[0]), "Be brief.");
    assert_eq!(text(&p.messages[2]), "Let me check.");
    assert_eq!(
        p.messages[2].reasoning_content.as_deref(),
        Some("Use the tool.")
    );
    let calls = p.messages[2].tool_calls.as_ref().unwrap();
    assert_eq!(calls[0]["function"]["arguments"], json!({"city": "Paris"}));
    assert_eq!(p.messages[3].tool_call_id.as_deref(), Some("toolu_1"));
    assert_eq!(text(&p.messages[3]), "sunny");
    assert_eq!(p.gen.stop, vec!["END".to_string()]);
    assert_eq!(p.gen.max_tokens, Some(64));
    assert_eq!(p.gen.user.as_deref(), Some("u1"));
    let tools = p.tools.unwrap();
    assert_eq!(tools.choice, kaiyuan_chat::tools::ToolChoice::Required);
    assert!(!tools.parallel);
    assert_eq!(p.reasoning.thinking, Some(true));
    assert_eq!(p.reasoning.budget_tokens, Some(100));
}

#[test]
fn an_error_result_says_so_and_a_turn_of_results_alone_adds_no_user_message() {
    let p = messages(&json!({"max_tokens": 5, "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "boom", "is_error": true}]}
    ]}))
    .unwrap();
    assert_eq!(p.messages.last().unwrap().role, "tool");
    assert_eq!(text(p.messages.last().unwrap()), "Error: boom");
}

#[test]
fn bad_requests_name_the_field() {
    let user = json!([{"role": "user", "content": "hi"}]);
    let cases = [
        (json!({"messages": user}), "max_tokens"),
        (json!({"max_tokens": 0, "messages": user}), "max_tokens"),
        (json!({"max_tokens": 5}), "messages"),
        (json!({"max_tokens": 5, "messages": []}), "messages"),
        (json!({"max_tokens": 5, "messages": "hi"}), "messages"),
        (
            json!({"max_tokens": 5, "messages": [{"role": "assistant", "content": "hi"}]}),
            "messages[0].role",
        ),
        (
            json!({"max_tokens": 5, "messages": [{"role": "system", "content": "hi"}]}),
            "messages[0].role",
        ),
        (
            json!({"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]}),
            "messages[0].content[0].type",
        ),
        (
            json!({"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "video"}]}]}),
            "messages[0].content[0].type",
        ),
        (
            json!({"max_tokens": 5, "messages": [{"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "nope", "content": "x"}]}]}),
            "messages[0].content[0].tool_use_id",
        ),
        (
            json!({"max_tokens": 5, "messages": user, "tools": [{"name": "a b", "input_schema": {"type": "object"}}]}),
            "tools[0].name",
        ),
        (
            json!({"max_tokens": 5, "messages": user, "tools": [{"name": "a"}]}),
            "tools[0].input_schema",
        ),
        (
            json!({"max_tokens": 5, "messages": user, "tools": [{"type": "bash_20250124", "name": "bash"}]}),
            "tools[0].type",
        ),
        (
            json!({"max_tokens": 5, "messages": user,
                   "tools": [{"name": "a", "input_schema": {"type": "object"}}],
                   "tool_choice": {"type": "tool", "name": "b"}}),
            "tool_choice.name",
        ),
        (
            json!({"max_tokens": 5, "messages": user, "tool_choice": {"type": "maybe"}}),
            "tool_choice.type",
        ),
        (
            json!({"max_tokens": 5, "messages": user, "stop_sequences": [""]}),
            "stop_sequences",
        ),
        (
            json!({"max_tokens": 5, "messages": user, "metadata": {"user_id": 5}}),
            "metadata.user_id",
        ),
        (
            json!({"max_tokens": 5, "messages": user, "thinking": {"type": "sometimes"}}),
            "thinking.type",
        ),
    ];
    for (body, want) in cases {
        assert_eq!(param(body.clone()), want, "{body}");
    }
    // count_tokens does not need max_tokens.
    assert!(count_tokens(&json!({"messages": user})).is_ok());
}
