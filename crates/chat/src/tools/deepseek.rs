//! DeepSeek tool calls. Sources: the DeepSeek-R1 / DeepSeek-V3 chat templates and model cards
//! (R1 and V3 form) and the DeepSeek-V3.1 model card's "Tool call" section (V3.1 form):
//!
//! ```text
//! <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather
//! ```json
//! {"city": "Paris"}
//! ```<｜tool▁call▁end｜><｜tool▁calls▁end｜>                                    (R1 / V3)
//!
//! <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{"city": "Paris"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>   (V3.1)
//! ```
//!
//! `｜` is U+FF5C and `▁` is U+2581. Several calls follow each other inside one wrapper; the
//! wrapper may be missing (a call may start at `<｜tool▁call▁begin｜>`). R1 distills are known to
//! emit mangled markers: every marker is also accepted with `▁` written as `_`, a space or `\_`,
//! and with ASCII `|` bars.
//!
//! Streamed: the name is sent when `<｜tool▁sep｜>` (V3.1) or the end of the name line (R1)
//! arrives; the arguments are sent as they arrive, holding back only what could be the closing
//! fence (whitespace, backticks) or a partial end marker, and checked at `<｜tool▁call▁end｜>`.
//! The two forms are told apart per call: a head of `function` followed by a non-`{` line is
//! the R1 form (so a V3.1 function literally named `function` is still read right).

use super::{
    content, find_first, held_suffix_start, is_json_object, is_partial_of_any, leading_whitespace,
    malformed, release_content, skip_whitespace_after_call, starts_with_any, Buffered, Calls,
    ToolEvent,
};

