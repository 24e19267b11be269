//! Every error the API returns, and the one place they become HTTP: status code, headers and
//! OpenAI's error body `{"error": {"message", "type", "param", "code"}}`. Engine errors
//! ([`SubmitError`]) are mapped here too, so no handler picks a status code by itself.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kaiyuan_engine::SubmitError;
use kaiyuan_metering::RateInfo;
use serde::Serialize;

/// Seconds a client is told to wait (`Retry-After`) when the queue is full.
pub const RETRY_AFTER_SECS: u64 = 1;

/// An error as the API reports it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or a value is out of range; `param` names the field
    /// (`temperature`, `messages[1].content`).
    #[error("{message}")]
    Invalid {
        param: Option<String>,
        message: String,
    },
    /// A feature the request asks for that this server does not implement.
    #[error("{message}")]
    Unsupported { param: String, message: String },
    #[error("a valid API key is required: send `Authorization: Bearer <key>`")]
    Unauthorized,
    #[error(
        "the model `{model}` does not exist here; the models are: {available} (see GET /v1/models)"
    )]
    ModelNotFound { model: String, available: String },
    /// A configured model that cannot serve now: still loading after the wait
    /// (`model_loading`), its load failed (`model_load_failed`), or no room under the
    /// memory budget (`model_no_room`).
    #[error("the model `{model}` is unavailable: {reason}")]
    ModelUnavailable {
        model: String,
        code: &'static str,
        reason: String,
    },
    #[error("no route for {0}")]
    RouteNotFound(String),
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    #[error("the request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body must be JSON (Content-Type: application/json), not `{0}`")]
    UnsupportedMediaType(String),
    #[error("the server is busy: {capacity} requests are already waiting; retry later")]
    QueueFull { capacity: usize },
    #[error("the models are still loading; retry when GET /health answers 200")]
    Loading,
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The engine failed while generating (the message says why).
    #[error("the engine failed: {0}")]
    Engine(String),
    /// The model's engine thread has died: every request is refused until a restart.
    #[error("{0}")]
    EngineDead(String),
    /// A valid key that may not do this (a model it is not allowed, the admin API).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// The key's budget cannot cover the request's worst case.
    #[error("{0}")]
    InsufficientQuota(String),
    /// A key's `rpm`, `tpm` or `max_parallel` limit (`tokens`: the limit is on tokens).
    #[error("{message}")]
    RateLimited {
        message: String,
        tokens: bool,
        retry_after: u64,
        rate: RateInfo,
    },
    /// An admin API object that does not exist (a key id).
    #[error("{0}")]
    NotFound(String),
    /// The metering database cannot be used.
    #[error("{0}")]
    Metering(String),
}

