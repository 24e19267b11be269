//! DeepSeek V3.2 / V4's DSML call grammar, driven with replies in their chat templates' layout
//! (`kaiyuan_chat::tools::DsmlParser`), which the grammar must accept token by token and the
//! parser read back.

use super::*;

/// DeepSeek V4's layout (its chat template's history rendering; `kaiyuan_chat::tools::DsmlParser`):
/// two calls, the second without arguments (V4 writes an empty line there).
const DSML_V4: &str = "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"get_weather\">\n<｜DSML｜parameter name=\"city\" string=\"true\">Paris</｜DSML｜parameter>\n</｜DSML｜invoke>\n<｜DSML｜invoke name=\"get_time\">\n\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>";

/// [`DSML_V4`], and the same calls in V3.2's layout (`function_calls`, no empty line).
fn both_versions() -> [(ToolFormat, String); 2] {
    let v32 = DSML_V4
        .replace("tool_calls>", "function_calls>")
        .replace("\n\n</", "\n</");
    [
        (ToolFormat::DeepSeekV4, DSML_V4.to_string()),
        (ToolFormat::DeepSeekV32, v32),
    ]
}

/// Gemma 3's vocabulary writes DSML's `｜` as one token, so our tokenizer's spelling of a
/// whole reply is one the grammar's mask allows token by token. (Byte-level vocabularies
/// without a `｜` token write it as byte tokens: on SmolLM2's, llguidance's mask after those
/// allows only some spellings of the text the grammar forces next; DeepSeek-LLM's is checked
/// in [`a_vocabulary_without_a_bar_token_can_still_write_the_calls`].)
fn gemma3() -> Arc<Tokenizer> {
    tokenizer("gemma-3-270m-q4_k_m.gguf")
}

/// llama.cpp's copy of DeepSeek-LLM's vocabulary (102,400 tokens, the one of DeepSeek-V2 and
/// V2-Lite; `scripts/fetch-templates` extracts it into `.cache/vendor-vocab/`).
fn deepseek_llm() -> Arc<Tokenizer> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../.cache/vendor-vocab/ggml-vocab-deepseek-llm.gguf");
    let gguf = GgufFile::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/fetch-templates)", path.display()));
    Arc::new(Tokenizer::from_vocab(&Vocab::from_gguf(&gguf).unwrap()).unwrap())
}

/// Whether the grammar lets a model write `text` in some spelling: at each step the longest
/// token the mask allows that continues `text` (as a model whose logits favour `text` would
/// pick), until all of it is written and the grammar may end. Returns the tokens it took.
fn writable(
    vocab: &GrammarVocab,
    tok: &Tokenizer,
    spec: &GrammarSpec,
    text: &str,
) -> Result<usize, String> {
    let pieces: Vec<Vec<u8>> = (0..tok.vocab_size() as u32)
        .map(|t| tok.piece_bytes(t, true).unwrap_or_default().to_vec())
        .collect();
    let mut c = vocab.compile(spec).map_err(|e| format!("compile: {e}"))?;
    let (mut rest, mut steps) = (text.as_bytes(), 0);
    while !rest.is_empty() {
        let mask = c.compute_mask().map_err(|e| e.to_string())?;
        let best = (0..pieces.len())
            .filter(|&t| !pieces[t].is_empty() && rest.starts_with(&pieces[t]))
            .filter(|&t| mask.allows(t as u32))
            .max_by_key(|&t| pieces[t].len());
        let Some(t) = best else {
            let done = String::from_utf8_lossy(&text.as_bytes()[..text.len() - rest.len()]);
            return Err(format!(
                "no allowed token continues the text after {done:?}"
            ));
        };
        c.commit(t as u32).map_err(|e| e.to_string())?;
        rest = &rest[pieces[t].len()..];
        steps += 1;
    }
    let mask = c.compute_mask().map_err(|e| e.to_string())?;
    let eog = tok.end_of_generation_ids();
    if c.is_finished() || eog.iter().any(|&t| mask.allows(t)) {
        Ok(steps)
    } else {
        Err("the grammar wants more".into())
    }
}

#[test]
fn a_vocabulary_without_a_bar_token_can_still_write_the_calls() {
    let tok = deepseek_llm();
    // This vocabulary has no token for `｜` alone (it spells it with byte tokens).
    assert!(
        tok.encode("｜", false).len() > 1,
        "{:?}",
        tok.encode("｜", false)
    );
    let vocab = GrammarVocab::new(Arc::clone(&tok), &tok.end_of_generation_ids()).unwrap();
    for (format, text) in both_versions() {
        let (forced, _, auto) = forced_single_auto(format, &tok);
        writable(&vocab, &tok, &forced.grammar.spec, &text)
            .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        // On this vocabulary our tokenizer's own spelling is allowed too.
        accepts(&vocab, &tok, &forced.grammar.spec, &text)
            .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        let trigger = format.triggers()[0];
        let after = &text[text.find(trigger).unwrap() + trigger.len()..];
        writable(&vocab, &tok, &auto.grammar.spec, after)
            .unwrap_or_else(|e| panic!("{format:?} auto: {e}"));
        // And it still refuses what is wrong.
        assert!(writable(
            &vocab,
            &tok,
            &forced.grammar.spec,
            &text.replace("city", "town")
        )
        .is_err());
    }
}

