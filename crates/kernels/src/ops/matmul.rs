//! Weight-matrix products `y = W·x` for any weight type with kernels
//! ([`crate::quant::weight_kernels`]), parallel over the [`ThreadPool`].
//!
//! Method: the activation rows are quantized once into the weight type's activation
//! format, then every output element is one `vec_dot` of a weight row against an
//! activation row, so results do not depend on the thread count.
//!
//! Tiling of [`matmul`] (`m` activation rows): the weight rows are cut into contiguous
//! chunks, a few per thread, which the pool's threads claim as tasks. A task takes the
//! quantized activations in tiles of at most [`ACT_TILE_BYTES`] (so a tile stays in L2),
//! cuts its chunk into blocks of weight rows that fit L1 ([`WEIGHT_BLOCK_BYTES`]), and
//! dots each block against every group of eight (or four) activation rows of the tile in
//! turn. The weight matrix is therefore streamed from memory once per activation tile
//! (once in all when the activations fit one tile, the usual case for decoding and short
//! prompts), not once per activation row as `m` separate mat-vecs would; the tile passes
//! through L1 once per weight block rather than once per weight row; and each activation
//! row's outputs for a block are written as one contiguous run. Decoding (fewer than four activation
//! rows) reads each weight row once, as four distant streams (see the task body).

use super::OpsError;
use crate::dtype::DType;
use crate::quant::{
    row_bytes, weight_kernels, PanelKernels, VecDotXnFn, WeightKernels, PANEL_ROWS,
};
use crate::threads::{split_range, ThreadPool, TASKS_PER_THREAD};
use std::cell::Cell;
use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering};

/// Largest activation tile (bytes of quantized activations) dotted against each weight
/// row in one sweep; sized to sit in a typical 1–2 MiB L2 alongside the weight rows.
pub const ACT_TILE_BYTES: usize = 256 * 1024;

/// Weight rows (in bytes) that the many-activation-row path dots against each group of
/// eight or four activation rows before moving on: half a typical 32 KiB L1, leaving room for the
/// group's activations.
const WEIGHT_BLOCK_BYTES: usize = 16 * 1024;

/// Weight bytes one call of a four-row mat-vec kernel covers (four streams of rows), so
/// that the call's checks cost little per row and, with two or three activation rows, the
/// rows are still in L2 for the second and third.
const ROWS4_CALL_BYTES: usize = 64 * 1024;
/// Most rows per stream in one four-row call (sizes the results buffer on the stack).
const ROWS4_CALL_MAX: usize = 64;

/// [`ACT_TILE_BYTES`] for the packed-panel mat-mat: each panel is packed once per tile, and
/// per panel the tile streams through once (about 40 bytes per 32-element block and row
/// against sixteen rows' worth of multiply-adds), which L2 or even L3 keeps up with.
const PANEL_TILE_BYTES: usize = 1024 * 1024;

/// Fewest activation rows (in a tile) for which the packed-panel mat-mat is used where the
/// type has one: packing a panel costs about as much as dotting it with one or two rows.
const PANEL_MIN_ROWS: usize = 4;

/// A row-major weight matrix in GGUF layout: `rows` rows of `cols` elements, each row
/// `cols / block_size` blocks of its type.
#[derive(Clone, Copy, Debug)]
pub struct WeightMatrix<'a> {
    dtype: DType,
    rows: usize,
    cols: usize,
    row_bytes: usize,
    data: &'a [u8],
    kernels: &'static WeightKernels,
}

