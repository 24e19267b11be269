//! The JSON a model is described by in `GET /v1/models`, `GET /v1/models/{id}` and the
//! admin API: OpenAI's model object (`id`, `object`, `created`, `owned_by`) plus what a
//! client of several models needs (loaded or not, context, capabilities).

use serde_json::{json, Value};

use super::ModelStatus;
use crate::tools::format_of;

/// OpenAI's model object with Kaiyuan's fields: `loaded`, `loading`, `pinned`, `aliases`,
/// `context_length` (the engine's when loaded, else what the file says, else `null`),
/// `size_bytes` (the file), `memory_bytes` (what it holds loaded: the weights plus its KV
/// pool at its fullest, counted against `--max-loaded-bytes`), and
/// `capabilities` (`null` until loaded: read from the chat template).
pub fn model_card(m: &ModelStatus, created: u64) -> Value {
    let context = m
        .model
        .as_ref()
        .map(|s| s.engine.info().context)
        .or(m.context);
    let capabilities = m.model.as_ref().map(|s| {
        let tools = format_of(s.template.source());
        json!({
            "completion": true,
            "chat": true,
            "tools": true,
            "tool_format": tools.name(),
            "reasoning": s.reasoning.thinks,
            "thinking_switch": s.reasoning.switch,
        })
    });
    json!({
        "id": m.name,
        "object": "model",
        "created": created,
        "owned_by": "kaiyuan",
        "aliases": m.aliases,
        "loaded": m.model.is_some(),
        "loading": m.loading,
        "pinned": m.pinned,
        "context_length": context,
        "size_bytes": m.bytes,
        "memory_bytes": m.memory_bytes,
        "capabilities": capabilities,
    })
}
