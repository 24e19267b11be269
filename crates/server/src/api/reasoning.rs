//! Reasoning in the chat API (DeepSeek's and vLLM's shapes): the request fields that switch
//! thinking on or off (`thinking`, `reasoning_effort`, `chat_template_kwargs`), how they become
//! template variables, and [`ReasoningTracker`], which splits a choice's output into
//! `reasoning_content` and `content` and counts its reasoning tokens.
//!
//! Choices (documented in the README):
//! - Whether a template can think is read from its source: one that mentions `enable_thinking`
//!   can be switched with that variable (Qwen3 style); one that tests a bare `thinking`
//!   variable (`thinking is defined`, `if thinking`: DeepSeek V3.1 style) with that one; one
//!   that reads `reasoning_effort` and names a `no_think` value (Hunyuan Hy3) with `reasoning_effort`;
//!   one that writes reasoning tags thinks (DeepSeek-R1 distills, QwQ). The tags are the
//!   template's own ([`ThinkTags`]: `<think>`, or what it renders around a probe's reasoning,
//!   such as Hy3's `<think:opensource>`); splitting, prefix completion and the answer
//!   constraint after reasoning use them. `thinking: enabled` on a template that cannot think
//!   is accepted and does nothing.
//! - Which setting wins: `chat_template_kwargs.enable_thinking`, then `thinking.type`, then the
//!   server's `--thinking` default. A request that sets both to different values is refused.
//!   The setting reaches the template (as `enable_thinking` or `thinking`) only when its
//!   source reads that variable, and never over the same key in `chat_template_kwargs`. A template that
//!   always opens `<think>` (R1 distills) cannot be switched off: its reasoning is still split.
//! - `reasoning_effort` (OpenAI's `none` | `minimal` | `low` | `medium` | `high` | `xhigh`,
//!   DeepSeek V4's `max`) is passed to the template as the variable `reasoning_effort`
//!   (gpt-oss's and DeepSeek V4's templates read it); Qwen3- and R1-style templates ignore
//!   it, so for them it changes nothing, and it does not switch their thinking. Where
//!   `reasoning_effort` is the switch (Hy3: `no_think` | `low` | `high`), the template gets
//!   `no_think` with thinking off, else `low` for `minimal`/`low` and `high` otherwise; an
//!   explicit effort turns thinking on (`none`: off) when `thinking` does not say.
//! - Reasoning tokens: a generated token counts as reasoning when the reasoning block is open
//!   before or after its text is added. So the tokens of the open and close tags count, and a
//!   token that straddles `</think>` (tag end plus the answer's first characters) counts as
//!   reasoning. Tokens of leading whitespace before `<think>` count once the block opens.
//!   Attribution follows the text as the engine releases it per token: text held back for a
//!   possible stop string (or an unfinished UTF-8 character) arrives with a later token, so
//!   with stop strings a token or two next to `</think>` may be attributed to the other side.

use kaiyuan_chat::{ChatTemplate, ReasoningSplitter, SplitDelta, ThinkTags};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// What the server does with reasoning text (`kaiyuan serve --reasoning-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReasoningFormat {
    /// Split it into `reasoning_content` (DeepSeek's API; llama-server's `deepseek`).
    #[default]
    Deepseek,
    /// Leave the `<think>` block in `content`.
    None,
}

/// `reasoning_effort`: OpenAI's values (`none` … `xhigh`) and DeepSeek V4's `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effort {
    None,
    Minimal,
    Low,
    Medium,
    High,
    XHigh,
    Max,
}

impl Effort {
    const ALL: [Effort; 7] = [
        Effort::None,
        Effort::Minimal,
        Effort::Low,
        Effort::Medium,
        Effort::High,
        Effort::XHigh,
        Effort::Max,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Effort::None => "none",
            Effort::Minimal => "minimal",
            Effort::Low => "low",
            Effort::Medium => "medium",
            Effort::High => "high",
            Effort::XHigh => "xhigh",
            Effort::Max => "max",
        }
    }
}

