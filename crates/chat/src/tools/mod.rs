//! Tool-call parsers (issue #15): one small streaming parser per model family behind the
//! [`ToolCallParser`] trait, chosen from the chat template with [`ToolFormat::detect`]. No IO, no
//! server types: the server turns [`ToolEvent`]s into OpenAI/Anthropic deltas.
//!
//! The rules every parser follows:
//! - Text that could be the start of a marker (`<tool_` at the end of a chunk) is held back until
//!   it is complete or proven not to be one, so marker text never reaches [`ToolEvent::Content`]
//!   and the events do not depend on how the text was cut into chunks (only how `Content` and
//!   `CallArguments` text is grouped may differ).
//! - Text before a call is content; calls get indexes 0, 1, ... in the order they start.
//! - The concatenated `CallArguments` fragments of a call are its arguments as a JSON object
//!   string; they are checked with serde_json before [`ToolEvent::CallEnd`]. A call that cannot be
//!   parsed becomes [`ToolEvent::Malformed`] with the raw text the model wrote (markers included),
//!   so nothing is lost: the caller shows it as content. If its `CallStart` was already sent,
//!   `index` says which call to abandon; that index is not reused.
//! - Argument fragments are streamed as they arrive (as written) where the format allows it:
//!   DeepSeek and Mistral `[ARGS]` (bare JSON after a marker), Hermes and ERNIE when the call
//!   object has the documented `{"name": …, "arguments": {` order, GLM and DSML (DeepSeek
//!   V3.2/V4) one argument at a time. Calls wrapped in a bigger JSON
//!   value (Llama 3, Mistral Nemo, generic, and Hermes/ERNIE in another key order) are buffered
//!   and emitted when their JSON is complete, arguments re-serialized compactly. Each family's
//!   module says which.
//! - Chunks are `&str`, so splits happen at char boundaries; markers with multi-byte characters
//!   (DeepSeek's `｜`, `▁`) are held back char by char like ASCII ones.
//!
//! Reasoning (`<think>`) is not handled here: run [`crate::ReasoningSplitter`] first and feed its
//! answer text to the tool parser.

mod arguments;
mod deepseek;
pub mod dsml;
mod ernie;
mod generic;
mod glm;
mod hermes;
mod llama3;
mod mistral;

pub use arguments::template_serializes_arguments;
pub use deepseek::DeepSeekParser;
pub use dsml::DsmlParser;
pub use ernie::ernie_parser;
pub use generic::{
    generic_system_prompt, generic_tool_schema, GenericParser, ToolChoice, ToolSpec,
};
pub use glm::{declared_types, ArgTags, GlmParser, GLM_TAGS, HY3_TAGS};
pub use hermes::{hermes_parser, TaggedJsonParser};
pub use llama3::Llama3Parser;
pub use mistral::MistralParser;

use serde_json::Value;

/// What a [`ToolCallParser`] recognised in the text pushed so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolEvent {
    /// Plain answer text.
    Content(String),
    /// A call begins; its name is complete.
    CallStart { index: usize, name: String },
    /// A piece of the call's arguments (JSON text); the pieces of one call concatenate to a JSON
    /// object.
    CallArguments { index: usize, fragment: String },
    /// The call is complete and its arguments parse as a JSON object.
    CallEnd { index: usize },
    /// Text that looked like a call but could not be parsed: `raw` is exactly what the model
    /// wrote for it (markers included), to be shown as content. `index` is `Some` when the call's
    /// `CallStart` was already emitted and must be abandoned.
    Malformed { index: Option<usize>, raw: String },
}

/// A complete tool call, as [`parse_all`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub name: String,
    /// The arguments as JSON object text.
    pub arguments: String,
}

/// A streaming tool-call parser for one model family.
pub trait ToolCallParser: Send {
    /// Adds a chunk of generated (answer) text; returns the events it completes.
    fn push(&mut self, text: &str) -> Vec<ToolEvent>;
    /// Ends the stream: held text is released; a call left open becomes `Malformed`.
    fn finish(&mut self) -> Vec<ToolEvent>;
}

mod buffered {
    use super::ToolEvent;

