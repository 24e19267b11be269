//! `POST /v1/chat/completions`: validate, render the conversation with the model's chat
//! template and tokenize it (on the blocking pool), submit one engine request per choice,
//! then answer whole or as a stream of `chat.completion.chunk`s. With
//! `--reasoning-format deepseek` (the default) each choice's output goes through a
//! [`ReasoningTracker`]: the `<think>` block becomes `reasoning_content` (streamed before any
//! `content`) and its tokens `usage.completion_tokens_details.reasoning_tokens`. With tools
//! (`crate::tools`) the answer then goes through the model family's tool-call parser: calls
//! become `tool_calls` (whole, or as deltas) and the choice finishes with `tool_calls`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use kaiyuan_engine::TokenEvent;
use kaiyuan_tokenizer::Tokenizer;

use super::common::{conclude, new_id, SYSTEM_FINGERPRINT};
use super::conversation::{self, Started};
use crate::api::logprobs;
use crate::api::reasoning::{self, ReasoningFormat, ReasoningTracker};
use crate::api::response::{
    AssistantMessage, ChatChoice, ChatChunk, ChatCompletion, ChatLogprobs, ChunkChoice, Delta,
    Header, UsageBody,
};
use crate::api::validate::{self, ChatParams};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::generate::{self, Job};
use crate::log::RequestLog;
use crate::routes::common::{into_response, resolve_model};
use crate::sse::{self, to_json, ChunkFormat};
use crate::state::{unix_now, AppState, ServedModel};
use crate::tools::stream::{ToolDeltas, ToolStream};
use crate::tools::ToolPlan;

pub async fn handle(
    State(state): State<Arc<AppState>>,
    body: Result<ApiJson, ApiError>,
) -> Response {
    let id = new_id("chatcmpl");
    let mut log = RequestLog::new("chat", id.clone());
    let result = async {
        let ApiJson(body) = body?;
        let params = validate::chat(&body)?;
        let model = resolve_model(
            &state,
            params.model.as_deref(),
            params.gen.user.as_deref(),
            &mut log,
        )
        .await?;
        // The model's default sampling fills the fields the request left out.
        let params = match model.with_sampling_defaults(&body) {
            Some(body) => validate::chat(&body)?,
            None => params,
        };
        let result = run(&model, &state, params, id, &mut log).await;
        if let Err(e) = &result {
            model.counters.count(e);
        }
        result
    }
    .await;
    into_response(result, &mut log)
}

async fn run(
    model: &Arc<ServedModel>,
    state: &AppState,
    params: ChatParams,
    id: String,
    log: &mut RequestLog,
) -> Result<Response, ApiError> {
    let gen = params.gen.clone();
    let Started {
        jobs,
        receivers,
        starts_in_reasoning,
        plan,
    } = conversation::start(model, state, params, log).await?;
    let config = &state.config;
    let header = Header {
        id,
        object: "chat.completion",
        created: unix_now(),
        model: model.name.clone(),
        system_fingerprint: SYSTEM_FINGERPRINT,
    };
    let want_logprobs = gen.sampling.logprobs.is_some();
    let split = config.reasoning_format == ReasoningFormat::Deepseek;
    if gen.stream {
        let format = ChatFormat {
            header: Header {
                object: "chat.completion.chunk",
                ..header
            },
            n: jobs.len(),
            include_usage: gen.include_usage,
            logprobs: want_logprobs.then(|| Arc::clone(&model.tokenizer)),
            trackers: (0..jobs.len())
                .map(|_| ReasoningTracker::new(&model.reasoning.tags, starts_in_reasoning))
                .collect(),
            split,
            tool_streams: (0..jobs.len())
                .map(|_| plan.as_ref().map(ToolStream::for_plan))
                .collect(),
        };
        return Ok(sse::respond(
            format,
            receivers,
            jobs,
            gen.include_usage,
            log.detach(),
        ));
    }
    let outcomes = generate::collect(receivers).await;
    let reasoning = (starts_in_reasoning, split);
    whole(
        model,
        header,
        &jobs,
        outcomes,
        want_logprobs,
        reasoning,
        plan.as_ref(),
        log,
    )
}

