//! Smoke tests on the real models (they fail when `models/` is absent): both load, and a
//! short prompt's logits are identical with 1 and 2 threads.

mod common;

use common::repo_root;
use kaiyuan_kernels::threads::ThreadPool;
use kaiyuan_model::{Model, Session};

/// Opens a real test model; a missing file fails the test (never a silent skip).
fn open_real(file: &str) -> Model {
    let path = repo_root().join("models").join(file);
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-models",
        path.display()
    );
    Model::open(&path).expect("real model opens")
}

fn check(file: &str, prompt: &[u32]) {
    let model = open_real(file);
    let run = |threads: usize| {
        let pool = ThreadPool::new(threads);
        let mut s = Session::new(&model, 64);
        let mut out = s
            .eval(&pool, &prompt[..prompt.len() - 1], true)
            .expect("prefill");
        out.extend(
            s.eval(&pool, &prompt[prompt.len() - 1..], false)
                .expect("decode"),
        );
        out
    };
    let (one, two) = (run(1), run(2));
    assert!(
        one.iter().all(|v| v.is_finite()),
        "{file}: non-finite logits"
    );
    assert!(
        one.iter()
            .zip(&two)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "{file}: logits differ between 1 and 2 threads"
    );
    let vocab = model.config().vocab_size;
    let last = &one[one.len() - vocab..];
    let argmax = (0..vocab)
        .max_by(|&a, &b| last[a].total_cmp(&last[b]))
        .expect("vocab");
    eprintln!("{file}: argmax after prompt = {argmax}");
}

#[test]
fn smollm2_loads_and_is_thread_count_invariant() {
    // "The capital of France is" in SmolLM2's tokenizer.
    check(
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        &[504, 3575, 282, 4649, 314],
    );
}

#[test]
fn gemma3_loads_and_is_thread_count_invariant() {
    // <bos> "The capital of France is" in Gemma 3's tokenizer.
    check("gemma-3-270m-q4_k_m.gguf", &[2, 818, 5279, 529, 7001, 563]);
}

/// Hyper-parameters as published in each model's Hugging Face `config.json`
/// (HuggingFaceTB/SmolLM2-135M-Instruct, google/gemma-3-270m).
#[test]
fn real_model_configs_match_their_published_hyper_parameters() {
    {
        let m = open_real("SmolLM2-135M-Instruct.Q4_1.gguf");
        let c = m.config();
        assert_eq!(
            (
                c.hidden_size,
                c.num_layers,
                c.num_heads,
                c.num_kv_heads,
                c.head_dim
            ),
            (576, 30, 9, 3, 64)
        );
        assert_eq!((c.ffn_size, c.vocab_size), (1536, 49152));
        assert_eq!(c.theta_base, 100_000.0);
        assert!(c.tied_embeddings && !c.qkv_bias && !c.qk_norm && !c.sandwich_norms);
        assert!(c.layers.iter().all(|l| l.sliding_window.is_none()));
    }
    {
        let m = open_real("gemma-3-270m-q4_k_m.gguf");
        let c = m.config();
        assert_eq!(
            (
                c.hidden_size,
                c.num_layers,
                c.num_heads,
                c.num_kv_heads,
                c.head_dim
            ),
            (640, 18, 4, 1, 256)
        );
        assert_eq!((c.ffn_size, c.vocab_size), (2048, 262144));
        assert!(c.tied_embeddings && c.qk_norm && c.sandwich_norms);
        assert_eq!(c.embedding_scale, (640f32).sqrt());
        // query_pre_attn_scalar = 256.
        assert_eq!(c.attention_scale, 1.0 / 16.0);
        // layer_types: five sliding_attention then one full_attention, repeated.
        for (i, l) in c.layers.iter().enumerate() {
            if i % 6 == 5 {
                assert_eq!(
                    (l.sliding_window, l.rope_theta),
                    (None, 1_000_000.0),
                    "layer {i}"
                );
            } else {
                assert_eq!(
                    (l.sliding_window, l.rope_theta),
                    (Some(512), 10_000.0),
                    "layer {i}"
                );
            }
        }
    }
}
