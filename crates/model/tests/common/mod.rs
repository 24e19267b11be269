//! Helpers shared by the model tests: fixture paths, golden-logit loading and rewritten
//! fixtures (`rewrite`).

#![allow(dead_code)]

pub mod rewrite;

use kaiyuan_gguf::GgufFile;
use std::path::PathBuf;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn tiny(name: &str) -> PathBuf {
    repo_root().join("testdata/tiny").join(name)
}

/// Golden tokens and `[n_tokens, vocab]` logits written by `tools/tiny_models.py` from
/// transformers' forward pass.
pub struct Golden {
    pub tokens: Vec<u32>,
    pub logits: Vec<f32>,
    pub vocab: usize,
}

pub fn golden(arch: &str) -> Golden {
    let f = GgufFile::open(tiny(&format!("{arch}.golden.gguf"))).expect("golden file opens");
    let tokens: Vec<u32> = f
        .get_array("golden.tokens")
        .expect("golden.tokens readable")
        .and_then(|a| a.to_integers())
        .expect("golden.tokens is an integer array")
        .into_iter()
        .map(|v| u32::try_from(v).expect("token id fits u32"))
        .collect();
    let t = f.tensor("logits").expect("logits tensor");
    let vocab = t.dims[0] as usize;
    let logits = f
        .tensor_data(t)
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect::<Vec<_>>();
    assert_eq!(logits.len(), tokens.len() * vocab);
    Golden {
        tokens,
        logits,
        vocab,
    }
}

/// `max |a - b| / (max b - min b)`.
pub fn max_err_over_range(actual: &[f32], expected: &[f32]) -> f32 {
    assert_eq!(actual.len(), expected.len());
    let (lo, hi) = expected
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let max = actual
        .iter()
        .zip(expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    max / (hi - lo)
}
