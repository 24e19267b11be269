//! Kaiyuan's HTTP layer: an OpenAI-compatible API (axum on tokio) over one engine per served
//! model. It validates requests into typed parameters, renders and tokenizes prompts,
//! submits engine requests and turns their events into OpenAI responses or SSE streams. It
//! never sees KV blocks: the engine's `GenerateRequest`/`Event` boundary is all it uses.
//!
//! - [`Server`]: bind first, serve `/health` (503 while loading) at once, install the models
//!   when loaded ([`Server::set_models`]), shut down gracefully on a signal ([`Server::run`]).
//! - `models/`: the registry of configured models: load on first request, keep-alive,
//!   the memory budget (LRU unloading), aliases, `/v1/models` cards.
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
pub mod models;
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
pub use models::{LoadFn, ModelEntry, RegistryConfig};
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

    /// Installs the start-up models, loaded (once): `/health` turns 200 and requests are
    /// served. A model configured with [`Server::add_models`] under the same name keeps
    /// its entry (aliases, pinning); others are added pinned.
    pub fn set_models(&self, models: Vec<ServedModel>) -> bool {
        self.state.set_models(models)
    }

    /// Configures models the server knows before any is loaded: those with a loader load
    /// on their first request (and may be unloaded again: keep-alive, memory budget). A
    /// name or alias used twice is an error.
    pub fn add_models(&self, models: Vec<ModelEntry>) -> Result<(), String> {
        models
            .into_iter()
            .try_for_each(|m| self.state.registry.add(m))
    }

    /// Starts the keep-alive housekeeping on the current tokio runtime (`run` does it):
    /// unpinned models idle for longer than the keep-alive are unloaded.
    pub fn spawn_keep_alive(&self) {
        let Some(keep_alive) = self.state.config.registry.keep_alive else {
            return;
        };
        let state = Arc::downgrade(&self.state);
        let tick = (keep_alive / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(tick);
            loop {
                interval.tick().await;
                let Some(state) = state.upgrade() else { return };
                if state.is_shutting_down() {
                    return;
                }
                state.registry.unload_idle();
            }
        });
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
        self.spawn_keep_alive();
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
        let models = self.state.registry.loaded();
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
