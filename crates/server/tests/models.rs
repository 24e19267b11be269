//! The model registry in process (no sockets): unknown names and aliases, loading on first
//! request (requests wait, one load for all of them, other models served meanwhile), load
//! failures and the wait bound, keep-alive unloading (pinned models stay), and the memory
//! budget unloading the least recently used model. The models are SmolLM2 on small engines;
//! the loaders are closures that count their calls and can be held back.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use kaiyuan_chat::ChatTemplate;
use kaiyuan_engine::{Engine, EngineConfig};
use kaiyuan_gguf::GgufFile;
use kaiyuan_model::Model;
use kaiyuan_server::{LoadFn, ModelEntry, RegistryConfig, ServedModel, Server, ServerConfig};
use kaiyuan_tokenizer::{Tokenizer, Vocab};
use serde_json::{json, Value};
use tower::ServiceExt;

fn model_path() -> PathBuf {
    let dir = std::env::var_os("KAIYUAN_MODELS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"),
        PathBuf::from,
    );
    let p = dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        p.exists(),
        "{} is missing: run scripts/fetch-models",
        p.display()
    );
    p
}

/// SmolLM2 served under `name`, on a one-thread engine.
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
    ServedModel::new(name.into(), name.into(), engine, tokenizer, template)
}

/// A loader of `name` that counts its calls, first waiting while `gate` holds `true`, and
/// failing while `fail` holds `true`.
#[derive(Clone, Default)]
struct Loader {
    calls: Arc<AtomicUsize>,
    gate: Arc<Mutex<bool>>,
    fail: Arc<Mutex<bool>>,
}

impl Loader {
    fn load_fn(&self, name: &str) -> LoadFn {
        let (me, name) = (self.clone(), name.to_string());
        Arc::new(move || {
            me.calls.fetch_add(1, Ordering::SeqCst);
            while *me.gate.lock().unwrap() {
                std::thread::sleep(Duration::from_millis(5));
            }
            if *me.fail.lock().unwrap() {
                return Err("the file is corrupt (test)".into());
            }
            Ok(served(&name))
        })
    }
}

fn entry(name: &str, aliases: &[&str], pinned: bool, bytes: u64, load: LoadFn) -> ModelEntry {
    ModelEntry {
        name: name.into(),
        aliases: aliases.iter().map(|s| s.to_string()).collect(),
        pinned,
        bytes,
        memory_bytes: bytes,
        context: Some(256),
        load: Some(load),
    }
}

/// A server with `entries` configured and open for requests (nothing loaded at start).
fn server(registry: RegistryConfig, entries: Vec<ModelEntry>) -> Server {
    let s = Server::new(ServerConfig {
        registry,
        ..ServerConfig::default()
    });
    s.add_models(entries).expect("names are distinct");
    assert!(s.set_models(Vec::new()));
    s
}

fn registry(keep_alive: Option<Duration>, max_bytes: Option<u64>) -> RegistryConfig {
    RegistryConfig {
        keep_alive,
        max_loaded_bytes: max_bytes,
        load_wait: Duration::from_secs(60),
    }
}

async fn call(server: &Server, request: Request<Body>) -> (StatusCode, Value) {
    let response = server.router().oneshot(request).await.expect("infallible");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let v = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status, v)
}

async fn tokenize(server: &Server, model: &str) -> (StatusCode, Value) {
    let body = json!({"model": model, "content": "hello"}).to_string();
    let req = Request::post("/tokenize")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    call(server, req).await
}

/// `name -> loaded` from `GET /v1/models`.
async fn loaded(server: &Server) -> Vec<(String, bool)> {
    let (status, v) = call(
        server,
        Request::get("/v1/models").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                m["loaded"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, bool)]) -> Vec<(String, bool)> {
    list.iter().map(|(n, l)| (n.to_string(), *l)).collect()
}

