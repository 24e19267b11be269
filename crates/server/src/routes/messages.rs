//! Anthropic's Messages API: `POST /v1/messages` (whole or streamed) and
//! `/v1/messages/count_tokens`, a second front end over the chat pipeline
//! (`conversation.rs`): the request is read into the same `ChatParams` (`api/anthropic.rs`),
//! and the output's reasoning and tool calls go through the same splitter and parsers, shaped
//! as content blocks: `thinking` (with a `signature`), `text`, `tool_use` (`toolu_…` ids,
//! `input` objects). Errors get Anthropic's shape through [`anthropic_errors`].

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use kaiyuan_engine::{FinishReason, Finished, TokenEvent};
use serde_json::{json, Value};

use super::common::{conclude, into_response, new_id, resolve_model};
use super::conversation::{self, Started};
use crate::api::anthropic;
use crate::api::reasoning::ReasoningTracker;
use crate::api::response::UsageBody;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::generate;
use crate::log::RequestLog;
use crate::sse::{self, to_json, ChunkFormat};
use crate::state::AppState;
use crate::tools::stream::{ToolCallDelta, ToolStream};

/// `POST /v1/messages`.
pub async fn handle(
    State(state): State<Arc<AppState>>,
    body: Result<ApiJson, ApiError>,
) -> Response {
    let id = new_id("msg").replacen("msg-", "msg_", 1);
    let mut log = RequestLog::new("messages", id.clone());
    let result = async {
        let ApiJson(body) = body?;
        let params = anthropic::messages(&body)?;
        let model = resolve_model(
            &state,
            params.model.as_deref(),
            params.gen.user.as_deref(),
            &mut log,
        )
        .await?;
        // The model's default sampling fills the fields the request left out.
        let params = if model.sampling_defaults.is_empty() {
            params
        } else {
            anthropic::messages_with_defaults(&body, &model.sampling_defaults)?
        };
        let gen = params.gen.clone();
        let result = async {
            let Started {
                jobs,
                receivers,
                starts_in_reasoning,
                plan,
            } = conversation::start(&model, &state, params, &mut log).await?;
            let shape = Shape {
                id,
                model: model.name.clone(),
                stops: gen.stop.clone(),
                tracker: ReasoningTracker::new(&model.reasoning.tags, starts_in_reasoning),
                tools: plan.as_ref().map(ToolStream::for_plan),
            };
            if gen.stream {
                let prompt = jobs.iter().map(|j| j.prompt.len()).sum();
                let format = MessageStream::new(shape, prompt);
                return Ok(sse::respond(format, receivers, jobs, true, log.detach()));
            }
            let outcomes = generate::collect(receivers).await;
            let usage = conclude(&jobs, &outcomes, &mut log)?;
            let o = outcomes
                .into_iter()
                .next()
                .ok_or_else(|| ApiError::Engine("the engine returned no choice".into()))?;
            log.status("200");
            let (body, reasoning_tokens) = whole(shape, o, usage);
            log.reasoning_tokens(reasoning_tokens);
            Ok(axum::Json(body).into_response())
        }
        .await;
        if let Err(e) = &result {
            model.counters.count(e);
        }
        result
    }
    .await;
    into_response(result, &mut log)
}

/// `POST /v1/messages/count_tokens`: the prompt's tokens, as `/v1/messages` would render it.
pub async fn count_tokens(
    State(state): State<Arc<AppState>>,
    body: Result<ApiJson, ApiError>,
) -> Response {
    let mut log = RequestLog::new("count_tokens", new_id("req"));
    let result = async {
        let ApiJson(body) = body?;
        let mut params = anthropic::count_tokens(&body)?;
        let model = resolve_model(&state, params.model.as_deref(), None, &mut log).await?;
        let (ids, _, _) = conversation::prompt(&model, &state, &mut params).await?;
        log.status("200");
        Ok(axum::Json(json!({"input_tokens": ids.len()})).into_response())
    }
    .await;
    into_response(result, &mut log)
}

/// What shapes one reply: its id and model, the stop strings (for `stop_sequence`), and the
/// reasoning splitter and tool parser its text goes through.
struct Shape {
    id: String,
    model: String,
    stops: Vec<String>,
    tracker: ReasoningTracker,
    tools: Option<ToolStream>,
}

/// A thinking block's signature. Kaiyuan does not verify thinking blocks sent back (open
/// models see them as text), so this only marks where a block came from.
fn signature(id: &str) -> String {
    format!("kaiyuan:{id}")
}

fn tool_use_id(call_id: &str) -> String {
    call_id.replacen("call_", "toolu_", 1)
}

