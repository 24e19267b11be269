//! The router: which path goes to which handler, the authentication layer over the API
//! routes (and the admin key's over the admin API), the body limit, and JSON answers for
//! unknown paths and wrong methods.

pub mod admin;
pub mod chat;
pub mod common;
pub mod completions;
pub mod conversation;
pub mod info;
pub mod messages;
pub mod models;
pub mod tokenize;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::routing::{get, post};
use axum::{middleware, Extension, Router};

use crate::auth;
use crate::error::ApiError;
use crate::extract::BodyLimit;
use crate::state::AppState;

pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.body_limit;
    let api = Router::new()
        .route("/v1/chat/completions", post(chat::handle))
        .route("/v1/completions", post(completions::handle))
        // DeepSeek's beta base URL for FIM (its chat prefix completion is /beta/chat/...).
        .route("/beta/completions", post(completions::handle))
        .route("/beta/chat/completions", post(chat::handle))
        .route("/v1/models", get(models::list))
        .route("/v1/models/{id}", get(models::get))
        .route("/tokenize", post(tokenize::tokenize))
        .route("/detokenize", post(tokenize::detokenize))
        .route("/v1/usage", get(admin::own_usage))
        .route("/user/balance", get(admin::balance))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            auth::require_key,
        ));
    // Anthropic's Messages API: the same authentication, errors in Anthropic's shape.
    let anthropic = Router::new()
        .route("/v1/messages", post(messages::handle))
        .route("/v1/messages/count_tokens", post(messages::count_tokens))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            auth::require_key,
        ))
        .layer(middleware::from_fn(messages::anthropic_errors));
    let admin = Router::new()
        .route("/admin/keys", post(admin::create_key).get(admin::list_keys))
        .route(
            "/admin/keys/{id}",
            get(admin::get_key)
                .patch(admin::patch_key)
                .delete(admin::revoke_key),
        )
        .route("/admin/usage", get(admin::usage))
        .route("/admin/usage/summary", get(admin::summary))
        .route("/admin/models/{id}/load", post(models::load))
        .route("/admin/models/{id}/unload", post(models::unload))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            auth::require_admin,
        ));
    let ui = if state.config.ui {
        crate::ui::routes()
    } else {
        Router::new()
    };
    Router::new()
        .route("/health", get(info::health))
        .route("/metrics", get(info::metrics))
        .merge(api)
        .merge(anthropic)
        .merge(admin)
        .merge(ui)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(Extension(BodyLimit(limit)))
        .with_state(state)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::RouteNotFound(format!("{method} {}", uri.path()))
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed(method.to_string())
}
