//! Unit tests of the reasoning fields, the template variables they make and the token
//! attribution of [`ReasoningTracker`].

use serde_json::json;

use super::*;

fn param_of(thinking: Value, effort: Value, kwargs: Value) -> String {
    match request(Some(&thinking), Some(&effort), Some(&kwargs)) {
        Ok(r) => panic!("accepted: {r:?}"),
        Err(e) => e.param().unwrap_or("<none>").to_string(),
    }
}

#[test]
fn thinking_fields_are_read_and_checked() {
    let r = request(Some(&json!({"type": "disabled"})), None, None).expect("valid");
    assert_eq!(r.thinking, Some(false));
    let r = request(
        None,
        Some(&json!("high")),
        Some(&json!({"enable_thinking": true, "x": [1]})),
    )
    .expect("valid");
    assert_eq!((r.thinking, r.effort), (Some(true), Some(Effort::High)));
    assert_eq!(r.template_kwargs.get("x"), Some(&json!([1])));
    let none = request(None, None, None).expect("valid");
    assert_eq!(none, ReasoningRequest::default());

    assert_eq!(
        param_of(json!({"type": "maybe"}), Value::Null, Value::Null),
        "thinking.type"
    );
    assert_eq!(param_of(json!(true), Value::Null, Value::Null), "thinking");
    assert_eq!(
        param_of(Value::Null, json!("extreme"), Value::Null),
        "reasoning_effort"
    );
    assert_eq!(
        param_of(Value::Null, json!(3), Value::Null),
        "reasoning_effort"
    );
    assert_eq!(
        param_of(Value::Null, Value::Null, json!("enable_thinking=false")),
        "chat_template_kwargs"
    );
    assert_eq!(
        param_of(Value::Null, Value::Null, json!({"enable_thinking": "no"})),
        "chat_template_kwargs.enable_thinking"
    );
    assert_eq!(
        param_of(Value::Null, Value::Null, json!({"messages": []})),
        "chat_template_kwargs.messages"
    );
    assert_eq!(
        param_of(
            json!({"type": "enabled"}),
            Value::Null,
            json!({"enable_thinking": false})
        ),
        "thinking"
    );
}

#[test]
fn message_reasoning_is_a_string_on_assistant_messages() {
    assert_eq!(
        message_reasoning(1, "assistant", Some(&json!("hm"))).expect("valid"),
        Some("hm".to_string())
    );
    assert_eq!(message_reasoning(0, "user", None).expect("valid"), None);
    for (role, value) in [("assistant", json!(5)), ("user", json!("x"))] {
        let e = message_reasoning(2, role, Some(&value)).expect_err("refused");
        assert_eq!(e.param(), Some("messages[2].reasoning_content"));
    }
}

fn of_source(source: &str) -> TemplateReasoning {
    TemplateReasoning::of_template(&ChatTemplate::new(source, None, None).expect("compiles"))
}

