//! [`ChatTemplate`]: a compiled chat template and its render call, with the variables
//! transformers' `apply_chat_template` passes (`messages`, `tools`, `documents`,
//! `add_generation_prompt`, `bos_token`, `eos_token` and extra keyword arguments).

use std::error::Error as _;

use minijinja::Environment;
use serde_json::{Map, Value};

use crate::environment::{self, RaisedByTemplate, NOW_VARIABLE};
use crate::message::Message;
use crate::segments::{self, RenderedPrompt};
use crate::think_tags::ThinkTags;
use crate::ChatError;

const TEMPLATE_NAME: &str = "chat_template";

/// Options of one render.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Append the header that starts the assistant's reply.
    pub add_generation_prompt: bool,
    /// Tool definitions (a JSON list), passed as `tools`; `None` is passed as `none`.
    pub tools: Option<Value>,
    /// Documents for retrieval templates, passed as `documents`; `None` is passed as `none`.
    pub documents: Option<Value>,
    /// Extra template variables (`enable_thinking`, ...). They override `bos_token`/`eos_token`
    /// but not `messages`, `tools`, `documents` or `add_generation_prompt`.
    pub extra: Map<String, Value>,
    /// The clock `strftime_now` reads, in unix seconds (UTC); `None`: the system clock.
    pub now_unix_seconds: Option<i64>,
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    bos_token: Option<String>,
    eos_token: Option<String>,
    control_tokens: Vec<String>,
    /// The tags it writes around reasoning, if it is known to write any.
    think_tags: Option<ThinkTags>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .field("control_tokens", &self.control_tokens.len())
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles `source`. `bos_token`/`eos_token` are the texts of the model's BOS/EOS tokens,
    /// passed to the template as transformers passes the tokenizer's special tokens.
    pub fn new(
        source: &str,
        bos_token: Option<&str>,
        eos_token: Option<&str>,
    ) -> Result<Self, ChatError> {
        let mut env = environment::build();
        env.add_template_owned(TEMPLATE_NAME, rewrite_generation_tags(source))
            .map_err(|e| ChatError::Compile(describe(&e)))?;
        let mut template = ChatTemplate {
            env,
            source: source.to_string(),
            bos_token: bos_token.map(str::to_string),
            eos_token: eos_token.map(str::to_string),
            control_tokens: Vec::new(),
            think_tags: None,
        };
        template.think_tags = ThinkTags::of_template(&template);
        Ok(template)
    }

    /// Gives the texts of the tokenizer's control tokens (`<|im_end|>`, `<end_of_turn>`...). They
    /// are only used when a template changes message text in ways the sentinel method cannot follow;
    /// then control tokens inside message text are marked instead (see `segments.rs`). Without
    /// them such renders fail with [`ChatError::Unseparable`].
    pub fn with_control_tokens<I, S>(mut self, tokens: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.control_tokens = tokens
            .into_iter()
            .map(Into::into)
            .filter(|t: &String| !t.is_empty())
            .collect();
        self
    }

    pub(crate) fn control_tokens(&self) -> &[String] {
        &self.control_tokens
    }

    /// The template source as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The tags this template writes around a reply's reasoning (see [`ThinkTags`]); `None`
    /// when it is not known to write reasoning in tags.
    pub fn think_tags(&self) -> Option<&ThinkTags> {
        self.think_tags.as_ref()
    }

    pub fn bos_token(&self) -> Option<&str> {
        self.bos_token.as_deref()
    }

    pub fn eos_token(&self) -> Option<&str> {
        self.eos_token.as_deref()
    }

    /// Renders `messages`, returning the prompt split into markup and message content.
    pub fn render(
        &self,
        messages: &[Message],
        opts: &RenderOptions,
    ) -> Result<RenderedPrompt, ChatError> {
        segments::render_separated(self, messages, opts)
    }

    /// Renders `messages` to plain text, without telling markup from content: for showing users
    /// what the model sees (`kaiyuan template`), never for tokenizing untrusted conversations.
    pub fn render_text(
        &self,
        messages: &[Message],
        opts: &RenderOptions,
    ) -> Result<String, ChatError> {
        self.render_with(messages, opts, &mut |s: &str| s.to_string())
    }

    /// Renders once, with `untrusted` applied to every string that came from the conversation.
    pub(crate) fn render_with(
        &self,
        messages: &[Message],
        opts: &RenderOptions,
        untrusted: &mut dyn FnMut(&str) -> String,
    ) -> Result<String, ChatError> {
        let mut ctx = Map::new();
        if let Some(bos) = &self.bos_token {
            ctx.insert("bos_token".into(), Value::String(bos.clone()));
        }
        if let Some(eos) = &self.eos_token {
            ctx.insert("eos_token".into(), Value::String(eos.clone()));
        }
        for (key, value) in &opts.extra {
            ctx.insert(key.clone(), value.clone());
        }
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| m.to_template_value(untrusted))
            .collect();
        ctx.insert("messages".into(), Value::Array(messages));
        let tools = opts
            .tools
            .as_ref()
            .map(|t| crate::message::map_tool_descriptions(t, untrusted));
        ctx.insert("tools".into(), tools.unwrap_or(Value::Null));
        ctx.insert(
            "documents".into(),
            opts.documents
                .as_ref()
                .map(|d| crate::message::map_string_leaves(d, untrusted))
                .unwrap_or(Value::Null),
        );
        ctx.insert(
            "add_generation_prompt".into(),
            Value::Bool(opts.add_generation_prompt),
        );
        if let Some(now) = opts.now_unix_seconds {
            ctx.insert(NOW_VARIABLE.into(), Value::from(now));
        }
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| ChatError::Render(describe(&e)))?;
        template
            .render(to_template_value(&Value::Object(ctx)))
            .map_err(classify)
    }
}

