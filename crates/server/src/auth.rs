//! Bearer-key authentication for the API routes (`/v1/*`, `/tokenize`, `/detokenize`):
//! with keys configured, a request needs `Authorization: Bearer <key>` (or Anthropic's
//! `x-api-key: <key>`) with one of them,
//! else 401 in OpenAI's error shape. `/health` and `/metrics` stay open (probes and
//! scrapers carry no keys).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::log::RequestLog;
use crate::routes::common::new_id;
use crate::state::AppState;

pub async fn require_key(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let keys = &state.config.api_keys;
    if keys.is_empty() {
        return next.run(request).await;
    }
    // Anthropic's clients send `x-api-key` instead of a bearer token.
    let presented = request
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
        .map(str::trim);
    match presented {
        Some(key)
            if keys
                .iter()
                .any(|k| constant_time_eq(k.as_bytes(), key.as_bytes())) =>
        {
            next.run(request).await
        }
        _ => {
            let mut log = RequestLog::new("auth", new_id("req"));
            log.status(ApiError::Unauthorized.log_status());
            ApiError::Unauthorized.into_response()
        }
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
