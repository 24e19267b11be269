//! Causal scaled dot-product attention (Vaswani et al., 2017) over the paged KV cache,
//! with grouped-query heads (Ainslie et al., "GQA", 2023: query head `h` reads KV head
//! `h / (num_heads / num_kv_heads)`), optional sliding window (a query at position `p`
//! sees keys `p - window + 1 ..= p`) and optional score soft-capping `s·tanh(x/s)`.
//!
//! Method: every (query row, head) pair is one work item, run in parallel and each
//! independently (so results do not depend on batching or thread count): scores by dot
//! products against the f16 keys read in place from the sequence's KV blocks, softmax,
//! then the weighted sum of the f16 values. Nothing is copied out of the cache, so the
//! cost per token grows only with the keys actually attended.

use crate::decoder::BatchSeq;
use crate::kv::{KvCache, BLOCK_TOKENS};
use kaiyuan_kernels::ops::{axpy_f16, dot_f16, softmax};
use kaiyuan_kernels::threads::ThreadPool;
use std::cell::Cell;

/// Where one query row comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowInfo {
    pub seq: usize,
    pub pos: usize,
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

thread_local! {
    /// Attention scores of one query head, reused across calls on this thread.
    static SCORES: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Calls `f(block, first_slot, n, offset)` for each run of positions `first..=last` that
/// lies in one KV block; `offset` counts positions from `first`.
fn for_each_block_run(
    table: &[crate::kv::BlockId],
    first: usize,
    last: usize,
    mut f: impl FnMut(crate::kv::BlockId, usize, usize, usize),
) {
    let mut p = first;
    while p <= last {
        let slot = p % BLOCK_TOKENS;
        let n = (BLOCK_TOKENS - slot).min(last + 1 - p);
        f(table[p / BLOCK_TOKENS], slot, n, p - first);
        p += n;
    }
}

/// `out[r] = attention(q[r])` for every row of layer `layer`: `q` and `out` are
/// `[rows, num_heads·head_dim]`; each row's keys and values are read from the blocks of
/// its sequence in `seqs`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attend(
    pool: &ThreadPool,
    shape: &AttnShape,
    rows: &[RowInfo],
    kv: &KvCache,
    layer: usize,
    seqs: &[BatchSeq],
    q: &[f32],
    out: &mut [f32],
) {
    let d = shape.head_dim;
    let heads = shape.num_heads;
    let q_dim = heads * d;
    let group = heads / shape.num_kv_heads;
    pool.run_split_mut(out, d, |first_item, part| {
        let mut scores = SCORES.with(Cell::take);
        for (i, oh) in part.chunks_exact_mut(d).enumerate() {
            let item = first_item + i;
            let (r, h) = (item / heads, item % heads);
            let RowInfo { seq, pos } = rows[r];
            let table = seqs[seq].block_table;
            let kv_head = h / group;
            let first_key = match shape.window {
                Some(w) => (pos + 1).saturating_sub(w),
                None => 0,
            };
            let n_keys = pos + 1 - first_key;
            if scores.len() < n_keys {
                scores.resize(n_keys, 0.0);
            }
            let scores = &mut scores[..n_keys];
            let qh = &q[r * q_dim + h * d..r * q_dim + (h + 1) * d];
            for_each_block_run(table, first_key, pos, |block, slot, n, at| {
                let keys = kv.key_head(layer, block, kv_head);
                for (j, s) in scores[at..at + n].iter_mut().enumerate() {
                    let k = &keys[(slot + j) * d..(slot + j + 1) * d];
                    let mut x = dot_f16(qh, k) * shape.scale;
                    if let Some(cap) = shape.softcap {
                        x = cap * (x / cap).tanh();
                    }
                    *s = x;
                }
            });
            softmax(scores);
            oh.fill(0.0);
            for_each_block_run(table, first_key, pos, |block, slot, n, at| {
                let values = kv.value_head(layer, block, kv_head);
                for (j, &p) in scores[at..at + n].iter().enumerate() {
                    axpy_f16(oh, p, &values[(slot + j) * d..(slot + j + 1) * d]);
                }
            });
        }
        SCORES.with(|c| c.set(scores));
    });
}
