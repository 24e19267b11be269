//! `GET /metrics` in the Prometheus text exposition format (version 0.0.4), written by
//! `prometheus-client`: the engines' counters, gauges and latency histograms plus the
//! server's refusals, one series per served model (label `model`).
//!
//! The engine thread keeps its numbers in plain atomics (`kaiyuan_engine::EngineMetrics`)
//! so that it never waits on a registry lock; each scrape reads them once into a
//! [`ModelMetrics`] and hands them to prometheus-client as a [`Collector`] of a registry
//! built for that scrape, which does the naming (`_total`, `_bucket`/`_sum`/`_count`,
//! `le="+Inf"`), escaping and number formatting.

use std::sync::atomic::Ordering::Relaxed;

use kaiyuan_engine::{HistogramSnapshot, MetricsSnapshot};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{prometheus_text, DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::metering::MeteredTotals;
use crate::state::ServedModel;

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// One model's numbers at one moment.
#[derive(Debug)]
pub struct ModelMetrics {
    pub model: String,
    pub engine: MetricsSnapshot,
    pub queue_full: u64,
    pub invalid: u64,
    pub shutting_down: u64,
}

impl ModelMetrics {
    pub fn read(m: &ServedModel) -> ModelMetrics {
        ModelMetrics {
            model: m.name.clone(),
            engine: m.engine.metrics(),
            queue_full: m.counters.queue_full.load(Relaxed),
            invalid: m.counters.invalid.load(Relaxed),
            shutting_down: m.counters.shutting_down.load(Relaxed),
        }
    }
}

/// Renders all models' metrics, then the metering counters (families only once a metered
/// request has ended).
pub fn render(models: Vec<ModelMetrics>, metered: Vec<MeteredTotals>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Engines(models)));
    if !metered.is_empty() {
        registry.register_collector(Box::new(Metered(metered)));
    }
    let mut out = String::new();
    // Writing into a String cannot fail, and our collectors return no errors of their own.
    let _ = prometheus_text::encode(&mut out, &registry);
    out
}

type Get = fn(&ModelMetrics) -> u64;

/// Counters, by family name without the `_total` that the encoder adds.
const COUNTERS: [(&str, &str, Get); 6] = [
    (
        "kaiyuan_prompt_tokens",
        "Prompt tokens of admitted requests.",
        |m| m.engine.prompt_tokens,
    ),
    ("kaiyuan_generated_tokens", "Tokens generated.", |m| {
        m.engine.generated_tokens
    }),
    (
        "kaiyuan_cached_prompt_tokens",
        "Prompt tokens served from the prefix cache instead of computed.",
        |m| m.engine.cached_prompt_tokens,
    ),
    (
        "kaiyuan_computed_tokens",
        "Token positions run through the model (prefill and decode).",
        |m| m.engine.computed_tokens,
    ),
    ("kaiyuan_engine_steps", "Forward passes run.", |m| {
        m.engine.steps
    }),
    (
        "kaiyuan_preemptions",
        "Sequences evicted from the running batch for lack of KV blocks.",
        |m| m.engine.preemptions,
    ),
];

const GAUGES: [(&str, &str, Get); 6] = [
    (
        "kaiyuan_queue_length",
        "Requests accepted but not yet running.",
        |m| m.engine.queued,
    ),
    (
        "kaiyuan_running_sequences",
        "Sequences in the running batch.",
        |m| m.engine.running,
    ),
    (
        "kaiyuan_kv_blocks_total",
        "KV cache blocks in the pool.",
        |m| m.engine.kv_blocks_total,
    ),
    (
        "kaiyuan_kv_blocks_used",
        "KV cache blocks held by running sequences.",
        |m| m.engine.kv_blocks_used,
    ),
    (
        "kaiyuan_kv_blocks_cached",
        "Free KV cache blocks that still hold a cached prefix.",
        |m| m.engine.kv_blocks_cached,
    ),
    (
        "kaiyuan_kv_blocks_free",
        "KV cache blocks neither used nor holding a cached prefix.",
        |m| {
            m.engine
                .kv_blocks_total
                .saturating_sub(m.engine.kv_blocks_used + m.engine.kv_blocks_cached)
        },
    ),
];

/// The served models' numbers, read once per scrape.
#[derive(Debug)]
struct Engines(Vec<ModelMetrics>);

