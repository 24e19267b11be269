//! The generic tool format, for templates without tool tokens (SmolLM2, Gemma 3, ...), after
//! llama.cpp's approach: the tools are described in the system prompt
//! ([`generic_system_prompt`]) and the reply is constrained by a JSON Schema
//! ([`generic_tool_schema`]) to exactly one object of one of these shapes (Kaiyuan's own design):
//!
//! ```text
//! {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}, ...]}
//! {"response": "The answer, as a JSON string."}
//! ```
//!
//! The parser streams the `response` string as content while it arrives (JSON escapes decoded,
//! an escape split across chunks held back). A `tool_calls` object is buffered and emitted when
//! it closes. A reply that does not start with `{` (an unconstrained model answering in prose)
//! is content as it is, and so is valid JSON of another shape; a `{…` that does not parse is
//! [`ToolEvent::Malformed`].

use serde_json::{json, Value};

use super::{
    call_from_value, content, leading_whitespace, malformed, Buffered, Calls, JsonScan, ToolEvent,
};

/// A tool as the generic format describes it: name, optional description, and the JSON Schema
/// of its arguments (`null` or `{}` mean "any object").
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: Option<String>,
    pub parameters: Value,
}

impl ToolSpec {
    pub fn new(name: impl Into<String>, parameters: Value) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: None,
            parameters,
        }
    }

    pub fn with_description(mut self, description: impl Into<String>) -> ToolSpec {
        self.description = Some(description.into());
        self
    }

    fn parameters_schema(&self) -> Value {
        match &self.parameters {
            Value::Object(o) if !o.is_empty() => self.parameters.clone(),
            _ => json!({"type": "object"}),
        }
    }
}

/// What the reply may be (OpenAI's `tool_choice`; `none` means: no schema, no parsing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// Calls or an answer.
    Auto,
    /// One or more calls.
    Required,
    /// One or more calls, all to this tool.
    Named(String),
}

/// The JSON Schema a generic-format reply must match. `None` when no call is possible: `Named`
/// with a tool not in `tools`, or `Required` with no tools. `Auto` with no tools allows only an
/// answer.
pub fn generic_tool_schema(tools: &[ToolSpec], choice: &ToolChoice) -> Option<Value> {
    let call = |tool: &ToolSpec| {
        json!({
            "type": "object",
            "properties": {
                "name": {"const": tool.name},
                "arguments": tool.parameters_schema(),
            },
            "required": ["name", "arguments"],
            "additionalProperties": false,
        })
    };
    let calls = |items: Vec<Value>| {
        let items = if items.len() == 1 {
            items.into_iter().next().unwrap_or(Value::Null)
        } else {
            json!({"anyOf": items})
        };
        json!({
            "type": "object",
            "properties": {"tool_calls": {"type": "array", "items": items, "minItems": 1}},
            "required": ["tool_calls"],
            "additionalProperties": false,
        })
    };
    let response = json!({
        "type": "object",
        "properties": {"response": {"type": "string"}},
        "required": ["response"],
        "additionalProperties": false,
    });
    match choice {
        ToolChoice::Auto if tools.is_empty() => Some(response),
        ToolChoice::Auto => Some(json!({
            "anyOf": [calls(tools.iter().map(call).collect()), response]
        })),
        ToolChoice::Required if tools.is_empty() => None,
        ToolChoice::Required => Some(calls(tools.iter().map(call).collect())),
        ToolChoice::Named(name) => {
            let tool = tools.iter().find(|t| &t.name == name)?;
            Some(calls(vec![call(tool)]))
        }
    }
}

/// The system-prompt text that describes `tools` and the reply format to the model (to put in or
/// before the system message when the template does not render `tools`).
pub fn generic_system_prompt(tools: &[ToolSpec], choice: &ToolChoice) -> String {
    let list: Vec<Value> = tools
        .iter()
        .map(|t| {
            let mut entry = json!({"name": t.name});
            if let Some(d) = &t.description {
                entry["description"] = json!(d);
            }
            entry["parameters"] = t.parameters_schema();
            entry
        })
        .collect();
    let listing = serde_json::to_string_pretty(&list).unwrap_or_default();
    let mut text = format!(
        "You can call the following tools. Each is given with a JSON Schema of its arguments:\n\
         {listing}\n\n\
         Reply with exactly one JSON object and nothing else.\n\
         To call one or more tools: {{\"tool_calls\": [{{\"name\": \"<tool name>\", \
         \"arguments\": {{<arguments>}}}}]}}\n"
    );
    match choice {
        ToolChoice::Auto => text.push_str(
            "To answer the user directly: {\"response\": \"<your answer>\"}\n\
             Call tools when they help; after their results arrive, answer with a response.",
        ),
        ToolChoice::Required => text.push_str("You must call at least one tool."),
        ToolChoice::Named(name) => {
            text.push_str(&format!("You must call the tool \"{name}\"."));
        }
    }
    text
}

