//! Hermes / Qwen2.5 / Qwen3 tool calls: each call is a JSON object between tags,
//!
//! ```text
//! <tool_call>
//! {"name": "get_weather", "arguments": {"city": "Paris"}}
//! </tool_call>
//! ```
//!
//! possibly several in a row, possibly after some text. Sources: NousResearch's Hermes-2-Pro
//! function-calling format (model card), Qwen's "Function Calling" documentation for Qwen2.5 and
//! Qwen3 (Hermes-style template), and the Qwen2.5/Qwen3 chat templates, which ask for
//! `{"name": <function-name>, "arguments": <args-json-object>}` inside `<tool_call></tool_call>`.
//!
//! Streamed when the call object has the documented key order: once `{"name": "…", "arguments":`
//! and the arguments' `{` have arrived, `CallStart` is sent and the arguments' text follows as
//! it arrives (as written, not re-serialized) until their object closes; the call ends at
//! `</tool_call>` if only the object's `}` came between. Any other shape (other key order,
//! arguments given as a string, escapes in the name) is buffered and emitted whole at
//! `</tool_call>` with the arguments re-serialized compactly. Text outside calls streams as it
//! comes, minus a possible partial tag. An open tag anywhere starts a call (Qwen writes text and
//! then calls); if what follows is not a call object, the whole `<tool_call>…` text comes back
//! as [`ToolEvent::Malformed`]. Whitespace between and after calls is dropped.
//!
//! [`TaggedJsonParser`] is shared with ERNIE 4.5 (same tags, plus answer tags to strip).

use super::{
    call_from_value, content, find_first, held_suffix_start, is_json_object, malformed,
    release_content, skip_whitespace_after_call, Buffered, Calls, JsonScan, ToolEvent,
};

/// Where a call is, between its tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// Not in a call.
    Out,
    /// Matching the start of the object against `{"name": "…", "arguments": {`.
    Head,
    /// Another shape: buffered until the close tag.
    Whole,
    /// Streaming the arguments object.
    Args,
    /// After the arguments: only `}` may come before the close tag.
    Tail,
}

/// How far a call's text matches `{"name": "NAME", "arguments": {` (JSON whitespace allowed).
enum Head {
    /// Matched up to (not including) the arguments' `{`.
    Full {
        len: usize,
        name: String,
    },
    /// Still a prefix of it.
    Partial,
    No,
}

fn match_head(text: &str) -> Head {
    let mut rest = text;
    let mut name = String::new();
    for token in [
        "{",
        "\"name\"",
        ":",
        "\"",
        "",
        ",",
        "\"arguments\"",
        ":",
        "{",
    ] {
        if token.is_empty() {
            // The name: plain characters up to the closing quote.
            let Some(end) = rest.find(['"', '\\', '<', '\n']) else {
                return Head::Partial;
            };
            if !rest[end..].starts_with('"') || rest[..end].trim().is_empty() {
                return Head::No;
            }
            name = rest[..end].trim().to_string();
            rest = &rest[end + 1..];
            continue;
        }
        rest = rest.trim_start();
        if rest.is_empty() {
            return Head::Partial;
        }
        if token == "{" && name.is_empty() {
            rest = match rest.strip_prefix('{') {
                Some(after) => after,
                None => return Head::No,
            };
        } else if token == "{" {
            return if rest.starts_with('{') {
                Head::Full {
                    len: text.len() - rest.len(),
                    name,
                }
            } else {
                Head::No
            };
        } else if let Some(after) = rest.strip_prefix(token) {
            rest = after;
        } else if token.starts_with(rest) {
            return Head::Partial;
        } else {
            return Head::No;
        }
    }
    Head::No
}

/// A parser for calls written as `OPEN json CLOSE`, with optional tags to strip from content.
#[derive(Debug, Clone)]
pub struct TaggedJsonParser {
    open: &'static str,
    close: &'static str,
    /// `open` first, then the tags removed from content.
    markers: Vec<&'static str>,
    buf: String,
    call: Call,
    /// The text of the streamed call so far (from its open tag), for `Malformed`.
    raw: String,
    args: String,
    index: Option<usize>,
    scan: JsonScan,
    /// Right after a call: leading whitespace is dropped.
    after_call: bool,
    calls: Calls,
}

/// The Hermes / Qwen parser.
pub fn hermes_parser() -> TaggedJsonParser {
    TaggedJsonParser::new("<tool_call>", "</tool_call>", &[])
}

