//! Tool-call parsers (issue #15) against fixtures written from each family's documented output
//! format (the source is cited beside each fixture). Every fixture is pushed whole, in every
//! split into two and three chunks at char boundaries, and one char at a time: the events (with
//! adjacent text merged) must be the same, and what they add up to must equal `parse_all`.

mod deepseek;
mod dsml;
mod generic;
mod glm;
mod hermes;
mod llama3;
mod mistral;

use kaiyuan_chat::tools::{collect_events, ToolCall, ToolEvent, ToolFormat};

pub fn c(text: &str) -> ToolEvent {
    ToolEvent::Content(text.to_string())
}

pub fn start(index: usize, name: &str) -> ToolEvent {
    ToolEvent::CallStart {
        index,
        name: name.to_string(),
    }
}

pub fn args(index: usize, fragment: &str) -> ToolEvent {
    ToolEvent::CallArguments {
        index,
        fragment: fragment.to_string(),
    }
}

pub fn end(index: usize) -> ToolEvent {
    ToolEvent::CallEnd { index }
}

pub fn bad(index: Option<usize>, raw: &str) -> ToolEvent {
    ToolEvent::Malformed {
        index,
        raw: raw.to_string(),
    }
}

/// A complete call: start, arguments in one piece, end.
pub fn call(index: usize, name: &str, arguments: &str) -> Vec<ToolEvent> {
    vec![start(index, name), args(index, arguments), end(index)]
}

/// Merges adjacent `Content` events and adjacent `CallArguments` of one call.
pub fn normalize(events: Vec<ToolEvent>) -> Vec<ToolEvent> {
    let mut out: Vec<ToolEvent> = Vec::new();
    for event in events {
        match (out.last_mut(), event) {
            (Some(ToolEvent::Content(prev)), ToolEvent::Content(next)) => prev.push_str(&next),
            (
                Some(ToolEvent::CallArguments { index: a, fragment }),
                ToolEvent::CallArguments {
                    index: b,
                    fragment: next,
                },
            ) if *a == b => fragment.push_str(&next),
            (_, event) => out.push(event),
        }
    }
    out
}

/// Runs a fresh parser of `format` over `chunks`; the raw (unmerged) events.
pub fn run_raw(format: ToolFormat, chunks: &[&str]) -> Vec<ToolEvent> {
    let mut parser = format.parser();
    let mut events = Vec::new();
    for chunk in chunks {
        events.extend(parser.push(chunk));
    }
    events.extend(parser.finish());
    events
}

pub fn run(format: ToolFormat, chunks: &[&str]) -> Vec<ToolEvent> {
    normalize(run_raw(format, chunks))
}

/// The text whole, every split into two and three chunks, and one char per chunk.
pub fn all_splits(text: &str) -> Vec<Vec<&str>> {
    let cuts: Vec<usize> = (0..=text.len())
        .filter(|&i| text.is_char_boundary(i))
        .collect();
    let mut out = vec![vec![text]];
    for &i in &cuts {
        out.push(vec![&text[..i], &text[i..]]);
        for &j in cuts.iter().filter(|&&j| j > i) {
            out.push(vec![&text[..i], &text[i..j], &text[j..]]);
        }
    }
    out.push(
        text.char_indices()
            .map(|(i, ch)| &text[i..i + ch.len_utf8()])
            .collect(),
    );
    out
}

/// `text` gives `want` however it is split, and the events add up to `parse_all`.
pub fn check(format: ToolFormat, text: &str, want: &[ToolEvent]) {
    let whole = format.parse_all(text);
    assert_eq!(run(format, &[text]), want, "{format:?} whole: {text:?}");
    assert_eq!(collect_events(want.to_vec()), whole);
    for chunks in all_splits(text) {
        let events = run_raw(format, &chunks);
        assert!(
            events
                .iter()
                .all(|e| e != &ToolEvent::Content(String::new())),
            "empty content event for {chunks:?}"
        );
        assert_eq!(
            collect_events(events.clone()),
            whole,
            "{format:?} {chunks:?}"
        );
        assert_eq!(normalize(events), want, "{format:?} {chunks:?}");
    }
}

pub fn tool_call(name: &str, arguments: &str) -> ToolCall {
    ToolCall {
        name: name.to_string(),
        arguments: arguments.to_string(),
    }
}

/// Events as they come, chunk by chunk (to see what is released early).
pub fn per_chunk(format: ToolFormat, chunks: &[&str]) -> Vec<Vec<ToolEvent>> {
    let mut parser = format.parser();
    let mut out: Vec<_> = chunks.iter().map(|c| parser.push(c)).collect();
    out.push(parser.finish());
    out
}

