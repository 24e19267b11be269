//! Errors a user can act on: missing tensor, unsupported architecture, context overflow,
//! bad inputs to the batched forward pass.

mod common;

use common::tiny;
use kaiyuan_gguf::writer::GgufWriter;
use kaiyuan_gguf::{GgufFile, Value};
use kaiyuan_kernels::threads::ThreadPool;
use kaiyuan_model::{
    BatchSeq, BlockId, KvCache, LogitsWanted, Model, ModelError, Scratch, Session,
};
use std::sync::Arc;

/// The tiny llama fixture rewritten with `edit_kv` applied and `drop_tensor` left out.
fn rewritten(edit_kv: impl Fn(&str, &Value) -> Option<Value>, drop_tensor: &str) -> Arc<GgufFile> {
    rewritten_from("llama.f32.gguf", edit_kv, drop_tensor)
}

/// The tiny fixture `name` rewritten with `edit_kv` applied and `drop_tensor` left out.
fn rewritten_from(
    name: &str,
    edit_kv: impl Fn(&str, &Value) -> Option<Value>,
    drop_tensor: &str,
) -> Arc<GgufFile> {
    let src = GgufFile::open(tiny(name)).expect("fixture");
    let mut w = GgufWriter::new();
    for (k, v) in src.metadata() {
        if let Some(v) = edit_kv(k, v) {
            w.kv(k.clone(), v);
        }
    }
    for t in src.tensors() {
        if t.name != drop_tensor {
            w.tensor(
                t.name.clone(),
                &t.dims,
                t.dtype,
                src.tensor_data(t).to_vec(),
            );
        }
    }
    Arc::new(GgufFile::from_bytes(w.to_bytes()).expect("rewritten file parses"))
}

