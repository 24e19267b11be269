//! `POST /tokenize` and `POST /detokenize`, in llama-server's shapes:
//! `{"content", "add_special"?, "parse_special"?, "with_pieces"?}` → `{"tokens": [...]}`
//! (with pieces: `[{"id", "piece"}]`, the piece as a string, or as a byte array when it is
//! not whole UTF-8); `{"tokens": [...]}` → `{"content"}`. An optional `model` picks the
//! tokenizer when several models are served.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::api::request::{DetokenizeRequest, TokenizeRequest};
use crate::error::ApiError;
use crate::extract::{from_body, ApiJson};
use crate::state::AppState;

pub async fn tokenize(
    State(state): State<Arc<AppState>>,
    body: Result<ApiJson, ApiError>,
) -> Result<Response, ApiError> {
    let ApiJson(body) = body?;
    let req: TokenizeRequest = from_body(&body)?;
    let model = state.resolve(req.model.as_deref()).await?;
    let tokens = tokio::task::spawn_blocking(move || {
        let tok = &model.tokenizer;
        let special = req.parse_special.unwrap_or(true);
        let ids = if req.add_special.unwrap_or(false) {
            tok.encode_with_bos_eos(&req.content, special)
        } else {
            tok.encode(&req.content, special)
        };
        if !req.with_pieces.unwrap_or(false) {
            return Value::from(ids);
        }
        let pieces = ids
            .into_iter()
            .map(|id| {
                let bytes = tok.piece_bytes(id, true).unwrap_or_default();
                let piece = match std::str::from_utf8(bytes) {
                    Ok(text) => Value::from(text),
                    Err(_) => Value::from(bytes.to_vec()),
                };
                json!({"id": id, "piece": piece})
            })
            .collect();
        Value::Array(pieces)
    })
    .await
    .map_err(|e| ApiError::Engine(format!("the tokenizer task failed: {e}")))?;
    Ok(axum::Json(json!({ "tokens": tokens })).into_response())
}

pub async fn detokenize(
    State(state): State<Arc<AppState>>,
    body: Result<ApiJson, ApiError>,
) -> Result<Response, ApiError> {
    let ApiJson(body) = body?;
    let req: DetokenizeRequest = from_body(&body)?;
    let model = state.resolve(req.model.as_deref()).await?;
    let vocab = model.tokenizer.vocab_size();
    let ids = req
        .tokens
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            u32::try_from(t)
                .ok()
                .filter(|&id| (id as usize) < vocab)
                .ok_or_else(|| {
                    ApiError::invalid(
                        format!("tokens[{i}]"),
                        format!("token id {t} is outside the vocabulary ({vocab} tokens)"),
                    )
                })
        })
        .collect::<Result<Vec<u32>, _>>()?;
    let content = model
        .tokenizer
        .decode(&ids, true)
        .map_err(|e| ApiError::invalid("tokens", e.to_string()))?;
    Ok(axum::Json(json!({ "content": content })).into_response())
}