/// Every spelling of a marker: `▁` as itself, `_`, space or `\_`; bars `｜` or `|`.
fn variants(words: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for bar in ["｜", "|"] {
        for sep in ["▁", "_", " ", "\\_"] {
            out.push(format!("<{bar}{}{bar}>", words.join(sep)));
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Content,
    /// Inside the wrapper (or after a call), between calls.
    Between,
    /// After `<｜tool▁call▁begin｜>`, before `<｜tool▁sep｜>`.
    Head,
    /// R1 form, after `function<｜tool▁sep｜>`: the name runs to the end of the line.
    R1Name,
    /// After the name: whitespace and an opening fence are skipped.
    ArgsLead,
    Args,
}

/// The DeepSeek R1 / V3 / V3.1 parser; see the module documentation.
#[derive(Debug, Clone)]
pub struct DeepSeekParser {
    calls_begin: Vec<String>,
    call_begin: Vec<String>,
    sep: Vec<String>,
    call_end: Vec<String>,
    /// Markers that matter in content: both begins and a stray wrapper end (dropped).
    content_markers: Vec<String>,
    /// Markers that may come between calls.
    between_markers: Vec<String>,
    state: State,
    buf: String,
    /// The raw text of the call (or wrapper) being read, for `Malformed`.
    raw: String,
    args: String,
    index: Option<usize>,
    after_calls: bool,
    calls: Calls,
}

impl Default for DeepSeekParser {
    fn default() -> Self {
        DeepSeekParser::new()
    }
}

impl DeepSeekParser {
    pub fn new() -> DeepSeekParser {
        let calls_begin = variants(&["tool", "calls", "begin"]);
        let call_begin = variants(&["tool", "call", "begin"]);
        let calls_end = variants(&["tool", "calls", "end"]);
        let content_markers = [calls_begin.clone(), call_begin.clone(), calls_end.clone()].concat();
        let between_markers = [call_begin.clone(), calls_end.clone()].concat();
        DeepSeekParser {
            calls_begin,
            call_begin,
            sep: variants(&["tool", "sep"]),
            call_end: variants(&["tool", "call", "end"]),
            content_markers,
            between_markers,
            state: State::Content,
            buf: String::new(),
            raw: String::new(),
            args: String::new(),
            index: None,
            after_calls: false,
            calls: Calls::default(),
        }
    }

    /// Moves the first `len` bytes of `buf` into `raw`.
    fn consume(&mut self, len: usize) {
        self.raw.push_str(&self.buf[..len]);
        self.buf.drain(..len);
    }

    fn fail(&mut self, out: &mut Vec<ToolEvent>) {
        let raw = std::mem::take(&mut self.raw);
        malformed(out, self.index.take(), raw);
        self.args.clear();
    }

    fn process(&mut self, out: &mut Vec<ToolEvent>, finishing: bool) {
        loop {
            match self.state {
                State::Content => {
                    if !skip_whitespace_after_call(&mut self.buf, &mut self.after_calls) {
                        return;
                    }
                    match find_first(&self.buf, &self.content_markers) {
                        Some((at, which)) => {
                            content(out, &self.buf[..at]);
                            self.buf.drain(..at);
                            let len = self.content_markers[which].len();
                            let n = self.calls_begin.len();
                            if which < n {
                                self.consume(len);
                                self.state = State::Between;
                            } else if which < 2 * n {
                                self.consume(len);
                                self.state = State::Head;
                            } else {
                                self.buf.drain(..len); // a stray wrapper end
                            }
                        }
                        None => {
                            release_content(out, &mut self.buf, &self.content_markers, finishing);
                            return;
                        }
                    }
                }
                State::Between => {
                    let lead = leading_whitespace(&self.buf);
                    self.consume(lead);
                    if let Some(which) = starts_with_any(&self.buf, &self.between_markers) {
                        let len = self.between_markers[which].len();
                        if which < self.call_begin.len() {
                            self.consume(len);
                            self.state = State::Head;
                        } else {
                            self.buf.drain(..len);
                            self.raw.clear();
                            self.state = State::Content;
                            self.after_calls = true;
                        }
                        continue;
                    }
                    if !finishing
                        && (self.buf.is_empty()
                            || is_partial_of_any(&self.buf, &self.between_markers))
                    {
                        return;
                    }
                    // Not a call: a wrapper opened for nothing is malformed; text after calls is
                    // content.
                    if !self.raw.trim().is_empty() {
                        if finishing {
                            self.consume(self.buf.len());
                        }
                        self.fail(out);
                    }
                    self.raw.clear();
                    self.state = State::Content;
                    if finishing && self.buf.is_empty() {
                        return;
                    }
                }
                State::Head => {
                    let sep = find_first(&self.buf, &self.sep);
                    let end = find_first(&self.buf, &self.call_end);
                    match (sep, end) {
                        (Some((at, which)), e) if e.is_none_or(|(e, _)| at < e) => {
                            let head = self.buf[..at].trim().to_string();
                            let sep_len = self.sep[which].len();
                            // Look past the separator before deciding the form.
                            let rest = self.buf[at + sep_len..].trim_start();
                            if head == "function" && rest.is_empty() && !finishing {
                                return;
                            }
                            let r1_form = head == "function" && !rest.starts_with('{');
                            self.consume(at + sep_len);
                            if r1_form {
                                self.state = State::R1Name;
                            } else if head.is_empty() {
                                self.state = State::Args; // fails at the end marker
                            } else {
                                self.index = Some(self.calls.start(out, &head));
                                self.state = State::ArgsLead;
                            }
                        }
                        _ if end.is_some() || finishing => {
                            let stop =
                                end.map_or(self.buf.len(), |(e, w)| e + self.call_end[w].len());
                            self.consume(stop);
                            self.fail(out);
                            self.state = State::Between;
                        }
                        _ => return,
                    }
                }
                State::R1Name => {
                    let Some(at) = self.buf.find(['\n', '`', '{']) else {
                        if finishing {
                            self.consume(self.buf.len());
                            self.fail(out);
                        }
                        return;
                    };
                    let name = self.buf[..at].trim().to_string();
                    self.consume(at);
                    if name.is_empty() {
                        self.state = State::Args;
                    } else {
                        self.index = Some(self.calls.start(out, &name));
                        self.state = State::ArgsLead;
                    }
                }
                State::ArgsLead => {
                    let lead = leading_whitespace(&self.buf);
                    self.consume(lead);
                    if self.buf.starts_with("```") {
                        if self.buf.starts_with("```json") {
                            self.consume(7);
                        } else if "```json".starts_with(self.buf.as_str()) && !finishing {
                            return;
                        } else {
                            self.consume(3);
                        }
                        continue;
                    }
                    if !finishing && (self.buf.is_empty() || "```".starts_with(self.buf.as_str())) {
                        return;
                    }
                    self.state = State::Args;
                }
                State::Args => {
                    let end = find_first(&self.buf, &self.call_end);
                    let region = match end {
                        Some((at, _)) => at,
                        None if finishing => self.buf.len(),
                        None => held_suffix_start(&self.buf, &self.call_end),
                    };
                    let release = self.buf[..region]
                        .trim_end_matches(|c: char| c.is_whitespace() || c == '`')
                        .len();
                    if release > 0 {
                        let fragment = self.buf[..release].to_string();
                        if let Some(index) = self.index {
                            out.push(ToolEvent::CallArguments {
                                index,
                                fragment: fragment.clone(),
                            });
                        }
                        self.args.push_str(&fragment);
                        self.consume(release);
                    }
                    let Some((at, which)) = end else {
                        if finishing {
                            self.consume(self.buf.len());
                            self.fail(out);
                        }
                        return;
                    };
                    self.consume(at - release + self.call_end[which].len());
                    match self.index {
                        Some(index) if is_json_object(&self.args) => {
                            out.push(ToolEvent::CallEnd { index });
                            self.index = None;
                            self.raw.clear();
                            self.args.clear();
                        }
                        _ => self.fail(out),
                    }
                    self.state = State::Between;
                }
            }
        }
    }
}

impl Buffered for DeepSeekParser {
    fn buffer(&mut self) -> &mut String {
        &mut self.buf
    }

    fn process(&mut self, out: &mut Vec<ToolEvent>, finishing: bool) {
        DeepSeekParser::process(self, out, finishing)
    }
}