impl<'a> WeightMatrix<'a> {
    /// Checks that `cols` is whole blocks, `dtype` has kernels and `data` holds exactly
    /// `rows` rows.
    pub fn new(
        dtype: DType,
        rows: usize,
        cols: usize,
        data: &'a [u8],
    ) -> Result<WeightMatrix<'a>, OpsError> {
        // Shape first: a ragged row is malformed whatever the type's support.
        if !cols.is_multiple_of(dtype.block_size()) {
            return Err(OpsError::PartialBlock { dtype, cols });
        }
        let kernels = weight_kernels(dtype).ok_or(OpsError::UnsupportedType(dtype))?;
        let row_bytes = row_bytes(dtype, cols);
        let expected = rows.checked_mul(row_bytes);
        if expected != Some(data.len()) {
            return Err(OpsError::DataSize {
                dtype,
                rows,
                cols,
                expected,
                actual: data.len(),
            });
        }
        Ok(WeightMatrix {
            dtype,
            rows,
            cols,
            row_bytes,
            data,
            kernels,
        })
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Output size of a product (number of weight rows).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input size of a product (elements per weight row).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes per weight row.
    pub fn row_bytes(&self) -> usize {
        self.row_bytes
    }

    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The kernels used for this matrix.
    pub fn kernels(&self) -> &'static WeightKernels {
        self.kernels
    }

    /// Weight row `i`, as raw blocks. Panics if `i >= rows`.
    pub fn row(&self, i: usize) -> &'a [u8] {
        assert!(i < self.rows, "row {i} of a {}-row matrix", self.rows);
        &self.data[i * self.row_bytes..(i + 1) * self.row_bytes]
    }

    /// Weight rows `first..first + count`, back to back as raw blocks. Panics if they do
    /// not all exist.
    pub fn row_span(&self, first: usize, count: usize) -> &'a [u8] {
        assert!(
            first <= self.rows && count <= self.rows - first,
            "rows {first}..{first}+{count} of a {}-row matrix",
            self.rows
        );
        &self.data[first * self.row_bytes..(first + count) * self.row_bytes]
    }

    /// Bytes of one activation row in this matrix's activation format.
    pub fn act_row_bytes(&self) -> usize {
        row_bytes(self.kernels.act, self.cols)
    }
}

thread_local! {
    /// Quantized-activation scratch reused by [`matvec`] and [`matmul`] on this thread.
    static ACT_SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    /// Packed weight panels and their results, reused by [`panel_tile`] on this thread.
    static PANEL_SCRATCH: Cell<(Vec<Vec<u8>>, Vec<f32>)> = const { Cell::new((Vec::new(), Vec::new())) };
}

/// Runs `f` with this thread's activation scratch (taken out of the thread-local, so a
/// re-entrant call just gets a fresh buffer instead of a borrow error).
fn with_thread_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let mut buf = ACT_SCRATCH.with(Cell::take);
    let r = f(&mut buf);
    ACT_SCRATCH.with(|c| c.set(buf));
    r
}

/// `y = W·x`: `x` has `w.cols()` elements, `y` has `w.rows()`. Uses a per-thread scratch
/// for the quantized `x`, so it allocates only when a bigger one is first needed.
pub fn matvec(pool: &ThreadPool, w: &WeightMatrix, x: &[f32], y: &mut [f32]) {
    with_thread_scratch(|scratch| matvec_with_scratch(pool, w, x, y, scratch));
}

/// [`matvec`] with a caller-provided scratch buffer (grown as needed, contents unused).
pub fn matvec_with_scratch(
    pool: &ThreadPool,
    w: &WeightMatrix,
    x: &[f32],
    y: &mut [f32],
    scratch: &mut Vec<u8>,
) {
    assert_eq!(
        x.len(),
        w.cols,
        "matvec: x has {} elements, matrix has {} columns",
        x.len(),
        w.cols
    );
    assert_eq!(
        y.len(),
        w.rows,
        "matvec: y has {} elements, matrix has {} rows",
        y.len(),
        w.rows
    );
    // One activation row: the mat-mat path with m = 1 (same kernels, same bits).
    matmul_with_scratch(pool, w, x, y, scratch);
}

/// `y = x·Wᵀ` for `m` activation rows: `x` is `[m, cols]` and `y` is `[m, rows]`, both
/// row-major (`y[j] = W·x[j]`). Tiled as described in the module docs.
pub fn matmul(pool: &ThreadPool, w: &WeightMatrix, x: &[f32], y: &mut [f32]) {
    with_thread_scratch(|scratch| matmul_with_scratch(pool, w, x, y, scratch));
}

