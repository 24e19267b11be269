//! The tiny models converted by llama.cpp's converter (testdata/tiny/<arch>.{f32,q8_0}.gguf:
//! qwen3moe, ernie4_5, ernie4_5-moe, glm4, hunyuan-dense, deepseek2, deepseek2v3, glm4moe,
//! hunyuan-moe) against
//! llama.cpp on the same files
//! (golden `<arch>.llamacpp.json`, written by
//! `tools/tiny_moe_llamacpp.py` with llama-cpp-python 0.3.36): our prompt logits within the
//! tolerance of `tiny_models.rs` of llama.cpp's at every position (one batch), and our argmax
//! equal to llama.cpp's greedy choice at every step of its continuation, decoded one token at
//! a time, except at near-ties (llama.cpp's own best two logits closer than the file's margin:
//! random tiny models have flat logits, so these are frequent). The continuation follows
//! llama.cpp's tokens, so a near-tie skips one step instead of ending the comparison.

mod common;

use common::{max_err_over_range, repo_root, tiny};
use kaiyuan_kernels::threads::ThreadPool;
use kaiyuan_model::{Model, Session};
use serde_json::Value;

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| u32::try_from(x.as_u64().expect("id")).expect("id fits u32"))
        .collect()
}

fn argmax(row: &[f32]) -> u32 {
    let best = (0..row.len())
        .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
        .expect("row");
    u32::try_from(best).expect("id fits u32")
}

/// `near_tie`: a step where llama.cpp's best two logits are closer than this is skipped
/// (about 10× our largest absolute logit difference from llama.cpp on the file).
fn check(arch: &str, weights: &str, tolerance: f32, near_tie: f64, min_steps: usize) {
    let path = repo_root().join(format!("testdata/tiny/{arch}.llamacpp.json"));
    let golden: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("golden")).expect("JSON");
    let model = Model::open(tiny(&format!("{arch}.{weights}.gguf"))).expect("model opens");
    let pool = ThreadPool::new(2);
    let mut compared = 0;
    for (i, p) in golden["files"][weights]
        .as_array()
        .expect("prompts")
        .iter()
        .enumerate()
    {
        let prompt = ids(&p["prompt_tokens"]);
        let want: Vec<f32> = p["prompt_logits"]
            .as_array()
            .expect("rows")
            .iter()
            .flat_map(|r| r.as_array().expect("row").iter())
            .map(|v| v.as_f64().expect("logit") as f32)
            .collect();
        let mut s = Session::new(&model, 128);
        let ours = s.eval(&pool, &prompt, true).expect("prefill");
        let err = max_err_over_range(&ours, &want);
        eprintln!("{arch} {weights} prompt {i}: max error / logit range vs llama.cpp = {err:.2e}");
        assert!(
            err <= tolerance,
            "{arch} {weights} prompt {i}: {err} > {tolerance}"
        );

        let vocab = model.config().vocab_size;
        let mut logits = ours[ours.len() - vocab..].to_vec();
        let generated = ids(&p["generated"]);
        for (step, (&theirs, top2)) in generated
            .iter()
            .zip(p["top2"].as_array().expect("top2"))
            .enumerate()
        {
            let t = top2.as_array().expect("step");
            let gap = t[1].as_f64().expect("logit") - t[3].as_f64().expect("logit");
            let mine = argmax(&logits);
            if gap >= near_tie {
                assert_eq!(
                    mine, theirs,
                    "{arch} {weights} prompt {i} step {step}: we chose {mine}, llama.cpp {theirs} (its gap {gap:.3})"
                );
                compared += 1;
            }
            if step + 1 < generated.len() {
                logits = s.eval(&pool, &[theirs], false).expect("decode");
            }
        }
    }
    eprintln!("{arch} {weights}: {compared} greedy steps equal to llama.cpp's");
    assert!(
        compared >= min_steps,
        "{arch} {weights}: only {compared} greedy steps compared"
    );
}

#[test]
fn qwen3moe_f32_matches_llamacpp() {
    check("qwen3moe", "f32", 1e-3, 0.01, 60);
}

#[test]
fn qwen3moe_q8_0_matches_llamacpp() {
    check("qwen3moe", "q8_0", 3e-2, 0.1, 40);
}

#[test]
fn ernie4_5_f32_matches_llamacpp() {
    check("ernie4_5", "f32", 1e-3, 0.01, 60);
}

#[test]
fn ernie4_5_q8_0_matches_llamacpp() {
    check("ernie4_5", "q8_0", 3e-2, 0.1, 40);
}

#[test]
fn ernie4_5_moe_f32_matches_llamacpp() {
    check("ernie4_5-moe", "f32", 1e-3, 0.01, 60);
}

#[test]
fn ernie4_5_moe_q8_0_matches_llamacpp() {
    check("ernie4_5-moe", "q8_0", 3e-2, 0.1, 40);
}

#[test]
fn glm4_f32_matches_llamacpp() {
    check("glm4", "f32", 1e-3, 0.01, 60);
}

#[test]
fn glm4_q8_0_matches_llamacpp() {
    check("glm4", "q8_0", 3e-2, 0.1, 40);
}

#[test]
fn hunyuan_dense_f32_matches_llamacpp() {
    check("hunyuan-dense", "f32", 1e-3, 0.01, 60);
}

#[test]
fn hunyuan_dense_q8_0_matches_llamacpp() {
    check("hunyuan-dense", "q8_0", 3e-2, 0.1, 40);
}

#[test]
fn deepseek2_f32_matches_llamacpp() {
    check("deepseek2", "f32", 1e-3, 0.01, 60);
}

#[test]
fn deepseek2_q8_0_matches_llamacpp() {
    check("deepseek2", "q8_0", 3e-2, 0.1, 40);
}

#[test]
fn deepseek2v3_f32_matches_llamacpp() {
    check("deepseek2v3", "f32", 1e-3, 0.01, 60);
}

// deepseek2v3's Q8_0 file is compared with transformers only (tiny_models.rs): on it
// llama.cpp's own Q8_0 run leaves its F32 run at the second greedy step of prompt 0 and its
// Q8_0 prompt logits differ from its F32 ones by up to 0.11 of the logit range (prompt 1),
// the grouped sigmoid router choosing other experts at near-ties, and at step 8 of prompt 0
// we choose llama.cpp's F32 token, not its Q8_0 one. No seed of those tried avoided it.

#[test]
fn glm4moe_f32_matches_llamacpp() {
    check("glm4moe", "f32", 1e-3, 0.01, 60);
}

#[test]
fn glm4moe_q8_0_matches_llamacpp() {
    check("glm4moe", "q8_0", 3e-2, 0.1, 40);
}

#[test]
fn hunyuan_moe_f32_matches_llamacpp() {
    check("hunyuan-moe", "f32", 1e-3, 0.01, 60);
}

// hunyuan-moe's Q8_0 file is compared with transformers only (tiny_models.rs), as
// deepseek2v3's: llama.cpp's own Q8_0 run changes an expert choice where transformers' float32
// does not. Its prompt-2 logits differ from transformers' by 6.9e-2 of the logit range (its
// F32 run: 2e-4; ours in Q8_0 on the same prompt: 1.2e-2), and at step 15 of prompt 0 (its
// gap 0.255) it picks token 61 where we and transformers' float32 pick 156 (transformers'
// logits 2.710 vs 2.573). Its prompts 0 and 1 are within 7.9e-3 of ours.
