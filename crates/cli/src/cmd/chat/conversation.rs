//! [`Conversation`]: the messages of one `kaiyuan chat` session and the model session that
//! answers them. Each turn re-renders the whole conversation with the chat template, and only
//! the tokens after the longest prefix shared with what the KV cache already holds are
//! evaluated (`Session::truncate` to that prefix), so a turn costs its new tokens, not the
//! whole history.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use kaiyuan_chat::{
    ChatTemplate, Message, ReasoningSplitter, RenderOptions, RenderedPrompt, SplitDelta,
};
use kaiyuan_engine::sampling::{Sampler, TokenHistory};
use kaiyuan_kernels::threads::ThreadPool;
use kaiyuan_model::Session;
use kaiyuan_tokenizer::Tokenizer;

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
    /// Tokens that end a reply.
    pub stop_tokens: Vec<u32>,
}

pub struct Conversation<'m> {
    tokenizer: &'m Tokenizer,
    template: &'m ChatTemplate,
    session: Session<'m>,
    sampler: Sampler,
    limits: Limits,
    system: Option<String>,
    messages: Vec<Message>,
    /// The tokens whose keys and values the session holds, in order.
    cached: Vec<u32>,
}

impl<'m> Conversation<'m> {
    pub fn new(
        tokenizer: &'m Tokenizer,
        template: &'m ChatTemplate,
        session: Session<'m>,
        sampler: Sampler,
        limits: Limits,
        system: Option<String>,
    ) -> Conversation<'m> {
        let mut c = Conversation {
            tokenizer,
            template,
            session,
            sampler,
            limits,
            system,
            messages: Vec::new(),
            cached: Vec::new(),
        };
        c.reset();
        c
    }

    /// Forgets the conversation (the system prompt stays). The cache is kept: the next turn
    /// reuses whatever prefix still matches (typically the system prompt).
    pub fn reset(&mut self) {
        self.messages.clear();
        if let Some(system) = &self.system {
            self.messages.push(Message::text("system", system));
        }
    }

    pub fn capacity(&self) -> usize {
        self.session.max_ctx()
    }

    /// Adds the user's message, renders the conversation, evaluates what the cache lacks and
    /// streams the reply to `sink` as reasoning/answer deltas. With `debug`, the rendered
    /// prompt and its token counts are written there first.
    pub fn reply(
        &mut self,
        pool: &ThreadPool,
        user_text: &str,
        sink: &mut dyn FnMut(&SplitDelta) -> std::io::Result<()>,
        debug: Option<&mut dyn Write>,
    ) -> anyhow::Result<Turn> {
        self.messages.push(Message::text("user", user_text));
        let opts = RenderOptions {
            add_generation_prompt: true,
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
        let prompt = prompt_ids(self.tokenizer, &rendered);
        let capacity = self.capacity();
        if prompt.len() >= capacity {
            self.messages.pop();
            return Ok(Turn::Refused(format!(
                "the conversation needs {} tokens plus room for a reply, but the context holds {capacity} (use /reset, or a larger --ctx)",
                prompt.len()
            )));
        }

        // Keep the cached prefix this prompt shares; at least one token must be evaluated to
        // get logits for the reply's first token.
        let shared = common_prefix(&self.cached, &prompt).min(prompt.len() - 1);
        self.session.truncate(shared);
        self.cached.truncate(shared);
        if let Some(out) = debug {
            writeln!(
                out,
                "--- prompt: {} tokens, {shared} reused from the cache, {} evaluated ---\n{}\n--- end of prompt ---",
                prompt.len(),
                prompt.len() - shared,
                rendered.text()
            )?;
        }
        let start = Instant::now();
        let mut logits = self
            .session
            .eval(pool, &prompt[shared..], false)
            .context("evaluating the prompt")?;
        self.cached.extend_from_slice(&prompt[shared..]);
        let prefill = start.elapsed();

        let mut history = TokenHistory::new();
        history.push_prompt(&prompt);
        let mut decoder = self.tokenizer.stream_decoder(false);
        let mut splitter = ReasoningSplitter::for_prompt(&rendered);
        let (mut reasoning, mut answer) = (String::new(), String::new());
        let mut emit = |d: SplitDelta| -> anyhow::Result<()> {
            reasoning.push_str(&d.reasoning);
            answer.push_str(&d.content);
            if !d.is_empty() {
                sink(&d).context("writing the reply")?;
            }
            Ok(())
        };
        let mut generated = 0;
        let stop = loop {
            if generated == self.limits.max_reply_tokens {
                break StopReason::Length;
            }
            let next = self.sampler.sample(&mut logits, &history)?.token;
            generated += 1;
            if self.limits.stop_tokens.contains(&next) {
                break StopReason::EndOfTurn;
            }
            history.push(next);
            let text = decoder.push(next).context("decoding the reply")?;
            emit(splitter.push(&text))?;
            if self.session.position() == capacity {
                break StopReason::ContextFull { capacity };
            }
            logits = self
                .session
                .eval(pool, &[next], false)
                .context("evaluating the reply")?;
            self.cached.push(next);
        };
        emit(splitter.push(&decoder.finish()))?;
        emit(splitter.finish())?;

        let mut message = Message::text("assistant", &answer);
        if !reasoning.is_empty() {
            message.reasoning_content = Some(reasoning);
        }
        self.messages.push(message);
        Ok(Turn::Answered(TurnStats {
            prompt_tokens: prompt.len(),
            reused: shared,
            generated,
            stop,
            prefill,
            decode: start.elapsed() - prefill,
        }))
    }
}

/// The prompt's token ids as a model receives them — the server's encoding (markup with
/// control tokens recognised, message text as plain text, one BOS), so `chat`, `template
/// --tokens` and `serve` feed the model the same ids.
pub fn prompt_ids(tokenizer: &Tokenizer, prompt: &RenderedPrompt) -> Vec<u32> {
    kaiyuan_server::prompt::encode_rendered(tokenizer, prompt).ids()
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefix_lengths() {
        assert_eq!(common_prefix(&[], &[1]), 0);
        assert_eq!(common_prefix(&[1, 2, 3], &[1, 2, 4]), 2);
        assert_eq!(common_prefix(&[1, 2], &[1, 2, 3]), 2);
        assert_eq!(common_prefix(&[1, 2, 3], &[1, 2]), 2);
    }
}
