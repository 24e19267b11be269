//! The endpoints that only report: `GET /health`, `GET /metrics` (the model list is in
//! `models.rs`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::metrics::{self, ModelMetrics};
use crate::state::AppState;

/// 200 `{"status": "ok"}` once every model is loaded; 503 `{"status": "loading"}` before,
/// and 503 `{"status": "shutting_down"}` after a shutdown signal. An engine that died is
/// 503 `{"status": "engine_failed", "model": NAME, "reason": WHY}`, first of all (its
/// requests are refused; `kaiyuan serve` then drains and exits non-zero).
pub async fn health(State(state): State<Arc<AppState>>) -> Response {
    if let Some(f) = state.engine_failure() {
        let body = json!({ "status": "engine_failed", "model": f.model, "reason": f.reason });
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    }
    let (status, text) = if state.is_shutting_down() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting_down")
    } else if state.models().is_none() {
        (StatusCode::SERVICE_UNAVAILABLE, "loading")
    } else {
        (StatusCode::OK, "ok")
    };
    (status, axum::Json(json!({ "status": text }))).into_response()
}

/// Prometheus text; empty of series while the models load.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let models = state.models().unwrap_or_default();
    let read: Vec<ModelMetrics> = models.iter().map(|m| ModelMetrics::read(m)).collect();
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::render(read, crate::metering::metered_totals()),
    )
        .into_response()
}
