//! The engine on the real default model (SmolLM2-135M-Instruct; fails when `models/` lacks
//! it: run scripts/fetch-models): its greedy output equals a plain single-sequence decode
//! loop, whatever the batching, chunking, prefix caching or preemption, and it keeps its
//! promises on stops, limits, cancellation and shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kaiyuan_engine::sampling::SamplingParams;
use kaiyuan_engine::{
    Engine, EngineConfig, EngineHandle, Event, EventReceiver, FinishReason, GenerateRequest,
    SubmitError, Usage,
};
use kaiyuan_kernels::threads::ThreadPool;
use kaiyuan_model::{Model, Session};
use kaiyuan_tokenizer::Tokenizer;

mod common;

use common::load_smollm2 as load;

fn config(model: &Model) -> EngineConfig {
    EngineConfig {
        // Tests run in parallel already.
        threads: 1,
        context: 512,
        ..EngineConfig::for_model(model)
    }
}

fn start(config: impl FnOnce(&Model) -> EngineConfig) -> (EngineHandle, Arc<Tokenizer>) {
    let (model, tok) = load();
    let c = config(&model);
    (
        Engine::start(model, Arc::clone(&tok), c).expect("engine starts"),
        tok,
    )
}

const PROMPTS: [&str; 8] = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, in a land far away,",
    "1, 2, 3, 4,",
    "The recipe for pancakes calls for",
    "Photosynthesis is the process by which",
    "In 1969, the first humans",
    "My favourite colour is",
];

fn greedy(tok: &Tokenizer, prompt: &str, max_tokens: usize) -> GenerateRequest {
    GenerateRequest {
        prompt: tok.encode_with_bos_eos(prompt, false),
        sampling: SamplingParams::greedy(),
        max_tokens,
        stop: Vec::new(),
        stop_token_ids: Vec::new(),
        ignore_eos: true,
        constraint: None,
    }
}

/// Everything a request produced.
#[derive(Debug)]
struct Outcome {
    ids: Vec<u32>,
    text: String,
    reason: FinishReason,
    usage: Usage,
    scheduled: usize,
    stop_index: Option<usize>,
}

fn collect(mut rx: EventReceiver) -> Outcome {
    let mut o = Outcome {
        ids: Vec::new(),
        text: String::new(),
        reason: FinishReason::Cancelled,
        usage: Usage::default(),
        scheduled: 0,
        stop_index: None,
    };
    while let Some(ev) = rx.blocking_recv() {
        match ev {
            Event::Scheduled { .. } => o.scheduled += 1,
            Event::Token(t) => {
                o.ids.push(t.id);
                o.text.push_str(&t.text);
            }
            Event::Finished(f) => {
                o.text.push_str(&f.text);
                o.reason = f.reason;
                o.usage = f.usage;
                o.stop_index = f.stop_index;
                return o;
            }
        }
    }
    panic!("the event stream ended without Finished");
}

/// The reference: one sequence, one token at a time, argmax.
fn reference_greedy(model: &Model, prompt: &[u32], n: usize) -> Vec<u32> {
    let pool = ThreadPool::new(1);
    let mut s = Session::new(model, 512);
    let mut logits = s.eval(&pool, prompt, false).expect("eval");
    let mut out = Vec::new();
    for _ in 0..n {
        let next = logits
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |best, (i, &x)| {
                if x > best.1 {
                    (i, x)
                } else {
                    best
                }
            })
            .0 as u32;
        out.push(next);
        logits = s.eval(&pool, &[next], false).expect("eval");
    }
    out
}

