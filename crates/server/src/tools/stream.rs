//! One choice's answer text through its family's tool-call parser, as OpenAI reports it:
//! `content` text, and `tool_calls` deltas (the first of a call with `index`, `id`, `type`,
//! `function.name` and empty `arguments`; then argument fragments) or whole calls.

use kaiyuan_chat::tools::{ToolCallParser, ToolEvent, ToolFormat, ToolSpec};
use serde::Serialize;

use super::ToolPlan;
use crate::routes::common::new_id;

/// A `tool_calls` entry of a stream delta.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolCallDelta {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    pub function: FunctionDelta,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FunctionDelta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub arguments: String,
}

/// A whole call of `message.tool_calls`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolCallOut {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionOut,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FunctionOut {
    pub name: String,
    pub arguments: String,
}

/// What one piece of answer text became.
#[derive(Debug, Default, PartialEq)]
pub struct ToolDeltas {
    pub content: String,
    pub calls: Vec<ToolCallDelta>,
}

/// A call the parser started.
struct Call {
    /// The parser's index (an abandoned call's index is not reused by the parser either).
    parser_index: usize,
    /// The OpenAI `index`: calls that were not abandoned, in order.
    index: usize,
    id: String,
    name: String,
    arguments: String,
    complete: bool,
}

/// One choice's parser and the OpenAI indexes of its calls.
pub struct ToolStream {
    parser: Box<dyn ToolCallParser>,
    calls: Vec<Call>,
    next_index: usize,
    /// Mistral's templates raise on any call id but 9 letters or digits ("Tool call IDs should
    /// be alphanumeric strings with length 9!"), so an agent that sends the calls back with
    /// their ids would get a 400 on its next turn: Mistral calls get such ids (as vLLM gives).
    short_ids: bool,
}

impl ToolStream {
    /// A stream for calls of any tool in `format` (the tests' shorthand).
    #[cfg(test)]
    pub fn new(format: ToolFormat) -> ToolStream {
        ToolStream::for_tools(format, &[])
    }

    /// A stream for a request's tool plan (its format, and the offered tools' schemas).
    pub fn for_plan(plan: &ToolPlan) -> ToolStream {
        ToolStream::for_tools(plan.format, &plan.specs)
    }

    fn for_tools(format: ToolFormat, tools: &[ToolSpec]) -> ToolStream {
        ToolStream {
            parser: format.parser_for(tools),
            calls: Vec::new(),
            next_index: 0,
            short_ids: format == ToolFormat::Mistral,
        }
    }

    /// Adds answer text.
    pub fn push(&mut self, text: &str) -> ToolDeltas {
        let events = self.parser.push(text);
        self.apply(events)
    }

    /// Ends the answer: held text is released, a call left open becomes content.
    pub fn finish(&mut self) -> ToolDeltas {
        let events = self.parser.finish();
        self.apply(events)
    }

    /// Whether a complete call was made (the choice then finishes with `tool_calls`).
    pub fn called(&self) -> bool {
        self.calls.iter().any(|c| c.complete)
    }

    /// The complete calls, in order.
    pub fn complete_calls(&self) -> Vec<ToolCallOut> {
        self.calls
            .iter()
            .filter(|c| c.complete)
            .map(|c| ToolCallOut {
                id: c.id.clone(),
                kind: "function",
                function: FunctionOut {
                    name: c.name.clone(),
                    arguments: c.arguments.clone(),
                },
            })
            .collect()
    }

