//! Causal scaled dot-product attention (Vaswani et al., 2017) over the paged KV cache,
//! with grouped-query heads (Ainslie et al., "GQA", 2023: query head `h` reads KV head
//! `h / (num_heads / num_kv_heads)`), optional sliding window (a query at position `p`
//! sees keys `p - window + 1 ..= p`) and optional score soft-capping `s·tanh(x/s)`.
//!
//! Method: a work item is one query row and one chunk of [`KEY_CHUNK`] key positions, for
//! every head. An item walks its KV blocks in order and, within each block, every KV head
//! with all the query heads that share it, so each key and value is read and converted
//! once per group and a block's heads (contiguous in the cache) are read as one stream
//! that the hardware prefetchers follow. It scores its keys (f16, read in place from the
//! sequence's KV blocks), takes the exponentials against its own maximum and sums the
//! weighted values, leaving `(max, sum of weights, weighted sum)` per head. The partial
//! results of a row's chunks are then merged in chunk order, rescaling each to the common
//! maximum (the split-softmax identity of Milakov & Gimelshein, "Online normalizer
//! calculation for softmax", 2018, used by flash-decoding). Chunks are cut at multiples
//! of [`KEY_CHUNK`] of the absolute position, so where a row is cut depends only on the
//! row itself: results do not depend on batching or on the thread count, while a long
//! context still gives every thread work.

use crate::decoder::BatchSeq;
use crate::kv::{BlockId, KvCache, BLOCK_TOKENS};
use kaiyuan_kernels::ops::{axpy_heads_f16, dot_heads_f16, exp_shifted, scale_max};
use kaiyuan_kernels::threads::ThreadPool;
use std::cell::Cell;

/// Key positions per work item (a multiple of [`BLOCK_TOKENS`]): long enough that the
/// merge costs little, short enough that 1024 keys make eight items per KV head.
pub(crate) const KEY_CHUNK: usize = 8 * BLOCK_TOKENS;

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

impl AttnShape {
    /// Query heads per KV head.
    fn group(&self) -> usize {
        self.num_heads / self.num_kv_heads
    }

    /// Floats of one item's partial result: per head its maximum, its sum of weights and
    /// its `head_dim` weighted sum.
    fn partial_len(&self) -> usize {
        self.num_heads * (self.head_dim + 2)
    }

    /// The keys a query at `pos` attends to.
    fn keys_of(&self, pos: usize) -> (usize, usize) {
        let first = match self.window {
            Some(w) => (pos + 1).saturating_sub(w),
            None => 0,
        };
        (first, pos)
    }
}

/// One work item: keys `first..=last` of every head for query row `row`.
#[derive(Clone, Copy, Debug)]
struct Item {
    row: usize,
    first: usize,
    last: usize,
}

/// Buffers reused across calls (owned by the decoder's scratch).
#[derive(Default)]
pub(crate) struct AttnScratch {
    items: Vec<Item>,
    /// `row_start[r]..row_start[r + 1]` are the items of query row `r`.
    row_start: Vec<usize>,
    partials: Vec<f32>,
}