/// transformers' `{% generation %}...{% endgeneration %}` tag (for assistant masks) renders its
/// body unchanged; minijinja has no such tag, so it becomes `{% if true %}...{% endif %}`,
/// keeping the whitespace-control marks.
fn rewrite_generation_tags(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        out.push_str(&rest[..start]);
        let tag = &rest[start..];
        let Some(end) = tag.find("%}") else {
            out.push_str(tag);
            return out;
        };
        let inner = &tag[2..end];
        let (left, body) = split_marker(inner, true);
        let (body, right) = split_marker(body, false);
        match body.trim() {
            "generation" => out.push_str(&format!("{{%{left} if true {right}%}}")),
            "endgeneration" => out.push_str(&format!("{{%{left} endif {right}%}}")),
            _ => out.push_str(&tag[..end + 2]),
        }
        rest = &tag[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Splits a leading (or trailing) whitespace-control mark `-`/`+` off a tag's inside.
fn split_marker(inner: &str, leading: bool) -> (&str, &str) {
    if leading {
        match inner.strip_prefix(['-', '+']) {
            Some(rest) => (&inner[..1], rest),
            None => ("", inner),
        }
    } else {
        match inner.strip_suffix(['-', '+']) {
            Some(rest) => (rest, &inner[inner.len() - 1..]),
            None => (inner, ""),
        }
    }
}

/// JSON → template value, keeping object key order (Python dicts keep insertion order).
fn to_template_value(value: &Value) -> minijinja::Value {
    match value {
        Value::Null => minijinja::Value::from(()),
        Value::Bool(b) => minijinja::Value::from(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => minijinja::Value::from(i),
            (None, Some(u), _) => minijinja::Value::from(u),
            (None, None, Some(f)) => minijinja::Value::from(f),
            _ => minijinja::Value::from(()),
        },
        Value::String(s) => minijinja::Value::from(s.as_str()),
        Value::Array(items) => {
            minijinja::Value::from(items.iter().map(to_template_value).collect::<Vec<_>>())
        }
        Value::Object(fields) => minijinja::Value::from_pairs(
            fields
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), to_template_value(v))),
        ),
    }
}

fn describe(err: &minijinja::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

fn classify(err: minijinja::Error) -> ChatError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(s) = source {
        if let Some(raised) = s.downcast_ref::<RaisedByTemplate>() {
            return ChatError::Raised(raised.0.clone());
        }
        source = s.source();
    }
    ChatError::Render(describe(&err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_tags_become_if_blocks() {
        assert_eq!(
            rewrite_generation_tags("a{%- generation %}b{% endgeneration -%}c{{ x }}{% if y %}"),
            "a{%- if true %}b{% endif -%}c{{ x }}{% if y %}"
        );
    }
}
