//! `GET /metrics` in the Prometheus text exposition format (version 0.0.4): the engines'
//! counters, gauges and latency histograms plus the server's refusals, one series per
//! served model (label `model`).

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use kaiyuan_engine::{HistogramSnapshot, MetricsSnapshot};

use crate::state::ServedModel;

/// One model's numbers at one moment.
pub struct ModelMetrics<'a> {
    pub model: &'a str,
    pub engine: MetricsSnapshot,
    pub queue_full: u64,
    pub invalid: u64,
    pub shutting_down: u64,
}

impl<'a> ModelMetrics<'a> {
    pub fn read(m: &'a ServedModel) -> ModelMetrics<'a> {
        ModelMetrics {
            model: &m.name,
            engine: m.engine.metrics(),
            queue_full: m.counters.queue_full.load(Relaxed),
            invalid: m.counters.invalid.load(Relaxed),
            shutting_down: m.counters.shutting_down.load(Relaxed),
        }
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Renders all models' metrics.
pub fn render(models: &[ModelMetrics<'_>]) -> String {
    let mut out = String::new();
    type Get = fn(&ModelMetrics<'_>) -> u64;
    let simple: [(&str, &str, &str, Get); 12] = [
        (
            "kaiyuan_prompt_tokens_total",
            "counter",
            "Prompt tokens of admitted requests.",
            |m| m.engine.prompt_tokens,
        ),
        (
            "kaiyuan_generated_tokens_total",
            "counter",
            "Tokens generated.",
            |m| m.engine.generated_tokens,
        ),
        (
            "kaiyuan_cached_prompt_tokens_total",
            "counter",
            "Prompt tokens served from the prefix cache instead of computed.",
            |m| m.engine.cached_prompt_tokens,
        ),
        (
            "kaiyuan_computed_tokens_total",
            "counter",
            "Token positions run through the model (prefill and decode).",
            |m| m.engine.computed_tokens,
        ),
        (
            "kaiyuan_engine_steps_total",
            "counter",
            "Forward passes run.",
            |m| m.engine.steps,
        ),
        (
            "kaiyuan_preemptions_total",
            "counter",
            "Sequences evicted from the running batch for lack of KV blocks.",
            |m| m.engine.preemptions,
        ),
        (
            "kaiyuan_queue_length",
            "gauge",
            "Requests accepted but not yet running.",
            |m| m.engine.queued,
        ),
        (
            "kaiyuan_running_sequences",
            "gauge",
            "Sequences in the running batch.",
            |m| m.engine.running,
        ),
        (
            "kaiyuan_kv_blocks_total",
            "gauge",
            "KV cache blocks in the pool.",
            |m| m.engine.kv_blocks_total,
        ),
        (
            "kaiyuan_kv_blocks_used",
            "gauge",
            "KV cache blocks held by running sequences.",
            |m| m.engine.kv_blocks_used,
        ),
        (
            "kaiyuan_kv_blocks_cached",
            "gauge",
            "Free KV cache blocks that still hold a cached prefix.",
            |m| m.engine.kv_blocks_cached,
        ),
        (
            "kaiyuan_kv_blocks_free",
            "gauge",
            "KV cache blocks neither used nor holding a cached prefix.",
            |m| {
                m.engine
                    .kv_blocks_total
                    .saturating_sub(m.engine.kv_blocks_used + m.engine.kv_blocks_cached)
            },
        ),
    ];
    family(
        &mut out,
        "kaiyuan_requests_total",
        "counter",
        "Requests by outcome: finished (stop or length), cancelled, failed (engine error), or refused before running (queue_full, invalid, shutting_down).",
    );
    for m in models {
        let model = label(m.model);
        for (outcome, value) in [
            ("finished", m.engine.requests_finished),
            ("cancelled", m.engine.requests_cancelled),
            ("failed", m.engine.requests_failed),
            ("queue_full", m.queue_full),
            ("invalid", m.invalid),
            ("shutting_down", m.shutting_down),
        ] {
            let _ = writeln!(
                out,
                "kaiyuan_requests_total{{model=\"{model}\",outcome=\"{outcome}\"}} {value}"
            );
        }
    }
    for (name, kind, help, get) in simple {
        family(&mut out, name, kind, help);
        for m in models {
            let _ = writeln!(out, "{name}{{model=\"{}\"}} {}", label(m.model), get(m));
        }
    }
    for (name, help, ttft) in [
        (
            "kaiyuan_time_to_first_token_seconds",
            "Time from submission to the first generated token.",
            true,
        ),
        (
            "kaiyuan_inter_token_latency_seconds",
            "Time between consecutive generated tokens of a sequence.",
            false,
        ),
    ] {
        family(&mut out, name, "histogram", help);
        for m in models {
            let h = if ttft {
                &m.engine.time_to_first_token
            } else {
                &m.engine.inter_token_latency
            };
            histogram(&mut out, name, &label(m.model), h);
        }
    }
    out
}

fn histogram(out: &mut String, name: &str, model: &str, h: &HistogramSnapshot) {
    for (bound, count) in h.bounds.iter().zip(&h.cumulative) {
        let _ = writeln!(
            out,
            "{name}_bucket{{model=\"{model}\",le=\"{bound}\"}} {count}"
        );
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{model=\"{model}\",le=\"+Inf\"}} {}",
        h.count()
    );
    let _ = writeln!(out, "{name}_sum{{model=\"{model}\"}} {}", h.sum_seconds);
    let _ = writeln!(out, "{name}_count{{model=\"{model}\"}} {}", h.count());
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

    #[test]
    fn exposition_has_every_family_and_valid_lines() {
        let text = render(&[ModelMetrics {
            model: "small\"one",
            engine: snapshot(),
            queue_full: 5,
            invalid: 2,
            shutting_down: 0,
        }]);
        assert!(text
            .contains("kaiyuan_requests_total{model=\"small\\\"one\",outcome=\"queue_full\"} 5\n"));
        assert!(text.contains("kaiyuan_computed_tokens_total{model=\"small\\\"one\"} 118\n"));
        assert!(text.contains("kaiyuan_running_sequences{model=\"small\\\"one\"} 3\n"));
        assert!(text.contains("kaiyuan_kv_blocks_free{model=\"small\\\"one\"} 50\n"));
        assert!(text.contains(
            "kaiyuan_time_to_first_token_seconds_bucket{model=\"small\\\"one\",le=\"+Inf\"} 4\n"
        ));
        assert!(
            text.contains("kaiyuan_inter_token_latency_seconds_count{model=\"small\\\"one\"} 4\n")
        );
        for line in text.lines() {
            if line.starts_with('#') {
                assert!(
                    line.starts_with("# HELP ") || line.starts_with("# TYPE "),
                    "{line}"
                );
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("series and value");
            assert!(series.starts_with("kaiyuan_"), "{line}");
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