fn open_err(file: Arc<GgufFile>) -> String {
    match Model::from_gguf(file) {
        Ok(_) => panic!("model unexpectedly opened"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn missing_tensor_is_named() {
    let err = open_err(rewritten(|_, v| Some(v.clone()), "blk.1.ffn_up.weight"));
    assert!(err.contains("blk.1.ffn_up.weight"), "{err}");
}

#[test]
fn unsupported_architecture_lists_supported() {
    let err = open_err(rewritten(
        |k, v| {
            Some(if k == "general.architecture" {
                Value::String("rwkv6".into())
            } else {
                v.clone()
            })
        },
        "",
    ));
    assert!(
        err.contains("rwkv6") && err.contains("llama") && err.contains("gemma3"),
        "{err}"
    );
}

#[test]
fn recognised_architecture_is_refused_by_name() {
    let err = open_err(rewritten(
        |k, v| {
            Some(if k == "general.architecture" {
                Value::String("deepseek32".into())
            } else {
                v.clone()
            })
        },
        "",
    ));
    assert!(
        err.contains("\"deepseek32\" is recognised but not supported yet")
            && err.contains("multi-head latent attention with sparse indexing"),
        "{err}"
    );
}

#[test]
fn dense_architecture_with_experts_is_refused() {
    // Mixtral is written as `llama` with `llama.expert_count`.
    let file = rewritten(|_, v| Some(v.clone()), "");
    let mut w = GgufWriter::new();
    for (k, v) in file.metadata() {
        w.kv(k.clone(), v.clone());
    }
    w.kv("llama.expert_count", Value::U32(8));
    for t in file.tensors() {
        w.tensor(
            t.name.clone(),
            &t.dims,
            t.dtype,
            file.tensor_data(t).to_vec(),
        );
    }
    let err = open_err(Arc::new(GgufFile::from_bytes(w.to_bytes()).unwrap()));
    assert!(
        err.contains("llama.expert_count") && err.contains("not supported yet"),
        "{err}"
    );
}

#[test]
fn moe_missing_expert_tensor_is_named() {
    let err = open_err(rewritten_from(
        "qwen3moe.f32.gguf",
        |_, v| Some(v.clone()),
        "blk.1.ffn_down_exps.weight",
    ));
    assert!(err.contains("blk.1.ffn_down_exps.weight"), "{err}");
}

#[test]
fn moe_more_experts_used_than_exist_is_refused() {
    let err = open_err(rewritten_from(
        "qwen3moe.f32.gguf",
        |k, v| {
            Some(if k == "qwen3moe.expert_used_count" {
                Value::U32(9)
            } else {
                v.clone()
            })
        },
        "",
    ));
    assert!(err.contains("9 experts used per token out of 8"), "{err}");
}

#[test]
fn moe_unknown_gating_function_is_refused() {
    let file = rewritten_from("qwen3moe.f32.gguf", |_, v| Some(v.clone()), "");
    let mut w = GgufWriter::new();
    for (k, v) in file.metadata() {
        w.kv(k.clone(), v.clone());
    }
    w.kv("qwen3moe.expert_gating_func", Value::U32(4));
    for t in file.tensors() {
        w.tensor(
            t.name.clone(),
            &t.dims,
            t.dtype,
            file.tensor_data(t).to_vec(),
        );
    }
    let err = open_err(Arc::new(GgufFile::from_bytes(w.to_bytes()).unwrap()));
    assert!(
        err.contains("expert gating function 4") && err.contains("qwen3moe.expert_gating_func"),
        "{err}"
    );
}

#[test]
fn missing_key_is_named() {
    let err = open_err(rewritten(
        |k, v| (k != "llama.embedding_length").then(|| v.clone()),
        "",
    ));
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
    let err = open_err(rewritten_from(
        "ernie4_5-moe.f32.gguf",
        |k, v| {
            Some(if k == "ernie4_5-moe.interleave_moe_layer_step" {
                Value::U32(0)
            } else {
                v.clone()
            })
        },
        "",
    ));
    assert!(
        err.contains("ernie4_5-moe.interleave_moe_layer_step") && err.contains("positive"),
        "{err}"
    );
}

#[test]
fn fused_gate_up_of_the_wrong_size_is_named() {
    // GLM-4's ffn_up must hold 2·feed_forward_length rows (gate, then up).
    let err = open_err(rewritten_from(
        "glm4.f32.gguf",
        |k, v| {
            Some(if k == "glm4.feed_forward_length" {
                Value::U32(64)
            } else {
                v.clone()
            })
        },
        "",
    ));
    assert!(err.contains("blk.0.ffn_up.weight"), "{err}");
}

#[test]
fn output_projection_bias_is_refused_by_name() {
    // ERNIE 4.5 with `use_bias` has biases on o_proj and the FFN that the decoder does not
    // add: refused, not run without them.
    let src = GgufFile::open(tiny("ernie4_5.f32.gguf")).expect("fixture");
    let mut w = GgufWriter::new();
    for (k, v) in src.metadata() {
        w.kv(k.clone(), v.clone());
    }
    for t in src.tensors() {
        w.tensor(
            t.name.clone(),
            &t.dims,
            t.dtype,
            src.tensor_data(t).to_vec(),
        );
    }
    w.tensor(
        "blk.1.attn_output.bias".to_string(),
        &[64],
        kaiyuan_kernels::DType::F32,
        vec![0; 64 * 4],
    );
    let err = open_err(Arc::new(GgufFile::from_bytes(w.to_bytes()).unwrap()));
    assert!(
        err.contains("blk.1.attn_output.bias") && err.contains("unsupported"),
        "{err}"
    );
}

/// An older deepseek2 conversion (one `attn_kv_b` per layer, no `key_length_mla`) is
/// refused with what to do, not run as something else.
#[test]
fn older_deepseek2_conversion_is_refused_with_advice() {
    let src = GgufFile::open(tiny("deepseek2.f32.gguf")).expect("fixture");
    let mut w = GgufWriter::new();
    for (k, v) in src.metadata() {
        if k != "deepseek2.attention.key_length_mla" {
            w.kv(k.clone(), v.clone());
        }
    }
    for t in src.tensors() {
        let name = t.name.replace("attn_k_b", "attn_kv_b");
        w.tensor(name, &t.dims, t.dtype, src.tensor_data(t).to_vec());
    }
    let err = open_err(Arc::new(GgufFile::from_bytes(w.to_bytes()).unwrap()));
    assert!(
        err.contains("attn_kv_b") && err.contains("convert_hf_to_gguf.py"),
        "{err}"
    );
}

/// YaRN on MLA needs the file's log multiplier (Hugging Face's `mscale_all_dim`): without
/// it llama.cpp and transformers disagree, so it is refused rather than guessed.
#[test]
fn deepseek2_yarn_without_log_multiplier_is_refused() {
    let err = open_err(rewritten_from(
        "deepseek2v3.f32.gguf",
        |k, v| (k != "deepseek2.rope.scaling.yarn_log_multiplier").then(|| v.clone()),
        "",
    ));
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
    let with_mtp = rewritten_from(
        "deepseek2.f32.gguf",
        |k, v| {
            Some(match k {
                "deepseek2.block_count" => Value::U32(4),
                _ => v.clone(),
            })
        },
        "",
    );
    let mut w = GgufWriter::new();
    for (k, v) in with_mtp.metadata() {
        w.kv(k.clone(), v.clone());
    }
    w.kv("deepseek2.nextn_predict_layers", Value::U32(1));
    for t in with_mtp.tensors() {
        w.tensor(
            t.name.clone(),
            &t.dims,
            t.dtype,
            with_mtp.tensor_data(t).to_vec(),
        );
    }
    let with_mtp = Model::from_gguf(Arc::new(GgufFile::from_bytes(w.to_bytes()).unwrap()))
        .expect("model with a prediction layer opens");
    assert_eq!(with_mtp.config().num_layers, 3);
    let pool = ThreadPool::new(1);
    let tokens = [1, 2, 3, 4];
    let a = Session::new(&plain, 16).eval(&pool, &tokens, true).unwrap();
    let b = Session::new(&with_mtp, 16)
        .eval(&pool, &tokens, true)
        .unwrap();
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
}

/// Fixture `name` with metadata key `key` added.
fn with_key(name: &str, key: &str, value: Value) -> Arc<GgufFile> {
    let src = rewritten_from(name, |_, v| Some(v.clone()), "");
    let mut w = GgufWriter::new();
    for (k, v) in src.metadata() {
        w.kv(k.clone(), v.clone());
    }
    w.kv(key, value);
    for t in src.tensors() {
        w.tensor(
            t.name.clone(),
            &t.dims,
            t.dtype,
            src.tensor_data(t).to_vec(),
        );
    }
    Arc::new(GgufFile::from_bytes(w.to_bytes()).expect("rewritten file parses"))
}

/// A GLM-4.5V conversion (`glm4moe` with multimodal rotary sections, M-RoPE, as llama.cpp
/// uses them when the first two are positive) is refused, not run with plain RoPE; sections
/// of zeros mean plain RoPE and load.
#[test]
fn multimodal_rope_sections_are_refused() {
    let key = "glm4moe.rope.dimension_sections";
    let sections = |s: [i32; 4]| Value::Array(kaiyuan_gguf::Array::I32(s.to_vec()));
    let err = open_err(with_key("glm4moe.f32.gguf", key, sections([8, 4, 4, 0])));
    assert!(err.contains(key) && err.contains("M-RoPE"), "{err}");
    Model::from_gguf(with_key("glm4moe.f32.gguf", key, sections([0, 0, 0, 0])))
        .expect("zero sections load");
}
