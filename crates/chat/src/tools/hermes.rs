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
//! Buffered: the arguments are wrapped in the call object, so a call is emitted whole when its
//! `</tool_call>` arrives (arguments re-serialized compactly); text outside calls streams as it
//! comes, minus a possible partial tag. An open tag anywhere starts a call (Qwen writes text and
//! then calls); if what follows is not a call object, the whole `<tool_call>…` text comes back
//! as [`ToolEvent::Malformed`]. Whitespace between and after calls is dropped.
//!
//! [`TaggedJsonParser`] is shared with ERNIE 4.5 (same tags, plus answer tags to strip).

use super::{
    call_from_value, content, find_first, held_suffix_start, malformed, Calls, ToolCallParser,
    ToolEvent,
};

/// A parser for calls written as `OPEN json CLOSE`, with optional tags to strip from content.
#[derive(Debug, Clone)]
pub struct TaggedJsonParser {
    open: &'static str,
    close: &'static str,
    /// `open` first, then the tags removed from content.
    markers: Vec<&'static str>,
    buf: String,
    in_call: bool,
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
            in_call: false,
            after_call: false,
            calls: Calls::default(),
        }
    }

    fn process(&mut self, out: &mut Vec<ToolEvent>, finishing: bool) {
        loop {
            if self.in_call {
                let body_from = self.open.len();
                let Some(at) = self.buf[body_from..].find(self.close) else {
                    if finishing {
                        malformed(out, None, std::mem::take(&mut self.buf));
                        self.in_call = false;
                    }
                    return;
                };
                let end = body_from + at + self.close.len();
                let body = self.buf[body_from..body_from + at].trim();
                let call = serde_json::from_str(body)
                    .ok()
                    .and_then(|v| call_from_value(&v));
                match call {
                    Some((name, arguments)) => self.calls.whole(out, &name, arguments),
                    None => malformed(out, None, self.buf[..end].to_string()),
                }
                self.buf.drain(..end);
                self.in_call = false;
                self.after_call = true;
                continue;
            }
            if self.after_call {
                let lead = self.buf.len() - self.buf.trim_start().len();
                self.buf.drain(..lead);
                if self.buf.is_empty() {
                    return;
                }
                self.after_call = false;
            }
            match find_first(&self.buf, &self.markers) {
                Some((at, which)) => {
                    content(out, &self.buf[..at]);
                    if which == 0 {
                        self.buf.drain(..at);
                        self.in_call = true;
                    } else {
                        self.buf.drain(..at + self.markers[which].len());
                    }
                }
                None => {
                    let keep = if finishing {
                        self.buf.len()
                    } else {
                        held_suffix_start(&self.buf, &self.markers)
                    };
                    content(out, &self.buf[..keep]);
                    self.buf.drain(..keep);
                    return;
                }
            }
        }
    }
}

impl ToolCallParser for TaggedJsonParser {
    fn push(&mut self, text: &str) -> Vec<ToolEvent> {
        self.buf.push_str(text);
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