/// The reasoning fields of a validated chat request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReasoningRequest {
    /// `thinking.type` or `chat_template_kwargs.enable_thinking`; `None`: the server default.
    pub thinking: Option<bool>,
    /// `thinking.budget_tokens`: reasoning tokens before a response format's answer is
    /// forced to start (only with a response format after a prompt that opens reasoning).
    pub budget_tokens: Option<usize>,
    pub effort: Option<Effort>,
    /// `chat_template_kwargs`, passed to the template as variables.
    pub template_kwargs: Map<String, Value>,
}

/// Template variables a request may not set: they are the render call's own.
const RESERVED: [&str; 4] = ["messages", "tools", "documents", "add_generation_prompt"];

/// Validates `thinking`, `reasoning_effort` and `chat_template_kwargs`.
pub fn request(
    thinking: Option<&Value>,
    effort: Option<&Value>,
    kwargs: Option<&Value>,
) -> Result<ReasoningRequest, ApiError> {
    let template_kwargs = match kwargs {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => {
            return Err(ApiError::invalid(
                "chat_template_kwargs",
                "chat_template_kwargs must be an object of template variables",
            ))
        }
    };
    if let Some(key) = RESERVED.iter().find(|k| template_kwargs.contains_key(**k)) {
        return Err(ApiError::invalid(
            format!("chat_template_kwargs.{key}"),
            format!("`{key}` is set by the request itself, not by chat_template_kwargs"),
        ));
    }
    let kwarg_thinking = match template_kwargs.get("enable_thinking") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(ApiError::invalid(
                "chat_template_kwargs.enable_thinking",
                "enable_thinking must be true or false",
            ))
        }
    };
    let (field_thinking, budget_tokens) = thinking_field(thinking)?;
    if let (Some(a), Some(b)) = (kwarg_thinking, field_thinking) {
        if a != b {
            return Err(ApiError::invalid(
                "thinking",
                "thinking and chat_template_kwargs.enable_thinking disagree",
            ));
        }
    }
    let effort = match effort {
        None | Some(Value::Null) => None,
        Some(value) => {
            let known = Effort::ALL
                .into_iter()
                .find(|e| value.as_str() == Some(e.as_str()));
            let Some(known) = known else {
                return Err(ApiError::invalid(
                    "reasoning_effort",
                    format!(
                        "reasoning_effort must be one of none, minimal, low, medium, high, \
                         xhigh, max; got {value}"
                    ),
                ));
            };
            Some(known)
        }
    };
    Ok(ReasoningRequest {
        thinking: kwarg_thinking.or(field_thinking),
        budget_tokens,
        effort,
        template_kwargs,
    })
}

/// DeepSeek's `thinking: {"type": "enabled" | "disabled"}`, with Anthropic's
/// `budget_tokens` (a positive integer, with `enabled` only).
fn thinking_field(value: Option<&Value>) -> Result<(Option<bool>, Option<usize>), ApiError> {
    let shape = "thinking must be {\"type\": \"enabled\"} or {\"type\": \"disabled\"}";
    let map = match value {
        None | Some(Value::Null) => return Ok((None, None)),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(ApiError::invalid("thinking", shape)),
    };
    let enabled = match map.get("type") {
        Some(Value::String(t)) if t == "enabled" => true,
        Some(Value::String(t)) if t == "disabled" => false,
        _ => return Err(ApiError::invalid("thinking.type", shape)),
    };
    let budget = match map.get("budget_tokens") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 && enabled => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            _ => {
                return Err(ApiError::invalid(
                    "thinking.budget_tokens",
                    "budget_tokens must be a positive integer, with type enabled",
                ))
            }
        },
    };
    Ok((Some(enabled), budget))
}

/// A message's `reasoning_content` (assistant history): a string or null.
pub fn message_reasoning(
    i: usize,
    role: &str,
    value: Option<&Value>,
) -> Result<Option<String>, ApiError> {
    let param = || format!("messages[{i}].reasoning_content");
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(_)) if role != "assistant" => Err(ApiError::invalid(
            param(),
            "reasoning_content is only accepted on assistant messages",
        )),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid(
            param(),
            "reasoning_content must be a string",
        )),
    }
}