/// `stop_reason` and `stop_sequence` of a reply.
fn stop_reason(f: &Finished, stops: &[String], called: bool) -> (&'static str, Option<String>) {
    match (&f.reason, f.stop_index) {
        (FinishReason::Stop, _) if called => ("tool_use", None),
        (FinishReason::Stop, Some(i)) => ("stop_sequence", stops.get(i).cloned()),
        (FinishReason::Length, _) => ("max_tokens", None),
        _ => ("end_turn", None),
    }
}

fn usage_json(usage: &UsageBody) -> Value {
    let cached = usage.prompt_tokens_details.cached_tokens;
    json!({
        "input_tokens": usage.prompt_tokens - cached,
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    })
}

/// The whole reply, and its reasoning tokens.
fn whole(
    mut shape: Shape,
    o: generate::ChoiceOutcome,
    usage: kaiyuan_engine::Usage,
) -> (Value, usize) {
    let mut thinking = String::new();
    let mut text = String::new();
    for t in &o.tokens {
        let d = shape.tracker.token(&t.text);
        thinking.push_str(&d.reasoning);
        text.push_str(&d.content);
    }
    for d in [shape.tracker.text(&o.finished.text), shape.tracker.finish()] {
        thinking.push_str(&d.reasoning);
        text.push_str(&d.content);
    }
    let mut blocks = Vec::new();
    if shape.tracker.saw_reasoning() {
        blocks.push(json!({"type": "thinking", "thinking": thinking,
                           "signature": signature(&shape.id)}));
    }
    let mut calls = Vec::new();
    if let Some(tools) = &mut shape.tools {
        let mut t = tools.push(&text).content;
        t.push_str(&tools.finish().content);
        text = t;
        calls = tools.complete_calls();
    }
    let text = if calls.is_empty() {
        text
    } else {
        text.trim().to_string()
    };
    if !text.is_empty() || (blocks.is_empty() && calls.is_empty()) {
        blocks.push(json!({"type": "text", "text": text}));
    }
    for c in &calls {
        let input: Value = serde_json::from_str(&c.function.arguments).unwrap_or(json!({}));
        blocks.push(json!({"type": "tool_use", "id": tool_use_id(&c.id),
                           "name": c.function.name, "input": input}));
    }
    let (reason, sequence) = stop_reason(&o.finished, &shape.stops, !calls.is_empty());
    let usage = UsageBody::new(
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.cached_tokens,
    );
    let body = json!({
        "id": shape.id, "type": "message", "role": "assistant", "model": shape.model,
        "content": blocks, "stop_reason": reason, "stop_sequence": sequence,
        "usage": usage_json(&usage),
    });
    (body, shape.tracker.reasoning_tokens())
}

/// The block a stream has open.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Open {
    None,
    Thinking,
    Text,
    /// A tool call, by its OpenAI index.
    Tool(usize),
}

/// A streamed reply as Anthropic's events (each chunk is a whole `event:` + `data:` frame).
struct MessageStream {
    shape: Shape,
    prompt_tokens: usize,
    open: Open,
    /// The index of the next content block.
    next_block: usize,
    stop: (&'static str, Option<String>),
    finished: Option<Finished>,
}

impl MessageStream {
    fn new(shape: Shape, prompt_tokens: usize) -> MessageStream {
        MessageStream {
            shape,
            prompt_tokens,
            open: Open::None,
            next_block: 0,
            stop: ("end_turn", None),
            finished: None,
        }
    }

    fn event(kind: &str, data: Value) -> String {
        format!("event: {kind}\ndata: {}\n\n", to_json(&data))
    }

