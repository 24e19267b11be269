//! Generic-format fixtures (Kaiyuan's design, after llama.cpp's generic tool format, see
//! `tools/generic.rs`), the JSON Schema that constrains it and the system prompt.

use super::*;
use kaiyuan_chat::tools::ToolFormat::Generic;
use kaiyuan_chat::tools::{generic_system_prompt, generic_tool_schema, ToolChoice, ToolSpec};
use serde_json::json;

#[test]
fn calls() {
    let one = r#"{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}"#;
    check(Generic, one, &call(0, "get_weather", r#"{"city":"Paris"}"#));
    let two = "{ \"tool_calls\" : [{\"name\": \"a\", \"arguments\": {}},\n {\"name\": \"b\", \"arguments\": {\"q\": \"}\"}}] }\n";
    let mut want = call(0, "a", "{}");
    want.extend(call(1, "b", r#"{"q":"}"}"#));
    check(Generic, two, &want);
}

#[test]
fn response_is_content_with_escapes_decoded() {
    check(Generic, r#"{"response": "Hello!"}"#, &[c("Hello!")]);
    let text = r#" {"response":"line\nbreak \"q\" \u00e9 \ud83d\ude00 \\ 中"} "#;
    check(Generic, text, &[c("line\nbreak \"q\" é 😀 \\ 中")]);
}

#[test]
fn response_streams_before_the_object_closes() {
    let events = per_chunk(
        Generic,
        &["{\"respo", "nse\": \"Hel", "lo \\u00", "e9\"", "}"],
    );
    assert_eq!(events[0], vec![]);
    assert_eq!(events[1], vec![c("Hel")]);
    assert_eq!(events[2], vec![c("lo ")]);
    assert_eq!(events[3], vec![c("é")]);
    assert_eq!(events[4], vec![]);
}

#[test]
fn text_before_or_instead_of_the_object_is_content() {
    // The format requires the object at the start of the reply.
    let text = r#"Sure: {"response": "hi"}"#;
    check(Generic, text, &[c(text)]);
    check(Generic, "Plain prose.", &[c("Plain prose.")]);
    check(Generic, r#"{"other": 1}"#, &[c(r#"{"other": 1}"#)]);
}

#[test]
fn malformed() {
    let broken = r#"{"tool_calls": [{"name": "f", "arguments": {"x": }}]}"#;
    check(Generic, broken, &[bad(None, broken)]);
    let wrong = r#"{"tool_calls": [{"name": "f", "arguments": 3}]}"#;
    check(Generic, wrong, &[bad(None, wrong)]);
    let cut = r#"{"tool_calls": [{"name": "f""#;
    check(Generic, cut, &[bad(None, cut)]);
    let cut = r#"{"response": "unfinish"#;
    // Text up to an invalid escape is the answer; the rest is given back raw.
    check(
        Generic,
        r#"{"response": "ab\x"}"#,
        &[c("ab"), bad(None, r#"\x"}"#)],
    );
    check(
        Generic,
        r#"{"response": "\ud83d!"}"#,
        &[bad(None, r#"\ud83d!"}"#)],
    );
    // A response cut off by the length limit is still the answer so far.
    check(Generic, cut, &[c("unfinish")]);
}

fn tools() -> Vec<ToolSpec> {
    vec![
        ToolSpec::new(
            "get_weather",
            json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        )
        .with_description("Current weather in a city"),
        ToolSpec::new("now", json!(null)),
    ]
}

#[test]
fn schema_by_choice() {
    let tools = tools();
    let auto = generic_tool_schema(&tools, &ToolChoice::Auto).unwrap();
    assert_eq!(auto["anyOf"].as_array().unwrap().len(), 2);
    assert_eq!(auto["anyOf"][1]["required"], json!(["response"]));
    let calls = &auto["anyOf"][0]["properties"]["tool_calls"];
    assert_eq!(
        calls["items"]["anyOf"][0]["properties"]["name"],
        json!({"const": "get_weather"})
    );
    assert_eq!(
        calls["items"]["anyOf"][1]["properties"]["arguments"],
        json!({"type": "object"})
    );
    let required = generic_tool_schema(&tools, &ToolChoice::Required).unwrap();
    assert_eq!(required["required"], json!(["tool_calls"]));
    assert_eq!(required["properties"]["tool_calls"]["minItems"], json!(1));
    let named = generic_tool_schema(&tools, &ToolChoice::Named("now".into())).unwrap();
    assert_eq!(
        named["properties"]["tool_calls"]["items"]["properties"]["name"],
        json!({"const": "now"})
    );
    assert_eq!(
        generic_tool_schema(&tools, &ToolChoice::Named("nope".into())),
        None
    );
    assert_eq!(generic_tool_schema(&[], &ToolChoice::Required), None);
    let answer_only = generic_tool_schema(&[], &ToolChoice::Auto).unwrap();
    assert_eq!(answer_only["required"], json!(["response"]));
}

#[test]
fn system_prompt_describes_tools_and_format() {
    let prompt = generic_system_prompt(&tools(), &ToolChoice::Auto);
    for needle in [
        "get_weather",
        "Current weather in a city",
        "\"tool_calls\"",
        "\"response\"",
    ] {
        assert!(prompt.contains(needle), "{needle} in {prompt}");
    }
    let forced = generic_system_prompt(&tools(), &ToolChoice::Named("now".into()));
    assert!(forced.contains("You must call the tool \"now\"") && !forced.contains("\"response\""));
}

#[test]
fn detection() {
    assert_eq!(
        ToolFormat::detect("{{ '<start_of_turn>' + role }}"),
        Generic
    );
}