fn wait_until(
    handle: &EngineHandle,
    what: &str,
    ok: impl Fn(&kaiyuan_engine::MetricsSnapshot) -> bool,
) {
    let start = Instant::now();
    while !ok(&handle.metrics()) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn concurrent_greedy_requests_equal_the_single_sequence_reference() {
    let (model, tok) = load();
    let expected: Vec<Vec<u32>> = PROMPTS
        .iter()
        .map(|p| reference_greedy(&model, &tok.encode_with_bos_eos(p, false), 24))
        .collect();
    // A small step budget forces chunked prefill and mixed prefill/decode batches.
    let c = EngineConfig {
        max_batch_tokens: 7,
        ..config(&model)
    };
    let engine = Engine::start(model, Arc::clone(&tok), c).expect("engine starts");
    let rxs: Vec<_> = PROMPTS
        .iter()
        .map(|p| engine.submit(greedy(&tok, p, 24)).expect("accepted"))
        .collect();
    for (i, rx) in rxs.into_iter().enumerate() {
        let o = collect(rx);
        assert_eq!(o.ids, expected[i], "prompt {i} ({:?})", PROMPTS[i]);
        assert_eq!(o.reason, FinishReason::Length);
        assert_eq!(o.usage.completion_tokens, 24);
        assert_eq!(o.text, tok.decode(&o.ids, false).unwrap());
        assert_eq!(o.scheduled, 1);
    }
    let m = engine.metrics();
    assert_eq!(m.running, 0);
    assert_eq!(m.kv_blocks_used, 0);
    assert_eq!(m.requests_finished, 8);
    assert_eq!(m.generated_tokens, 8 * 24);
}

#[test]
fn a_repeated_prefix_is_served_from_the_cache_with_identical_output() {
    let (engine, tok) = start(config);
    let long = "You are a helpful assistant. ".repeat(12) + "Tell me about the moon.";
    let first = collect(engine.submit(greedy(&tok, &long, 8)).unwrap());
    let computed_first = engine.metrics().computed_tokens;
    let second = collect(engine.submit(greedy(&tok, &long, 8)).unwrap());
    let computed_second = engine.metrics().computed_tokens - computed_first;
    assert_eq!(first.usage.cached_tokens, 0);
    let prompt_len = first.usage.prompt_tokens;
    assert!(prompt_len > 64);
    // Every full block but the one holding the last prompt token is reused.
    assert_eq!(second.usage.cached_tokens, (prompt_len - 1) / 16 * 16);
    assert_eq!(second.ids, first.ids);
    assert!(computed_second + second.usage.cached_tokens as u64 <= computed_first);
    assert_eq!(
        engine.metrics().cached_prompt_tokens,
        second.usage.cached_tokens as u64
    );
}

#[test]
fn preemption_under_a_small_kv_pool_keeps_outputs_exact() {
    let (model, tok) = load();
    let prompts: Vec<Vec<u32>> = PROMPTS[..4]
        .iter()
        .map(|p| tok.encode_with_bos_eos(p, false))
        .collect();
    let expected: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| reference_greedy(&model, p, 40))
        .collect();
    // 4 sequences of ~50 positions need ~16 blocks; give them 6 (one context of 96).
    let c = EngineConfig {
        context: 96,
        kv_tokens: 96,
        ..config(&model)
    };
    let engine = Engine::start(model, Arc::clone(&tok), c).expect("engine starts");
    let rxs: Vec<_> = PROMPTS[..4]
        .iter()
        .map(|p| engine.submit(greedy(&tok, p, 40)).unwrap())
        .collect();
    for (i, rx) in rxs.into_iter().enumerate() {
        assert_eq!(collect(rx).ids, expected[i], "prompt {i}");
    }
    assert!(
        engine.metrics().preemptions > 0,
        "the pool was meant to run out"
    );
    assert_eq!(engine.metrics().kv_blocks_used, 0);
}

#[test]
fn stop_strings_and_end_tokens_end_with_stop() {
    let (engine, tok) = start(config);
    let free = collect(engine.submit(greedy(&tok, "1, 2, 3, 4,", 30)).unwrap());
    // Stop at the first "7": the text ends right before it and the reason is `stop`.
    let mut r = greedy(&tok, "1, 2, 3, 4,", 30);
    r.stop = vec!["never".into(), "7".into()];
    let stopped = collect(engine.submit(r).unwrap());
    let cut = free.text.find('7').expect("the free run counts past 7");
    assert_eq!(stopped.text, free.text[..cut]);
    assert_eq!(stopped.reason, FinishReason::Stop);
    assert_eq!(stopped.stop_index, Some(1), "which stop string ended it");
    assert_eq!(free.stop_index, None);
    // A stop token id: the first generated token itself.
    let mut r = greedy(&tok, "1, 2, 3, 4,", 30);
    r.stop_token_ids = vec![free.ids[0]];
    let o = collect(engine.submit(r).unwrap());
    assert_eq!(
        (o.reason, o.text.as_str(), o.usage.completion_tokens),
        (FinishReason::Stop, "", 1)
    );
    // The chat model's end of turn ends a chat answer (EOS respected when not ignored):
    // run the same chat prompt once through its end-of-turn token (ignore_eos) and once
    // without, and the second must stop right at that token, not show it.
    let chat =
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n";
    let mut r = greedy(&tok, "", 64);
    r.prompt = tok.encode_with_bos_eos(chat, true);
    let through = collect(engine.submit(r.clone()).unwrap());
    let eog = engine.end_of_generation_ids();
    let end = through
        .ids
        .iter()
        .position(|id| eog.contains(id))
        .expect("the greedy answer ends its turn within 64 tokens");
    r.ignore_eos = false;
    let o = collect(engine.submit(r).unwrap());
    assert_eq!(o.reason, FinishReason::Stop);
    assert_eq!(
        o.ids,
        through.ids[..end],
        "the answer up to its end of turn"
    );
    assert_eq!(o.usage.completion_tokens, end + 1, "the end token counts");
}

