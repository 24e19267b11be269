//! Kaiyuan's engine layer: everything between a tokenized request and its token stream.
//! One thread ([`Engine::start`]) owns the model, the scheduler and the KV block pool;
//! callers talk to it through an [`EngineHandle`] by message and get [`Event`]s back.
//!
//! - [`sampling`]: logit bias, penalties, temperature, top-k / top-p / min-p, seeded draw,
//!   log-probabilities (works on plain logits, knows nothing of the model).
//! - `block_pool`: the KV blocks with reference counts and the prefix cache (hash-chained
//!   full blocks, LRU eviction).
//! - `scheduler`: continuous batching under a token budget, chunked prefill, preemption.
//! - `worker`: the engine thread: forward, sample, detokenize, stop, stream.
//! - `failure`: the engine thread under `catch_unwind`: a panic is logged and reported
//!   by [`EngineHandle::failure`].

mod block_pool;
mod failure;
mod handle;
mod metrics;
mod output;
mod request;
pub mod sampling;
mod scheduler;
mod worker;

pub use handle::{Engine, EngineConfig, EngineHandle, EngineInfo, EventReceiver, QueueReservation};
pub use metrics::{HistogramSnapshot, MetricsSnapshot, LATENCY_BUCKETS};
pub use request::{
    Event, FinishReason, Finished, GenerateRequest, RequestId, SubmitError, TokenEvent, Usage,
};
