//! Unit tests of request validation: defaults, accepted shapes, and that every rejection
//! names its field.

use serde_json::{json, Value};

use super::*;

fn chat_ok(body: Value) -> ChatParams {
    chat(&body).unwrap_or_else(|e| panic!("{body} rejected: {e}"))
}

fn chat_param(body: Value) -> String {
    match chat(&body) {
        Ok(_) => panic!("{body} accepted"),
        Err(e) => e.param().unwrap_or("<none>").to_string(),
    }
}

fn completion_param(body: Value) -> String {
    match completion(&body) {
        Ok(_) => panic!("{body} accepted"),
        Err(e) => e.param().unwrap_or("<none>").to_string(),
    }
}

fn hi() -> Value {
    json!([{"role": "user", "content": "hi"}])
}

#[test]
fn chat_defaults_are_openai_defaults() {
    let p = chat_ok(json!({"model": "m", "messages": hi()}));
    assert_eq!(p.model.as_deref(), Some("m"));
    assert_eq!(p.messages.len(), 1);
    let g = p.gen;
    assert_eq!(g.sampling, SamplingParams::default());
    assert_eq!(g.max_tokens, None);
    assert_eq!(g.n, 1);
    assert!(g.stop.is_empty() && !g.stream && !g.include_usage && !g.ignore_eos);
}

#[test]
fn chat_fields_reach_the_sampler() {
    let p = chat_ok(json!({
        "messages": hi(), "temperature": 0, "top_p": 0.9, "top_k": 40, "min_p": 0.05,
        "presence_penalty": 0.5, "frequency_penalty": -0.5, "repetition_penalty": 1.1,
        "logit_bias": {"42": -100, "7": 5.5}, "seed": 1234, "stop": "\n\n", "n": 3,
        "max_completion_tokens": 20, "max_tokens": 99, "logprobs": true, "top_logprobs": 2,
        "stream": true, "stream_options": {"include_usage": true}, "user": "u1",
        "unknown_field": {"ignored": true}
    }));
    let s = &p.gen.sampling;
    assert_eq!(s.temperature, 0.0);
    assert_eq!(s.top_p, 0.9);
    assert_eq!(s.top_k, 40);
    assert_eq!(s.min_p, 0.05);
    assert_eq!(s.repetition_penalty, 1.1);
    let mut bias: Vec<(u32, f32)> = s.logit_bias.iter().collect();
    bias.sort_by_key(|&(t, _)| t);
    assert_eq!(bias, vec![(7, 5.5), (42, -100.0)]);
    assert_eq!(s.seed, Some(1234));
    assert_eq!(s.logprobs, Some(2));
    assert_eq!(p.gen.stop, vec!["\n\n".to_string()]);
    assert_eq!(p.gen.n, 3);
    assert_eq!(p.gen.max_tokens, Some(20), "max_completion_tokens wins");
    assert!(p.gen.stream && p.gen.include_usage);
    assert_eq!(p.gen.user.as_deref(), Some("u1"));
}

#[test]
fn logprobs_without_top_is_chosen_token_only() {
    let p = chat_ok(json!({"messages": hi(), "logprobs": true}));
    assert_eq!(p.gen.sampling.logprobs, Some(0));
    let p = chat_ok(json!({"messages": hi(), "logprobs": false}));
    assert_eq!(p.gen.sampling.logprobs, None);
}

