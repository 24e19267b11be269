//! What `kaiyuan bench` reports: one [`Record`] per test (llama-bench's field names where it
//! has one), the Markdown table it prints, and the bytes a decode step reads (weights and KV
//! cache), from which a caller can put a tokens/s figure against the memory bandwidth.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use kaiyuan_gguf::{file_type_name, Value};
use kaiyuan_kernels::quant::simd_description;
use kaiyuan_kernels::DType;
use kaiyuan_model::Model;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestKind {
    /// One forward pass over the whole prompt.
    Prompt,
    /// One forward pass per generated token.
    Generation,
}

/// The model's description, size and per-token read volume.
pub struct ModelInfo {
    pub filename: String,
    /// `<arch> <params> <main weight type>`, like llama-bench's model column.
    pub desc: String,
    /// Bytes of all tensors.
    pub size: u64,
    pub n_params: u64,
    /// Bytes of weights one decode step reads: every tensor except the token embedding
    /// table, of which one row is read (unless it doubles as the output matrix), and of a
    /// mixture of experts' stacked expert tensors (`*_exps`) only the `used` experts a token
    /// is routed to.
    pub weight_bytes_per_token: u64,
}

impl ModelInfo {
    pub fn new(path: &Path, model: &Model) -> ModelInfo {
        let file = model.file();
        let tensors = file.tensors();
        let size: u64 = tensors.iter().map(|t| t.size).sum();
        let n_params: u64 = tensors.iter().map(|t| t.n_elements()).sum();
        let embd = file.tensor("token_embd.weight");
        let mut weight_bytes_per_token = match embd {
            Some(e) if !model.config().tied_embeddings => {
                size - e.size + e.size / model.config().vocab_size.max(1) as u64
            }
            _ => size,
        };
        if let Some(moe) = &model.config().moe {
            // A decoded token reads `used` of the `experts` equal slices of each stacked
            // expert tensor.
            let (used, experts) = (moe.router.used as u64, moe.router.experts.max(1) as u64);
            for t in tensors.iter().filter(|t| is_stacked_experts(&t.name)) {
                weight_bytes_per_token -= t.size - t.size / experts * used;
            }
        }
        // The file's quantization mix (`general.file_type`), else the type holding most
        // bytes among matrices.
        let file_type = file
            .get("general.file_type")
            .and_then(Value::as_integer)
            .and_then(|n| u32::try_from(n).ok())
            .and_then(file_type_name)
            .map(|name| {
                name.trim_start_matches("MOSTLY_")
                    .trim_start_matches("ALL_")
            });
        let mut by_type: HashMap<DType, u64> = HashMap::new();
        for t in tensors.iter().filter(|t| t.dims.len() >= 2) {
            *by_type.entry(t.dtype).or_default() += t.size;
        }
        let main_type = file_type.unwrap_or_else(|| {
            by_type
                .into_iter()
                .max_by_key(|&(dtype, bytes)| (bytes, dtype.name()))
                .map_or("?", |(dtype, _)| dtype.name())
        });
        ModelInfo {
            filename: path.display().to_string(),
            desc: format!(
                "{} {} {main_type}",
                model.config().architecture,
                params_label(n_params)
            ),
            size,
            n_params,
            weight_bytes_per_token,
        }
    }
}

/// Whether a tensor holds a mixture of experts' routed experts stacked along its last
/// dimension (`blk.N.ffn_{gate,up,down}_exps.weight`, also the fused `ffn_gate_up_exps`).
fn is_stacked_experts(name: &str) -> bool {
    name.strip_suffix(".weight")
        .is_some_and(|n| n.starts_with("blk.") && n.ends_with("_exps"))
}

/// One test's result; the JSON field names follow llama-bench's where it has the field.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub model_filename: String,
    pub model_type: String,
    pub model_size: u64,
    pub model_n_params: u64,
    pub backend: &'static str,
    /// The SIMD level, and the weight dot products' level where it differs, e.g.
    /// `avx512 (dot products: avx2)`.
    pub simd: &'static str,
    pub n_threads: usize,
    /// `pp512`, `tg128`, `tg128 @ d1024`.
    pub test: String,
    pub n_prompt: usize,
    pub n_gen: usize,
    pub n_depth: usize,
    pub reps: usize,
    pub avg_ns: f64,
    pub stddev_ns: f64,
    pub avg_ts: f64,
    pub stddev_ts: f64,
    pub samples_ns: Vec<u64>,
    pub samples_ts: Vec<f64>,
    /// tg tests: weight bytes one token's forward pass reads.
    pub weight_bytes_per_token: Option<u64>,
    /// tg tests: f16 KV-cache bytes one token's attention reads, averaged over the test.
    pub kv_bytes_per_token: Option<f64>,
}

