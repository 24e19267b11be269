//! What operators read: `/metrics` after a real request, parsed by the rules of the
//! Prometheus text exposition format (0.0.4) rather than by our own renderer, and the
//! request's log line as a JSON `tracing` event with every field.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use kaiyuan_chat::ChatTemplate;
use kaiyuan_engine::{Engine, EngineConfig};
use kaiyuan_gguf::GgufFile;
use kaiyuan_model::Model;
use kaiyuan_server::{ServedModel, Server, ServerConfig};
use kaiyuan_tokenizer::{Tokenizer, Vocab};
use serde_json::Value;
use tower::ServiceExt;

fn served(name: &str) -> ServedModel {
    let dir = std::env::var_os("KAIYUAN_MODELS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"),
        PathBuf::from,
    );
    let path = dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-models",
        path.display()
    );
    let gguf = Arc::new(GgufFile::open(path).expect("open"));
    let tokenizer = Arc::new(
        Tokenizer::from_vocab(&Vocab::from_gguf(&gguf).expect("vocab")).expect("tokenizer"),
    );
    let source = gguf
        .get_str("tokenizer.chat_template")
        .expect("metadata")
        .expect("SmolLM2 has a chat template")
        .to_string();
    let template = ChatTemplate::new(&source, None, Some("<|im_end|>")).expect("template");
    let model = Model::from_gguf(gguf).expect("model");
    let mut config = EngineConfig::for_model(&model);
    config.threads = 1;
    config.context = 256;
    config.kv_tokens = 512;
    let engine = Engine::start(model, Arc::clone(&tokenizer), config).expect("engine starts");
    ServedModel::new(name.into(), "SmolLM2".into(), engine, tokenizer, template)
}

async fn call(server: &Server, request: Request<Body>) -> (StatusCode, String, Vec<u8>) {
    let response = server.router().oneshot(request).await.expect("infallible");
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map_or(String::new(), |v| v.to_str().unwrap().to_string());
    let body = response.into_body().collect().await.expect("body");
    (status, content_type, body.to_bytes().to_vec())
}

/// A series' labels, sorted.
type Labels = Vec<(String, String)>;

/// A series: its name and labels.
type Series = (String, Labels);

/// Parses `name{a="x",b="y"}` (label values with `\\`, `\"`, `\n` escapes).
fn parse_series(s: &str) -> Series {
    let Some((name, rest)) = s.split_once('{') else {
        return (s.to_string(), Vec::new());
    };
    let mut labels = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        assert_eq!(
            chars.next(),
            Some('"'),
            "label {key} of {s}: value not quoted"
        );
        let mut value = String::new();
        loop {
            match chars
                .next()
                .unwrap_or_else(|| panic!("unterminated value in {s}"))
            {
                '\\' => match chars.next() {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    other => panic!("bad escape {other:?} in {s}"),
                },
                '"' => break,
                '\n' => panic!("raw newline in {s}"),
                c => value.push(c),
            }
        }
        assert!(
            key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !key.is_empty(),
            "label name {key:?} in {s}"
        );
        labels.push((key, value));
        match chars.next() {
            Some(',') => continue,
            Some('}') => break,
            other => panic!("after a label value: {other:?} in {s}"),
        }
    }
    assert_eq!(chars.next(), None, "text after the labels in {s}");
    labels.sort();
    (name.to_string(), labels)
}

