//! DeepSeek V3.2 and V4 tool calls ("DSML" markup). Source: the DeepSeek-V3.2, DeepSeek-V4 and
//! DeepSeek-V4-Flash chat templates (the instructions they put in the system prompt, and how
//! they render a call in history):
//!
//! ```text
//! <｜DSML｜tool_calls>
//! <｜DSML｜invoke name="get_weather">
//! <｜DSML｜parameter name="city" string="true">Zürich</｜DSML｜parameter>
//! <｜DSML｜parameter name="days" string="false">3</｜DSML｜parameter>
//! </｜DSML｜invoke>
//! <｜DSML｜invoke name="get_time">
//! ...
//! </｜DSML｜invoke>
//! </｜DSML｜tool_calls>
//! ```
//!
//! V3.2 names the block `function_calls`, V4 `tool_calls` (the only difference in what the
//! model writes; V4 also renders a call without arguments with an empty line): the parser reads
//! either, the grammar and the lazy trigger use the family's own. `｜` is U+FF5C.
//! The templates write the block after the reply's text and `\n\n`; a value with
//! `string="true"` is the raw text, `string="false"` is JSON (numbers, booleans, arrays,
//! objects, null). Whitespace between tags is not part of anything.
//!
//! Read: text before a call is content, without the whitespace right before a block or call
//! (the template's separator: it is held back until other text follows). Each `invoke` is a
//! call; the block tags are dropped, and an `invoke` outside a block is read too. A block that
//! holds no call before other text or the end comes back as [`ToolEvent::Malformed`] (`index`
//! `None`). A call becomes `Malformed` with its raw text (up to `</｜DSML｜invoke>` or the end)
//! for an empty or unterminated name, a parameter without its `string` attribute, a repeated
//! parameter, a `string="false"` value that is not JSON, or other text between the tags.
//!
//! Streamed per parameter: `CallStart` when the name's closing `">` arrives, one
//! `CallArguments` fragment per complete parameter (`{"city":"Zürich"`, `,"days":3`) and the
//! closing `}` at `</｜DSML｜invoke>`.

use serde_json::{Map, Value};

use super::{
    content, find_first, held_suffix_start, is_partial_of_any, leading_whitespace, malformed,
    push_argument, skip_whitespace_after_call, Buffered, Calls, ToolEvent,
};

/// The block that holds a reply's calls: DeepSeek V3.2's.
pub const DSML_V32_BLOCK: (&str, &str) = ("<｜DSML｜function_calls>", "</｜DSML｜function_calls>");
/// DeepSeek V4's (V4-Flash too).
pub const DSML_V4_BLOCK: (&str, &str) = ("<｜DSML｜tool_calls>", "</｜DSML｜tool_calls>");
/// A call's open tag up to its name.
pub const DSML_INVOKE: &str = "<｜DSML｜invoke name=\"";
pub const DSML_INVOKE_END: &str = "</｜DSML｜invoke>";
/// A parameter's open tag up to its name.
pub const DSML_PARAMETER: &str = "<｜DSML｜parameter name=\"";
pub const DSML_PARAMETER_END: &str = "</｜DSML｜parameter>";
/// After a parameter's name: a raw string value follows, or a JSON one.
pub const DSML_STRING: &str = "\" string=\"true\">";
pub const DSML_JSON: &str = "\" string=\"false\">";

/// What closes a call's name.
const NAME_END: &str = "\">";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Content,
    /// Inside a block, between calls.
    Block,
    /// After `<｜DSML｜invoke name="`: the name, up to `">`.
    Name,
    /// Between parameters: `<｜DSML｜parameter name="` or `</｜DSML｜invoke>` next.
    Params,
    /// After `<｜DSML｜parameter name="`: the key, up to its `"`.
    Key,
    /// After the key: ` string="true">` or ` string="false">` (from the key's `"`).
    Kind,
    /// The value, up to `</｜DSML｜parameter>`; `true`: JSON.
    Value(bool),
    /// A malformed call: its text up to `</｜DSML｜invoke>` (or the end) goes back as content.
    Skip,
}

