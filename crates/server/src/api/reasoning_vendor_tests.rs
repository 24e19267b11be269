//! The template variables the reasoning fields become, checked on real vendor templates: a
//! request's `thinking` / `reasoning_effort` must render exactly the prompt transformers
//! rendered with the variables each vendor documents (the golden cases of
//! `testdata/golden/chat_template/vendor_tools.json`; templates from `scripts/fetch-templates`).

use std::path::PathBuf;

use kaiyuan_chat::{ChatTemplate, Message, RenderOptions};
use serde_json::{json, Value};

use super::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Renders golden case `name` with the variables `thinking` and `effort` become, and returns
/// (Kaiyuan's prompt, transformers' prompt).
fn render_case(name: &str, thinking: Value, effort: Value) -> (String, String) {
    let path = repo().join("testdata/golden/chat_template/vendor_tools.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("golden"))
        .expect("golden is JSON");
    let case = doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no golden case {name}"));
    let tname = case["template"].as_str().expect("template");
    let entry = &doc["templates"][tname];
    let file = repo()
        .join(".cache/vendor-templates")
        .join(entry["file"].as_str().expect("file"));
    let source = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/fetch-templates)", file.display()));
    let template = ChatTemplate::new(
        &source,
        entry["bos_token"].as_str(),
        entry["eos_token"].as_str(),
    )
    .expect("compiles");
    let req = request(Some(&thinking), Some(&effort), None).expect("valid fields");
    let vars = template_variables(&req, &TemplateReasoning::of_template(&template), true);
    let messages: Vec<Message> =
        serde_json::from_value(case["messages"].clone()).expect("messages");
    let opts = RenderOptions {
        add_generation_prompt: case["add_generation_prompt"].as_bool().expect("agp"),
        tools: Some(doc["tools"].clone()),
        extra: vars,
        now_unix_seconds: case["now_unix"].as_i64(),
        ..RenderOptions::default()
    };
    let ours = template.render_text(&messages, &opts).expect("renders");
    (
        ours,
        case["expected"].as_str().expect("expected").to_string(),
    )
}

#[test]
fn hy3_thinking_and_effort_render_as_its_own_values() {
    // transformers with reasoning_effort: high / with the template's default (no_think).
    let (ours, want) = render_case(
        "tencent-Hy3/offer_reasoning_high",
        json!({"type": "enabled"}),
        json!("medium"),
    );
    assert_eq!(ours, want);
    let (ours, want) = render_case(
        "tencent-Hy3/offer_thinking_off",
        json!({"type": "disabled"}),
        Value::Null,
    );
    assert_eq!(ours, want);
}

#[test]
fn deepseek_v4_max_effort_reaches_its_template() {
    // transformers with thinking: true, reasoning_effort: max.
    let (ours, want) = render_case(
        "deepseek-ai-DeepSeek-V4/offer_reasoning_max",
        json!({"type": "enabled"}),
        json!("max"),
    );
    assert_eq!(ours, want);
    let (ours, _) = render_case(
        "deepseek-ai-DeepSeek-V4/offer_reasoning_max",
        json!({"type": "enabled"}),
        json!("high"),
    );
    assert_ne!(ours, want, "high is not max for V4");
}
