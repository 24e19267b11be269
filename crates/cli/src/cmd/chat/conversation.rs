//! [`Conversation`]: the messages of one `kaiyuan chat` session and the engine that answers
//! them. Each turn re-renders the whole conversation with the chat template and submits it to
//! the engine like a server request (same encoding, sampler, end-of-generation ids): the
//! engine's prefix cache keeps the blocks of earlier turns, so a turn evaluates only the
//! tokens after the longest cached run of full 16-token blocks it shares with them, not the
//! whole history.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kaiyuan_chat::{
    encode_rendered, ChatTemplate, Message, ReasoningSplitter, RenderOptions, SplitDelta,
};
use kaiyuan_engine::sampling::SamplingParams;
use kaiyuan_engine::{Event, FinishReason, GenerateRequest};
use kaiyuan_tokenizer::Tokenizer;
use serde_json::{Map, Value};

use super::super::local_engine::LocalEngine;

/// Why a reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The model wrote an end-of-turn token (EOS, EOT, `<|im_end|>`...).
    EndOfTurn,
    /// The reply reached `-n` tokens.
    Length,
    /// The context is full: `capacity` positions, and the next token needed one more.
    ContextFull { capacity: usize },
}

/// What one turn did.
#[derive(Debug, Clone)]
pub enum Turn {
    /// The model answered.
    Answered(TurnStats),
    /// The turn was refused before the model ran (the user's message was dropped again).
    Refused(String),
}

/// Counts and times of an answered turn.
#[derive(Debug, Clone)]
pub struct TurnStats {
    pub prompt_tokens: usize,
    /// Prompt tokens whose keys and values were already in the cache.
    pub reused: usize,
    pub generated: usize,
    pub stop: StopReason,
    pub prefill: Duration,
    pub decode: Duration,
}

/// Token-level settings of a conversation.
pub struct Limits {
    /// Tokens per reply at most.
    pub max_reply_tokens: usize,
}

pub struct Conversation<'m> {
    tokenizer: &'m Tokenizer,
    template: &'m ChatTemplate,
    engine: &'m LocalEngine,
    /// Every reply is sampled with these settings, its seed included (as a server request
    /// with that `seed` would be).
    sampling: SamplingParams,
    limits: Limits,
    system: Option<String>,
    /// Template variables every render gets (the thinking switch).
    variables: Map<String, Value>,
    messages: Vec<Message>,
}

impl<'m> Conversation<'m> {
    pub fn new(
        tokenizer: &'m Tokenizer,
        template: &'m ChatTemplate,
        engine: &'m LocalEngine,
        sampling: SamplingParams,
        limits: Limits,
        system: Option<String>,
    ) -> Conversation<'m> {
        let mut c = Conversation {
            tokenizer,
            template,
            engine,
            sampling,
            limits,
            system,
            variables: Map::new(),
            messages: Vec::new(),
        };
        c.reset();
        c
    }

    /// Renders every turn with these template variables.
    pub fn with_variables(mut self, variables: Map<String, Value>) -> Conversation<'m> {
        self.variables = variables;
        self
    }

    /// Forgets the conversation (the system prompt stays). The engine's prefix cache is
    /// kept: the next turn reuses whatever prefix still matches (typically the system
    /// prompt).
    pub fn reset(&mut self) {
        self.messages.clear();
        if let Some(system) = &self.system {
            self.messages.push(Message::text("system", system));
        }
    }

    pub fn capacity(&self) -> usize {
        self.engine.context()
    }

    /// Adds the user's message, renders the conversation, has the engine answer it and
    /// streams the reply to `sink` as reasoning/answer deltas. With `debug`, the rendered
    /// prompt and its token counts are written there once the engine has scheduled it.
    pub fn reply(
        &mut self,
        user_text: &str,
        sink: &mut dyn FnMut(&SplitDelta) -> std::io::Result<()>,
        debug: Option<&mut dyn Write>,
    ) -> anyhow::Result<Turn> {
        self.messages.push(Message::text("user", user_text));
        let opts = RenderOptions {
            add_generation_prompt: true,
            extra: self.variables.clone(),
            ..RenderOptions::default()
        };
        let rendered = match self.template.render(&self.messages, &opts) {
            Ok(r) => r,
            Err(e) => {
                self.messages.pop();
                return Ok(Turn::Refused(format!(
                    "cannot render the conversation: {e}"
                )));
            }
        };
        // The server's encoding: markup with control tokens recognised, message text as
        // plain text, one BOS.
        let prompt = encode_rendered(self.tokenizer, &rendered).ids();
        let capacity = self.capacity();
        if prompt.len() >= capacity {
            self.messages.pop();
            return Ok(Turn::Refused(format!(
                "the conversation needs {} tokens plus room for a reply, but the context holds {capacity} (use /reset, or a larger --ctx)",
                prompt.len()
            )));
        }
        // The reply gets what the context leaves, up to -n.
        let max_tokens = self.limits.max_reply_tokens.min(capacity - prompt.len());
        let prompt_tokens = prompt.len();
        let start = Instant::now();
        let mut events = self.engine.submit(GenerateRequest {
            prompt,
            sampling: self.sampling.clone(),
            max_tokens,
            stop: Vec::new(),
            stop_token_ids: Vec::new(),
            ignore_eos: false,
            constraint: None,
        })?;

        let tags = self.template.think_tags().cloned().unwrap_or_default();
        let mut splitter = ReasoningSplitter::for_tags(&tags, &rendered);
        let (mut reasoning, mut answer) = (String::new(), String::new());
        let mut emit = |d: SplitDelta| -> anyhow::Result<()> {
            reasoning.push_str(&d.reasoning);
            answer.push_str(&d.content);
            if !d.is_empty() {
                sink(&d).context("writing the reply")?;
            }
            Ok(())
        };
        let mut debug = debug;
        let mut reused = 0;
        let finished = loop {
            match events.recv()? {
                Event::Scheduled { cached_tokens } => {
                    reused = cached_tokens;
                    if let Some(out) = debug.take() {
                        writeln!(
                            out,
                            "--- prompt: {prompt_tokens} tokens, {reused} reused from the cache, {} evaluated ---\n{}\n--- end of prompt ---",
                            prompt_tokens - reused,
                            rendered.text()
                        )?;
                    }
                }
                Event::Token(t) => emit(splitter.push(&t.text))?,
                Event::Finished(f) => break f,
            }
        };
        emit(splitter.push(&finished.text))?;
        emit(splitter.finish())?;
        let stop = match finished.reason {
            FinishReason::Stop => StopReason::EndOfTurn,
            FinishReason::Length if max_tokens < self.limits.max_reply_tokens => {
                StopReason::ContextFull { capacity }
            }
            FinishReason::Length => StopReason::Length,
            FinishReason::Error(e) => bail!("generation failed: {e}"),
            other => bail!("generation ended early ({})", other.as_str()),
        };
        let total = start.elapsed();
        let prefill = finished.time_to_first_token.unwrap_or(total);

        let mut message = Message::text("assistant", &answer);
        if !reasoning.is_empty() {
            message.reasoning_content = Some(reasoning);
        }
        self.messages.push(message);
        Ok(Turn::Answered(TurnStats {
            prompt_tokens,
            reused,
            generated: finished.usage.completion_tokens,
            stop,
            prefill,
            decode: total.saturating_sub(prefill),
        }))
    }
}