#[tokio::test]
async fn unknown_models_are_404_naming_the_models_and_aliases_resolve() {
    let l = Loader::default();
    let s = server(
        registry(None, None),
        vec![entry("solo", &["smol", "s"], false, 1, l.load_fn("solo"))],
    );
    // One model served: an unknown name is still 404, in OpenAI's shape, naming it.
    let (status, v) = tokenize(&s, "gpt-4o").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["code"], "model_not_found");
    assert_eq!(v["error"]["param"], "model");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("gpt-4o") && message.contains("solo"),
        "{message}"
    );
    let (status, v) = call(
        &s,
        Request::get("/v1/models/gpt-4o")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("model_not_found"))
    );
    assert_eq!(
        l.calls.load(Ordering::SeqCst),
        0,
        "no load for an unknown name"
    );
    // Aliases resolve to the model (one load), and its card is found by alias too.
    for name in ["smol", "s", "solo"] {
        let (status, v) = tokenize(&s, name).await;
        assert_eq!(status, StatusCode::OK, "{name}: {v}");
    }
    assert_eq!(l.calls.load(Ordering::SeqCst), 1);
    let (status, card) = call(
        &s,
        Request::get("/v1/models/smol").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(card["id"], "solo");
    assert_eq!(card["loaded"], true);
    assert_eq!(card["aliases"], json!(["smol", "s"]));
    assert_eq!(card["context_length"], 256);
    // SmolLM2's template has no tool markup: the generic JSON format; it does not think.
    assert_eq!(card["capabilities"]["tool_format"], "generic", "{card}");
    assert_eq!(card["capabilities"]["reasoning"], false, "{card}");
}

#[tokio::test]
async fn requests_wait_for_a_load_while_other_models_are_served() {
    let (la, lb) = (Loader::default(), Loader::default());
    let s = server(
        registry(None, None),
        vec![
            entry("a", &[], false, 1, la.load_fn("a")),
            entry("b", &[], false, 1, lb.load_fn("b")),
        ],
    );
    assert_eq!(loaded(&s).await, pairs(&[("a", false), ("b", false)]));
    assert_eq!(tokenize(&s, "a").await.0, StatusCode::OK);
    // Hold b's load: three requests wait for it, a keeps answering meanwhile.
    *lb.gate.lock().unwrap() = true;
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { tokenize(&s, "b").await })
        })
        .collect();
    let t = Instant::now();
    while lb.calls.load(Ordering::SeqCst) == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "b's load never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for _ in 0..3 {
        assert_eq!(
            tokenize(&s, "a").await.0,
            StatusCode::OK,
            "a is served during b's load"
        );
    }
    let (_, list) = call(&s, Request::get("/v1/models").body(Body::empty()).unwrap()).await;
    assert_eq!(list["data"][1]["loading"], true, "{list}");
    assert!(
        waiting.iter().all(|w| !w.is_finished()),
        "they wait for the load"
    );
    *lb.gate.lock().unwrap() = false;
    for w in waiting {
        let (status, v) = w.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    assert_eq!(
        lb.calls.load(Ordering::SeqCst),
        1,
        "one load for all the waiting requests"
    );
    assert_eq!(loaded(&s).await, pairs(&[("a", true), ("b", true)]));
}

#[tokio::test]
async fn a_failed_load_is_a_clear_503_and_the_next_request_tries_again() {
    let l = Loader::default();
    *l.fail.lock().unwrap() = true;
    let s = server(
        registry(None, None),
        vec![entry("m", &[], false, 1, l.load_fn("m"))],
    );
    let (status, v) = tokenize(&s, "m").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"]["code"], "model_load_failed");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("corrupt"),
        "{v}"
    );
    assert_eq!(
        call(&s, Request::get("/health").body(Body::empty()).unwrap())
            .await
            .0,
        StatusCode::OK
    );
    *l.fail.lock().unwrap() = false;
    assert_eq!(tokenize(&s, "m").await.0, StatusCode::OK);
    assert_eq!(l.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_request_waits_for_a_load_only_up_to_the_bound() {
    let l = Loader::default();
    *l.gate.lock().unwrap() = true;
    let config = RegistryConfig {
        load_wait: Duration::from_millis(200),
        ..registry(None, None)
    };
    let s = server(
        config,
        vec![entry("slow", &[], false, 1, l.load_fn("slow"))],
    );
    let (status, v) = tokenize(&s, "slow").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"]["code"], "model_loading");
    *l.gate.lock().unwrap() = false;
    let t = Instant::now();
    loop {
        let (status, _) = tokenize(&s, "slow").await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the load never finished"
        );
    }
    assert_eq!(
        l.calls.load(Ordering::SeqCst),
        1,
        "the wait gave up, not the load"
    );
}

