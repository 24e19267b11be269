//! Tiny random-weight models (testdata/tiny, made by tools/tiny_models.py and, for the
//! ones converted by llama.cpp — the mixture-of-experts ones, and deepseek2 with its
//! multi-head latent attention — tools/tiny_moe_models.py) against the
//! logits of Hugging Face transformers' own forward pass, at every position, run as one
//! prefill and token by token, in F32 and Q8_0.

mod common;

use common::{golden, max_err_over_range, tiny};
use kaiyuan_gguf::writer::GgufWriter;
use kaiyuan_gguf::{GgufFile, Value};
use kaiyuan_kernels::threads::ThreadPool;
use kaiyuan_model::{Model, Session};
use std::sync::Arc;

/// F32 weights: the only differences are f32 summation order and the f16 KV cache.
const F32_TOLERANCE: f32 = 1e-3;
/// Q8_0 weights and 8-bit quantized (Q8_1) activations (~0.4% relative step each).
const Q8_TOLERANCE: f32 = 3e-2;

fn check(arch: &str, weights: &str, tolerance: f32) {
    let model = Model::open(tiny(&format!("{arch}.{weights}.gguf"))).expect("model opens");
    check_model(arch, weights, &model, tolerance);
}

fn check_model(arch: &str, weights: &str, model: &Model, tolerance: f32) {
    let g = golden(arch);
    assert_eq!(model.config().vocab_size, g.vocab);
    let pool = ThreadPool::new(2);

    let mut session = Session::new(model, 64);
    let prefill = session.eval(&pool, &g.tokens, true).expect("prefill");
    let err = max_err_over_range(&prefill, &g.logits);
    eprintln!("{arch} {weights} prefill: max error / logit range = {err:.2e}");
    assert!(
        err <= tolerance,
        "{arch} {weights} prefill: {err} > {tolerance}"
    );

    session.reset();
    let mut stepwise = Vec::new();
    for &t in &g.tokens {
        stepwise.extend(session.eval(&pool, &[t], false).expect("decode step"));
    }
    let err = max_err_over_range(&stepwise, &g.logits);
    eprintln!("{arch} {weights} token by token: max error / logit range = {err:.2e}");
    assert!(
        err <= tolerance,
        "{arch} {weights} stepwise: {err} > {tolerance}"
    );
}

#[test]
fn llama_f32_matches_transformers() {
    check("llama", "f32", F32_TOLERANCE);
}

#[test]
fn llama_q8_0_matches_transformers() {
    check("llama", "q8_0", Q8_TOLERANCE);
}

#[test]
fn qwen2_f32_matches_transformers() {
    check("qwen2", "f32", F32_TOLERANCE);
}

#[test]
fn qwen2_q8_0_matches_transformers() {
    check("qwen2", "q8_0", Q8_TOLERANCE);
}

#[test]
fn qwen3_f32_matches_transformers() {
    check("qwen3", "f32", F32_TOLERANCE);
}

#[test]
fn qwen3_q8_0_matches_transformers() {
    check("qwen3", "q8_0", Q8_TOLERANCE);
}

#[test]
fn gemma3_f32_matches_transformers() {
    check("gemma3", "f32", F32_TOLERANCE);
}

#[test]
fn gemma3_q8_0_matches_transformers() {
    check("gemma3", "q8_0", Q8_TOLERANCE);
}

#[test]
fn qwen3moe_f32_matches_transformers() {
    check("qwen3moe", "f32", F32_TOLERANCE);
}

#[test]
fn qwen3moe_q8_0_matches_transformers() {
    check("qwen3moe", "q8_0", Q8_TOLERANCE);
}

#[test]
fn ernie4_5_f32_matches_transformers() {
    check("ernie4_5", "f32", F32_TOLERANCE);
}

#[test]
fn ernie4_5_q8_0_matches_transformers() {
    check("ernie4_5", "q8_0", Q8_TOLERANCE);
}

#[test]
fn ernie4_5_moe_f32_matches_transformers() {
    check("ernie4_5-moe", "f32", F32_TOLERANCE);
}

