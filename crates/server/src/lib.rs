//! Kaiyuan's HTTP layer: an OpenAI-compatible API (axum on tokio) over one engine per served
//! model. It validates requests into typed parameters, renders and tokenizes prompts,
//! submits engine requests and turns their events into OpenAI responses or SSE streams. It
//! never sees KV blocks: the engine's `GenerateRequest`/`Event` boundary is all it uses.
//!
//! - [`Server`]: bind first, serve `/health` (503 while loading) at once, install the models
//!   when loaded ([`Server::set_models`]), shut down gracefully on a signal ([`Server::run`]).
//! - `routes/`: one file per endpoint family; `api/`: request, validation, response types;
//!   `generate.rs`: choices as engine requests; `sse.rs`: streams; `error.rs`: the one
//!   place errors become HTTP statuses; `ui/`: the embedded web UI (`/`, `/admin`).

mod api;
mod auth;
mod constrain;
mod error;
mod extract;
mod fim;
mod generate;
mod log;
mod metering;
mod metrics;
pub mod prompt;
mod routes;
mod sse;
mod state;
mod tools;
mod ui;

/// The request parsers, public only so that the fuzz targets in `crates/server/fuzz` (a
/// separate crate, outside the workspace) can call them. Not an API: hidden from the docs and
/// free to change with the parsers.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::api::anthropic::{count_tokens, messages};
    pub use crate::api::tools::{assistant_tool_calls, tools_request};
    pub use crate::api::validate::{chat, completion};
    pub use crate::extract::parse_object;
}

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use api::reasoning::{ReasoningFormat, TemplateReasoning};
pub use error::ApiError;
pub use metering::MeteringConfig;
pub use state::{EngineFailure, ServedModel, ServerConfig};

use state::AppState;

/// How long open connections may take to finish after the grace period, before the server
/// stops waiting for them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A server: its state and router, before and while it runs.
#[derive(Clone)]
pub struct Server {
    state: Arc<AppState>,
}

impl Server {
    pub fn new(config: ServerConfig) -> Server {
        Server {
            state: Arc::new(AppState::new(config)),
        }
    }

    /// The routes, to serve or to test in process.
    pub fn router(&self) -> axum::Router {
        routes::router(Arc::clone(&self.state))
    }

    /// Installs the loaded models (once): `/health` turns 200 and requests are served.
    pub fn set_models(&self, models: Vec<ServedModel>) -> bool {
        self.state.set_models(models)
    }

    /// The first served model whose engine has died, with why (`None` while all run, and
    /// while loading).
    pub fn engine_failure(&self) -> Option<EngineFailure> {
        self.state.engine_failure()
    }

    /// Serves on `listener` until `shutdown` completes, then: stops accepting connections,
    /// shuts the engines down with the configured grace period (running requests may
    /// finish; streams still open get their last chunk and `[DONE]`), waits for open
    /// connections (at most grace + 5 s), and joins the engine threads.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let state = Arc::clone(&self.state);
        let grace = state.config.grace_period;
        let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections; {grace:?} for running requests");
            state.begin_shutdown(grace);
            let _ = signalled_tx.send(());
        };
        let serve = axum::serve(listener, self.router()).with_graceful_shutdown(signal);
        let deadline = async move {
            match signalled_rx.await {
                Ok(()) => tokio::time::sleep(grace + DRAIN_TIMEOUT).await,
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            result = serve => result?,
            () = deadline => tracing::warn!("connections still open after the grace period; closing them"),
        }
        if let Some(m) = &self.state.config.metering {
            // Usage of the requests that ended during the drain.
            m.meter.flush().await;
        }
        let models: Vec<_> = self.state.models().unwrap_or_default().to_vec();
        tokio::task::spawn_blocking(move || {
            for m in models {
                m.engine.join();
            }
        })
        .await
        .map_err(std::io::Error::other)?;
        Ok(())
    }
}
