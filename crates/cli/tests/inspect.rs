//! Runs the `kaiyuan inspect` binary on a small GGUF built with the test writer, on the
//! real models (expected values from the gguf-py listings in testdata/golden), and on a
//! corrupt file.

mod common;

use std::path::{Path, PathBuf};

use common::{kaiyuan, model, repo_root};

use kaiyuan_gguf::writer::GgufWriter;
use kaiyuan_gguf::{Array, Value};
use kaiyuan_kernels::DType;
use serde_json::Value as Json;

fn inspect_json(path: &Path) -> Json {
    let out = kaiyuan(&["inspect", "--json", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("--json prints one JSON document")
}

fn small_model(path: &Path) {
    let mut w = GgufWriter::new();
    w.kv("general.architecture", Value::String("llama".into()))
        .kv("general.name", Value::String("tiny".into()))
        .kv("general.file_type", Value::U32(7))
        .kv("llama.context_length", Value::U32(256))
        .kv("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5))
        .kv("tokenizer.ggml.model", Value::String("gpt2".into()))
        .kv(
            "tokenizer.ggml.tokens",
            Value::Array(Array::String(vec![
                "<unk>".into(),
                "<s>".into(),
                "</s>".into(),
                "hi".into(),
            ])),
        )
        .kv("tokenizer.ggml.bos_token_id", Value::U32(1))
        .kv("tokenizer.ggml.eos_token_id", Value::U32(2))
        .kv("tokenizer.ggml.add_bos_token", Value::Bool(true))
        .kv(
            "tokenizer.chat_template",
            Value::String("{{ first }}\nsecond".into()),
        )
        .kv("custom.key", Value::I32(-3));
    w.tensor("token_embd.weight", &[32, 2], DType::Q8_0, vec![0; 68])
        .tensor("odd.weight", &[256], DType::IQ2_XXS, vec![0; 66])
        .tensor("output_norm.weight", &[32], DType::F32, vec![0; 128]);
    w.write(path).unwrap();
}

#[test]
fn inspect_small_file_text() {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("inspect_small.gguf");
    small_model(&path);
    let out = kaiyuan(&["inspect", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "Architecture:  llama",
        "MOSTLY_Q8_0 (7)",
        "context_length",
        "256",
        "layer_norm_rms_epsilon",
        "0.00001",
        "vocab size      4",
        "bos id          1 \"<s>\"",
        "eos id          2 \"</s>\"",
        "add_bos_token   true",
        "chat template   18 bytes, 2 lines; first line: \"{{ first }}\"",
        "custom.key",
        "PyTorch order",
        "[2, 32]",
        "UNSUPPORTED",
        "odd.weight",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let odd_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("odd.weight"))
        .unwrap();
    assert!(
        odd_line.contains("IQ2_XXS") && odd_line.contains("UNSUPPORTED"),
        "{odd_line}"
    );
    let q_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("token_embd.weight"))
        .unwrap();
    assert!(!q_line.contains("UNSUPPORTED"), "{q_line}");
}

#[test]
fn inspect_small_file_json() {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("inspect_small_json.gguf");
    small_model(&path);
    let j = inspect_json(&path);
    assert_eq!(j["architecture"], "llama");
    assert_eq!(j["file_type"]["name"], "MOSTLY_Q8_0");
    let hp = j["hyperparameters"].as_array().unwrap();
    let eps = hp
        .iter()
        .find(|e| e["key"] == "attention.layer_norm_rms_epsilon")
        .unwrap();
    assert_eq!(eps["type"], "FLOAT32");
    assert_eq!(eps["value"].as_f64(), Some(1e-5));
    assert_eq!(j["tokenizer"]["vocab_size"], 4);
    assert_eq!(j["tokenizer"]["special_tokens"][0]["role"], "bos");
    assert_eq!(j["tokenizer"]["special_tokens"][0]["token"], "<s>");
    assert_eq!(j["tokenizer"]["chat_template"]["lines"], 2);
    assert_eq!(j["totals"]["tensors"], 3);
    assert_eq!(j["totals"]["parameters"], 64 + 256 + 32);
    assert_eq!(j["totals"]["bytes"], 68 + 66 + 128);
    assert_eq!(j["tensors"][0]["shape"], serde_json::json!([2, 32]));
    assert_eq!(j["tensors"][0]["ggml_dims"], serde_json::json!([32, 2]));
    assert_eq!(j["unsupported_tensors"], serde_json::json!(["odd.weight"]));
    assert_eq!(j["other_metadata"][0]["key"], "custom.key");
}

/// Checks `inspect --json` of a real model against its gguf-py listing.
fn check_real_model(stem: &str, arch: &str, file_type: &str) -> Json {
    let golden: Json = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join(format!("testdata/golden/{stem}.listing.json")))
            .unwrap(),
    )
    .unwrap();
    let j = inspect_json(Path::new(&model(&format!("{stem}.gguf"))));
    assert_eq!(j["architecture"], arch);
    assert_eq!(j["file_type"]["name"], file_type);
    assert_eq!(golden["file_type_name"], file_type);
    let tensors = golden["tensors"].as_array().unwrap();
    assert_eq!(j["totals"]["tensors"].as_u64(), Some(tensors.len() as u64));
    let params: u64 = tensors
        .iter()
        .map(|t| t["n_elements"].as_u64().unwrap())
        .sum();
    let bytes: u64 = tensors.iter().map(|t| t["n_bytes"].as_u64().unwrap()).sum();
    assert_eq!(j["totals"]["parameters"].as_u64(), Some(params));
    assert_eq!(j["totals"]["bytes"].as_u64(), Some(bytes));
    // Hyper-parameters: every `<arch>.` key of the listing, prefix removed, same order.
    let prefix = format!("{arch}.");
    let expected: Vec<&str> = golden["metadata"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["key"].as_str().unwrap().strip_prefix(&prefix))
        .collect();
    let ours: Vec<&str> = j["hyperparameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(ours, expected);
    let first = &j["tensors"][0];
    let dims: Vec<u64> = tensors[0]["dims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap())
        .collect();
    let reversed: Vec<u64> = dims.iter().rev().copied().collect();
    assert_eq!(first["name"], tensors[0]["name"]);
    assert_eq!(first["shape"], serde_json::json!(reversed));
    assert_eq!(j["unsupported_tensors"], serde_json::json!([]));
    j
}

#[test]
fn inspect_smollm2() {
    let j = check_real_model("SmolLM2-135M-Instruct.Q4_1", "llama", "MOSTLY_Q4_1");
    let hp = j["hyperparameters"].as_array().unwrap();
    let ctx = hp.iter().find(|e| e["key"] == "context_length").unwrap();
    assert_eq!(ctx["value"], 8192);
    let t = &j["tokenizer"];
    assert_eq!(t["model"], "gpt2");
    assert_eq!(t["vocab_size"], 49152);
    assert_eq!(t["merges"], 48900);
    assert_eq!(t["special_tokens"][0]["token"], "<|im_start|>");
    assert_eq!(t["add_bos_token"], false);
    assert!(t["chat_template"]["bytes"].as_u64().unwrap() > 0);
}

#[test]
fn inspect_gemma3() {
    let j = check_real_model("gemma-3-270m-q4_k_m", "gemma3", "MOSTLY_Q4_K_M");
    let hp = j["hyperparameters"].as_array().unwrap();
    let sw = hp
        .iter()
        .find(|e| e["key"] == "attention.sliding_window")
        .unwrap();
    assert_eq!(sw["value"], 512);
    assert_eq!(j["tokenizer"]["vocab_size"], 262144);
    assert_eq!(j["tokenizer"]["special_tokens"][0]["token"], "<bos>");
}

#[test]
fn inspect_corrupt_file_fails_readably() {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("inspect_corrupt.gguf");
    small_model(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 10);
    std::fs::write(&path, bytes).unwrap();
    let out = kaiyuan(&["inspect", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(path.to_str().unwrap()), "{err}");
    assert!(
        err.contains("\"output_norm.weight\"") && err.contains("past the end of the file"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let out = kaiyuan(&["inspect", "/nonexistent/x.gguf"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.gguf"));
}

#[test]
fn inspect_moe_shows_experts_and_attention() {
    // The tiny Qwen3-MoE converted by llama.cpp (tools/tiny_moe_models.py): 8 experts,
    // 2 per token, 4 query heads sharing 2 KV heads.
    let path = repo_root().join("testdata/tiny/qwen3moe.q8_0.gguf");
    let j = inspect_json(&path);
    let m = &j["model"];
    assert_eq!(m["support"], "supported");
    assert_eq!(m["attention"], "grouped-query (4 query heads, 2 KV heads)");
    assert_eq!(m["experts"]["count"], 8);
    assert_eq!(m["experts"]["used_per_token"], 2);
    assert_eq!(m["experts"]["feed_forward_length"], 32);
    let out = kaiyuan(&["inspect", path.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Experts:       8 routed, 2 used per token, FFN 32 each"),
        "{text}"
    );
}

#[test]
fn inspect_names_a_recognised_but_unsupported_architecture() {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("inspect_deepseek32.gguf");
    let mut w = GgufWriter::new();
    w.kv("general.architecture", Value::String("deepseek32".into()))
        .kv("deepseek32.attention.head_count", Value::U32(16))
        .kv("deepseek32.attention.kv_lora_rank", Value::U32(512))
        .kv("deepseek32.expert_count", Value::U32(64))
        .kv("deepseek32.expert_used_count", Value::U32(6))
        .kv("deepseek32.expert_shared_count", Value::U32(2))
        .kv("deepseek32.leading_dense_block_count", Value::U32(1))
        .kv("deepseek32.expert_gating_func", Value::U32(1));
    w.write(&path).unwrap();
    let j = inspect_json(&path);
    let m = &j["model"];
    let support = m["support"].as_str().unwrap();
    assert!(
        support.starts_with("recognised, not supported yet"),
        "{support}"
    );
    assert_eq!(
        m["attention"],
        "multi-head latent (MLA: KV rank 512, no query compression)"
    );
    let out = kaiyuan(&["inspect", path.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Experts:       64 routed, 6 used per token, 2 shared, softmax router, first 1 layer(s) dense"),
        "{text}"
    );
}

#[test]
fn inspect_deepseek2_shows_latent_attention() {
    // The tiny DeepSeek-V3-style model converted by llama.cpp (tools/tiny_moe_models.py).
    let path = repo_root().join("testdata/tiny/deepseek2v3.q8_0.gguf");
    let j = inspect_json(&path);
    let m = &j["model"];
    assert_eq!(m["support"], "supported");
    assert_eq!(
        m["attention"],
        "multi-head latent (MLA: KV rank 96, query rank 32)"
    );
    let out = kaiyuan(&["inspect", path.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "Experts:       8 routed, 2 used per token, 1 shared, FFN 32 each, sigmoid router, \
             2 of 4 groups, first 1 layer(s) dense"
        ),
        "{text}"
    );
}