    /// How every family's parser works: pushed text is appended to a buffer that one
    /// `process` step consumes (`finishing` at the end of the stream). Its
    /// [`super::ToolCallParser`] comes from that (sealed: not implementable outside).
    pub trait Buffered: Send {
        fn buffer(&mut self) -> &mut String;
        fn process(&mut self, out: &mut Vec<ToolEvent>, finishing: bool);
    }
}

use buffered::Buffered;

impl<T: Buffered> ToolCallParser for T {
    fn push(&mut self, text: &str) -> Vec<ToolEvent> {
        self.buffer().push_str(text);
        let mut out = Vec::new();
        self.process(&mut out, false);
        out
    }

    fn finish(&mut self) -> Vec<ToolEvent> {
        let mut out = Vec::new();
        self.process(&mut out, true);
        out
    }
}

/// Adds `key: value` to a call's `args` and, if the call was announced (`index`), streams
/// it as the next fragment of the call's JSON object: `{` before the first pair, `,` before
/// the others (the closing `}` comes with the call's end).
fn push_argument(
    args: &mut serde_json::Map<String, Value>,
    index: Option<usize>,
    key: String,
    value: Value,
    out: &mut Vec<ToolEvent>,
) {
    let lead = if args.is_empty() { "{" } else { "," };
    let fragment = format!("{lead}{}:{value}", Value::String(key.clone()));
    args.insert(key, value);
    if let Some(index) = index {
        out.push(ToolEvent::CallArguments { index, fragment });
    }
}

/// Bytes of whitespace at the start of `s`.
fn leading_whitespace(s: &str) -> usize {
    s.len() - s.trim_start().len()
}

/// Releases the text of `buf` as content, all of it when `finishing`, otherwise up to a
/// suffix that could be the start of one of `markers` (held for the next chunk).
fn release_content<S: AsRef<str>>(
    out: &mut Vec<ToolEvent>,
    buf: &mut String,
    markers: &[S],
    finishing: bool,
) {
    let keep = if finishing {
        buf.len()
    } else {
        held_suffix_start(buf, markers)
    };
    content(out, &buf[..keep]);
    buf.drain(..keep);
}

/// After a call the whitespace before the next text is dropped: while `*after_call`, drains
/// the leading whitespace of `buf`; false if nothing else has arrived yet (wait for more),
/// true once past it (and `*after_call` is cleared).
fn skip_whitespace_after_call(buf: &mut String, after_call: &mut bool) -> bool {
    if *after_call {
        let lead = leading_whitespace(buf);
        buf.drain(..lead);
        if buf.is_empty() {
            return false;
        }
        *after_call = false;
    }
    true
}

/// Parses a whole reply: `(content, calls)`. Built on the streaming parser (one push, then
/// finish); the raw text of malformed calls is part of the content.
pub fn parse_all(parser: &mut dyn ToolCallParser, text: &str) -> (String, Vec<ToolCall>) {
    let mut events = parser.push(text);
    events.extend(parser.finish());
    collect_events(events)
}

/// Folds events into `(content, complete calls)`: what a non-streaming response reports.
pub fn collect_events(events: impl IntoIterator<Item = ToolEvent>) -> (String, Vec<ToolCall>) {
    let mut content = String::new();
    let mut open: Vec<(usize, ToolCall)> = Vec::new();
    let mut done = Vec::new();
    for event in events {
        match event {
            ToolEvent::Content(text) => content.push_str(&text),
            ToolEvent::CallStart { index, name } => open.push((
                index,
                ToolCall {
                    name,
                    arguments: String::new(),
                },
            )),
            ToolEvent::CallArguments { index, fragment } => {
                if let Some((_, call)) = open.iter_mut().find(|(i, _)| *i == index) {
                    call.arguments.push_str(&fragment);
                }
            }
            ToolEvent::CallEnd { index } => {
                if let Some(at) = open.iter().position(|(i, _)| *i == index) {
                    done.push(open.remove(at).1);
                }
            }
            ToolEvent::Malformed { index, raw } => {
                if let Some(index) = index {
                    open.retain(|(i, _)| *i != index);
                }
                content.push_str(&raw);
            }
        }
    }
    (content, done)
}