/// How a template's thinking is switched on and off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch {
    /// A boolean variable: `enable_thinking` (Qwen3 style) or `thinking` (DeepSeek V3.1 style).
    Flag(&'static str),
    /// `reasoning_effort` with an off value, `no_think` | `low` | `high` (Hunyuan Hy3).
    Effort,
}

impl Switch {
    /// The template variable it sets.
    pub fn variable(self) -> &'static str {
        match self {
            Switch::Flag(name) => name,
            Switch::Effort => "reasoning_effort",
        }
    }
}

impl serde::Serialize for Switch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.variable())
    }
}

/// What a chat template says about reasoning.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateReasoning {
    /// How its thinking is switched, if it can be.
    pub switch: Option<Switch>,
    /// It can think at all (it has a switch or writes reasoning tags).
    pub thinks: bool,
    /// The tags around its reasoning (`<think>` unless the template writes others).
    pub tags: ThinkTags,
}

impl TemplateReasoning {
    pub fn of_template(template: &ChatTemplate) -> TemplateReasoning {
        let source = template.source();
        let switch = if source.contains("enable_thinking") {
            Some(Switch::Flag("enable_thinking"))
        } else if reads_bare_thinking(source) {
            Some(Switch::Flag("thinking"))
        } else if source.contains("reasoning_effort") && source.contains("no_think") {
            Some(Switch::Effort)
        } else {
            None
        };
        let tags = template.think_tags().cloned();
        TemplateReasoning {
            switch,
            thinks: switch.is_some() || tags.is_some(),
            tags: tags.unwrap_or_default(),
        }
    }

    /// The template variables of a request that says nothing about reasoning, with thinking
    /// `on` or off by default ([`template_variables`]); what `kaiyuan chat` renders with.
    pub fn default_variables(&self, on: bool) -> Map<String, Value> {
        template_variables(&ReasoningRequest::default(), self, on)
    }
}

/// Whether `source` tests a top-level `thinking` variable (`not thinking is defined`,
/// `if thinking %}`), as opposed to a message field (`message.thinking`) or a string.
fn reads_bare_thinking(source: &str) -> bool {
    source.match_indices("thinking").any(|(at, word)| {
        let before = source[..at].chars().next_back();
        let after = source[at + word.len()..].trim_start();
        matches!(before, Some(c) if c.is_whitespace() || c == '(')
            && ["is defined", "%}", "-%}", "and ", "or ", ")"]
                .iter()
                .any(|next| after.starts_with(next))
    })
}

/// The template variables of a request: its `chat_template_kwargs`, plus the template's
/// thinking switch and `reasoning_effort`, unless the kwargs set them. A boolean switch gets
/// thinking on or off and `reasoning_effort` is passed as given; an effort switch (Hy3) gets
/// `no_think` when thinking is off, else `low` for `minimal` or `low` and `high` for the rest
/// or no effort (an explicit effort turns its thinking on, `none` off, when the request's
/// `thinking` does not say).
pub fn template_variables(
    req: &ReasoningRequest,
    template: &TemplateReasoning,
    server_default: bool,
) -> Map<String, Value> {
    let mut vars = req.template_kwargs.clone();
    let effort = match template.switch {
        Some(Switch::Flag(name)) => {
            let on = req.thinking.unwrap_or(server_default);
            vars.entry(name).or_insert(Value::Bool(on));
            req.effort.map(Effort::as_str)
        }
        Some(Switch::Effort) => {
            let asked = req.effort.map(|e| e != Effort::None);
            let on = req.thinking.or(asked).unwrap_or(server_default);
            Some(match (on, req.effort) {
                (false, _) => "no_think",
                (true, Some(Effort::None | Effort::Minimal | Effort::Low)) => "low",
                (true, _) => "high",
            })
        }
        None => req.effort.map(Effort::as_str),
    };
    if let Some(effort) = effort {
        vars.entry("reasoning_effort")
            .or_insert_with(|| Value::String(effort.into()));
    }
    vars
}

