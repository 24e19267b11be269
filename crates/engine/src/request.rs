//! What crosses the boundary between a caller (the HTTP server, the CLI) and the engine
//! thread: a [`GenerateRequest`] in, a stream of [`Event`]s out. Token ids and text only —
//! no JSON, no KV blocks.

use std::fmt;
use std::time::Duration;

use kaiyuan_grammar::Constraint;

use crate::sampling::{ParamError, SamplingParams};

/// Identifies one request inside one engine (unique for the engine's lifetime).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One generation: continue `prompt` (already rendered and tokenized by the caller).
#[derive(Clone, Debug)]
pub struct GenerateRequest {
    /// Prompt token ids, BOS included when the model wants one. Not empty.
    pub prompt: Vec<u32>,
    pub sampling: SamplingParams,
    /// Tokens to generate at most (≥ 1). `prompt.len() + max_tokens` must fit the context.
    pub max_tokens: usize,
    /// Stop strings: generation ends before the first of them appears in the text; the
    /// stop string itself is not returned.
    pub stop: Vec<String>,
    /// Token ids that end generation besides the model's end-of-generation tokens.
    pub stop_token_ids: Vec<u32>,
    /// Keep generating through end-of-generation tokens (until `max_tokens` or a stop).
    pub ignore_eos: bool,
    /// Structured output: every sampled token is one the grammar allows, and the request
    /// ends (`Stop`) when the grammar is complete. Compiled by the caller against this
    /// engine's vocabulary (`kaiyuan_grammar::GrammarVocab`), one per request (fork it for
    /// several).
    pub constraint: Option<Constraint>,
}

/// Why a request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// An end-of-generation token, a stop token id or a stop string.
    Stop,
    /// `max_tokens` generated.
    Length,
    /// The caller cancelled (or dropped its event receiver).
    Cancelled,
    /// The engine shut down before the request finished (after the grace period).
    Shutdown,
    /// The engine failed on this request (the message says why).
    Error(String),
}

impl FinishReason {
    /// The OpenAI-style name: `stop`, `length`, or for the others what a log line shows.
    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Cancelled => "cancelled",
            FinishReason::Shutdown => "shutdown",
            FinishReason::Error(_) => "error",
        }
    }
}

/// Token counts of one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: usize,
    /// Tokens generated (an end-of-generation token that ended the request counts).
    pub completion_tokens: usize,
    /// Prompt tokens whose KV came from the prefix cache instead of being computed.
    pub cached_tokens: usize,
}

/// One generated token.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenEvent {
    pub id: u32,
    /// Text that became final with this token: whole UTF-8 characters, with text that may
    /// still turn into a stop string held back until the next token decides. Often empty.
    pub text: String,
    /// The token's log-probability, when the request asked for logprobs.
    pub logprob: Option<f32>,
    /// The most likely alternatives `(id, logprob)`, most likely first, when asked for.
    pub top_logprobs: Vec<(u32, f32)>,
}

/// The end of a request; always the last event.
#[derive(Clone, Debug, PartialEq)]
pub struct Finished {
    pub reason: FinishReason,
    /// Text still held back at the end (emitted after the last token's text).
    pub text: String,
    pub usage: Usage,
    /// Time from submission to the first generated token, if one came.
    pub time_to_first_token: Option<Duration>,
    /// With reason `Stop` because of a stop string: its index in the request's `stop`.
    pub stop_index: Option<usize>,
}

/// What the engine sends back for a request, in order: `Scheduled` once (when the request
/// first enters the running batch), `Token` per generated token, then `Finished`.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Scheduled { cached_tokens: usize },
    Token(TokenEvent),
    Finished(Finished),
}

/// Why a request was not accepted.
#[derive(Clone, Debug, PartialEq)]
pub enum SubmitError {
    /// The admission queue is full; retry later.
    QueueFull { capacity: usize },
    /// The engine is shutting down or has stopped.
    ShuttingDown,
    /// The engine thread died (the reason says how); nothing will run until a restart.
    EngineFailed(String),
    /// The prompt is empty.
    EmptyPrompt,
    /// `max_tokens` is 0.
    ZeroMaxTokens,
    /// The prompt plus `max_tokens` does not fit the context.
    ContextExceeded {
        prompt_tokens: usize,
        max_tokens: usize,
        context: usize,
    },
    /// A prompt or stop token id is not in the vocabulary.
    TokenOutOfRange { token: u32, vocab_size: usize },
    /// A sampling parameter is out of range (names the field).
    InvalidSampling(ParamError),
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::QueueFull { capacity } => write!(
                f,
                "the server is busy: {capacity} requests are already waiting; retry later"
            ),
            SubmitError::ShuttingDown => write!(f, "the server is shutting down"),
            SubmitError::EngineFailed(reason) => write!(
                f,
                "the model's engine has failed ({reason}); the server must be restarted"
            ),
            SubmitError::EmptyPrompt => write!(f, "the prompt is empty"),
            SubmitError::ZeroMaxTokens => write!(f, "max_tokens must be at least 1"),
            SubmitError::ContextExceeded {
                prompt_tokens,
                max_tokens,
                context,
            } => write!(
                f,
                "the prompt ({prompt_tokens} tokens) plus max_tokens ({max_tokens}) needs {} positions, but the context holds {context}",
                prompt_tokens + max_tokens
            ),
            SubmitError::TokenOutOfRange { token, vocab_size } => write!(
                f,
                "token id {token} is outside the vocabulary ({vocab_size} tokens)"
            ),
            SubmitError::InvalidSampling(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SubmitError {}
