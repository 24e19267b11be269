//! Chat messages as a request carries them, and their conversion into the dict a chat template
//! sees, following transformers' `apply_chat_template` (keys whose value is null are dropped,
//! reasoning is aliased to `thinking` and `reasoning_content`).
//!
//! The conversion takes a function applied to every *untrusted* string — text that came from the
//! conversation rather than from the template — so that `segments.rs` can swap those strings for
//! sentinels or marked copies without knowing the message layout.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A message's `content`: a plain string, or a list of parts (`{"type": "text", "text": ...}`,
/// `{"type": "image"}`...), or any other JSON (a tool result as an object). Templates receive it
/// exactly as given, like in transformers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Value>),
    /// Any other JSON value; its string leaves count as message text.
    Other(Value),
}

/// One chat message. Fields that are `None` are absent from the dict the template sees
/// (`message.tool_calls is defined` is false), as transformers drops `None` values.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Any other keys, passed to the template unchanged (null values are dropped).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Message {
    /// A message whose content is plain text.
    pub fn text(role: &str, content: &str) -> Self {
        Message {
            role: role.to_string(),
            content: Some(Content::Text(content.to_string())),
            ..Message::default()
        }
    }

    /// The dict the template sees. `untrusted` is applied to every string that came from the
    /// conversation: content text, text parts, reasoning, and string leaves of tool-call arguments.
    pub(crate) fn to_template_value(&self, untrusted: &mut dyn FnMut(&str) -> String) -> Value {
        let mut map = Map::new();
        map.insert("role".into(), Value::String(self.role.clone()));
        match &self.content {
            Some(Content::Text(text)) => {
                map.insert("content".into(), Value::String(untrusted(text)));
            }
            Some(Content::Parts(parts)) => {
                let parts = parts
                    .iter()
                    .map(|part| map_text_part(part, untrusted))
                    .collect();
                map.insert("content".into(), Value::Array(parts));
            }
            Some(Content::Other(value)) => {
                map.insert("content".into(), map_string_leaves(value, untrusted));
            }
            None => {}
        }
        if let Some(calls) = &self.tool_calls {
            map.insert("tool_calls".into(), map_tool_calls(calls, untrusted));
        }
        if let Some(id) = &self.tool_call_id {
            map.insert("tool_call_id".into(), Value::String(id.clone()));
        }
        if let Some(name) = &self.name {
            map.insert("name".into(), Value::String(name.clone()));
        }
        if let Some(reasoning) = &self.reasoning_content {
            map.insert(
                "reasoning_content".into(),
                Value::String(untrusted(reasoning)),
            );
        }
        for (key, value) in &self.extra {
            if value.is_null() || map.contains_key(key) {
                continue;
            }
            let value = match (key.as_str(), value) {
                ("thinking" | "reasoning", Value::String(text)) => Value::String(untrusted(text)),
                _ => value.clone(),
            };
            map.insert(key.clone(), value);
        }
        alias_reasoning(map)
    }
}

/// transformers fills `thinking` (first key) and `reasoning_content` from the first non-null of
/// `reasoning_content`, `thinking`, `reasoning`, so templates reading either name see it.
fn alias_reasoning(map: Map<String, Value>) -> Value {
    let reasoning = ["reasoning_content", "thinking", "reasoning"]
        .iter()
        .find_map(|key| map.get(*key).filter(|v| !v.is_null()).cloned());
    let Some(reasoning) = reasoning else {
        return Value::Object(map);
    };
    let mut aliased = Map::new();
    aliased.insert("thinking".into(), reasoning.clone());
    for (key, value) in map {
        aliased.insert(key, value);
    }
    aliased.insert("reasoning_content".into(), reasoning);
    Value::Object(aliased)
}

fn map_text_part(part: &Value, untrusted: &mut dyn FnMut(&str) -> String) -> Value {
    let Value::Object(fields) = part else {
        return part.clone();
    };
    let mut out = fields.clone();
    if let Some(Value::String(text)) = fields.get("text") {
        out.insert("text".into(), Value::String(untrusted(text)));
    }
    Value::Object(out)
}

/// Tool calls: the string leaves under any `arguments` key are untrusted (the client sends them
/// back); names and ids are identifiers templates compare and stay as they are.
fn map_tool_calls(value: &Value, untrusted: &mut dyn FnMut(&str) -> String) -> Value {
    match value {
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| map_tool_calls(v, untrusted)).collect())
        }
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, v)| {
                    let v = if key == "arguments" {
                        map_string_leaves(v, untrusted)
                    } else {
                        map_tool_calls(v, untrusted)
                    };
                    (key.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Applies `untrusted` to every string value below `value` (object keys are left alone).
pub(crate) fn map_string_leaves(value: &Value, untrusted: &mut dyn FnMut(&str) -> String) -> Value {
    match value {
        Value::String(text) => Value::String(untrusted(text)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| map_string_leaves(v, untrusted))
                .collect(),
        ),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), map_string_leaves(v, untrusted)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Tool definitions: the strings under `description` keys are free text from the client; names,
/// types and enums stay as they are, since templates branch on them.
pub(crate) fn map_tool_descriptions(
    value: &Value,
    untrusted: &mut dyn FnMut(&str) -> String,
) -> Value {
    match value {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| map_tool_descriptions(v, untrusted))
                .collect(),
        ),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, v)| {
                    let v = match (key.as_str(), v) {
                        ("description", Value::String(text)) => Value::String(untrusted(text)),
                        _ => map_tool_descriptions(v, untrusted),
                    };
                    (key.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}
