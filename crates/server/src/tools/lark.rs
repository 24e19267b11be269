//! The grammar that forces a family's tool-call syntax (llguidance's Lark dialect): each call
//! names one of the offered tools and its arguments match that tool's `parameters` schema (each
//! schema embedded as its own `%json` root, so its local `$ref`s resolve). The markers are
//! written as the model's control tokens where its vocabulary has them (`<[id]>`), else as text.
//!
//! [`call_grammar`] gives the grammar of what follows the family's trigger (for `auto`, applied
//! lazily once the model writes the trigger) and the trigger; [`forced_grammar`] the grammar of
//! a whole reply that must be calls (`required`, a named tool).

use kaiyuan_chat::tools::dsml::{
    DSML_INVOKE, DSML_INVOKE_END, DSML_JSON, DSML_PARAMETER, DSML_PARAMETER_END, DSML_STRING,
    DSML_V32_BLOCK, DSML_V4_BLOCK,
};
use kaiyuan_chat::tools::{declared_types, ArgTags, ToolFormat, ToolSpec, GLM_TAGS, HY3_TAGS};
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
        ToolFormat::Glm => arg_tags_grammar(&GLM_TAGS, tools, parallel, tokenizer),
        ToolFormat::Hunyuan => arg_tags_grammar(&HY3_TAGS, tools, parallel, tokenizer),
        ToolFormat::DeepSeekV32 => dsml_grammar(DSML_V32_BLOCK, tools, parallel, tokenizer),
        ToolFormat::DeepSeekV4 => dsml_grammar(DSML_V4_BLOCK, tools, parallel, tokenizer),
        ToolFormat::Generic => return None,
    })
}

/// GLM's and Hy3's calls (`kaiyuan_chat::tools::GlmParser`): after `<tool_call>`, the name
/// (Hy3: and `<tool_sep:opensource>`), then a `<arg_key>K</arg_key><arg_value>V</arg_value>`
/// pair per argument, then `</tool_call>`, with an optional newline after the name and after
/// each tag pair (GLM-4.6 and Hy3 write them, GLM-4.7 does not); Hy3's calls are wrapped in
/// `<tool_calls:opensource>…</tool_calls:opensource>`, its trigger. The declared properties come in the schema's order, the required ones forced, no
/// others (a schema without properties takes any keys). A `string`-typed value (or one without
/// a declared type, or a type list with `string`) is raw text without `</arg_value>`, a string
/// `enum` one of its values, any other value `%json` of the property's schema (with the root's
/// `$defs` / `definitions`, so local `$ref`s resolve).
pub(super) fn arg_tags_grammar(
    tags: &ArgTags,
    tools: &[&ToolSpec],
    parallel: bool,
    tokenizer: &Tokenizer,
) -> CallGrammar {
    let a = |text: &str| atom(tokenizer, text);
    let (open, close) = (a(tags.open), a(tags.close));
    let (key_open, key_close) = (a(tags.key_open), a(tags.key_close));
    let (value_open, value_close) = (a(tags.value_open), a(tags.value_close));
    let sep = tags.sep.map(a).unwrap_or_default();
    let (raw_value, mut rules) = raw_value("glm", tags.value_close, &value_close);
    let mut calls = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let root = &tool.parameters;
        let properties = root.get("properties").and_then(Value::as_object);
        let required = required_of(root);
        let mut pairs = Vec::new();
        let pair = |key: &str, value: &str| {
            format!("{key_open} {key} {key_close} \"\\n\"? {value_open} {value} \"\\n\"?")
        };
        match properties.filter(|p| !p.is_empty()) {
            Some(properties) => {
                for (j, (name, schema)) in properties.iter().enumerate() {
                    let value = glm_value(schema, root, &raw_value, &value_close);
                    rules.push_str(&format!(
                        "glm_arg_{i}_{j}: {}\n",
                        pair(&literal(name), &value)
                    ));
                    let optional = if required.contains(&name.as_str()) {
                        ""
                    } else {
                        "?"
                    };
                    pairs.push(format!("glm_arg_{i}_{j}{optional}"));
                }
            }
            None if root.get("additionalProperties") != Some(&Value::Bool(false)) => {
                let key = "/[^<\\n]+/";
                rules.push_str(&format!("glm_any_{i}: {}\n", pair(key, &raw_value)));
                pairs.push(format!("glm_any_{i}*"));
            }
            None => {}
        }
        rules.push_str(&format!(
            "glm_call_{i}: {} {sep} \"\\n\"? {} {close}\n",
            literal(&tool.name),
            pairs.join(" ")
        ));
        calls.push(format!("glm_call_{i}"));
    }
    let more = if parallel {
        format!("(\"\\n\"? {open} call)*")
    } else {
        String::new()
    };
    let (trigger, rest) = match tags.wrapper {
        Some((begin, end)) => (
            begin,
            format!("\"\\n\"? {open} call {more} \"\\n\"? {}", a(end)),
        ),
        None => (tags.open, format!("call {more}")),
    };
    CallGrammar {
        trigger,
        rules: format!("rest: {rest}\ncall: {}\n{rules}", calls.join(" | ")),
    }
}

