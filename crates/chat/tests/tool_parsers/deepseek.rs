//! DeepSeek fixtures. Format: DeepSeek-R1 / V3 chat templates and model cards (fenced JSON after
//! `function<｜tool▁sep｜>NAME`), DeepSeek-V3.1 model card "Tool call" (`NAME<｜tool▁sep｜>{json}`).

use super::*;
use kaiyuan_chat::tools::ToolFormat::{DeepSeekR1, DeepSeekV31};

const R1_CALL: &str = "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"location\": \"Hangzhou\"}\n```<｜tool▁call▁end｜>";
const R1_ARGS: &str = r#"{"location": "Hangzhou"}"#;

fn wrapped(calls: &str) -> String {
    format!("<｜tool▁calls▁begin｜>{calls}<｜tool▁calls▁end｜>")
}

#[test]
fn r1_one_call() {
    check(
        DeepSeekR1,
        &wrapped(R1_CALL),
        &call(0, "get_weather", R1_ARGS),
    );
}

#[test]
fn r1_text_before_and_two_calls() {
    let second = "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{\"tz\": \"Asia/Shanghai\"}\n```<｜tool▁call▁end｜>";
    let text = format!(
        "我来查一下。\n\n{}",
        wrapped(&format!("{R1_CALL}\n{second}"))
    );
    let mut want = vec![c("我来查一下。\n\n")];
    want.extend(call(0, "get_weather", R1_ARGS));
    want.extend(call(1, "get_time", r#"{"tz": "Asia/Shanghai"}"#));
    check(DeepSeekR1, &text, &want);
}

#[test]
fn v31_with_and_without_the_wrapper() {
    let one = "<｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"location\": \"Hangzhou\"}<｜tool▁call▁end｜>";
    let two = "<｜tool▁call▁begin｜>get_time<｜tool▁sep｜>{}<｜tool▁call▁end｜>";
    let mut want = call(0, "get_weather", R1_ARGS);
    want.extend(call(1, "get_time", "{}"));
    check(DeepSeekV31, &wrapped(&format!("{one}{two}")), &want);
    check(DeepSeekV31, &format!("{one}{two}"), &want);
    let mut want = vec![c("Sure. ")];
    want.extend(call(0, "get_weather", R1_ARGS));
    want.push(c("Done."));
    check(DeepSeekV31, &format!("Sure. {one} Done."), &want);
}

#[test]
fn malformed_json() {
    let broken =
        "<｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{\"x\": }\n```<｜tool▁call▁end｜>";
    let text = wrapped(broken);
    let raw = format!("<｜tool▁calls▁begin｜>{broken}");
    check(
        DeepSeekR1,
        &text,
        &[start(0, "f"), args(0, "{\"x\": }"), bad(Some(0), &raw)],
    );
    // The index of an abandoned call is not reused.
    let text = wrapped(&format!("{broken}{R1_CALL}"));
    let mut want = vec![start(0, "f"), args(0, "{\"x\": }"), bad(Some(0), &raw)];
    want.extend(call(1, "get_weather", R1_ARGS));
    check(DeepSeekR1, &text, &want);
    assert_eq!(
        DeepSeekR1.parse_all(&text).1,
        vec![tool_call("get_weather", R1_ARGS)]
    );
    // Cut off mid-arguments.
    let cut = "<｜tool▁call▁begin｜>f<｜tool▁sep｜>{\"x\": 1";
    check(
        DeepSeekV31,
        cut,
        &[start(0, "f"), args(0, "{\"x\": 1"), bad(Some(0), cut)],
    );
    // A wrapper with no call in it.
    check(
        DeepSeekV31,
        "<｜tool▁calls▁begin｜>oops",
        &[bad(None, "<｜tool▁calls▁begin｜>"), c("oops")],
    );
}

#[test]
fn mangled_markers_of_r1_distills() {
    for sep in ["_", " ", "\\_"] {
        // Only the opening mangled, as distills do, and every marker mangled.
        let opening = format!("<｜tool{sep}calls{sep}begin｜>");
        let text = format!("{opening}{R1_CALL}<｜tool▁calls▁end｜>");
        check(DeepSeekR1, &text, &call(0, "get_weather", R1_ARGS));
        let all = wrapped(R1_CALL).replace('▁', sep);
        check(DeepSeekR1, &all, &call(0, "get_weather", R1_ARGS));
    }
}

#[test]
fn marker_like_text_is_content() {
    let text = "The <｜tool marker and ｜ bars and <｜tool▁calls are not calls.";
    check(DeepSeekR1, text, &[c(text)]);
}

#[test]
fn arguments_stream_before_the_call_ends() {
    let chunks = [
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>",
        "{\"location\": ",
        "\"Hang",
        "zhou\"}",
        "<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
    ];
    let events = per_chunk(DeepSeekV31, &chunks);
    assert_eq!(events[0], vec![start(0, "get_weather")]);
    // Trailing whitespace is held (it could precede a closing fence).
    assert_eq!(events[1], vec![args(0, "{\"location\":")]);
    assert_eq!(events[2], vec![args(0, " \"Hang")]);
    assert_eq!(events[3], vec![args(0, "zhou\"}")]);
    assert_eq!(events[4], vec![end(0)]);
    // R1: the closing fence is held back, never sent as arguments.
    let events = per_chunk(
        DeepSeekR1,
        &[&R1_CALL[..R1_CALL.find("\n```<").unwrap() + 3], "`"],
    );
    assert_eq!(events[0].last(), Some(&args(0, R1_ARGS)));
    assert_eq!(events[1], vec![]);
}

#[test]
fn detection() {
    let r1 = "{{'<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\\n' + '```json' + '\\n'}}";
    let v31 = "{{'<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>'+ tool['function']['name'] + '<｜tool▁sep｜>' + tool['function']['arguments'] + '<｜tool▁call▁end｜>'}}";
    assert_eq!(ToolFormat::detect(r1), DeepSeekR1);
    assert_eq!(ToolFormat::detect(v31), DeepSeekV31);
}