#[test]
fn dsml_grammar_accepts_the_templates_layout_and_the_parser_reads_it() {
    let tok = gemma3();
    let vocab = GrammarVocab::new(Arc::clone(&tok), &tok.end_of_generation_ids()).unwrap();
    for (format, text) in both_versions() {
        let (forced, single, auto) = forced_single_auto(format, &tok);
        let trigger = format.triggers()[0];
        assert_eq!(auto.triggers, [trigger]);
        accepts(&vocab, &tok, &forced.grammar.spec, &text)
            .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        // Without the template's `\n\n` before the block too.
        accepts(&vocab, &tok, &forced.grammar.spec, text.trim_start())
            .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        let after = &text[text.find(trigger).unwrap() + trigger.len()..];
        accepts(&vocab, &tok, &auto.grammar.spec, after)
            .unwrap_or_else(|e| panic!("{format:?} auto: {e}"));
        assert!(accepts(&vocab, &tok, &single.grammar.spec, &text).is_err());
        let mut stream = stream::ToolStream::for_plan(&forced);
        let mut deltas = stream.push(&text);
        let rest = stream.finish();
        deltas.content.push_str(&rest.content);
        deltas.calls.extend(rest.calls);
        assert_eq!(deltas.content, "");
        let calls = stream.complete_calls();
        let names: Vec<_> = calls.iter().map(|c| c.function.name.as_str()).collect();
        assert_eq!(names, ["get_weather", "get_time"]);
        assert_eq!(
            serde_json::from_str::<Value>(&calls[0].function.arguments).unwrap(),
            json!({"city": "Paris"})
        );
        // Wrong argument, unknown tool, a missing required argument, a string written as
        // JSON, the other version's block, plain text: refused.
        let other = if format == ToolFormat::DeepSeekV4 {
            text.replace("tool_calls>", "function_calls>")
        } else {
            text.replace("function_calls>", "tool_calls>")
        };
        for bad in [
            text.replace("city", "town"),
            text.replace("get_time", "get_date"),
            text.replace(
                "<｜DSML｜parameter name=\"city\" string=\"true\">Paris</｜DSML｜parameter>\n",
                "",
            ),
            text.replace("string=\"true\">Paris", "string=\"false\">\"Paris\""),
            other,
            "Hello".to_string(),
        ] {
            assert!(
                accepts(&vocab, &tok, &forced.grammar.spec, &bad).is_err(),
                "{format:?} {bad:?}"
            );
        }
    }
}

#[test]
fn dsml_values_are_raw_strings_or_json_of_their_schema() {
    let tok = gemma3();
    let vocab = GrammarVocab::new(Arc::clone(&tok), &tok.end_of_generation_ids()).unwrap();
    let alarm = json!({"type": "object", "properties": {
        "hour": {"type": "integer"}, "label": {"type": "string"},
        "repeat": {"type": "string", "enum": ["daily", "weekly"]},
        "note": {"type": ["string", "null"]}}, "required": ["hour"]});
    let req = ToolsRequest {
        definitions: json!([{"type": "function", "function": {"name": "set_alarm", "parameters": alarm}}]),
        specs: vec![ToolSpec::new("set_alarm", alarm.clone())],
        choice: ToolChoice::Named("set_alarm".into()),
        parallel: false,
    };
    let mut messages = vec![Message::text("user", "hi")];
    let plan = prepare(
        ToolFormat::DeepSeekV4,
        "",
        &tok,
        Some(&req),
        None,
        &mut messages,
    )
    .unwrap()
    .unwrap();
    let param = |key: &str, string: bool, value: &str| {
        format!(
            "<｜DSML｜parameter name=\"{key}\" string=\"{string}\">{value}</｜DSML｜parameter>\n"
        )
    };
    let call = |params: &[String]| {
        format!(
            "<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"set_alarm\">\n{}</｜DSML｜invoke>\n</｜DSML｜tool_calls>",
            params.concat()
        )
    };
    // A label that looks like JSON stays a string; the hour is a number; a nullable string
    // may be either.
    let text = call(&[
        param("hour", false, "7"),
        param("label", true, "[1, \"wake\"] <b>"),
        param("repeat", true, "daily"),
        param("note", false, "null"),
    ]);
    accepts(&vocab, &tok, &plan.grammar.spec, &text).unwrap_or_else(|e| panic!("{e}"));
    let (_, calls) = ToolFormat::DeepSeekV4.parse_all(&text);
    assert_eq!(
        serde_json::from_str::<Value>(&calls[0].arguments).unwrap(),
        json!({"hour": 7, "label": "[1, \"wake\"] <b>", "repeat": "daily", "note": null})
    );
    let note = call(&[param("hour", false, "7"), param("note", true, "a\nb")]);
    accepts(&vocab, &tok, &plan.grammar.spec, &note).unwrap_or_else(|e| panic!("{e}"));
    for bad in [
        call(&[param("hour", true, "7")]),
        call(&[param("hour", false, "7.5")]),
        call(&[param("hour", false, "7"), param("label", false, "\"x\"")]),
        call(&[param("hour", false, "7"), param("repeat", true, "hourly")]),
        call(&[
            param("hour", false, "7"),
            param("label", true, "a</｜DSML｜parameter>b"),
        ]),
        call(&[param("label", true, "x"), param("hour", false, "7")]),
    ] {
        assert!(
            accepts(&vocab, &tok, &plan.grammar.spec, &bad).is_err(),
            "{bad:?}"
        );
    }
}