impl TaggedJsonParser {
    /// Calls between `open` and `close`; `strip` tags are removed from content.
    pub fn new(
        open: &'static str,
        close: &'static str,
        strip: &[&'static str],
    ) -> TaggedJsonParser {
        let mut markers = vec![open];
        markers.extend_from_slice(strip);
        TaggedJsonParser {
            open,
            close,
            markers,
            buf: String::new(),
            call: Call::Out,
            raw: String::new(),
            args: String::new(),
            index: None,
            scan: JsonScan::default(),
            after_call: false,
            calls: Calls::default(),
        }
    }

    fn consume(&mut self, len: usize) {
        self.raw.push_str(&self.buf[..len]);
        self.buf.drain(..len);
    }

    /// Ends the current call: `CallEnd` if `ok`, else `Malformed` with its raw text.
    fn end_call(&mut self, out: &mut Vec<ToolEvent>, ok: bool) {
        match self.index.take() {
            Some(index) if ok => out.push(ToolEvent::CallEnd { index }),
            index => malformed(out, index, std::mem::take(&mut self.raw)),
        }
        self.reset();
    }

    fn reset(&mut self) {
        self.index = None;
        self.raw.clear();
        self.args.clear();
        self.call = Call::Out;
        self.after_call = true;
    }

    fn process(&mut self, out: &mut Vec<ToolEvent>, finishing: bool) {
        loop {
            match self.call {
                Call::Out => {}
                Call::Head => match match_head(&self.buf) {
                    Head::Full { len, name } => {
                        self.consume(len);
                        self.index = Some(self.calls.start(out, &name));
                        self.scan = JsonScan::default();
                        self.call = Call::Args;
                        continue;
                    }
                    Head::Partial if !finishing => return,
                    _ => {
                        self.call = Call::Whole;
                        continue;
                    }
                },
                Call::Whole => {
                    let Some(at) = self.buf.find(self.close) else {
                        if finishing {
                            self.consume(self.buf.len());
                            self.end_call(out, false);
                        }
                        return;
                    };
                    let body = self.buf[..at].trim();
                    let call = serde_json::from_str(body)
                        .ok()
                        .and_then(|v| call_from_value(&v));
                    self.consume(at + self.close.len());
                    match call {
                        Some((name, arguments)) => {
                            self.calls.whole(out, &name, arguments);
                            self.reset();
                        }
                        None => self.end_call(out, false),
                    }
                    continue;
                }
                Call::Args => {
                    let close_at = self.buf.find(self.close);
                    let limit = match close_at {
                        Some(at) => at,
                        None if finishing => self.buf.len(),
                        None => held_suffix_start(&self.buf, &[self.close]),
                    };
                    let closed = self.scan.feed(&self.buf[..limit]);
                    let len = closed.unwrap_or(limit);
                    if len > 0 {
                        let fragment = self.buf[..len].to_string();
                        if let Some(index) = self.index {
                            out.push(ToolEvent::CallArguments {
                                index,
                                fragment: fragment.clone(),
                            });
                        }
                        self.args.push_str(&fragment);
                        self.consume(len);
                    }
                    if closed.is_some() {
                        self.call = Call::Tail;
                        continue;
                    }
                    if let Some(at) = close_at {
                        self.consume(at - len + self.close.len());
                        self.end_call(out, false);
                        continue;
                    }
                    if finishing {
                        self.end_call(out, false);
                    }
                    return;
                }
                Call::Tail => {
                    let Some(at) = self.buf.find(self.close) else {
                        if finishing {
                            self.consume(self.buf.len());
                            self.end_call(out, false);
                        }
                        return;
                    };
                    let ok = self.buf[..at].trim() == "}" && is_json_object(&self.args);
                    self.consume(at + self.close.len());
                    self.end_call(out, ok);
                    continue;
                }
            }
            if !skip_whitespace_after_call(&mut self.buf, &mut self.after_call) {
                return;
            }
            match find_first(&self.buf, &self.markers) {
                Some((at, which)) => {
                    content(out, &self.buf[..at]);
                    self.buf.drain(..at);
                    if which == 0 {
                        self.raw.clear();
                        self.consume(self.open.len());
                        self.call = Call::Head;
                    } else {
                        self.buf.drain(..self.markers[which].len());
                    }
                }
                None => {
                    release_content(out, &mut self.buf, &self.markers, finishing);
                    return;
                }
            }
        }
    }
}

impl Buffered for TaggedJsonParser {
    fn buffer(&mut self) -> &mut String {
        &mut self.buf
    }

    fn process(&mut self, out: &mut Vec<ToolEvent>, finishing: bool) {
        TaggedJsonParser::process(self, out, finishing)
    }
}
