//! Tool calling in a chat request: `tools`, `tool_choice`, `parallel_tool_calls`, assistant
//! history with `tool_calls` and `role: "tool"` results, checked into a [`ToolsRequest`] and
//! template-ready messages. Every rejection names its field. Which format the model writes
//! calls in, and how the output is constrained and parsed, is `crate::tools`' business.
//!
//! Limits and choices (documented in the README):
//! - at most [`MAX_TOOLS`] tools (OpenAI's limit); names are 1..=64 characters of a-z, A-Z,
//!   0-9, `_` and `-` and unique; `parameters` is a JSON Schema object (absent: any object);
//! - `tool_choice` without `tools` may only be `none` or `auto`; a named choice must name a
//!   tool of `tools`; `none` means: the tools are neither shown to the model nor parsed;
//! - arguments are constrained to a tool's declared `properties` unless its schema sets
//!   `additionalProperties` itself;
//! - assistant `tool_calls[].function.arguments` is a JSON object or a string holding one;
//!   ids may be null or missing.

use kaiyuan_chat::tools::{ToolChoice, ToolSpec};
use serde_json::{json, Map, Value};

use crate::error::ApiError;

/// OpenAI's limit on the number of tools in one request.
pub const MAX_TOOLS: usize = 128;

/// The tools a request offers the model, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolsRequest {
    pub specs: Vec<ToolSpec>,
    /// The tools in OpenAI's shape (`{"type": "function", "function": {...}}`), as chat
    /// templates expect them in their `tools` variable.
    pub definitions: Value,
    pub choice: ToolChoice,
    /// Whether more than one call may be made in one reply (default true).
    pub parallel: bool,
}

/// Reads `tools`, `tool_choice` and `parallel_tool_calls`. `None`: no tools to offer (none
/// given, or `tool_choice: "none"`).
pub fn tools_request(
    tools: Option<&Value>,
    tool_choice: Option<&Value>,
    parallel: Option<&Value>,
) -> Result<Option<ToolsRequest>, ApiError> {
    let parallel = match parallel {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::invalid(
                "parallel_tool_calls",
                "parallel_tool_calls must be a boolean",
            ))
        }
    };
    let list = match tools {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(_) => return Err(ApiError::invalid("tools", "tools must be an array")),
    };
    if list.len() > MAX_TOOLS {
        return Err(ApiError::invalid(
            "tools",
            format!("at most {MAX_TOOLS} tools are allowed, got {}", list.len()),
        ));
    }
    let mut specs: Vec<ToolSpec> = Vec::with_capacity(list.len());
    let mut definitions = Vec::with_capacity(list.len());
    for (i, tool) in list.iter().enumerate() {
        let (spec, definition) = tool_definition(i, tool)?;
        if specs.iter().any(|s| s.name == spec.name) {
            return Err(ApiError::invalid(
                format!("tools[{i}].function.name"),
                format!("the tool name `{}` is used twice", spec.name),
            ));
        }
        specs.push(spec);
        definitions.push(definition);
    }
    let choice = match tool_choice {
        None | Some(Value::Null) => Some(ToolChoice::Auto),
        Some(Value::String(s)) => match s.as_str() {
            "none" => None,
            "auto" => Some(ToolChoice::Auto),
            "required" => Some(ToolChoice::Required),
            other => {
                return Err(ApiError::invalid(
                    "tool_choice",
                    format!(
                        "unknown tool_choice `{other}`; expected none, auto, required or \
                         {{\"type\": \"function\", \"function\": {{\"name\": …}}}}"
                    ),
                ))
            }
        },
        Some(Value::Object(o)) => Some(named_choice(o)?),
        Some(_) => {
            return Err(ApiError::invalid(
                "tool_choice",
                "tool_choice must be a string or an object",
            ))
        }
    };
    let Some(choice) = choice else {
        return Ok(None);
    };
    match &choice {
        ToolChoice::Auto if specs.is_empty() => return Ok(None),
        ToolChoice::Required if specs.is_empty() => {
            return Err(ApiError::invalid(
                "tool_choice",
                "tool_choice `required` needs tools",
            ))
        }
        ToolChoice::Named(name) if !specs.iter().any(|s| &s.name == name) => {
            return Err(ApiError::invalid(
                "tool_choice.function.name",
                format!("tool_choice names `{name}`, which is not one of `tools`"),
            ))
        }
        _ => {}
    }
    Ok(Some(ToolsRequest {
        specs,
        definitions: Value::Array(definitions),
        choice,
        parallel,
    }))
}

