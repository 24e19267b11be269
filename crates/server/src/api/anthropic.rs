//! Anthropic's Messages API request (`POST /v1/messages`, `/v1/messages/count_tokens`) read
//! into the same [`ChatParams`] the OpenAI chat route validates into, so both front ends share
//! prompts, reasoning, tools and generation. Content blocks become chat messages: `text`;
//! `tool_use` → an assistant tool call; `tool_result` → a `tool` message (before the user's
//! text of the same turn; `is_error` results are prefixed `Error: `); `thinking` → the
//! assistant's `reasoning_content`. Images and documents are refused by name.

use kaiyuan_chat::Message;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::reasoning;
use super::request::CommonFields;
use super::tools::tools_request;
use super::validate::{gen_params, ChatParams};
use crate::error::ApiError;
use crate::extract::from_body;

#[derive(Debug, Default, Deserialize)]
struct MessagesRequest {
    model: Option<String>,
    max_tokens: Option<i64>,
    messages: Option<Value>,
    system: Option<Value>,
    stop_sequences: Option<Vec<String>>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<i64>,
    metadata: Option<Value>,
    stream: Option<bool>,
    tools: Option<Value>,
    tool_choice: Option<Value>,
    thinking: Option<Value>,
}

/// A `/v1/messages` body. `max_tokens` is required, as in Anthropic's API.
pub fn messages(body: &Value) -> Result<ChatParams, ApiError> {
    read(body, true, &Map::new())
}

/// [`messages`] with a served model's default sampling (the models file's `sampling`, in
/// OpenAI's field names) filling what the request leaves out: `temperature`, `top_p` and
/// `top_k` when absent, and the fields the Messages API does not have (`min_p`, the
/// penalties) always. `max_tokens` is the request's own (it is required).
pub fn messages_with_defaults(
    body: &Value,
    defaults: &Map<String, Value>,
) -> Result<ChatParams, ApiError> {
    read(body, true, defaults)
}

/// A `/v1/messages/count_tokens` body: the same fields, without `max_tokens`.
pub fn count_tokens(body: &Value) -> Result<ChatParams, ApiError> {
    read(body, false, &Map::new())
}

fn read(
    body: &Value,
    needs_max_tokens: bool,
    defaults: &Map<String, Value>,
) -> Result<ChatParams, ApiError> {
    let req: MessagesRequest = from_body(body)?;
    let max_tokens = match req.max_tokens {
        Some(n) if n >= 1 => Some(n),
        Some(_) => {
            return Err(ApiError::invalid(
                "max_tokens",
                "max_tokens must be at least 1",
            ))
        }
        None if needs_max_tokens => {
            return Err(ApiError::invalid("max_tokens", "max_tokens is required"))
        }
        None => None,
    };
    let user = match &req.metadata {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => match m.get("user_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(u)) => Some(u.clone()),
            Some(_) => {
                return Err(ApiError::invalid(
                    "metadata.user_id",
                    "user_id must be a string",
                ))
            }
        },
        Some(_) => return Err(ApiError::invalid("metadata", "metadata must be an object")),
    };
    let float = |k: &str| defaults.get(k).and_then(Value::as_f64);
    let common = CommonFields {
        max_tokens,
        temperature: req.temperature.or_else(|| float("temperature")),
        top_p: req.top_p.or_else(|| float("top_p")),
        top_k: req
            .top_k
            .or_else(|| defaults.get("top_k").and_then(Value::as_i64)),
        min_p: float("min_p"),
        presence_penalty: float("presence_penalty"),
        frequency_penalty: float("frequency_penalty"),
        repetition_penalty: float("repetition_penalty"),
        stop: req
            .stop_sequences
            .map(|s| Value::Array(s.into_iter().map(Value::String).collect())),
        stream: req.stream,
        stream_options: None,
        user,
        ..CommonFields::default()
    };
    let mut gen =
        gen_params(&common, None, "logprobs").map_err(|e| rename(e, "stop", "stop_sequences"))?;
    gen.include_usage = true;
    let mut messages = Vec::new();
    if let Some(system) = system_text(req.system.as_ref())? {
        messages.push(Message::text("system", &system));
    }
    let list = match &req.messages {
        Some(Value::Array(list)) if !list.is_empty() => list,
        Some(Value::Array(_)) => {
            return Err(ApiError::invalid("messages", "messages must not be empty"))
        }
        None => return Err(ApiError::invalid("messages", "messages is required")),
        Some(_) => return Err(ApiError::invalid("messages", "messages must be a list")),
    };
    let mut tool_ids: Vec<String> = Vec::new();
    for (i, m) in list.iter().enumerate() {
        convert(i, m, &mut tool_ids, &mut messages)?;
    }
    let (tools, tool_choice, parallel) = tool_fields(req.tools.as_ref(), req.tool_choice.as_ref())?;
    let tools = tools_request(tools.as_ref(), tool_choice.as_ref(), Some(&json!(parallel)))
        .map_err(anthropic_tool_param)?;
    let reasoning = reasoning::request(req.thinking.as_ref(), None, None)?;
    Ok(ChatParams {
        model: req.model,
        messages,
        gen,
        reasoning,
        tools,
        prefix: None,
    })
}

