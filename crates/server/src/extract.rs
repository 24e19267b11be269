//! [`ApiJson`]: the JSON body extractor every endpoint uses instead of axum's `Json`, so that
//! a wrong content type, an oversized body, malformed JSON and a field of the wrong type all
//! come back as OpenAI-shaped errors naming the field (never axum's plain-text rejections).

use axum::extract::{FromRequest, Request};
use axum::http::header;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use crate::error::ApiError;

/// A request body: a JSON object, to be parsed into typed structs with [`from_body`].
pub struct ApiJson(pub Value);

/// The body limit the router was built with, so that a 413 can say the number.
#[derive(Clone, Copy)]
pub struct BodyLimit(pub usize);

impl<S> FromRequest<S> for ApiJson
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("(not text)");
            if !is_json(ct) {
                return Err(ApiError::UnsupportedMediaType(ct.to_string()));
            }
        }
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map_or(0, |limit| limit.0);
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge { limit }
            } else {
                ApiError::Invalid {
                    param: None,
                    message: format!("cannot read the request body: {rejection}"),
                }
            }
        })?;
        parse_object(&bytes).map(ApiJson)
    }
}

/// `application/json`, optionally with parameters (`; charset=utf-8`), or any `+json` type.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses `bytes` as JSON; it must be an object.
pub fn parse_object(bytes: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| ApiError::Invalid {
        param: None,
        message: format!("the body is not valid JSON: {e}"),
    })?;
    if !value.is_object() {
        return Err(ApiError::Invalid {
            param: None,
            message: "the body must be a JSON object".into(),
        });
    }
    Ok(value)
}

/// Reads `T` out of a body; a field of the wrong type or a missing one is named.
pub fn from_body<'a, T: Deserialize<'a>>(body: &'a Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(body).map_err(|err| {
        let path = err.path().to_string();
        let text = err.into_inner().to_string();
        // serde reports a missing field at its parent; name the field itself.
        let param = match missing_field(&text) {
            Some(field) if path == "." => field.to_string(),
            Some(field) => format!("{path}.{field}"),
            None if path == "." => String::new(),
            None => path,
        };
        if param.is_empty() {
            return ApiError::Invalid {
                param: None,
                message: format!("the body does not have the expected shape: {text}"),
            };
        }
        ApiError::Invalid {
            message: format!("{param}: {text}"),
            param: Some(param),
        }
    })
}

/// The field name of serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Req {
        model: String,
        temperature: Option<f32>,
        messages: Vec<Msg>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Msg {
        role: String,
    }

    fn param_of(body: &str) -> Option<String> {
        let parsed = parse_object(body.as_bytes()).and_then(|v| from_body::<Req>(&v).map(|_| ()));
        match parsed {
            Err(ApiError::Invalid { param, .. }) => param,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn wrong_type_names_the_field() {
        let p = param_of(r#"{"model": "m", "temperature": "hot", "messages": []}"#);
        assert_eq!(p.as_deref(), Some("temperature"));
        let p = param_of(r#"{"model": "m", "messages": [{"role": 5}]}"#);
        assert_eq!(p.as_deref(), Some("messages[0].role"));
        let p = param_of(r#"{"model": "m", "messages": [{"role": null}]}"#);
        assert_eq!(p.as_deref(), Some("messages[0].role"));
    }

    #[test]
    fn missing_field_is_named() {
        assert_eq!(param_of(r#"{"model": "m"}"#).as_deref(), Some("messages"));
        assert_eq!(
            param_of(r#"{"model": "m", "messages": [{}]}"#).as_deref(),
            Some("messages[0].role")
        );
    }

    #[test]
    fn bad_json_has_no_param() {
        assert_eq!(param_of(r#"{"model": "#), None);
        assert_eq!(param_of(r#"{"model": "m", "messages": []} x"#), None);
        assert_eq!(param_of("[1, 2]"), None);
    }

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/vnd.api+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }
}
