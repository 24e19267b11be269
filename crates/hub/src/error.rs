//! The hub crate's typed errors: each names the reference, repository, file or path involved.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("invalid model reference {reference:?}: {reason}")]
    BadReference { reference: String, reason: String },
    #[error("repository {repo} was not found on {endpoint} (check the name; a private repository also needs a token: HF_TOKEN or --token)")]
    RepoNotFound { repo: String, endpoint: String },
    #[error("{what} needs authorization ({status}): {hint}")]
    Unauthorized {
        what: String,
        status: u16,
        hint: String,
    },
    #[error("{file} was not found in {repo} (revision {revision})")]
    FileNotFound {
        repo: String,
        file: String,
        revision: String,
    },
    #[error("{repo} has no GGUF file for quant {tag}; available quants: {available}")]
    NoSuchQuant {
        repo: String,
        tag: String,
        available: String,
    },
    #[error("{repo} has no GGUF files")]
    NoGguf { repo: String },
    #[error("{file}: split part(s) missing from {repo}: {missing}")]
    IncompleteSplit {
        repo: String,
        file: String,
        missing: String,
    },
    #[error("the Hub gave no sha256 for {file}, so it cannot be verified")]
    NoChecksum { file: String },
    #[error(
        "sha256 mismatch for {file}: expected {expected}, got {actual}; the download was deleted"
    )]
    ChecksumMismatch {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("size mismatch for {file}: expected {expected} bytes, got {actual}; the download was deleted")]
    SizeMismatch {
        file: String,
        expected: u64,
        actual: u64,
    },
    #[error("HTTP {status} from {url}{detail}")]
    Http {
        status: u16,
        url: String,
        detail: String,
    },
    #[error("cannot reach {url}: {source}")]
    Network {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{what} failed after {tries} tries: {last}")]
    GaveUp {
        what: String,
        tries: u32,
        last: String,
    },
    #[error("unexpected answer from the Hub for {url}: {reason}")]
    Protocol { url: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no space left on the disk of {path}: free some (`kaiyuan rm`) or point KAIYUAN_HOME at another disk; a partial download resumes on the next pull")]
    DiskFull { path: PathBuf },
    #[error("{path} is not a usable GGUF file: {reason}")]
    BadGguf { path: PathBuf, reason: String },
    #[error("{reference} is not in the local store ({home}), and pulling is off (--offline): run `kaiyuan pull {reference}` while online")]
    Offline { reference: String, home: PathBuf },
    #[error("{reference} is not in the local store ({home})")]
    NotInStore { reference: String, home: PathBuf },
    #[error("manifest {path} is damaged: {reason}")]
    BadManifest { path: PathBuf, reason: String },
}

impl HubError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> HubError {
        if source.kind() == std::io::ErrorKind::StorageFull {
            return HubError::DiskFull { path: path.into() };
        }
        HubError::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether trying the same request again may succeed (network trouble, server errors).
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            HubError::Network { .. } => true,
            HubError::Http { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            _ => false,
        }
    }
}
