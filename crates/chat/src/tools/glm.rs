//! GLM-4.5 / 4.6 / 4.7 tool calls (and Hunyuan Hy3's, the same layout with other tags): the
//! name after the open tag, then one key/value pair of tags per argument,
//!
//! ```text
//! <tool_call>get_weather
//! <arg_key>city</arg_key>
//! <arg_value>Paris</arg_value>
//! <arg_key>days</arg_key>
//! <arg_value>3</arg_value>
//! </tool_call>
//! ```
//!
//! (GLM-4.6 puts each tag on its own line; GLM-4.7 writes them with nothing between). Source:
//! the GLM-4.6 and GLM-4.7-Flash chat templates, whose instructions give this shape and whose
//! history rendering writes a string value raw and any other value as JSON
//! (`v | tojson if v is not string else v`). So a value's JSON type is not in the text: it is
//! read against the declared schema of the argument ([`GlmParser::new`] takes the offered
//! tools): a `string`-typed argument is the raw text; any other is parsed as JSON and must be of
//! a declared type (a type list with `string` falls back to the raw text); an argument with no
//! declared type is JSON when it parses as JSON, else the raw text. A value of the wrong type, a
//! repeated or empty key, or anything but whitespace between the tags makes the call
//! [`ToolEvent::Malformed`].
//!
//! Streamed per argument: `CallStart` when the name ends (at a newline or a tag), then one
//! `CallArguments` fragment per complete pair (`{"city":"Paris"`, `,"days":3`) and the closing
//! `}` at `</tool_call>`. Whitespace between and after calls is dropped.
//!
//! Hunyuan Hy3 writes the same layout with its own tags, a separator after the name and a
//! wrapper around the calls (its chat template, `tencent-Hy3`):
//!
//! ```text
//! <tool_calls:opensource>
//! <tool_call:opensource>get_weather<tool_sep:opensource>
//! <arg_key:opensource>city</arg_key:opensource>
//! <arg_value:opensource>Paris</arg_value:opensource>
//! </tool_call:opensource>
//! </tool_calls:opensource>
//! ```
//!
//! The wrapper tags are dropped from content ([`GlmParser::hunyuan`]).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{
    content, find_first, is_partial_of_any, leading_whitespace, malformed, push_argument,
    release_content, skip_whitespace_after_call, Buffered, Calls, ToolEvent, ToolSpec,
};

/// The tags of a family that writes calls as argument key/value tag pairs.
#[derive(Debug)]
pub struct ArgTags {
    pub open: &'static str,
    pub close: &'static str,
    /// After the name, before the pairs (Hy3's `<tool_sep:opensource>`).
    pub sep: Option<&'static str>,
    pub key_open: &'static str,
    pub key_close: &'static str,
    pub value_open: &'static str,
    pub value_close: &'static str,
    /// Around all the calls of a reply (Hy3's `<tool_calls:opensource>`…).
    pub wrapper: Option<(&'static str, &'static str)>,
}

/// GLM-4.5 / 4.6 / 4.7.
pub const GLM_TAGS: ArgTags = ArgTags {
    open: "<tool_call>",
    close: "</tool_call>",
    sep: None,
    key_open: "<arg_key>",
    key_close: "</arg_key>",
    value_open: "<arg_value>",
    value_close: "</arg_value>",
    wrapper: None,
};

/// Hunyuan Hy3.
pub const HY3_TAGS: ArgTags = ArgTags {
    open: "<tool_call:opensource>",
    close: "</tool_call:opensource>",
    sep: Some("<tool_sep:opensource>"),
    key_open: "<arg_key:opensource>",
    key_close: "</arg_key:opensource>",
    value_open: "<arg_value:opensource>",
    value_close: "</arg_value:opensource>",
    wrapper: Some(("<tool_calls:opensource>", "</tool_calls:opensource>")),
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Content,
    /// After `<tool_call>`: the name, up to a newline or a tag.
    Name,
    /// After the name, where the family writes a separator.
    Sep,
    /// Between pairs: `<arg_key>` or `</tool_call>` next.
    Pairs,
    Key,
    /// After `</arg_key>`: `<arg_value>` next.
    BeforeValue,
    Value,
    /// A malformed call: its text up to `</tool_call>` (or the end) goes back as content.
    Skip,
}

/// The GLM parser; see the module documentation.
#[derive(Debug, Clone)]
pub struct GlmParser {
    tags: &'static ArgTags,
    /// Where content stops: the open tag, then the wrapper's tags (dropped).
    markers: Vec<&'static str>,
    /// Each offered tool's `properties` schemas, by tool name.
    schemas: HashMap<String, Map<String, Value>>,
    state: State,
    buf: String,
    /// The raw text of the call being read, for `Malformed`.
    raw: String,
    name: String,
    key: String,
    /// The arguments read so far.
    args: Map<String, Value>,
    index: Option<usize>,
    after_call: bool,
    calls: Calls,
}

