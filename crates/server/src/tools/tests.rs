//! Tool planning: history conversion, call-id checks, and each family's call grammar driven
//! with a reply written from the family's documented format (see `kaiyuan_chat::tools`), which
//! the grammar must accept token by token and the family's parser must read back.

use std::path::PathBuf;
use std::sync::Arc;

use kaiyuan_chat::tools::{ArgTags, ToolChoice, ToolFormat, ToolSpec, GLM_TAGS};
use kaiyuan_chat::{Content, Message};
use kaiyuan_gguf::GgufFile;
use kaiyuan_grammar::{GrammarSpec, GrammarVocab};
use kaiyuan_tokenizer::{Tokenizer, Vocab};
use serde_json::{json, Value};

use super::*;
use crate::api::tools::ToolsRequest;

fn smollm2() -> Arc<Tokenizer> {
    tokenizer("SmolLM2-135M-Instruct.Q4_1.gguf")
}

fn tokenizer(file: &str) -> Arc<Tokenizer> {
    let dir = std::env::var_os("KAIYUAN_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"));
    let gguf = GgufFile::open(dir.join(file)).expect("run scripts/fetch-models");
    Arc::new(Tokenizer::from_vocab(&Vocab::from_gguf(&gguf).unwrap()).unwrap())
}

fn request(choice: ToolChoice, parallel: bool) -> ToolsRequest {
    let weather = json!({"type": "object", "properties": {"city": {"type": "string"}},
                         "required": ["city"], "additionalProperties": false});
    let specs = vec![
        ToolSpec::new("get_weather", weather.clone()),
        ToolSpec::new("get_time", json!({"type": "object", "properties": {}})),
    ];
    ToolsRequest {
        definitions: json!([{"type": "function", "function": {"name": "get_weather", "parameters": weather}},
                            {"type": "function", "function": {"name": "get_time"}}]),
        specs,
        choice,
        parallel,
    }
}

/// Drives `text` through `spec` token by token; Err with where it was refused.
fn accepts(
    vocab: &GrammarVocab,
    tok: &Tokenizer,
    spec: &GrammarSpec,
    text: &str,
) -> Result<(), String> {
    accepts_ids(vocab, tok, spec, &tok.encode(text, false))
}

/// [`accepts`] for token ids.
fn accepts_ids(
    vocab: &GrammarVocab,
    tok: &Tokenizer,
    spec: &GrammarSpec,
    ids: &[u32],
) -> Result<(), String> {
    let mut c = vocab.compile(spec).map_err(|e| format!("compile: {e}"))?;
    for (i, &t) in ids.iter().enumerate() {
        let mask = c.compute_mask().map_err(|e| e.to_string())?;
        if !mask.allows(t) {
            let bytes: Vec<u8> = ids[..i]
                .iter()
                .flat_map(|&t| tok.piece_bytes(t, true).unwrap_or_default().to_vec())
                .collect();
            let before = String::from_utf8_lossy(&bytes).into_owned();
            return Err(format!("token {t} refused after {before:?}"));
        }
        c.commit(t).map_err(|e| e.to_string())?;
    }
    let mask = c.compute_mask().map_err(|e| e.to_string())?;
    let eog = tok.end_of_generation_ids();
    if c.is_finished() || eog.iter().any(|&t| mask.allows(t)) {
        Ok(())
    } else {
        Err("the grammar wants more".into())
    }
}

#[test]
fn each_familys_grammar_accepts_its_documented_syntax_and_the_parser_reads_it() {
    families_on(&smollm2());
}

