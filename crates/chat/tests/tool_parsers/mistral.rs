//! Mistral fixtures. Format: Mistral function-calling docs and the Mistral-Nemo /
//! Mistral-7B-v0.3 model cards (`[TOOL_CALLS][{"name", "arguments", "id"}]`), and the newer
//! `mistral-common` tokenizers (v11+: `[TOOL_CALLS]name[ARGS]{...}`).

use super::*;
use kaiyuan_chat::tools::ToolFormat::Mistral;

#[test]
fn nemo_one_and_two_calls() {
    let one = r#"[TOOL_CALLS][{"name": "get_current_weather", "arguments": {"location": "Paris, France", "format": "celsius"}, "id": "aB3dE5fG7"}]"#;
    let args0 = r#"{"location":"Paris, France","format":"celsius"}"#;
    check(Mistral, one, &call(0, "get_current_weather", args0));
    let two = r#"[TOOL_CALLS] [{"name": "a", "arguments": {}, "id": "aaaaaaaaa"}, {"name": "b", "arguments": {"s": "]"}, "id": "bbbbbbbbb"}]"#;
    let mut want = call(0, "a", "{}");
    want.extend(call(1, "b", r#"{"s":"]"}"#));
    check(Mistral, two, &want);
}

#[test]
fn args_form_one_and_two_calls() {
    let text = r#"[TOOL_CALLS]get_current_weather[ARGS]{"location": "Paris, France"}"#;
    check(
        Mistral,
        text,
        &call(0, "get_current_weather", r#"{"location": "Paris, France"}"#),
    );
    let text = r#"[TOOL_CALLS]a[ARGS]{}[TOOL_CALLS]b[CALL_ID]x1y2z3w4v[ARGS]{"n": {"m": 1}}"#;
    let mut want = call(0, "a", "{}");
    want.extend(call(1, "b", r#"{"n": {"m": 1}}"#));
    check(Mistral, text, &want);
}

#[test]
fn text_before_the_call() {
    let text = "Checking the weather. [TOOL_CALLS]get_weather[ARGS]{\"city\": \"Lyon\"}";
    let mut want = vec![c("Checking the weather. ")];
    want.extend(call(0, "get_weather", r#"{"city": "Lyon"}"#));
    check(Mistral, text, &want);
}

#[test]
fn malformed_calls() {
    let list = r#"[TOOL_CALLS][{"name": "a", "arguments": {"x": }}]"#;
    check(Mistral, list, &[bad(None, list)]);
    let args_form = r#"[TOOL_CALLS]f[ARGS]{"x": }"#;
    check(
        Mistral,
        args_form,
        &[
            start(0, "f"),
            args(0, r#"{"x": }"#),
            bad(Some(0), args_form),
        ],
    );
    let cut = r#"[TOOL_CALLS]f[ARGS]{"x": 1"#;
    check(
        Mistral,
        cut,
        &[start(0, "f"), args(0, r#"{"x": 1"#), bad(Some(0), cut)],
    );
    let no_args = "[TOOL_CALLS]just words";
    check(Mistral, no_args, &[bad(None, no_args)]);
}

#[test]
fn marker_like_text_is_content() {
    let text = "The [TOOL_CALL] token and [ARGS] and [TOOL_CALLS";
    check(Mistral, text, &[c(text)]);
}

#[test]
fn arguments_stream_as_they_arrive() {
    let events = per_chunk(Mistral, &["[TOOL_CALLS]f[AR", "GS]{\"a\"", ": 1}", " ok"]);
    assert_eq!(events[0], vec![]);
    assert_eq!(events[1], vec![start(0, "f"), args(0, "{\"a\"")]);
    assert_eq!(events[2], vec![args(0, ": 1}"), end(0)]);
    assert_eq!(events[3], vec![c("ok")]);
}

#[test]
fn detection() {
    let template =
        "{{- '[AVAILABLE_TOOLS]' + tools|tojson + '[/AVAILABLE_TOOLS]' }}{{- '[TOOL_CALLS]' }}";
    assert_eq!(ToolFormat::detect(template), Mistral);
}