/// The tool-call format of a model family, as its chat template shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolFormat {
    /// Hermes / Qwen2.5 / Qwen3: `<tool_call>{json}</tool_call>`.
    Hermes,
    /// Llama 3.1 / 3.2: a bare `{"name", "parameters"}` object, or after `<|python_tag|>`.
    Llama3,
    /// DeepSeek R1 / V3: `function<｜tool▁sep｜>NAME` and a fenced JSON block.
    DeepSeekR1,
    /// DeepSeek V3.1: `NAME<｜tool▁sep｜>{json}`.
    DeepSeekV31,
    /// DeepSeek V3.2: DSML markup, `<｜DSML｜function_calls>` around
    /// `<｜DSML｜invoke name="NAME">` and a `<｜DSML｜parameter name="K" string="true|false">`
    /// per argument (strings raw, the rest JSON).
    DeepSeekV32,
    /// DeepSeek V4 (and V4-Flash): V3.2's DSML with the block named `tool_calls`.
    DeepSeekV4,
    /// Mistral: `[TOOL_CALLS][...]` (Nemo) or `[TOOL_CALLS]name[ARGS]{...}`.
    Mistral,
    /// ERNIE 4.5: Hermes-style calls, answers possibly in `<response>…</response>`.
    Ernie,
    /// GLM-4.5 / 4.6 / 4.7: `<tool_call>NAME<arg_key>K</arg_key><arg_value>V</arg_value>…`.
    Glm,
    /// Hunyuan Hy3: GLM's layout with `:opensource` tags, `<tool_sep:opensource>` after the
    /// name, in `<tool_calls:opensource>…</tool_calls:opensource>`.
    Hunyuan,
    /// No tool tokens: the reply is a JSON object constrained by [`generic_tool_schema`].
    Generic,
}

impl ToolFormat {
    /// Picks the family from a chat template's source text, by the markers it writes. Checked in
    /// order: DeepSeek V3.2/V4 (`｜DSML｜`, which their templates join to the tag names: the
    /// block is looked for as `function_calls>` / `tool_calls>`), DeepSeek, Mistral, Hunyuan
    /// (`<tool_sep`: Hy3's template builds its tags with `'<tool_call{}>'.format(':opensource')`),
    /// GLM (`<arg_key>`) and ERNIE (before Hermes: they share `<tool_call>`), Hermes, Llama 3,
    /// then generic. ERNIE is recognised by `<response>` or ERNIE's `<|begin_of_sentence|>`
    /// beside `<tool_call>` (a heuristic: check it against the real templates).
    pub fn detect(template_source: &str) -> ToolFormat {
        let s = template_source;
        if s.contains("｜DSML｜") {
            if s.contains("function_calls>") {
                return ToolFormat::DeepSeekV32;
            }
            if s.contains("tool_calls>") {
                return ToolFormat::DeepSeekV4;
            }
        }
        if s.contains("tool▁calls▁begin") || s.contains("tool▁call▁begin") {
            // R1/V3 render `tool['type'] + '<｜tool▁sep｜>' + name` and a ```json fence.
            if s.contains("function<｜tool▁sep｜>")
                || s.contains("```json")
                || s.contains("tool['type'] + '<｜tool▁sep｜>'")
            {
                return ToolFormat::DeepSeekR1;
            }
            return ToolFormat::DeepSeekV31;
        }
        if s.contains("[TOOL_CALLS]") {
            return ToolFormat::Mistral;
        }
        if s.contains("<tool_sep") && s.contains("<arg_key") {
            return ToolFormat::Hunyuan;
        }
        if s.contains("<tool_call>") {
            if s.contains("<arg_key>") {
                return ToolFormat::Glm;
            }
            if s.contains("<response>") || s.contains("<|begin_of_sentence|>") {
                return ToolFormat::Ernie;
            }
            return ToolFormat::Hermes;
        }
        if s.contains("<|python_tag|>") || s.contains("Environment: ipython") {
            return ToolFormat::Llama3;
        }
        ToolFormat::Generic
    }

    /// Every format, in [`ToolFormat::detect`]'s order.
    pub const ALL: [ToolFormat; 11] = [
        ToolFormat::DeepSeekV32,
        ToolFormat::DeepSeekV4,
        ToolFormat::DeepSeekR1,
        ToolFormat::DeepSeekV31,
        ToolFormat::Mistral,
        ToolFormat::Hunyuan,
        ToolFormat::Glm,
        ToolFormat::Ernie,
        ToolFormat::Hermes,
        ToolFormat::Llama3,
        ToolFormat::Generic,
    ];