impl Collector for Engines {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "kaiyuan_requests",
            "Requests by outcome: finished (stop or length), cancelled, failed (engine error), or refused before running (queue_full, invalid, shutting_down).",
            None,
            MetricType::Counter,
        )?;
        for m in &self.0 {
            for (outcome, value) in [
                ("finished", m.engine.requests_finished),
                ("cancelled", m.engine.requests_cancelled),
                ("failed", m.engine.requests_failed),
                ("queue_full", m.queue_full),
                ("invalid", m.invalid),
                ("shutting_down", m.shutting_down),
            ] {
                let labels = [("model", m.model.as_str()), ("outcome", outcome)];
                family
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
            }
        }
        for (kind, list) in [
            (MetricType::Counter, &COUNTERS),
            (MetricType::Gauge, &GAUGES),
        ] {
            for (name, help, get) in list {
                let mut family = encoder.encode_descriptor(name, help, None, kind)?;
                for m in &self.0 {
                    let labels = [("model", m.model.as_str())];
                    let mut series = family.encode_family(&labels)?;
                    match kind {
                        MetricType::Counter => {
                            series.encode_counter::<NoLabelSet, _, u64>(&get(m), None)?
                        }
                        _ => series.encode_gauge(&get(m))?,
                    }
                }
            }
        }
        type Hist = fn(&MetricsSnapshot) -> &HistogramSnapshot;
        let histograms: [(&str, &str, Hist); 2] = [
            (
                "kaiyuan_time_to_first_token_seconds",
                "Time from submission to the first generated token.",
                |s| &s.time_to_first_token,
            ),
            (
                "kaiyuan_inter_token_latency_seconds",
                "Time between consecutive generated tokens of a sequence.",
                |s| &s.inter_token_latency,
            ),
        ];
        for (name, help, get) in histograms {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
            for m in &self.0 {
                let h = get(&m.engine);
                let labels = [("model", m.model.as_str())];
                family
                    .encode_family(&labels)?
                    .encode_histogram::<NoLabelSet>(h.sum_seconds, h.count(), &buckets(h), None)?;
            }
        }
        Ok(())
    }
}

/// The metering counters per model (no per-key labels: keys are unbounded).
#[derive(Debug)]
struct Metered(Vec<MeteredTotals>);

impl Collector for Metered {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "kaiyuan_metered_cost_usd",
            "What metered requests cost by the price table (USD).",
            None,
            MetricType::Counter,
        )?;
        for t in &self.0 {
            family
                .encode_family(&[("model", t.model.as_str())])?
                .encode_counter::<NoLabelSet, _, u64>(&t.cost_usd, None)?;
        }
        type Get = fn(&MeteredTotals) -> u64;
        let families: [(&str, &str, Get); 2] = [
            (
                "kaiyuan_metered_cached_tokens",
                "Prompt tokens of metered requests served from the prefix cache (billed at the cache-hit price).",
                |t| t.cached_tokens,
            ),
            (
                "kaiyuan_metered_requests",
                "Metered requests settled (one usage record each).",
                |t| t.requests,
            ),
        ];
        for (name, help, get) in families {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for t in &self.0 {
                family
                    .encode_family(&[("model", t.model.as_str())])?
                    .encode_counter::<NoLabelSet, _, u64>(&get(t), None)?;
            }
        }
        Ok(())
    }
}

