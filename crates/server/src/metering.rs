//! The server's side of the metering layer: who is calling (the key a request carries, set
//! by `auth.rs` for the duration of the handler as a task-local [`KeyContext`]), admission
//! (one call where a generation request knows its prompt and `max_tokens`: [`admit`]), the
//! settlement of what it used (from its [`RequestLog`] when that ends: [`settlement`]), and
//! OpenAI's `x-ratelimit-*` headers. Requests without an issued key (no metering configured,
//! a static `--api-key`, the admin key) pass unmetered.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use kaiyuan_engine::Usage;
use kaiyuan_metering::{Admission, AuthKey, Meter, RateInfo, Refusal, Settlement};

use crate::error::ApiError;
use crate::generate::Job;
use crate::log::RequestLog;
use crate::state::ServedModel;

/// Metering as configured: the database and the admin key.
#[derive(Clone)]
pub struct MeteringConfig {
    pub meter: Meter,
    /// The key of the admin API (`--admin-key`, `--admin-key-file`, `KAIYUAN_ADMIN_KEY`).
    pub admin_key: String,
}

impl std::fmt::Debug for MeteringConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteringConfig")
            .field("backend", &self.meter.backend())
            .field("admin_key", &"<redacted>")
            .finish()
    }
}

/// The issued key of the request being handled.
pub struct KeyContext {
    pub meter: Meter,
    pub key: AuthKey,
    /// Set at admission: the rate-limit state for the response's headers.
    rate: Mutex<Option<RateInfo>>,
    /// Whether a request was admitted (its usage must be committed before it is answered).
    admitted: Mutex<bool>,
}

impl KeyContext {
    pub fn new(meter: Meter, key: AuthKey) -> KeyContext {
        KeyContext {
            meter,
            key,
            rate: Mutex::new(None),
            admitted: Mutex::new(false),
        }
    }

    pub fn take_rate(&self) -> Option<RateInfo> {
        self.rate.lock().ok().and_then(|mut r| r.take())
    }

    pub fn was_admitted(&self) -> bool {
        self.admitted.lock().is_ok_and(|a| *a)
    }
}

tokio::task_local! {
    static CURRENT: Arc<KeyContext>;
}

/// Runs `fut` (a handler) as the request of `ctx`'s key.
pub async fn scope<F: std::future::Future>(ctx: Arc<KeyContext>, fut: F) -> F::Output {
    CURRENT.scope(ctx, fut).await
}

/// The calling key, if the request carries an issued one.
pub fn current() -> Option<Arc<KeyContext>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Refuses (403 `model_not_allowed`) a model the calling key may not use, before anything is
/// done for the request: in particular before the model is loaded for it, so a key cannot
/// load (and make room for) a model it may not use. A no-op without a key.
pub fn check_model_allowed(model: &str) -> Result<(), ApiError> {
    match current() {
        Some(ctx) if !ctx.key.allows(model) => Err(refusal(Refusal::ModelNotAllowed(model.into()))),
        _ => Ok(()),
    }
}

/// Admits a generation request of the calling key for `model` (a no-op without one):
/// reserves its worst case (each prompt once, every choice's `max_tokens`) and counts it
/// against the key's limits; the ticket rides on `log` and is settled when the request
/// ends. Refusals are 403 (model not allowed), 429 (budget, rate), 401 (key revoked since).
pub async fn admit(
    model: &ServedModel,
    jobs: &[Job],
    log: &mut RequestLog,
) -> Result<(), ApiError> {
    let Some(ctx) = current() else {
        return Ok(());
    };
    let mut prompt_tokens = 0u64;
    let mut seen = Vec::new();
    for j in jobs {
        if !seen.contains(&j.prompt_index) {
            seen.push(j.prompt_index);
            prompt_tokens += j.prompt.len() as u64;
        }
    }
    let admission = Admission {
        key: &ctx.key,
        model: &model.name,
        request_id: log.id(),
        prompt_tokens,
        max_completion_tokens: jobs.iter().map(|j| j.max_tokens as u64).sum(),
    };
    let ticket = ctx
        .meter
        .admit(admission, kaiyuan_metering::now_ms())
        .await
        .map_err(refusal)?;
    if let Ok(mut r) = ctx.rate.lock() {
        *r = Some(ticket.rate.clone());
    }
    if let Ok(mut a) = ctx.admitted.lock() {
        *a = true;
    }
    log.meter(ticket);
    Ok(())
}