fn named_choice(o: &Map<String, Value>) -> Result<ToolChoice, ApiError> {
    if o.get("type").and_then(Value::as_str) != Some("function") {
        return Err(ApiError::invalid(
            "tool_choice.type",
            "a tool_choice object must have type `function`",
        ));
    }
    match o
        .get("function")
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str)
    {
        Some(name) if !name.is_empty() => Ok(ToolChoice::Named(name.to_string())),
        _ => Err(ApiError::invalid(
            "tool_choice.function.name",
            "a tool_choice object needs function.name",
        )),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// One entry of `tools`: its spec and its definition in OpenAI's shape.
fn tool_definition(i: usize, tool: &Value) -> Result<(ToolSpec, Value), ApiError> {
    let at = |field: &str| format!("tools[{i}].{field}");
    let Some(object) = tool.as_object() else {
        return Err(ApiError::invalid(
            format!("tools[{i}]"),
            "a tool must be an object",
        ));
    };
    match object.get("type").and_then(Value::as_str) {
        Some("function") => {}
        Some(other) => {
            return Err(ApiError::unsupported(
                at("type"),
                format!("tools of type `{other}` are not supported; only `function` is"),
            ))
        }
        None => {
            return Err(ApiError::invalid(
                at("type"),
                "a tool needs type `function`",
            ))
        }
    }
    let Some(function) = object.get("function").and_then(Value::as_object) else {
        return Err(ApiError::invalid(
            at("function"),
            "a tool needs a `function` object",
        ));
    };
    let name = match function.get("name") {
        Some(Value::String(name)) if valid_name(name) => name.clone(),
        Some(Value::String(_)) => {
            return Err(ApiError::invalid(
                at("function.name"),
                "a tool name must be 1..=64 characters of a-z, A-Z, 0-9, _ and -",
            ))
        }
        _ => {
            return Err(ApiError::invalid(
                at("function.name"),
                "a tool needs a name",
            ))
        }
    };
    let description = match function.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) => Some(d.clone()),
        Some(_) => {
            return Err(ApiError::invalid(
                at("function.description"),
                "description must be a string",
            ))
        }
    };
    let parameters = match function.get("parameters") {
        None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
        Some(p @ Value::Object(o)) => {
            if let Some(kind) = o.get("type") {
                if kind != "object" {
                    return Err(ApiError::invalid(
                        at("function.parameters"),
                        "parameters must be a JSON Schema of type `object` (arguments are an object)",
                    ));
                }
            }
            p.clone()
        }
        Some(_) => {
            return Err(ApiError::invalid(
                at("function.parameters"),
                "parameters must be a JSON Schema object",
            ))
        }
    };
    // The grammar keeps arguments to the declared properties unless the schema says
    // otherwise (small models otherwise copy schema keywords into their arguments).
    let mut constrained = parameters.clone();
    if let Some(o) = constrained.as_object_mut() {
        if o.contains_key("properties") && !o.contains_key("additionalProperties") {
            o.insert("additionalProperties".into(), Value::Bool(false));
        }
    }
    let mut spec = ToolSpec::new(name.clone(), constrained);
    // Keys in the order clients send them: templates print the definition with `tojson` or
    // key by key (Mistral Nemo), and the model was trained on this order.
    let mut def = json!({"name": name});
    if let Some(d) = description {
        def["description"] = json!(d);
        spec = spec.with_description(d);
    }
    def["parameters"] = parameters;
    Ok((spec, json!({"type": "function", "function": def})))
}