/// How far `text` matches `{ "response" : "` (JSON whitespace allowed between the tokens).
enum Opening {
    /// Matched; the string's text starts at this byte.
    Full(usize),
    /// Still a prefix of it.
    Partial,
    No,
}

fn response_opening(text: &str) -> Opening {
    let mut rest = text;
    for token in ["{", "\"response\"", ":", "\""] {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Opening::Partial;
        }
        if let Some(after) = rest.strip_prefix(token) {
            rest = after;
        } else if token.starts_with(rest) {
            return Opening::Partial;
        } else {
            return Opening::No;
        }
    }
    Opening::Full(text.len() - rest.len())
}

/// How a JSON string body read by [`string_prefix`] stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StringEnd {
    /// More text may continue it (possibly an escape split across chunks).
    Open,
    /// At the closing quote.
    Closed,
    /// At something JSON does not allow in a string (bad escape, control character).
    Invalid,
}

/// Whether `hex` (4 bytes) is a `\u` escape's digits in `range`.
fn hex_in(hex: &[u8], range: std::ops::RangeInclusive<u32>) -> Option<bool> {
    let text = std::str::from_utf8(hex).ok()?;
    let value = u32::from_str_radix(text, 16).ok()?;
    (text.len() == 4 && text.bytes().all(|b| b.is_ascii_hexdigit())).then(|| range.contains(&value))
}

/// The longest prefix of a JSON string body made of whole characters and whole valid escapes
/// (a high surrogate escape only with its low half), and why it stops there.
fn string_prefix(text: &str) -> (usize, StringEnd) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return (i, StringEnd::Closed),
            0..=0x1f => return (i, StringEnd::Invalid),
            b'\\' => {
                let Some(&kind) = bytes.get(i + 1) else {
                    return (i, StringEnd::Open);
                };
                if kind != b'u' {
                    if !b"\"\\/bfnrt".contains(&kind) {
                        return (i, StringEnd::Invalid);
                    }
                    i += 2;
                    continue;
                }
                let hex = &bytes[i + 2..bytes.len().min(i + 6)];
                if hex.len() < 4 {
                    let partial = hex.iter().all(u8::is_ascii_hexdigit);
                    return (
                        i,
                        if partial {
                            StringEnd::Open
                        } else {
                            StringEnd::Invalid
                        },
                    );
                }
                match (hex_in(hex, 0xD800..=0xDBFF), hex_in(hex, 0xDC00..=0xDFFF)) {
                    (None, _) => return (i, StringEnd::Invalid),
                    (_, Some(true)) => return (i, StringEnd::Invalid),
                    (Some(false), _) => i += 6,
                    (Some(true), _) => {
                        // A high surrogate must be followed by `\u` and a low one.
                        let low = &bytes[i + 6..bytes.len().min(i + 12)];
                        let want = b"\\u";
                        let head = &low[..low.len().min(2)];
                        if head != &want[..head.len()] {
                            return (i, StringEnd::Invalid);
                        }
                        if low.len() < 6 {
                            let partial = low
                                .get(2..)
                                .unwrap_or(&[])
                                .iter()
                                .all(u8::is_ascii_hexdigit);
                            return (
                                i,
                                if partial {
                                    StringEnd::Open
                                } else {
                                    StringEnd::Invalid
                                },
                            );
                        }
                        if hex_in(&low[2..], 0xDC00..=0xDFFF) != Some(true) {
                            return (i, StringEnd::Invalid);
                        }
                        i += 12;
                    }
                }
            }
            _ => i += 1,
        }
    }
    (i, StringEnd::Open)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing but whitespace yet.
    Start,
    /// Deciding whether the object is `{"response": "…`.
    Opening,
    /// Inside the response string.
    Response,
    /// After the response string: its closing `}` is dropped.
    AfterResponse,
    /// Buffering another JSON object.
    Json,
    /// After the reply's object: whitespace is dropped, other text is content.
    AfterObject,
    /// The response string broke JSON's rules: the rest of the reply is malformed.
    Broken,
    /// Plain text.
    Content,
}

