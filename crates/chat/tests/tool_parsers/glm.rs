//! GLM-4.5 / 4.6 / 4.7 and Hunyuan Hy3 fixtures, written from their chat templates (GLM-4.6,
//! GLM-4.7-Flash, tencent-Hy3: the instructions they give the model, and how they render a call
//! in history: GLM-4.6 and Hy3 with a newline after the name and after each tag pair, GLM-4.7
//! with none; string values raw, the rest as JSON). The texts below are the calls of
//! `testdata/golden/chat_template/vendor_tools.json`'s `typed_arguments` and
//! `parallel_results` cases, as transformers rendered them.

use super::*;
use kaiyuan_chat::tools::ToolFormat::Glm;
use kaiyuan_chat::tools::{parse_all, GlmParser, ToolCallParser, ToolSpec};
use serde_json::json;

/// GLM-4.6's rendering of a call with every JSON type.
const TYPED_46: &str = "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Zürich</arg_value>\n<arg_key>days</arg_key>\n<arg_value>3</arg_value>\n<arg_key>hourly</arg_key>\n<arg_value>true</arg_value>\n<arg_key>fields</arg_key>\n<arg_value>[\"temp\", \"wind\"]</arg_value>\n<arg_key>at</arg_key>\n<arg_value>null</arg_value>\n</tool_call>";
/// GLM-4.7's rendering of the same call.
const TYPED_47: &str = "<tool_call>get_weather<arg_key>city</arg_key><arg_value>Zürich</arg_value><arg_key>days</arg_key><arg_value>3</arg_value><arg_key>hourly</arg_key><arg_value>true</arg_value><arg_key>fields</arg_key><arg_value>[\"temp\", \"wind\"]</arg_value><arg_key>at</arg_key><arg_value>null</arg_value></tool_call>";
const TYPED_ARGS: &str =
    r#"{"city":"Zürich","days":3,"hourly":true,"fields":["temp","wind"],"at":null}"#;

#[test]
fn one_call_as_each_template_writes_it() {
    for text in [TYPED_46, TYPED_47] {
        check(Glm, text, &call(0, "get_weather", TYPED_ARGS));
    }
}

#[test]
fn arguments_stream_one_pair_at_a_time() {
    let events = per_chunk(
        Glm,
        &[
            "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Zü",
            "rich</arg_value>\n<arg_key>days</arg_key>",
            "\n<arg_value>3</arg_value>\n</tool_call>",
        ],
    );
    assert_eq!(events[0], vec![start(0, "get_weather")]);
    assert_eq!(events[1], vec![args(0, "{\"city\":\"Zürich\"")]);
    assert_eq!(
        events[2],
        vec![args(0, ",\"days\":3"), args(0, "}"), end(0)]
    );
}

#[test]
fn parallel_calls_text_and_no_arguments() {
    // GLM-4.6's parallel_results rendering (newline between calls), with text before.
    let text = "Let me check.\n<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Zürich</arg_value>\n<arg_key>unit</arg_key>\n<arg_value>celsius</arg_value>\n</tool_call>\n<tool_call>get_time\n<arg_key>timezone</arg_key>\n<arg_value>Europe/Zurich</arg_value>\n</tool_call>";
    let mut want = vec![c("Let me check.\n")];
    want.extend(call(
        0,
        "get_weather",
        r#"{"city":"Zürich","unit":"celsius"}"#,
    ));
    want.extend(call(1, "get_time", r#"{"timezone":"Europe/Zurich"}"#));
    check(Glm, text, &want);
    // GLM-4.7 writes calls back to back; a call without arguments.
    let text = "<tool_call>get_time</tool_call><tool_call>now\n</tool_call>\nDone.";
    let mut want = call(0, "get_time", "{}");
    want.extend(call(1, "now", "{}"));
    want.push(c("Done."));
    check(Glm, text, &want);
}

#[test]
fn values_follow_the_declared_schema_types() {
    let tools = [ToolSpec::new(
        "set",
        json!({"type": "object", "properties": {
            "code": {"type": "string"}, "n": {"type": "integer"},
            "tags": {"type": "array"}, "unit": {"enum": ["celsius", "fahrenheit"]}}}),
    )];
    let text = "<tool_call>set<arg_key>code</arg_key><arg_value>007</arg_value><arg_key>n</arg_key><arg_value>7</arg_value><arg_key>tags</arg_key><arg_value>[\"a\"]</arg_value><arg_key>unit</arg_key><arg_value>true</arg_value></tool_call>";
    let (content, calls) = parse_all(&mut GlmParser::new(&tools), text);
    assert_eq!(content, "");
    let got: serde_json::Value = serde_json::from_str(&calls[0].arguments).unwrap();
    // `007` is a string (declared), `true` of a string enum too; without schemas 007 is not JSON.
    assert_eq!(
        got,
        json!({"code": "007", "n": 7, "tags": ["a"], "unit": "true"})
    );
    let (_, untyped) = Glm.parse_all(text);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&untyped[0].arguments).unwrap()["unit"],
        json!(true)
    );
    // A value of the wrong type makes the call malformed.
    let wrong = "<tool_call>set<arg_key>n</arg_key><arg_value>seven</arg_value></tool_call>";
    let mut parser = GlmParser::new(&tools);
    let mut events = parser.push(wrong);
    events.extend(parser.finish());
    assert_eq!(events, vec![start(0, "set"), bad(Some(0), wrong)]);
}