#[test]
fn template_variables_follow_the_template_and_the_default() {
    let qwen = of_source("{% if enable_thinking is defined %}<think>{% endif %}");
    let r1 = of_source("<|Assistant|><think>\n");
    let plain = of_source("{{ messages[0].content }}");
    // DeepSeek V3.1 style: a bare `thinking` variable; a message field or a string is not one.
    let v31 = of_source(
        "{%- if not thinking is defined %}{% set thinking = false %}{% endif %}\
         {% if thinking %}<think>{% else %}</think>{% endif %}",
    );
    let field = of_source("{{ message.thinking }}{{ 'thinking' }} thinking");
    let flag = |name| Some(Switch::Flag(name));
    assert_eq!((qwen.switch, qwen.thinks), (flag("enable_thinking"), true));
    assert_eq!((r1.switch, r1.thinks), (None, true));
    assert_eq!((v31.switch, v31.thinks), (flag("thinking"), true));
    assert_eq!((field.switch, field.thinks), (None, false));
    assert!(!plain.thinks);

    let off = ReasoningRequest {
        thinking: Some(false),
        effort: Some(Effort::Low),
        ..ReasoningRequest::default()
    };
    let vars = template_variables(&off, &qwen, true);
    assert_eq!(vars.get("enable_thinking"), Some(&json!(false)));
    assert_eq!(vars.get("reasoning_effort"), Some(&json!("low")));
    // A template that does not read enable_thinking does not get it.
    assert!(!template_variables(&off, &r1, true).contains_key("enable_thinking"));
    // The server default applies when the request says nothing.
    let vars = template_variables(&ReasoningRequest::default(), &qwen, false);
    assert_eq!(vars.get("enable_thinking"), Some(&json!(false)));
    let vars = template_variables(&off, &v31, true);
    assert_eq!(vars.get("thinking"), Some(&json!(false)));
    assert!(!vars.contains_key("enable_thinking"));
    // The kwargs' own value of the switch is never overridden.
    let mut kwargs = ReasoningRequest::default();
    kwargs
        .template_kwargs
        .insert("thinking".into(), json!(true));
    assert_eq!(
        template_variables(&kwargs, &v31, false)["thinking"],
        json!(true)
    );
}

/// A template in Hunyuan Hy3's manner: its tags built with `.format`, thinking switched by
/// `reasoning_effort` (`no_think` | `low` | `high`; anything else raises), the generation
/// prompt leaving `<think:x>` open unless `no_think`.
const HY3_LIKE: &str = "{%- set T = ':x' %}\
    {%- if not reasoning_effort is defined %}{%- set reasoning_effort = 'no_think' %}\
    {%- elif reasoning_effort not in ['high', 'low', 'no_think'] %}{{ raise_exception('effort') }}\
    {%- endif %}\
    {%- for m in messages %}{%- if m.reasoning_content %}\
    {{ '<think{}>'.format(T) }}{{ m.reasoning_content }}{{ '</think{}>'.format(T) }}\
    {%- endif %}{{ m.content }}{%- endfor %}\
    {%- if add_generation_prompt %}<A>{%- if reasoning_effort == 'no_think' %}\
    {{ '<think{}></think{}>'.format(T, T) }}{%- else %}{{ '<think{}>'.format(T) }}{%- endif %}\
    {%- endif %}";

#[test]
fn an_effort_switch_gets_no_think_low_or_high() {
    let hy3 = of_source(HY3_LIKE);
    assert_eq!((hy3.switch, hy3.thinks), (Some(Switch::Effort), true));
    assert_eq!(
        (hy3.tags.open.as_str(), hy3.tags.close.as_str()),
        ("<think:x>", "</think:x>")
    );
    let effort = |thinking: Option<bool>, effort: Option<Effort>, default: bool| {
        let req = ReasoningRequest {
            thinking,
            effort,
            ..ReasoningRequest::default()
        };
        template_variables(&req, &hy3, default)["reasoning_effort"].clone()
    };
    assert_eq!(effort(None, None, true), json!("high"));
    assert_eq!(effort(None, None, false), json!("no_think"));
    assert_eq!(
        effort(Some(false), Some(Effort::High), true),
        json!("no_think")
    );
    assert_eq!(effort(Some(true), None, false), json!("high"));
    assert_eq!(effort(None, Some(Effort::Low), false), json!("low"));
    assert_eq!(effort(None, Some(Effort::Medium), true), json!("high"));
    assert_eq!(effort(Some(true), Some(Effort::High), false), json!("high"));
    assert_eq!(effort(None, Some(Effort::None), true), json!("no_think"));
    assert_eq!(effort(None, Some(Effort::Minimal), false), json!("low"));
    assert_eq!(effort(None, Some(Effort::Max), false), json!("high"));
    // The kwargs' own value wins.
    let mut kwargs = ReasoningRequest::default();
    kwargs
        .template_kwargs
        .insert("reasoning_effort".into(), json!("no_think"));
    assert_eq!(
        template_variables(&kwargs, &hy3, true)["reasoning_effort"],
        json!("no_think")
    );
    // Every value the mapping produces is one the template takes; its prompt then opens the
    // block with its own tag exactly when thinking is on.
    let template = ChatTemplate::new(HY3_LIKE, None, None).expect("compiles");
    for (thinking, opens) in [(Some(true), true), (Some(false), false)] {
        let req = ReasoningRequest {
            thinking,
            effort: Some(Effort::Medium),
            ..ReasoningRequest::default()
        };
        let opts = kaiyuan_chat::RenderOptions {
            add_generation_prompt: true,
            extra: template_variables(&req, &hy3, true),
            ..Default::default()
        };
        let rendered = template
            .render(&[kaiyuan_chat::Message::text("user", "hi")], &opts)
            .expect("renders");
        assert_eq!(rendered.ends_inside(&hy3.tags.open), opens);
    }
}