    /// A stable lower-case name (for configuration and logs); [`str::parse`] reads it back.
    pub fn name(self) -> &'static str {
        match self {
            ToolFormat::Hermes => "hermes",
            ToolFormat::Llama3 => "llama3",
            ToolFormat::DeepSeekR1 => "deepseek-r1",
            ToolFormat::DeepSeekV31 => "deepseek-v3.1",
            ToolFormat::DeepSeekV32 => "deepseek-v3.2",
            ToolFormat::DeepSeekV4 => "deepseek-v4",
            ToolFormat::Mistral => "mistral",
            ToolFormat::Ernie => "ernie",
            ToolFormat::Glm => "glm",
            ToolFormat::Hunyuan => "hunyuan",
            ToolFormat::Generic => "generic",
        }
    }

    /// A fresh streaming parser for this family, for calls of any tool.
    pub fn parser(self) -> Box<dyn ToolCallParser> {
        self.parser_for(&[])
    }

    /// A fresh streaming parser for calls of `tools`: GLM's values carry no JSON type and are
    /// read against the declared schemas ([`GlmParser`], Hy3's too); the other families ignore
    /// `tools`.
    pub fn parser_for(self, tools: &[ToolSpec]) -> Box<dyn ToolCallParser> {
        match self {
            ToolFormat::Glm => Box::new(GlmParser::new(tools)),
            ToolFormat::Hunyuan => Box::new(GlmParser::hunyuan(tools)),
            ToolFormat::Hermes => Box::new(hermes_parser()),
            ToolFormat::Ernie => Box::new(ernie_parser()),
            ToolFormat::Llama3 => Box::new(Llama3Parser::new()),
            ToolFormat::DeepSeekR1 | ToolFormat::DeepSeekV31 => Box::new(DeepSeekParser::new()),
            ToolFormat::DeepSeekV32 | ToolFormat::DeepSeekV4 => Box::new(DsmlParser::new()),
            ToolFormat::Mistral => Box::new(MistralParser::new()),
            ToolFormat::Generic => Box::new(GenericParser::new()),
        }
    }

    /// [`parse_all`] with a fresh parser of this family.
    pub fn parse_all(self, text: &str) -> (String, Vec<ToolCall>) {
        parse_all(self.parser().as_mut(), text)
    }

    /// The texts that start a call, for a lazy grammar (`tool_choice: auto`): constrain from the
    /// first of them on. Empty for [`ToolFormat::Generic`]: its whole reply is constrained. For
    /// Llama 3 a call may also be a bare JSON object at the start of the reply (`{"name"`).
    pub fn triggers(self) -> &'static [&'static str] {
        match self {
            ToolFormat::Hermes | ToolFormat::Ernie | ToolFormat::Glm => &["<tool_call>"],
            ToolFormat::Hunyuan => &["<tool_calls:opensource>"],
            ToolFormat::Llama3 => &["<|python_tag|>", "{\"name\""],
            ToolFormat::DeepSeekR1 => &["<｜tool▁calls▁begin｜>"],
            ToolFormat::DeepSeekV31 => &["<｜tool▁calls▁begin｜>", "<｜tool▁call▁begin｜>"],
            ToolFormat::DeepSeekV32 => &[dsml::DSML_V32_BLOCK.0],
            ToolFormat::DeepSeekV4 => &[dsml::DSML_V4_BLOCK.0],
            ToolFormat::Mistral => &["[TOOL_CALLS]"],
            ToolFormat::Generic => &[],
        }
    }

    /// Whether the family's templates render the `tools` list into the prompt themselves. When
    /// false the server must describe the tools (for generic: [`generic_system_prompt`]). The
    /// original DeepSeek-R1 template renders tool calls and results but not the tool list.
    pub fn template_renders_tools(self) -> bool {
        !matches!(self, ToolFormat::Generic | ToolFormat::DeepSeekR1)
    }
}

impl std::str::FromStr for ToolFormat {
    type Err = String;

    /// A format by its [`ToolFormat::name`].
    fn from_str(name: &str) -> Result<ToolFormat, String> {
        ToolFormat::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                let names: Vec<_> = ToolFormat::ALL.iter().map(|f| f.name()).collect();
                format!("unknown tool format {name:?} (known: {})", names.join(", "))
            })
    }
}

