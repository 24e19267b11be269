//! Server-sent events for streamed completions. OpenAI's shape by default: each JSON chunk as
//! `data: {json}` plus a blank line, nothing else (no comments, no `event:` lines), ending
//! with `data: [DONE]`. The endpoint supplies the chunk shapes ([`ChunkFormat`]; Anthropic's
//! overrides the framing, the closing events and the idle `ping`); this module drives the
//! merged engine events, the usage chunk, the end of a stream that failed, and its close.
//! Dropping the response body (the client hung up) drops the engine receivers and so
//! cancels the requests.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use kaiyuan_engine::{Event, EventReceiver, Finished, TokenEvent, Usage};
use serde::Serialize;

use crate::api::response::{StreamError, StreamErrorObject, UsageBody};
use crate::error::ApiError;
use crate::generate::{self, Job};
use crate::log::RequestLog;

/// The chunks of one endpoint's stream, as serialized JSON.
pub trait ChunkFormat: Send + 'static {
    /// Chunks sent before any engine event (chat: each choice's role).
    fn opening(&mut self) -> Vec<String>;
    /// The chunks for one generated token: none if it carries nothing (text or logprobs),
    /// two when chat splits it into reasoning and answer text.
    fn token(&mut self, index: usize, token: &TokenEvent) -> Vec<String>;
    /// The last chunks of a choice: remaining text, the last with its finish reason.
    fn finish(&mut self, index: usize, text: &str, reason: &'static str) -> Vec<String>;
    /// The usage chunk (`choices: []`).
    fn usage(&mut self, usage: UsageBody) -> String;
    /// Generated reasoning tokens of all choices so far (for the request's usage record).
    fn reasoning_tokens(&self) -> usize {
        0
    }
    /// Sees a choice's `Finished` before [`ChunkFormat::finish`] (which stop string ended it).
    fn finished(&mut self, _index: usize, _finished: &Finished) {}
    /// The last chunks: OpenAI's error line if the stream failed, then `[DONE]`.
    fn closing(&mut self, failure: Option<&ApiError>) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(e) = failure {
            out.push(to_json(&StreamError {
                error: StreamErrorObject {
                    message: e.to_string(),
                    kind: e.error_type(),
                    param: None,
                    code: e.code().unwrap_or("error"),
                },
            }));
        }
        out.push("[DONE]".to_string());
        out
    }
    /// A chunk to send when no event came for [`PING_INTERVAL`] (none by default).
    fn ping(&mut self) -> Option<String> {
        None
    }
    /// A chunk as bytes on the wire (`data: …` by default).
    fn framed(&self, chunk: &str) -> Bytes {
        frame(chunk)
    }
}

/// How long a stream may stay silent (a long prefill) before [`ChunkFormat::ping`].
pub const PING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// `data: {json}\n\n`.
pub fn frame(json: &str) -> Bytes {
    let mut out = String::with_capacity(json.len() + 8);
    out.push_str("data: ");
    out.push_str(json);
    out.push_str("\n\n");
    Bytes::from(out)
}

pub fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("invariant: response chunks serialize")
}

struct Driver<F> {
    format: F,
    events: generate::Merged,
    jobs: Vec<Job>,
    usages: Vec<(usize, Usage)>,
    failure: Option<ApiError>,
    include_usage: bool,
    pending: VecDeque<Bytes>,
    done: bool,
    log: RequestLog,
}

impl<F: ChunkFormat> Driver<F> {
    fn on_event(&mut self, index: usize, event: Event) {
        self.log.event(&event);
        match event {
            Event::Scheduled { .. } => {}
            Event::Token(t) => {
                for json in self.format.token(index, &t) {
                    self.pending.push_back(self.format.framed(&json));
                }
            }
            Event::Finished(f) => {
                let reason = generate::finish_reason(&f.reason);
                self.log.finish(f.reason.as_str());
                self.log.first_token(f.time_to_first_token);
                if self.failure.is_none() {
                    self.failure = generate::failure(&f.reason);
                }
                self.usages.push((index, f.usage));
                self.format.finished(index, &f);
                for json in self.format.finish(index, &f.text, reason) {
                    self.pending.push_back(self.format.framed(&json));
                }
            }
        }
    }

    fn on_end(&mut self) {
        let usage = generate::total_usage(&self.jobs, &self.usages);
        self.log.usage(usage);
        self.log.reasoning_tokens(self.format.reasoning_tokens());
        if self.include_usage {
            let body = UsageBody::new(
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.cached_tokens,
            );
            let json = self.format.usage(body);
            self.pending.push_back(self.format.framed(&json));
        }
        let failure = self.failure.take();
        match &failure {
            None => self.log.status("200"),
            Some(e) => {
                self.log
                    .status(format!("200 stream_{}", e.code().unwrap_or("error")));
            }
        }
        for chunk in self.format.closing(failure.as_ref()) {
            self.pending.push_back(self.format.framed(&chunk));
        }
        self.done = true;
    }
}

/// The streamed response for `receivers` (already submitted).
pub fn respond<F: ChunkFormat>(
    mut format: F,
    receivers: Vec<(usize, EventReceiver)>,
    jobs: Vec<Job>,
    include_usage: bool,
    log: RequestLog,
) -> Response {
    let pending: VecDeque<Bytes> = format.opening().iter().map(|j| format.framed(j)).collect();
    let driver = Driver {
        format,
        events: generate::merge(receivers),
        jobs,
        usages: Vec::new(),
        failure: None,
        include_usage,
        pending,
        done: false,
        log,
    };
    let body = stream::unfold(driver, |mut d| async move {
        loop {
            if let Some(bytes) = d.pending.pop_front() {
                return Some((Ok::<Bytes, Infallible>(bytes), d));
            }
            if d.done {
                return None;
            }
            match tokio::time::timeout(PING_INTERVAL, d.events.next()).await {
                Ok(Some((index, event))) => d.on_event(index, event),
                Ok(None) => d.on_end(),
                Err(_) => {
                    if let Some(ping) = d.format.ping() {
                        let bytes = d.format.framed(&ping);
                        d.pending.push_back(bytes);
                    }
                }
            }
        }
    });
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_data_lines_with_a_blank_line() {
        assert_eq!(&frame("{\"a\":1}")[..], b"data: {\"a\":1}\n\n");
        assert_eq!(&frame("[DONE]")[..], b"data: [DONE]\n\n");
    }
}
