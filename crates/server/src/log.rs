//! One line on stderr per API request, written when the request ends (for a stream: when
//! the stream ends or the client hangs up):
//!
//! `req=chatcmpl-… endpoint=chat model=smollm2 status=200 finish=stop prompt=31
//! completion=12 cached=0 ttft_ms=41 duration_ms=380`
//!
//! A metered request's ticket rides on its line and is settled with the line's usage and
//! status when it is printed, so every admitted request ends in exactly one usage record
//! (also one that failed, or whose client hung up), without the handlers doing anything.

use std::time::{Duration, Instant};

use kaiyuan_engine::{Event, Usage};
use kaiyuan_metering::Ticket;

/// A request's log line, printed on drop.
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

    /// The request's `user` field, shown escaped and cut to 64 characters.
    pub fn user(&mut self, user: Option<&str>) {
        let user = user.map(|u| {
            u.chars()
                .take(64)
                .collect::<String>()
                .escape_debug()
                .to_string()
        });
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

    fn line(f: &Fields) -> String {
        let finish = if f.finish.is_empty() {
            "-".to_string()
        } else {
            f.finish.join(",")
        };
        let ttft = f
            .ttft
            .map_or("-".to_string(), |d| d.as_millis().to_string());
        let mut user = f
            .user
            .as_ref()
            .map_or(String::new(), |u| format!(" user=\"{u}\""));
        if let Some(t) = &f.ticket {
            user.push_str(&format!(" key={}", t.key_id()));
        }
        format!(
            "req={} endpoint={} model={}{user} status={} finish={} prompt={} completion={} cached={} ttft_ms={} duration_ms={}",
            f.id,
            f.endpoint,
            f.model,
            f.status,
            finish,
            f.usage.prompt_tokens,
            f.usage.completion_tokens,
            f.usage.cached_tokens,
            ttft,
            f.start.elapsed().as_millis()
        )
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        if let Some(f) = &mut self.fields {
            eprintln!("{}", Self::line(f));
            if let Some(ticket) = f.ticket.take() {
                crate::metering::settle(ticket, &f.usage, f.reasoning_tokens, &f.status);
            }
        }
    }
}
