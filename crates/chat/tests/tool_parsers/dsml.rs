//! DeepSeek V3.2 / V4 (DSML) fixtures, written from their chat templates (the instructions they
//! give the model and how they render a call in history: the block after the reply's text and
//! `\n\n`, a tag per line, string values raw with `string="true"`, the rest JSON with
//! `string="false"`). The texts below are the replies of
//! `testdata/golden/chat_template/vendor_tools.json`'s DeepSeek-V3.2 / V4 cases as
//! transformers rendered them (between `</think>` and `<｜end▁of▁sentence｜>`).

use super::*;
use kaiyuan_chat::tools::ToolFormat::{DeepSeekV32, DeepSeekV4};

/// `deepseek-ai-DeepSeek-V4/typed_arguments`: one call with every JSON type.
const V4_TYPED: &str = "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"get_weather\">\n<｜DSML｜parameter name=\"city\" string=\"true\">Zürich</｜DSML｜parameter>\n<｜DSML｜parameter name=\"days\" string=\"false\">3</｜DSML｜parameter>\n<｜DSML｜parameter name=\"hourly\" string=\"false\">true</｜DSML｜parameter>\n<｜DSML｜parameter name=\"fields\" string=\"false\">[\"temp\", \"wind\"]</｜DSML｜parameter>\n<｜DSML｜parameter name=\"at\" string=\"false\">null</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>";
const TYPED_ARGS: &str =
    r#"{"city":"Zürich","days":3,"hourly":true,"fields":["temp","wind"],"at":null}"#;

/// `deepseek-ai-DeepSeek-V3.2/parallel_results`: two calls in V3.2's `function_calls` block.
const V32_PARALLEL: &str = "\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name=\"get_weather\">\n<｜DSML｜parameter name=\"city\" string=\"true\">Zürich</｜DSML｜parameter>\n<｜DSML｜parameter name=\"unit\" string=\"true\">celsius</｜DSML｜parameter>\n</｜DSML｜invoke>\n<｜DSML｜invoke name=\"get_time\">\n<｜DSML｜parameter name=\"timezone\" string=\"true\">Europe/Zurich</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜function_calls>";

