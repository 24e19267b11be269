//! Kaiyuan's transformer decoder: architecture specs read from GGUF metadata, zero-copy
//! weights, a paged f16 KV cache and one batched forward pass shared by every
//! supported architecture (llama, qwen2, qwen3, gemma3, qwen3moe, deepseek2).
//!
//! Layering: uses `kaiyuan-kernels` for all arithmetic and `kaiyuan-gguf` for the file;
//! knows nothing of requests or tokenizers. The caller owns KV block allocation and passes
//! each sequence's block table to [`Model::forward`]; [`Session`] is the single-sequence
//! convenience that allocates blocks in order.

pub mod arch;
mod attention;
pub mod config;
mod decoder;
mod error;
pub mod kv;
mod mla;
mod moe;
mod perplexity;
mod rope_scaling;
pub mod router;
mod session;
mod weights;

pub use arch::{Activation, ArchSpec};
pub use config::{LayerConfig, ModelConfig, RopeScaling};
pub use decoder::{BatchSeq, Logits, LogitsWanted, Model, Scratch};
pub use error::ModelError;
pub use kv::{BlockId, KvCache, BLOCK_TOKENS};
pub use mla::MlaConfig;
pub use moe::MoeConfig;
pub use perplexity::{perplexity, Perplexity};
pub use session::Session;