fn refusal(r: Refusal) -> ApiError {
    match r {
        Refusal::ModelNotAllowed(model) => ApiError::Forbidden {
            code: "model_not_allowed",
            message: format!("this API key may not use the model `{model}`"),
        },
        Refusal::InsufficientQuota {
            remaining_nano,
            needed_nano,
        } => ApiError::InsufficientQuota(format!(
            "this API key's budget is exhausted: {:.9} USD remain (less what requests in flight reserved), and this request may cost up to {:.9} USD (its prompt plus max_tokens); lower max_tokens or ask for a larger budget",
            kaiyuan_metering::nano_to_usd(remaining_nano),
            kaiyuan_metering::nano_to_usd(needed_nano)
        )),
        Refusal::RateLimited {
            what,
            limit,
            retry_after_s,
            rate,
        } => ApiError::RateLimited {
            message: format!(
                "rate limit reached for this API key: {limit} {what}; retry after {retry_after_s} s"
            ),
            tokens: what.starts_with("tokens"),
            retry_after: retry_after_s,
            rate,
        },
        Refusal::KeyInvalid => ApiError::Unauthorized,
        Refusal::Meter(e) => metering_error(e),
    }
}

/// A database failure: 503 (the request is not served unmetered).
pub fn metering_error(e: kaiyuan_metering::MeterError) -> ApiError {
    tracing::error!("metering: {e}");
    ApiError::Metering("the metering database is unavailable; retry later".into())
}

/// What a request used, from its log line's usage and status (`200`, `499 client_closed`,
/// `200 stream_engine_error`, `429 queue_full`, …). A request refused before the engine
/// ran it (a 4xx other than 499, a 503) used nothing.
pub fn settlement(usage: &Usage, reasoning_tokens: usize, status: &str) -> Settlement {
    let code = status.split(' ').next().unwrap_or("");
    let status = match code {
        "200" if status == "200" => "ok",
        "200" => "error",
        "499" => "cancelled",
        c if c.starts_with('4') || c == "503" => {
            return Settlement {
                status: "refused".into(),
                ..Settlement::default()
            }
        }
        _ => "error",
    };
    Settlement {
        prompt_tokens: usage.prompt_tokens as u64,
        cached_tokens: usage.cached_tokens as u64,
        completion_tokens: usage.completion_tokens as u64,
        reasoning_tokens: reasoning_tokens.min(usage.completion_tokens) as u64,
        status: status.into(),
    }
}

/// Per served model: what metered requests cost and how many of their prompt tokens the
/// prefix cache served, for `/metrics` (no per-key labels: keys are unbounded). Counted
/// where requests are settled (a request's log line), which has no handle on the server's
/// state, hence process-wide.
#[derive(Clone, Copy, Default)]
struct ModelTotals {
    cost_nano: i64,
    cached_tokens: u64,
    requests: u64,
}

static TOTALS: Mutex<std::collections::BTreeMap<String, ModelTotals>> =
    Mutex::new(std::collections::BTreeMap::new());

/// Settles `ticket` with what its request used (from the log line) and counts it.
pub fn settle(
    ticket: kaiyuan_metering::Ticket,
    usage: &Usage,
    reasoning_tokens: usize,
    status: &str,
) {
    let s = settlement(usage, reasoning_tokens, status);
    if let Ok(mut totals) = TOTALS.lock() {
        let t = totals.entry(ticket.model().to_string()).or_default();
        t.cost_nano = t.cost_nano.saturating_add(ticket.cost(&s));
        t.cached_tokens += s.cached_tokens.min(s.prompt_tokens);
        t.requests += 1;
    }
    ticket.settle_detached(s);
}