/// `system`: a string or a list of `text` blocks (joined with a newline).
fn system_text(system: Option<&Value>) -> Result<Option<String>, ApiError> {
    match system {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Array(blocks)) => {
            let mut texts = Vec::new();
            for (j, b) in blocks.iter().enumerate() {
                match (block_type(b), b.get("text").and_then(Value::as_str)) {
                    (Some("text"), Some(t)) => texts.push(t),
                    _ => {
                        return Err(ApiError::invalid(
                            format!("system[{j}]"),
                            "system blocks must be {\"type\": \"text\", \"text\": …}",
                        ))
                    }
                }
            }
            Ok(Some(texts.join("\n")))
        }
        Some(_) => Err(ApiError::invalid(
            "system",
            "system must be a string or a list of text blocks",
        )),
    }
}

fn block_type(b: &Value) -> Option<&str> {
    b.get("type").and_then(Value::as_str)
}

/// One Anthropic message into chat messages (a user turn with tool results gives `tool`
/// messages, then the user's text if any).
fn convert(
    i: usize,
    m: &Value,
    tool_ids: &mut Vec<String>,
    out: &mut Vec<Message>,
) -> Result<(), ApiError> {
    let at = |field: &str| format!("messages[{i}].{field}");
    let role = match m.get("role").and_then(Value::as_str) {
        Some(r @ ("user" | "assistant")) => r,
        Some(other) => {
            return Err(ApiError::invalid(
                at("role"),
                format!("role must be user or assistant, got `{other}`"),
            ))
        }
        None => return Err(ApiError::invalid(at("role"), "a message needs a role")),
    };
    if i == 0 && role != "user" {
        return Err(ApiError::invalid(
            at("role"),
            "the first message must be a user message",
        ));
    }
    let blocks = match m.get("content") {
        Some(Value::String(s)) => vec![json!({"type": "text", "text": s})],
        Some(Value::Array(b)) => b.clone(),
        _ => {
            return Err(ApiError::invalid(
                at("content"),
                "content must be a string or a list of content blocks",
            ))
        }
    };
    let mut texts: Vec<String> = Vec::new();
    let mut calls: Vec<Value> = Vec::new();
    let mut thinking: Option<String> = None;
    for (j, b) in blocks.iter().enumerate() {
        let here = |field: &str| format!("messages[{i}].content[{j}]{field}");
        match (role, block_type(b)) {
            (_, Some("text")) => match b.get("text").and_then(Value::as_str) {
                Some(t) => texts.push(t.to_string()),
                None => return Err(ApiError::invalid(here(".text"), "a text block needs `text`")),
            },
            (_, Some(kind @ ("image" | "document" | "search_result"))) => {
                return Err(ApiError::unsupported(
                    here(".type"),
                    format!("`{kind}` blocks are not supported; only text, tool_use, tool_result and thinking are"),
                ))
            }
            ("assistant", Some("tool_use")) => {
                let id = b.get("id").and_then(Value::as_str).unwrap_or_default();
                let name = b.get("name").and_then(Value::as_str).unwrap_or_default();
                if id.is_empty() || name.is_empty() {
                    return Err(ApiError::invalid(here(""), "a tool_use block needs an id and a name"));
                }
                let input = match b.get("input") {
                    Some(v @ Value::Object(_)) => v.clone(),
                    None | Some(Value::Null) => json!({}),
                    Some(_) => return Err(ApiError::invalid(here(".input"), "input must be an object")),
                };
                tool_ids.push(id.to_string());
                calls.push(json!({"id": id, "type": "function",
                                  "function": {"name": name, "arguments": input}}));
            }
            ("assistant", Some("thinking")) => match b.get("thinking").and_then(Value::as_str) {
                Some(t) => thinking = Some(t.to_string()),
                None => {
                    return Err(ApiError::invalid(here(".thinking"), "a thinking block needs `thinking`"))
                }
            },
            // Redacted reasoning cannot be shown to an open model: dropped, as templates drop
            // earlier turns' reasoning.
            ("assistant", Some("redacted_thinking")) => {}
            ("user", Some("tool_result")) => {
                let id = b.get("tool_use_id").and_then(Value::as_str).unwrap_or_default();
                if !tool_ids.iter().any(|t| t == id) {
                    return Err(ApiError::invalid(
                        here(".tool_use_id"),
                        format!("`{id}` is not the id of a tool_use block earlier in the conversation"),
                    ));
                }
                let mut text = match b.get("content") {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Array(parts)) => {
                        let mut t = Vec::new();
                        for (k, p) in parts.iter().enumerate() {
                            match (block_type(p), p.get("text").and_then(Value::as_str)) {
                                (Some("text"), Some(s)) => t.push(s),
                                (Some(kind), _) => {
                                    return Err(ApiError::unsupported(
                                        format!("messages[{i}].content[{j}].content[{k}].type"),
                                        format!("`{kind}` blocks in a tool result are not supported"),
                                    ))
                                }
                                _ => {
                                    return Err(ApiError::invalid(
                                        format!("messages[{i}].content[{j}].content[{k}]"),
                                        "a tool result's content blocks are text blocks",
                                    ))
                                }
                            }
                        }
                        t.join("\n")
                    }
                    Some(_) => {
                        return Err(ApiError::invalid(
                            here(".content"),
                            "content must be a string or a list of text blocks",
                        ))
                    }
                };
                if b.get("is_error").and_then(Value::as_bool) == Some(true) {
                    text = format!("Error: {text}");
                }
                let mut tool = Message::text("tool", &text);
                tool.tool_call_id = Some(id.to_string());
                out.push(tool);
            }
            (_, Some(other)) => {
                return Err(ApiError::invalid(
                    here(".type"),
                    format!("`{other}` blocks are not allowed in a {role} message"),
                ))
            }
            (_, None) => return Err(ApiError::invalid(here(".type"), "a content block needs a type")),
        }
    }
    if role == "user" && texts.is_empty() && out.last().is_some_and(|m| m.role == "tool") {
        return Ok(());
    }
    let mut message = Message::text(role, &texts.join("\n"));
    if !calls.is_empty() {
        message.tool_calls = Some(Value::Array(calls));
    }
    message.reasoning_content = thinking;
    out.push(message);
    Ok(())
}

