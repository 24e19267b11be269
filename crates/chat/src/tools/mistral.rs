//! Mistral tool calls, after the `[TOOL_CALLS]` control token. Sources: Mistral's function
//! calling documentation, the Mistral-Nemo / Mistral-7B-v0.3 model cards and `mistral-common`'s
//! tokenizer versions (v3 writes a JSON list, v11+ writes name and arguments apart):
//!
//! ```text
//! [TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "a1b2c3d4e"}]   (Nemo, v3)
//! [TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}                                           (v11+)
//! ```
//!
//! In the newer form each call has its own `[TOOL_CALLS]`; an optional `[CALL_ID]id` between
//! the name and `[ARGS]` is skipped. Text before `[TOOL_CALLS]` is content.
//!
//! Nemo's list is buffered and emitted when the list closes (the model's `id`s are dropped: the
//! server makes its own). The `[ARGS]` form is streamed: the name is sent at `[ARGS]` and the
//! arguments as they arrive, until their JSON object closes; they are checked then.

use super::{
    call_from_value, content, is_json_object, leading_whitespace, malformed, release_content,
    skip_whitespace_after_call, Buffered, Calls, JsonScan, ToolEvent,
};

const TOOL_CALLS: &str = "[TOOL_CALLS]";
const ARGS: &str = "[ARGS]";
const CALL_ID: &str = "[CALL_ID]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Content,
    /// After `[TOOL_CALLS]`: a `[` means the Nemo list, anything else a name.
    AfterTag,
    /// Nemo: buffering the JSON list.
    List,
    /// Newer form: reading the name up to `[ARGS]`.
    Name,
    /// Before the arguments' `{`.
    ArgsLead,
    /// Streaming the arguments object.
    Args,
}

/// The Mistral parser; see the module documentation.
#[derive(Debug, Clone)]
pub struct MistralParser {
    state: State,
    buf: String,
    raw: String,
    args: String,
    index: Option<usize>,
    scan: JsonScan,
    /// Where the Nemo list starts in `raw`.
    list_from: usize,
    after_calls: bool,
    calls: Calls,
}

impl Default for MistralParser {
    fn default() -> Self {
        MistralParser::new()
    }
}

impl MistralParser {
    pub fn new() -> MistralParser {
        MistralParser {
            state: State::Content,
            buf: String::new(),
            raw: String::new(),
            args: String::new(),
            index: None,
            scan: JsonScan::default(),
            list_from: 0,
            after_calls: false,
            calls: Calls::default(),
        }
    }

    fn consume(&mut self, len: usize) {
        self.raw.push_str(&self.buf[..len]);
        self.buf.drain(..len);
    }

    fn fail(&mut self, out: &mut Vec<ToolEvent>) {
        malformed(out, self.index.take(), std::mem::take(&mut self.raw));
        self.args.clear();
        self.state = State::Content;
    }

    fn done(&mut self) {
        self.raw.clear();
        self.args.clear();
        self.index = None;
        self.state = State::Content;
        self.after_calls = true;
    }

    fn process(&mut self, out: &mut Vec<ToolEvent>, finishing: bool) {
        loop {
            match self.state {
                State::Content => {
                    if !skip_whitespace_after_call(&mut self.buf, &mut self.after_calls) {
                        return;
                    }
                    if let Some(at) = self.buf.find(TOOL_CALLS) {
                        content(out, &self.buf[..at]);
                        self.buf.drain(..at);
                        self.consume(TOOL_CALLS.len());
                        self.state = State::AfterTag;
                        continue;
                    }
                    release_content(out, &mut self.buf, &[TOOL_CALLS], finishing);
                    return;
                }
                State::AfterTag => {
                    let lead = leading_whitespace(&self.buf);
                    self.consume(lead);
                    if self.buf.is_empty() {
                        if finishing {
                            self.fail(out);
                        }
                        return;
                    }
                    self.scan = JsonScan::default();
                    self.list_from = self.raw.len();
                    self.state = if self.buf.starts_with('[') {
                        State::List
                    } else {
                        State::Name
                    };
                }
                State::List => {
                    let Some(len) = self.scan.feed(&self.buf) else {
                        self.consume(self.buf.len());
                        if finishing {
                            self.fail(out);
                        }
                        return;
                    };
                    self.consume(len);
                    let calls: Option<Vec<(String, String)>> =
                        match serde_json::from_str(&self.raw[self.list_from..]) {
                            Ok(serde_json::Value::Array(items)) if !items.is_empty() => {
                                items.iter().map(call_from_value).collect()
                            }
                            _ => None,
                        };
                    match calls {
                        Some(calls) => {
                            for (name, arguments) in calls {
                                self.calls.whole(out, &name, arguments);
                            }
                            self.done();
                        }
                        None => self.fail(out),
                    }
                }
                State::Name => {
                    let args_at = self.buf.find(ARGS);
                    let next_call = self.buf.find(TOOL_CALLS);
                    let at = match (args_at, next_call) {
                        (Some(a), n) if n.is_none_or(|n| a < n) => a,
                        (_, Some(n)) => {
                            self.consume(n);
                            self.fail(out);
                            continue;
                        }
                        _ if finishing => {
                            self.consume(self.buf.len());
                            self.fail(out);
                            continue;
                        }
                        _ => return,
                    };
                    let head = &self.buf[..at];
                    let name = head.split(CALL_ID).next().unwrap_or("").trim().to_string();
                    let valid = !name.is_empty() && !name.contains(char::is_whitespace);
                    self.consume(at + ARGS.len());
                    if !valid {
                        self.fail(out);
                        continue;
                    }
                    self.index = Some(self.calls.start(out, &name));
                    self.scan = JsonScan::default();
                    self.state = State::ArgsLead;
                }
                State::ArgsLead => {
                    let lead = leading_whitespace(&self.buf);
                    self.consume(lead);
                    if self.buf.is_empty() {
                        if finishing {
                            self.fail(out);
                        }
                        return;
                    }
                    if !self.buf.starts_with('{') {
                        self.fail(out);
                        continue;
                    }
                    self.state = State::Args;
                }
                State::Args => {
                    let closed = self.scan.feed(&self.buf);
                    let len = closed.unwrap_or(self.buf.len());
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
                    if closed.is_none() {
                        if finishing {
                            self.fail(out);
                        }
                        return;
                    }
                    match self.index {
                        Some(index) if is_json_object(&self.args) => {
                            out.push(ToolEvent::CallEnd { index });
                            self.done();
                        }
                        _ => self.fail(out),
                    }
                }
            }
        }
    }
}

impl Buffered for MistralParser {
    fn buffer(&mut self) -> &mut String {
        &mut self.buf
    }

    fn process(&mut self, out: &mut Vec<ToolEvent>, finishing: bool) {
        MistralParser::process(self, out, finishing)
    }
}