/// The `required` property names of a JSON-schema object (none if it has no list).
fn required_of(root: &Value) -> Vec<&str> {
    root.get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The rule of a raw text value and the close tag after it (`close` written as `close_atom`):
/// when the tag is a control token, text that cannot spell it; when it is text, a lazy match
/// that ends at its first occurrence (and includes it). `(what a value is, its rules)`.
fn raw_value(prefix: &str, close: &str, close_atom: &str) -> (String, String) {
    let end = regex_literal(close);
    if close_atom.starts_with("<[") {
        let upper = prefix.to_uppercase();
        let rules = format!("{upper}_RAW: /(?s:.*)/ & ~/(?s:.*){end}(?s:.*)/\n");
        (format!("{upper}_RAW {close_atom}"), rules)
    } else {
        let rules = format!("{prefix}_raw[lazy]: /(?s:.*){end}/\n");
        (format!("{prefix}_raw"), rules)
    }
}

/// DeepSeek V3.2's and V4's DSML calls (`kaiyuan_chat::tools::DsmlParser`): in the family's
/// block, `<｜DSML｜invoke name="NAME">`, then a `<｜DSML｜parameter name="KEY" string="…">VALUE
/// </｜DSML｜parameter>` per argument, then `</｜DSML｜invoke>`, with an optional newline after
/// each tag (the templates write one; V4 writes two in a call without arguments). Arguments
/// as in [`arg_tags_grammar`]: the declared properties in the schema's order, the required
/// ones forced, no others (a schema without properties takes any keys). A `string`-typed value
/// is `string="true"` and raw text (a string `enum` one of its values), any other
/// `string="false"` and `%json` of the property's schema; one without a declared type or with
/// a type list holding `string` may be either.
fn dsml_grammar(
    block: (&'static str, &'static str),
    tools: &[&ToolSpec],
    parallel: bool,
    tokenizer: &Tokenizer,
) -> CallGrammar {
    let a = |text: &str| atom(tokenizer, text);
    let (invoke, invoke_end) = (a(DSML_INVOKE), a(DSML_INVOKE_END));
    let (param, param_end) = (a(DSML_PARAMETER), a(DSML_PARAMETER_END));
    let (string, json) = (literal(DSML_STRING), literal(DSML_JSON));
    let (raw, mut rules) = raw_value("dsml", DSML_PARAMETER_END, &param_end);
    let raw = format!("{string} {raw}");
    let any_json = format!("{json} {} {param_end}", json_rule(&serde_json::json!({})));
    let mut calls = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let root = &tool.parameters;
        let properties = root.get("properties").and_then(Value::as_object);
        let required = required_of(root);
        let mut pairs = Vec::new();
        match properties.filter(|p| !p.is_empty()) {
            Some(properties) => {
                for (j, (name, schema)) in properties.iter().enumerate() {
                    let value = dsml_value(schema, root, &raw, &param_end);
                    rules.push_str(&format!(
                        "dsml_arg_{i}_{j}: {param} {} {value} \"\\n\"?\n",
                        literal(name)
                    ));
                    let optional = if required.contains(&name.as_str()) {
                        ""
                    } else {
                        "?"
                    };
                    pairs.push(format!("dsml_arg_{i}_{j}{optional}"));
                }
            }
            None if root.get("additionalProperties") != Some(&Value::Bool(false)) => {
                rules.push_str(&format!(
                    "dsml_any_{i}: {param} /[^\"<\\n]+/ ({raw} | {any_json}) \"\\n\"?\n"
                ));
                pairs.push(format!("dsml_any_{i}*"));
            }
            None => {}
        }
        rules.push_str(&format!(
            "dsml_call_{i}: {invoke} {} \"\\n\"? {} \"\\n\"? {invoke_end}\n",
            literal(&format!("{}\">", tool.name)),
            pairs.join(" ")
        ));
        calls.push(format!("dsml_call_{i}"));
    }
    let more = if parallel { "(\"\\n\"? call)*" } else { "" };
    CallGrammar {
        trigger: block.0,
        rules: format!(
            "rest: \"\\n\"? call {more} \"\\n\"? {}\ncall: {}\n{rules}",
            a(block.1),
            calls.join(" | ")
        ),
    }
}