fn families_on(tok: &Arc<Tokenizer>) {
    let tok = Arc::clone(tok);
    let vocab = GrammarVocab::new(Arc::clone(&tok), &tok.end_of_generation_ids()).unwrap();
    // (format, a reply with two calls as the family documents it, its second call alone)
    let cases = [
        (
            ToolFormat::Hermes,
            "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>",
        ),
        (
            ToolFormat::Mistral,
            "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}, {\"name\": \"get_time\", \"arguments\": {}}]",
        ),
        (
            ToolFormat::DeepSeekR1,
            "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
        ),
        (
            ToolFormat::DeepSeekV31,
            "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \"Paris\"}<｜tool▁call▁end｜><｜tool▁call▁begin｜>get_time<｜tool▁sep｜>{}<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
        ),
    ];
    for (format, text) in cases {
        let (content, calls) = format.parse_all(text);
        assert_eq!(content.trim(), "", "{format:?}");
        assert_eq!(calls.len(), 2, "{format:?}");
        assert_eq!(calls[0].name, "get_weather");
        let args: Value = serde_json::from_str(&calls[0].arguments).unwrap();
        assert_eq!(args, json!({"city": "Paris"}));
        if text.contains('｜') {
            // DeepSeek's markers are single tokens of DeepSeek vocabularies; spelled in this
            // test vocabulary's bytes (a multi-byte character split across tokens) llguidance
            // refuses them, so only compilation is checked here.
            let req = request(ToolChoice::Required, true);
            let mut messages = vec![Message::text("user", "hi")];
            let plan = prepare(format, "", &tok, Some(&req), None, &mut messages)
                .unwrap()
                .unwrap();
            vocab.compile(&plan.grammar.spec).expect("compiles");
            continue;
        }
        let req = request(ToolChoice::Required, true);
        let mut messages = vec![Message::text("user", "hi")];
        let plan = prepare(format, "", &tok, Some(&req), None, &mut messages)
            .unwrap()
            .unwrap();
        assert!(plan.triggers.is_empty());
        accepts(&vocab, &tok, &plan.grammar.spec, text)
            .unwrap_or_else(|e| panic!("{format:?}: {e}"));

        // Wrong arguments, an unknown tool and plain text are refused.
        let bad_args = text.replace("\"city\": \"Paris\"", "\"town\": \"Paris\"");
        assert!(
            accepts(&vocab, &tok, &plan.grammar.spec, &bad_args).is_err(),
            "{format:?}"
        );
        let unknown = text.replace("get_time", "get_date");
        assert!(
            accepts(&vocab, &tok, &plan.grammar.spec, &unknown).is_err(),
            "{format:?}"
        );
        assert!(
            accepts(&vocab, &tok, &plan.grammar.spec, "Hello").is_err(),
            "{format:?}"
        );

        // Not parallel: one call only.
        let one = prepare(
            format,
            "",
            &tok,
            Some(&request(ToolChoice::Required, false)),
            None,
            &mut messages,
        )
        .unwrap()
        .unwrap();
        assert!(
            accepts(&vocab, &tok, &one.grammar.spec, text).is_err(),
            "{format:?} parallel"
        );

        // auto: lazy from the trigger on; the grammar is what follows the trigger.
        let auto = prepare(
            format,
            "",
            &tok,
            Some(&request(ToolChoice::Auto, true)),
            None,
            &mut messages,
        )
        .unwrap()
        .unwrap();
        let trigger = &auto.triggers[0];
        let after = &text[text.find(trigger.as_str()).unwrap() + trigger.len()..];
        accepts(&vocab, &tok, &auto.grammar.spec, after)
            .unwrap_or_else(|e| panic!("{format:?} auto: {e}"));
    }
}

#[test]
fn llama3_calls_are_bare_json_or_after_the_python_tag() {
    let tok = smollm2();
    let vocab = GrammarVocab::new(Arc::clone(&tok), &tok.end_of_generation_ids()).unwrap();
    let text = "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}";
    let mut messages = vec![Message::text("user", "hi")];
    let named = ToolChoice::Named("get_weather".into());
    let plan = prepare(
        ToolFormat::Llama3,
        "",
        &tok,
        Some(&request(named, true)),
        None,
        &mut messages,
    )
    .unwrap()
    .unwrap();
    accepts(&vocab, &tok, &plan.grammar.spec, text).unwrap();
    let other = "{\"name\": \"get_time\", \"parameters\": {}}";
    assert!(
        accepts(&vocab, &tok, &plan.grammar.spec, other).is_err(),
        "named narrows"
    );
    let (_, calls) = ToolFormat::Llama3.parse_all(text);
    assert_eq!(calls[0].name, "get_weather");
    let (_, calls) = ToolFormat::Llama3.parse_all(&format!("<|python_tag|>{text}"));
    assert_eq!(calls.len(), 1);
}

