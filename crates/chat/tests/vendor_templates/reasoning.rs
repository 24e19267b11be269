//! The reasoning tags each vendor template writes ([`ThinkTags`], read from Kaiyuan's own
//! render of a probe conversation) must be the ones transformers' render puts around an
//! assistant turn's reasoning in the goldens (`reasoning_call`); and Hunyuan Hy3, whose template
//! builds `<think:opensource>` with `.format()`, opens its generation prompt with that tag
//! exactly when `reasoning_effort` is `low` or `high`.

use kaiyuan_chat::{ChatTemplate, Message, RenderOptions, ThinkTags};
use serde_json::{json, Map};

use super::{golden, template_source};

fn template(doc: &serde_json::Value, name: &str) -> ChatTemplate {
    let entry = &doc["templates"][name];
    let source = template_source(name, entry);
    ChatTemplate::new(
        &source,
        entry["bos_token"].as_str(),
        entry["eos_token"].as_str(),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn probed_tags_are_the_ones_transformers_writes_around_reasoning() {
    let doc = golden();
    let mut checked = Vec::new();
    for case in doc["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        if !name.ends_with("/reasoning_call") {
            continue;
        }
        let tname = case["template"].as_str().expect("template");
        let reasoning = case["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .find_map(|m| m["reasoning_content"].as_str())
            .expect("the case has reasoning");
        let expected = case["expected"].as_str().expect("expected");
        let tags = template(&doc, tname).think_tags().cloned();
        let Some(at) = expected.find(reasoning) else {
            // The template drops this turn's reasoning: nothing to compare.
            continue;
        };
        let before = expected[..at].trim_end();
        let after = expected[at + reasoning.len()..].trim_start();
        match &tags {
            Some(t) => assert!(
                before.ends_with(&t.open) && after.starts_with(&t.close),
                "{tname}: tags {t:?}, but transformers wrote …{:?} REASONING {:?}…",
                &before[before.len().saturating_sub(30)..],
                &after[..after.len().min(30)]
            ),
            None => assert!(
                !(before.ends_with('>') && after.starts_with("</")),
                "{tname}: no tags found, but transformers wrapped the reasoning: …{:?} REASONING {:?}…",
                &before[before.len().saturating_sub(30)..],
                &after[..after.len().min(30)]
            ),
        }
        checked.push((tname.to_string(), tags.map(|t| t.open)));
    }
    let hy3 = checked.iter().find(|(n, _)| n == "tencent-Hy3");
    assert_eq!(
        hy3,
        Some(&(
            "tencent-Hy3".to_string(),
            Some("<think:opensource>".to_string())
        )),
        "checked: {checked:?}"
    );
    assert!(
        checked.len() >= 5,
        "only {} templates kept reasoning: {checked:?}",
        checked.len()
    );
}

#[test]
fn hy3_opens_its_own_tag_when_reasoning_effort_asks_for_thinking() {
    let doc = golden();
    let hy3 = template(&doc, "tencent-Hy3");
    let tags = hy3.think_tags().expect("Hy3 writes reasoning tags").clone();
    assert_eq!(
        tags,
        ThinkTags {
            open: "<think:opensource>".into(),
            close: "</think:opensource>".into(),
        }
    );
    for (effort, opens) in [("no_think", false), ("low", true), ("high", true)] {
        let mut extra = Map::new();
        extra.insert("reasoning_effort".into(), json!(effort));
        let opts = RenderOptions {
            add_generation_prompt: true,
            extra,
            ..RenderOptions::default()
        };
        let prompt = hy3
            .render(&[Message::text("user", "hi")], &opts)
            .unwrap_or_else(|e| panic!("{effort}: {e}"));
        assert_eq!(
            prompt.ends_inside(&tags.open),
            opens,
            "{effort}: {:?}",
            prompt.text()
        );
        assert!(!prompt.ends_inside("<think>"), "`<think>` is not Hy3's tag");
    }
}