    fn apply(&mut self, events: Vec<ToolEvent>) -> ToolDeltas {
        let mut out = ToolDeltas::default();
        for event in events {
            match event {
                ToolEvent::Content(text) => out.content.push_str(&text),
                ToolEvent::CallStart { index, name } => {
                    let openai = self.next_index;
                    self.next_index += 1;
                    let id = new_id("call").replacen("call-", "call_", 1);
                    let id = if self.short_ids {
                        id[id.len() - 9..].to_string()
                    } else {
                        id
                    };
                    out.calls.push(ToolCallDelta {
                        index: openai,
                        id: Some(id.clone()),
                        kind: Some("function"),
                        function: FunctionDelta {
                            name: Some(name.clone()),
                            arguments: String::new(),
                        },
                    });
                    self.calls.push(Call {
                        parser_index: index,
                        index: openai,
                        id,
                        name,
                        arguments: String::new(),
                        complete: false,
                    });
                }
                ToolEvent::CallArguments { index, fragment } => {
                    if let Some(call) = self.calls.iter_mut().find(|c| c.parser_index == index) {
                        call.arguments.push_str(&fragment);
                        out.calls.push(ToolCallDelta {
                            index: call.index,
                            id: None,
                            kind: None,
                            function: FunctionDelta {
                                name: None,
                                arguments: fragment,
                            },
                        });
                    }
                }
                ToolEvent::CallEnd { index } => {
                    if let Some(call) = self.calls.iter_mut().find(|c| c.parser_index == index) {
                        call.complete = true;
                    }
                }
                ToolEvent::Malformed { index, raw } => {
                    // A started call cannot be taken back in a stream; it stays incomplete
                    // (not in `message.tool_calls`) and its text is shown as content.
                    if let Some(index) = index {
                        self.calls.retain(|c| c.parser_index != index);
                    }
                    out.content.push_str(&raw);
                }
            }
        }
        // Merge consecutive argument fragments of one call into one delta.
        let mut merged: Vec<ToolCallDelta> = Vec::with_capacity(out.calls.len());
        for d in out.calls {
            match merged.last_mut() {
                Some(last) if last.index == d.index && last.id.is_none() && d.id.is_none() => {
                    last.function.arguments.push_str(&d.function.arguments);
                }
                _ => merged.push(d),
            }
        }
        out.calls = merged;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hermes_calls_stream_as_openai_deltas() {
        let mut s = ToolStream::new(ToolFormat::Hermes);
        let mut content = String::new();
        let mut deltas = Vec::new();
        let text = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": \
                    {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \
                    \"arguments\": {}}\n</tool_call>";
        for chunk in text.as_bytes().chunks(5) {
            let d = s.push(std::str::from_utf8(chunk).unwrap());
            content.push_str(&d.content);
            deltas.extend(d.calls);
        }
        let d = s.finish();
        content.push_str(&d.content);
        deltas.extend(d.calls);
        assert_eq!(content.trim(), "Let me check.");
        assert!(s.called());
        let calls = s.complete_calls();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].function.name, "get_weather");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&calls[0].function.arguments).unwrap(),
            serde_json::json!({"city": "Paris"})
        );
        assert!(calls[0].id.starts_with("call_") || calls[0].id.starts_with("call-"));
        // First delta of each call: index, id, type, name, empty arguments; later deltas only
        // argument fragments, which reassemble to the arguments.
        let first: Vec<_> = deltas.iter().filter(|d| d.id.is_some()).collect();
        assert_eq!(first.len(), 2);
        assert_eq!((first[0].index, first[1].index), (0, 1));
        assert!(first.iter().all(|d| d.function.arguments.is_empty()
            && d.kind == Some("function")
            && d.function.name.is_some()));
        let args0: String = deltas
            .iter()
            .filter(|d| d.index == 0)
            .map(|d| d.function.arguments.as_str())
            .collect();
        assert_eq!(args0, calls[0].function.arguments);
    }

    #[test]
    fn mistral_call_ids_are_nine_alphanumerics() {
        let mut s = ToolStream::new(ToolFormat::Mistral);
        s.push("[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}[TOOL_CALLS]f[ARGS]{}");
        s.finish();
        let calls = s.complete_calls();
        assert_eq!(calls.len(), 2);
        for call in &calls {
            assert_eq!(call.id.len(), 9, "{}", call.id);
            assert!(
                call.id.chars().all(|c| c.is_ascii_alphanumeric()),
                "{}",
                call.id
            );
        }
        assert_ne!(calls[0].id, calls[1].id);
    }

    #[test]
    fn malformed_calls_are_content_and_not_calls() {
        let mut s = ToolStream::new(ToolFormat::Hermes);
        let mut content = s
            .push("<tool_call>\n{\"name\": \"f\", \"arguments\": {oops}\n</tool_call>")
            .content;
        content.push_str(&s.finish().content);
        assert!(!s.called());
        assert!(content.contains("oops"), "{content}");
    }
}