/// Where the longest suffix of `text` that is a proper prefix of one of `markers` starts
/// (`text.len()` if none): the part that could still become a marker.
pub(crate) fn held_suffix_start<S: AsRef<str>>(text: &str, markers: &[S]) -> usize {
    let mut start = text.len();
    for marker in markers {
        let marker = marker.as_ref();
        if let Some(k) = (1..marker.len())
            .rev()
            .filter(|&k| marker.is_char_boundary(k))
            .find(|&k| text.ends_with(&marker[..k]))
        {
            start = start.min(text.len() - k);
        }
    }
    start
}

/// The earliest occurrence of any of `markers`: `(position, which)`; the longest wins a tie.
pub(crate) fn find_first<S: AsRef<str>>(text: &str, markers: &[S]) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    for (which, marker) in markers.iter().enumerate() {
        if let Some(at) = text.find(marker.as_ref()) {
            let better = match best {
                None => true,
                Some((b, w)) => {
                    at < b || (at == b && marker.as_ref().len() > markers[w].as_ref().len())
                }
            };
            if better {
                best = Some((at, which));
            }
        }
    }
    best
}

/// Which of `markers` `text` starts with, if any (the longest).
pub(crate) fn starts_with_any<S: AsRef<str>>(text: &str, markers: &[S]) -> Option<usize> {
    find_first(text, markers)
        .filter(|&(at, _)| at == 0)
        .map(|(_, w)| w)
}

/// Whether `text` (non-empty) is a proper prefix of one of `markers`.
pub(crate) fn is_partial_of_any<S: AsRef<str>>(text: &str, markers: &[S]) -> bool {
    markers.iter().any(|m| {
        let m = m.as_ref();
        m.len() > text.len() && m.starts_with(text)
    })
}

/// Tracks where a JSON object or array that starts at the first `{`/`[` fed ends, across chunks.
#[derive(Debug, Clone, Default)]
pub(crate) struct JsonScan {
    depth: usize,
    in_string: bool,
    escaped: bool,
    started: bool,
}

