//! From request bodies to validated parameters ([`ChatParams`], [`CompletionParams`]):
//! every range and shape is checked here, before anything reaches a template, a tokenizer
//! or an engine, and every rejection names its field.
//!
//! Limits and choices (documented in the README):
//! - `n` in 1..=16; a completions request makes at most 64 choices (prompts × n).
//! - `stop`: a string or up to 16 non-empty strings (OpenAI allows 4) of ≤ 256 bytes each.
//! - `max_completion_tokens` wins over `max_tokens` when both are given; the default is the
//!   rest of the context (checked against the prompt once it is tokenized).
//! - `seed` is any 64-bit integer (negative values are taken as their two's complement);
//!   choice `i` of a request uses `seed + i`.
//! - Chat `top_logprobs` in 0..=20 and needs `logprobs: true`; completions `logprobs` in
//!   0..=20 (OpenAI allows 5).
//! - `top_k` ≤ 0 means off; `repetition_penalty` (> 0, 1 = off) and `min_p` are extensions.
//! - Message roles: `system`, `developer` (rendered as `system`), `user`, `assistant`,
//!   `tool`. Content is a string or a list of `{"type": "text"}` parts (joined with a
//!   newline). The deprecated `functions`/`function` role, images and audio are refused by
//!   name (`messages.rs`).
//! - Prefix completion (DeepSeek's beta): the last message may be an assistant message with
//!   `"prefix": true`; the reply continues its content (which the response does not repeat).
//! - Tools: `tools`, `tool_choice`, `parallel_tool_calls` and assistant `tool_calls` are
//!   checked in `tools.rs`.
//! - Reasoning: `thinking`, `reasoning_effort`, `chat_template_kwargs` and assistant
//!   messages' `reasoning_content` (a string) are checked in `reasoning.rs`.
//! - Structured output: `response_format` (`text`, `json_object`, `json_schema`) or the
//!   extensions `grammar` and `json_schema`, one of them (see `grammar.rs`).

use kaiyuan_chat::Message;
use kaiyuan_engine::sampling::{
    LogitBias, ParamError, SamplingParams, MAX_LOGIT_BIAS, MAX_TOP_LOGPROBS,
};
use serde_json::Value;

use super::grammar::{grammar_request, GrammarRequest};
use super::messages::{message, prefix_completion};
use super::reasoning::{self, ReasoningRequest};
use super::request::{ChatCompletionRequest, CommonFields, CompletionRequest};
use super::tools::{tools_request, ToolsRequest};
use crate::error::ApiError;
use crate::extract::from_body;

pub const MAX_N: usize = 16;
pub const MAX_CHOICES: usize = 64;
pub const MAX_STOP: usize = 16;
pub const MAX_STOP_BYTES: usize = 256;

/// What both endpoints ask of generation.
#[derive(Clone, Debug, PartialEq)]
pub struct GenParams {
    /// Sampling settings; `seed` is the first choice's (choice `i` adds `i`).
    pub sampling: SamplingParams,
    /// `None`: the rest of the context.
    pub max_tokens: Option<usize>,
    pub stop: Vec<String>,
    pub n: usize,
    pub stream: bool,
    pub include_usage: bool,
    pub ignore_eos: bool,
    /// The caller's end-user id (logged, nothing else).
    pub user: Option<String>,
    /// Structured output: the grammar every choice's output must follow.
    pub grammar: Option<GrammarRequest>,
}

/// A validated chat request.
#[derive(Clone, Debug)]
pub struct ChatParams {
    pub model: Option<String>,
    pub messages: Vec<Message>,
    pub gen: GenParams,
    /// `thinking`, `reasoning_effort`, `chat_template_kwargs`.
    pub reasoning: ReasoningRequest,
    /// The tools offered to the model (`None`: none, or `tool_choice: "none"`).
    pub tools: Option<ToolsRequest>,
    /// Prefix completion: the start of the reply, which the model continues (taken off the
    /// end of `messages`).
    pub prefix: Option<String>,
}

/// One prompt of a completions request.
#[derive(Clone, Debug, PartialEq)]
pub enum PromptInput {
    /// Text, tokenized with the model's BOS and with control tokens recognised (as
    /// llama-server does: in a raw completion the caller writes the whole prompt).
    Text(String),
    /// Token ids, used exactly as given.
    Tokens(Vec<u32>),
}

/// A validated completions request.
#[derive(Clone, Debug)]
pub struct CompletionParams {
    pub model: Option<String>,
    pub prompts: Vec<PromptInput>,
    pub echo: bool,
    /// Fill-in-the-middle: the text after the insertion (the prompts are the text before).
    pub suffix: Option<String>,
    pub gen: GenParams,
}