/// The metering counters per model, for `/metrics` (empty until a metered request ended).
pub fn metered_totals() -> Vec<MeteredTotals> {
    let Ok(totals) = TOTALS.lock() else {
        return Vec::new();
    };
    totals
        .iter()
        .map(|(model, t)| MeteredTotals {
            model: model.clone(),
            cost_usd: kaiyuan_metering::nano_to_usd(t.cost_nano),
            cached_tokens: t.cached_tokens,
            requests: t.requests,
        })
        .collect()
}

/// One model's metering counters at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct MeteredTotals {
    pub model: String,
    /// What its metered requests cost by the price table.
    pub cost_usd: f64,
    /// Prompt tokens of metered requests served from the prefix cache.
    pub cached_tokens: u64,
    /// Metered requests settled (one usage record each).
    pub requests: u64,
}

/// The last frame of every stream (`sse.rs`).
const DONE: &[u8] = b"data: [DONE]\n\n";

/// For a metered stream: holds its `data: [DONE]` back until the request's usage record is
/// committed, so that a client that received a stream in full knows it is recorded (even
/// if the server is killed right after). The stream's driver, and with it the request's log
/// line and ticket, is dropped when the body ends, just after `[DONE]`: the wrapper reads
/// on to that end, waits for the writer, then sends `[DONE]`. Other responses pass as they
/// are.
pub fn record_before_done(response: Response, meter: Meter) -> Response {
    let is_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !is_stream {
        return response;
    }
    let (parts, body) = response.into_parts();
    let inner = body.into_data_stream();
    let wrapped = futures_util::stream::unfold(Some((inner, meter)), |state| async move {
        let (mut inner, meter) = state?;
        match inner.next().await {
            Some(Ok(frame)) if frame.as_ref() == DONE => {
                // Nothing follows [DONE]: this ends the driver (and settles the request).
                while inner.next().await.is_some() {}
                drop(inner);
                meter.flush().await;
                Some((Ok::<Bytes, axum::Error>(frame), None))
            }
            Some(item) => Some((item, Some((inner, meter)))),
            None => None,
        }
    });
    Response::from_parts(parts, Body::from_stream(wrapped))
}

/// A whole number of seconds as OpenAI writes its `x-ratelimit-reset-*` values (Go's
/// duration format: `45s`, `1m0s`).
fn reset_duration(secs: u64) -> String {
    if secs < 60 {
        format!("{secs}s")
    } else {
        format!("{}m{}s", secs / 60, secs % 60)
    }
}