/// `(starts_in_reasoning, split)`: whether the prompt left `<think>` open, and whether
/// reasoning is split out of `content` (its tokens are counted either way).
#[allow(clippy::too_many_arguments)]
fn whole(
    model: &ServedModel,
    header: Header,
    jobs: &[Job],
    outcomes: Vec<generate::ChoiceOutcome>,
    want_logprobs: bool,
    (starts_in_reasoning, split): (bool, bool),
    plan: Option<&ToolPlan>,
    log: &mut RequestLog,
) -> Result<Response, ApiError> {
    let usage = conclude(jobs, &outcomes, log)?;
    let mut reasoning_tokens = 0;
    let choices = outcomes
        .into_iter()
        .map(|o| {
            let tokens = o.tokens.iter().map(|t| t.text.as_str());
            let (r, c, n) = reasoning::split_whole(
                &model.reasoning.tags,
                starts_in_reasoning,
                tokens,
                &o.finished.text,
            );
            reasoning_tokens += n;
            let (reasoning_content, content) = if split { (r, c) } else { (None, o.text) };
            let mut finish_reason = generate::finish_reason(&o.finished.reason);
            let (content, tool_calls) = match plan {
                None => (Some(content), None),
                Some(p) => {
                    let mut stream = ToolStream::for_plan(p);
                    let mut text = stream.push(&content).content;
                    text.push_str(&stream.finish().content);
                    let calls = stream.complete_calls();
                    if calls.is_empty() {
                        (Some(text), None)
                    } else {
                        if finish_reason == "stop" {
                            finish_reason = "tool_calls";
                        }
                        let text = text.trim();
                        ((!text.is_empty()).then(|| text.to_string()), Some(calls))
                    }
                }
            };
            ChatChoice {
                index: o.index,
                logprobs: want_logprobs.then(|| logprobs::chat(&model.tokenizer, &o.tokens)),
                finish_reason,
                message: AssistantMessage {
                    role: "assistant",
                    content,
                    reasoning_content,
                    tool_calls,
                    refusal: None,
                },
            }
        })
        .collect();
    log.status("200");
    log.reasoning_tokens(reasoning_tokens);
    let body = ChatCompletion {
        header,
        choices,
        usage: UsageBody::new(
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cached_tokens,
        )
        .with_reasoning(reasoning_tokens),
    };
    Ok(axum::Json(body).into_response())
}

/// The chunks of a chat stream.
struct ChatFormat {
    header: Header,
    n: usize,
    include_usage: bool,
    /// The tokenizer, when the request asked for logprobs.
    logprobs: Option<Arc<Tokenizer>>,
    /// Per choice: its reasoning splitter (which also counts reasoning tokens).
    trackers: Vec<ReasoningTracker>,
    /// Whether reasoning is split out of `content` (`--reasoning-format deepseek`).
    split: bool,
    /// Per choice: its tool-call parser, when the request offers tools.
    tool_streams: Vec<Option<ToolStream>>,
}

impl ChatFormat {
    fn chunk(&self, choices: Vec<ChunkChoice>, usage: Option<UsageBody>) -> String {
        to_json(&ChatChunk {
            header: self.header.clone(),
            choices,
            usage: self.include_usage.then_some(usage),
        })
    }

    /// `text` as (reasoning, content): split by choice `index`'s tracker, or all content.
    fn split(&mut self, index: usize, text: &str, is_token: bool, last: bool) -> (String, String) {
        let split = self.split;
        let Some(tracker) = self.trackers.get_mut(index) else {
            return (String::new(), text.to_string());
        };
        let mut delta = if is_token {
            tracker.token(text)
        } else {
            tracker.text(text)
        };
        if last {
            let rest = tracker.finish();
            delta.reasoning.push_str(&rest.reasoning);
            delta.content.push_str(&rest.content);
        }
        if !split {
            return (String::new(), text.to_string());
        }
        delta.into_parts()
    }

    /// The chunks of one piece of output: reasoning first, then content (the first chunk
    /// carries `logprobs`); an empty content chunk when there is only logprobs to send.
    fn deltas(
        &self,
        index: usize,
        (reasoning, content): (String, String),
        tool_calls: Vec<crate::tools::stream::ToolCallDelta>,
        mut logprobs: Option<ChatLogprobs>,
    ) -> Vec<String> {
        let content_chunk = !content.is_empty()
            || (reasoning.is_empty() && tool_calls.is_empty() && logprobs.is_some());
        let mut chunks = Vec::new();
        let mut send = |delta: Delta, logprobs: Option<ChatLogprobs>| {
            let choice = ChunkChoice {
                index,
                delta,
                logprobs,
                finish_reason: None,
            };
            chunks.push(self.chunk(vec![choice], None));
        };
        if !reasoning.is_empty() {
            let delta = Delta {
                reasoning_content: Some(reasoning),
                ..Delta::default()
            };
            send(delta, logprobs.take());
        }
        if content_chunk {
            let delta = Delta {
                content: Some(content),
                ..Delta::default()
            };
            send(delta, logprobs.take());
        }
        if !tool_calls.is_empty() {
            let delta = Delta {
                tool_calls: Some(tool_calls),
                ..Delta::default()
            };
            send(delta, logprobs.take());
        }
        chunks
    }

    /// Content through choice `index`'s tool-call parser (as is without tools); `last` ends it.
    fn tool_deltas(&mut self, index: usize, content: String, last: bool) -> ToolDeltas {
        let Some(Some(stream)) = self.tool_streams.get_mut(index) else {
            return ToolDeltas {
                content,
                calls: Vec::new(),
            };
        };
        let mut out = stream.push(&content);
        if last {
            let rest = stream.finish();
            out.content.push_str(&rest.content);
            out.calls.extend(rest.calls);
        }
        out
    }

