//! Structured output through the engine on the real default model (SmolLM2-135M-Instruct;
//! run scripts/fetch-models first): a 135M model that never writes valid JSON by itself
//! does under a grammar, whatever the sampling settings, alone or batched with unconstrained
//! requests (whose output the constrained ones must not change), and the request ends with
//! `Stop` when the grammar is complete.

use std::sync::Arc;

use kaiyuan_engine::sampling::SamplingParams;
use kaiyuan_engine::{
    Engine, EngineConfig, EngineHandle, Event, EventReceiver, FinishReason, GenerateRequest,
};
use kaiyuan_grammar::{GrammarSpec, GrammarVocab};
use kaiyuan_tokenizer::Tokenizer;
use serde_json::{json, Value};

mod common;

fn start() -> (EngineHandle, Arc<Tokenizer>, GrammarVocab) {
    let (model, tok) = common::load_smollm2();
    let config = EngineConfig {
        threads: 1,
        context: 512,
        ..EngineConfig::for_model(&model)
    };
    let engine = Engine::start(model, Arc::clone(&tok), config).expect("engine starts");
    let vocab = GrammarVocab::new(Arc::clone(&tok), engine.end_of_generation_ids()).unwrap();
    (engine, tok, vocab)
}

fn request(
    tok: &Tokenizer,
    prompt: &str,
    sampling: SamplingParams,
    max_tokens: usize,
) -> GenerateRequest {
    GenerateRequest {
        prompt: tok.encode_with_bos_eos(prompt, false),
        sampling,
        max_tokens,
        stop: Vec::new(),
        stop_token_ids: Vec::new(),
        ignore_eos: false,
        constraint: None,
    }
}

fn collect(mut rx: EventReceiver) -> (String, FinishReason, usize) {
    let mut text = String::new();
    let mut tokens = 0;
    while let Some(ev) = rx.blocking_recv() {
        match ev {
            Event::Scheduled { .. } => {}
            Event::Token(t) => {
                tokens += 1;
                text.push_str(&t.text);
            }
            Event::Finished(f) => {
                text.push_str(&f.text);
                return (text, f.reason, tokens);
            }
        }
    }
    panic!("the event stream ended without Finished");
}

fn person_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 20},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "pets": {"type": "array", "items": {"enum": ["cat", "dog"]}, "minItems": 1, "maxItems": 3}
        },
        "required": ["name", "age", "pets"],
        "additionalProperties": false
    })
}

/// Checks `text` against [`person_schema`] by hand.
fn check_person(text: &str) {
    let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    let obj = v.as_object().expect("an object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["age", "name", "pets"], "{text}");
    assert!(
        obj["name"].as_str().unwrap().chars().count() <= 20,
        "{text}"
    );
    let age = obj["age"].as_i64().expect("integer age");
    assert!((0..=120).contains(&age), "{text}");
    let pets = obj["pets"].as_array().unwrap();
    assert!((1..=3).contains(&pets.len()), "{text}");
    assert!(pets.iter().all(|p| p == "cat" || p == "dog"), "{text}");
}

#[test]
fn json_schema_output_validates_and_ends_with_stop() {
    let (engine, tok, vocab) = start();
    let spec = GrammarSpec::JsonSchema {
        schema: person_schema(),
        strict: true,
    };
    let constraint = vocab.compile(&spec).expect("compiles");
    for (seed, temperature) in [(0, 0.0), (1, 1.0), (2, 1.5)] {
        let sampling = SamplingParams {
            temperature,
            seed: Some(seed),
            ..SamplingParams::default()
        };
        let mut r = request(&tok, "Tell me a story about the sea.", sampling, 120);
        r.constraint = Some(constraint.fork());
        let (text, reason, _) = collect(engine.submit(r).unwrap());
        assert_eq!(reason, FinishReason::Stop, "{text:?}");
        check_person(&text);
    }
}

#[test]
fn without_the_grammar_the_model_writes_prose() {
    // The premise of the test above: the model's own greedy answer is not that JSON.
    let (engine, tok, _) = start();
    let r = request(
        &tok,
        "Tell me a story about the sea.",
        SamplingParams::greedy(),
        40,
    );
    let (text, _, _) = collect(engine.submit(r).unwrap());
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text:?}");
}

#[test]
fn regex_output_matches_and_stops_when_complete() {
    let (engine, tok, vocab) = start();
    let constraint = vocab
        .compile(&GrammarSpec::Regex("[a-z]{3}-[0-9]{2}".into()))
        .unwrap();
    for seed in 0..4 {
        let sampling = SamplingParams {
            temperature: 1.0,
            seed: Some(seed),
            ..SamplingParams::default()
        };
        let mut r = request(&tok, "Write a product code:", sampling, 50);
        r.constraint = Some(constraint.fork());
        let (text, reason, _) = collect(engine.submit(r).unwrap());
        assert_eq!(reason, FinishReason::Stop);
        let b = text.as_bytes();
        assert!(
            b.len() == 6
                && b[..3].iter().all(u8::is_ascii_lowercase)
                && b[3] == b'-'
                && b[4..].iter().all(u8::is_ascii_digit),
            "{text:?}"
        );
    }
}

#[test]
fn max_tokens_still_cuts_a_constrained_output() {
    let (engine, tok, vocab) = start();
    let mut r = request(&tok, "List numbers:", SamplingParams::greedy(), 5);
    r.constraint = Some(
        vocab
            .compile(&GrammarSpec::Regex("[0-9 ]{50}".into()))
            .unwrap(),
    );
    let (text, reason, tokens) = collect(engine.submit(r).unwrap());
    assert_eq!(reason, FinishReason::Length);
    assert_eq!(tokens, 5);
    assert!(
        text.bytes().all(|b| b.is_ascii_digit() || b == b' '),
        "{text:?}"
    );
}

#[test]
fn constrained_requests_leave_batched_neighbours_unchanged() {
    let (engine, tok, vocab) = start();
    let prompts = [
        "The capital of France is",
        "1, 2, 3, 4,",
        "My favourite colour is",
    ];
    let alone: Vec<String> = prompts
        .iter()
        .map(|p| {
            collect(
                engine
                    .submit(request(&tok, p, SamplingParams::greedy(), 24))
                    .unwrap(),
            )
            .0
        })
        .collect();
    let spec = GrammarSpec::JsonSchema {
        schema: person_schema(),
        strict: true,
    };
    let constraint = vocab.compile(&spec).unwrap();
    // Constrained and unconstrained requests interleaved in one batch.
    let mut receivers = Vec::new();
    for p in prompts {
        let mut c = request(&tok, "Describe a person.", SamplingParams::greedy(), 120);
        c.constraint = Some(constraint.fork());
        receivers.push((None, engine.submit(c).unwrap()));
        receivers.push((
            Some(p),
            engine
                .submit(request(&tok, p, SamplingParams::greedy(), 24))
                .unwrap(),
        ));
    }
    let mut constrained = Vec::new();
    for (prompt, rx) in receivers {
        let (text, reason, _) = collect(rx);
        match prompt {
            Some(p) => {
                let i = prompts.iter().position(|q| *q == p).unwrap();
                assert_eq!(text, alone[i], "{p}");
            }
            None => {
                assert_eq!(reason, FinishReason::Stop);
                check_person(&text);
                constrained.push(text);
            }
        }
    }
    // Greedy and the same prompt: the three constrained outputs agree.
    assert!(
        constrained.windows(2).all(|w| w[0] == w[1]),
        "{constrained:?}"
    );
}