/// One DSML argument's `string` attribute, value and close tag (see [`dsml_grammar`]).
fn dsml_value(schema: &Value, root: &Value, raw: &str, param_end: &str) -> String {
    let types = declared_types(schema);
    let json = format!(
        "{} {}",
        literal(DSML_JSON),
        typed_json(schema, root, param_end)
    );
    if types.is_empty() || types.contains(&"string") {
        let words: Option<Vec<String>> = schema
            .get("enum")
            .and_then(Value::as_array)
            .and_then(|values| values.iter().map(|v| v.as_str().map(literal)).collect());
        return match words {
            Some(words) if types == ["string"] && !words.is_empty() => format!(
                "{} ({}) {param_end}",
                literal(DSML_STRING),
                words.join(" | ")
            ),
            _ if types == ["string"] => raw.to_string(),
            _ => format!("({raw} | {json})"),
        };
    }
    json
}

/// `text` as a Lark regex matching it literally (regex metacharacters and `/` escaped).
fn regex_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One argument value and the close tag after it (see [`arg_tags_grammar`]).
fn glm_value(schema: &Value, root: &Value, raw_value: &str, value_close: &str) -> String {
    let types = declared_types(schema);
    if types.is_empty() || types.contains(&"string") {
        let words: Option<Vec<String>> = schema
            .get("enum")
            .and_then(Value::as_array)
            .and_then(|values| values.iter().map(|v| v.as_str().map(literal)).collect());
        return match words {
            Some(words) if types == ["string"] && !words.is_empty() => {
                format!("({}) {value_close}", words.join(" | "))
            }
            _ => raw_value.to_string(),
        };
    }
    typed_json(schema, root, value_close)
}

/// `%json` of a property's schema (with the root's `$defs` / `definitions`, so local `$ref`s
/// resolve), then the value's close tag.
fn typed_json(schema: &Value, root: &Value, value_close: &str) -> String {
    let mut schema = schema.clone();
    if let Value::Object(s) = &mut schema {
        for defs in ["$defs", "definitions"] {
            if let Some(d) = root.get(defs) {
                s.entry(defs).or_insert_with(|| d.clone());
            }
        }
    }
    format!("{} {value_close}", json_rule(&schema))
}

/// The grammar of a reply made only of calls: the trigger, then [`call_grammar`]'s rest
/// (Llama 3 writes a call as a bare JSON object, without its `<|python_tag|>`).
pub fn forced_grammar(format: ToolFormat, g: &CallGrammar, tokenizer: &Tokenizer) -> String {
    let start = match format {
        ToolFormat::Llama3 => "start: rest".to_string(),
        // The DSML templates write `\n\n` before the block, also when the reply has no text.
        ToolFormat::DeepSeekV32 | ToolFormat::DeepSeekV4 => {
            format!("start: \"\\n\\n\"? {} rest", atom(tokenizer, g.trigger))
        }
        _ => format!("start: {} rest", atom(tokenizer, g.trigger)),
    };
    format!("{start}\n{}", g.rules)
}

/// The grammar applied lazily after the trigger.
pub fn lazy_grammar(g: &CallGrammar) -> String {
    format!("start: rest\n{}", g.rules)
}