impl JsonScan {
    /// Feeds `text`; returns the byte length of `text` up to and including the character that
    /// closes the value, if it closes here.
    pub(crate) fn feed(&mut self, text: &str) -> Option<usize> {
        for (i, c) in text.char_indices() {
            if self.in_string {
                match c {
                    _ if self.escaped => self.escaped = false,
                    '\\' => self.escaped = true,
                    '"' => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match c {
                '"' if self.started => self.in_string = true,
                '{' | '[' => {
                    self.started = true;
                    self.depth += 1;
                }
                '}' | ']' if self.started => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
        }
        None
    }
}

/// Whether `text` is a JSON object.
pub(crate) fn is_json_object(text: &str) -> bool {
    matches!(serde_json::from_str::<Value>(text), Ok(Value::Object(_)))
}

/// A call's `(name, arguments as compact JSON object text)` from a call object: `{"name",
/// "arguments" | "parameters"}` (an object, or a string holding one; missing means `{}`), or the
/// OpenAI shape `{"type": "function", "function": {...}}`.
pub(crate) fn call_from_value(value: &Value) -> Option<(String, String)> {
    let object = value.as_object()?;
    if let Some(inner @ Value::Object(_)) = object.get("function") {
        if !object.contains_key("name") {
            return call_from_value(inner);
        }
    }
    let name = object.get("name")?.as_str()?.trim();
    if name.is_empty() {
        return None;
    }
    let arguments = match object.get("arguments").or_else(|| object.get("parameters")) {
        None | Some(Value::Null) => "{}".to_string(),
        Some(v @ Value::Object(_)) => v.to_string(),
        Some(Value::String(s)) if is_json_object(s) => {
            serde_json::from_str::<Value>(s).ok()?.to_string()
        }
        Some(_) => return None,
    };
    Some((name.to_string(), arguments))
}

/// Hands out call indexes and writes events.
#[derive(Debug, Clone, Default)]
pub(crate) struct Calls {
    next: usize,
}

impl Calls {
    pub(crate) fn start(&mut self, out: &mut Vec<ToolEvent>, name: &str) -> usize {
        let index = self.next;
        self.next += 1;
        out.push(ToolEvent::CallStart {
            index,
            name: name.to_string(),
        });
        index
    }

    /// A complete call in three events.
    pub(crate) fn whole(&mut self, out: &mut Vec<ToolEvent>, name: &str, arguments: String) {
        let index = self.start(out, name);
        out.push(ToolEvent::CallArguments {
            index,
            fragment: arguments,
        });
        out.push(ToolEvent::CallEnd { index });
    }
}

/// Pushes `text` as content unless it is empty.
pub(crate) fn content(out: &mut Vec<ToolEvent>, text: &str) {
    if !text.is_empty() {
        out.push(ToolEvent::Content(text.to_string()));
    }
}

/// Pushes a `Malformed` event unless `raw` is empty.
pub(crate) fn malformed(out: &mut Vec<ToolEvent>, index: Option<usize>, raw: String) {
    if !raw.is_empty() || index.is_some() {
        out.push(ToolEvent::Malformed { index, raw });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_suffix_finds_the_longest_partial_marker() {
        assert_eq!(held_suffix_start("ab<tool_", &["<tool_call>"]), 2);
        assert_eq!(held_suffix_start("ab<", &["<tool_call>", "[X]"]), 2);
        assert_eq!(held_suffix_start("ab", &["<tool_call>"]), 2);
        assert_eq!(held_suffix_start("a<｜to", &["<｜tool▁sep｜>"]), 1);
    }

    #[test]
    fn json_scan_ignores_brackets_in_strings() {
        let mut scan = JsonScan::default();
        assert_eq!(scan.feed(r#"x {"a": "}\"{", "#), None);
        assert_eq!(scan.feed(r#""b": [1]} tail"#), Some(9));
    }

    #[test]
    fn call_objects_in_every_accepted_shape() {
        let v: Value = serde_json::from_str(r#"{"name": "f", "parameters": {"x": 1}}"#).unwrap();
        assert_eq!(call_from_value(&v), Some(("f".into(), r#"{"x":1}"#.into())));
        let v: Value = serde_json::from_str(r#"{"name": "f", "arguments": "{\"x\": 1}"}"#).unwrap();
        assert_eq!(call_from_value(&v), Some(("f".into(), r#"{"x":1}"#.into())));
        let v: Value =
            serde_json::from_str(r#"{"type": "function", "function": {"name": "g"}}"#).unwrap();
        assert_eq!(call_from_value(&v), Some(("g".into(), "{}".into())));
        let v: Value = serde_json::from_str(r#"{"name": "f", "arguments": [1]}"#).unwrap();
        assert_eq!(call_from_value(&v), None);
    }

    #[test]
    fn names_round_trip() {
        for format in ToolFormat::ALL {
            assert_eq!(format.name().parse::<ToolFormat>(), Ok(format));
        }
        assert!("qwen".parse::<ToolFormat>().unwrap_err().contains("hermes"));
    }

    #[test]
    fn detect_by_template_markers() {
        use ToolFormat::*;
        let cases = [
            ("{{- '<tool_call>\\n' }}{{ tool_call | tojson }}", Hermes),
            ("<|python_tag|>{{ x }}", Llama3),
            ("{{ 'Environment: ipython\\n' }}", Llama3),
            ("'<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + name + '\\n```json'", DeepSeekR1),
            ("'<｜tool▁call▁begin｜>'+ tool['function']['name'] + '<｜tool▁sep｜>'", DeepSeekV31),
            ("[AVAILABLE_TOOLS]{{ tools }}[/AVAILABLE_TOOLS][TOOL_CALLS]", Mistral),
            ("<|begin_of_sentence|>{{ '<tool_call>' }}<response>", Ernie),
            ("<tool_call>{{ tc.name }}<arg_key>{{ k }}</arg_key>", Glm),
            ("'<tool_call{}>'.format(T) '<tool_sep{}>'.format(T) '<arg_key{}>'", Hunyuan),
            ("{%- set dsml_token = '｜DSML｜' -%}{{ '<' + dsml_token + 'function_calls>' }}", DeepSeekV32),
            ("{%- set dsml_token = '｜DSML｜' -%}{{ '<' + dsml_token + 'tool_calls>' }}", DeepSeekV4),
            ("{{ '<start_of_turn>' }}", Generic),
        ];
        for (source, want) in cases {
            assert_eq!(ToolFormat::detect(source), want, "{source}");
        }
    }
}
