//! Tool calling for one chat request: which format the model writes calls in (detected from its
//! chat template), how the conversation is prepared for it (the `tools` template variable, or a
//! system prompt describing the tools where the template has no tool support, and tool history
//! in a shape that template can render), and what constrains the reply:
//!
//! - `required` or a named tool: the reply must be calls (a grammar from the first token);
//! - `auto`: family formats constrain lazily, from the family's trigger on (`<tool_call>`...),
//!   so the model may answer in text or call; the generic format constrains the whole reply
//!   to either `{"tool_calls": [...]}` or `{"response": "..."}`;
//! - `none` (no [`ToolsRequest`]): nothing is prompted, constrained or parsed.
//!
//! The output side ([`stream::ToolStream`]) turns the family parser's events into OpenAI
//! `tool_calls`.

mod lark;
pub mod stream;

use kaiyuan_chat::tools::{
    generic_system_prompt, generic_tool_schema, template_serializes_arguments, ToolChoice,
    ToolFormat, ToolSpec,
};
use kaiyuan_chat::{Content, Message};
use kaiyuan_grammar::GrammarSpec;
use kaiyuan_tokenizer::Tokenizer;
use serde_json::{json, Value};

use crate::api::grammar::GrammarRequest;
use crate::api::tools::ToolsRequest;
use crate::error::ApiError;

/// What a request's tools do to its prompt, its constraint and its output.
#[derive(Clone, Debug)]
pub struct ToolPlan {
    pub format: ToolFormat,
    /// The `tools` template variable (family formats that render tools).
    pub template_tools: Option<Value>,
    /// The constraint on the reply.
    pub grammar: GrammarRequest,
    /// Non-empty: the grammar applies only after one of these texts (lazy).
    pub triggers: Vec<String>,
    /// The tools offered, for the output parser (GLM's values are typed by their schemas).
    pub specs: Vec<ToolSpec>,
}

/// The tool format of a chat template.
pub fn format_of(template_source: &str) -> ToolFormat {
    ToolFormat::detect(template_source)
}

/// Prepares `messages` for the model's template (tool history converted where the template
/// cannot render it, tool descriptions added where it does not render tools) and plans the
/// constraint. `tools` is `None` when none are offered; history is prepared either way.
/// `answer_grammar` is the request's own `response_format`, which cannot be combined with
/// `tool_choice: auto` (one constraint per reply).
pub fn prepare(
    format: ToolFormat,
    template_source: &str,
    tokenizer: &Tokenizer,
    tools: Option<&ToolsRequest>,
    answer_grammar: Option<&GrammarRequest>,
    messages: &mut Vec<Message>,
) -> Result<Option<ToolPlan>, ApiError> {
    check_call_ids(template_source, messages)?;
    match format {
        ToolFormat::Generic => generic_history(messages),
        ToolFormat::DeepSeekR1 | ToolFormat::DeepSeekV31
            if !template_serializes_arguments(template_source) =>
        {
            string_arguments(messages)
        }
        _ => {}
    }
    let Some(req) = tools else {
        return Ok(None);
    };
    if req.choice == ToolChoice::Auto {
        if let Some(g) = answer_grammar {
            return Err(ApiError::unsupported(
                &g.param,
                "a response format together with tools under tool_choice `auto` is not \
                 supported (one constraint per reply); use tool_choice `required` or a named \
                 tool, or leave out one of them",
            ));
        }
    }
    if !format.template_renders_tools() {
        let prompt = match format {
            ToolFormat::DeepSeekR1 => deepseek_r1_prompt(req),
            _ => generic_system_prompt(&req.specs, &req.choice),
        };
        add_system_text(messages, &prompt);
    }
    let template_tools = format
        .template_renders_tools()
        .then(|| req.definitions.clone());
    let param = "tools".to_string();
    if format == ToolFormat::Generic {
        let mut schema = generic_tool_schema(&req.specs, &req.choice).ok_or_else(|| {
            ApiError::invalid("tool_choice", "no tool can be called with this tool_choice")
        })?;
        if !req.parallel {
            limit_to_one_call(&mut schema);
        }
        return Ok(Some(ToolPlan {
            format,
            template_tools,
            grammar: GrammarRequest {
                spec: GrammarSpec::JsonSchema {
                    schema,
                    strict: false,
                },
                param,
                answer_only: true,
            },
            triggers: Vec::new(),
            specs: req.specs.clone(),
        }));
    }
    let offered: Vec<_> = match &req.choice {
        ToolChoice::Named(name) => req.specs.iter().filter(|s| &s.name == name).collect(),
        _ => req.specs.iter().collect(),
    };
    // Mistral templates of tokenizer v11+ render calls as `name[ARGS]{...}`.
    let args_form = format == ToolFormat::Mistral && template_source.contains("[ARGS]");
    let g = lark::call_grammar(format, &offered, req.parallel, args_form, tokenizer)
        .ok_or_else(|| ApiError::Engine(format!("no call grammar for {}", format.name())))?;
    let (lark, triggers) = match req.choice {
        ToolChoice::Auto => (lark::lazy_grammar(&g), vec![g.trigger.to_string()]),
        _ => (lark::forced_grammar(format, &g, tokenizer), Vec::new()),
    };
    Ok(Some(ToolPlan {
        format,
        template_tools,
        grammar: GrammarRequest {
            spec: GrammarSpec::Lark(lark),
            param,
            answer_only: true,
        },
        triggers,
        specs: req.specs.clone(),
    }))
}

