//! Hermes / Qwen and ERNIE fixtures. Format: Qwen2.5 "Function Calling" docs (Hermes-style
//! template: `<tool_call>\n{"name": ..., "arguments": ...}\n</tool_call>`), NousResearch
//! Hermes-2-Pro model card; ERNIE 4.5 model card (same tags, `<response>` answers).

use super::*;
use kaiyuan_chat::tools::ToolFormat::{Ernie, Hermes};

const WEATHER: &str = "<tool_call>\n{\"name\": \"get_current_temperature\", \"arguments\": {\"location\": \"San Francisco, CA, USA\", \"unit\": \"celsius\"}}\n</tool_call>";
/// Streamed as written (the documented key order: name, then arguments).
const WEATHER_ARGS: &str = r#"{"location": "San Francisco, CA, USA", "unit": "celsius"}"#;

#[test]
fn one_call() {
    check(
        Hermes,
        WEATHER,
        &call(0, "get_current_temperature", WEATHER_ARGS),
    );
}

#[test]
fn text_before_and_after_the_call() {
    let text = format!("Let me check that for you.\n{WEATHER}\n");
    let mut want = vec![c("Let me check that for you.\n")];
    want.extend(call(0, "get_current_temperature", WEATHER_ARGS));
    check(Hermes, &text, &want);
    let text = format!("{WEATHER}\nDone: 19°C 🙂");
    let mut want = call(0, "get_current_temperature", WEATHER_ARGS);
    want.push(c("Done: 19°C 🙂"));
    check(Hermes, &text, &want);
}

#[test]
fn two_parallel_calls() {
    let text = format!(
        "{WEATHER}\n<tool_call>\n{{\"name\": \"get_temperature_date\", \"arguments\": {{\"date\": \"2024-10-01\"}}}}\n</tool_call>"
    );
    let mut want = call(0, "get_current_temperature", WEATHER_ARGS);
    want.extend(call(1, "get_temperature_date", r#"{"date": "2024-10-01"}"#));
    check(Hermes, &text, &want);
    let (content, calls) = Hermes.parse_all(&text);
    assert_eq!(content, "");
    assert_eq!(
        calls[1],
        tool_call("get_temperature_date", r#"{"date": "2024-10-01"}"#)
    );
}

#[test]
fn malformed_json_comes_back_raw() {
    let broken = "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": }}\n</tool_call>";
    check(
        Hermes,
        broken,
        &[start(0, "f"), args(0, "{\"x\": }"), bad(Some(0), broken)],
    );
    // Arguments that are not an object, a missing name: malformed too.
    let list = "<tool_call>{\"name\": \"f\", \"arguments\": [1]}</tool_call>";
    check(Hermes, list, &[bad(None, list)]);
    let nameless = "<tool_call>{\"arguments\": {}}</tool_call>";
    let text = format!("a{nameless}{WEATHER}");
    let mut want = vec![c("a"), bad(None, nameless)];
    want.extend(call(0, "get_current_temperature", WEATHER_ARGS));
    // Another key order, or arguments as a string: buffered, arguments re-serialized.
    let reordered = "<tool_call>{\"arguments\": {\"a\": 1}, \"name\": \"g\"}</tool_call>";
    check(Hermes, reordered, &call(0, "g", r#"{"a":1}"#));
    let string_args = "<tool_call>{\"name\": \"g\", \"arguments\": \"{\\\"a\\\": 1}\"}</tool_call>";
    check(Hermes, string_args, &call(0, "g", r#"{"a":1}"#));
    // The close tag inside unbalanced arguments ends the call.
    let open = "<tool_call>{\"name\": \"g\", \"arguments\": {\"a\": 1</tool_call>ok";
    check(
        Hermes,
        open,
        &[
            start(0, "g"),
            args(0, "{\"a\": 1"),
            bad(Some(0), &open[..open.len() - 2]),
            c("ok"),
        ],
    );
    check(Hermes, &text, &want);
    // A call cut off by the length limit.
    let cut = "ok <tool_call>\n{\"name\": \"f\", \"argu";
    check(
        Hermes,
        cut,
        &[c("ok "), bad(None, "<tool_call>\n{\"name\": \"f\", \"argu")],
    );
}

#[test]
fn marker_like_text_in_prose() {
    // Not the tag: released whole.
    check(
        Hermes,
        "Use a <tool_ prefix or <tool_cal>.",
        &[c("Use a <tool_ prefix or <tool_cal>.")],
    );
    check(Hermes, "ends with <tool_cal", &[c("ends with <tool_cal")]);
    // The tag itself mid-sentence opens a call (Qwen may call after text); when no call follows,
    // the text comes back as Malformed, so parse_all's content is the reply unchanged.
    let text = "Qwen writes <tool_call> tags.";
    check(
        Hermes,
        text,
        &[c("Qwen writes "), bad(None, "<tool_call> tags.")],
    );
    assert_eq!(Hermes.parse_all(text), (text.to_string(), vec![]));
}

#[test]
fn nothing_of_a_split_tag_is_released_early() {
    for cut in 1.."<tool_call>".len() {
        let events = per_chunk(
            Hermes,
            &[&format!("Hi {}", &WEATHER[..cut]), &WEATHER[cut..]],
        );
        assert_eq!(events[0], vec![c("Hi ")], "cut {cut}");
    }
}

#[test]
fn ernie_calls_and_response_tags() {
    // ERNIE 4.5 (thinking variant: the answer after `</think>` starts with blank lines).
    let text = format!("\n\n\n{WEATHER}");
    let mut want = vec![c("\n\n\n")];
    want.extend(call(0, "get_current_temperature", WEATHER_ARGS));
    check(Ernie, &text, &want);
    check(
        Ernie,
        "<response>\nIt is 19°C.\n</response>",
        &[c("\nIt is 19°C.\n")],
    );
    let two = format!("{WEATHER}\n{WEATHER}");
    let mut want = call(0, "get_current_temperature", WEATHER_ARGS);
    want.extend(call(1, "get_current_temperature", WEATHER_ARGS));
    check(Ernie, &two, &want);
    let broken = "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}\n</tool_call>";
    check(
        Ernie,
        broken,
        &[start(0, "f"), args(0, "{\"x\": 1}"), bad(Some(0), broken)],
    );
    check(Ernie, "a <respons b", &[c("a <respons b")]);
}

#[test]
fn arguments_stream_before_the_call_ends() {
    let chunks = [
        "<tool_call>\n{\"name\": \"get_weather\", \"argu",
        "ments\": {\"city\": \"Pa",
        "ris\"}",
        "}\n</tool_call>",
    ];
    let events = per_chunk(Hermes, &chunks);
    assert_eq!(events[0], vec![]);
    assert_eq!(
        events[1],
        vec![start(0, "get_weather"), args(0, "{\"city\": \"Pa")]
    );
    assert_eq!(events[2], vec![args(0, "ris\"}")]);
    assert_eq!(events[3], vec![end(0)]);
}

#[test]
fn detection() {
    assert_eq!(
        ToolFormat::detect("{%- for tool in tools %}{{- '<tool_call>\\n{\"name\": ' }}"),
        Hermes
    );
}