/// Checks `text` by the exposition format's rules and returns its samples. Rules: every
/// line is `# HELP`, `# TYPE` or a sample; a family's HELP and TYPE come once, before its
/// samples; a sample belongs to the family declared last (counter and gauge: the family's
/// name; histogram: `_bucket` with an `le` label, `_sum`, `_count`); no series twice; per
/// histogram series, `le` ascends to `+Inf`, counts are cumulative and `+Inf` = `_count`.
fn parse_exposition(text: &str) -> BTreeMap<Series, f64> {
    let mut samples = BTreeMap::new();
    let mut families: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    let mut helped: Option<String> = None;
    assert!(text.ends_with('\n'), "the text ends with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(!help.is_empty() && !families.contains_key(name), "{line}");
            helped = Some(name.to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert_eq!(helped.take().as_deref(), Some(name), "HELP before {line}");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(
                families.insert(name.into(), kind.into()).is_none(),
                "{line}"
            );
            current = Some((name.into(), kind.into()));
        } else {
            assert!(!line.starts_with('#'), "unknown comment: {line}");
            let (series, value) = line.rsplit_once(' ').expect("series and value");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
            let (name, labels) = parse_series(series);
            let (family, kind) = current
                .as_ref()
                .unwrap_or_else(|| panic!("no TYPE: {line}"));
            let ok = match kind.as_str() {
                "histogram" => {
                    let le = labels.iter().any(|(k, _)| k == "le");
                    (name == format!("{family}_bucket") && le)
                        || ((name == format!("{family}_sum") || name == format!("{family}_count"))
                            && !le)
                }
                "counter" => name == *family && name.ends_with("_total") && value >= 0.0,
                _ => name == *family,
            };
            assert!(ok, "{line} does not belong to {kind} {family}");
            assert!(
                samples.insert((name, labels), value).is_none(),
                "twice: {line}"
            );
        }
    }
    for (family, kind) in &families {
        if kind != "histogram" {
            continue;
        }
        let bucket = format!("{family}_bucket");
        let mut per_series: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
        for ((name, labels), v) in &samples {
            if *name == bucket {
                let le = &labels.iter().find(|(k, _)| k == "le").unwrap().1;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                let rest: Vec<_> = labels.iter().filter(|(k, _)| k != "le").cloned().collect();
                per_series.entry(rest).or_default().push((le, *v));
            }
        }
        for (labels, mut buckets) in per_series {
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert_eq!(
                buckets.last().unwrap().0,
                f64::INFINITY,
                "{family} {labels:?}: +Inf"
            );
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "{family}: cumulative"
            );
            let count = samples[&(format!("{family}_count"), labels.clone())];
            assert_eq!(buckets.last().unwrap().1, count, "{family}: +Inf = _count");
            assert!(
                samples.contains_key(&(format!("{family}_sum"), labels)),
                "{family}_sum"
            );
        }
    }
    samples
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_request_shows_in_metrics_and_in_one_json_log_line() {
    let logs = Buf::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime runs on this thread, where the handler drops the request's log.
    let _guard = tracing::subscriber::set_default(subscriber);

    let s = Server::new(ServerConfig {
        model_names: vec!["small\"one".into()],
        ..ServerConfig::default()
    });
    assert!(s.set_models(vec![served("small\"one")]));
    let chat = r#"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "user": "ann \"x\""}"#;
    let request = Request::post("/v1/chat/completions")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(chat))
        .unwrap();
    let (status, _, body) = call(&s, request).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let response: Value = serde_json::from_slice(&body).unwrap();
    let usage = &response["usage"];
    let completion = usage["completion_tokens"].as_f64().unwrap();
    let prompt = usage["prompt_tokens"].as_f64().unwrap();
    assert!(completion >= 1.0);

    // The log: one JSON object for the one request, with every field.
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v: &Value| v["target"] == "kaiyuan_server::request")
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    let line = &lines[0];
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["req"], response["id"]);
    assert_eq!(line["endpoint"], "chat");
    assert_eq!(line["model"], "small\"one");
    assert_eq!(line["user"], "ann \"x\"");
    assert_eq!(line["status"], "200");
    assert!(
        ["stop", "length"].contains(&line["finish"].as_str().unwrap()),
        "{line}"
    );
    assert_eq!(line["prompt"].as_f64(), Some(prompt));
    assert_eq!(line["completion"].as_f64(), Some(completion));
    assert_eq!(line["cached"], 0);
    assert!(
        line["ttft_ms"].is_u64() && line["duration_ms"].is_u64(),
        "{line}"
    );
    assert!(
        line.get("key").is_none(),
        "an unmetered request has no key: {line}"
    );

    // The metrics: the format's rules, the series that exist, and this request's numbers.
    let (status, content_type, body) =
        call(&s, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let samples = parse_exposition(&String::from_utf8(body).unwrap());
    let names: BTreeSet<&str> = samples.keys().map(|(n, _)| n.as_str()).collect();
    // The series list of the hand-written renderer this replaced (before issue 18).
    let before: BTreeSet<&str> = [
        "kaiyuan_requests_total",
        "kaiyuan_prompt_tokens_total",
        "kaiyuan_generated_tokens_total",
        "kaiyuan_cached_prompt_tokens_total",
        "kaiyuan_computed_tokens_total",
        "kaiyuan_engine_steps_total",
        "kaiyuan_preemptions_total",
        "kaiyuan_queue_length",
        "kaiyuan_running_sequences",
        "kaiyuan_kv_blocks_total",
        "kaiyuan_kv_blocks_used",
        "kaiyuan_kv_blocks_cached",
        "kaiyuan_kv_blocks_free",
        "kaiyuan_time_to_first_token_seconds_bucket",
        "kaiyuan_time_to_first_token_seconds_sum",
        "kaiyuan_time_to_first_token_seconds_count",
        "kaiyuan_inter_token_latency_seconds_bucket",
        "kaiyuan_inter_token_latency_seconds_sum",
        "kaiyuan_inter_token_latency_seconds_count",
    ]
    .into();
    assert_eq!(names, before);
    // 6 outcomes + 12 single series + 2 histograms of 15 buckets, a sum and a count.
    assert_eq!(samples.len(), 6 + 12 + 2 * 17);
    let model = ("model".to_string(), "small\"one".to_string());
    let get = |name: &str, extra: &[(&str, &str)]| {
        let mut labels = vec![model.clone()];
        labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        labels.sort();
        samples[&(name.to_string(), labels)]
    };
    assert_eq!(
        get("kaiyuan_requests_total", &[("outcome", "finished")]),
        1.0
    );
    assert_eq!(
        get("kaiyuan_requests_total", &[("outcome", "invalid")]),
        0.0
    );
    assert_eq!(get("kaiyuan_generated_tokens_total", &[]), completion);
    assert_eq!(get("kaiyuan_prompt_tokens_total", &[]), prompt);
    assert_eq!(get("kaiyuan_running_sequences", &[]), 0.0);
    assert_eq!(get("kaiyuan_time_to_first_token_seconds_count", &[]), 1.0);
    assert_eq!(
        get(
            "kaiyuan_time_to_first_token_seconds_bucket",
            &[("le", "+Inf")]
        ),
        1.0
    );
    assert_eq!(
        get("kaiyuan_inter_token_latency_seconds_count", &[]),
        completion - 1.0
    );
    assert!(get("kaiyuan_time_to_first_token_seconds_sum", &[]) > 0.0);
    let total = get("kaiyuan_kv_blocks_total", &[]);
    let parts = [
        "kaiyuan_kv_blocks_used",
        "kaiyuan_kv_blocks_cached",
        "kaiyuan_kv_blocks_free",
    ];
    assert_eq!(parts.iter().map(|n| get(n, &[])).sum::<f64>(), total);
}
