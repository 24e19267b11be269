//! The Hugging Face Hub's HTTP API, as much as pulling needs: a repository's file list with
//! sizes and LFS sha256 (`GET /api/models/OWNER/REPO?blobs=true`), and files
//! (`GET|HEAD /OWNER/REPO/resolve/REV/FILE`, whose LFS answer is a 302 to a CDN carrying
//! `X-Linked-Etag` = the sha256, `X-Linked-Size` and `X-Repo-Commit`). Redirects are followed
//! here, not by reqwest, so those headers can be read; the token goes only to the Hub's own host.
//! Downloading a file into the store is `download.rs`.

use std::time::Duration;

use crate::HubError;
use reqwest::header::{HeaderMap, AUTHORIZATION, LOCATION, RANGE};
use reqwest::{Response, StatusCode, Url};
use serde::Deserialize;

/// The Hub's default address.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Where the Hub is and who asks.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// `HF_ENDPOINT`, default `https://huggingface.co`.
    pub endpoint: String,
    /// `--token` or `HF_TOKEN`, sent as a Bearer token to the Hub's host.
    pub token: Option<String>,
    /// Tries per download (and per API call).
    pub tries: u32,
    /// Wait before the second try; doubled before each later one.
    pub backoff: Duration,
}

impl HubConfig {
    /// From the environment (`HF_ENDPOINT`, `HF_TOKEN`), with `token` taking precedence.
    pub fn from_env(token: Option<String>) -> HubConfig {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        HubConfig {
            endpoint: env("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.to_string()),
            token: token
                .filter(|t| !t.trim().is_empty())
                .or_else(|| env("HF_TOKEN")),
            tries: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

/// One file of a repository, with what the Hub says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoFile {
    pub name: String,
    pub size: Option<u64>,
    /// The LFS object's sha256 (lower-case hex), when the file is stored in LFS.
    pub sha256: Option<String>,
}

/// A repository at one commit.
#[derive(Clone, Debug)]
pub struct RepoInfo {
    pub repo: String,
    /// The commit the file list belongs to (`sha`), when the Hub says.
    pub commit: Option<String>,
    pub files: Vec<RepoFile>,
}

#[derive(Deserialize)]
struct ApiModel {
    sha: Option<String>,
    #[serde(default)]
    siblings: Vec<ApiSibling>,
}

#[derive(Deserialize)]
struct ApiSibling {
    rfilename: String,
    size: Option<u64>,
    lfs: Option<ApiLfs>,
}

#[derive(Deserialize)]
struct ApiLfs {
    sha256: String,
    size: Option<u64>,
}

/// A client of one Hub endpoint.
#[derive(Clone)]
pub struct HubClient {
    http: reqwest::Client,
    pub(crate) config: HubConfig,
    base: Url,
}

impl HubClient {
    pub fn new(config: HubConfig) -> Result<HubClient, HubError> {
        let bad = |reason: String| HubError::BadReference {
            reference: config.endpoint.clone(),
            reason,
        };
        let mut base = Url::parse(&config.endpoint)
            .map_err(|e| bad(format!("not a URL (HF_ENDPOINT): {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad("HF_ENDPOINT must be an http(s) URL".into()));
        }
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("kaiyuan/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| HubError::Network {
                url: config.endpoint.clone(),
                source: e,
            })?;
        Ok(HubClient { http, config, base })
    }

    pub fn endpoint(&self) -> &str {
        &self.config.endpoint
    }

    fn url(&self, path: &str) -> Result<Url, HubError> {
        self.base.join(path).map_err(|e| HubError::BadReference {
            reference: path.to_string(),
            reason: e.to_string(),
        })
    }

    /// A request with the token, when there is one and `url` is on the Hub's own host.
    fn get(&self, url: Url) -> reqwest::RequestBuilder {
        let same_host = url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default();
        let req = self.http.get(url);
        match (&self.config.token, same_host) {
            (Some(t), true) => req.header(AUTHORIZATION, format!("Bearer {}", t.trim())),
            _ => req,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder, url: &Url) -> Result<Response, HubError> {
        req.send().await.map_err(|e| HubError::Network {
            url: url.to_string(),
            source: e,
        })
    }

    /// The repository's files at its newest commit, with sizes and LFS sha256 where known.
    pub async fn repo_info(&self, repo: &str) -> Result<RepoInfo, HubError> {
        let url = self.url(&format!("api/models/{repo}?blobs=true"))?;
        let mut tries = 0;
        let resp = loop {
            tries += 1;
            let attempt = async {
                // A renamed repository answers with a redirect to its new name.
                let mut at = url.clone();
                for _ in 0..5 {
                    let resp = self.send(self.get(at.clone()), &at).await?;
                    let resp = self.check_status(resp, repo, None).await?;
                    if !resp.status().is_redirection() {
                        return Ok(resp);
                    }
                    let location =
                        header_str(resp.headers(), LOCATION.as_str()).unwrap_or_default();
                    at = at.join(&location).map_err(|e| HubError::Protocol {
                        url: at.to_string(),
                        reason: format!("bad redirect {location:?}: {e}"),
                    })?;
                }
                Err(HubError::Protocol {
                    url: url.to_string(),
                    reason: "too many redirects".into(),
                })
            }
            .await;
            match attempt {
                Err(e) if e.is_transient() && tries < self.config.tries => {
                    tokio::time::sleep(self.config.backoff * 2u32.pow(tries - 1)).await;
                }
                other => break other?,
            }
        };
        let model: ApiModel = resp.json().await.map_err(|e| HubError::Protocol {
            url: url.to_string(),
            reason: format!("the model info is not the expected JSON: {e}"),
        })?;
        let files = model
            .siblings
            .into_iter()
            .map(|s| {
                let (sha256, lfs_size) = match s.lfs {
                    Some(l) => (Some(l.sha256.to_ascii_lowercase()), l.size),
                    None => (None, None),
                };
                RepoFile {
                    name: s.rfilename,
                    size: lfs_size.or(s.size),
                    sha256,
                }
            })
            .collect();
        Ok(RepoInfo {
            repo: repo.to_string(),
            commit: model.sha,
            files,
        })
    }

    /// Maps an error status to a typed error (the body's message, if any, as detail).
    async fn check_status(
        &self,
        resp: Response,
        repo: &str,
        file: Option<(&str, &str)>,
    ) -> Result<Response, HubError> {
        let status = resp.status();
        if status.is_success() || status.is_redirection() {
            return Ok(resp);
        }
        let code = header_str(resp.headers(), "x-error-code").unwrap_or_default();
        let url = resp.url().to_string();
        let body = resp.text().await.unwrap_or_default();
        let detail = error_detail(&body);
        let what = match file {
            Some((f, _)) => format!("{f} in {repo}"),
            None => format!("repository {repo}"),
        };
        Err(match (status, code.as_str()) {
            (_, "RepoNotFound") | (StatusCode::NOT_FOUND, _) if file.is_none() => {
                HubError::RepoNotFound {
                    repo: repo.to_string(),
                    endpoint: self.config.endpoint.clone(),
                }
            }
            (_, "EntryNotFound") | (StatusCode::NOT_FOUND, _) => HubError::FileNotFound {
                repo: repo.to_string(),
                file: file.map_or("", |f| f.0).to_string(),
                revision: file.map_or("main", |f| f.1).to_string(),
            },
            (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) => HubError::Unauthorized {
                what,
                status: status.as_u16(),
                hint: match (&self.config.token, status) {
                    (None, _) => "the repository is gated or private: accept its terms on the Hub, then pass a token (HF_TOKEN or --token)".into(),
                    (Some(_), StatusCode::FORBIDDEN) => format!("the token has no access (a gated repository's terms must be accepted on the Hub){detail}"),
                    (Some(_), _) => format!("the token was refused{detail}"),
                },
            },
            _ => HubError::Http {
                status: status.as_u16(),
                url,
                detail,
            },
        })
    }

    fn resolve_url(&self, repo: &str, revision: &str, file: &str) -> Result<Url, HubError> {
        self.url(&format!(
            "{repo}/resolve/{}/{}",
            encode_path(revision),
            encode_path(file)
        ))
    }

    /// GET `file`, following redirects (at most 5); `range_from` asks for bytes from there on.
    /// Returns the final answer and the `X-Linked-*` headers seen on the way.
    pub(crate) async fn fetch(
        &self,
        repo: &str,
        revision: &str,
        file: &str,
        range_from: u64,
    ) -> Result<(Response, Linked), HubError> {
        let mut url = self.resolve_url(repo, revision, file)?;
        let mut linked = Linked::default();
        for _ in 0..6 {
            let mut req = self.get(url.clone());
            if range_from > 0 {
                req = req.header(RANGE, format!("bytes={range_from}-"));
            }
            let resp = self.send(req, &url).await?;
            linked.absorb(resp.headers());
            let resp = self
                .check_status(resp, repo, Some((file, revision)))
                .await?;
            if !resp.status().is_redirection() {
                return Ok((resp, linked));
            }
            let location = header_str(resp.headers(), LOCATION.as_str()).ok_or_else(|| {
                HubError::Protocol {
                    url: url.to_string(),
                    reason: "a redirect without Location".into(),
                }
            })?;
            url = url.join(&location).map_err(|e| HubError::Protocol {
                url: url.to_string(),
                reason: format!("bad redirect {location:?}: {e}"),
            })?;
        }
        Err(HubError::Protocol {
            url: url.to_string(),
            reason: "too many redirects".into(),
        })
    }

    /// Size and sha256 of `file` from a HEAD on its resolve URL (`X-Linked-Size`,
    /// `X-Linked-Etag`), for Hubs whose file list lacks them.
    pub async fn file_meta(
        &self,
        repo: &str,
        revision: &str,
        file: &str,
    ) -> Result<(Option<String>, Option<u64>), HubError> {
        let url = self.resolve_url(repo, revision, file)?;
        let mut req = self.http.head(url.clone());
        if let Some(t) = &self.config.token {
            req = req.header(AUTHORIZATION, format!("Bearer {}", t.trim()));
        }
        let resp = self.send(req, &url).await?;
        let mut linked = Linked::default();
        linked.absorb(resp.headers());
        self.check_status(resp, repo, Some((file, revision)))
            .await?;
        Ok((linked.sha256, linked.size))
    }
}

/// What the `X-Linked-*` headers said.
#[derive(Default)]
pub(crate) struct Linked {
    sha256: Option<String>,
    size: Option<u64>,
}

impl Linked {
    fn absorb(&mut self, h: &HeaderMap) {
        if let Some(etag) = header_str(h, "x-linked-etag") {
            let etag = etag
                .trim_start_matches("W/")
                .trim_matches('"')
                .to_ascii_lowercase();
            if is_sha256(&etag) {
                self.sha256 = Some(etag);
            }
        }
        if let Some(n) = header_str(h, "x-linked-size").and_then(|s| s.parse().ok()) {
            self.size = Some(n);
        }
    }
}

pub(crate) fn header_str(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)?.to_str().ok().map(str::to_string)
}

/// The Hub's error JSON (`{"error": "..."}`) as " (message)", or nothing.
fn error_detail(body: &str) -> String {
    let msg = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(str::to_string));
    match msg {
        Some(m) if !m.is_empty() => format!(" ({m})"),
        _ => String::new(),
    }
}

pub(crate) fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Percent-encodes a path, keeping `/` and the unreserved characters.
fn encode_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_percent_encoded_but_slashes_kept() {
        assert_eq!(encode_path("a b/c+d.gguf"), "a%20b/c%2Bd.gguf");
        assert_eq!(encode_path("main"), "main");
    }
}
