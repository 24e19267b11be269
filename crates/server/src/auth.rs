//! Bearer-key authentication for the API routes (`/v1/*`, `/tokenize`, `/detokenize`).
//! Static keys (`--api-key`) are accepted unmetered. With metering (an admin key), every API
//! request needs a key: a static one, the admin key (unmetered), or an issued key
//! (`sk-kaiyuan-…`, looked up by its hash on every request, so a revocation counts from the
//! next one), whose handler then runs as that key's request (`metering::scope`) and whose
//! response carries its `x-ratelimit-*` headers. Missing, unknown, revoked or expired keys
//! get 401 in OpenAI's error shape. `/health` and `/metrics` stay open (probes and scrapers
//! carry no keys). The admin routes check the admin key themselves ([`require_admin`]).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::log::RequestLog;
use crate::metering::{self, KeyContext};
use crate::routes::common::new_id;
use crate::state::AppState;

/// The key a request presents: its bearer token, or Anthropic's `x-api-key` header.
fn presented(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| {
            request
                .headers()
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
        })
        .map(str::trim)
}

fn refuse(e: ApiError) -> Response {
    let mut log = RequestLog::new("auth", new_id("req"));
    log.status(e.log_status());
    e.into_response()
}

fn is_static(state: &AppState, key: &str) -> bool {
    state
        .config
        .api_keys
        .iter()
        .any(|k| constant_time_eq(k.as_bytes(), key.as_bytes()))
}

pub async fn require_key(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(metering) = &state.config.metering else {
        if state.config.api_keys.is_empty() {
            return next.run(request).await;
        }
        return match presented(&request) {
            Some(key) if is_static(&state, key) => next.run(request).await,
            _ => refuse(ApiError::Unauthorized),
        };
    };
    let Some(key) = presented(&request) else {
        return refuse(ApiError::Unauthorized);
    };
    if is_static(&state, key) || constant_time_eq(key.as_bytes(), metering.admin_key.as_bytes()) {
        return next.run(request).await;
    }
    let auth = match metering
        .meter
        .authenticate(key, kaiyuan_metering::now_ms())
        .await
    {
        Ok(Some(auth)) => auth,
        Ok(None) => return refuse(ApiError::Unauthorized),
        Err(e) => return refuse(metering::metering_error(e)),
    };
    let ctx = Arc::new(KeyContext::new(metering.meter.clone(), auth));
    let mut response = metering::scope(Arc::clone(&ctx), next.run(request)).await;
    if ctx.was_admitted() {
        // A whole response's usage record was handed over when its handler ended: commit
        // it before the client sees the answer (grouped with others under load). A
        // stream's is committed before its `[DONE]`.
        metering.meter.flush().await;
        response = metering::record_before_done(response, metering.meter.clone());
    }
    if let Some(rate) = ctx.take_rate() {
        metering::rate_headers(response.headers_mut(), &rate);
    }
    response
}

/// For the admin routes: the admin key, else 401 (no or an unknown key) or 403 (a valid key
/// that is not the admin's).
pub async fn require_admin(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(metering) = &state.config.metering else {
        return refuse(ApiError::RouteNotFound(
            "the admin API (metering is off: start the server with --admin-key)".into(),
        ));
    };
    let Some(key) = presented(&request) else {
        return refuse(ApiError::Unauthorized);
    };
    if constant_time_eq(key.as_bytes(), metering.admin_key.as_bytes()) {
        return next.run(request).await;
    }
    let valid = is_static(&state, key)
        || matches!(
            metering
                .meter
                .authenticate(key, kaiyuan_metering::now_ms())
                .await,
            Ok(Some(_))
        );
    if valid {
        refuse(ApiError::Forbidden {
            code: "admin_key_required",
            message: "the admin API needs the admin key".into(),
        })
    } else {
        refuse(ApiError::Unauthorized)
    }
}

/// Compares without stopping at the first difference (the length still shows).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