#[test]
fn each_format_has_triggers_or_is_fully_constrained() {
    use ToolFormat::*;
    for format in [
        Hermes,
        Llama3,
        DeepSeekR1,
        DeepSeekV31,
        DeepSeekV32,
        DeepSeekV4,
        Mistral,
        Ernie,
        Glm,
        Hunyuan,
    ] {
        assert!(!format.triggers().is_empty(), "{format:?}");
        // A trigger alone, with nothing after it, is held back, never shown as content.
        let trigger = format.triggers()[0];
        let mut parser = format.parser();
        assert!(parser.push(trigger).is_empty(), "{format:?}");
    }
    assert!(Generic.triggers().is_empty());
    assert!(!Generic.template_renders_tools() && Hermes.template_renders_tools());
}

/// Random texts built from each family's markers, pieces of markers and of calls, whitespace and
/// multi-byte characters, cut at random char boundaries, give the same events as pushed whole.
#[test]
fn random_texts_split_anywhere_give_the_same_events() {
    use ToolFormat::*;
    const COMMON: [&str; 12] = [
        " ",
        "\n",
        "é",
        "🙂",
        "x",
        "{",
        "}",
        "\"",
        "{\"name\": \"f\", ",
        "\"arguments\": {\"a\": 1}}",
        "\"parameters\": {}}",
        ";",
    ];
    let families: [(ToolFormat, &[&str]); 11] = [
        (
            Hermes,
            &["<tool_call>", "</tool_call>", "<tool_", "</tool_call"],
        ),
        (
            Ernie,
            &[
                "<tool_call>",
                "</tool_call>",
                "<response>",
                "</response>",
                "<resp",
            ],
        ),
        (Llama3, &["<|python_tag|>", "<|python", "{\"name\""]),
        (
            Glm,
            &[
                "<tool_call>f",
                "</tool_call>",
                "<arg_key>a</arg_key>",
                "<arg_value>",
                "</arg_value>",
                "<arg_",
                "</tool_",
                "1",
            ],
        ),
        (
            Hunyuan,
            &[
                "<tool_calls:opensource>",
                "<tool_call:opensource>f<tool_sep:opensource>",
                "</tool_call:opensource>",
                "<arg_key:opensource>a</arg_key:opensource>",
                "<arg_value:opensource>",
                "</arg_value:opensource>",
                "</tool_calls:opensource>",
                "<tool_call",
            ],
        ),
        (
            DeepSeekR1,
            &[
                "<｜tool▁calls▁begin｜>",
                "<｜tool_call_begin｜>",
                "<｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n",
                "\n```",
                "<｜tool▁call▁end｜>",
                "<｜tool▁calls▁end｜>",
                "<｜tool",
            ],
        ),
        (
            DeepSeekV31,
            &[
                "<｜tool▁call▁begin｜>f<｜tool▁sep｜>",
                "<｜tool▁sep｜>",
                "<｜tool▁call▁end｜>",
                "<｜tool▁calls▁begin｜>",
                "｜",
            ],
        ),
        (
            DeepSeekV32,
            &[
                "<｜DSML｜function_calls>",
                "</｜DSML｜function_calls>",
                "<｜DSML｜invoke name=\"f\">",
                "</｜DSML｜invoke>",
                "<｜DSML｜parameter name=\"a\" string=\"true\">",
                "<｜DSML｜parameter name=\"b\" string=\"false\">",
                "</｜DSML｜parameter>",
                "<｜DSML｜",
                "\n\n",
            ],
        ),
        (
            DeepSeekV4,
            &[
                "<｜DSML｜tool_calls>",
                "</｜DSML｜tool_calls>",
                "<｜DSML｜invoke name=\"",
                "\">",
                "</｜DSML｜invoke>",
                "<｜DSML｜parameter name=\"a\" string=\"",
                "true\">",
                "</｜DSML｜parameter>",
                "1",
            ],
        ),
        (
            Mistral,
            &[
                "[TOOL_CALLS]",
                "[ARGS]",
                "[TOOL_",
                "f",
                "[{\"name\": \"g\"}]",
                "[CALL_ID]",
            ],
        ),
        (
            Generic,
            &[
                "{\"response\": \"",
                "{\"tool_calls\": [",
                "]}",
                "\\n",
                "\\u00e9",
                "\\",
            ],
        ),
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    for (format, own) in families {
        for _ in 0..1500 {
            let text: String = (0..next(10))
                .map(|_| {
                    if next(2) == 0 {
                        own[next(own.len())]
                    } else {
                        COMMON[next(COMMON.len())]
                    }
                })
                .collect();
            let whole = run(format, &[&text]);
            let cuts: Vec<usize> = (0..=text.len())
                .filter(|&i| text.is_char_boundary(i))
                .collect();
            let mut points: Vec<usize> = (0..next(6)).map(|_| cuts[next(cuts.len())]).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut from = 0;
            for p in points {
                chunks.push(&text[from..p]);
                from = p;
            }
            chunks.push(&text[from..]);
            let events = run_raw(format, &chunks);
            assert_eq!(
                normalize(events.clone()),
                whole,
                "{format:?} {text:?} as {chunks:?}"
            );
            assert_eq!(collect_events(events), format.parse_all(&text));
        }
    }
}
