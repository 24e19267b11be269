//! The router in process (no sockets): status codes, error shapes, authentication, limits,
//! the loading state, model selection, tokenize/detokenize and the metrics format. What
//! needs real generation is in the end-to-end suite (`tests/e2e`).

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use kaiyuan_chat::ChatTemplate;
use kaiyuan_engine::{Engine, EngineConfig};
use kaiyuan_gguf::GgufFile;
use kaiyuan_model::Model;
use kaiyuan_server::{ServedModel, Server, ServerConfig};
use kaiyuan_tokenizer::{Tokenizer, Vocab};
use serde_json::{json, Value};
use tower::ServiceExt;

const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn model_path() -> PathBuf {
    let dir = std::env::var_os("KAIYUAN_MODELS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"),
        PathBuf::from,
    );
    let p = dir.join(SMOLLM2);
    assert!(
        p.exists(),
        "{} is missing: run scripts/fetch-models",
        p.display()
    );
    p
}

/// SmolLM2 served under `name`, on a small engine.
fn served(name: &str) -> ServedModel {
    let gguf = Arc::new(GgufFile::open(model_path()).expect("open"));
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
    ServedModel::new(
        name.into(),
        "SmolLM2-135M-Instruct.Q4_1".into(),
        engine,
        tokenizer,
        template,
    )
}

fn server(names: &[&str], keys: &[&str]) -> Server {
    Server::new(ServerConfig {
        model_names: names.iter().map(|s| s.to_string()).collect(),
        api_keys: keys.iter().map(|s| s.to_string()).collect(),
        body_limit: 64 * 1024,
        ..ServerConfig::default()
    })
}