#[test]
fn generic_format_prompts_the_tools_and_constrains_with_a_schema() {
    let tok = smollm2();
    let vocab = GrammarVocab::new(Arc::clone(&tok), &tok.end_of_generation_ids()).unwrap();
    let mut messages = vec![
        Message::text("system", "Be brief."),
        Message::text("user", "hi"),
    ];
    let plan = prepare(
        ToolFormat::Generic,
        "",
        &tok,
        Some(&request(ToolChoice::Auto, false)),
        None,
        &mut messages,
    )
    .unwrap()
    .unwrap();
    assert!(plan.template_tools.is_none() && plan.triggers.is_empty());
    let Some(Content::Text(system)) = &messages[0].content else {
        panic!()
    };
    assert!(
        system.starts_with("Be brief.\n\n") && system.contains("get_weather"),
        "{system}"
    );
    let call = r#"{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}"#;
    accepts(&vocab, &tok, &plan.grammar.spec, call).unwrap();
    accepts(&vocab, &tok, &plan.grammar.spec, r#"{"response": "Hi!"}"#).unwrap();
    let two = r#"{"tool_calls": [{"name": "get_time", "arguments": {}}, {"name": "get_time", "arguments": {}}]}"#;
    assert!(
        accepts(&vocab, &tok, &plan.grammar.spec, two).is_err(),
        "parallel_tool_calls false"
    );
}

#[test]
fn auto_with_a_response_format_is_refused_by_name() {
    let tok = smollm2();
    let g = GrammarRequest {
        spec: GrammarSpec::JsonObject,
        param: "response_format".into(),
        answer_only: true,
    };
    let mut messages = vec![Message::text("user", "hi")];
    let e = prepare(
        ToolFormat::Hermes,
        "",
        &tok,
        Some(&request(ToolChoice::Auto, true)),
        Some(&g),
        &mut messages,
    )
    .unwrap_err();
    assert_eq!(e.param(), Some("response_format"));
    let ok = prepare(
        ToolFormat::Hermes,
        "",
        &tok,
        Some(&request(ToolChoice::Required, true)),
        Some(&g),
        &mut messages,
    );
    assert!(ok.is_ok());
}

fn assistant_call(id: &str) -> Message {
    let mut m = Message::text("assistant", "");
    m.tool_calls = Some(json!([{"id": id, "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]));
    m
}

fn tool_result(id: Option<&str>, text: &str) -> Message {
    let mut m = Message::text("tool", text);
    m.tool_call_id = id.map(str::to_string);
    m
}

#[test]
fn generic_history_becomes_json_replies_and_one_user_message_per_run_of_results() {
    let tok = smollm2();
    let mut messages = vec![
        Message::text("user", "weather?"),
        assistant_call("call_1"),
        tool_result(Some("call_1"), "sunny"),
        tool_result(None, "22C"),
    ];
    prepare(ToolFormat::Generic, "", &tok, None, None, &mut messages).unwrap();
    assert_eq!(messages.len(), 3);
    let text = |m: &Message| match &m.content {
        Some(Content::Text(t)) => serde_json::from_str::<Value>(t).unwrap(),
        _ => panic!(),
    };
    assert_eq!(
        text(&messages[1]),
        json!({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]})
    );
    assert!(messages[1].tool_calls.is_none());
    assert_eq!(messages[2].role, "user");
    assert_eq!(
        text(&messages[2]),
        json!({"tool_results": [
            {"content": "sunny", "name": "get_weather", "tool_call_id": "call_1"},
            {"content": "22C"}]})
    );
}

#[test]
fn deepseek_templates_get_arguments_as_text() {
    let tok = smollm2();
    let mut messages = vec![Message::text("user", "weather?"), assistant_call("c")];
    prepare(ToolFormat::DeepSeekV31, "", &tok, None, None, &mut messages).unwrap();
    let args = &messages[1].tool_calls.as_ref().unwrap()[0]["function"]["arguments"];
    assert_eq!(args, &json!("{\"city\":\"Paris\"}"));
    // llama.cpp's and vLLM's copies of DeepSeek's templates serialize them with `tojson`.
    let mut messages = vec![Message::text("user", "weather?"), assistant_call("c")];
    let tojson = "{{ '<｜tool▁sep｜>' + tool['function']['arguments'] | tojson }}";
    prepare(
        ToolFormat::DeepSeekV31,
        tojson,
        &tok,
        None,
        None,
        &mut messages,
    )
    .unwrap();
    let args = &messages[1].tool_calls.as_ref().unwrap()[0]["function"]["arguments"];
    assert_eq!(args, &json!({"city": "Paris"}));
}

#[test]
fn tool_call_ids_are_checked_where_the_template_reads_them() {
    let tok = smollm2();
    let reads = "{{ message.tool_call_id }}";
    let base = vec![Message::text("user", "weather?"), assistant_call("call_1")];
    let mut ok = base.clone();
    ok.push(tool_result(Some("call_1"), "sunny"));
    prepare(ToolFormat::Mistral, reads, &tok, None, None, &mut ok).unwrap();
    for bad in [tool_result(Some("call_9"), "x"), tool_result(None, "x")] {
        let mut m = base.clone();
        m.push(bad);
        let e = prepare(ToolFormat::Mistral, reads, &tok, None, None, &mut m).unwrap_err();
        assert_eq!(e.param(), Some("messages[2].tool_call_id"));
        // A template that does not read the id does not need it.
        prepare(ToolFormat::Hermes, "{{ m }}", &tok, None, None, &mut m).unwrap();
    }
}

#[test]
fn mistral_v11_templates_get_the_args_form() {
    let tok = smollm2();
    let vocab = GrammarVocab::new(Arc::clone(&tok), &tok.end_of_generation_ids()).unwrap();
    // Mistral's v11+ form (mistral-common; Small 3.2, Devstral, Ministral 3 templates write
    // `[TOOL_CALLS]name[ARGS]{...}`, one marker per call).
    let text = "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}[TOOL_CALLS]get_time[ARGS]{}";
    let source = "{{ '[TOOL_CALLS]' + name + '[ARGS]' + arguments }}";
    let mut messages = vec![Message::text("user", "hi")];
    let plan = prepare(
        ToolFormat::Mistral,
        source,
        &tok,
        Some(&request(ToolChoice::Required, true)),
        None,
        &mut messages,
    )
    .unwrap()
    .unwrap();
    accepts(&vocab, &tok, &plan.grammar.spec, text).unwrap();
    let nemo = "[TOOL_CALLS][{\"name\": \"get_time\", \"arguments\": {}}]";
    assert!(accepts(&vocab, &tok, &plan.grammar.spec, nemo).is_err());
    let (_, calls) = ToolFormat::Mistral.parse_all(text);
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].name, "get_time");
    // A template without `[ARGS]` keeps Nemo's list.
    let plan = prepare(
        ToolFormat::Mistral,
        "[TOOL_CALLS]",
        &tok,
        Some(&request(ToolChoice::Required, true)),
        None,
        &mut messages,
    )
    .unwrap()
    .unwrap();
    accepts(&vocab, &tok, &plan.grammar.spec, nemo).unwrap();
}

/// GLM-4.6's and GLM-4.7's call layouts (`kaiyuan_chat::tools::GlmParser`, from their chat
/// templates): two calls, the second without arguments.
const GLM_46: &str = "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n</tool_call>\n<tool_call>get_time\n</tool_call>";
/// The plans of `format` for `required` with parallel calls, `required` with one call, and
/// `auto`, for a plain user turn.
fn forced_single_auto(format: ToolFormat, tok: &Tokenizer) -> (ToolPlan, ToolPlan, ToolPlan) {
    let plan_for = |choice, parallel| {
        let mut messages = vec![Message::text("user", "hi")];
        prepare(
            format,
            "",
            tok,
            Some(&request(choice, parallel)),
            None,
            &mut messages,
        )
        .unwrap()
        .unwrap()
    };
    (
        plan_for(ToolChoice::Required, true),
        plan_for(ToolChoice::Required, false),
        plan_for(ToolChoice::Auto, true),
    )
}

const GLM_47: &str = "<tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</arg_value></tool_call><tool_call>get_time</tool_call>";

#[test]
fn glm_grammar_accepts_both_layouts_and_the_parser_reads_them() {
    let tok = smollm2();
    let vocab = GrammarVocab::new(Arc::clone(&tok), &tok.end_of_generation_ids()).unwrap();
    let (forced, single, auto) = forced_single_auto(ToolFormat::Glm, &tok);
    assert_eq!(auto.triggers, ["<tool_call>"]);
    for text in [GLM_46, GLM_47] {
        accepts(&vocab, &tok, &forced.grammar.spec, text).unwrap_or_else(|e| panic!("{e}"));
        let after = text.strip_prefix("<tool_call>").unwrap();
        accepts(&vocab, &tok, &auto.grammar.spec, after).unwrap_or_else(|e| panic!("{e}"));
        assert!(accepts(&vocab, &tok, &single.grammar.spec, text).is_err());
        let mut stream = stream::ToolStream::for_plan(&forced);
        let mut deltas = stream.push(text);
        let rest = stream.finish();
        deltas.content.push_str(&rest.content);
        deltas.calls.extend(rest.calls);
        assert_eq!(deltas.content, "");
        let names: Vec<_> = deltas
            .calls
            .iter()
            .filter_map(|d| d.function.name.clone())
            .collect();
        assert_eq!(names, ["get_weather", "get_time"]);
        let args: String = deltas
            .calls
            .iter()
            .filter(|d| d.index == 0)
            .map(|d| d.function.arguments.as_str())
            .collect();
        assert_eq!(
            serde_json::from_str::<Value>(&args).unwrap(),
            json!({"city": "Paris"})
        );
        // Wrong argument, unknown tool, a missing required argument, plain text: refused.
        for bad in [
            text.replace("city", "town"),
            text.replace("get_time", "get_date"),
            text.replace("<arg_key>city</arg_key>", "")
                .replace("<arg_value>Paris</arg_value>", ""),
            "Hello".to_string(),
        ] {
            assert!(
                accepts(&vocab, &tok, &forced.grammar.spec, &bad).is_err(),
                "{bad:?}"
            );
        }
    }
}

#[test]
fn glm_values_are_raw_strings_or_json_of_their_schema() {
    let tok = smollm2();
    let vocab = GrammarVocab::new(Arc::clone(&tok), &tok.end_of_generation_ids()).unwrap();
    let alarm = json!({"type": "object", "properties": {
        "hour": {"type": "integer"}, "label": {"type": "string"},
        "repeat": {"type": "string", "enum": ["daily", "weekly"]}}, "required": ["hour"]});
    let req = ToolsRequest {
        definitions: json!([{"type": "function", "function": {"name": "set_alarm", "parameters": alarm}}]),
        specs: vec![ToolSpec::new("set_alarm", alarm.clone())],
        choice: ToolChoice::Named("set_alarm".into()),
        parallel: false,
    };
    let mut messages = vec![Message::text("user", "hi")];
    let plan = prepare(ToolFormat::Glm, "", &tok, Some(&req), None, &mut messages)
        .unwrap()
        .unwrap();
    let call = |hour: &str, label: &str, repeat: &str| {
        format!("<tool_call>set_alarm\n<arg_key>hour</arg_key>\n<arg_value>{hour}</arg_value>\n<arg_key>label</arg_key>\n<arg_value>{label}</arg_value>\n<arg_key>repeat</arg_key>\n<arg_value>{repeat}</arg_value>\n</tool_call>")
    };
    // A label that looks like JSON stays a string; the hour is a number.
    let text = call("7", "[1, \"wake\"] <b>", "daily");
    accepts(&vocab, &tok, &plan.grammar.spec, &text).unwrap_or_else(|e| panic!("{e}"));
    let mut stream = stream::ToolStream::for_plan(&plan);
    let mut deltas = stream.push(&text);
    deltas.calls.extend(stream.finish().calls);
    let args: String = deltas
        .calls
        .iter()
        .map(|d| d.function.arguments.as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"hour": 7, "label": "[1, \"wake\"] <b>", "repeat": "daily"})
    );
    for bad in [
        call("seven", "x", "daily"),
        call("7.5", "x", "daily"),
        call("7", "x", "hourly"),
        call("7", "a</arg_value>b", "daily"),
    ] {
        assert!(
            accepts(&vocab, &tok, &plan.grammar.spec, &bad).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn hunyuan_grammar_accepts_its_wrapped_calls_and_the_parser_reads_them() {
    let tok = smollm2();
    let vocab = GrammarVocab::new(Arc::clone(&tok), &tok.end_of_generation_ids()).unwrap();
    // Hy3's layout (tencent-Hy3's chat template; `kaiyuan_chat::tools::GlmParser::hunyuan`).
    let text = "<tool_calls:opensource>\n<tool_call:opensource>get_weather<tool_sep:opensource>\n<arg_key:opensource>city</arg_key:opensource>\n<arg_value:opensource>Paris</arg_value:opensource>\n</tool_call:opensource>\n<tool_call:opensource>get_time<tool_sep:opensource>\n</tool_call:opensource>\n</tool_calls:opensource>";
    let (forced, single, auto) = forced_single_auto(ToolFormat::Hunyuan, &tok);
    accepts(&vocab, &tok, &forced.grammar.spec, text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(auto.triggers, ["<tool_calls:opensource>"]);
    let after = text.strip_prefix("<tool_calls:opensource>").unwrap();
    accepts(&vocab, &tok, &auto.grammar.spec, after).unwrap_or_else(|e| panic!("{e}"));
    assert!(accepts(&vocab, &tok, &single.grammar.spec, text).is_err());
    for bad in [
        text.replace("city", "town"),
        text.replace("<tool_sep:opensource>", ""),
        text.replace("\n</tool_calls:opensource>", ""),
        GLM_46.to_string(),
    ] {
        assert!(
            accepts(&vocab, &tok, &forced.grammar.spec, &bad).is_err(),
            "{bad:?}"
        );
    }
    let (content, calls) = ToolFormat::Hunyuan.parse_all(text);
    assert_eq!(content, "");
    assert_eq!(calls.len(), 2);
    assert_eq!(
        serde_json::from_str::<Value>(&calls[0].arguments).unwrap(),
        json!({"city": "Paris"})
    );
}

/// Where the value's close tag is a control token (as `</arg_value>` may be in a GLM
/// vocabulary), a raw value is text up to that token: SmolLM2's `<|im_start|>` stands in for it.
#[test]
fn raw_values_end_at_a_control_token_close_tag() {
    let tok = smollm2();
    let vocab = GrammarVocab::new(Arc::clone(&tok), &tok.end_of_generation_ids()).unwrap();
    const TAGS: ArgTags = ArgTags {
        value_close: "<|im_start|>",
        ..GLM_TAGS
    };
    let note = ToolSpec::new(
        "note",
        json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
    );
    let g = lark::arg_tags_grammar(&TAGS, &[&note], false, &tok);
    assert!(g.rules.contains("GLM_RAW <["), "{}", g.rules);
    let spec = GrammarSpec::Lark(lark::forced_grammar(ToolFormat::Glm, &g, &tok));
    let ids = |text: &str| tok.encode(text, true);
    let call = |value: &str| {
        ids(&format!(
            "<tool_call>note\n<arg_key>text</arg_key>\n<arg_value>{value}<|im_start|>\n</tool_call>"
        ))
    };
    accepts_ids(&vocab, &tok, &spec, &call("two\nlines, <b> & 🙂"))
        .unwrap_or_else(|e| panic!("{e}"));
    accepts_ids(&vocab, &tok, &spec, &call("")).unwrap_or_else(|e| panic!("{e}"));
    // The close tag spelled as text inside the value is refused.
    let spelled: Vec<u32> = [
        ids("<tool_call>note<arg_key>text</arg_key><arg_value>a"),
        tok.encode("<|im_start|>", false),
        ids("b<|im_start|></tool_call>"),
    ]
    .concat();
    assert!(accepts_ids(&vocab, &tok, &spec, &spelled).is_err());
}

#[path = "tests_dsml.rs"]
mod dsml;
