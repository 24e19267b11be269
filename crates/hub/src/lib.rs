//! Getting GGUF models from the Hugging Face Hub into Kaiyuan's local model store.
//!
//! - [`ModelRef`]: what a user names (`hf.co/OWNER/REPO[:QUANT]`, `OWNER/REPO[:QUANT]`,
//!   `OWNER/REPO/FILE.gguf`), parsed and canonicalised.
//! - [`select`]: which file(s) of a repository a quant tag means, as llama.cpp's `-hf` picks them
//!   (tag matched case-insensitively in the file name, split files kept together).
//! - [`HubClient`]: the Hub's HTTP API (`/api/models/…`, `/…/resolve/REV/FILE`) over `reqwest`
//!   with rustls; resumable downloads (`Range` into a `.part` file beside the target, 206
//!   required), three tries with backoff, sha256 verified before an atomic rename.
//! - [`Store`]: `$KAIYUAN_HOME` (default `~/.cache/kaiyuan`): blobs by content hash and one JSON
//!   manifest per reference.
//! - [`pull`]: the three together.
//!
//! No HTTP server and no model loading here: the binary (`crates/cli`) wires this in.

mod client;
mod download;
mod error;
mod info;
mod progress;
mod pull;
mod reference;
pub mod select;
mod store;

pub use client::{HubClient, HubConfig, RepoFile, RepoInfo};
pub use error::HubError;
pub use info::{human_bytes, human_params, ModelInfo};
pub use progress::Progress;
pub use pull::{pull, pull_blocking, resolve_blocking, PullOptions};
pub use reference::{ModelRef, RefTarget};
pub use store::{Manifest, ManifestFile, Store};