/// The finite buckets with their own (not cumulative) counts, as the encoder wants them;
/// it adds the `+Inf` bucket from the total count.
fn buckets(h: &HistogramSnapshot) -> Vec<(f64, u64)> {
    let mut below = 0;
    h.bounds
        .iter()
        .zip(&h.cumulative)
        .map(|(&bound, &cumulative)| {
            let own = cumulative.saturating_sub(below);
            below = cumulative;
            (bound, own)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> MetricsSnapshot {
        let hist = HistogramSnapshot {
            bounds: vec![0.1, 1.0],
            cumulative: vec![1, 3, 4],
            sum_seconds: 2.5,
        };
        MetricsSnapshot {
            requests_finished: 7,
            requests_cancelled: 1,
            requests_failed: 0,
            prompt_tokens: 100,
            generated_tokens: 50,
            cached_prompt_tokens: 32,
            computed_tokens: 118,
            steps: 60,
            preemptions: 0,
            queued: 2,
            running: 3,
            kv_blocks_total: 64,
            kv_blocks_used: 10,
            kv_blocks_cached: 4,
            time_to_first_token: hist.clone(),
            inter_token_latency: hist,
        }
    }

    fn one(model: &str) -> ModelMetrics {
        ModelMetrics {
            model: model.into(),
            engine: snapshot(),
            queue_full: 5,
            invalid: 2,
            shutting_down: 0,
        }
    }

    /// The whole text for one model, written out by hand from the exposition format's rules
    /// (and from the hand-written renderer this module replaced, which printed the same).
    #[test]
    fn exposition_text_is_exactly_the_format() {
        let text = render(vec![one("small\"one")], Vec::new());
        let m = r#"model="small\"one""#;
        let mut want = String::from(
            "# HELP kaiyuan_requests_total Requests by outcome: finished (stop or length), cancelled, failed (engine error), or refused before running (queue_full, invalid, shutting_down).\n# TYPE kaiyuan_requests_total counter\n",
        );
        for (outcome, v) in [
            ("finished", 7),
            ("cancelled", 1),
            ("failed", 0),
            ("queue_full", 5),
            ("invalid", 2),
            ("shutting_down", 0),
        ] {
            want += &format!("kaiyuan_requests_total{{{m},outcome=\"{outcome}\"}} {v}\n");
        }
        for (name, kind, help, v) in [
            (
                "kaiyuan_prompt_tokens_total",
                "counter",
                "Prompt tokens of admitted requests.",
                100,
            ),
            (
                "kaiyuan_generated_tokens_total",
                "counter",
                "Tokens generated.",
                50,
            ),
            (
                "kaiyuan_cached_prompt_tokens_total",
                "counter",
                "Prompt tokens served from the prefix cache instead of computed.",
                32,
            ),
            (
                "kaiyuan_computed_tokens_total",
                "counter",
                "Token positions run through the model (prefill and decode).",
                118,
            ),
            (
                "kaiyuan_engine_steps_total",
                "counter",
                "Forward passes run.",
                60,
            ),
            (
                "kaiyuan_preemptions_total",
                "counter",
                "Sequences evicted from the running batch for lack of KV blocks.",
                0,
            ),
            (
                "kaiyuan_queue_length",
                "gauge",
                "Requests accepted but not yet running.",
                2,
            ),
            (
                "kaiyuan_running_sequences",
                "gauge",
                "Sequences in the running batch.",
                3,
            ),
            (
                "kaiyuan_kv_blocks_total",
                "gauge",
                "KV cache blocks in the pool.",
                64,
            ),
            (
                "kaiyuan_kv_blocks_used",
                "gauge",
                "KV cache blocks held by running sequences.",
                10,
            ),
            (
                "kaiyuan_kv_blocks_cached",
                "gauge",
                "Free KV cache blocks that still hold a cached prefix.",
                4,
            ),
            (
                "kaiyuan_kv_blocks_free",
                "gauge",
                "KV cache blocks neither used nor holding a cached prefix.",
                50,
            ),
        ] {
            want += &format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{{m}}} {v}\n");
        }
        for (name, help) in [
            (
                "kaiyuan_time_to_first_token_seconds",
                "Time from submission to the first generated token.",
            ),
            (
                "kaiyuan_inter_token_latency_seconds",
                "Time between consecutive generated tokens of a sequence.",
            ),
        ] {
            want += &format!(
                "# HELP {name} {help}\n# TYPE {name} histogram\n\
                 {name}_bucket{{{m},le=\"0.1\"}} 1\n\
                 {name}_bucket{{{m},le=\"1\"}} 3\n\
                 {name}_bucket{{{m},le=\"+Inf\"}} 4\n\
                 {name}_sum{{{m}}} 2.5\n\
                 {name}_count{{{m}}} 4\n"
            );
        }
        assert_eq!(text, want);
    }

    #[test]
    fn no_models_no_series_but_the_families() {
        let text = render(Vec::new(), Vec::new());
        assert!(text.contains("# TYPE kaiyuan_requests_total counter\n"));
        assert!(!text.lines().any(|l| !l.starts_with('#')), "{text}");
    }
}
