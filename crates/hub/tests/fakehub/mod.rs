//! A fake Hugging Face Hub for tests (no network): an axum server on a loopback port with the
//! Hub's routes — `GET /api/models/OWNER/REPO[?blobs=true]`, `GET|HEAD
//! /OWNER/REPO/resolve/REV/FILE` answering 302 to `/cdn/…` with `X-Linked-Etag`,
//! `X-Linked-Size` and `X-Repo-Commit` — serving the real test models from `models/`, with
//! `Range`, gated repositories, and faults on demand: an error status for the next requests, a
//! connection dropped after some bytes, a wrong advertised sha256. It counts what it served.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use sha2::{Digest, Sha256};

pub const SMOL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const GEMMA: &str = "gemma-3-270m-q4_k_m.gguf";

/// The bytes of a model in `models/`, read once per test binary.
pub fn model_bytes(name: &str) -> Bytes {
    static CACHE: OnceLock<Mutex<HashMap<String, Bytes>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap();
    cache
        .entry(name.to_string())
        .or_insert_with(|| {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../models")
                .join(name);
            Bytes::from(
                std::fs::read(&path).unwrap_or_else(|e| {
                    panic!("{}: {e} (run scripts/fetch-models)", path.display())
                }),
            )
        })
        .clone()
}

pub fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub struct FakeFile {
    pub name: String,
    pub data: Bytes,
    /// The sha256 the Hub advertises (the real one unless a test lies).
    pub sha256: String,
}

impl FakeFile {
    pub fn new(name: &str, data: Bytes) -> FakeFile {
        let sha256 = sha256_hex(&data);
        FakeFile {
            name: name.into(),
            data,
            sha256,
        }
    }
}

#[derive(Default)]
pub struct Repo {
    pub files: Vec<FakeFile>,
    /// A gated repository answers 401 unless this Bearer token is sent.
    pub token: Option<String>,
}

/// One file download the fake CDN answered.
#[derive(Clone, Debug)]
pub struct Served {
    pub file: String,
    pub range_start: u64,
    pub bytes: u64,
}

#[derive(Default)]
pub struct HubState {
    repos: Mutex<HashMap<String, Repo>>,
    /// Every request's method and path.
    pub requests: Mutex<Vec<String>>,
    pub served: Mutex<Vec<Served>>,
    pub bytes_served: AtomicU64,
    /// `(status, times)`: the next `times` resolve requests answer `status`.
    pub fail_status: Mutex<Option<(u16, u32)>>,
    /// `(bytes, times)`: the next `times` downloads drop the connection after `bytes`.
    pub drop_after: Mutex<Option<(u64, u32)>>,
    /// Answer the file list without sizes and sha256 even with `?blobs=true` (as some mirrors
    /// do), so they must come from `X-Linked-Size` / `X-Linked-Etag`.
    pub no_blobs: std::sync::atomic::AtomicBool,
}

pub struct FakeHub {
    pub url: String,
    pub state: Arc<HubState>,
}

impl FakeHub {
    /// Starts a fake Hub on a loopback port (on the current tokio runtime).
    pub async fn start() -> FakeHub {
        let state = Arc::new(HubState::default());
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeHub { url, state }
    }

    /// Starts a fake Hub on a thread of its own (for tests without a runtime, e.g. CLI tests).
    pub fn start_on_thread() -> FakeHub {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                tx.send(FakeHub::start().await).unwrap();
                std::future::pending::<()>().await;
            });
        });
        rx.recv().unwrap()
    }

    pub fn add_repo(&self, name: &str, repo: Repo) {
        self.state.repos.lock().unwrap().insert(name.into(), repo);
    }

    pub fn fail_next(&self, status: u16, times: u32) {
        *self.state.fail_status.lock().unwrap() = Some((status, times));
    }

    pub fn drop_after(&self, bytes: u64, times: u32) {
        *self.state.drop_after.lock().unwrap() = Some((bytes, times));
    }

    pub fn list_without_blobs(&self) {
        self.state.no_blobs.store(true, Ordering::SeqCst);
    }

    pub fn served(&self) -> Vec<Served> {
        self.state.served.lock().unwrap().clone()
    }

    pub fn bytes_served(&self) -> u64 {
        self.state.bytes_served.load(Ordering::SeqCst)
    }

    pub fn request_count(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }
}

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn error(status: StatusCode, code: &str, msg: &str) -> Response {
    (
        status,
        [("x-error-code", code), ("content-type", "application/json")],
        format!("{{\"error\":\"{msg}\"}}"),
    )
        .into_response()
}

fn authorized(repo: &Repo, headers: &HeaderMap) -> bool {
    let Some(token) = &repo.token else {
        return true;
    };
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    sent == Some(format!("Bearer {token}").as_str())
}

async fn handle(State(s): State<Arc<HubState>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    s.requests
        .lock()
        .unwrap()
        .push(format!("{} {path}", req.method()));
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        ["api", "models", owner, repo] => {
            api_model(&s, &format!("{owner}/{repo}"), &query, req.headers())
        }
        ["cdn", owner, repo, file @ ..] => {
            cdn(
                &s,
                &format!("{owner}/{repo}"),
                &file.join("/"),
                req.headers(),
            )
            .await
        }
        [owner, repo, "resolve", _rev, file @ ..] => resolve(
            &s,
            &format!("{owner}/{repo}"),
            &file.join("/"),
            req.headers(),
            req.method(),
        ),
        _ => error(StatusCode::NOT_FOUND, "NotFound", "no such route"),
    }
}

