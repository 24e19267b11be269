//! Llama 3.1 / 3.2 fixtures. Format: Llama 3.1 model card and `llama-models` prompt-format docs,
//! "JSON based tool calling": the reply is `{"name": "...", "parameters": {...}}`; built-in tools
//! after `<|python_tag|>`. Llama 3.2 may write several calls separated by `;`.

use super::*;
use kaiyuan_chat::tools::ToolFormat::Llama3;

const CONDITIONS: &str = r#"{"name": "get_current_conditions", "parameters": {"location": "San Francisco, CA", "unit": "Fahrenheit"}}"#;
const CONDITIONS_ARGS: &str = r#"{"location":"San Francisco, CA","unit":"Fahrenheit"}"#;

#[test]
fn one_call() {
    check(
        Llama3,
        CONDITIONS,
        &call(0, "get_current_conditions", CONDITIONS_ARGS),
    );
    // Leading whitespace is allowed; `arguments` is accepted for `parameters`.
    check(
        Llama3,
        "\n {\"name\": \"f\", \"arguments\": {\"x\": [1, \"}\"]}}",
        &call(0, "f", r#"{"x":[1,"}"]}"#),
    );
}

#[test]
fn text_before_a_tagged_call() {
    let text = "Let me look.<|python_tag|>{\"name\": \"f\", \"parameters\": {}}";
    let mut want = vec![c("Let me look.")];
    want.extend(call(0, "f", "{}"));
    check(Llama3, text, &want);
}

#[test]
fn two_calls() {
    let text =
        "{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"n\": 1}}\n";
    let mut want = call(0, "a", "{}");
    want.extend(call(1, "b", r#"{"n":1}"#));
    check(Llama3, text, &want);
}

#[test]
fn malformed_json() {
    let broken = r#"{"name": "f", "parameters": {"x": }}"#;
    check(Llama3, broken, &[bad(None, broken)]);
    let cut = r#"{"name": "f", "parameters": {"x": 1"#;
    check(Llama3, cut, &[bad(None, cut)]);
    let builtin = "<|python_tag|>brave_search.call(query=\"weather\")";
    check(Llama3, builtin, &[bad(None, builtin)]);
}

#[test]
fn json_in_prose_or_of_another_shape_is_content() {
    // The format requires the object at the start of the reply.
    let text = format!("Call it like {CONDITIONS} and see.");
    check(Llama3, &text, &[c(&text)]);
    check(Llama3, r#"{"answer": 4}"#, &[c(r#"{"answer": 4}"#)]);
    check(Llama3, "{curly} braces", &[c("{curly} braces")]);
    check(Llama3, "  plain <|python", &[c("  plain <|python")]);
    check(Llama3, "   ", &[c("   ")]);
    // A call followed by text: the text is content.
    let text = format!("{CONDITIONS}\nthen text");
    let mut want = call(0, "get_current_conditions", CONDITIONS_ARGS);
    want.push(c("then text"));
    check(Llama3, &text, &want);
}

#[test]
fn non_call_json_is_released_once_its_first_key_rules_a_call_out() {
    let events = per_chunk(Llama3, &["{\"a", "nswer\": 4", "}"]);
    assert_eq!(events[0], vec![]);
    assert_eq!(events[1], vec![c("{\"answer\": 4")]);
}

#[test]
fn detection() {
    let template = "{{- \"Environment: ipython\\n\" }}{{- '<|python_tag|>' }}";
    assert_eq!(ToolFormat::detect(template), Llama3);
}