#[test]
fn a_template_s_own_tags_split_its_reasoning() {
    let hy3 = of_source(HY3_LIKE);
    let tokens = ["Let", " me see.", "</think:x>", "\n\nFour", "."];
    let (r, c, n) = split_whole(&hy3.tags, true, tokens.iter().copied(), "");
    assert_eq!(
        (r.as_deref(), c.as_str(), n),
        (Some("Let me see."), "Four.", 3)
    );
    // `<think>` is not its tag: answer text.
    let (r, c, _) = split_whole(&hy3.tags, false, ["<think>a</think>b"].into_iter(), "");
    assert_eq!((r, c.as_str()), (None, "<think>a</think>b"));
    assert!(still_open(&hy3.tags, false, "<think:x>so"));
    assert!(!still_open(&hy3.tags, true, "so</think:x>ok"));
    assert!(still_open(&hy3.tags, true, "so</think>ok"));
}

/// Pushes each token and returns (reasoning, content, reasoning tokens).
fn split(starts: bool, tokens: &[&str]) -> (Option<String>, String, usize) {
    split_whole(&ThinkTags::default(), starts, tokens.iter().copied(), "")
}

#[test]
fn tokens_inside_the_block_and_its_tags_count_as_reasoning() {
    // Open tag, 2 tokens of reasoning, close tag, 2 tokens of answer.
    let (r, c, n) = split(false, &["<think>", "a", " b", "</think>", "\n\nYes", "."]);
    assert_eq!((r.as_deref(), c.as_str(), n), (Some("a b"), "Yes.", 4));
    // A close tag split over tokens, the last one straddling into the answer: reasoning.
    let (r, c, n) = split(true, &["x", "</", "think>\n\nA", "B"]);
    assert_eq!((r.as_deref(), c.as_str(), n), (Some("x"), "AB", 3));
    // Whitespace and a partial open tag before the block count once it opens.
    let (r, _, n) = split(false, &["\n", "<", "think>", "r", "</think>"]);
    assert_eq!((r.as_deref(), n), (Some("r"), 5));
    // A whole block in one token.
    let (r, c, n) = split(false, &[" ", "<think>a</think>b", "c"]);
    assert_eq!((r.as_deref(), c.as_str(), n), (Some("a"), "bc", 2));
}

#[test]
fn output_without_reasoning_has_no_reasoning_tokens() {
    let (r, c, n) = split(false, &[" ", "<", "b>", " <think>"]);
    assert_eq!((r, c.as_str(), n), (None, " <b> <think>", 0));
    // The prompt opened the block and the model never closed it: all reasoning.
    let (r, c, n) = split(true, &["a", "b", "c"]);
    assert_eq!((r.as_deref(), c.as_str(), n), (Some("abc"), "", 3));
}

#[test]
fn a_prefix_decides_by_its_last_tag() {
    let tags = ThinkTags::default();
    assert!(still_open(&tags, true, "Let me see"));
    assert!(!still_open(&tags, true, "Hmm.</think>\n\nThe answer"));
    assert!(still_open(&tags, false, "<think>\nFirst"));
    assert!(!still_open(&tags, false, "<think>a</think> b"));
    assert!(!still_open(&tags, false, "plain"));
}