#[tokio::test]
async fn idle_models_unload_after_the_keep_alive_but_pinned_ones_stay() {
    let (lp, lu) = (Loader::default(), Loader::default());
    let s = server(
        registry(Some(Duration::from_millis(300)), None),
        vec![
            entry("pinned", &[], true, 1, lp.load_fn("pinned")),
            entry("lazy", &[], false, 1, lu.load_fn("lazy")),
        ],
    );
    s.spawn_keep_alive();
    assert_eq!(tokenize(&s, "pinned").await.0, StatusCode::OK);
    assert_eq!(tokenize(&s, "lazy").await.0, StatusCode::OK);
    assert_eq!(loaded(&s).await, pairs(&[("pinned", true), ("lazy", true)]));
    let t = Instant::now();
    while loaded(&s).await != pairs(&[("pinned", true), ("lazy", false)]) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "lazy was never unloaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "not before the keep-alive"
    );
    // It loads again on the next request.
    assert_eq!(tokenize(&s, "lazy").await.0, StatusCode::OK);
    assert_eq!(lu.calls.load(Ordering::SeqCst), 2);
    assert_eq!(lp.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_memory_budget_unloads_the_least_recently_used_model() {
    let loaders: Vec<Loader> = (0..3).map(|_| Loader::default()).collect();
    let names = ["a", "b", "c"];
    let mut entries: Vec<ModelEntry> = names
        .iter()
        .zip(&loaders)
        .map(|(n, l)| entry(n, &[], false, 10, l.load_fn(n)))
        .collect();
    let big = Loader::default();
    entries.push(entry("huge", &[], false, 21, big.load_fn("huge")));
    let s = server(registry(None, Some(20)), entries);
    assert_eq!(tokenize(&s, "a").await.0, StatusCode::OK);
    assert_eq!(tokenize(&s, "b").await.0, StatusCode::OK);
    assert_eq!(tokenize(&s, "a").await.0, StatusCode::OK); // b is now the least recent
    assert_eq!(tokenize(&s, "c").await.0, StatusCode::OK);
    assert_eq!(
        loaded(&s).await,
        pairs(&[("a", true), ("b", false), ("c", true), ("huge", false)])
    );
    // c, then b: a is the least recent and goes.
    assert_eq!(tokenize(&s, "b").await.0, StatusCode::OK);
    assert_eq!(
        loaded(&s).await,
        pairs(&[("a", false), ("b", true), ("c", true), ("huge", false)])
    );
    // A model bigger than the whole budget is refused at once, and nothing is unloaded.
    let (status, v) = tokenize(&s, "huge").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"]["code"], "model_no_room");
    assert_eq!(big.calls.load(Ordering::SeqCst), 0);
    assert_eq!(
        loaded(&s).await,
        pairs(&[("a", false), ("b", true), ("c", true), ("huge", false)])
    );
    let calls: Vec<usize> = loaders
        .iter()
        .map(|l| l.calls.load(Ordering::SeqCst))
        .collect();
    assert_eq!(calls, [1, 2, 1]);
}

#[tokio::test]
async fn names_and_aliases_must_be_distinct() {
    let l = Loader::default();
    let s = Server::new(ServerConfig::default());
    let err = s
        .add_models(vec![
            entry("a", &["x"], false, 1, l.load_fn("a")),
            entry("b", &["x"], false, 1, l.load_fn("b")),
        ])
        .unwrap_err();
    assert!(err.contains("\"x\"") && err.contains("\"a\""), "{err}");
}
