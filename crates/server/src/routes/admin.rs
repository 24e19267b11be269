//! The admin API (admin key only, see `auth::require_admin`): keys (`POST/GET /admin/keys`,
//! `GET/PATCH/DELETE /admin/keys/{id}`) and usage (`GET /admin/usage`, `GET
//! /admin/usage/summary?group_by=key|model|day`); and what a key holder may read about
//! itself (`GET /v1/usage`, `GET /user/balance` in DeepSeek's shape). Bodies are checked
//! field by field in the metering crate: a bad one is a 400 naming the field, nothing stored.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kaiyuan_metering::{nano_to_usd, KeyPatch, KeySpec, Meter, UsageFilter};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::metering::{self, metering_error};
use crate::state::AppState;

fn meter(state: &AppState) -> Result<&Meter, ApiError> {
    state
        .config
        .metering
        .as_ref()
        .map(|m| &m.meter)
        .ok_or_else(|| ApiError::RouteNotFound("the admin API (metering is off)".into()))
}

fn reply(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

fn field(e: kaiyuan_metering::FieldError) -> ApiError {
    ApiError::invalid(e.param, e.message)
}

fn no_key(id: &str) -> ApiError {
    let shown: String = id.chars().take(64).collect();
    ApiError::NotFound(format!("no API key with id `{shown}`"))
}

pub async fn create_key(
    State(state): State<Arc<AppState>>,
    body: Result<ApiJson, ApiError>,
) -> Response {
    reply(
        async {
            let ApiJson(body) = body?;
            let spec = KeySpec::from_json(&body).map_err(field)?;
            let issued = meter(&state)?
                .create_key(&spec, kaiyuan_metering::now_ms())
                .await
                .map_err(metering_error)?;
            tracing::info!(key = %issued.info.id, "admin: issued API key");
            Ok((StatusCode::CREATED, Json(issued)).into_response())
        }
        .await,
    )
}

pub async fn list_keys(State(state): State<Arc<AppState>>) -> Response {
    reply(
        async {
            let keys = meter(&state)?.list_keys().await.map_err(metering_error)?;
            Ok(Json(json!({"object": "list", "data": keys})).into_response())
        }
        .await,
    )
}

pub async fn get_key(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    reply(
        async {
            let key = meter(&state)?.get_key(&id).await.map_err(metering_error)?;
            Ok(Json(key.ok_or_else(|| no_key(&id))?).into_response())
        }
        .await,
    )
}

pub async fn patch_key(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Result<ApiJson, ApiError>,
) -> Response {
    reply(
        async {
            let ApiJson(body) = body?;
            let patch = KeyPatch::from_json(&body).map_err(field)?;
            let key = meter(&state)?
                .patch_key(&id, &patch)
                .await
                .map_err(metering_error)?;
            let key = key.ok_or_else(|| no_key(&id))?;
            tracing::info!(key = %key.id, "admin: changed API key");
            Ok(Json(key).into_response())
        }
        .await,
    )
}

pub async fn revoke_key(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    reply(
        async {
            let key = meter(&state)?
                .revoke_key(&id, kaiyuan_metering::now_ms())
                .await
                .map_err(metering_error)?;
            let key = key.ok_or_else(|| no_key(&id))?;
            tracing::info!(key = %key.id, "admin: revoked API key");
            Ok(Json(key).into_response())
        }
        .await,
    )
}

/// The query string's pairs, percent-decoded.
fn query(uri: &Uri) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' => match s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                },
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn filter(pairs: &[(String, String)], allowed: &[&str]) -> Result<UsageFilter, ApiError> {
    let mut f = UsageFilter::default();
    for (k, v) in pairs {
        let int = |v: &str| {
            v.parse::<i64>()
                .ok()
                .filter(|n| (0..=253_402_300_799).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid(
                        k.as_str(),
                        format!("`{k}` must be a Unix time in seconds or a count"),
                    )
                })
        };
        match k.as_str() {
            "key_id" => f.key_id = Some(v.clone()),
            "model" => f.model = Some(v.clone()),
            "from" => f.from = Some(int(v)?),
            "to" => f.to = Some(int(v)?),
            "limit" => f.limit = Some(int(v)?),
            other if allowed.contains(&other) => {}
            other => {
                let shown: String = other.chars().take(64).collect();
                return Err(ApiError::invalid(
                    shown.clone(),
                    format!("unknown query parameter `{shown}` (key_id, model, from, to, limit)"),
                ));
            }
        }
    }
    Ok(f)
}

