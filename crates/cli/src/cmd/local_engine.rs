//! The engine as `kaiyuan run` and `chat` use it: one request at a time, through the same
//! [`Engine`] the server runs (scheduler, sampler, end-of-generation ids, stop handling and
//! incremental detokenization), so a command's output equals the server's for the same
//! prompt, sampling settings and seed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use kaiyuan_engine::sampling::{Sampler, SamplingParams};
use kaiyuan_engine::{Engine, EngineConfig, EngineHandle, Event, EventReceiver, GenerateRequest};
use kaiyuan_model::Model;
use kaiyuan_tokenizer::Tokenizer;

/// Prompt tokens one engine step evaluates at most: a long prompt is prefilled in chunks of
/// this size (same bits as one pass; bounds the scratch memory of a step).
const PREFILL_CHUNK: usize = 512;

/// An engine for one user: one sequence of `context` positions, its KV pool exactly one
/// context (earlier turns stay in the prefix cache until a later one needs their blocks).
/// Shut down and joined when dropped.
pub struct LocalEngine {
    handle: EngineHandle,
}

impl LocalEngine {
    pub fn start(
        model: Model,
        tokenizer: Arc<Tokenizer>,
        threads: usize,
        context: usize,
    ) -> anyhow::Result<LocalEngine> {
        let config = EngineConfig {
            threads,
            context,
            max_seqs: 1,
            kv_tokens: context,
            max_batch_tokens: PREFILL_CHUNK,
            max_queue: 1,
        };
        let handle = Engine::start(model, tokenizer, config)
            .context("cannot start the engine (a smaller --ctx needs less memory)")?;
        Ok(LocalEngine { handle })
    }

    /// Positions one request may use (prompt + generated tokens).
    pub fn context(&self) -> usize {
        self.handle.info().context
    }

    /// Queues `request`; a refusal (context, sampling settings) is a clear error.
    pub fn submit(&self, request: GenerateRequest) -> anyhow::Result<Receiver> {
        let rx = self.handle.submit(request).map_err(|e| anyhow!("{e}"))?;
        Ok(Receiver {
            rx,
            engine: self.handle.clone(),
        })
    }
}

impl Drop for LocalEngine {
    fn drop(&mut self) {
        self.handle.shutdown(Duration::ZERO);
        self.handle.join();
    }
}

/// One request's events, read blocking (the CLI has no async runtime).
pub struct Receiver {
    rx: EventReceiver,
    engine: EngineHandle,
}

impl Receiver {
    /// The next event; `Finished` is always the last. An engine that died is an error
    /// saying why.
    pub fn recv(&mut self) -> anyhow::Result<Event> {
        self.rx.blocking_recv().ok_or_else(|| {
            let why = self.engine.failure().unwrap_or_else(|| "it stopped".into());
            anyhow!("the engine ended before the request finished: {why}")
        })
    }
}

/// `params` with its seed fixed: the given one, or one drawn now, so the command can print
/// it and every request uses it. Validates the settings first (a clear error naming the
/// field, before the model loads its KV cache).
pub fn seeded(params: SamplingParams, vocab_size: usize) -> anyhow::Result<SamplingParams> {
    let sampler = Sampler::new(params, vocab_size).context("invalid sampling settings")?;
    Ok(SamplingParams {
        seed: Some(sampler.seed()),
        ..sampler.params().clone()
    })
}
