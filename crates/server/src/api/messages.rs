//! Chat messages from a request body to the template's [`Message`]s: roles, content (a string
//! or text parts), `name`, `tool_calls` / `tool_call_id` on the roles that carry them,
//! `reasoning_content`, and DeepSeek's prefix completion (`"prefix": true` on the last,
//! assistant, message). Every rejection names its field (`messages[i].…`).

use kaiyuan_chat::Message;
use serde_json::Value;

use super::reasoning;
use super::request::ChatMessage;
use super::tools::assistant_tool_calls;
use crate::error::ApiError;

/// One chat message into the template's [`Message`]. Only fields the template treats as
/// markup are checked strictly (role, name): see `kaiyuan_chat::segments`.
pub(super) fn message(i: usize, m: &ChatMessage) -> Result<Message, ApiError> {
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

/// DeepSeek's prefix completion: `"prefix": true` on the last message, an assistant message
/// without tool calls, whose content the reply continues. Anywhere else it is refused.
pub(super) fn prefix_completion(
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
