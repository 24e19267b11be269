//! Perplexity by llama.cpp's method (its `llama-perplexity` tool, default stride), so the
//! numbers are comparable: the tokens are cut into non-overlapping windows of `n_ctx`;
//! when the model adds BOS, the first token of each window is replaced by BOS; each window
//! is evaluated from an empty cache, and the logits at positions `n_ctx/2 .. n_ctx-2`
//! are scored against the next token of the window. `ppl = exp(mean nll)`.

use crate::decoder::Model;
use crate::error::ModelError;
use crate::session::Session;
use kaiyuan_kernels::threads::ThreadPool;

/// The result of [`perplexity`].
#[derive(Debug, Clone)]
pub struct Perplexity {
    /// Mean negative log-likelihood of each window's scored tokens.
    pub window_mean_nll: Vec<f64>,
    /// Mean over all scored tokens.
    pub mean_nll: f64,
    pub ppl: f64,
    pub scored_tokens: usize,
}

/// Scores `tokens` (the whole text, BOS first where the model adds one) in windows of
/// `n_ctx`. Tokens after the last whole window are not used. `n_ctx` must be at least 4
/// and `tokens` must hold at least one window.
pub fn perplexity(
    model: &Model,
    pool: &ThreadPool,
    tokens: &[u32],
    n_ctx: usize,
    bos: Option<u32>,
) -> Result<Perplexity, ModelError> {
    if n_ctx < 4 || tokens.len() < n_ctx {
        return Err(ModelError::TextTooShort {
            n_ctx,
            tokens: tokens.len(),
        });
    }
    let vocab = model.config().vocab_size;
    let mut session = Session::try_new(model, n_ctx)?;
    let first = n_ctx / 2;
    let per_window = n_ctx - 1 - first;
    let mut window_mean_nll = Vec::new();
    let mut window = vec![0u32; n_ctx];
    for chunk in tokens.chunks_exact(n_ctx) {
        window.copy_from_slice(chunk);
        if let Some(b) = bos {
            window[0] = b;
        }
        session.reset();
        let logits = session.eval(pool, &window, true)?;
        let mut nll = 0f64;
        for p in first..n_ctx - 1 {
            let row = &logits[p * vocab..(p + 1) * vocab];
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f64 = row.iter().map(|&x| f64::from(x - max).exp()).sum();
            nll += sum.ln() + f64::from(max) - f64::from(row[window[p + 1] as usize]);
        }
        window_mean_nll.push(nll / per_window as f64);
    }
    let mean_nll = window_mean_nll.iter().sum::<f64>() / window_mean_nll.len() as f64;
    Ok(Perplexity {
        scored_tokens: per_window * window_mean_nll.len(),
        window_mean_nll,
        mean_nll,
        ppl: mean_nll.exp(),
    })
}