/// Where content stops: an `invoke`, then the blocks' open tags, then their close tags.
const MARKERS: [&str; 5] = [
    DSML_INVOKE,
    DSML_V32_BLOCK.0,
    DSML_V4_BLOCK.0,
    DSML_V32_BLOCK.1,
    DSML_V4_BLOCK.1,
];

/// The DSML parser; see the module documentation.
#[derive(Debug, Clone, Default)]
pub struct DsmlParser {
    state: State,
    buf: String,
    /// The raw text of the call (or of a block opened for nothing yet) being read.
    raw: String,
    name: String,
    key: String,
    args: Map<String, Value>,
    index: Option<usize>,
    /// Inside a block: whether a call started in it.
    block_called: bool,
    in_block: bool,
    after_call: bool,
    calls: Calls,
}

impl DsmlParser {
    pub fn new() -> DsmlParser {
        DsmlParser::default()
    }

    /// Moves the first `len` bytes of `buf` into `raw`.
    fn consume(&mut self, len: usize) {
        self.raw.push_str(&self.buf[..len]);
        self.buf.drain(..len);
    }

    /// After a call (complete or not): back to the block or to content.
    fn end_call(&mut self) {
        self.raw.clear();
        self.name.clear();
        self.key.clear();
        self.args.clear();
        self.index = None;
        self.state = if self.in_block {
            State::Block
        } else {
            State::Content
        };
        self.after_call = true;
    }

    /// Leaves the block: one that held no call is given back as `Malformed`.
    fn leave_block(&mut self, out: &mut Vec<ToolEvent>) {
        if !self.block_called {
            malformed(out, None, std::mem::take(&mut self.raw));
        }
        self.raw.clear();
        self.in_block = false;
        self.state = State::Content;
        self.after_call = true;
    }

    /// Starts reading an `invoke` at the start of `buf`.
    fn open_call(&mut self) {
        self.raw.clear();
        self.consume(DSML_INVOKE.len());
        self.block_called = true;
        self.state = State::Name;
    }

