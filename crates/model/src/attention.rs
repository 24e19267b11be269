//! Causal scaled dot-product attention (Vaswani et al., 2017) over the paged KV cache,
//! with grouped-query heads (Ainslie et al., "GQA", 2023: query head `h` reads KV head
//! `h / (num_heads / num_kv_heads)`), optional sliding window (a query at position `p`
//! sees keys `p - window + 1 ..= p`) and optional score soft-capping `s·tanh(x/s)`.
//!
//! Method: per layer, each sequence's cached keys and values are first converted from f16
//! into an f32 buffer laid out `[kv_head][position][head_dim]`; then query rows are
//! processed in parallel, each independently (so results do not depend on batching or
//! thread count): scores by f32 dot products, softmax, weighted sum of values.

use crate::kv::{BlockId, KvCache, BLOCK_TOKENS};
use kaiyuan_kernels::ops::softmax;
use kaiyuan_kernels::threads::ThreadPool;
use std::cell::Cell;

/// Where one query row comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowInfo {
    pub seq: usize,
    pub pos: usize,
}

/// A sequence's converted KV in the shared f32 buffers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SeqKv {
    /// Offset of this sequence's `[kv_head][position][head_dim]` area.
    pub offset: usize,
    /// Positions cached (and converted).
    pub positions: usize,
}

/// Every sequence's cached keys and values, converted to f32 by [`gather_kv`].
#[derive(Clone, Copy)]
pub(crate) struct CachedKv<'a> {
    pub seqs: &'a [SeqKv],
    pub keys: &'a [f32],
    pub values: &'a [f32],
}

/// Static shape of the attention of one layer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AttnShape {
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub scale: f32,
    pub softcap: Option<f32>,
    pub window: Option<usize>,
}

/// Converts `positions` cached positions of `layer` for one sequence into `k_out` /
/// `v_out` (`[kv_head][position][head_dim]`).
pub(crate) fn gather_kv(
    kv: &KvCache,
    layer: usize,
    table: &[BlockId],
    positions: usize,
    shape: &AttnShape,
    k_out: &mut [f32],
    v_out: &mut [f32],
) {
    let d = shape.head_dim;
    for head in 0..shape.num_kv_heads {
        let head_base = head * positions * d;
        for (b, &block) in table
            .iter()
            .take(KvCache::blocks_for(positions))
            .enumerate()
        {
            let first = b * BLOCK_TOKENS;
            let n = (positions - first).min(BLOCK_TOKENS);
            let at = head_base + first * d;
            kv.read_head(layer, block, head, n, &mut k_out[at..], &mut v_out[at..]);
        }
    }
}

thread_local! {
    /// Attention scores of one query head, reused across calls on this thread.
    static SCORES: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut acc = [0f32; LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `out[r] = attention(q[r])` for every row: `q` and `out` are `[rows, num_heads·head_dim]`.
pub(crate) fn attend(
    pool: &ThreadPool,
    shape: &AttnShape,
    rows: &[RowInfo],
    cached: CachedKv,
    q: &[f32],
    out: &mut [f32],
) {
    let d = shape.head_dim;
    let q_dim = shape.num_heads * d;
    let group = shape.num_heads / shape.num_kv_heads;
    let CachedKv { seqs, keys, values } = cached;
    pool.run_split_mut(out, q_dim, |first_row, part| {
        let mut scores = SCORES.with(Cell::take);
        for (i, out_row) in part.chunks_exact_mut(q_dim).enumerate() {
            let RowInfo { seq, pos } = rows[first_row + i];
            let kv = seqs[seq];
            let first_key = match shape.window {
                Some(w) => (pos + 1).saturating_sub(w),
                None => 0,
            };
            let n_keys = pos + 1 - first_key;
            if scores.len() < n_keys {
                scores.resize(n_keys, 0.0);
            }
            let scores = &mut scores[..n_keys];
            let q_row = &q[(first_row + i) * q_dim..(first_row + i + 1) * q_dim];
            for h in 0..shape.num_heads {
                let base = kv.offset + (h / group) * kv.positions * d;
                let qh = &q_row[h * d..(h + 1) * d];
                for (j, s) in scores.iter_mut().enumerate() {
                    let at = base + (first_key + j) * d;
                    let mut x = dot(qh, &keys[at..at + d]) * shape.scale;
                    if let Some(cap) = shape.softcap {
                        x = cap * (x / cap).tanh();
                    }
                    *s = x;
                }
                softmax(scores);
                let oh = &mut out_row[h * d..(h + 1) * d];
                oh.fill(0.0);
                for (j, &p) in scores.iter().enumerate() {
                    let at = base + (first_key + j) * d;
                    for (o, &v) in oh.iter_mut().zip(&values[at..at + d]) {
                        *o += p * v;
                    }
                }
            }
        }
        SCORES.with(|c| c.set(scores));
    });
}