impl Default for GlmParser {
    fn default() -> Self {
        GlmParser::new(&[])
    }
}

impl GlmParser {
    /// A parser for calls of `tools` (their `parameters.properties` give the values' types; an
    /// unknown tool or argument is read without a declared type).
    pub fn new(tools: &[ToolSpec]) -> GlmParser {
        GlmParser::with_tags(&GLM_TAGS, tools)
    }

    /// Hunyuan Hy3's calls (see the module documentation), typed like [`GlmParser::new`]'s.
    pub fn hunyuan(tools: &[ToolSpec]) -> GlmParser {
        GlmParser::with_tags(&HY3_TAGS, tools)
    }

    fn with_tags(tags: &'static ArgTags, tools: &[ToolSpec]) -> GlmParser {
        let mut markers = vec![tags.open];
        if let Some((begin, end)) = tags.wrapper {
            markers.extend([begin, end]);
        }
        let schemas = tools
            .iter()
            .map(|t| {
                let properties = t
                    .parameters
                    .get("properties")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                (t.name.clone(), properties)
            })
            .collect();
        GlmParser {
            tags,
            markers,
            schemas,
            state: State::Content,
            buf: String::new(),
            raw: String::new(),
            name: String::new(),
            key: String::new(),
            args: Map::new(),
            index: None,
            after_call: false,
            calls: Calls::default(),
        }
    }

    /// Moves the first `len` bytes of `buf` into `raw`.
    fn consume(&mut self, len: usize) {
        self.raw.push_str(&self.buf[..len]);
        self.buf.drain(..len);
    }

    fn reset(&mut self) {
        self.raw.clear();
        self.name.clear();
        self.key.clear();
        self.args.clear();
        self.index = None;
        self.state = State::Content;
        self.after_call = true;
    }

    /// The value of argument `key` of the current call, read from its raw text.
    fn value(&self, key: &str, text: &str) -> Option<Value> {
        let schema = self.schemas.get(&self.name).and_then(|p| p.get(key));
        typed_value(schema, text)
    }

    fn process(&mut self, out: &mut Vec<ToolEvent>, finishing: bool) {
        loop {
            match self.state {
                State::Content => {
                    if !skip_whitespace_after_call(&mut self.buf, &mut self.after_call) {
                        return;
                    }
                    match find_first(&self.buf, &self.markers) {
                        Some((at, which)) => {
                            content(out, &self.buf[..at]);
                            self.buf.drain(..at);
                            if which > 0 {
                                // A wrapper tag: dropped, with the whitespace after it.
                                self.buf.drain(..self.markers[which].len());
                                self.after_call = true;
                                continue;
                            }
                            self.raw.clear();
                            self.consume(self.tags.open.len());
                            self.state = State::Name;
                        }
                        None => {
                            release_content(out, &mut self.buf, &self.markers, finishing);
                            return;
                        }
                    }
                }
                State::Name => {
                    let Some(at) = self.buf.find(['\n', '<']) else {
                        if finishing {
                            self.consume(self.buf.len());
                            self.state = State::Skip;
                            continue;
                        }
                        return;
                    };
                    let name = self.buf[..at].trim().to_string();
                    self.consume(at);
                    if name.is_empty() {
                        self.state = State::Skip;
                        continue;
                    }
                    self.index = Some(self.calls.start(out, &name));
                    self.name = name;
                    self.state = if self.tags.sep.is_some() {
                        State::Sep
                    } else {
                        State::Pairs
                    };
                }
                State::Sep | State::Pairs | State::BeforeValue => {
                    let lead = leading_whitespace(&self.buf);
                    self.consume(lead);
                    let t = self.tags;
                    let sep = [t.sep.unwrap_or(t.open)];
                    let pairs = [t.key_open, t.close];
                    let value = [t.value_open];
                    let expected: &[&str] = match self.state {
                        State::Sep => &sep,
                        State::Pairs => &pairs,
                        _ => &value,
                    };
                    if let Some(&tag) = expected.iter().find(|t| self.buf.starts_with(**t)) {
                        self.consume(tag.len());
                        self.state = match self.state {
                            State::Sep => State::Pairs,
                            State::BeforeValue => State::Value,
                            _ if tag == t.key_open => State::Key,
                            _ => {
                                let index = self.index.expect("a call is open");
                                let fragment = if self.args.is_empty() { "{}" } else { "}" };
                                out.push(ToolEvent::CallArguments {
                                    index,
                                    fragment: fragment.to_string(),
                                });
                                out.push(ToolEvent::CallEnd { index });
                                self.reset();
                                State::Content
                            }
                        };
                        continue;
                    }
                    if !finishing && (self.buf.is_empty() || is_partial_of_any(&self.buf, expected))
                    {
                        return;
                    }
                    self.state = State::Skip;
                }
                State::Key | State::Value => {
                    let close = if self.state == State::Key {
                        self.tags.key_close
                    } else {
                        self.tags.value_close
                    };
                    let Some(at) = self.buf.find(close) else {
                        if finishing {
                            self.state = State::Skip;
                            continue;
                        }
                        return;
                    };
                    let text = self.buf[..at].to_string();
                    self.consume(at + close.len());
                    if self.state == State::Key {
                        let key = text.trim();
                        if key.is_empty() || self.args.contains_key(key) {
                            self.state = State::Skip;
                            continue;
                        }
                        self.key = key.to_string();
                        self.state = State::BeforeValue;
                        continue;
                    }
                    let key = std::mem::take(&mut self.key);
                    let Some(value) = self.value(&key, &text) else {
                        self.state = State::Skip;
                        continue;
                    };
                    push_argument(&mut self.args, self.index, key, value, out);
                    self.state = State::Pairs;
                }
                State::Skip => {
                    let close = self.tags.close;
                    let stop = match self.buf.find(close) {
                        Some(at) => at + close.len(),
                        None if finishing => self.buf.len(),
                        None => return,
                    };
                    self.consume(stop);
                    malformed(out, self.index, std::mem::take(&mut self.raw));
                    self.reset();
                }
            }
        }
    }
}