    fn process(&mut self, out: &mut Vec<ToolEvent>, finishing: bool) {
        loop {
            match self.state {
                State::Content => {
                    if !skip_whitespace_after_call(&mut self.buf, &mut self.after_call) {
                        return;
                    }
                    let Some((at, which)) = find_first(&self.buf, &MARKERS) else {
                        // Held: a possible marker, and the whitespace before it (a separator
                        // if a block follows).
                        let keep = if finishing {
                            self.buf.len()
                        } else {
                            let held = held_suffix_start(&self.buf, &MARKERS);
                            self.buf[..held].trim_end().len()
                        };
                        content(out, &self.buf[..keep]);
                        self.buf.drain(..keep);
                        return;
                    };
                    content(out, self.buf[..at].trim_end());
                    self.buf.drain(..at);
                    match which {
                        0 => self.open_call(),
                        1 | 2 => {
                            self.raw.clear();
                            self.consume(MARKERS[which].len());
                            self.in_block = true;
                            self.block_called = false;
                            self.state = State::Block;
                        }
                        _ => {
                            // A stray block end: dropped.
                            self.buf.drain(..MARKERS[which].len());
                            self.after_call = true;
                        }
                    }
                }
                State::Block => {
                    let lead = leading_whitespace(&self.buf);
                    self.consume(lead);
                    if self.buf.starts_with(DSML_INVOKE) {
                        self.open_call();
                        continue;
                    }
                    let ends = [DSML_V32_BLOCK.1, DSML_V4_BLOCK.1];
                    if let Some(end) = ends.iter().find(|e| self.buf.starts_with(**e)) {
                        self.buf.drain(..end.len());
                        if !self.block_called {
                            // An empty block: nothing to give back but its whitespace.
                            self.raw.clear();
                        }
                        self.block_called = true;
                        self.leave_block(out);
                        continue;
                    }
                    let expected = [DSML_INVOKE, ends[0], ends[1]];
                    if !finishing
                        && (self.buf.is_empty() || is_partial_of_any(&self.buf, &expected))
                    {
                        return;
                    }
                    self.leave_block(out);
                    if finishing && self.buf.is_empty() {
                        return;
                    }
                }
                State::Name => {
                    let Some(at) = self.buf.find(['"', '<', '\n']) else {
                        if finishing {
                            self.state = State::Skip;
                            continue;
                        }
                        return;
                    };
                    let rest = &self.buf[at..];
                    if !rest.starts_with(NAME_END) {
                        if rest == "\"" && !finishing {
                            return;
                        }
                        self.state = State::Skip;
                        continue;
                    }
                    let name = self.buf[..at].to_string();
                    if name.is_empty() {
                        self.state = State::Skip;
                        continue;
                    }
                    self.consume(at + NAME_END.len());
                    self.index = Some(self.calls.start(out, &name));
                    self.name = name;
                    self.state = State::Params;
                }
                State::Params => {
                    let lead = leading_whitespace(&self.buf);
                    self.consume(lead);
                    if self.buf.starts_with(DSML_PARAMETER) {
                        self.consume(DSML_PARAMETER.len());
                        self.state = State::Key;
                        continue;
                    }
                    if self.buf.starts_with(DSML_INVOKE_END) {
                        self.consume(DSML_INVOKE_END.len());
                        let index = self.index.expect("a call is open");
                        let fragment = if self.args.is_empty() { "{}" } else { "}" };
                        out.push(ToolEvent::CallArguments {
                            index,
                            fragment: fragment.to_string(),
                        });
                        out.push(ToolEvent::CallEnd { index });
                        self.end_call();
                        continue;
                    }
                    let expected = [DSML_PARAMETER, DSML_INVOKE_END];
                    if !finishing
                        && (self.buf.is_empty() || is_partial_of_any(&self.buf, &expected))
                    {
                        return;
                    }
                    self.state = State::Skip;
                }
                State::Key => {
                    let Some(at) = self.buf.find(['"', '<', '\n']) else {
                        if finishing {
                            self.state = State::Skip;
                            continue;
                        }
                        return;
                    };
                    let key = self.buf[..at].to_string();
                    if !self.buf[at..].starts_with('"')
                        || key.is_empty()
                        || self.args.contains_key(&key)
                    {
                        self.state = State::Skip;
                        continue;
                    }
                    self.consume(at);
                    self.key = key;
                    self.state = State::Kind;
                }
                State::Kind => {
                    let kinds = [DSML_STRING, DSML_JSON];
                    if let Some(json) = kinds.iter().position(|k| self.buf.starts_with(k)) {
                        self.consume(kinds[json].len());
                        self.state = State::Value(json == 1);
                        continue;
                    }
                    if !finishing && is_partial_of_any(&self.buf, &kinds) {
                        return;
                    }
                    self.state = State::Skip;
                }
                State::Value(json) => {
                    let Some(at) = self.buf.find(DSML_PARAMETER_END) else {
                        if finishing {
                            self.state = State::Skip;
                            continue;
                        }
                        return;
                    };
                    let text = &self.buf[..at];
                    let value = if json {
                        match serde_json::from_str::<Value>(text) {
                            Ok(v) => v,
                            Err(_) => {
                                self.state = State::Skip;
                                continue;
                            }
                        }
                    } else {
                        Value::String(text.to_string())
                    };
                    self.consume(at + DSML_PARAMETER_END.len());
                    let key = std::mem::take(&mut self.key);
                    push_argument(&mut self.args, self.index, key, value, out);
                    self.state = State::Params;
                }
                State::Skip => {
                    let stop = match self.buf.find(DSML_INVOKE_END) {
                        Some(at) => at + DSML_INVOKE_END.len(),
                        None if finishing => self.buf.len(),
                        None => return,
                    };
                    self.consume(stop);
                    malformed(out, self.index, std::mem::take(&mut self.raw));
                    self.end_call();
                }
            }
        }
    }
}

impl Buffered for DsmlParser {
    fn buffer(&mut self) -> &mut String {
        &mut self.buf
    }

    fn process(&mut self, out: &mut Vec<ToolEvent>, finishing: bool) {
        DsmlParser::process(self, out, finishing)
    }
}