/// An assistant message's `tool_calls`, as the template sees them: `{"id"?, "type":
/// "function", "function": {"name", "arguments": <object>}}` (templates that want the
/// arguments as text get them converted by `crate::tools`).
pub fn assistant_tool_calls(i: usize, calls: &Value) -> Result<Value, ApiError> {
    let at = |j: usize, field: &str| format!("messages[{i}].tool_calls[{j}].{field}");
    let Some(items) = calls.as_array() else {
        return Err(ApiError::invalid(
            format!("messages[{i}].tool_calls"),
            "tool_calls must be an array",
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for (j, call) in items.iter().enumerate() {
        let Some(call) = call.as_object() else {
            return Err(ApiError::invalid(
                format!("messages[{i}].tool_calls[{j}]"),
                "a tool call must be an object",
            ));
        };
        if let Some(kind) = call.get("type").filter(|t| !t.is_null()) {
            if kind != "function" {
                return Err(ApiError::invalid(
                    at(j, "type"),
                    "a tool call's type must be `function`",
                ));
            }
        }
        let Some(function) = call.get("function").and_then(Value::as_object) else {
            return Err(ApiError::invalid(
                at(j, "function"),
                "a tool call needs a `function` object",
            ));
        };
        let name = match function.get("name") {
            Some(Value::String(n)) if !n.is_empty() => n.clone(),
            _ => {
                return Err(ApiError::invalid(
                    at(j, "function.name"),
                    "a tool call needs a name",
                ))
            }
        };
        let arguments = match function.get("arguments") {
            None | Some(Value::Null) => json!({}),
            Some(v @ Value::Object(_)) => v.clone(),
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(v @ Value::Object(_)) => v,
                _ => {
                    return Err(ApiError::invalid(
                        at(j, "function.arguments"),
                        "arguments must be a JSON object (or a string holding one)",
                    ))
                }
            },
            Some(_) => {
                return Err(ApiError::invalid(
                    at(j, "function.arguments"),
                    "arguments must be a JSON object (or a string holding one)",
                ))
            }
        };
        let mut entry = json!({
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        });
        match call.get("id") {
            None | Some(Value::Null) => {}
            Some(Value::String(id)) => entry["id"] = json!(id),
            Some(_) => return Err(ApiError::invalid(at(j, "id"), "id must be a string")),
        }
        out.push(entry);
    }
    Ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(e: ApiError) -> String {
        match e {
            ApiError::Invalid { param, .. } => param.unwrap_or_default(),
            ApiError::Unsupported { param, .. } => param,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn weather() -> Value {
        json!([{"type": "function", "function": {
            "name": "get_weather", "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}}}])
    }

    #[test]
    fn tools_and_choices() {
        let r = tools_request(Some(&weather()), None, None)
            .unwrap()
            .unwrap();
        assert_eq!(r.choice, ToolChoice::Auto);
        assert!(r.parallel);
        assert_eq!(r.specs[0].name, "get_weather");
        assert_eq!(
            r.definitions[0]["function"]["description"],
            "Weather of a city"
        );
        // The template sees the definition in the order clients write it.
        assert_eq!(r.definitions, weather());
        let keys: Vec<_> = r.definitions[0]["function"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["name", "description", "parameters"]);
        let named = json!({"type": "function", "function": {"name": "get_weather"}});
        let r = tools_request(Some(&weather()), Some(&named), Some(&json!(false)))
            .unwrap()
            .unwrap();
        assert_eq!(r.choice, ToolChoice::Named("get_weather".into()));
        assert!(!r.parallel);
        assert_eq!(
            tools_request(Some(&weather()), Some(&json!("none")), None).unwrap(),
            None
        );
        assert_eq!(
            tools_request(None, Some(&json!("auto")), None).unwrap(),
            None
        );
    }

    #[test]
    fn bad_tools_name_their_field() {
        let cases = [
            (
                json!([{"type": "function", "function": {}}]),
                "tools[0].function.name",
            ),
            (
                json!([{"type": "function", "function": {"name": "a b"}}]),
                "tools[0].function.name",
            ),
            (json!([{"function": {"name": "a"}}]), "tools[0].type"),
            (json!([{"type": "code_interpreter"}]), "tools[0].type"),
            (
                json!([{"type": "function", "function": {"name": "a", "parameters": "x"}}]),
                "tools[0].function.parameters",
            ),
            (
                json!([{"type": "function", "function": {"name": "a", "parameters": {"type": "string"}}}]),
                "tools[0].function.parameters",
            ),
            (
                json!([{"type": "function", "function": {"name": "a"}},
                       {"type": "function", "function": {"name": "a"}}]),
                "tools[1].function.name",
            ),
            (json!({"name": "a"}), "tools"),
        ];
        for (tools, field) in cases {
            let e = tools_request(Some(&tools), None, None).unwrap_err();
            assert_eq!(param(e), field, "{tools}");
        }
        let e = tools_request(
            Some(&weather()),
            Some(&json!({"type": "function", "function": {"name": "nope"}})),
            None,
        )
        .unwrap_err();
        assert_eq!(param(e), "tool_choice.function.name");
        let e = tools_request(None, Some(&json!("required")), None).unwrap_err();
        assert_eq!(param(e), "tool_choice");
        let e = tools_request(Some(&weather()), Some(&json!("sometimes")), None).unwrap_err();
        assert_eq!(param(e), "tool_choice");
        let e = tools_request(Some(&weather()), None, Some(&json!("yes"))).unwrap_err();
        assert_eq!(param(e), "parallel_tool_calls");
        let many = Value::Array(vec![weather()[0].clone(); MAX_TOOLS + 1]);
        assert_eq!(
            param(tools_request(Some(&many), None, None).unwrap_err()),
            "tools"
        );
    }

    #[test]
    fn assistant_calls_take_object_or_string_arguments_and_no_id() {
        let calls = json!([
            {"id": null, "type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}},
            {"function": {"name": "g", "arguments": {"y": 2}}, "id": "call_1"}
        ]);
        let v = assistant_tool_calls(3, &calls).unwrap();
        assert_eq!(v[0]["function"]["arguments"], json!({"x": 1}));
        assert!(v[0].get("id").is_none());
        assert_eq!(v[1]["id"], "call_1");
        let bad = json!([{"function": {"name": "f", "arguments": "[1]"}}]);
        assert_eq!(
            param(assistant_tool_calls(3, &bad).unwrap_err()),
            "messages[3].tool_calls[0].function.arguments"
        );
        let bad = json!([{"function": {"arguments": "{}"}}]);
        assert_eq!(
            param(assistant_tool_calls(3, &bad).unwrap_err()),
            "messages[3].tool_calls[0].function.name"
        );
    }
}