/// [`matmul`] with a caller-provided scratch buffer (grown as needed, contents unused).
pub fn matmul_with_scratch(
    pool: &ThreadPool,
    w: &WeightMatrix,
    x: &[f32],
    y: &mut [f32],
    scratch: &mut Vec<u8>,
) {
    let (rows, cols) = (w.rows, w.cols);
    // With zero columns `x` is empty and only `y` tells how many rows there are.
    let m = x
        .len()
        .checked_div(cols)
        .unwrap_or_else(|| y.len().checked_div(rows).unwrap_or(0));
    assert_eq!(
        x.len(),
        m * cols,
        "matmul: x has {} elements, not a whole number of {cols}-element rows",
        x.len()
    );
    assert_eq!(
        y.len(),
        m * rows,
        "matmul: y has {} elements, expected {m} rows of {rows}",
        y.len()
    );
    if m == 0 || rows == 0 {
        return;
    }

    // Quantize every activation row once, in parallel over rows.
    let act_bytes = w.act_row_bytes();
    let acts = grow(scratch, m * act_bytes);
    let quantize = w.kernels.quantize_act;
    if act_bytes == 0 {
        // Zero columns: every dot product is empty.
        y.fill(0.0);
        return;
    }
    pool.run_split_mut(acts, act_bytes, |first, part| {
        let n_rows = part.len() / act_bytes;
        quantize(&x[first * cols..(first + n_rows) * cols], part);
    });
    let acts: &[u8] = acts;
    // The packed-panel mat-mat (where the type has one) needs each activation block's
    // quant sum, formed once here for all rows.
    let panel = w.kernels.panel.filter(|_| m >= PANEL_MIN_ROWS);
    let blocks = cols / w.dtype.block_size();
    let mut sums = Vec::new();
    if let (Some(p), true) = (panel, blocks > 0) {
        sums = vec![0i32; m * blocks];
        pool.run_split_mut(&mut sums, blocks, |first, part| {
            for (k, s) in part.chunks_exact_mut(blocks).enumerate() {
                let j = first + k;
                (p.act_sums)(cols, &acts[j * act_bytes..(j + 1) * act_bytes], s);
            }
        });
    }
    let sums: &[i32] = &sums;

    let tile_bytes = if panel.is_some() {
        PANEL_TILE_BYTES
    } else {
        ACT_TILE_BYTES
    };
    let tile_rows = (tile_bytes / act_bytes).clamp(1, m);
    let vec_dot = w.kernels.vec_dot;
    let vec_dot_x4 = w.kernels.vec_dot_x4;
    let vec_dot_x8 = w.kernels.vec_dot_x8;
    let vec_dot_rows4 = w.kernels.vec_dot_rows4;
    // Each task writes a column block of `y` (all `m` rows, its weight rows), which is
    // not a contiguous slice; relaxed atomic stores keep that safe at the cost of
    // nothing (they compile to plain stores), and `run` orders them before our return.
    let out = as_atomic_f32(y);
    let n_tasks = task_count(pool, rows, m);
    pool.run_tasks(n_tasks, |task| {
        // Whole panels per task where the panel mat-mat runs (no half-empty panels).
        let my_rows = match panel {
            Some(_) => {
                let panels = split_range(rows.div_ceil(PANEL_ROWS), n_tasks, task);
                panels.start * PANEL_ROWS..(panels.end * PANEL_ROWS).min(rows)
            }
            None => split_range(rows, n_tasks, task),
        };
        if my_rows.is_empty() {
            return;
        }
        for tile_start in (0..m).step_by(tile_rows) {
            let tile = tile_start..(tile_start + tile_rows).min(m);
            let act = |j: usize| &acts[j * act_bytes..(j + 1) * act_bytes];
            if let (Some(p), true) = (panel, tile.len() >= PANEL_MIN_ROWS) {
                let tile_acts = &acts[tile.start * act_bytes..tile.end * act_bytes];
                let tile_sums = &sums[tile.start * blocks..tile.end * blocks];
                panel_tile(p, w, my_rows.clone(), tile.start, tile_acts, tile_sums, out);
                continue;
            }
            let mut r = my_rows.start;
            // Fewer than four activation rows (decoding): four weight rows per pass where
            // a kernel exists, each activation block loaded once for the four. The four
            // rows are a quarter of the range apart, i.e. four sequential streams through
            // distant parts of the matrix: one core then keeps about twice as many cache
            // lines in flight as when it reads four neighbouring rows, which form a single
            // stream (Q8_0 mat-vec of 262144×640 from DRAM, 1 thread: 7.5 → 14.8 GMAC/s).
            if let (Some(rows4), true) = (vec_dot_rows4, tile.len() < 4) {
                let quarter = my_rows.len() / 4;
                let group_rows = (ROWS4_CALL_BYTES / (4 * w.row_bytes)).clamp(1, ROWS4_CALL_MAX);
                let mut results = [0f32; 4 * ROWS4_CALL_MAX];
                for first in (0..quarter).step_by(group_rows) {
                    let g = group_rows.min(quarter - first);
                    let stream_start = |k: usize| r + k * quarter + first;
                    let streams: [&[u8]; 4] =
                        std::array::from_fn(|k| w.row_span(stream_start(k), g));
                    let results = &mut results[..4 * g];
                    for j in tile.clone() {
                        rows4(cols, streams, act(j), results);
                        for (i, group) in results.chunks_exact(4).enumerate() {
                            for (k, v) in group.iter().enumerate() {
                                let at = j * rows + stream_start(k) + i;
                                out[at].store(v.to_bits(), Ordering::Relaxed);
                            }
                        }
                    }
                }
                r += 4 * quarter;
            }
            if tile.len() < 4 {
                // Decoding without a four-row kernel: still visit the rows as four streams
                // (see above), which the one-row kernels' prefetch then runs ahead in.
                for r in stream_order(r..my_rows.end, 4) {
                    for j in tile.clone() {
                        let v = vec_dot(cols, w.row(r), act(j));
                        out[j * rows + r].store(v.to_bits(), Ordering::Relaxed);
                    }
                }
                continue;
            }
            // Many activation rows: a block of weight rows that fits L1 is dotted against
            // each group of activation rows in turn. The group stays in L1 across the
            // block (instead of the whole tile streaming through for every weight row), and
            // each activation row's outputs for the block are one contiguous run of `y`
            // (instead of one element per row of `y`, whose lines a 3 MiB `y` evicted
            // before their next element came).
            let block_rows = (WEIGHT_BLOCK_BYTES / w.row_bytes).max(1);
            for block_start in (r..my_rows.end).step_by(block_rows) {
                let block = block_start..(block_start + block_rows).min(my_rows.end);
                let mut j = tile.start;
                // Eight, then four activation rows per weight-row pass where kernels
                // exist: the weight blocks are unpacked once for all of them (same bits as
                // one by one).
                if let Some(x8) = vec_dot_x8 {
                    dot_groups(x8, w, block.clone(), &act, &mut j, tile.end, out);
                }
                if let Some(x4) = vec_dot_x4 {
                    dot_groups(x4, w, block.clone(), &act, &mut j, tile.end, out);
                }
                for j in j..tile.end {
                    for r in block.clone() {
                        let v = vec_dot(cols, w.row(r), act(j));
                        out[j * rows + r].store(v.to_bits(), Ordering::Relaxed);
                    }
                }
            }
        }
    });
}