#[test]
fn chat_rejections_name_the_field() {
    let cases = [
        (json!({"messages": hi(), "temperature": 2.5}), "temperature"),
        (
            json!({"messages": hi(), "temperature": "hot"}),
            "temperature",
        ),
        (json!({"messages": hi(), "top_p": 0}), "top_p"),
        (json!({"messages": hi(), "min_p": 2}), "min_p"),
        (
            json!({"messages": hi(), "presence_penalty": 3}),
            "presence_penalty",
        ),
        (
            json!({"messages": hi(), "frequency_penalty": -3}),
            "frequency_penalty",
        ),
        (
            json!({"messages": hi(), "repetition_penalty": 0}),
            "repetition_penalty",
        ),
        (json!({"messages": hi(), "n": 0}), "n"),
        (json!({"messages": hi(), "n": 17}), "n"),
        (json!({"messages": hi(), "n": 1.5}), "n"),
        (json!({"messages": hi(), "max_tokens": 0}), "max_tokens"),
        (
            json!({"messages": hi(), "max_completion_tokens": -1}),
            "max_completion_tokens",
        ),
        (json!({"messages": hi(), "stop": 5}), "stop"),
        (json!({"messages": hi(), "stop": ["a", 1]}), "stop[1]"),
        (json!({"messages": hi(), "stop": [""]}), "stop"),
        (json!({"messages": hi(), "stop": vec!["x"; 17]}), "stop"),
        (
            json!({"messages": hi(), "logit_bias": {"x": 1}}),
            "logit_bias.x",
        ),
        (
            json!({"messages": hi(), "logit_bias": {"5": "a"}}),
            "logit_bias.5",
        ),
        (
            json!({"messages": hi(), "logit_bias": {"5": 101}}),
            "logit_bias",
        ),
        (json!({"messages": hi(), "logit_bias": []}), "logit_bias"),
        (
            json!({"messages": hi(), "logit_bias": {"5": 1, " 5": 2}}),
            "logit_bias",
        ),
        (json!({"messages": hi(), "top_logprobs": 2}), "top_logprobs"),
        (
            json!({"messages": hi(), "logprobs": true, "top_logprobs": 21}),
            "top_logprobs",
        ),
        (json!({"messages": hi(), "logprobs": 1}), "logprobs"),
        (json!({"messages": hi(), "seed": "x"}), "seed"),
        (json!({"messages": hi(), "stream": "yes"}), "stream"),
        (
            json!({"messages": hi(), "stream_options": {"include_usage": 1}}),
            "stream_options.include_usage",
        ),
        (
            json!({"messages": hi(), "tools": [{"type": "function"}]}),
            "tools[0].function",
        ),
        (
            json!({"messages": hi(), "functions": [{"name": "f"}]}),
            "functions",
        ),
        (
            json!({"messages": hi(), "response_format": {"type": "yaml"}}),
            "response_format.type",
        ),
        (
            json!({"messages": hi(), "grammar": {"type": "lark"}}),
            "grammar.value",
        ),
        (json!({"model": 5, "messages": hi()}), "model"),
        (json!({}), "messages"),
        (json!({"messages": []}), "messages"),
        (json!({"messages": "hi"}), "messages"),
        (json!({"messages": [{"content": "hi"}]}), "messages[0].role"),
        (
            json!({"messages": [{"role": "robot", "content": "hi"}]}),
            "messages[0].role",
        ),
        (
            json!({"messages": [{"role": "function", "content": "hi"}]}),
            "messages[0].role",
        ),
        (
            json!({"messages": [{"role": "tool"}]}),
            "messages[0].content",
        ),
        (
            json!({"messages": [{"role": "user", "content": "a", "tool_call_id": "x"}]}),
            "messages[0].tool_call_id",
        ),
        (
            json!({"messages": [{"role": "user", "content": "a", "tool_calls": []}]}),
            "messages[0].tool_calls",
        ),
        (
            json!({"messages": [{"role": "user"}]}),
            "messages[0].content",
        ),
        (
            json!({"messages": [{"role": "user", "content": 5}]}),
            "messages[0].content",
        ),
        (
            json!({"messages": [{"role": "user", "content": "a", "name": "a b"}]}),
            "messages[0].name",
        ),
        (
            json!({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": null, "tool_calls": [{}]}]}),
            "messages[1].tool_calls[0].function",
        ),
    ];
    for (body, param) in cases {
        assert_eq!(chat_param(body.clone()), param, "{body}");
    }
}

#[test]
fn content_parts_are_joined_and_other_types_refused() {
    let p = chat_ok(json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}]}));
    assert_eq!(
        p.messages[0].content,
        Some(kaiyuan_chat::Content::Text("one\ntwo".into()))
    );
    let e = chat(&json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "x"}}]}]}))
    .unwrap_err();
    assert_eq!(e.param(), Some("messages[0].content[1].type"));
    assert!(e.to_string().contains("image_url"), "{e}");
    assert_eq!(
        chat_param(json!({"messages": [{"role": "user", "content": [{"type": "text"}]}]})),
        "messages[0].content[0].text"
    );
}

#[test]
fn developer_is_system_and_assistant_content_may_be_null() {
    let p = chat_ok(json!({"messages": [
        {"role": "developer", "content": "rules"},
        {"role": "user", "content": "q", "name": "alice_1"},
        {"role": "assistant", "content": null},
        {"role": "user", "content": "again"}]}));
    assert_eq!(p.messages[0].role, "system");
    assert_eq!(p.messages[1].name.as_deref(), Some("alice_1"));
    assert_eq!(
        p.messages[2].content,
        Some(kaiyuan_chat::Content::Text(String::new()))
    );
}

