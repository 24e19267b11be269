//! Smoke tests on the real models (skipped when `models/` is absent): both load, and a
//! short prompt's logits are identical with 1 and 2 threads.

mod common;

use common::repo_root;
use kaiyuan_kernels::threads::ThreadPool;
use kaiyuan_model::{Model, Session};

fn check(file: &str, prompt: &[u32]) {
    let path = repo_root().join("models").join(file);
    if !path.exists() {
        eprintln!("skipping: {} not found", path.display());
        return;
    }
    let model = Model::open(&path).expect("real model opens");
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