#[test]
fn malformed_calls_come_back_raw() {
    // No name; text between the tags; a repeated key; an unclosed call at the end.
    let nameless = "<tool_call><arg_key>a</arg_key><arg_value>1</arg_value></tool_call>";
    check(
        Glm,
        &format!("{nameless}ok"),
        &[bad(None, nameless), c("ok")],
    );
    let stray = "<tool_call>f\n<arg_key>a</arg_key> = <arg_value>1</arg_value></tool_call>";
    check(Glm, stray, &[start(0, "f"), bad(Some(0), stray)]);
    let twice = "<tool_call>f<arg_key>a</arg_key><arg_value>1</arg_value><arg_key>a</arg_key><arg_value>2</arg_value></tool_call>";
    check(
        Glm,
        twice,
        &[start(0, "f"), args(0, "{\"a\":1"), bad(Some(0), twice)],
    );
    let open = "<tool_call>f\n<arg_key>a</arg_key>\n<arg_value>1";
    check(Glm, open, &[start(0, "f"), bad(Some(0), open)]);
    // Hermes JSON inside GLM tags is not a GLM call.
    let hermes = "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>";
    let (content, calls) = Glm.parse_all(hermes);
    assert!(calls.is_empty());
    assert_eq!(content, hermes);
}

#[test]
fn a_partial_open_tag_is_held_and_released() {
    check(Glm, "a <tool_cal", &[c("a <tool_cal")]);
    let events = per_chunk(Glm, &["a <tool_", "x"]);
    assert_eq!(events[0], vec![c("a ")]);
    assert_eq!(events[1], vec![c("<tool_x")]);
}

/// Hunyuan Hy3's rendering of two parallel calls (`tencent-Hy3/parallel_results` in
/// vendor_tools.json): GLM's layout with `:opensource` tags, a separator after the name and a
/// wrapper.
const HY3_PARALLEL: &str = "<tool_calls:opensource>\n<tool_call:opensource>get_weather<tool_sep:opensource>\n<arg_key:opensource>city</arg_key:opensource>\n<arg_value:opensource>Zürich</arg_value:opensource>\n<arg_key:opensource>unit</arg_key:opensource>\n<arg_value:opensource>celsius</arg_value:opensource>\n</tool_call:opensource>\n<tool_call:opensource>get_time<tool_sep:opensource>\n<arg_key:opensource>timezone</arg_key:opensource>\n<arg_value:opensource>Europe/Zurich</arg_value:opensource>\n</tool_call:opensource>\n</tool_calls:opensource>";

#[test]
fn hunyuan_calls_in_their_wrapper() {
    use kaiyuan_chat::tools::ToolFormat::Hunyuan;
    let text = format!("Checking.{HY3_PARALLEL}\nDone.");
    let mut want = vec![c("Checking.")];
    want.extend(call(
        0,
        "get_weather",
        r#"{"city":"Zürich","unit":"celsius"}"#,
    ));
    want.extend(call(1, "get_time", r#"{"timezone":"Europe/Zurich"}"#));
    want.push(c("Done."));
    check(Hunyuan, &text, &want);
    // The separator is required; GLM's tags are not Hy3's.
    let no_sep = "<tool_call:opensource>f\n<arg_key:opensource>a</arg_key:opensource>\n<arg_value:opensource>1</arg_value:opensource>\n</tool_call:opensource>";
    check(Hunyuan, no_sep, &[start(0, "f"), bad(Some(0), no_sep)]);
    check(Hunyuan, TYPED_47, &[c(TYPED_47)]);
}