#[test]
fn completion_prompt_shapes() {
    let one = |prompt: Value| completion(&json!({"prompt": prompt})).unwrap().prompts;
    assert_eq!(one(json!("hi")), vec![PromptInput::Text("hi".into())]);
    assert_eq!(
        one(json!(["a", "b"])),
        vec![PromptInput::Text("a".into()), PromptInput::Text("b".into())]
    );
    assert_eq!(
        one(json!([1, 2, 3])),
        vec![PromptInput::Tokens(vec![1, 2, 3])]
    );
    assert_eq!(
        one(json!([[1], [2, 3]])),
        vec![
            PromptInput::Tokens(vec![1]),
            PromptInput::Tokens(vec![2, 3])
        ]
    );
}

#[test]
fn completion_rejections_name_the_field() {
    let cases = [
        (json!({}), "prompt"),
        (json!({"prompt": 5}), "prompt"),
        (json!({"prompt": []}), "prompt"),
        (json!({"prompt": [1, -2]}), "prompt[1]"),
        (json!({"prompt": ["a", 3]}), "prompt[1]"),
        (json!({"prompt": [[1], [1.5]]}), "prompt[1][0]"),
        (json!({"prompt": "a", "logprobs": 21}), "logprobs"),
        (json!({"prompt": "a", "logprobs": true}), "logprobs"),
        (json!({"prompt": "a", "echo": true, "logprobs": 1}), "echo"),
        (json!({"prompt": [[1, 2]], "suffix": "b"}), "suffix"),
        (json!({"prompt": "a", "suffix": "b", "echo": true}), "echo"),
        (json!({"prompt": "a", "best_of": 3}), "best_of"),
        (json!({"prompt": vec!["a"; 5], "n": 16}), "n"),
        (json!({"prompt": "a", "temperature": -1}), "temperature"),
    ];
    for (body, param) in cases {
        assert_eq!(completion_param(body.clone()), param, "{body}");
    }
}

#[test]
fn completion_logprobs_and_echo() {
    let p = completion(&json!({"prompt": "a", "logprobs": 3, "echo": false})).unwrap();
    assert_eq!(p.gen.sampling.logprobs, Some(3));
    let p = completion(&json!({"prompt": "a", "echo": true, "best_of": 2, "n": 2})).unwrap();
    assert!(p.echo);
    assert_eq!(p.gen.n, 2);
}

#[test]
fn negative_seed_is_two_complement() {
    let p = chat_ok(json!({"messages": hi(), "seed": -1}));
    assert_eq!(p.gen.sampling.seed, Some(u64::MAX));
}

#[test]
fn reasoning_fields_are_read_and_rejections_name_them() {
    let p = chat_ok(json!({
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "yo", "reasoning_content": "greet back"},
            {"role": "user", "content": "and?"}
        ],
        "thinking": {"type": "disabled"}, "reasoning_effort": "medium",
        "chat_template_kwargs": {"enable_thinking": false, "custom": {"a": [1, null]}}
    }));
    assert_eq!(
        p.messages[1].reasoning_content.as_deref(),
        Some("greet back")
    );
    assert_eq!(p.reasoning.thinking, Some(false));
    assert_eq!(
        p.reasoning.template_kwargs["custom"],
        json!({"a": [1, null]})
    );
    let bad = [
        (json!({"thinking": {"type": "on"}}), "thinking.type"),
        (json!({"thinking": 1}), "thinking"),
        (json!({"reasoning_effort": "maximum"}), "reasoning_effort"),
        (json!({"reasoning_effort": 3}), "reasoning_effort"),
        (json!({"chat_template_kwargs": 5}), "chat_template_kwargs"),
        (
            json!({"chat_template_kwargs": {"add_generation_prompt": false}}),
            "chat_template_kwargs.add_generation_prompt",
        ),
        (
            json!({"messages": [{"role": "assistant", "content": "x", "reasoning_content": ["x"]}]}),
            "messages[0].reasoning_content",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x", "reasoning_content": "y"}]}),
            "messages[0].reasoning_content",
        ),
    ];
    for (fields, param) in bad {
        let mut body = json!({"messages": hi()});
        for (k, v) in fields.as_object().expect("object") {
            body[k] = v.clone();
        }
        assert_eq!(chat_param(body), param);
    }
}

#[test]
fn prefix_completion_takes_the_last_assistant_message_off() {
    let p = chat_ok(
        json!({"messages": [{"role": "user", "content": "Write code"},
        {"role": "assistant", "content": "```python\n", "prefix": true}]}),
    );
    assert_eq!(p.prefix.as_deref(), Some("```python\n"));
    assert_eq!(p.messages.len(), 1);
    let p = chat_ok(json!({"messages": [{"role": "user", "content": "a"},
        {"role": "assistant", "content": "b", "prefix": false}]}));
    assert_eq!(p.prefix, None);
    assert_eq!(p.messages.len(), 2);
}
