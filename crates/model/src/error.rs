//! [`ModelError`]: everything that can go wrong opening a model or running it, each
//! variant naming the key, tensor or numbers involved so a user can act on it.

use kaiyuan_gguf::GgufError;
use kaiyuan_kernels::ops::OpsError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    #[error(transparent)]
    Gguf(#[from] GgufError),

    #[error("the file has no general.architecture key; supported architectures: {}", supported.join(", "))]
    NoArchitecture { supported: Vec<&'static str> },

    #[error("unsupported architecture {found:?}; supported architectures: {}", supported.join(", "))]
    UnsupportedArchitecture {
        found: String,
        supported: Vec<&'static str>,
    },

    #[error("architecture {name:?} is recognised but not supported yet (it needs {needs}); supported architectures: {}", supported.join(", "))]
    RecognisedUnsupported {
        name: String,
        needs: &'static str,
        supported: Vec<&'static str>,
    },

    #[error("required metadata key {key} is missing")]
    MissingKey { key: String },

    #[error("metadata key {key}: {reason}")]
    BadValue { key: String, reason: String },

    #[error("required tensor {name} is missing")]
    MissingTensor { name: String },

    #[error("tensor {name} has dims {found:?} (GGML order), expected {expected:?}")]
    TensorShape {
        name: String,
        found: Vec<u64>,
        expected: Vec<u64>,
    },

    #[error("tensor {name}: {source}")]
    TensorType {
        name: String,
        #[source]
        source: OpsError,
    },

    #[error("unsupported model feature: {0}")]
    Unsupported(String),

    #[error("context overflow: {needed} positions needed, but the context holds {capacity}")]
    ContextOverflow { needed: usize, capacity: usize },

    #[error("token id {token} is outside the vocabulary of {vocab_size}")]
    TokenOutOfRange { token: u32, vocab_size: usize },

    #[error(
        "sequence {seq}: block table has {have} blocks, {need} needed for {positions} positions"
    )]
    BlockTableTooShort {
        seq: usize,
        have: usize,
        need: usize,
        positions: usize,
    },

    #[error("block id {block} is outside the KV cache pool of {pool_blocks} blocks")]
    BlockOutOfRange { block: u32, pool_blocks: usize },

    #[error("the KV cache was made for a different model geometry")]
    KvCacheMismatch,

    #[error("cannot allocate a KV cache of {blocks} blocks ({positions} positions): {reason}")]
    KvCacheAlloc {
        blocks: usize,
        positions: usize,
        reason: String,
    },

    #[error("text too short: perplexity needs at least one window of {n_ctx} tokens (n_ctx ≥ 4), the text has {tokens}")]
    TextTooShort { n_ctx: usize, tokens: usize },
}
