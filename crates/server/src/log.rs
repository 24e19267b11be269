//! One `tracing` event per API request (target `kaiyuan_server::request`, level info),
//! emitted when the request ends (for a stream: when the stream ends or the client hangs
//! up). The CLI's subscriber writes it to stderr, as text by default:
//!
//! `… INFO kaiyuan_server::request: req=chatcmpl-… endpoint=chat model=smollm2 status=200
//! finish=stop prompt=31 completion=12 cached=0 ttft_ms=41 duration_ms=380`
//!
//! or as one JSON object per line with the same fields (`--log-format json`). `user` (cut to
//! 64 characters) and `key` (a key id, never the key) appear when the request has them,
//! `ttft_ms` when a token came.
//!
//! A metered request's ticket rides on its line and is settled with the line's usage and
//! status when it is emitted, so every admitted request ends in exactly one usage record
//! (also one that failed, or whose client hung up), without the handlers doing anything.

use std::time::{Duration, Instant};

use kaiyuan_engine::{Event, Usage};
use kaiyuan_metering::Ticket;

/// Where request lines go: `RUST_LOG=kaiyuan_server::request=off` silences them.
pub const TARGET: &str = "kaiyuan_server::request";

/// A request's log line, emitted on drop.
pub struct RequestLog {
    fields: Option<Fields>,
}

struct Fields {
    id: String,
    endpoint: &'static str,
    model: String,
    user: Option<String>,
    status: String,
    finish: Vec<String>,
    usage: Usage,
    ttft: Option<Duration>,
    start: Instant,
    ticket: Option<Ticket>,
    /// Generated tokens of the reasoning block (chat), for the usage record.
    reasoning_tokens: usize,
}

impl RequestLog {
    pub fn new(endpoint: &'static str, id: String) -> RequestLog {
        RequestLog {
            fields: Some(Fields {
                id,
                endpoint,
                model: "-".into(),
                user: None,
                // Until told otherwise, the request ended because the client went away.
                status: "499 client_closed".into(),
                finish: Vec::new(),
                usage: Usage::default(),
                ttft: None,
                start: Instant::now(),
                ticket: None,
                reasoning_tokens: 0,
            }),
        }
    }

    fn with(&mut self, f: impl FnOnce(&mut Fields)) {
        if let Some(fields) = &mut self.fields {
            f(fields);
        }
    }

    /// The request's id (empty once detached).
    pub fn id(&self) -> &str {
        self.fields.as_ref().map_or("", |f| f.id.as_str())
    }

    /// The metering ticket of an admitted request, settled when the line is printed.
    pub fn meter(&mut self, ticket: Ticket) {
        self.with(|f| f.ticket = Some(ticket));
    }

    pub fn model(&mut self, name: &str) {
        self.with(|f| f.model = name.to_string());
    }

    /// The request's `user` field, cut to 64 characters (the formatter quotes and escapes
    /// it: Rust's `Debug` in text, a JSON string in JSON).
    pub fn user(&mut self, user: Option<&str>) {
        let user = user.map(|u| u.chars().take(64).collect::<String>());
        self.with(|f| f.user = user);
    }

    pub fn status(&mut self, status: impl Into<String>) {
        let status = status.into();
        self.with(|f| f.status = status);
    }

    pub fn finish(&mut self, reason: &str) {
        self.with(|f| f.finish.push(reason.to_string()));
    }

    pub fn usage(&mut self, usage: Usage) {
        self.with(|f| f.usage = usage);
    }

    /// The reasoning tokens among the completion tokens (recorded in the usage record).
    pub fn reasoning_tokens(&mut self, n: usize) {
        self.with(|f| f.reasoning_tokens = n);
    }

    /// Counts a streamed event, so that a stream the client abandons is logged (and metered)
    /// with the tokens it got: the prefix-cache hits and each generated token. The usage of
    /// a stream that ends replaces these counts.
    pub fn event(&mut self, event: &Event) {
        self.with(|f| match event {
            Event::Scheduled { cached_tokens } => {
                f.usage.cached_tokens = f.usage.cached_tokens.max(*cached_tokens);
            }
            Event::Token(_) => f.usage.completion_tokens += 1,
            Event::Finished(_) => {}
        });
    }

    pub fn prompt_tokens(&mut self, n: usize) {
        self.with(|f| f.usage.prompt_tokens = n);
    }

    pub fn first_token(&mut self, ttft: Option<Duration>) {
        self.with(|f| {
            f.ttft = match (f.ttft, ttft) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        });
    }

    /// Moves the line into a new owner (a response stream); `self` then prints nothing.
    pub fn detach(&mut self) -> RequestLog {
        RequestLog {
            fields: self.fields.take(),
        }
    }

    /// Emits the line as a `tracing` event (target [`TARGET`], level info).
    fn emit(f: &Fields) {
        let finish = if f.finish.is_empty() {
            "-".to_string()
        } else {
            f.finish.join(",")
        };
        tracing::info!(
            target: TARGET,
            req = %f.id,
            endpoint = %f.endpoint,
            model = %f.model,
            user = f.user.as_deref(),
            key = f.ticket.as_ref().map(|t| tracing::field::display(t.key_id())),
            status = %f.status,
            finish = %finish,
            prompt = f.usage.prompt_tokens,
            completion = f.usage.completion_tokens,
            cached = f.usage.cached_tokens,
            ttft_ms = f.ttft.map(|d| d.as_millis() as u64),
            duration_ms = f.start.elapsed().as_millis() as u64,
        );
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        if let Some(f) = &mut self.fields {
            Self::emit(f);
            if let Some(ticket) = f.ticket.take() {
                crate::metering::settle(ticket, &f.usage, f.reasoning_tokens, &f.status);
            }
        }
    }
}