/// Weight rows packed per pass of [`panel_tile`] (whole panels): their panels (at most
/// 256 × 64 blocks × 40 bytes) stay in L2 while every activation row of the tile passes.
const PANEL_PASS_ROWS: usize = 16 * PANEL_ROWS;
/// Activation rows dotted against all panels of a pass before the next ones, so that their
/// outputs (a contiguous run per row) stay in L1 meanwhile; a multiple of the AMX kernel's
/// sixteen-row groups and above its minimum.
const PANEL_ACT_ROWS: usize = 64;

/// The weight rows `rows` against the activation rows of a tile (`acts`, first row
/// `first_act`, with their block sums `sums`) through the packed-panel kernels: the rows
/// are packed [`PANEL_PASS_ROWS`] at a time, once per tile, and each pass's panels are
/// dotted against [`PANEL_ACT_ROWS`] activation rows at a time.
fn panel_tile(
    p: PanelKernels,
    w: &WeightMatrix,
    rows: Range<usize>,
    first_act: usize,
    acts: &[u8],
    sums: &[i32],
    out: &[AtomicU32],
) {
    let act_bytes = w.act_row_bytes().max(1);
    let n_acts = acts.len() / act_bytes;
    let blocks = w.cols / w.dtype.block_size();
    let (mut panels, mut results) = PANEL_SCRATCH.with(Cell::take);
    results.resize(PANEL_ACT_ROWS * PANEL_ROWS, 0.0);
    for pass in rows.clone().step_by(PANEL_PASS_ROWS) {
        let pass_end = (pass + PANEL_PASS_ROWS).min(rows.end);
        let n_panels = (pass_end - pass).div_ceil(PANEL_ROWS);
        if panels.len() < n_panels {
            panels.resize_with(n_panels, Vec::new);
        }
        let panel_rows = |i: usize| {
            let first = pass + i * PANEL_ROWS;
            (first, PANEL_ROWS.min(pass_end - first))
        };
        for (i, panel) in panels[..n_panels].iter_mut().enumerate() {
            let (first, count) = panel_rows(i);
            (p.pack)(w.cols, count, w.row_span(first, count), panel);
        }
        for j0 in (0..n_acts).step_by(PANEL_ACT_ROWS) {
            let jn = PANEL_ACT_ROWS.min(n_acts - j0);
            let a = &acts[j0 * act_bytes..(j0 + jn) * act_bytes];
            let s = &sums[j0 * blocks..(j0 + jn) * blocks];
            for (i, panel) in panels[..n_panels].iter().enumerate() {
                let (first, count) = panel_rows(i);
                (p.dot)(w.cols, panel, a, s, &mut results[..jn * PANEL_ROWS]);
                for (j, res) in results[..jn * PANEL_ROWS]
                    .chunks_exact(PANEL_ROWS)
                    .enumerate()
                {
                    let at = (first_act + j0 + j) * w.rows + first;
                    for (o, v) in out[at..at + count].iter().zip(res) {
                        o.store(v.to_bits(), Ordering::Relaxed);
                    }
                }
            }
        }
    }
    PANEL_SCRATCH.with(|c| c.set((panels, results)));
}

