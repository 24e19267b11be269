//! DeepSeek V3.2 / V4 (DSML): the calls the real templates write in history are what a model
//! of the family writes, so each one, cut out of a render, must read back through the family's
//! parser as the message's own content and calls. Checked on transformers' renders (the golden's
//! expected prompts) and on Kaiyuan's renders of calls with harder arguments (every JSON type,
//! nesting, quotes, tags and newlines in strings, no arguments at all).

use kaiyuan_chat::tools::{ToolCall, ToolFormat};
use kaiyuan_chat::{ChatTemplate, Message, RenderOptions};
use serde_json::{json, Value};

use super::{golden, template_source, CONTROL_TOKENS};

const DSML_TEMPLATES: [(&str, ToolFormat); 3] = [
    ("deepseek-ai-DeepSeek-V3.2", ToolFormat::DeepSeekV32),
    ("deepseek-ai-DeepSeek-V4", ToolFormat::DeepSeekV4),
    ("deepseek-ai-DeepSeek-V4-Flash-0731", ToolFormat::DeepSeekV4),
];

const END: &str = "<｜end▁of▁sentence｜>";

/// The assistant turns of a DSML template's prompt, in order: each is written as `</think>` (or
/// `<think>…</think>`), the reply, then the end-of-sentence token.
fn assistant_replies(prompt: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(end) = prompt[from..].find(END).map(|e| from + e) {
        let start = prompt[..end]
            .rfind("</think>")
            .expect("a reply after </think>")
            + 8;
        out.push(&prompt[start..end]);
        from = end + END.len();
    }
    out
}

/// `(content, calls)` of a message as the API gave it: arguments as JSON values.
fn expected(message: &Value) -> (String, Vec<(String, Value)>) {
    let content = message["content"].as_str().unwrap_or("").to_string();
    let calls = message["tool_calls"]
        .as_array()
        .map(|calls| {
            let call = |c: &Value| {
                let f = &c["function"];
                (
                    f["name"].as_str().unwrap().to_string(),
                    f["arguments"].clone(),
                )
            };
            calls.iter().map(call).collect()
        })
        .unwrap_or_default();
    (content, calls)
}

fn read_back(format: ToolFormat, reply: &str) -> (String, Vec<(String, Value)>) {
    let (content, calls) = format.parse_all(reply);
    let calls = calls
        .into_iter()
        .map(|ToolCall { name, arguments }| {
            let args: Value = serde_json::from_str(&arguments).expect("arguments are JSON");
            (name, args)
        })
        .collect();
    (content, calls)
}

#[test]
fn dsml_calls_rendered_by_transformers_read_back() {
    let doc = golden();
    let mut checked = 0;
    for (name, format) in DSML_TEMPLATES {
        assert_eq!(doc["templates"][name]["family"], format.name(), "{name}");
        let cases = doc["cases"].as_array().expect("cases");
        for case in cases.iter().filter(|c| c["template"] == name) {
            let Some(prompt) = case["expected"].as_str() else {
                continue;
            };
            let assistants: Vec<&Value> = case["messages"]
                .as_array()
                .expect("messages")
                .iter()
                .filter(|m| m["role"] == "assistant")
                .collect();
            let replies = assistant_replies(prompt);
            assert_eq!(replies.len(), assistants.len(), "{}", case["name"]);
            for (reply, message) in replies.into_iter().zip(assistants) {
                assert_eq!(
                    read_back(format, reply),
                    expected(message),
                    "{}: {reply:?}",
                    case["name"]
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "only {checked} replies checked");
}

#[test]
fn dsml_calls_with_hard_arguments_render_and_read_back() {
    let doc = golden();
    let hard = json!({
        "text": "two\nlines with \"quotes\", <b>tags</b> & 🙂",
        "padded": "  kept as is  ",
        "code": "007",
        "looks_like_json": "[1, 2]",
        "empty": "",
        "n": -1500.5,
        "count": 0,
        "flag": false,
        "nothing": null,
        "nested": {"a": [1, {"b": "c"}], "d": {}},
        "list": [],
    });
    let calls = json!([
        {"type": "function", "id": "a1B2c3D4e",
         "function": {"name": "get_weather", "arguments": hard}},
        {"type": "function", "id": "f5G6h7I8j",
         "function": {"name": "now", "arguments": {}}},
    ]);
    for (name, format) in DSML_TEMPLATES {
        let entry = &doc["templates"][name];
        let source = template_source(name, entry);
        assert_eq!(ToolFormat::detect(&source), format, "{name}");
        let template = ChatTemplate::new(
            &source,
            entry["bos_token"].as_str(),
            entry["eos_token"].as_str(),
        )
        .unwrap()
        .with_control_tokens(CONTROL_TOKENS.iter().copied());
        for content in ["", "Checking\n\nboth."] {
            let mut call = Message::text("assistant", content);
            call.tool_calls = Some(calls.clone());
            let messages = [Message::text("user", "Weather?"), call];
            let opts = RenderOptions {
                add_generation_prompt: false,
                tools: Some(doc["tools"].clone()),
                ..RenderOptions::default()
            };
            let prompt = template.render(&messages, &opts).unwrap().text();
            let replies = assistant_replies(&prompt);
            assert_eq!(replies.len(), 1, "{name}: {prompt}");
            let want = (
                content.to_string(),
                vec![
                    ("get_weather".into(), hard.clone()),
                    ("now".into(), json!({})),
                ],
            );
            assert_eq!(read_back(format, replies[0]), want, "{name}: {prompt:?}");
        }
    }
}