async fn call(
    server: &Server,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = server.router().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

fn post(path: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

/// The body is OpenAI's error shape; returns (type, param, code).
fn error_of(body: &[u8]) -> (String, Value, Value) {
    let v = json_of(body);
    let e = &v["error"];
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    (
        e["type"].as_str().unwrap().to_string(),
        e["param"].clone(),
        e["code"].clone(),
    )
}

const CHAT: &str = r#"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}"#;

#[tokio::test]
async fn while_loading_health_is_503_and_requests_are_refused() {
    let s = server(&["small"], &[]);
    let (status, _, body) = call(&s, get("/health")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json_of(&body), json!({"status": "loading"}));
    let (status, _, body) = call(&s, post("/v1/chat/completions", CHAT)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_of(&body).2, json!("model_loading"));
    let (status, _, body) = call(&s, get("/v1/models")).await;
    assert_eq!(status, StatusCode::OK);
    let list = json_of(&body);
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"][0]["id"], "small");
    assert_eq!(list["data"][0]["object"], "model");
}

#[tokio::test]
async fn malformed_requests_get_json_errors_never_plain_text() {
    let s = server(&["small"], &[]);
    let cases: Vec<(Request<Body>, StatusCode, Value)> = vec![
        (
            post("/v1/chat/completions", "{not json"),
            StatusCode::BAD_REQUEST,
            Value::Null,
        ),
        (
            post("/v1/chat/completions", "[]"),
            StatusCode::BAD_REQUEST,
            Value::Null,
        ),
        (
            post(
                "/v1/chat/completions",
                r#"{"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}"#,
            ),
            StatusCode::BAD_REQUEST,
            json!("temperature"),
        ),
        (
            post("/v1/completions", r#"{"prompt": "a", "n": 99}"#),
            StatusCode::BAD_REQUEST,
            json!("n"),
        ),
        (
            Request::post("/v1/chat/completions")
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from(CHAT))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Value::Null,
        ),
        (
            post(
                "/v1/completions",
                &format!(r#"{{"prompt": "{}"}}"#, "a".repeat(70 * 1024)),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            Value::Null,
        ),
        (get("/v1/nothing-here"), StatusCode::NOT_FOUND, Value::Null),
        (
            get("/v1/chat/completions"),
            StatusCode::METHOD_NOT_ALLOWED,
            Value::Null,
        ),
        (
            post("/tokenize", r#"{"content": 5}"#),
            StatusCode::BAD_REQUEST,
            json!("content"),
        ),
    ];
    for (request, want_status, want_param) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let (status, headers, body) = call(&s, request).await;
        assert_eq!(
            status,
            want_status,
            "{what}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(headers[header::CONTENT_TYPE], "application/json", "{what}");
        let (kind, param, _) = error_of(&body);
        assert_eq!(kind, "invalid_request_error", "{what}");
        assert_eq!(param, want_param, "{what}");
    }
}

#[tokio::test]
async fn api_keys_guard_the_api_but_not_health_or_metrics() {
    let s = server(&["small"], &["k1", "k2"]);
    let (status, headers, body) = call(&s, post("/v1/chat/completions", CHAT)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    assert_eq!(error_of(&body).0, "authentication_error");
    let wrong = Request::get("/v1/models")
        .header(header::AUTHORIZATION, "Bearer nope")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&s, wrong).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        call(&s, post("/tokenize", r#"{"content": "a"}"#)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let right = Request::get("/v1/models")
        .header(header::AUTHORIZATION, "Bearer k2")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&s, right).await.0, StatusCode::OK);
    assert_eq!(
        call(&s, get("/health")).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(call(&s, get("/metrics")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn loaded_model_serves_tokenize_detokenize_metrics_and_context_checks() {
    let s = server(&["small"], &[]);
    assert!(s.set_models(vec![served("small")]));
    let (status, _, body) = call(&s, get("/health")).await;
    assert_eq!(
        (status, json_of(&body)),
        (StatusCode::OK, json!({"status": "ok"}))
    );

    // Control tokens are recognised by default (llama-server's parse_special), and pieces
    // come back as text.
    let (status, _, body) = call(
        &s,
        post(
            "/tokenize",
            r#"{"content": "Hello<|im_end|>", "with_pieces": true}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let tokens = json_of(&body)["tokens"].clone();
    let pieces: Vec<&str> = tokens
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["piece"].as_str().unwrap())
        .collect();
    assert_eq!(pieces, ["Hello", "<|im_end|>"]);
    let ids: Vec<u64> = tokens
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    let (_, _, body) = call(
        &s,
        post(
            "/tokenize",
            r#"{"content": "Hello<|im_end|>", "parse_special": false}"#,
        ),
    )
    .await;
    assert!(json_of(&body)["tokens"].as_array().unwrap().len() > 2);
    let (status, _, body) =
        call(&s, post("/detokenize", &json!({"tokens": ids}).to_string())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json_of(&body), json!({"content": "Hello<|im_end|>"}));
    let (status, _, body) = call(&s, post("/detokenize", r#"{"tokens": [1, 99999999]}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body).1, json!("tokens[1]"));

    // The context is 256: prompt + max_tokens over it is refused with both numbers.
    let long = "word ".repeat(300);
    let (status, _, body) = call(
        &s,
        post(
            "/v1/completions",
            &json!({"prompt": long, "max_tokens": 5}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let e = json_of(&body);
    assert_eq!(e["error"]["param"], "max_tokens");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("plus max_tokens (5)") && message.contains("256"),
        "{message}"
    );
    let (status, _, body) = call(
        &s,
        post(
            "/v1/completions",
            r#"{"prompt": "hi", "logit_bias": {"999999": 1}}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body).1, json!("logit_bias"));
    let (status, _, body) = call(&s, post("/v1/completions", r#"{"prompt": [1, 999999]}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body).1, json!("prompt"));

    // One model: an unknown name is still 404 (issue 19; OpenAI and vLLM do the same).
    let (status, _, body) = call(
        &s,
        post("/tokenize", r#"{"model": "whatever", "content": "a"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_of(&body).2, json!("model_not_found"));

    let (status, headers, body) = call(&s, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(body).unwrap();
    for family in [
        "kaiyuan_requests_total",
        "kaiyuan_prompt_tokens_total",
        "kaiyuan_generated_tokens_total",
        "kaiyuan_cached_prompt_tokens_total",
        "kaiyuan_computed_tokens_total",
        "kaiyuan_queue_length",
        "kaiyuan_running_sequences",
        "kaiyuan_kv_blocks_total",
        "kaiyuan_kv_blocks_used",
        "kaiyuan_kv_blocks_cached",
        "kaiyuan_preemptions_total",
        "kaiyuan_time_to_first_token_seconds",
        "kaiyuan_inter_token_latency_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing"
        );
    }
    assert!(
        text.contains("kaiyuan_requests_total{model=\"small\",outcome=\"invalid\"} 3"),
        "{text}"
    );
}

#[tokio::test]
async fn several_models_are_picked_by_name() {
    let s = server(&["a", "b"], &[]);
    s.set_models(vec![served("a"), served("b")]);
    let (status, _, body) = call(&s, post("/tokenize", r#"{"model": "c", "content": "x"}"#)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, param, code) = error_of(&body);
    assert_eq!((param, code), (json!("model"), json!("model_not_found")));
    let (status, _, body) = call(
        &s,
        post(
            "/v1/chat/completions",
            &json!({"model": "c", "messages": [{"role": "user", "content": "x"}]}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_of(&body).2, json!("model_not_found"));
    for name in ["a", "b", "SmolLM2-135M-Instruct.Q4_1"] {
        let (status, _, _) = call(
            &s,
            post(
                "/tokenize",
                &json!({"model": name, "content": "x"}).to_string(),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{name}");
    }
}

#[tokio::test]
async fn logit_bias_is_capped_at_300_entries() {
    let s = server(&["small"], &[]);
    let bias = |n: u32| -> serde_json::Map<String, Value> {
        (0..n).map(|t| (t.to_string(), json!(1))).collect()
    };
    let (status, _, body) = call(
        &s,
        post(
            "/v1/chat/completions",
            &json!({"messages": [{"role": "user", "content": "hi"}], "logit_bias": bias(301)})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(error_of(&body).1, json!("logit_bias"));
    // 300 entries pass validation (the models are still loading: 503, not 400).
    let (status, _, body) = call(
        &s,
        post(
            "/v1/completions",
            &json!({"prompt": "hi", "logit_bias": bias(300)}).to_string(),
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        String::from_utf8_lossy(&body)
    );
}

#[tokio::test]
async fn a_dead_engine_makes_health_503_with_the_reason() {
    let s = server(&["small"], &[]);
    let model = served("small");
    let engine = model.engine.clone();
    s.set_models(vec![model]);
    assert_eq!(call(&s, get("/health")).await.0, StatusCode::OK);
    engine.inject_panic_for_tests();
    // The thread dies at its next command; /health must notice within a few seconds.
    let mut answer = (StatusCode::OK, Vec::new());
    for _ in 0..200 {
        let (status, _, body) = call(&s, get("/health")).await;
        answer = (status, body);
        if answer.0 != StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let (status, body) = answer;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "/health still 200 after the engine died"
    );
    let v = json_of(&body);
    assert_eq!(v["status"], "engine_failed", "{v}");
    assert_eq!(v["model"], "small", "{v}");
    assert!(
        v["reason"]
            .as_str()
            .is_some_and(|r| r.contains("injected engine failure")),
        "{v}"
    );
    // Requests are refused with 503, not accepted into a dead engine, and say why.
    let (status, _, body) = call(&s, post("/v1/chat/completions", CHAT)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let err = &json_of(&body)["error"];
    assert_eq!(err["code"], "engine_failed", "{err}");
    assert!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("injected engine failure") && m.contains("restarted")),
        "{err}"
    );
}