/// The generic-format parser; see the module documentation.
#[derive(Debug, Clone)]
pub struct GenericParser {
    state: State,
    buf: String,
    scan: JsonScan,
    scanned: usize,
    calls: Calls,
}

impl Default for GenericParser {
    fn default() -> Self {
        GenericParser::new()
    }
}

impl GenericParser {
    pub fn new() -> GenericParser {
        GenericParser {
            state: State::Start,
            buf: String::new(),
            scan: JsonScan::default(),
            scanned: 0,
            calls: Calls::default(),
        }
    }

    fn process(&mut self, out: &mut Vec<ToolEvent>, finishing: bool) {
        loop {
            match self.state {
                State::Start => {
                    let trimmed = self.buf.trim_start();
                    if trimmed.is_empty() {
                        if finishing {
                            self.buf.clear();
                        }
                        return;
                    }
                    self.state = if trimmed.starts_with('{') {
                        let lead = self.buf.len() - trimmed.len();
                        self.buf.drain(..lead);
                        State::Opening
                    } else {
                        State::Content
                    };
                }
                State::Opening => match response_opening(&self.buf) {
                    Opening::Full(at) => {
                        self.buf.drain(..at);
                        self.state = State::Response;
                    }
                    Opening::Partial if !finishing => return,
                    _ => {
                        self.scan = JsonScan::default();
                        self.scanned = 0;
                        self.state = State::Json;
                    }
                },
                State::Response => {
                    let (len, end) = string_prefix(&self.buf);
                    // The prefix is valid JSON string text, so this cannot fail.
                    let decoded: String =
                        serde_json::from_str(&format!("\"{}\"", &self.buf[..len]))
                            .unwrap_or_default();
                    content(out, &decoded);
                    self.buf.drain(..len);
                    match end {
                        StringEnd::Closed => {
                            self.buf.drain(..1);
                            self.state = State::AfterResponse;
                        }
                        StringEnd::Invalid => self.state = State::Broken,
                        StringEnd::Open => {
                            if finishing {
                                malformed(out, None, std::mem::take(&mut self.buf));
                            }
                            return;
                        }
                    }
                }
                State::Broken => {
                    if finishing {
                        malformed(out, None, std::mem::take(&mut self.buf));
                    }
                    return;
                }
                State::AfterResponse => {
                    let trimmed = self.buf.trim_start();
                    if let Some(rest) = trimmed.strip_prefix('}') {
                        let cut = self.buf.len() - rest.len();
                        self.buf.drain(..cut);
                        self.state = State::AfterObject;
                        continue;
                    }
                    if trimmed.is_empty() && !finishing {
                        return;
                    }
                    self.state = State::Content;
                }
                State::Json => {
                    let Some(len) = self.scan.feed(&self.buf[self.scanned..]) else {
                        self.scanned = self.buf.len();
                        if finishing {
                            malformed(out, None, std::mem::take(&mut self.buf));
                        }
                        return;
                    };
                    let end = self.scanned + len;
                    self.emit_object(out, end);
                    self.buf.drain(..end);
                    self.state = State::AfterObject;
                }
                State::AfterObject => {
                    let lead = leading_whitespace(&self.buf);
                    self.buf.drain(..lead);
                    if self.buf.is_empty() {
                        return;
                    }
                    self.state = State::Content;
                }
                State::Content => {
                    content(out, &std::mem::take(&mut self.buf));
                    return;
                }
            }
        }
    }

    /// The JSON object `buf[..end]`: calls, an answer, other JSON (content) or malformed.
    fn emit_object(&mut self, out: &mut Vec<ToolEvent>, end: usize) {
        let raw = &self.buf[..end];
        let Ok(value) = serde_json::from_str::<Value>(raw) else {
            malformed(out, None, raw.to_string());
            return;
        };
        if let Some(Value::String(text)) = value.get("response") {
            content(out, text);
            return;
        }
        let Some(list) = value.get("tool_calls") else {
            content(out, raw);
            return;
        };
        let calls: Option<Vec<_>> = list
            .as_array()
            .filter(|l| !l.is_empty())
            .and_then(|l| l.iter().map(call_from_value).collect());
        match calls {
            Some(calls) => {
                for (name, arguments) in calls {
                    self.calls.whole(out, &name, arguments);
                }
            }
            None => malformed(out, None, raw.to_string()),
        }
    }
}

impl Buffered for GenericParser {
    fn buffer(&mut self) -> &mut String {
        &mut self.buf
    }

    fn process(&mut self, out: &mut Vec<ToolEvent>, finishing: bool) {
        GenericParser::process(self, out, finishing)
    }
}
