//! Real vendor chat templates with tools, checked against transformers.
//!
//! The templates (Qwen, Hermes, Llama 3.x, DeepSeek, Mistral...) are third-party files, so they
//! are not in this repository: `scripts/fetch-templates` extracts them from the llama.cpp tree
//! vendored in the llama-cpp-python sdist into `.cache/vendor-templates/`.
//! `testdata/golden/chat_template/vendor_tools.json` (made by `tools/vendor_template_golden.py`
//! with transformers' own `render_jinja_template`) names each one by file and sha256, says which
//! tool-call family its model writes, and holds the expected prompts of conversations with a
//! `tools` list, assistant `tool_calls` (one, two in parallel), `tool` results and a generation
//! prompt, thinking on and off, reasoning in history, arguments of every JSON type, and
//! control-token look-alikes in a tool result and an argument. Checked here: the prompt Kaiyuan renders is byte-identical (or the
//! template raises the same exception), Markup segments hold exactly the control tokens the
//! template wrote, `ToolFormat::detect` picks the documented family, and DeepSeek templates get
//! their arguments as the template wants them (`template_serializes_arguments`).

mod dsml;
mod reasoning;
mod sha256;

use std::path::PathBuf;

use kaiyuan_chat::tools::{template_serializes_arguments, ToolFormat};
use kaiyuan_chat::{ChatError, ChatTemplate, Message, RenderOptions, SegmentKind};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn golden() -> Value {
    let path = repo().join("testdata/golden/chat_template/vendor_tools.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("vendor_tools.json is JSON")
}

/// The cached template a golden entry names, after checking its sha256.
fn template_source(name: &str, entry: &Value) -> String {
    let file = entry["file"].as_str().expect("file");
    let path = repo().join(".cache/vendor-templates").join(file);
    let source = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\nThe vendor chat templates are not in the repository: run scripts/fetch-templates \
             (it extracts them from the llama-cpp-python sdist on PyPI into .cache/vendor-templates/).",
            path.display()
        )
    });
    let want = entry["sha256"].as_str().expect("sha256");
    let got = sha256::hex(source.as_bytes());
    assert_eq!(
        got,
        want,
        "{name}: {} is not the template the goldens were made from; rerun scripts/fetch-templates \
         (or regenerate with tools/vendor_template_golden.py if the pinned sdist changed)",
        path.display()
    );
    source
}

/// Control tokens of the families tested, as a tokenizer would list them: given to every
/// template (like the CLI does) so renders the sentinel method cannot follow still separate.
const CONTROL_TOKENS: &[&str] = &[
    "<|im_start|>",
    "<|im_end|>",
    "<|begin_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|python_tag|>",
    "<｜begin▁of▁sentence｜>",
    "<｜end▁of▁sentence｜>",
    "<｜User｜>",
    "<｜Assistant｜>",
    "<｜tool▁calls▁begin｜>",
    "<｜tool▁calls▁end｜>",
    "<｜tool▁call▁begin｜>",
    "<｜tool▁call▁end｜>",
    "<｜tool▁sep｜>",
    "<｜tool▁outputs▁begin｜>",
    "<｜tool▁outputs▁end｜>",
    "<｜tool▁output▁begin｜>",
    "<｜tool▁output▁end｜>",
    "<s>",
    "</s>",
    "[INST]",
    "[/INST]",
    "[AVAILABLE_TOOLS]",
    "[/AVAILABLE_TOOLS]",
    "[TOOL_CALLS]",
    "[TOOL_RESULTS]",
    "[/TOOL_RESULTS]",
    "[SYSTEM_PROMPT]",
    "[/SYSTEM_PROMPT]",
    "[ARGS]",
    "[CALL_ID]",
    "[TOOL_CONTENT]",
    // GLM-4.5/4.6/4.7
    "[gMASK]",
    "<sop>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|observation|>",
    "<arg_key>",
    "</arg_key>",
    "<arg_value>",
    "</arg_value>",
    // Hunyuan Hy3 (the template spells its tokens with `:opensource`)
    "<｜hy_begin_of_sentence:opensource｜>",
    "<｜hy_User:opensource｜>",
    "<｜hy_Assistant:opensource｜>",
    "<｜hy_eos:opensource｜>",
    "<tool_calls:opensource>",
    "</tool_calls:opensource>",
    "<tool_call:opensource>",
    "</tool_call:opensource>",
    "<tool_sep:opensource>",
    "<arg_key:opensource>",
    "</arg_key:opensource>",
    "<arg_value:opensource>",
    "</arg_value:opensource>",
    "<tool_responses:opensource>",
    "</tool_responses:opensource>",
    "<tool_response:opensource>",
    "</tool_response:opensource>",
];

