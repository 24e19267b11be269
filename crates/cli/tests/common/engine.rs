//! The engine driven directly, as the server drives it: what `kaiyuan run` and `chat` must
//! print for the same prompt ids and sampling settings.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kaiyuan_engine::sampling::SamplingParams;
use kaiyuan_engine::{Engine, EngineConfig, Event, FinishReason, GenerateRequest};
use kaiyuan_gguf::GgufFile;
use kaiyuan_model::Model;
use kaiyuan_tokenizer::{Tokenizer, Vocab};

/// The tokenizer of the model file at `path`.
pub fn tokenizer(path: &str) -> Arc<Tokenizer> {
    let file = GgufFile::open(Path::new(path)).expect("model opens");
    let vocab = Vocab::from_gguf(&file).expect("vocab reads");
    Arc::new(Tokenizer::from_vocab(&vocab).expect("tokenizer builds"))
}

/// The text the engine generates for `prompt` (ids) and the reason it stopped.
pub fn generate(
    path: &str,
    prompt: Vec<u32>,
    sampling: SamplingParams,
    max_tokens: usize,
) -> (String, FinishReason) {
    let model = Model::open(Path::new(path)).expect("model loads");
    let config = EngineConfig {
        threads: 1,
        context: 512,
        ..EngineConfig::for_model(&model)
    };
    let engine = Engine::start(model, tokenizer(path), config).expect("engine starts");
    let mut rx = engine
        .submit(GenerateRequest {
            prompt,
            sampling,
            max_tokens,
            stop: Vec::new(),
            stop_token_ids: Vec::new(),
            ignore_eos: false,
            constraint: None,
        })
        .expect("request accepted");
    let mut text = String::new();
    let reason = loop {
        match rx.blocking_recv().expect("events until Finished") {
            Event::Scheduled { .. } => {}
            Event::Token(t) => text.push_str(&t.text),
            Event::Finished(f) => {
                text.push_str(&f.text);
                break f.reason;
            }
        }
    };
    engine.shutdown(Duration::ZERO);
    engine.join();
    (text, reason)
}

/// The CLI's sampling settings for `--temp T --seed S` (llama.cpp's defaults otherwise:
/// top-k 40, top-p 0.95, min-p 0.05), written out here rather than taken from the CLI.
pub fn cli_sampling(temperature: f32, seed: u64) -> SamplingParams {
    SamplingParams {
        temperature,
        top_k: 40,
        top_p: 0.95,
        min_p: 0.05,
        seed: Some(seed),
        ..SamplingParams::default()
    }
}