/// Anthropic's `tools` and `tool_choice` in OpenAI's shape: `(tools, tool_choice, parallel)`.
fn tool_fields(
    tools: Option<&Value>,
    choice: Option<&Value>,
) -> Result<(Option<Value>, Option<Value>, bool), ApiError> {
    let tools = match tools {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => {
            let mut out = Vec::with_capacity(list.len());
            for (i, t) in list.iter().enumerate() {
                let Some(t) = t.as_object() else {
                    return Err(ApiError::invalid(
                        format!("tools[{i}]"),
                        "a tool must be an object",
                    ));
                };
                if let Some(kind) = t
                    .get("type")
                    .and_then(Value::as_str)
                    .filter(|k| *k != "custom")
                {
                    return Err(ApiError::unsupported(
                        format!("tools[{i}].type"),
                        format!("server tools (`{kind}`) are not supported; only custom tools are"),
                    ));
                }
                let mut function = Map::new();
                for (from, to) in [
                    ("name", "name"),
                    ("description", "description"),
                    ("input_schema", "parameters"),
                ] {
                    if let Some(v) = t.get(from) {
                        function.insert(to.into(), v.clone());
                    }
                }
                if !t.contains_key("input_schema") {
                    return Err(ApiError::invalid(
                        format!("tools[{i}].input_schema"),
                        "a tool needs an input_schema",
                    ));
                }
                out.push(json!({"type": "function", "function": function}));
            }
            Some(Value::Array(out))
        }
        Some(_) => return Err(ApiError::invalid("tools", "tools must be a list")),
    };
    let Some(choice) = choice.filter(|c| !c.is_null()) else {
        return Ok((tools, None, true));
    };
    let parallel = !choice
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let openai = match block_type(choice) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => match choice.get("name").and_then(Value::as_str) {
            Some(name) => json!({"type": "function", "function": {"name": name}}),
            None => {
                return Err(ApiError::invalid(
                    "tool_choice.name",
                    "tool_choice `tool` needs a name",
                ))
            }
        },
        _ => {
            return Err(ApiError::invalid(
                "tool_choice.type",
                "tool_choice.type must be auto, any, tool or none",
            ))
        }
    };
    Ok((tools, Some(openai), parallel))
}

/// An error of the shared tool validation, with Anthropic's field names.
fn anthropic_tool_param(e: ApiError) -> ApiError {
    let e = rename(e, ".function.parameters", ".input_schema");
    let e = rename(e, ".function.", ".");
    rename(e, "tool_choice.function.name", "tool_choice.name")
}

/// `e` with `from` replaced by `to` in its `param`.
fn rename(e: ApiError, from: &str, to: &str) -> ApiError {
    match e {
        ApiError::Invalid {
            param: Some(p),
            message,
        } => ApiError::Invalid {
            param: Some(p.replace(from, to)),
            message,
        },
        ApiError::Unsupported { param, message } => ApiError::Unsupported {
            param: param.replace(from, to),
            message,
        },
        other => other,
    }
}

#[cfg(test)]
#[path = "anthropic_tests.rs"]
mod tests;