thread_local! {
    /// Scores of one item (`num_heads × KEY_CHUNK`), reused across calls on this thread.
    static SCORES: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Calls `f(block, first_slot, n, offset)` for each run of positions `first..=last` that
/// lies in one KV block; `offset` counts positions from `first`.
fn for_each_block_run(
    table: &[BlockId],
    first: usize,
    last: usize,
    mut f: impl FnMut(BlockId, usize, usize, usize),
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
    scratch: &mut AttnScratch,
) {
    let AttnScratch {
        items,
        row_start,
        partials,
    } = scratch;
    items.clear();
    row_start.clear();
    for (row, info) in rows.iter().enumerate() {
        let (first, last) = shape.keys_of(info.pos);
        row_start.push(items.len());
        let mut from = first;
        while from <= last {
            let to = ((from / KEY_CHUNK + 1) * KEY_CHUNK - 1).min(last);
            items.push(Item {
                row,
                first: from,
                last: to,
            });
            from = to + 1;
        }
    }
    row_start.push(items.len());

    let plen = shape.partial_len();
    if partials.len() < items.len() * plen {
        partials.resize(items.len() * plen, 0.0);
    }
    let partials = &mut partials[..items.len() * plen];
    let items: &[Item] = items;
    pool.run_split_mut(partials, plen, |first_item, part| {
        let mut scores = SCORES.with(Cell::take);
        for (i, partial) in part.chunks_exact_mut(plen).enumerate() {
            let item = &items[first_item + i];
            let table = seqs[rows[item.row].seq].block_table;
            attend_chunk(shape, item, table, kv, layer, q, &mut scores, partial);
        }
        SCORES.with(|c| c.set(scores));
    });

    // The merge is a few multiply-adds per head and chunk: run it here unless there is
    // enough of it to be worth waking the pool (long prompts).
    let partials: &[f32] = partials;
    let row_len = shape.num_heads * shape.head_dim;
    let merge = |first_row: usize, part: &mut [f32]| {
        for (i, o) in part.chunks_exact_mut(row_len).enumerate() {
            let r = first_row + i;
            let chunks = &partials[row_start[r] * plen..row_start[r + 1] * plen];
            merge_chunks(shape, chunks, o);
        }
    };
    if items.len() * plen < 1 << 16 {
        merge(0, out);
    } else {
        pool.run_split_mut(out, row_len, merge);
    }
}

/// Computes one item's partial result into `partial` (see [`AttnShape::partial_len`]).
#[allow(clippy::too_many_arguments)]
fn attend_chunk(
    shape: &AttnShape,
    item: &Item,
    table: &[BlockId],
    kv: &KvCache,
    layer: usize,
    q: &[f32],
    scores: &mut Vec<f32>,
    partial: &mut [f32],
) {
    let (d, group, heads) = (shape.head_dim, shape.group(), shape.num_heads);
    let n = item.last + 1 - item.first;
    if scores.len() < heads * n {
        scores.resize(heads * n, 0.0);
    }
    let scores = &mut scores[..heads * n];
    let q_row = &q[item.row * heads * d..][..heads * d];
    let span = |slot: usize, len: usize| slot * d..(slot + len) * d;
    for_each_block_run(table, item.first, item.last, |block, slot, len, at| {
        for kv_head in 0..shape.num_kv_heads {
            let keys = &kv.key_head(layer, block, kv_head)[span(slot, len)];
            let first_head = kv_head * group;
            dot_heads_f16(
                &q_row[first_head * d..(first_head + group) * d],
                group,
                keys,
                &mut scores[first_head * n + at..],
                n,
            );
        }
    });

    let (stats, sums) = partial.split_at_mut(2 * heads);
    for (h, s) in scores.chunks_exact_mut(n).enumerate() {
        let max = scale_max(s, shape.scale, shape.softcap);
        stats[2 * h] = max;
        stats[2 * h + 1] = exp_shifted(s, max);
    }
    sums.fill(0.0);
    for_each_block_run(table, item.first, item.last, |block, slot, len, at| {
        for kv_head in 0..shape.num_kv_heads {
            let values = &kv.value_head(layer, block, kv_head)[span(slot, len)];
            let first_head = kv_head * group;
            axpy_heads_f16(
                &scores[first_head * n + at..],
                n,
                group,
                values,
                &mut sums[first_head * d..(first_head + group) * d],
            );
        }
    });
}

/// Combines the partial results of one row's chunks, in order, into the attention output
/// of its query heads (`out` is `[num_heads, head_dim]`).
fn merge_chunks(shape: &AttnShape, chunks: &[f32], out: &mut [f32]) {
    let (d, heads, plen) = (shape.head_dim, shape.num_heads, shape.partial_len());
    for (h, oh) in out.chunks_exact_mut(d).enumerate() {
        let stat = |c: &[f32]| (c[2 * h], c[2 * h + 1]);
        let max = chunks
            .chunks_exact(plen)
            .map(|c| stat(c).0)
            .fold(f32::NEG_INFINITY, f32::max);
        oh.fill(0.0);
        let mut total = 0f32;
        for c in chunks.chunks_exact(plen) {
            let (m, l) = stat(c);
            let w = (m - max).exp();
            total += w * l;
            let sums = &c[2 * heads + h * d..2 * heads + (h + 1) * d];
            for (o, s) in oh.iter_mut().zip(sums) {
                *o += w * s;
            }
        }
        // total >= 1: the chunk holding the maximum contributes exp(0)·(≥ 1).
        let inv = 1.0 / total;
        for o in oh.iter_mut() {
            *o *= inv;
        }
    }
}