impl Buffered for GlmParser {
    fn buffer(&mut self) -> &mut String {
        &mut self.buf
    }

    fn process(&mut self, out: &mut Vec<ToolEvent>, finishing: bool) {
        GlmParser::process(self, out, finishing)
    }
}

/// The JSON types a property schema declares: its `type` (a name or a list), else the types of
/// its `enum` / `const` values. Empty when it declares none. (GLM's grammar uses it too, so a
/// value the grammar lets through as raw text is read back as a string.)
pub fn declared_types(schema: &Value) -> Vec<&'static str> {
    let mut types = Vec::new();
    match schema.get("type") {
        Some(Value::String(t)) => types.extend(type_name(t)),
        Some(Value::Array(list)) => {
            types.extend(list.iter().filter_map(|t| type_name(t.as_str()?)))
        }
        _ => {
            let values = match (schema.get("enum"), schema.get("const")) {
                (Some(Value::Array(values)), _) => values.clone(),
                (_, Some(value)) => vec![value.clone()],
                _ => Vec::new(),
            };
            for v in &values {
                let t = json_type(v);
                if !types.contains(&t) {
                    types.push(t);
                }
            }
        }
    }
    types
}

fn type_name(t: &str) -> Option<&'static str> {
    [
        "string", "number", "integer", "boolean", "object", "array", "null",
    ]
    .into_iter()
    .find(|&known| known == t)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn has_type(v: &Value, types: &[&str]) -> bool {
    let t = json_type(v);
    types.contains(&t)
        || (t == "integer" && types.contains(&"number"))
        || (t == "number"
            && types.contains(&"integer")
            && v.as_f64().is_some_and(|f| f.fract() == 0.0))
}

/// An argument's value from the text between its value tags, read against its property schema
/// (see the module documentation); `None` when it is not of a declared type.
fn typed_value(schema: Option<&Value>, text: &str) -> Option<Value> {
    let types = schema.map(declared_types).unwrap_or_default();
    if types == ["string"] {
        return Some(Value::String(text.to_string()));
    }
    // Strings are written raw, so text that parses as a JSON string is not one: it is raw text.
    let parsed = serde_json::from_str::<Value>(text)
        .ok()
        .filter(|v| !v.is_string());
    match parsed {
        Some(v) if types.is_empty() || has_type(&v, &types) => Some(v),
        _ if types.is_empty() || types.contains(&"string") => Some(Value::String(text.to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_read_against_the_declared_types() {
        let s = |v: Value| Some(v);
        assert_eq!(
            typed_value(Some(&json!({"type": "string"})), "3"),
            s(json!("3"))
        );
        assert_eq!(
            typed_value(Some(&json!({"type": "integer"})), "3"),
            s(json!(3))
        );
        assert_eq!(typed_value(Some(&json!({"type": "integer"})), "3.5"), None);
        assert_eq!(
            typed_value(Some(&json!({"type": "number"})), "3"),
            s(json!(3))
        );
        assert_eq!(typed_value(Some(&json!({"type": "boolean"})), "yes"), None);
        let nullable = json!({"type": ["string", "null"]});
        assert_eq!(typed_value(Some(&nullable), "null"), s(Value::Null));
        assert_eq!(typed_value(Some(&nullable), "Paris"), s(json!("Paris")));
        let unit = json!({"enum": ["celsius", "fahrenheit"]});
        assert_eq!(typed_value(Some(&unit), "celsius"), s(json!("celsius")));
        assert_eq!(typed_value(None, "[1, 2]"), s(json!([1, 2])));
        assert_eq!(typed_value(None, "Paris"), s(json!("Paris")));
        assert_eq!(typed_value(None, "\"x\""), s(json!("\"x\"")));
    }
}