/// Parses and validates a chat completions body.
pub fn chat(body: &Value) -> Result<ChatParams, ApiError> {
    let req: ChatCompletionRequest = from_body(body)?;
    let common: CommonFields = from_body(body)?;
    refuse_present(
        "functions",
        &req.functions,
        "the deprecated `functions` are not supported; use `tools`",
    )?;
    let tools = tools_request(
        req.tools.as_ref(),
        req.tool_choice.as_ref(),
        req.parallel_tool_calls.as_ref(),
    )?;
    let logprobs = match (req.logprobs.unwrap_or(false), req.top_logprobs) {
        (false, Some(_)) => {
            return Err(ApiError::invalid(
                "top_logprobs",
                "top_logprobs needs logprobs: true",
            ))
        }
        (false, None) => None,
        (true, top) => Some(count(
            "top_logprobs",
            top.unwrap_or(0) as i64,
            MAX_TOP_LOGPROBS,
        )?),
    };
    if req.messages.is_empty() {
        return Err(ApiError::invalid("messages", "messages must not be empty"));
    }
    let mut messages = req
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| message(i, m))
        .collect::<Result<Vec<_>, _>>()?;
    let prefix = prefix_completion(&req.messages, &mut messages)?;
    let gen = gen_params(&common, logprobs, "top_logprobs")?;
    let reasoning = reasoning::request(
        req.thinking.as_ref(),
        req.reasoning_effort.as_ref(),
        req.chat_template_kwargs.as_ref(),
    )?;
    Ok(ChatParams {
        model: req.model,
        messages,
        gen,
        reasoning,
        tools,
        prefix,
    })
}

/// Parses and validates a completions body.
pub fn completion(body: &Value) -> Result<CompletionParams, ApiError> {
    let req: CompletionRequest = from_body(body)?;
    let common: CommonFields = from_body(body)?;
    let suffix = req.suffix.filter(|s| !s.is_empty());
    let logprobs = match req.logprobs {
        None => None,
        Some(k) => Some(count("logprobs", k as i64, MAX_TOP_LOGPROBS)?),
    };
    let echo = req.echo.unwrap_or(false);
    if echo && logprobs.is_some() {
        return Err(ApiError::unsupported(
            "echo",
            "echo with logprobs is not supported: prompt log-probabilities are not computed",
        ));
    }
    let prompts = prompts(req.prompt.as_ref())?;
    if suffix.is_some() {
        if echo {
            return Err(ApiError::unsupported(
                "echo",
                "echo with a suffix (fill-in-the-middle) is not supported",
            ));
        }
        if prompts.iter().any(|p| matches!(p, PromptInput::Tokens(_))) {
            return Err(ApiError::invalid(
                "suffix",
                "a suffix (fill-in-the-middle) needs text prompts, not token ids",
            ));
        }
    }
    let gen = gen_params(&common, logprobs, "logprobs")?;
    if let Some(best_of) = req.best_of {
        if best_of > 1 && best_of as usize != gen.n {
            return Err(ApiError::unsupported(
                "best_of",
                "best_of other than 1 or n is not supported",
            ));
        }
    }
    if prompts.len() * gen.n > MAX_CHOICES {
        return Err(ApiError::invalid(
            "n",
            format!(
                "{} prompts × n = {} makes {} choices; at most {MAX_CHOICES} per request",
                prompts.len(),
                gen.n,
                prompts.len() * gen.n
            ),
        ));
    }
    Ok(CompletionParams {
        model: req.model,
        prompts,
        echo,
        suffix,
        gen,
    })
}

/// The sampling fields, `n`, `stop`, `max_tokens` and streaming options.
/// `logprobs_param` is the field that asked for `logprobs` (its name differs per endpoint).
pub(crate) fn gen_params(
    c: &CommonFields,
    logprobs: Option<usize>,
    logprobs_param: &str,
) -> Result<GenParams, ApiError> {
    let grammar = grammar_request(
        c.response_format.as_ref(),
        c.grammar.as_ref(),
        c.json_schema.as_ref(),
    )?;
    let defaults = SamplingParams::default();
    let mut sampling = SamplingParams {
        temperature: c.temperature.map_or(defaults.temperature, |v| v as f32),
        top_k: c.top_k.map_or(0, |k| k.max(0) as usize),
        top_p: c.top_p.map_or(defaults.top_p, |v| v as f32),
        min_p: c.min_p.map_or(defaults.min_p, |v| v as f32),
        repetition_penalty: c
            .repetition_penalty
            .map_or(defaults.repetition_penalty, |v| v as f32),
        presence_penalty: c
            .presence_penalty
            .map_or(defaults.presence_penalty, |v| v as f32),
        frequency_penalty: c
            .frequency_penalty
            .map_or(defaults.frequency_penalty, |v| v as f32),
        logit_bias: LogitBias::default(),
        seed: c.seed.map(|s| s as u64),
        logprobs,
        logprobs_mode: defaults.logprobs_mode,
    };
    if let Some(bias) = &c.logit_bias {
        sampling.logit_bias = logit_bias(bias)?;
    }
    sampling
        .validate()
        .map_err(|e| sampling_error(e, logprobs_param))?;
    let max_tokens = match c.max_completion_tokens.or(c.max_tokens) {
        None => None,
        Some(v) => {
            let field = if c.max_completion_tokens.is_some() {
                "max_completion_tokens"
            } else {
                "max_tokens"
            };
            if v < 1 {
                return Err(ApiError::invalid(
                    field,
                    format!("{field} must be at least 1, got {v}"),
                ));
            }
            Some(usize::try_from(v).unwrap_or(usize::MAX))
        }
    };
    let n = match c.n {
        None => 1,
        Some(n) if (1..=MAX_N as i64).contains(&n) => n as usize,
        Some(n) => {
            return Err(ApiError::invalid(
                "n",
                format!("n must be in 1..={MAX_N}, got {n}"),
            ))
        }
    };
    Ok(GenParams {
        sampling,
        max_tokens,
        stop: stop(c.stop.as_ref())?,
        n,
        stream: c.stream.unwrap_or(false),
        include_usage: c
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
        ignore_eos: c.ignore_eos.unwrap_or(false),
        user: c.user.clone(),
        grammar,
    })
}

