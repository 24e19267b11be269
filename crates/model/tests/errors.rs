//! Errors a user can act on: missing tensor, unsupported architecture, context overflow,
//! bad inputs to the batched forward pass.

mod common;

use common::rewrite::Rewrite;
use common::tiny;
use kaiyuan_gguf::Value;
use kaiyuan_kernels::threads::ThreadPool;
use kaiyuan_model::{
    BatchSeq, BlockId, KvCache, LogitsWanted, Model, ModelError, Scratch, Session,
};

/// The error of loading the rewritten file.
fn open_err(rewrite: Rewrite) -> String {
    match Model::from_gguf(rewrite.file()) {
        Ok(_) => panic!("model unexpectedly opened"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn missing_tensor_is_named() {
    let err = open_err(Rewrite::of("llama.f32.gguf").drop_tensor("blk.1.ffn_up.weight"));
    assert!(err.contains("blk.1.ffn_up.weight"), "{err}");
}

#[test]
fn unsupported_architecture_lists_supported() {
    let err = open_err(
        Rewrite::of("llama.f32.gguf").set("general.architecture", Value::String("rwkv6".into())),
    );
    assert!(
        err.contains("rwkv6") && err.contains("llama") && err.contains("gemma3"),
        "{err}"
    );
}

#[test]
fn recognised_architecture_is_refused_by_name() {
    let err = open_err(
        Rewrite::of("llama.f32.gguf")
            .set("general.architecture", Value::String("deepseek32".into())),
    );
    assert!(
        err.contains("\"deepseek32\" is recognised but not supported yet")
            && err.contains("multi-head latent attention with sparse indexing"),
        "{err}"
    );
}

#[test]
fn dense_architecture_with_experts_is_refused() {
    // Mixtral is written as `llama` with `llama.expert_count`.
    let err = open_err(Rewrite::of("llama.f32.gguf").set("llama.expert_count", Value::U32(8)));
    assert!(
        err.contains("llama.expert_count") && err.contains("not supported yet"),
        "{err}"
    );
}

#[test]
fn moe_missing_expert_tensor_is_named() {
    let err = open_err(Rewrite::of("qwen3moe.f32.gguf").drop_tensor("blk.1.ffn_down_exps.weight"));
    assert!(err.contains("blk.1.ffn_down_exps.weight"), "{err}");
}

#[test]
fn moe_more_experts_used_than_exist_is_refused() {
    let err =
        open_err(Rewrite::of("qwen3moe.f32.gguf").set("qwen3moe.expert_used_count", Value::U32(9)));
    assert!(err.contains("9 experts used per token out of 8"), "{err}");
}

#[test]
fn moe_unknown_gating_function_is_refused() {
    let err = open_err(
        Rewrite::of("qwen3moe.f32.gguf").set("qwen3moe.expert_gating_func", Value::U32(4)),
    );
    assert!(
        err.contains("expert gating function 4") && err.contains("qwen3moe.expert_gating_func"),
        "{err}"
    );
}

#[test]
fn missing_key_is_named() {
    let err = open_err(Rewrite::of("llama.f32.gguf").remove_key("llama.embedding_length"));
    assert!(err.contains("llama.embedding_length"), "{err}");
}

#[test]
fn context_overflow_says_both_numbers() {
    let model = Model::open(tiny("llama.f32.gguf")).expect("model opens");
    let pool = ThreadPool::new(1);
    let mut s = Session::new(&model, 20);
    s.eval(&pool, &[1; 15], false).expect("fits");
    let err = s.eval(&pool, &[1; 9], false).unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::ContextOverflow {
                needed: 24,
                capacity: 20
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("24") && msg.contains("20"), "{msg}");
    assert_eq!(s.position(), 15, "a failed eval changes nothing");
}

#[test]
fn bad_batch_inputs_are_rejected() {
    let model = Model::open(tiny("llama.f32.gguf")).expect("model opens");
    let pool = ThreadPool::new(1);
    let mut kv = KvCache::new(model.config(), 2);
    let run = |kv: &mut KvCache, tokens: &[u32], table: &[BlockId]| {
        let seq = BatchSeq {
            tokens,
            start_pos: 0,
            block_table: table,
            want_logits: LogitsWanted::Last,
        };
        model
            .forward(&pool, kv, &[seq], &mut Scratch::new())
            .map(|_| ())
    };
    let vocab = model.config().vocab_size as u32;
    assert!(matches!(
        run(&mut kv, &[vocab], &[BlockId(0)]),
        Err(ModelError::TokenOutOfRange { .. })
    ));
    assert!(matches!(
        run(&mut kv, &[1; 17], &[BlockId(0)]),
        Err(ModelError::BlockTableTooShort { need: 2, .. })
    ));
    assert!(matches!(
        run(&mut kv, &[1; 3], &[BlockId(2)]),
        Err(ModelError::BlockOutOfRange { block: 2, .. })
    ));
}

#[test]
fn zero_moe_layer_step_is_refused() {
    let err = open_err(
        Rewrite::of("ernie4_5-moe.f32.gguf")
            .set("ernie4_5-moe.interleave_moe_layer_step", Value::U32(0)),
    );
    assert!(
        err.contains("ernie4_5-moe.interleave_moe_layer_step") && err.contains("positive"),
        "{err}"
    );
}

#[test]
fn fused_gate_up_of_the_wrong_size_is_named() {
    // GLM-4's ffn_up must hold 2·feed_forward_length rows (gate, then up).
    let err =
        open_err(Rewrite::of("glm4.f32.gguf").set("glm4.feed_forward_length", Value::U32(64)));
    assert!(err.contains("blk.0.ffn_up.weight"), "{err}");
}

#[test]
fn output_projection_bias_is_refused_by_name() {
    // ERNIE 4.5 with `use_bias` has biases on o_proj and the FFN that the decoder does not
    // add: refused, not run without them.
    let err = open_err(Rewrite::of("ernie4_5.f32.gguf").add_tensor(
        "blk.1.attn_output.bias",
        &[64],
        kaiyuan_kernels::DType::F32,
        vec![0; 64 * 4],
    ));
    assert!(
        err.contains("blk.1.attn_output.bias") && err.contains("unsupported"),
        "{err}"
    );
}

/// An older deepseek2 conversion (one `attn_kv_b` per layer, no `key_length_mla`) is
/// refused with what to do, not run as something else.
#[test]
fn older_deepseek2_conversion_is_refused_with_advice() {
    let err = open_err(
        Rewrite::of("deepseek2.f32.gguf")
            .remove_key("deepseek2.attention.key_length_mla")
            .rename_tensors("attn_k_b", "attn_kv_b"),
    );
    assert!(
        err.contains("attn_kv_b") && err.contains("convert_hf_to_gguf.py"),
        "{err}"
    );
}

/// YaRN on MLA needs the file's log multiplier (Hugging Face's `mscale_all_dim`): without
/// it llama.cpp and transformers disagree, so it is refused rather than guessed.
#[test]
fn deepseek2_yarn_without_log_multiplier_is_refused() {
    let err = open_err(
        Rewrite::of("deepseek2v3.f32.gguf")
            .remove_key("deepseek2.rope.scaling.yarn_log_multiplier"),
    );
    assert!(err.contains("yarn_log_multiplier"), "{err}");
}

/// The MLA cache holds one row of `rope + kv_lora_rank` f16 values per token and layer
/// (its values are its keys), not a key and a value per head.
#[test]
fn deepseek2_cache_holds_only_the_latent() {
    let model = Model::open(tiny("deepseek2.f32.gguf")).expect("model opens");
    let c = model.config();
    let mla = c.mla.as_ref().expect("MLA config");
    assert_eq!(
        (c.num_kv_heads, c.head_dim),
        (1, mla.rope_dim + mla.kv_lora_rank)
    );
    let kv = KvCache::new(c, 4);
    assert_eq!(
        kv.bytes(),
        c.num_layers * 4 * kaiyuan_model::BLOCK_TOKENS * c.head_dim * 2
    );
}

/// Trailing multi-token-prediction layers (`nextn_predict_layers`, counted in
/// `block_count`, as llama.cpp writes them) are not run: the logits are those of the file
/// without them.
#[test]
fn trailing_prediction_layers_are_not_run() {
    let plain = Model::open(tiny("deepseek2.f32.gguf")).expect("model opens");
    let with_mtp = Rewrite::of("deepseek2.f32.gguf")
        .set("deepseek2.block_count", Value::U32(4))
        .set("deepseek2.nextn_predict_layers", Value::U32(1));
    let with_mtp = Model::from_gguf(with_mtp.file()).expect("model with a prediction layer opens");
    assert_eq!(with_mtp.config().num_layers, 3);
    let pool = ThreadPool::new(1);
    let tokens = [1, 2, 3, 4];
    let a = Session::new(&plain, 16).eval(&pool, &tokens, true).unwrap();
    let b = Session::new(&with_mtp, 16)
        .eval(&pool, &tokens, true)
        .unwrap();
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
}

/// A GLM-4.5V conversion (`glm4moe` with multimodal rotary sections, M-RoPE, as llama.cpp
/// uses them when the first two are positive) is refused, not run with plain RoPE; sections
/// of zeros mean plain RoPE and load.
#[test]
fn multimodal_rope_sections_are_refused() {
    let key = "glm4moe.rope.dimension_sections";
    let sections = |s: [i32; 4]| Value::Array(kaiyuan_gguf::Array::I32(s.to_vec()));
    let err = open_err(Rewrite::of("glm4moe.f32.gguf").set(key, sections([8, 4, 4, 0])));
    assert!(err.contains(key) && err.contains("M-RoPE"), "{err}");
    Model::from_gguf(
        Rewrite::of("glm4moe.f32.gguf")
            .set(key, sections([0, 0, 0, 0]))
            .file(),
    )
    .expect("zero sections load");
}
