//! The model summary of `inspect`: whether Kaiyuan can run the architecture, its attention
//! kind and its experts, read from the `<arch>.*` keys the way the model layer reads them
//! (without loading the model, so it works for any file).

use kaiyuan_gguf::GgufFile;
use kaiyuan_model::{arch, ModelError};
use serde::Serialize;

#[derive(Serialize)]
pub struct ModelSummary {
    /// "supported", "recognised, not supported yet: needs …", or "unknown architecture".
    pub support: String,
    /// e.g. "grouped-query (16 query heads, 8 KV heads)".
    pub attention: Option<String>,
    pub experts: Option<Experts>,
}

#[derive(Serialize)]
pub struct Experts {
    pub count: u64,
    pub used_per_token: Option<u64>,
    pub shared: Option<u64>,
    pub feed_forward_length: Option<u64>,
    pub leading_dense_layers: Option<u64>,
    /// `expert_gating_func`: softmax (1), sigmoid (2), other codes by number.
    pub gating: Option<String>,
    pub groups: Option<u64>,
    pub groups_used: Option<u64>,
}

fn u64_key(file: &GgufFile, arch: &str, key: &str) -> Option<u64> {
    file.get_u64(&format!("{arch}.{key}")).ok().flatten()
}

pub fn summary(file: &GgufFile) -> Option<ModelSummary> {
    let arch = file.architecture()?;
    let support = match arch::lookup(arch) {
        Ok(_) => "supported".to_owned(),
        Err(ModelError::RecognisedUnsupported { needs, .. }) => {
            format!("recognised, not supported yet: needs {needs}")
        }
        Err(_) => "unknown architecture".to_owned(),
    };
    let key = |k: &str| u64_key(file, arch, k);
    let attention = if let Some(rank) = key("attention.kv_lora_rank") {
        let q = key("attention.q_lora_rank").map_or_else(
            || "no query compression".to_owned(),
            |r| format!("query rank {r}"),
        );
        Some(format!("multi-head latent (MLA: KV rank {rank}, {q})"))
    } else {
        key("attention.head_count").map(|heads| {
            let kv = key("attention.head_count_kv").unwrap_or(heads);
            let kind = match kv {
                1 if heads > 1 => "multi-query",
                kv if kv == heads => "multi-head",
                _ => "grouped-query",
            };
            let window = key("attention.sliding_window").map_or_else(String::new, |w| {
                format!(", sliding window {w} in some layers")
            });
            format!("{kind} ({heads} query heads, {kv} KV heads{window})")
        })
    };
    let experts = key("expert_count").filter(|&n| n > 0).map(|count| Experts {
        count,
        used_per_token: key("expert_used_count"),
        shared: key("expert_shared_count"),
        feed_forward_length: key("expert_feed_forward_length"),
        leading_dense_layers: key("leading_dense_block_count"),
        gating: key("expert_gating_func").map(|c| match c {
            1 => "softmax".to_owned(),
            2 => "sigmoid".to_owned(),
            other => format!("code {other}"),
        }),
        groups: key("expert_group_count"),
        groups_used: key("expert_group_used_count"),
    });
    Some(ModelSummary {
        support,
        attention,
        experts,
    })
}

/// Text lines of the summary (after the architecture line).
pub fn render(o: &mut String, m: &ModelSummary) {
    use std::fmt::Write;
    let _ = writeln!(o, "Support:       {}", m.support);
    if let Some(a) = &m.attention {
        let _ = writeln!(o, "Attention:     {a}");
    }
    if let Some(e) = &m.experts {
        let opt = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
        let mut line = format!(
            "{} routed, {} used per token",
            e.count,
            opt(e.used_per_token)
        );
        if let Some(s) = e.shared.filter(|&s| s > 0) {
            let _ = write!(line, ", {s} shared");
        }
        if let Some(f) = e.feed_forward_length {
            let _ = write!(line, ", FFN {f} each");
        }
        if let Some(g) = &e.gating {
            let _ = write!(line, ", {g} router");
        }
        if let (Some(g), Some(u)) = (e.groups.filter(|&g| g > 1), e.groups_used) {
            let _ = write!(line, ", {u} of {g} groups");
        }
        if let Some(d) = e.leading_dense_layers.filter(|&d| d > 0) {
            let _ = write!(line, ", first {d} layer(s) dense");
        }
        let _ = writeln!(o, "Experts:       {line}");
    }
}
