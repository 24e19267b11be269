//! The OpenAI response bodies Kaiyuan sends: chat completions and their stream chunks,
//! text completions, usage, log-probabilities, the model list. Shapes follow the OpenAI API
//! reference field for field; `Option` fields serialize as `null` where OpenAI sends
//! `null`, and are skipped only where OpenAI omits them.

use serde::Serialize;
use serde_json::{Map, Value};

/// `usage` of a response: OpenAI's fields plus DeepSeek's `prompt_cache_hit_tokens` /
/// `prompt_cache_miss_tokens` (hit + miss = `prompt_tokens`; hits are the prefix cache's, the
/// same number as `prompt_tokens_details.cached_tokens`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct UsageBody {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
    pub prompt_tokens_details: PromptTokensDetails,
    /// Chat only (completions do not split reasoning).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
    pub prompt_cache_hit_tokens: usize,
    pub prompt_cache_miss_tokens: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct PromptTokensDetails {
    pub cached_tokens: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct CompletionTokensDetails {
    /// Generated tokens of the reasoning block (see `api::reasoning` for tag tokens).
    pub reasoning_tokens: usize,
}

impl UsageBody {
    pub fn new(prompt_tokens: usize, completion_tokens: usize, cached_tokens: usize) -> UsageBody {
        let cached_tokens = cached_tokens.min(prompt_tokens);
        UsageBody {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            prompt_tokens_details: PromptTokensDetails { cached_tokens },
            completion_tokens_details: None,
            prompt_cache_hit_tokens: cached_tokens,
            prompt_cache_miss_tokens: prompt_tokens - cached_tokens,
        }
    }

    /// With `completion_tokens_details.reasoning_tokens` (at most `completion_tokens`).
    pub fn with_reasoning(mut self, reasoning_tokens: usize) -> UsageBody {
        self.completion_tokens_details = Some(CompletionTokensDetails {
            reasoning_tokens: reasoning_tokens.min(self.completion_tokens),
        });
        self
    }
}

/// What every response and chunk starts with.
#[derive(Clone, Debug, Serialize)]
pub struct Header {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub system_fingerprint: &'static str,
}

/// `chat.completion`.
#[derive(Debug, Serialize)]
pub struct ChatCompletion {
    #[serde(flatten)]
    pub header: Header,
    pub choices: Vec<ChatChoice>,
    pub usage: UsageBody,
}

#[derive(Debug, Serialize)]
pub struct ChatChoice {
    pub index: usize,
    pub message: AssistantMessage,
    pub logprobs: Option<ChatLogprobs>,
    pub finish_reason: &'static str,
}

#[derive(Debug, Serialize)]
pub struct AssistantMessage {
    pub role: &'static str,
    /// `null` when the reply is only tool calls.
    pub content: Option<String>,
    /// The reasoning block's text (DeepSeek's field); absent when the output had none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// The calls the reply made; absent when it made none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<crate::tools::stream::ToolCallOut>>,
    pub refusal: Option<String>,
}

/// A choice's `logprobs` in chat: one entry per generated token.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ChatLogprobs {
    pub content: Vec<TokenLogprob>,
    pub refusal: Option<Vec<TokenLogprob>>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenLogprob {
    pub token: String,
    pub logprob: f32,
    pub bytes: Option<Vec<u8>>,
    pub top_logprobs: Vec<TopLogprob>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TopLogprob {
    pub token: String,
    pub logprob: f32,
    pub bytes: Option<Vec<u8>>,
}

/// `chat.completion.chunk`.
#[derive(Debug, Serialize)]
pub struct ChatChunk {
    #[serde(flatten)]
    pub header: Header,
    pub choices: Vec<ChunkChoice>,
    /// Present (as `null` until the last chunk) only with `stream_options.include_usage`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<UsageBody>>,
}

#[derive(Debug, Serialize)]
pub struct ChunkChoice {
    pub index: usize,
    pub delta: Delta,
    pub logprobs: Option<ChatLogprobs>,
    pub finish_reason: Option<&'static str>,
}

#[derive(Debug, Default, Serialize)]
pub struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// Reasoning text; streamed before any `content` of the choice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Tool-call fragments (see `crate::tools::stream`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<crate::tools::stream::ToolCallDelta>>,
}

/// `text_completion`, whole or as a stream chunk (same object name in both).
#[derive(Debug, Serialize)]
pub struct Completion {
    #[serde(flatten)]
    pub header: Header,
    pub choices: Vec<CompletionChoice>,
    /// Always present in a whole response; in a stream only with `include_usage`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<UsageBody>>,
}

#[derive(Debug, Serialize)]
pub struct CompletionChoice {
    pub index: usize,
    pub text: String,
    pub logprobs: Option<CompletionLogprobs>,
    pub finish_reason: Option<&'static str>,
}

/// A completion choice's `logprobs` (the legacy shape): parallel arrays per token.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CompletionLogprobs {
    pub tokens: Vec<String>,
    pub token_logprobs: Vec<f32>,
    /// Alternative token text → logprob, most likely first.
    pub top_logprobs: Vec<Map<String, Value>>,
    /// Character offset of each token in the choice's text (with `echo`, after the prompt).
    pub text_offset: Vec<usize>,
}

/// The error object a stream sends (as a `data:` line of its own) when it ends abnormally.
#[derive(Debug, Serialize)]
pub struct StreamError {
    pub error: StreamErrorObject,
}

#[derive(Debug, Serialize)]
pub struct StreamErrorObject {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_has_openai_and_deepseek_fields() {
        let u = serde_json::to_value(UsageBody::new(40, 10, 32).with_reasoning(7)).unwrap();
        assert_eq!(
            u,
            serde_json::json!({
                "prompt_tokens": 40, "completion_tokens": 10, "total_tokens": 50,
                "prompt_tokens_details": {"cached_tokens": 32},
                "completion_tokens_details": {"reasoning_tokens": 7},
                "prompt_cache_hit_tokens": 32, "prompt_cache_miss_tokens": 8
            })
        );
        // Completions: no completion_tokens_details; hit + miss = prompt tokens always.
        let u = serde_json::to_value(UsageBody::new(5, 1, 9)).unwrap();
        assert!(u.get("completion_tokens_details").is_none());
        assert_eq!(u["prompt_cache_hit_tokens"], 5);
        assert_eq!(u["prompt_cache_miss_tokens"], 0);
        let u = UsageBody::new(5, 3, 0).with_reasoning(4);
        assert_eq!(u.completion_tokens_details.unwrap().reasoning_tokens, 3);
    }
}