/// A sampling range error under the request's own field name.
pub fn sampling_error(e: ParamError, logprobs_param: &str) -> ApiError {
    let field = if e.field == "logprobs" {
        logprobs_param
    } else {
        e.field
    };
    let message = e.to_string().replacen(e.field, field, 1);
    ApiError::invalid(field, message)
}

fn count(field: &str, value: i64, max: usize) -> Result<usize, ApiError> {
    if (0..=max as i64).contains(&value) {
        Ok(value as usize)
    } else {
        Err(ApiError::invalid(
            field,
            format!("{field} must be in 0..={max}, got {value}"),
        ))
    }
}

fn refuse_present(field: &str, value: &Option<Value>, why: &str) -> Result<(), ApiError> {
    match value {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(a)) if a.is_empty() => Ok(()),
        Some(_) => Err(ApiError::unsupported(field, why)),
    }
}

/// `{"50256": -100}`: token id (as a string) → bias; at most 300 entries (OpenAI's limit),
/// counted before any is parsed, and checked once into the engine's [`LogitBias`].
fn logit_bias(map: &serde_json::Map<String, Value>) -> Result<LogitBias, ApiError> {
    if map.len() > MAX_LOGIT_BIAS {
        return Err(ApiError::invalid(
            "logit_bias",
            format!(
                "logit_bias has {} entries; at most {MAX_LOGIT_BIAS} are allowed",
                map.len()
            ),
        ));
    }
    let pairs = map
        .iter()
        .map(|(key, value)| {
            let param = format!("logit_bias.{key}");
            let token: u32 = key.trim().parse().map_err(|_| {
                ApiError::invalid(
                    &param,
                    format!("logit_bias keys are token ids; `{key}` is not one"),
                )
            })?;
            let bias = value.as_f64().ok_or_else(|| {
                ApiError::invalid(
                    &param,
                    format!("logit_bias values are numbers, got {value}"),
                )
            })?;
            Ok((token, bias as f32))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    LogitBias::new(pairs).map_err(|e| sampling_error(e, "logprobs"))
}

fn stop(value: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let stops: Vec<String> = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    ApiError::invalid(format!("stop[{i}]"), "stop strings must be strings")
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::invalid(
                "stop",
                "stop must be a string or an array of strings",
            ))
        }
    };
    if stops.len() > MAX_STOP {
        return Err(ApiError::invalid(
            "stop",
            format!("at most {MAX_STOP} stop strings, got {}", stops.len()),
        ));
    }
    for s in &stops {
        if s.is_empty() || s.len() > MAX_STOP_BYTES {
            return Err(ApiError::invalid(
                "stop",
                format!("each stop string must be 1..={MAX_STOP_BYTES} bytes long"),
            ));
        }
    }
    Ok(stops)
}

/// `prompt`: a string, an array of strings, an array of token ids, or an array of arrays
/// of token ids.
fn prompts(value: Option<&Value>) -> Result<Vec<PromptInput>, ApiError> {
    let shape = "prompt must be a string, an array of strings, an array of token ids or an array of arrays of token ids";
    match value {
        None | Some(Value::Null) => Err(ApiError::invalid("prompt", "prompt is required")),
        Some(Value::String(s)) => Ok(vec![PromptInput::Text(s.clone())]),
        Some(Value::Array(items)) if items.is_empty() => Err(ApiError::invalid(
            "prompt",
            "prompt must not be an empty array",
        )),
        Some(Value::Array(items)) if items.iter().all(Value::is_number) => {
            Ok(vec![PromptInput::Tokens(token_ids("prompt", items)?)])
        }
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(PromptInput::Text(s.clone())),
                Value::Array(ids) if !ids.is_empty() => Ok(PromptInput::Tokens(token_ids(
                    &format!("prompt[{i}]"),
                    ids,
                )?)),
                _ => Err(ApiError::invalid(format!("prompt[{i}]"), shape)),
            })
            .collect(),
        Some(_) => Err(ApiError::invalid("prompt", shape)),
    }
}

fn token_ids(field: &str, items: &[Value]) -> Result<Vec<u32>, ApiError> {
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_u64()
                .and_then(|id| u32::try_from(id).ok())
                .ok_or_else(|| {
                    ApiError::invalid(
                        format!("{field}[{i}]"),
                        format!("token ids are non-negative integers, got {v}"),
                    )
                })
        })
        .collect()
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