#[test]
fn vendor_templates_render_like_transformers() {
    let doc = golden();
    let templates = doc["templates"].as_object().expect("templates");
    let cases = doc["cases"].as_array().expect("cases");
    let lookalikes: Vec<&str> = doc["lookalikes"]
        .as_array()
        .expect("lookalikes")
        .iter()
        .map(|t| t.as_str().expect("token"))
        .collect();
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    let mut failures = Vec::new();
    let mut rendered = 0;
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let tname = case["template"].as_str().expect("template");
        let entry = &templates[tname];
        let source = template_source(tname, entry);
        let template = ChatTemplate::new(
            &source,
            entry["bos_token"].as_str(),
            entry["eos_token"].as_str(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .with_control_tokens(CONTROL_TOKENS.iter().copied());
        let messages: Vec<Message> = serde_json::from_value(case["messages"].clone())
            .unwrap_or_else(|e| panic!("{name}: messages: {e}"));
        let opts = RenderOptions {
            add_generation_prompt: case["add_generation_prompt"].as_bool().expect("agp"),
            tools: Some(doc["tools"].clone()),
            documents: None,
            extra: case["extra"].as_object().cloned().unwrap_or_default(),
            now_unix_seconds: Some(case["now_unix"].as_i64().expect("now_unix")),
        };
        let result = template.render(&messages, &opts);
        if let Some(error) = case.get("error") {
            let raised = case["raised"].as_bool().unwrap_or(false);
            match (&result, raised) {
                (Err(ChatError::Raised(msg)), true) if msg == error.as_str().unwrap_or("") => {}
                (Err(ChatError::Render(_)), false) => {}
                _ => failures.push(format!("{name}: expected error {error}, got {result:?}")),
            }
            continue;
        }
        let expected = case["expected"].as_str().expect("expected");
        let prompt = match result {
            Ok(prompt) => prompt,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        if prompt.text() != expected {
            failures.push(format!(
                "{name}: rendered\n{:?}\nexpected\n{expected:?}",
                prompt.text()
            ));
            continue;
        }
        rendered += 1;
        // Markup must hold exactly the look-alikes the template wrote (`markup_token_counts`:
        // the injection case puts some in message text), and every other control token.
        let counts = case["markup_token_counts"].as_object().expect("counts");
        for token in CONTROL_TOKENS
            .iter()
            .copied()
            .chain(lookalikes.iter().copied())
        {
            let in_markup: usize = prompt
                .segments
                .iter()
                .filter(|s| s.kind == SegmentKind::Markup)
                .map(|s| s.text.matches(token).count())
                .sum();
            let want = match counts.get(token) {
                Some(n) => n.as_u64().expect("count") as usize,
                None if lookalikes.contains(&token) => 0,
                None => expected.matches(token).count(),
            };
            if in_markup != want {
                failures.push(format!(
                    "{name}: {token} is {in_markup} times in markup, the template wrote it {want} times"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from transformers:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
    assert!(rendered >= 50, "only {rendered} cases rendered a prompt");
}

/// Templates whose call format Kaiyuan has no family for (`family: null` in the golden, which
/// says what they write), and what `ToolFormat::detect` picks for them today. None of these is
/// right; the table is here so a change in detection is seen, and so is the gap.
const UNSUPPORTED: &[(&str, &str)] = &[
    // `<tool_call>` then XML: the Hermes parser sees no JSON and returns the call as content
    // (under a grammar the call is forced into Hermes JSON instead, off the model's format).
    ("Qwen3-Coder", "hermes"),
    ("Qwen3.5-4B", "hermes"),
    ("NVIDIA-Nemotron-3-Nano-30B-A3B-BF16", "hermes"),
    ("StepFun3.5-Flash", "hermes"),
    // `<tool_calls>[…]</tool_calls>`; the instructions also mention `<tool_call></tool_call>`.
    ("unsloth-Apriel-1.5", "hermes"),
    // `<response>` beside a namespaced `<tool_call>` looks like ERNIE to the heuristic.
    ("MiniMax-M3", "ernie"),
    ("MiniMax-M2", "generic"),
    // `<|python_tag|>` is there, but custom functions are `<function=NAME>{json}</function>`.
    ("meetkai-functionary-medium-v3.1", "llama3"),
    ("moonshotai-Kimi-K2", "generic"),
];

#[test]
fn detect_picks_each_vendor_templates_documented_family() {
    let doc = golden();
    let mut wrong = Vec::new();
    let mut unsupported = 0;
    for (name, entry) in doc["templates"].as_object().expect("templates") {
        let source = template_source(name, entry);
        let got = ToolFormat::detect(&source).name();
        let Some(want) = entry["family"].as_str() else {
            unsupported += 1;
            let known = UNSUPPORTED.iter().find(|(n, _)| n == name);
            match known {
                Some((_, today)) if *today == got => {}
                _ => wrong.push(format!(
                    "{name} (writes {}): detected {got}, UNSUPPORTED says {known:?}",
                    entry["writes"]
                )),
            }
            continue;
        };
        if got != want {
            wrong.push(format!("{name}: detected {got}, documented {want}"));
        }
        // DeepSeek's own R1/V3.1 templates concatenate the arguments (the server passes text);
        // the copies that apply `tojson` get the object (`arguments` in the golden says which).
        // V3.2/V4's DSML templates take the object and write each value themselves.
        if want == "deepseek-r1" || want == "deepseek-v3.1" {
            let object = entry["arguments"] == "object";
            if template_serializes_arguments(&source) != object {
                wrong.push(format!(
                    "{name}: template_serializes_arguments is not {object}"
                ));
            }
        }
    }
    assert_eq!(
        unsupported,
        UNSUPPORTED.len(),
        "UNSUPPORTED and the golden differ"
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
