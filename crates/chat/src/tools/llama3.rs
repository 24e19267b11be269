//! Llama 3.1 / 3.2 JSON tool calls. The model card's "JSON based tool calling" (Llama 3.1 and
//! 3.2 model cards, `llama-models` prompt-format docs) asks the model to reply with
//!
//! ```text
//! {"name": "get_weather", "parameters": {"city": "Paris"}}
//! ```
//!
//! (note `parameters`; `arguments` is accepted too), and built-in tools start with
//! `<|python_tag|>`; the message ends with `<|eom_id|>`/`<|eot_id|>`, which the engine stops on.
//!
//! Rules:
//! - A call is a JSON object at the very start of the reply (leading whitespace allowed) with a
//!   `name` and `parameters`/`arguments`, or a JSON object after `<|python_tag|>` anywhere.
//!   Several calls may follow each other, separated by whitespace or `;` (Llama 3.2 does this).
//! - A JSON object in the middle of text is content, and so is a reply that is JSON of another
//!   shape (`{"answer": 4}`): the parser holds the start of the reply only while it could still
//!   be a call (`{` then a key among `name`, `parameters`, `arguments`, `type`, `function`).
//! - A call-shaped object that does not parse, or a `<|python_tag|>` not followed by a JSON call
//!   (e.g. `brave_search.call(query="...")`, the built-in tool syntax, not supported here) is
//!   [`ToolEvent::Malformed`].
//!
//! Buffered: each call is emitted whole when its JSON object closes.

use super::{
    call_from_value, content, malformed, release_content, Buffered, Calls, JsonScan, ToolEvent,
};

const PYTHON_TAG: &str = "<|python_tag|>";
/// Keys a call object may start with.
const CALL_KEYS: [&str; 5] = [
    "\"name\"",
    "\"parameters\"",
    "\"arguments\"",
    "\"type\"",
    "\"function\"",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Only whitespace so far: a bare JSON call may follow.
    Start,
    /// Just after a call: whitespace and `;` are dropped; another call may follow.
    AfterCall,
    /// Plain text; only `<|python_tag|>` starts a call.
    Content,
    /// After `<|python_tag|>` (kept in `buf`), before the JSON starts.
    Tagged,
    /// Inside a JSON object starting at `buf[json_from]`; `strict`: after the tag.
    Json { strict: bool },
}

/// The Llama 3 parser; see the module documentation.
#[derive(Debug, Clone)]
pub struct Llama3Parser {
    state: State,
    buf: String,
    json_from: usize,
    scan: JsonScan,
    scanned: usize,
    calls: Calls,
}

impl Default for Llama3Parser {
    fn default() -> Self {
        Llama3Parser::new()
    }
}

impl Llama3Parser {
    pub fn new() -> Llama3Parser {
        Llama3Parser {
            state: State::Start,
            buf: String::new(),
            json_from: 0,
            scan: JsonScan::default(),
            scanned: 0,
            calls: Calls::default(),
        }
    }

    fn begin_json(&mut self, from: usize, strict: bool) {
        self.state = State::Json { strict };
        self.json_from = from;
        self.scan = JsonScan::default();
        self.scanned = from;
    }

    /// Whether the object text `{…` (so far) can still be a call object.
    fn plausible(object: &str) -> bool {
        let after = object[1..].trim_start();
        after.is_empty()
            || CALL_KEYS
                .iter()
                .any(|k| after.starts_with(k) || k.starts_with(after))
    }

    fn process(&mut self, out: &mut Vec<ToolEvent>, finishing: bool) {
        loop {
            match self.state {
                State::Start | State::AfterCall => {
                    let after_call = self.state == State::AfterCall;
                    let trimmed = if after_call {
                        self.buf
                            .trim_start_matches(|c: char| c.is_whitespace() || c == ';')
                    } else {
                        self.buf.trim_start()
                    };
                    let lead = self.buf.len() - trimmed.len();
                    if trimmed.is_empty() {
                        if finishing && !after_call {
                            content(out, &self.buf);
                        }
                        if finishing || after_call {
                            self.buf.clear();
                        }
                        return;
                    }
                    if trimmed.starts_with('{') {
                        self.buf.drain(..if after_call { lead } else { 0 });
                        let from = if after_call { 0 } else { lead };
                        self.begin_json(from, false);
                    } else if trimmed.starts_with(PYTHON_TAG) {
                        self.buf.drain(..lead);
                        self.state = State::Tagged;
                    } else if !finishing && PYTHON_TAG.starts_with(trimmed) {
                        return;
                    } else {
                        if after_call {
                            self.buf.drain(..lead);
                        }
                        self.state = State::Content;
                    }
                }
                State::Content => match self.buf.find(PYTHON_TAG) {
                    Some(at) => {
                        content(out, &self.buf[..at]);
                        self.buf.drain(..at);
                        self.state = State::Tagged;
                    }
                    None => {
                        release_content(out, &mut self.buf, &[PYTHON_TAG], finishing);
                        return;
                    }
                },
                State::Tagged => {
                    let rest = self.buf[PYTHON_TAG.len()..].trim_start();
                    if rest.starts_with('{') {
                        let from = self.buf.len() - rest.len();
                        self.begin_json(from, true);
                    } else {
                        // Built-in tool syntax or garbage: the rest of the reply is the call.
                        if finishing {
                            malformed(out, None, std::mem::take(&mut self.buf));
                            self.state = State::Content;
                        }
                        return;
                    }
                }
                State::Json { strict } => {
                    if !strict && !Self::plausible(&self.buf[self.json_from..]) {
                        self.state = State::Content;
                        // The text is content, but a python tag inside it still counts.
                        continue;
                    }
                    let Some(len) = self.scan.feed(&self.buf[self.scanned..]) else {
                        self.scanned = self.buf.len();
                        if finishing {
                            malformed(out, None, std::mem::take(&mut self.buf));
                            self.state = State::Content;
                        }
                        return;
                    };
                    let end = self.scanned + len;
                    let value = serde_json::from_str(&self.buf[self.json_from..end]);
                    match value.as_ref().ok().and_then(call_from_value) {
                        Some((name, arguments)) => {
                            self.calls.whole(out, &name, arguments);
                            self.buf.drain(..end);
                            self.state = State::AfterCall;
                        }
                        None if value.is_ok() && !strict => {
                            // Valid JSON of another shape: an answer.
                            content(out, &self.buf[..end]);
                            self.buf.drain(..end);
                            self.state = State::Content;
                        }
                        None => {
                            malformed(out, None, self.buf[..end].to_string());
                            self.buf.drain(..end);
                            self.state = State::AfterCall;
                        }
                    }
                }
            }
        }
    }
}

impl Buffered for Llama3Parser {
    fn buffer(&mut self) -> &mut String {
        &mut self.buf
    }

    fn process(&mut self, out: &mut Vec<ToolEvent>, finishing: bool) {
        Llama3Parser::process(self, out, finishing)
    }
}
