//! Checks kaiyuan-chat against testdata/golden/chat_template/cases.json, written by
//! tools/chat_template_golden.py with transformers' own `render_jinja_template` (Python Jinja2):
//! the rendered prompt must be identical, raised exceptions must carry the same message, and the
//! Markup segments must hold exactly the control-token look-alikes the template itself wrote.

use std::path::PathBuf;

use kaiyuan_chat::{ChatError, ChatTemplate, Message, RenderOptions, SegmentKind, Separation};
use serde_json::Value;

fn golden() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/golden/chat_template/cases.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("cases.json is JSON")
}

/// Python features minijinja lacks, kept in the goldens so a fix is noticed: `%` string
/// formatting, `str.swapcase`, tuples (printed as lists), the `center` filter.
const KNOWN_DIFFERENCES: &[&str] = &["snippet_15", "snippet_16", "snippet_17", "snippet_20"];

fn opt_str(v: &Value) -> Option<&str> {
    v.as_str()
}

#[test]
fn renders_equal_transformers_goldens() {
    let doc = golden();
    let templates = doc["templates"].as_object().expect("templates");
    let cases = doc["cases"].as_array().expect("cases");
    assert!(
        cases.len() >= 100,
        "golden file has only {} cases",
        cases.len()
    );
    let mut failures = Vec::new();
    let mut separations = std::collections::BTreeMap::<String, usize>::new();
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let source = templates[case["template"].as_str().expect("template")]
            .as_str()
            .expect("source");
        let template = ChatTemplate::new(
            source,
            opt_str(&case["bos_token"]),
            opt_str(&case["eos_token"]),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let messages: Vec<Message> = serde_json::from_value(case["messages"].clone())
            .unwrap_or_else(|e| panic!("{name}: messages: {e}"));
        let opts = RenderOptions {
            add_generation_prompt: case["add_generation_prompt"]
                .as_bool()
                .expect("add_generation_prompt"),
            tools: Some(case["tools"].clone()).filter(|t| !t.is_null()),
            documents: None,
            extra: case["extra"].as_object().cloned().unwrap_or_default(),
            now_unix_seconds: None,
        };
        let now = case["now_unix"].as_i64().expect("now_unix");
        let opts = RenderOptions {
            now_unix_seconds: Some(now),
            ..opts
        };
        let mut result = template.render(&messages, &opts);
        if let Err(ChatError::Unseparable(_)) = result {
            // The template tests message text (e.g. `startswith`); separation needs the control
            // tokens, as the tokenizer will give them.
            let lookalikes = doc["lookalikes"].as_array().expect("lookalikes");
            let template = ChatTemplate::new(
                source,
                opt_str(&case["bos_token"]),
                opt_str(&case["eos_token"]),
            )
            .expect("compiled before")
            .with_control_tokens(
                lookalikes
                    .iter()
                    .map(|t| t.as_str().expect("token").to_string()),
            );
            result = template.render(&messages, &opts);
        }
        if let Some(error) = case.get("error") {
            let raised = case["raised"].as_bool().unwrap_or(false);
            match (&result, raised) {
                (Err(ChatError::Raised(msg)), true)
                    if msg == error.as_str().unwrap_or_default() => {}
                (Err(_), false) => {}
                _ => failures.push(format!("{name}: expected error {error}, got {result:?}")),
            }
            continue;
        }
        let expected = case["expected"].as_str().expect("expected");
        if KNOWN_DIFFERENCES.contains(&name) {
            let same = result.as_ref().is_ok_and(|p| p.text() == expected);
            assert!(
                !same,
                "{name} matches Python now; remove it from KNOWN_DIFFERENCES"
            );
            continue;
        }
        let prompt = match result {
            Ok(prompt) => prompt,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        *separations
            .entry(format!("{:?}", prompt.separation))
            .or_default() += 1;
        if !matches!(prompt.separation, Separation::Exact | Separation::Aligned) {
            eprintln!("{name}: {:?}", prompt.separation);
        }
        if prompt.text() != expected {
            failures.push(format!(
                "{name}: rendered\n{:?}\nexpected\n{expected:?}",
                prompt.text()
            ));
            continue;
        }
        for pair in prompt.segments.windows(2) {
            assert_ne!(
                pair[0].kind, pair[1].kind,
                "{name}: neighbouring segments of one kind"
            );
        }
        assert!(
            prompt.segments.iter().all(|s| !s.text.is_empty()),
            "{name}: empty segment"
        );
        for (token, count) in case["markup_token_counts"].as_object().expect("counts") {
            let in_markup: usize = prompt
                .segments
                .iter()
                .filter(|s| s.kind == SegmentKind::Markup)
                .map(|s| s.text.matches(token.as_str()).count())
                .sum();
            if in_markup as u64 != count.as_u64().expect("count") {
                failures.push(format!(
                    "{name}: {token} appears {in_markup} times in markup, the template wrote it {count} times; {:?}",
                    prompt.segments
                ));
            }
        }
    }
    eprintln!("separation methods used: {separations:?}");
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
    assert!(separations
        .get(&format!("{:?}", Separation::Exact))
        .is_some_and(|n| *n > 10));
}