impl Record {
    pub fn new(
        info: &ModelInfo,
        model: &Model,
        n_threads: usize,
        kind: TestKind,
        size: usize,
        depth: usize,
        samples: &[Duration],
    ) -> Record {
        let samples_ns: Vec<u64> = samples
            .iter()
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1))
            .collect();
        let samples_ts: Vec<f64> = samples_ns
            .iter()
            .map(|&ns| size as f64 * 1e9 / ns as f64)
            .collect();
        let ns: Vec<f64> = samples_ns.iter().map(|&n| n as f64).collect();
        let (name, n_prompt, n_gen) = match kind {
            TestKind::Prompt => (format!("pp{size}"), size, 0),
            TestKind::Generation => (format!("tg{size}"), 0, size),
        };
        let test = if depth > 0 {
            format!("{name} @ d{depth}")
        } else {
            name
        };
        let generation = kind == TestKind::Generation;
        Record {
            model_filename: info.filename.clone(),
            model_type: info.desc.clone(),
            model_size: info.size,
            model_n_params: info.n_params,
            backend: "CPU",
            simd: simd_description(),
            n_threads,
            test,
            n_prompt,
            n_gen,
            n_depth: depth,
            reps: samples.len(),
            avg_ns: mean(&ns),
            stddev_ns: stddev(&ns),
            avg_ts: mean(&samples_ts),
            stddev_ts: stddev(&samples_ts),
            samples_ns,
            samples_ts,
            weight_bytes_per_token: generation.then_some(info.weight_bytes_per_token),
            kv_bytes_per_token: generation.then(|| kv_bytes_per_token(model, depth, size)),
        }
    }
}

/// Bytes of the f16 KV cache the attention of one generated token reads, averaged over the
/// `n` tokens generated after `depth`: keys and values of every cached position a layer
/// attends to (a sliding-window layer only its window; multi-head latent attention caches
/// one latent row per position that serves as key and value).
pub fn kv_bytes_per_token(model: &Model, depth: usize, n: usize) -> f64 {
    let c = model.config();
    let tensors = if c.mla.is_some() { 1 } else { 2 }; // K and V
    let per_position = (c.kv_dim() * tensors * 2) as f64; // 2 bytes each
    let total: f64 = (0..n.max(1))
        .map(|i| {
            let attended = depth + i + 1;
            c.layers
                .iter()
                .map(|l| l.sliding_window.map_or(attended, |w| attended.min(w)) as f64)
                .sum::<f64>()
        })
        .sum();
    total / n.max(1) as f64 * per_position
}

/// `134.52 M` / `1.54 B`, as llama-bench prints parameter counts.
pub fn params_label(n: u64) -> String {
    if n >= 1_000_000_000 {
        format!("{:.2} B", n as f64 / 1e9)
    } else {
        format!("{:.2} M", n as f64 / 1e6)
    }
}

/// `85.77 MiB` / `1.10 GiB`.
pub fn size_label(bytes: u64) -> String {
    let mib = bytes as f64 / (1u64 << 20) as f64;
    if mib >= 1024.0 {
        format!("{:.2} GiB", mib / 1024.0)
    } else {
        format!("{mib:.2} MiB")
    }
}

pub fn write_header(out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "| model | size | params | backend | threads | test | t/s |"
    )?;
    writeln!(out, "| --- | ---: | ---: | --- | ---: | ---: | ---: |")?;
    out.flush()
}

pub fn write_row(out: &mut dyn Write, r: &Record) -> io::Result<()> {
    writeln!(
        out,
        "| {} | {} | {} | {} ({}) | {} | {} | {:.2} ± {:.2} |",
        r.model_type,
        size_label(r.model_size),
        params_label(r.model_n_params),
        r.backend,
        r.simd,
        r.n_threads,
        r.test,
        r.avg_ts,
        r.stddev_ts
    )?;
    out.flush()
}

/// One bandwidth measurement (`kaiyuan bench --bandwidth --json`).
#[derive(Debug, Clone, Serialize)]
pub struct BandwidthRecord {
    pub test: &'static str,
    pub buffer_bytes: usize,
    pub n_threads: usize,
    pub simd: &'static str,
    /// 10⁹ bytes per second.
    pub gbs: f64,
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

/// Sample standard deviation (Bessel's correction, as llama-bench); 0 for fewer than 2.
fn stddev(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = mean(v);
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics() {
        assert_eq!(mean(&[]), 0.0);
        assert_eq!(stddev(&[3.0]), 0.0);
        assert!((mean(&[1.0, 2.0, 3.0]) - 2.0).abs() < 1e-12);
        assert!((stddev(&[1.0, 2.0, 3.0]) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn stacked_experts() {
        assert!(is_stacked_experts("blk.3.ffn_gate_exps.weight"));
        assert!(is_stacked_experts("blk.0.ffn_down_exps.weight"));
        assert!(!is_stacked_experts("blk.1.ffn_gate_shexp.weight"));
        assert!(!is_stacked_experts("blk.1.ffn_gate_inp.weight"));
        assert!(!is_stacked_experts("blk.1.ffn_up.weight"));
    }

    #[test]
    fn labels() {
        assert_eq!(params_label(134_515_008), "134.52 M");
        assert_eq!(params_label(1_540_000_000), "1.54 B");
        assert_eq!(size_label(90_000_000), "85.83 MiB");
        assert_eq!(size_label(3 << 30), "3.00 GiB");
    }
}
