//! Counters and gauges the engine thread keeps for monitoring (`/metrics`): plain atomics
//! written by the engine, read by anyone through [`EngineMetrics::snapshot`]. Atomics, not
//! `prometheus-client`'s metric types (its histograms lock), so that the engine thread
//! never waits on a scrape; the server hands the snapshots to `prometheus-client` as a
//! collector, which writes the text.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets; a final `+Inf` bucket is
/// implied.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A cumulative-on-read latency histogram.
#[derive(Default)]
pub struct Histogram {
    /// Per bucket (not cumulative), the last one is `+Inf`.
    counts: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros().min(u64::MAX as u128) as u64, Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = Vec::with_capacity(self.counts.len());
        let mut total = 0;
        for c in &self.counts {
            total += c.load(Relaxed);
            cumulative.push(total);
        }
        HistogramSnapshot {
            bounds: LATENCY_BUCKETS.to_vec(),
            cumulative,
            sum_seconds: self.sum_micros.load(Relaxed) as f64 / 1e6,
        }
    }
}

/// A histogram read at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    /// Bucket upper bounds in seconds (without `+Inf`).
    pub bounds: Vec<f64>,
    /// Cumulative counts, one per bound, then the `+Inf` bucket (= the total count).
    pub cumulative: Vec<u64>,
    pub sum_seconds: f64,
}

impl HistogramSnapshot {
    pub fn count(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }
}

/// Live numbers of one engine.
#[derive(Default)]
pub struct EngineMetrics {
    pub(crate) requests_finished: AtomicU64,
    pub(crate) requests_cancelled: AtomicU64,
    pub(crate) requests_failed: AtomicU64,
    pub(crate) prompt_tokens: AtomicU64,
    pub(crate) generated_tokens: AtomicU64,
    pub(crate) cached_prompt_tokens: AtomicU64,
    pub(crate) computed_tokens: AtomicU64,
    pub(crate) steps: AtomicU64,
    pub(crate) preemptions: AtomicU64,
    pub(crate) queued: AtomicU64,
    pub(crate) running: AtomicU64,
    pub(crate) kv_blocks_total: AtomicU64,
    pub(crate) kv_blocks_used: AtomicU64,
    pub(crate) kv_blocks_cached: AtomicU64,
    pub(crate) time_to_first_token: Histogram,
    pub(crate) inter_token_latency: Histogram,
}

/// [`EngineMetrics`] read at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsSnapshot {
    /// Requests that ended with `stop` or `length`.
    pub requests_finished: u64,
    /// Requests cancelled by their caller (or shut down).
    pub requests_cancelled: u64,
    /// Requests that ended in an engine error.
    pub requests_failed: u64,
    /// Prompt tokens of admitted requests.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub generated_tokens: u64,
    /// Prompt tokens served from the prefix cache.
    pub cached_prompt_tokens: u64,
    /// Token positions run through the model (prefill and decode): the work actually done.
    pub computed_tokens: u64,
    /// Forward passes run.
    pub steps: u64,
    /// Sequences evicted from the running batch for lack of KV blocks (recomputed later).
    pub preemptions: u64,
    /// Requests accepted but not yet running.
    pub queued: u64,
    /// Sequences in the running batch.
    pub running: u64,
    pub kv_blocks_total: u64,
    /// Blocks held by running sequences.
    pub kv_blocks_used: u64,
    /// Free blocks that still hold a cached prefix (reusable until evicted).
    pub kv_blocks_cached: u64,
    pub time_to_first_token: HistogramSnapshot,
    pub inter_token_latency: HistogramSnapshot,
}

impl EngineMetrics {
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            requests_finished: self.requests_finished.load(Relaxed),
            requests_cancelled: self.requests_cancelled.load(Relaxed),
            requests_failed: self.requests_failed.load(Relaxed),
            prompt_tokens: self.prompt_tokens.load(Relaxed),
            generated_tokens: self.generated_tokens.load(Relaxed),
            cached_prompt_tokens: self.cached_prompt_tokens.load(Relaxed),
            computed_tokens: self.computed_tokens.load(Relaxed),
            steps: self.steps.load(Relaxed),
            preemptions: self.preemptions.load(Relaxed),
            queued: self.queued.load(Relaxed),
            running: self.running.load(Relaxed),
            kv_blocks_total: self.kv_blocks_total.load(Relaxed),
            kv_blocks_used: self.kv_blocks_used.load(Relaxed),
            kv_blocks_cached: self.kv_blocks_cached.load(Relaxed),
            time_to_first_token: self.time_to_first_token.snapshot(),
            inter_token_latency: self.inter_token_latency.snapshot(),
        }
    }
}