    /// Whether choice `index` made a complete tool call.
    fn called(&self, index: usize) -> bool {
        matches!(self.tool_streams.get(index), Some(Some(s)) if s.called())
    }
}

impl ChunkFormat for ChatFormat {
    fn opening(&mut self) -> Vec<String> {
        (0..self.n)
            .map(|index| {
                let choice = ChunkChoice {
                    index,
                    delta: Delta {
                        role: Some("assistant"),
                        content: Some(String::new()),
                        ..Delta::default()
                    },
                    logprobs: None,
                    finish_reason: None,
                };
                self.chunk(vec![choice], None)
            })
            .collect()
    }

    fn token(&mut self, index: usize, token: &TokenEvent) -> Vec<String> {
        let logprobs = self
            .logprobs
            .as_ref()
            .map(|tok| logprobs::chat(tok, std::slice::from_ref(token)));
        let (reasoning, content) = self.split(index, &token.text, true, false);
        let t = self.tool_deltas(index, content, false);
        self.deltas(index, (reasoning, t.content), t.calls, logprobs)
    }

    fn finish(&mut self, index: usize, text: &str, reason: &'static str) -> Vec<String> {
        let (reasoning, content) = self.split(index, text, false, true);
        let mut t = self.tool_deltas(index, content, true);
        // Text before calls comes before them; otherwise the last text rides the final chunk.
        let (before, calls) = if t.calls.is_empty() {
            (String::new(), Vec::new())
        } else {
            (std::mem::take(&mut t.content), std::mem::take(&mut t.calls))
        };
        let mut chunks = self.deltas(index, (reasoning, before), calls, None);
        let reason = if reason == "stop" && self.called(index) {
            "tool_calls"
        } else {
            reason
        };
        let choice = ChunkChoice {
            index,
            delta: Delta {
                content: (!t.content.is_empty()).then_some(t.content),
                ..Delta::default()
            },
            logprobs: None,
            finish_reason: Some(reason),
        };
        chunks.push(self.chunk(vec![choice], None));
        chunks
    }

    fn usage(&mut self, usage: UsageBody) -> String {
        let reasoning_tokens = self.reasoning_tokens();
        self.chunk(Vec::new(), Some(usage.with_reasoning(reasoning_tokens)))
    }

    fn reasoning_tokens(&self) -> usize {
        self.trackers
            .iter()
            .map(ReasoningTracker::reasoning_tokens)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(split: bool, starts_in_reasoning: bool) -> ChatFormat {
        ChatFormat {
            header: Header {
                id: "chatcmpl-x".into(),
                object: "chat.completion.chunk",
                created: 0,
                model: "m".into(),
                system_fingerprint: SYSTEM_FINGERPRINT,
            },
            n: 1,
            include_usage: true,
            logprobs: None,
            trackers: vec![ReasoningTracker::new(
                &kaiyuan_chat::ThinkTags::default(),
                starts_in_reasoning,
            )],
            split,
            tool_streams: vec![None],
        }
    }

    fn token(text: &str) -> TokenEvent {
        TokenEvent {
            id: 0,
            text: text.into(),
            logprob: None,
            top_logprobs: Vec::new(),
        }
    }

    /// The deltas of every chunk, as (reasoning_content, content) JSON values.
    fn deltas(chunks: &[String]) -> Vec<(serde_json::Value, serde_json::Value)> {
        chunks
            .iter()
            .map(|c| {
                let v: serde_json::Value = serde_json::from_str(c).expect("json");
                let d = &v["choices"][0]["delta"];
                (d["reasoning_content"].clone(), d["content"].clone())
            })
            .collect()
    }

    #[test]
    fn a_token_across_the_close_tag_streams_reasoning_then_content() {
        let mut f = format(true, true);
        let mut chunks = f.token(0, &token("Hm"));
        chunks.extend(f.token(0, &token(".</think>\n\nYes")));
        chunks.extend(f.finish(0, "!", "stop"));
        let null = serde_json::Value::Null;
        assert_eq!(
            deltas(&chunks),
            vec![
                ("Hm".into(), null.clone()),
                (".".into(), null.clone()),
                (null.clone(), "Yes".into()),
                (null.clone(), "!".into()),
            ]
        );
        let usage: serde_json::Value =
            serde_json::from_str(&f.usage(UsageBody::new(9, 3, 0))).expect("json");
        assert_eq!(
            usage["usage"]["completion_tokens_details"]["reasoning_tokens"],
            2
        );
    }

    #[test]
    fn reasoning_format_none_streams_the_tags_as_content() {
        let mut f = format(false, true);
        let mut chunks = f.token(0, &token("Hm</think>"));
        chunks.extend(f.finish(0, "Yes", "stop"));
        let null = serde_json::Value::Null;
        assert_eq!(
            deltas(&chunks),
            vec![(null.clone(), "Hm</think>".into()), (null, "Yes".into())]
        );
    }
}