pub async fn usage(State(state): State<Arc<AppState>>, uri: Uri) -> Response {
    reply(
        async {
            let f = filter(&query(&uri), &[])?;
            let records = meter(&state)?.usage(&f).await.map_err(metering_error)?;
            Ok(Json(json!({"object": "list", "data": records})).into_response())
        }
        .await,
    )
}

pub async fn summary(State(state): State<Arc<AppState>>, uri: Uri) -> Response {
    reply(
        async {
            let pairs = query(&uri);
            let f = filter(&pairs, &["group_by"])?;
            let group_by = pairs
                .iter()
                .find(|(k, _)| k == "group_by")
                .map_or("key", |(_, v)| v.as_str());
            let rows = meter(&state)?
                .summary(group_by, &f)
                .await
                .map_err(metering_error)?
                .ok_or_else(|| {
                    ApiError::invalid("group_by", "`group_by` must be key, model or day")
                })?;
            Ok(Json(json!({"object": "list", "group_by": group_by, "data": rows})).into_response())
        }
        .await,
    )
}

/// The calling issued key (401 for requests without one: static and admin keys have no
/// usage of their own).
fn holder() -> Result<Arc<metering::KeyContext>, ApiError> {
    metering::current().ok_or(ApiError::Unauthorized)
}

/// `GET /v1/usage`: the calling key, its budget and its recent usage.
pub async fn own_usage(uri: Uri) -> Response {
    reply(
        async {
            let ctx = holder()?;
            let mut f = filter(&query(&uri), &[])?;
            f.key_id = Some(ctx.key.id.clone());
            let key = ctx
                .meter
                .get_key(&ctx.key.id)
                .await
                .map_err(metering_error)?
                .ok_or(ApiError::Unauthorized)?;
            let records = ctx.meter.usage(&f).await.map_err(metering_error)?;
            Ok(Json(json!({"object": "usage", "key": key, "data": records})).into_response())
        }
        .await,
    )
}

/// `GET /user/balance`: DeepSeek's shape; a key without a budget is always available.
pub async fn balance() -> Response {
    reply(
        async {
            let ctx = holder()?;
            let b = ctx
                .meter
                .balance(&ctx.key.id)
                .await
                .map_err(metering_error)?
                .ok_or(ApiError::Unauthorized)?;
            let body: Value = match b.remaining_nano() {
                None => json!({"is_available": true, "balance_infos": []}),
                Some(left) => {
                    let usd = format!("{:.6}", nano_to_usd(left));
                    json!({"is_available": left > 0, "balance_infos": [{
                        "currency": "USD",
                        "total_balance": usd,
                        "granted_balance": usd,
                        "topped_up_balance": "0.000000",
                    }]})
                }
            };
            Ok(Json(body).into_response())
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_decoded_and_checked() {
        let uri: Uri = "/admin/usage?key_id=key_1%20x&from=5&model=a+b&x=%zz"
            .parse()
            .unwrap();
        let q = query(&uri);
        assert_eq!(q[0], ("key_id".into(), "key_1 x".into()));
        assert_eq!(q[2], ("model".into(), "a b".into()));
        assert_eq!(q[3], ("x".into(), "%zz".into()));
        assert!(filter(&q, &[]).is_err());
        let f = filter(&q[..3], &[]).unwrap();
        assert_eq!(f.from, Some(5));
        let bad: Uri = "/admin/usage?from=-1".parse().unwrap();
        assert!(filter(&query(&bad), &[]).is_err());
    }
}