#[test]
fn ernie4_5_moe_q8_0_matches_transformers() {
    check("ernie4_5-moe", "q8_0", Q8_TOLERANCE);
}

#[test]
fn glm4_f32_matches_transformers() {
    check("glm4", "f32", F32_TOLERANCE);
}

#[test]
fn glm4_q8_0_matches_transformers() {
    check("glm4", "q8_0", Q8_TOLERANCE);
}

#[test]
fn hunyuan_dense_f32_matches_transformers() {
    check("hunyuan-dense", "f32", F32_TOLERANCE);
}

#[test]
fn hunyuan_dense_q8_0_matches_transformers() {
    check("hunyuan-dense", "q8_0", Q8_TOLERANCE);
}

/// Hunyuan's NTK alpha given as `rope.scaling.alpha` over the unscaled base (as llama.cpp
/// also accepts), instead of folded into `rope.freq_base` by the converter: the same
/// transformers logits (made with `alpha` 50 over base 1e4).
#[test]
fn hunyuan_dense_alpha_key_scales_the_rope_base() {
    let src = GgufFile::open(tiny("hunyuan-dense.f32.gguf")).expect("fixture");
    let mut w = GgufWriter::new();
    for (k, v) in src.metadata() {
        let v = match k.as_str() {
            "hunyuan-dense.rope.freq_base" => Value::F32(10_000.0),
            _ => v.clone(),
        };
        w.kv(k.clone(), v);
    }
    w.kv("hunyuan-dense.rope.scaling.alpha", Value::F32(50.0));
    for t in src.tensors() {
        w.tensor(
            t.name.clone(),
            &t.dims,
            t.dtype,
            src.tensor_data(t).to_vec(),
        );
    }
    let file = GgufFile::from_bytes(w.to_bytes()).expect("rewritten file parses");
    let model = Model::from_gguf(Arc::new(file)).expect("model opens");
    check_model("hunyuan-dense", "f32 (alpha key)", &model, F32_TOLERANCE);
}

#[test]
fn glm4moe_f32_matches_transformers() {
    check("glm4moe", "f32", F32_TOLERANCE);
}

#[test]
fn glm4moe_q8_0_matches_transformers() {
    check("glm4moe", "q8_0", Q8_TOLERANCE);
}

/// The glm4moe files end with one multi-token-prediction block (`blk.3`, with every tensor
/// of a MoE layer plus `nextn.*`), counted in `block_count` = 4: it is left out of the
/// decoder, whose logits are transformers' (checked above) only without it.
#[test]
fn glm4moe_nextn_block_is_not_run() {
    let model = Model::open(tiny("glm4moe.f32.gguf")).expect("model opens");
    assert_eq!(
        model.file().get_u32("glm4moe.block_count").unwrap(),
        Some(4)
    );
    assert_eq!(
        model
            .file()
            .get_u32("glm4moe.nextn_predict_layers")
            .unwrap(),
        Some(1)
    );
    assert!(model.file().tensor("blk.3.nextn.eh_proj.weight").is_some());
    assert!(model.file().tensor("blk.3.ffn_gate_exps.weight").is_some());
    assert_eq!(model.config().num_layers, 3);
}

#[test]
fn hunyuan_moe_f32_matches_transformers() {
    check("hunyuan-moe", "f32", F32_TOLERANCE);
}

#[test]
fn hunyuan_moe_q8_0_matches_transformers() {
    check("hunyuan-moe", "q8_0", Q8_TOLERANCE);
}

#[test]
fn deepseek2_f32_matches_transformers() {
    check("deepseek2", "f32", F32_TOLERANCE);
}

#[test]
fn deepseek2_q8_0_matches_transformers() {
    check("deepseek2", "q8_0", Q8_TOLERANCE);
}

#[test]
fn deepseek2v3_f32_matches_transformers() {
    check("deepseek2v3", "f32", F32_TOLERANCE);
}

#[test]
fn deepseek2v3_q8_0_matches_transformers() {
    check("deepseek2v3", "q8_0", Q8_TOLERANCE);
}