/// Dots the weight rows `block` against activation rows `*j..`, `N` at a time with
/// `kernel`, while `N` of them remain before `end`; stores each result at its place in
/// `out` (`w.rows` outputs per activation row) and moves `*j` past the rows it took.
fn dot_groups<'a, const N: usize>(
    kernel: VecDotXnFn<N>,
    w: &WeightMatrix,
    block: Range<usize>,
    act: &impl Fn(usize) -> &'a [u8],
    j: &mut usize,
    end: usize,
    out: &[AtomicU32],
) {
    while *j + N <= end {
        let group: [&[u8]; N] = std::array::from_fn(|k| act(*j + k));
        for r in block.clone() {
            let v = kernel(w.cols, w.row(r), group);
            for (k, v) in v.into_iter().enumerate() {
                out[(*j + k) * w.rows + r].store(v.to_bits(), Ordering::Relaxed);
            }
        }
        *j += N;
    }
}

/// The first `len` bytes of `buf`, growing it if needed.
fn grow(buf: &mut Vec<u8>, len: usize) -> &mut [u8] {
    if buf.len() < len {
        buf.resize(len, 0);
    }
    &mut buf[..len]
}

const _: () = assert!(std::mem::align_of::<f32>() == std::mem::align_of::<AtomicU32>());
const _: () = assert!(std::mem::size_of::<f32>() == std::mem::size_of::<AtomicU32>());

/// Views an exclusively borrowed `f32` slice as atomics so threads can store into
/// interleaved, disjoint elements (what the unstable `AtomicU32::from_mut_slice` does).
fn as_atomic_f32(y: &mut [f32]) -> &[AtomicU32] {
    // SAFETY: `AtomicU32` has the same size and bit validity as `u32`, and f32 has the
    // same size as u32; equal alignment is checked at compile time above. Any bit pattern
    // is a valid f32 and u32. The exclusive borrow of `y` is held by the returned slice,
    // so nothing else accesses the memory non-atomically while it lives.
    unsafe { &*(y as *mut [f32] as *const [AtomicU32]) }
}

/// How many tasks a mat-mul of `rows` weight rows and `m` activation rows is cut into.
///
/// Decoding (fewer than four activation rows) gives each thread one task: a task reads its
/// rows as four streams, and the longer each stream, the more of DRAM's rate the core's
/// prefetchers reach. Cut into four tasks per thread, a decoded MoE token's 512 × 1024
/// expert matrices became sixteen streams of 18 KB read at 19–21 GB/s, against 25–29 GB/s
/// as four streams of 74 KB (Q4_K, 1 thread, Zen 5 reading 39 GB/s; BENCHMARKS.md). Run
/// inline (one thread, or inside another task, as an expert's mat-vecs are) that is one
/// task. Prefill keeps several tasks per thread, for balance across threads.
fn task_count(pool: &ThreadPool, rows: usize, m: usize) -> usize {
    if m >= 4 {
        rows.min(pool.n_threads() * TASKS_PER_THREAD)
    } else if pool.runs_inline() {
        1
    } else {
        rows.min(pool.n_threads())
    }
}

/// The indices of `range` as `streams` interleaved sequential runs: with `q = len / streams`,
/// `start + i, start + q + i, …` for each `i < q`, then the last `len % streams` in order.
fn stream_order(range: Range<usize>, streams: usize) -> impl Iterator<Item = usize> {
    let q = range.len() / streams;
    let tail = range.start + streams * q..range.end;
    (0..q)
        .flat_map(move |i| (0..streams).map(move |k| range.start + k * q + i))
        .chain(tail)
}

#[cfg(test)]
mod tests {
    use super::stream_order;

    #[test]
    fn stream_order_visits_every_row_once_in_interleaved_runs() {
        let got: Vec<usize> = stream_order(10..21, 4).collect();
        assert_eq!(got, [10, 12, 14, 16, 11, 13, 15, 17, 18, 19, 20]);
        for (len, streams) in [(0, 4), (3, 4), (37, 4), (64, 1), (5, 1)] {
            let mut got: Vec<usize> = stream_order(7..7 + len, streams).collect();
            got.sort();
            assert_eq!(
                got,
                (7..7 + len).collect::<Vec<_>>(),
                "{len} rows, {streams}"
            );
        }
    }
}