/// Adds `text` to the first message if it is a system message, else as a new first one.
fn add_system_text(messages: &mut Vec<Message>, text: &str) {
    if let Some(first) = messages.first_mut().filter(|m| m.role == "system") {
        if let Some(Content::Text(existing)) = &mut first.content {
            existing.push_str("\n\n");
            existing.push_str(text);
            return;
        }
    }
    messages.insert(0, Message::text("system", text));
}

/// `parallel_tool_calls: false` in the generic schema: at most one call.
fn limit_to_one_call(schema: &mut Value) {
    fn walk(v: &mut Value) {
        if let Some(calls) = v.pointer_mut("/properties/tool_calls") {
            calls["maxItems"] = json!(1);
        }
        if let Some(Value::Array(options)) = v.get_mut("anyOf") {
            options.iter_mut().for_each(walk);
        }
    }
    walk(schema);
}

/// Where the template reads `tool_call_id`, each tool message needs one that answers a call
/// made earlier in the conversation.
fn check_call_ids(template_source: &str, messages: &[Message]) -> Result<(), ApiError> {
    if !template_source.contains("tool_call_id") {
        return Ok(());
    }
    let mut ids: Vec<&str> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        if let Some(Value::Array(calls)) = &m.tool_calls {
            ids.extend(calls.iter().filter_map(|c| c.get("id")?.as_str()));
        }
        if m.role == "tool" {
            match m.tool_call_id.as_deref() {
                Some(id) if ids.contains(&id) => {}
                Some(id) => {
                    return Err(ApiError::invalid(
                        format!("messages[{i}].tool_call_id"),
                        format!("`{id}` is not the id of a tool call made earlier"),
                    ))
                }
                None => {
                    return Err(ApiError::invalid(
                        format!("messages[{i}].tool_call_id"),
                        "this model's template needs the tool_call_id of the call a tool \
                         message answers",
                    ))
                }
            }
        }
    }
    Ok(())
}

/// DeepSeek's own templates concatenate the arguments as text (the copies that apply `tojson`
/// to them get the object: see `template_serializes_arguments`).
fn string_arguments(messages: &mut [Message]) {
    for m in messages {
        if let Some(Value::Array(calls)) = &mut m.tool_calls {
            for call in calls {
                if let Some(args) = call.pointer_mut("/function/arguments") {
                    if !args.is_string() {
                        *args = Value::String(args.to_string());
                    }
                }
            }
        }
    }
}

/// For templates without tool support: an assistant call becomes the JSON reply the generic
/// format makes the model write, and consecutive tool results one user message.
fn generic_history(messages: &mut Vec<Message>) {
    let mut out: Vec<Message> = Vec::with_capacity(messages.len());
    let mut names: Vec<(String, String)> = Vec::new();
    // The user message collecting the current run of tool results, and that run.
    let mut results: Option<(usize, Vec<Value>)> = None;
    for mut m in messages.drain(..) {
        if let Some(Value::Array(calls)) = m.tool_calls.take() {
            let listed: Vec<Value> = calls
                .iter()
                .map(|c| {
                    let f = &c["function"];
                    if let (Some(id), Some(name)) = (c["id"].as_str(), f["name"].as_str()) {
                        names.push((id.to_string(), name.to_string()));
                    }
                    json!({"name": f["name"], "arguments": f["arguments"]})
                })
                .collect();
            let reply = json!({"tool_calls": listed}).to_string();
            m.content = Some(Content::Text(reply));
        }
        if m.role != "tool" {
            results = None;
            out.push(m);
            continue;
        }
        let name = m
            .tool_call_id
            .as_ref()
            .and_then(|id| names.iter().find(|(i, _)| i == id))
            .map(|(_, n)| n.clone());
        let text = match &m.content {
            Some(Content::Text(t)) => t.clone(),
            Some(other) => serde_json::to_string(other).unwrap_or_default(),
            None => String::new(),
        };
        let mut result = json!({"content": text});
        if let Some(name) = name.or(m.name.clone()) {
            result["name"] = json!(name);
        }
        if let Some(id) = &m.tool_call_id {
            result["tool_call_id"] = json!(id);
        }
        match &mut results {
            Some((at, list)) => {
                list.push(result);
                let text = json!({"tool_results": list}).to_string();
                out[*at].content = Some(Content::Text(text));
            }
            None => {
                let list = vec![result];
                let text = json!({"tool_results": list}).to_string();
                out.push(Message::text("user", &text));
                results = Some((out.len() - 1, list));
            }
        }
    }
    *messages = out;
}

/// DeepSeek-R1's template renders calls and results but not the tool list: describe the
/// tools and the call syntax in the system prompt.
fn deepseek_r1_prompt(req: &ToolsRequest) -> String {
    let list = serde_json::to_string_pretty(&req.definitions).unwrap_or_default();
    let mut text = format!(
        "You can call these functions (JSON Schema of each one's arguments):\n{list}\n\n\
         To call a function, write:\n\
         <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\n\
         {{ARGUMENTS}}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>\n"
    );
    match &req.choice {
        ToolChoice::Required => text.push_str("You must call at least one function."),
        ToolChoice::Named(name) => text.push_str(&format!("You must call `{name}`.")),
        ToolChoice::Auto => {}
    }
    text
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