impl ApiError {
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            param: Some(param.into()),
            message: message.into(),
        }
    }

    pub fn unsupported(param: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::Unsupported {
            param: param.into(),
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid { .. } | ApiError::Unsupported { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::ModelNotFound { .. } | ApiError::RouteNotFound(_) | ApiError::NotFound(_) => {
                StatusCode::NOT_FOUND
            }
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::InsufficientQuota(_) | ApiError::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Metering(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::QueueFull { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Loading
            | ApiError::ShuttingDown
            | ApiError::EngineDead(_)
            | ApiError::ModelUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Engine(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// OpenAI's `type`.
    pub fn error_type(&self) -> &'static str {
        match self {
            ApiError::Invalid { .. }
            | ApiError::Unsupported { .. }
            | ApiError::ModelNotFound { .. }
            | ApiError::RouteNotFound(_)
            | ApiError::MethodNotAllowed(_)
            | ApiError::PayloadTooLarge { .. }
            | ApiError::UnsupportedMediaType(_)
            | ApiError::NotFound(_) => "invalid_request_error",
            ApiError::Unauthorized => "authentication_error",
            ApiError::Forbidden { .. } => "permission_error",
            ApiError::InsufficientQuota(_) => "insufficient_quota",
            ApiError::RateLimited { tokens: true, .. } => "tokens",
            ApiError::RateLimited { .. } => "requests",
            ApiError::Metering(_) => "server_error",
            ApiError::QueueFull { .. } => "rate_limit_error",
            ApiError::Loading
            | ApiError::ShuttingDown
            | ApiError::Engine(_)
            | ApiError::EngineDead(_)
            | ApiError::ModelUnavailable { .. } => "server_error",
        }
    }

    /// OpenAI's `code`: a stable machine-readable name.
    pub fn code(&self) -> Option<&'static str> {
        Some(match self {
            ApiError::Invalid { .. } => return None,
            ApiError::Unsupported { .. } => "unsupported_parameter",
            ApiError::Unauthorized => "invalid_api_key",
            ApiError::ModelNotFound { .. } => "model_not_found",
            ApiError::RouteNotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::QueueFull { .. } => "queue_full",
            ApiError::Loading => "model_loading",
            ApiError::ModelUnavailable { code, .. } => code,
            ApiError::ShuttingDown => "shutting_down",
            ApiError::Engine(_) => "engine_error",
            ApiError::EngineDead(_) => "engine_failed",
            ApiError::Forbidden { code, .. } => code,
            ApiError::InsufficientQuota(_) => "insufficient_quota",
            ApiError::RateLimited { .. } => "rate_limit_exceeded",
            ApiError::NotFound(_) => "not_found",
            ApiError::Metering(_) => "metering_unavailable",
        })
    }

    /// OpenAI's `param`: the request field at fault, if one is.
    pub fn param(&self) -> Option<&str> {
        match self {
            ApiError::Invalid { param, .. } => param.as_deref(),
            ApiError::Unsupported { param, .. } => Some(param),
            ApiError::ModelNotFound { .. } => Some("model"),
            _ => None,
        }
    }

    /// The `{"error": {...}}` body.
    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            error: ErrorObject {
                message: self.to_string(),
                kind: self.error_type(),
                param: self.param(),
                code: self.code(),
            },
        }
    }

    /// What the per-request log line shows.
    pub fn log_status(&self) -> String {
        format!(
            "{} {}",
            self.status().as_u16(),
            self.code().unwrap_or("invalid")
        )
    }
}

#[derive(Serialize)]
pub struct ErrorBody<'a> {
    pub error: ErrorObject<'a>,
}

#[derive(Serialize)]
pub struct ErrorObject<'a> {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub param: Option<&'a str>,
    pub code: Option<&'static str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).expect("invariant: error bodies serialize");
        let mut response = (self.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        match self {
            ApiError::QueueFull { .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            }
            ApiError::RateLimited {
                retry_after, rate, ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                crate::metering::rate_headers(headers, &rate);
            }
            ApiError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> ApiError {
        match e {
            SubmitError::QueueFull { capacity } => ApiError::QueueFull { capacity },
            SubmitError::ShuttingDown => ApiError::ShuttingDown,
            SubmitError::EngineFailed(_) => ApiError::EngineDead(e.to_string()),
            SubmitError::EmptyPrompt => ApiError::invalid("prompt", e.to_string()),
            SubmitError::ZeroMaxTokens => ApiError::invalid("max_tokens", e.to_string()),
            SubmitError::ContextExceeded { .. } => ApiError::invalid("max_tokens", e.to_string()),
            SubmitError::TokenOutOfRange { .. } => ApiError::invalid("prompt", e.to_string()),
            SubmitError::InvalidSampling(p) => ApiError::invalid(p.field, p.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(e: &ApiError) -> serde_json::Value {
        serde_json::to_value(e.body()).unwrap()
    }

    #[test]
    fn invalid_names_the_field_in_openai_shape() {
        let e = ApiError::invalid("temperature", "temperature must be in 0..=2, got 3");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            json(&e),
            serde_json::json!({"error": {
                "message": "temperature must be in 0..=2, got 3",
                "type": "invalid_request_error",
                "param": "temperature",
                "code": null
            }})
        );
    }

    #[test]
    fn engine_errors_map_to_statuses() {
        let full: ApiError = SubmitError::QueueFull { capacity: 4 }.into();
        assert_eq!(full.status(), StatusCode::TOO_MANY_REQUESTS);
        let resp = full.into_response();
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        let down: ApiError = SubmitError::ShuttingDown.into();
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
        let ctx: ApiError = SubmitError::ContextExceeded {
            prompt_tokens: 10,
            max_tokens: 30,
            context: 32,
        }
        .into();
        assert_eq!(ctx.status(), StatusCode::BAD_REQUEST);
        assert_eq!(ctx.param(), Some("max_tokens"));
        let msg = ctx.to_string();
        assert!(
            msg.contains("10") && msg.contains("30") && msg.contains("32"),
            "{msg}"
        );
    }

    #[test]
    fn unauthorized_has_a_bearer_challenge() {
        let resp = ApiError::Unauthorized.into_response();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(resp.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