/// One choice's output split into reasoning and answer, token by token.
#[derive(Debug, Clone)]
pub struct ReasoningTracker {
    splitter: ReasoningSplitter,
    /// Tokens counted as reasoning.
    reasoning_tokens: usize,
    /// Tokens received at the start of the output before it showed whether it opens with
    /// reasoning (whitespace, a partial open tag): counted as reasoning if it does.
    undecided_tokens: usize,
    /// Some answer text was released.
    content_started: bool,
}

impl ReasoningTracker {
    /// `tags`: the template's reasoning tags; `starts_in_reasoning`: the prompt left the open
    /// tag open.
    pub fn new(tags: &ThinkTags, starts_in_reasoning: bool) -> ReasoningTracker {
        ReasoningTracker {
            splitter: ReasoningSplitter::with_tags(&tags.open, &tags.close, starts_in_reasoning),
            reasoning_tokens: 0,
            undecided_tokens: 0,
            content_started: false,
        }
    }

    /// Adds one generated token's text (see the module docs for how it is counted).
    pub fn token(&mut self, text: &str) -> SplitDelta {
        let before = self.splitter.in_reasoning();
        let at_start = !self.splitter.saw_reasoning() && !self.content_started;
        let delta = self.splitter.push(text);
        self.content_started |= !delta.content.is_empty();
        let opened = at_start && self.splitter.saw_reasoning();
        if before || opened || self.splitter.in_reasoning() {
            self.reasoning_tokens += 1 + std::mem::take(&mut self.undecided_tokens);
        } else if at_start && !self.content_started {
            self.undecided_tokens += 1;
        } else {
            self.undecided_tokens = 0;
        }
        delta
    }

    /// Adds text that is not a token of its own (held text released at the end).
    pub fn text(&mut self, text: &str) -> SplitDelta {
        self.splitter.push(text)
    }

    /// Ends the output: releases what was held.
    pub fn finish(&mut self) -> SplitDelta {
        self.splitter.finish()
    }

    /// True once the output had (or started in) a reasoning block.
    pub fn saw_reasoning(&self) -> bool {
        self.splitter.saw_reasoning()
    }

    pub fn reasoning_tokens(&self) -> usize {
        self.reasoning_tokens
    }
}

/// The whole of one choice's output, split: `(reasoning, content, reasoning_tokens)`;
/// reasoning is `None` when the output had no reasoning block.
pub fn split_whole<'a>(
    tags: &ThinkTags,
    starts_in_reasoning: bool,
    tokens: impl Iterator<Item = &'a str>,
    rest: &str,
) -> (Option<String>, String, usize) {
    let mut tracker = ReasoningTracker::new(tags, starts_in_reasoning);
    let (mut reasoning, mut content) = (String::new(), String::new());
    let mut add = |d: SplitDelta| {
        reasoning.push_str(&d.reasoning);
        content.push_str(&d.content);
    };
    for t in tokens {
        add(tracker.token(t));
    }
    add(tracker.text(rest));
    add(tracker.finish());
    let reasoning = tracker.saw_reasoning().then_some(reasoning);
    (reasoning, content, tracker.reasoning_tokens())
}

/// Whether the reply is inside a reasoning block after `prefix` (prefix completion), given
/// whether the prompt before it left one open: the last of `tags` in the prefix decides.
pub fn still_open(tags: &ThinkTags, open: bool, prefix: &str) -> bool {
    let opened = prefix.rfind(&tags.open);
    let closed = prefix.rfind(&tags.close);
    match (opened, closed) {
        (None, None) => open,
        (Some(_), None) => true,
        (None, Some(_)) => false,
        (Some(o), Some(c)) => o > c,
    }
}

#[cfg(test)]
#[path = "reasoning_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "reasoning_vendor_tests.rs"]
mod vendor_tests;
