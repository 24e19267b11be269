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
//!   name.
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
use super::reasoning::{self, ReasoningRequest};
use super::request::{ChatCompletionRequest, ChatMessage, CommonFields, CompletionRequest};
use super::tools::{assistant_tool_calls, tools_request, ToolsRequest};
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

/// DeepSeek's prefix completion: `"prefix": true` on the last message, an assistant message
/// without tool calls, whose content the reply continues. Anywhere else it is refused.
fn prefix_completion(
    raw: &[ChatMessage],
    messages: &mut Vec<Message>,
) -> Result<Option<String>, ApiError> {
    let mut wanted = None;
    for (i, m) in raw.iter().enumerate() {
        match &m.prefix {
            None | Some(Value::Null) | Some(Value::Bool(false)) => {}
            Some(Value::Bool(true)) => wanted = Some(i),
            Some(_) => {
                return Err(ApiError::invalid(
                    format!("messages[{i}].prefix"),
                    "prefix must be a boolean",
                ))
            }
        }
    }
    let Some(i) = wanted else {
        return Ok(None);
    };
    let at = format!("messages[{i}].prefix");
    if i + 1 != raw.len() || raw[i].role != "assistant" {
        return Err(ApiError::invalid(
            at,
            "prefix: true is allowed only on the last message, an assistant message",
        ));
    }
    if messages[i].tool_calls.is_some() {
        return Err(ApiError::invalid(
            at,
            "a prefix message cannot carry tool_calls",
        ));
    }
    if i == 0 {
        return Err(ApiError::invalid(
            at,
            "a prefix message needs a conversation before it",
        ));
    }
    let last = messages.pop().expect("invariant: i is the last index");
    Ok(Some(match last.content {
        Some(kaiyuan_chat::Content::Text(text)) => text,
        _ => String::new(),
    }))
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

/// One chat message into the template's [`Message`]. Only fields the template treats as
/// markup are checked strictly (role, name): see `kaiyuan_chat::segments`.
fn message(i: usize, m: &ChatMessage) -> Result<Message, ApiError> {
    let at = |field: &str| format!("messages[{i}].{field}");
    let role = match m.role.as_str() {
        "system" | "developer" => "system",
        "user" => "user",
        "assistant" => "assistant",
        "tool" => "tool",
        "function" => {
            return Err(ApiError::unsupported(
                at("role"),
                "the deprecated `function` role is not supported; use `tool` messages",
            ))
        }
        other => {
            return Err(ApiError::invalid(
                at("role"),
                format!(
                    "unknown role `{other}`; expected system, developer, user, assistant or tool"
                ),
            ))
        }
    };
    let tool_calls = match &m.tool_calls {
        None | Some(Value::Null) => None,
        Some(calls) if role == "assistant" => Some(assistant_tool_calls(i, calls)?),
        Some(_) => {
            return Err(ApiError::invalid(
                at("tool_calls"),
                "only assistant messages carry tool_calls",
            ))
        }
    };
    let tool_call_id = match &m.tool_call_id {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if role == "tool" => Some(id.clone()),
        Some(Value::String(_)) => {
            return Err(ApiError::invalid(
                at("tool_call_id"),
                "only tool messages carry tool_call_id",
            ))
        }
        Some(_) => {
            return Err(ApiError::invalid(
                at("tool_call_id"),
                "tool_call_id must be a string",
            ))
        }
    };
    let content = match &m.content {
        None | Some(Value::Null) if role == "assistant" => String::new(),
        None | Some(Value::Null) => {
            return Err(ApiError::invalid(at("content"), "content is required"))
        }
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => text_parts(i, parts)?,
        Some(_) => {
            return Err(ApiError::invalid(
                at("content"),
                "content must be a string or an array of text parts",
            ))
        }
    };
    let mut message = Message::text(role, &content);
    message.tool_calls = tool_calls;
    message.tool_call_id = tool_call_id;
    if let Some(name) = &m.name {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            return Err(ApiError::invalid(
                at("name"),
                "name must be 1..=64 characters of a-z, A-Z, 0-9, _ and -",
            ));
        }
        message.name = Some(name.clone());
    }
    message.reasoning_content =
        reasoning::message_reasoning(i, role, m.reasoning_content.as_ref())?;
    Ok(message)
}

fn text_parts(i: usize, parts: &[Value]) -> Result<String, ApiError> {
    let mut texts = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let at = format!("messages[{i}].content[{j}]");
        let kind = part.get("type").and_then(Value::as_str);
        match kind {
            Some("text") => match part.get("text").and_then(Value::as_str) {
                Some(text) => texts.push(text),
                None => {
                    return Err(ApiError::invalid(
                        format!("{at}.text"),
                        "a text part needs a string `text`",
                    ))
                }
            },
            Some(other) => {
                return Err(ApiError::unsupported(
                    format!("{at}.type"),
                    format!(
                        "content parts of type `{other}` are not supported; only `text` parts are"
                    ),
                ))
            }
            None => {
                return Err(ApiError::invalid(
                    format!("{at}.type"),
                    "a content part needs a `type`",
                ))
            }
        }
    }
    Ok(texts.join("\n"))
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