    fn close(&mut self, out: &mut Vec<String>) {
        if self.open == Open::None {
            return;
        }
        let index = self.next_block - 1;
        if self.open == Open::Thinking {
            out.push(Self::event(
                "content_block_delta",
                json!({
                "type": "content_block_delta", "index": index,
                "delta": {"type": "signature_delta", "signature": signature(&self.shape.id)}}),
            ));
        }
        out.push(Self::event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
        self.open = Open::None;
    }

    fn start(&mut self, open: Open, block: Value, out: &mut Vec<String>) {
        self.close(out);
        out.push(Self::event(
            "content_block_start",
            json!({
            "type": "content_block_start", "index": self.next_block, "content_block": block}),
        ));
        self.next_block += 1;
        self.open = open;
    }

    fn delta(&self, delta: Value) -> String {
        Self::event(
            "content_block_delta",
            json!({
            "type": "content_block_delta", "index": self.next_block - 1, "delta": delta}),
        )
    }

    /// Reasoning and answer text (already split) into events.
    fn emit(&mut self, thinking: &str, text: &str, last: bool, out: &mut Vec<String>) {
        if !thinking.is_empty() {
            if self.open != Open::Thinking {
                let block = json!({"type": "thinking", "thinking": "", "signature": ""});
                self.start(Open::Thinking, block, out);
            }
            out.push(self.delta(json!({"type": "thinking_delta", "thinking": thinking})));
        }
        let (text, calls) = match &mut self.shape.tools {
            None => (text.to_string(), Vec::new()),
            Some(tools) => {
                let mut d = tools.push(text);
                if last {
                    let rest = tools.finish();
                    d.content.push_str(&rest.content);
                    d.calls.extend(rest.calls);
                }
                (d.content, d.calls)
            }
        };
        // Whitespace between calls is not a text block of its own.
        let stray = self.open == Open::None && text.trim().is_empty() && self.called();
        if !text.is_empty() && !stray {
            if self.open != Open::Text {
                self.start(Open::Text, json!({"type": "text", "text": ""}), out);
            }
            out.push(self.delta(json!({"type": "text_delta", "text": text})));
        }
        for call in calls {
            self.call(call, out);
        }
    }

    fn called(&self) -> bool {
        self.shape.tools.as_ref().is_some_and(ToolStream::called)
    }

    fn call(&mut self, d: ToolCallDelta, out: &mut Vec<String>) {
        if let Some(id) = &d.id {
            let block = json!({"type": "tool_use", "id": tool_use_id(id),
                               "name": d.function.name, "input": {}});
            self.start(Open::Tool(d.index), block, out);
        }
        if !d.function.arguments.is_empty() && self.open == Open::Tool(d.index) {
            out.push(self.delta(json!({"type": "input_json_delta",
                                       "partial_json": d.function.arguments})));
        }
    }
}

impl ChunkFormat for MessageStream {
    fn opening(&mut self) -> Vec<String> {
        vec![Self::event(
            "message_start",
            json!({"type": "message_start", "message": {
            "id": self.shape.id, "type": "message", "role": "assistant",
            "model": self.shape.model, "content": [], "stop_reason": null,
            "stop_sequence": null,
            "usage": {"input_tokens": self.prompt_tokens, "output_tokens": 0,
                      "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}}}),
        )]
    }

    fn token(&mut self, _index: usize, token: &TokenEvent) -> Vec<String> {
        let d = self.shape.tracker.token(&token.text);
        let mut out = Vec::new();
        self.emit(&d.reasoning, &d.content, false, &mut out);
        out
    }

    fn finished(&mut self, _index: usize, finished: &Finished) {
        self.finished = Some(finished.clone());
    }

    fn finish(&mut self, _index: usize, text: &str, _reason: &'static str) -> Vec<String> {
        let mut d = self.shape.tracker.text(text);
        let rest = self.shape.tracker.finish();
        d.reasoning.push_str(&rest.reasoning);
        d.content.push_str(&rest.content);
        let mut out = Vec::new();
        self.emit(&d.reasoning, &d.content, true, &mut out);
        self.close(&mut out);
        if let Some(f) = &self.finished {
            self.stop = stop_reason(f, &self.shape.stops, self.called());
        }
        out
    }

    fn usage(&mut self, usage: UsageBody) -> String {
        let (reason, sequence) = self.stop.clone();
        Self::event(
            "message_delta",
            json!({"type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": sequence},
            "usage": usage_json(&usage)}),
        )
    }

    fn closing(&mut self, failure: Option<&ApiError>) -> Vec<String> {
        match failure {
            None => vec![Self::event("message_stop", json!({"type": "message_stop"}))],
            Some(e) => vec![Self::event(
                "error",
                json!({"type": "error", "error": {
                "type": error_type(e.status()), "message": e.to_string()}}),
            )],
        }
    }

    fn reasoning_tokens(&self) -> usize {
        self.shape.tracker.reasoning_tokens()
    }

    fn ping(&mut self) -> Option<String> {
        Some(Self::event("ping", json!({"type": "ping"})))
    }

    fn framed(&self, chunk: &str) -> Bytes {
        Bytes::from(chunk.to_string())
    }
}

/// Anthropic's error type for a status.
fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 415 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

/// Middleware of the Anthropic routes: every error body (the shared layers answer in OpenAI's
/// shape) becomes `{"type": "error", "error": {"type", "message"}}` with the same status and
/// headers, and every response carries a `request-id`.
pub async fn anthropic_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let (mut parts, body) = response.into_parts();
    let request_id = new_id("req").replacen("req-", "req_", 1);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        parts
            .headers
            .insert(HeaderName::from_static("request-id"), v);
    }
    if !parts.status.is_client_error() && !parts.status.is_server_error() {
        return Response::from_parts(parts, body);
    }
    let bytes = to_bytes(body, 1 << 20).await.unwrap_or_default();
    let message = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
    let status = parts.status;
    let body = to_json(&json!({"type": "error",
        "error": {"type": error_type(status), "message": message}}));
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}
