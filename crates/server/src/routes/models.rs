//! The model endpoints: `GET /v1/models` (every configured model, loaded or not),
//! `GET /v1/models/{id}` (by name or alias), and the admin API's
//! `POST /admin/models/{id}/load` and `/unload` (behind the admin key, like the rest of
//! `/admin`; without `--admin-key` they answer 404, as the whole admin API does).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::models::model_card;
use crate::state::AppState;

/// OpenAI's list object: one card per configured model, in configuration order.
pub async fn list(State(state): State<Arc<AppState>>) -> Response {
    let data: Vec<Value> = state
        .registry
        .status()
        .iter()
        .map(|m| model_card(m, state.started))
        .collect();
    axum::Json(json!({ "object": "list", "data": data })).into_response()
}

/// One model's card; an unknown id is 404 `model_not_found` naming the models there are.
pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let card = card_of(&state, &id)?;
    Ok(axum::Json(card).into_response())
}

/// Loads the model now (waiting as a request would) and answers its card.
pub async fn load(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let name = canonical(&state, &id)?;
    if state.is_shutting_down() {
        return Err(ApiError::ShuttingDown);
    }
    drop(state.registry.acquire(&name).await?);
    Ok(axum::Json(card_of(&state, &name)?).into_response())
}

/// Unloads the model now, pinned or not; its running requests get the grace period to
/// finish, and its next request loads it again. Answers its card.
pub async fn unload(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let name = canonical(&state, &id)?;
    state.registry.unload(&name, state.config.grace_period);
    Ok(axum::Json(card_of(&state, &name)?).into_response())
}

fn canonical(state: &AppState, id: &str) -> Result<String, ApiError> {
    state
        .registry
        .canonical(Some(id))
        .ok_or_else(|| ApiError::ModelNotFound {
            model: id.to_string(),
            available: state.registry.names().join(", "),
        })
}

fn card_of(state: &AppState, id: &str) -> Result<Value, ApiError> {
    let name = canonical(state, id)?;
    let status = state.registry.status();
    let m = status
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("model {name}")))?;
    Ok(model_card(m, state.started))
}