fn parallel_calls() -> Vec<ToolEvent> {
    let mut want = call(0, "get_weather", r#"{"city":"Zürich","unit":"celsius"}"#);
    want.extend(call(1, "get_time", r#"{"timezone":"Europe/Zurich"}"#));
    want
}

#[test]
fn one_call_with_every_json_type() {
    check(DeepSeekV4, V4_TYPED, &call(0, "get_weather", TYPED_ARGS));
    let v32 = V4_TYPED.replace("tool_calls>", "function_calls>");
    check(DeepSeekV32, &v32, &call(0, "get_weather", TYPED_ARGS));
}

#[test]
fn parallel_calls_with_text_before_and_after() {
    check(DeepSeekV32, V32_PARALLEL, &parallel_calls());
    // `call_answer_next`: the reply's text, then the template's `\n\n` and the block (the
    // separator is not content); text after the block is.
    let text = format!("Let me look that up.{V32_PARALLEL}\nDone.");
    let mut want = vec![c("Let me look that up.")];
    want.extend(parallel_calls());
    want.push(c("Done."));
    check(DeepSeekV32, &text, &want);
    // V4 names the block `tool_calls`; the calls in it are the same, and either parser reads
    // either block.
    let v4 = V32_PARALLEL.replace("function_calls>", "tool_calls>");
    check(DeepSeekV4, &v4, &parallel_calls());
    check(DeepSeekV4, V32_PARALLEL, &parallel_calls());
    check(DeepSeekV32, &v4, &parallel_calls());
}

#[test]
fn arguments_stream_one_parameter_at_a_time() {
    let events = per_chunk(
        DeepSeekV4,
        &[
            "Sure.\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"get_weather\">\n<｜DSML｜parameter name=\"city\" string=\"true\">Zü",
            "rich</｜DSML｜parameter>\n<｜DSML｜parameter name=\"days\" string=\"false\">",
            "3</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>",
        ],
    );
    assert_eq!(events[0], vec![c("Sure."), start(0, "get_weather")]);
    assert_eq!(events[1], vec![args(0, "{\"city\":\"Zürich\"")]);
    assert_eq!(
        events[2],
        vec![args(0, ",\"days\":3"), args(0, "}"), end(0)]
    );
    assert!(events[3].is_empty());
}

#[test]
fn whitespace_before_a_block_is_held_and_released_if_none_follows() {
    let events = per_chunk(DeepSeekV4, &["It is 21 °C.\n\n", "<｜DSML｜", "x"]);
    assert_eq!(events[0], vec![c("It is 21 °C.")]);
    assert!(events[1].is_empty());
    assert_eq!(events[2], vec![c("\n\n<｜DSML｜x")]);
    check(DeepSeekV4, "Done.\n\n", &[c("Done.\n\n")]);
}

#[test]
fn calls_without_arguments_as_each_template_writes_them() {
    // V3.2 writes nothing between the tags, V4 an empty line.
    let v32 = "\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name=\"now\">\n</｜DSML｜invoke>\n</｜DSML｜function_calls>";
    check(DeepSeekV32, v32, &call(0, "now", "{}"));
    let v4 = "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"now\">\n\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>";
    check(DeepSeekV4, v4, &call(0, "now", "{}"));
    // Without the block (read all the same) and with nothing between the tags.
    let bare = "<｜DSML｜invoke name=\"now\"></｜DSML｜invoke>";
    check(DeepSeekV4, bare, &call(0, "now", "{}"));
}

#[test]
fn string_values_are_raw_and_json_values_parsed() {
    // A raw string keeps its whitespace, quotes, tags and JSON look (`3` is a string);
    // `string="false"` holds JSON, a JSON string included.
    let text = "<｜DSML｜tool_calls><｜DSML｜invoke name=\"f\"><｜DSML｜parameter name=\"a\" string=\"true\"> [1, \"x\"] <b>\n</｜DSML｜parameter><｜DSML｜parameter name=\"b\" string=\"false\">\"007\"</｜DSML｜parameter><｜DSML｜parameter name=\"c\" string=\"false\"> {\"k\": [null]} </｜DSML｜parameter><｜DSML｜parameter name=\"d\" string=\"true\">3</｜DSML｜parameter></｜DSML｜invoke></｜DSML｜tool_calls>";
    check(
        DeepSeekV4,
        text,
        &[
            start(0, "f"),
            args(
                0,
                r#"{"a":" [1, \"x\"] <b>\n","b":"007","c":{"k":[null]},"d":"3"}"#,
            ),
            end(0),
        ],
    );
}

#[test]
fn malformed_calls_come_back_raw() {
    let open = "<｜DSML｜tool_calls>\n";
    // Not JSON under string="false"; no string attribute; a repeated parameter.
    for (raw, streamed) in [
        (
            "<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"n\" string=\"false\">seven</｜DSML｜parameter>\n</｜DSML｜invoke>",
            None,
        ),
        (
            "<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"n\">7</｜DSML｜parameter>\n</｜DSML｜invoke>",
            None,
        ),
        (
            "<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"n\" string=\"false\">7</｜DSML｜parameter>\n<｜DSML｜parameter name=\"n\" string=\"false\">8</｜DSML｜parameter>\n</｜DSML｜invoke>",
            Some("{\"n\":7"),
        ),
        (
            "<｜DSML｜invoke name=\"f\">\n = <｜DSML｜parameter name=\"n\" string=\"false\">7</｜DSML｜parameter>\n</｜DSML｜invoke>",
            None,
        ),
    ] {
        let text = format!("{open}{raw}\n</｜DSML｜tool_calls>");
        let mut want = vec![start(0, "f")];
        want.extend(streamed.map(|s| args(0, s)));
        want.push(bad(Some(0), raw));
        check(DeepSeekV4, &text, &want);
    }
    // A nameless call is given back before it starts; a call cut off by the end of the reply.
    let nameless = "<｜DSML｜invoke name=\"\">\n</｜DSML｜invoke>";
    check(DeepSeekV4, nameless, &[bad(None, nameless)]);
    let cut = "<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"a\" string=\"true\">Zü";
    check(
        DeepSeekV4,
        &format!("{open}{cut}"),
        &[start(0, "f"), bad(Some(0), cut)],
    );
    let unnamed = "<｜DSML｜invoke name=\"f";
    check(DeepSeekV4, unnamed, &[bad(None, unnamed)]);
}

#[test]
fn a_block_without_calls_is_given_back() {
    // Opened for nothing, then text or the end: the block's text comes back.
    check(
        DeepSeekV4,
        "a\n\n<｜DSML｜tool_calls>\nno calls",
        &[c("a"), bad(None, "<｜DSML｜tool_calls>\n"), c("no calls")],
    );
    check(
        DeepSeekV4,
        "<｜DSML｜tool_calls>\n",
        &[bad(None, "<｜DSML｜tool_calls>\n")],
    );
    // An empty block, and a stray block end, are dropped.
    check(
        DeepSeekV4,
        "a<｜DSML｜tool_calls>\n</｜DSML｜tool_calls>\nb</｜DSML｜tool_calls>",
        &[c("ab")],
    );
}

#[test]
fn a_partial_marker_is_held_and_released() {
    check(DeepSeekV4, "a <｜DSML｜too", &[c("a <｜DSML｜too")]);
    let events = per_chunk(DeepSeekV4, &["a <｜DS", "ML｜x"]);
    assert_eq!(events[0], vec![c("a")]);
    assert_eq!(events[1], vec![c(" <｜DSML｜x")]);
}
