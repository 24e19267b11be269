//! The OpenAI request bodies as they arrive (serde, unvalidated). Unknown fields are
//! ignored; a field of the wrong JSON type fails parsing with its name
//! (`crate::extract::parse`). Fields that take several shapes (`stop`, `prompt`,
//! `content`, `logit_bias`) are kept as JSON values and given precise messages by
//! `validate.rs`. A body is parsed twice from one JSON value: into the endpoint's struct and
//! into [`CommonFields`].

use serde::Deserialize;
use serde_json::{Map, Value};

/// `POST /v1/chat/completions`.
#[derive(Debug, Default, Deserialize)]
pub struct ChatCompletionRequest {
    pub model: Option<String>,
    pub messages: Vec<ChatMessage>,
    /// Chat: whether to return log-probabilities of the chosen tokens.
    pub logprobs: Option<bool>,
    /// Chat: how many alternatives to return per token (0..=20), needs `logprobs`.
    pub top_logprobs: Option<u64>,
    pub tools: Option<Value>,
    pub tool_choice: Option<Value>,
    pub parallel_tool_calls: Option<Value>,
    pub functions: Option<Value>,
    /// DeepSeek: `{"type": "enabled" | "disabled"}` (see `reasoning.rs`).
    pub thinking: Option<Value>,
    /// `none` | `minimal` | `low` | `medium` | `high` | `xhigh` | `max`, passed to the
    /// template as `reasoning_effort`.
    pub reasoning_effort: Option<Value>,
    /// vLLM / llama-server: extra template variables (`{"enable_thinking": false}`).
    pub chat_template_kwargs: Option<Value>,
}

/// `POST /v1/completions`.
#[derive(Debug, Default, Deserialize)]
pub struct CompletionRequest {
    pub model: Option<String>,
    pub prompt: Option<Value>,
    /// Completions: the number of alternatives per token (0..=20); 0 still reports the
    /// chosen token's log-probability.
    pub logprobs: Option<u64>,
    pub echo: Option<bool>,
    pub suffix: Option<String>,
    pub best_of: Option<u64>,
}

/// The fields both endpoints share, parsed from the same body as the endpoint's own struct
/// (not `#[serde(flatten)]`, which would lose the name of a field that fails to parse).
/// Integers are signed so that a negative value gets a range message naming the field.
#[derive(Debug, Default, Deserialize)]
pub struct CommonFields {
    pub max_tokens: Option<i64>,
    pub max_completion_tokens: Option<i64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<i64>,
    pub min_p: Option<f64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub repetition_penalty: Option<f64>,
    pub logit_bias: Option<Map<String, Value>>,
    pub seed: Option<i64>,
    pub stop: Option<Value>,
    pub n: Option<i64>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    /// The end user's id, for abuse monitoring: shown in the request's log line.
    pub user: Option<String>,
    /// Extension (vLLM's name): keep generating through end-of-generation tokens.
    pub ignore_eos: Option<bool>,
    pub response_format: Option<Value>,
    /// Extension: `{"type": "lark" | "regex", "value": "…"}` constrains the output.
    pub grammar: Option<Value>,
    /// Extension (llama-server's): a JSON schema the output must validate against.
    pub json_schema: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    pub include_usage: Option<bool>,
}

/// One message of `messages`.
#[derive(Debug, Default, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: Option<Value>,
    pub name: Option<String>,
    pub tool_calls: Option<Value>,
    /// A `tool` message's answer to the call with this id.
    pub tool_call_id: Option<Value>,
    /// DeepSeek's prefix completion: on the last (assistant) message, continue its content.
    pub prefix: Option<Value>,
    /// Assistant history's reasoning (DeepSeek), given to the template.
    pub reasoning_content: Option<Value>,
}

/// `POST /tokenize` (llama-server's shape).
#[derive(Debug, Deserialize)]
pub struct TokenizeRequest {
    pub model: Option<String>,
    pub content: String,
    /// Add the BOS/EOS tokens the model's metadata asks for (default false).
    pub add_special: Option<bool>,
    /// Recognise control tokens written in the text (default true).
    pub parse_special: Option<bool>,
    /// Return `{"id", "piece"}` objects instead of plain ids (default false).
    pub with_pieces: Option<bool>,
}

/// `POST /detokenize` (llama-server's shape).
#[derive(Debug, Deserialize)]
pub struct DetokenizeRequest {
    pub model: Option<String>,
    pub tokens: Vec<i64>,
}