/// OpenAI's `x-ratelimit-*` headers for the limits a key has.
pub fn rate_headers(headers: &mut HeaderMap, rate: &RateInfo) {
    let reset = reset_duration((rate.reset_ms.max(0) as u64).div_ceil(1000));
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    if let (Some(l), Some(r)) = (rate.limit_requests, rate.remaining_requests) {
        put("x-ratelimit-limit-requests", l.to_string());
        put("x-ratelimit-remaining-requests", r.to_string());
        put("x-ratelimit-reset-requests", reset.clone());
    }
    if let (Some(l), Some(r)) = (rate.limit_tokens, rate.remaining_tokens) {
        put("x-ratelimit-limit-tokens", l.to_string());
        put("x-ratelimit-remaining-tokens", r.to_string());
        put("x-ratelimit-reset-tokens", reset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_become_settlements() {
        let u = Usage {
            prompt_tokens: 10,
            completion_tokens: 3,
            cached_tokens: 4,
        };
        assert_eq!(settlement(&u, 0, "200").status, "ok");
        assert_eq!(settlement(&u, 0, "200").completion_tokens, 3);
        assert_eq!(settlement(&u, 2, "200").reasoning_tokens, 2);
        assert_eq!(
            settlement(&u, 9, "200").reasoning_tokens,
            3,
            "at most the completion"
        );
        assert_eq!(settlement(&u, 0, "499 client_closed").status, "cancelled");
        assert_eq!(settlement(&u, 0, "200 stream_engine_error").status, "error");
        assert_eq!(settlement(&u, 0, "500 engine_error").prompt_tokens, 10);
        let refused = settlement(&u, 0, "429 queue_full");
        assert_eq!(
            (refused.status.as_str(), refused.prompt_tokens),
            ("refused", 0)
        );
        assert_eq!(settlement(&u, 0, "503 shutting_down").status, "refused");
    }

    /// A stream whose body holds a ticket until it ends, as the SSE driver holds its log.
    async fn stream_with_ticket(wrap: bool) -> (Vec<bool>, Meter, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("kaiyuan-sse-meter-{}-{wrap}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let url = format!("sqlite://{}/m.db", dir.display());
        let meter = Meter::open(&url, kaiyuan_metering::PriceTable::default())
            .await
            .unwrap();
        let spec = kaiyuan_metering::KeySpec::from_json(&serde_json::json!({"name": "s"})).unwrap();
        let issued = meter.create_key(&spec, 0).await.unwrap();
        let key = meter.authenticate(&issued.key, 0).await.unwrap().unwrap();
        let admission = Admission {
            key: &key,
            model: "m",
            request_id: "req-stream",
            prompt_tokens: 1,
            max_completion_tokens: 1,
        };
        let ticket = meter.admit(admission, 0).await.unwrap();
        let frames: Vec<Bytes> = vec![
            Bytes::from_static(b"data: {}\n\n"),
            Bytes::from_static(DONE),
        ];
        let body = futures_util::stream::unfold(
            (frames.into_iter(), Some(ticket)),
            |(mut it, t)| async move {
                it.next()
                    .map(|f| (Ok::<_, std::convert::Infallible>(f), (it, t)))
            },
        );
        let mut response = Response::new(Body::from_stream(body));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        if wrap {
            response = record_before_done(response, meter.clone());
        }
        let mut data = response.into_body().into_data_stream();
        // Per frame: whether the request's record was committed when the frame arrived.
        let mut recorded = Vec::new();
        while let Some(frame) = data.next().await {
            frame.unwrap();
            let n = meter
                .usage(&kaiyuan_metering::UsageFilter::default())
                .await
                .unwrap()
                .len();
            recorded.push(n == 1);
        }
        (recorded, meter, dir)
    }

    #[tokio::test]
    async fn a_metered_stream_is_recorded_before_its_done() {
        let (recorded, _, dir) = stream_with_ticket(true).await;
        assert_eq!(recorded, [false, true]);
        let _ = std::fs::remove_dir_all(dir);
        // Unwrapped, [DONE] arrives before the record is committed.
        let (recorded, meter, dir) = stream_with_ticket(false).await;
        assert_eq!(recorded, [false, false]);
        meter.flush().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn headers_only_for_set_limits() {
        let mut h = HeaderMap::new();
        rate_headers(
            &mut h,
            &RateInfo {
                limit_requests: Some(3),
                remaining_requests: Some(1),
                reset_ms: 1500,
                ..RateInfo::default()
            },
        );
        assert_eq!(h["x-ratelimit-limit-requests"], "3");
        assert_eq!(h["x-ratelimit-remaining-requests"], "1");
        assert_eq!(h["x-ratelimit-reset-requests"], "2s");
        assert!(!h.contains_key("x-ratelimit-limit-tokens"));
    }

    #[test]
    fn reset_is_a_go_duration_like_openais() {
        // OpenAI writes `x-ratelimit-reset-tokens: 6m0s`, `…-requests: 1s`: a full minute
        // window is `1m0s`, not `60s`.
        let mut h = HeaderMap::new();
        rate_headers(
            &mut h,
            &RateInfo {
                limit_tokens: Some(100),
                remaining_tokens: Some(0),
                reset_ms: 60_000,
                ..RateInfo::default()
            },
        );
        assert_eq!(h["x-ratelimit-reset-tokens"], "1m0s");
        assert_eq!(h["x-ratelimit-limit-tokens"], "100");
        assert_eq!(reset_duration(59), "59s");
        assert_eq!(reset_duration(125), "2m5s");
    }
}