#[test]
fn invalid_requests_are_refused_with_reasons() {
    let (engine, tok) = start(config);
    let mut r = greedy(&tok, "hi", 10);
    r.max_tokens = 600;
    match engine.submit(r) {
        Err(SubmitError::ContextExceeded {
            max_tokens: 600,
            context: 512,
            ..
        }) => {}
        other => panic!("expected ContextExceeded, got {:?}", other.map(|_| ())),
    }
    let mut r = greedy(&tok, "hi", 10);
    r.prompt.clear();
    assert_eq!(engine.submit(r).err(), Some(SubmitError::EmptyPrompt));
    let mut r = greedy(&tok, "hi", 10);
    r.prompt.push(10_000_000);
    assert!(matches!(
        engine.submit(r),
        Err(SubmitError::TokenOutOfRange {
            token: 10_000_000,
            ..
        })
    ));
    let mut r = greedy(&tok, "hi", 10);
    r.sampling.top_p = 1.5;
    match engine.submit(r) {
        Err(SubmitError::InvalidSampling(e)) => assert_eq!(e.field, "top_p"),
        other => panic!("expected InvalidSampling, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn dropping_the_receiver_cancels_and_frees_blocks() {
    let (engine, tok) = start(config);
    let mut rx = engine
        .submit(greedy(&tok, "Once upon a time", 400))
        .unwrap();
    // Wait for a few tokens, then hang up.
    let mut tokens = 0;
    while tokens < 3 {
        if let Some(Event::Token(_)) = rx.blocking_recv() {
            tokens += 1;
        }
    }
    drop(rx);
    wait_until(&engine, "the cancelled request to leave", |m| {
        m.running == 0 && m.requests_cancelled == 1
    });
    assert_eq!(engine.metrics().kv_blocks_used, 0);
    assert!(engine.metrics().generated_tokens < 400);
}

#[test]
fn a_full_queue_refuses_and_shutdown_ends_everything() {
    let (engine, tok) = start(|m| EngineConfig {
        max_seqs: 1,
        max_queue: 2,
        ..config(m)
    });
    let mut rxs = Vec::new();
    let mut refused = 0;
    for _ in 0..6 {
        match engine.submit(greedy(&tok, "Tell me a long story.", 400)) {
            Ok(rx) => rxs.push(rx),
            Err(SubmitError::QueueFull { capacity: 2 }) => refused += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    // One may have been admitted already, freeing its queue place: 2 or 3 accepted.
    assert!(refused >= 3, "refused {refused}");
    engine.shutdown(Duration::from_millis(50));
    assert!(matches!(
        engine.submit(greedy(&tok, "late", 4)),
        Err(SubmitError::ShuttingDown)
    ));
    for rx in rxs {
        assert_eq!(collect(rx).reason, FinishReason::Shutdown);
    }
    engine.join();
    let m = engine.metrics();
    assert_eq!((m.running, m.queued, m.kv_blocks_used), (0, 0, 0));
    assert_eq!(
        engine.failure(),
        None,
        "a requested shutdown is not a failure"
    );
}

#[test]
fn a_dead_engine_says_why_and_refuses_requests() {
    let (engine, tok) = start(config);
    assert_eq!(engine.failure(), None);
    let mut rx = engine
        .submit(greedy(&tok, "Once upon a time", 400))
        .unwrap();
    engine.inject_panic_for_tests();
    // The running request's stream ends (its sender went down with the thread).
    while rx.blocking_recv().is_some() {}
    let start = Instant::now();
    let reason = loop {
        if let Some(r) = engine.failure() {
            break r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no failure reported"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(reason.contains("injected engine failure"), "{reason}");
    // Refused with the reason, not as a shutdown.
    match engine.submit(greedy(&tok, "hi", 4)) {
        Err(SubmitError::EngineFailed(why)) => assert_eq!(why, reason),
        other => panic!("expected EngineFailed, got {:?}", other.map(|r| r.id())),
    }
    // Shutting down and joining a dead engine is fine, and the failure stays reported.
    engine.shutdown(Duration::ZERO);
    engine.join();
    assert_eq!(engine.failure(), Some(reason));
}

#[test]
fn same_seed_same_text_and_logprobs_are_reported() {
    let (engine, tok) = start(config);
    let sampled = |seed| {
        let mut r = greedy(&tok, "Write a poem about rivers.", 20);
        r.sampling = SamplingParams {
            temperature: 0.9,
            seed: Some(seed),
            logprobs: Some(3),
            ..SamplingParams::default()
        };
        r
    };
    let a = engine.submit(sampled(7)).unwrap();
    let b = engine.submit(sampled(7)).unwrap();
    let c = engine.submit(sampled(8)).unwrap();
    let (a, b, c) = (collect(a), collect(b), collect(c));
    assert_eq!(a.ids, b.ids);
    assert_ne!(a.ids, c.ids, "different seeds gave the same 20 tokens");
    // Logprobs: check one request's events directly.
    let mut rx = engine.submit(sampled(7)).unwrap();
    let mut seen = 0;
    while let Some(ev) = rx.blocking_recv() {
        if let Event::Token(t) = ev {
            let lp = t.logprob.expect("logprob asked for");
            assert!(lp <= 0.0);
            assert_eq!(t.top_logprobs.len(), 3);
            assert!(t.top_logprobs.windows(2).all(|w| w[0].1 >= w[1].1));
            seen += 1;
        }
    }
    assert_eq!(seen, 20);
}

#[test]
fn an_impossible_kv_pool_is_an_error_not_a_panic() {
    let (model, tok) = load();
    let c = EngineConfig {
        kv_tokens: usize::MAX / 2,
        ..config(&model)
    };
    let err = match Engine::start(model, tok, c) {
        Ok(_) => panic!("a KV pool of usize::MAX / 2 positions started"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("cannot allocate a KV cache"), "{err}");
}

#[test]
fn reserved_places_count_against_the_queue_until_used_given_back_or_abandoned() {
    let (engine, tok) = start(|m| EngineConfig {
        max_seqs: 1,
        max_queue: 3,
        ..config(m)
    });
    // Two places taken by a request still rendering its prompt: queued, and in the limit.
    let mut held = engine.reserve(2).unwrap();
    assert_eq!(engine.metrics().queued, 2);
    assert!(matches!(
        engine.reserve(2),
        Err(SubmitError::QueueFull { capacity: 3 })
    ));
    let other = engine.reserve(1).unwrap();
    assert!(matches!(
        engine.submit(greedy(&tok, "x", 2)),
        Err(SubmitError::QueueFull { capacity: 3 })
    ));
    // Given back (the request was refused before submission): not counted by the engine.
    other.give_back();
    assert_eq!(engine.metrics().queued, 2);
    assert_eq!(engine.metrics().requests_cancelled, 0);
    // A request refused for its content keeps the place; a good one uses it.
    assert!(matches!(
        engine.submit_reserved(&mut held, greedy(&tok, "", 2)),
        Err(SubmitError::EmptyPrompt)
    ));
    let rx = engine
        .submit_reserved(&mut held, greedy(&tok, "1, 2, 3,", 4))
        .unwrap();
    assert_eq!(collect(rx).reason, FinishReason::Length);
    // One place left in `held`; dropping it (the client hung up during its prompt work)
    // gives it back and counts it as a cancelled request, as a hang-up in the queue is.
    wait_until(&engine, "the request to end", |m| m.running == 0);
    assert_eq!(engine.metrics().queued, 1);
    assert_eq!(engine.metrics().requests_cancelled, 0);
    drop(held);
    assert_eq!(engine.metrics().queued, 0);
    assert_eq!(engine.metrics().requests_cancelled, 1);
    assert_eq!(engine.metrics().requests_finished, 1);
    engine.shutdown(Duration::from_millis(50));
    engine.join();
}
