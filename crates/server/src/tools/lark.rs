//! The grammar that forces a family's tool-call syntax (llguidance's Lark dialect): each call
//! names one of the offered tools and its arguments match that tool's `parameters` schema (each
//! schema embedded as its own `%json` root, so its local `$ref`s resolve). The markers are
//! written as the model's control tokens where its vocabulary has them (`<[id]>`), else as text.
//!
//! [`call_grammar`] gives the grammar of what follows the family's trigger (for `auto`, applied
//! lazily once the model writes the trigger) and the trigger; [`forced_grammar`] the grammar of
//! a whole reply that must be calls (`required`, a named tool).

use kaiyuan_chat::tools::{ToolFormat, ToolSpec};
use kaiyuan_grammar::with_json_options;
use kaiyuan_tokenizer::{TokenType, Tokenizer};
use serde_json::Value;

/// A family's call grammar: `rest` is the grammar body after `trigger`.
pub struct CallGrammar {
    pub trigger: &'static str,
    /// Lark rules; the rule `rest` is what follows the trigger.
    pub rules: String,
}

/// How a marker is written in the grammar: its control token, or its text.
fn atom(tokenizer: &Tokenizer, text: &str) -> String {
    let ids = tokenizer.encode(text, true);
    if let [id] = ids[..] {
        if tokenizer.token_type(id) == Some(TokenType::Control) {
            return format!("<[{id}]>");
        }
    }
    literal(text)
}

/// A Lark string literal (JSON's escaping, which Lark's strings read the same way).
fn literal(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

fn json_rule(schema: &Value) -> String {
    // Compact JSON (as in response_format); keywords the compiler cannot enforce ignored.
    let schema = with_json_options(schema.clone(), false).unwrap_or_else(|_| schema.clone());
    format!("%json {schema}")
}

/// One alternative per tool: `prefix(name)`, the arguments, `suffix`.
fn alternatives(
    tools: &[&ToolSpec],
    mut prefix: impl FnMut(&str) -> String,
    suffix: &str,
) -> String {
    tools
        .iter()
        .map(|t| {
            let params = if t.parameters.as_object().is_some_and(|o| !o.is_empty()) {
                t.parameters.clone()
            } else {
                serde_json::json!({"type": "object"})
            };
            format!("{} {} {}", prefix(&t.name), json_rule(&params), suffix)
        })
        .collect::<Vec<_>>()
        .join("\n    | ")
}

/// The grammar after the family's trigger, for `tools` (already narrowed to a named choice).
/// `None` for the generic format (a JSON Schema, not a grammar).
/// `args_form`: a Mistral template of tokenizer v11+ (`[TOOL_CALLS]name[ARGS]{...}`, one
/// marker per call) rather than Nemo's JSON list.
pub fn call_grammar(
    format: ToolFormat,
    tools: &[&ToolSpec],
    parallel: bool,
    args_form: bool,
    tokenizer: &Tokenizer,
) -> Option<CallGrammar> {
    let a = |text: &str| atom(tokenizer, text);
    let object_call = |key: &'static str| {
        alternatives(
            tools,
            |name| literal(&format!("{{\"name\": \"{name}\", \"{key}\": ")),
            "\"}\"",
        )
    };
    let more = |sep: String| {
        if parallel {
            format!("({sep})*")
        } else {
            String::new()
        }
    };
    Some(match format {
        ToolFormat::Hermes | ToolFormat::Ernie => {
            let (open, close) = (a("<tool_call>"), a("</tool_call>"));
            CallGrammar {
                trigger: "<tool_call>",
                rules: format!(
                    "rest: \"\\n\" call \"\\n\" {close} {}\ncall: {}\n",
                    more(format!("\"\\n\" {open} \"\\n\" call \"\\n\" {close}")),
                    object_call("arguments"),
                ),
            }
        }
        ToolFormat::Mistral if args_form => {
            let (calls_tag, args) = (a("[TOOL_CALLS]"), a("[ARGS]"));
            let calls = alternatives(tools, |name| format!("{} {args}", literal(name)), "");
            CallGrammar {
                trigger: "[TOOL_CALLS]",
                rules: format!(
                    "rest: call {}\ncall: {calls}\n",
                    more(format!("{calls_tag} call"))
                ),
            }
        }
        ToolFormat::Mistral => CallGrammar {
            trigger: "[TOOL_CALLS]",
            rules: format!(
                "rest: \"[\" call {} \"]\"\ncall: {}\n",
                more("\", \" call".into()),
                object_call("arguments"),
            ),
        },
        ToolFormat::Llama3 => CallGrammar {
            trigger: "<|python_tag|>",
            // One call per reply: Llama 3.1's format has no parallel calls.
            rules: format!("rest: call\ncall: {}\n", object_call("parameters")),
        },
        ToolFormat::DeepSeekR1 => {
            let (begin, sep, end, all_end) = (
                a("<｜tool▁call▁begin｜>"),
                a("<｜tool▁sep｜>"),
                a("<｜tool▁call▁end｜>"),
                a("<｜tool▁calls▁end｜>"),
            );
            let calls = alternatives(
                tools,
                |name| {
                    format!(
                        "{begin} \"function\" {sep} {}",
                        literal(&format!("{name}\n```json\n"))
                    )
                },
                &format!("\"\\n```\" {end}"),
            );
            CallGrammar {
                trigger: "<｜tool▁calls▁begin｜>",
                rules: format!(
                    "rest: call {} {all_end}\ncall: {calls}\n",
                    more("\"\\n\" call".into())
                ),
            }
        }
        ToolFormat::DeepSeekV31 => {
            let (begin, sep, end, all_end) = (
                a("<｜tool▁call▁begin｜>"),
                a("<｜tool▁sep｜>"),
                a("<｜tool▁call▁end｜>"),
                a("<｜tool▁calls▁end｜>"),
            );
            let calls = alternatives(
                tools,
                |name| format!("{begin} {} {sep}", literal(name)),
                &end,
            );
            CallGrammar {
                trigger: "<｜tool▁calls▁begin｜>",
                rules: format!(
                    "rest: call {} {all_end}\ncall: {calls}\n",
                    more("call".into())
                ),
            }
        }
        ToolFormat::Generic => return None,
    })
}

/// The grammar of a reply made only of calls: the trigger, then [`call_grammar`]'s rest
/// (Llama 3 writes a call as a bare JSON object, without its `<|python_tag|>`).
pub fn forced_grammar(format: ToolFormat, g: &CallGrammar, tokenizer: &Tokenizer) -> String {
    let start = if format == ToolFormat::Llama3 {
        "start: rest".to_string()
    } else {
        format!("start: {} rest", atom(tokenizer, g.trigger))
    };
    format!("{start}\n{}", g.rules)
}

/// The grammar applied lazily after the trigger.
pub fn lazy_grammar(g: &CallGrammar) -> String {
    format!("start: rest\n{}", g.rules)
}