fn api_model(s: &HubState, name: &str, query: &str, headers: &HeaderMap) -> Response {
    let repos = s.repos.lock().unwrap();
    let Some(repo) = repos.get(name) else {
        return error(
            StatusCode::NOT_FOUND,
            "RepoNotFound",
            "Repository not found",
        );
    };
    if !authorized(repo, headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "GatedRepo",
            "Access to this model is restricted",
        );
    }
    let blobs = query.contains("blobs=true") && !s.no_blobs.load(Ordering::SeqCst);
    let siblings: Vec<serde_json::Value> = repo
        .files
        .iter()
        .map(|f| {
            if blobs {
                serde_json::json!({"rfilename": f.name, "size": f.data.len(),
                    "lfs": {"sha256": f.sha256, "size": f.data.len(), "pointerSize": 134}})
            } else {
                serde_json::json!({"rfilename": f.name})
            }
        })
        .collect();
    axum::Json(serde_json::json!({
        "id": name, "sha": COMMIT, "gated": repo.token.is_some(), "siblings": siblings
    }))
    .into_response()
}

fn resolve(s: &HubState, name: &str, file: &str, headers: &HeaderMap, method: &Method) -> Response {
    let repos = s.repos.lock().unwrap();
    let Some(repo) = repos.get(name) else {
        return error(
            StatusCode::NOT_FOUND,
            "RepoNotFound",
            "Repository not found",
        );
    };
    if !authorized(repo, headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "GatedRepo",
            "Access to this model is restricted",
        );
    }
    let Some(f) = repo.files.iter().find(|f| f.name == file) else {
        return error(StatusCode::NOT_FOUND, "EntryNotFound", "Entry not found");
    };
    if *method != Method::HEAD {
        let mut fail = s.fail_status.lock().unwrap();
        if let Some((status, times)) = *fail {
            *fail = (times > 1).then(|| (status, times - 1));
            return error(
                StatusCode::from_u16(status).unwrap(),
                "Injected",
                "injected failure",
            );
        }
    }
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, format!("/cdn/{name}/{file}"))
        .header("x-linked-etag", format!("\"{}\"", f.sha256))
        .header("x-linked-size", f.data.len().to_string())
        .header("x-repo-commit", COMMIT)
        .body(Body::empty())
        .unwrap()
}

async fn cdn(s: &Arc<HubState>, name: &str, file: &str, headers: &HeaderMap) -> Response {
    let data = {
        let repos = s.repos.lock().unwrap();
        match repos
            .get(name)
            .and_then(|r| r.files.iter().find(|f| f.name == file))
        {
            Some(f) => f.data.clone(),
            None => return error(StatusCode::NOT_FOUND, "EntryNotFound", "Entry not found"),
        }
    };
    let total = data.len() as u64;
    let start = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|v| v.parse::<u64>().ok());
    if start.is_some_and(|st| st >= total) {
        return Response::builder()
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .header(header::CONTENT_RANGE, format!("bytes */{total}"))
            .body(Body::empty())
            .unwrap();
    }
    let from = start.unwrap_or(0);
    let body = data.slice(from as usize..);
    let drop_at = {
        let mut d = s.drop_after.lock().unwrap();
        match *d {
            Some((bytes, times)) => {
                *d = (times > 1).then(|| (bytes, times - 1));
                Some(bytes)
            }
            None => None,
        }
    };
    let served_index = {
        let mut served = s.served.lock().unwrap();
        served.push(Served {
            file: file.to_string(),
            range_start: from,
            bytes: 0,
        });
        served.len() - 1
    };
    let state = Arc::clone(s);
    let chunks = futures_util::stream::unfold((body, 0u64, false), move |(rest, sent, dropped)| {
        let state = Arc::clone(&state);
        async move {
            if dropped || rest.is_empty() {
                return None;
            }
            if drop_at.is_some_and(|d| sent >= d) {
                // Give the client time to read what was sent, then break the connection.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let e = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "dropped");
                return Some((Err(e), (rest, sent, true)));
            }
            let mut n = rest.len().min(64 * 1024);
            if let Some(d) = drop_at {
                n = n.min((d - sent) as usize);
            }
            let chunk = rest.slice(..n);
            state.bytes_served.fetch_add(n as u64, Ordering::SeqCst);
            state.served.lock().unwrap()[served_index].bytes += n as u64;
            Some((
                Ok::<_, std::io::Error>(chunk),
                (rest.slice(n..), sent + n as u64, false),
            ))
        }
    });
    let mut resp = Response::builder()
        .header(header::CONTENT_LENGTH, (total - from).to_string())
        .header(header::ACCEPT_RANGES, "bytes");
    resp = match start {
        Some(st) => resp.status(StatusCode::PARTIAL_CONTENT).header(
            header::CONTENT_RANGE,
            format!("bytes {st}-{}/{total}", total - 1),
        ),
        None => resp.status(StatusCode::OK),
    };
    resp.body(Body::from_stream(chunks)).unwrap()
}
