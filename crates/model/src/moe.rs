//! The feed-forward block: the dense gated FFN and the mixture of experts (MoE), with the
//! MoE hyper-parameters read from GGUF metadata.
//!
//! Experts are stored as 3-D GGUF tensors (`ffn_{gate,up,down}_exps`, GGML dims
//! `[cols, rows, experts]`): expert `e` is the 2-D slice of rows `e·rows..(e+1)·rows`, viewed
//! in place in any weight type the kernels support. A step routes every row
//! ([`crate::router`]), then walks the experts that at least one row chose: their rows are
//! gathered into one matrix and go through the expert's three projections as mat-mats, so
//! each chosen expert's weights are read once per step, and an expert no row chose is never
//! read (decode reads only the `used` experts of its one row). Each row's output is the sum
//! of its experts' outputs in its own top-k order, so a row's result does not depend on
//! what else is in the batch. Shared experts (`ffn_{gate,up,down}_shexp`) are a dense FFN
//! added to every row.

use crate::arch::{Activation, MoeSpec};
use crate::error::ModelError;
use crate::router::{route, Gating, RouteScratch, RouterConfig};
use crate::weights::MatrixRef;
use kaiyuan_gguf::GgufFile;
use kaiyuan_kernels::ops::{self, WeightMatrix};
use kaiyuan_kernels::threads::ThreadPool;
use std::cell::Cell;
use std::sync::Mutex;

/// Experts chosen by at least this many rows of a step run their mat-muls across the pool;
/// the others are tasks of one dispatch (see [`moe_ffn`]).
const PARALLEL_EXPERT_ROWS: usize = 16;

thread_local! {
    /// Gate, up and quantized-activation buffers of the expert a pool thread is running.
    static EXPERT_SCRATCH: Cell<(Vec<f32>, Vec<f32>, Vec<u8>)> =
        const { Cell::new((Vec::new(), Vec::new(), Vec::new())) };
}

/// Mixture-of-experts hyper-parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct MoeConfig {
    pub router: RouterConfig,
    /// Rows of each routed expert's gate and up matrices
    /// (`{arch}.expert_feed_forward_length`).
    pub expert_ffn_size: usize,
    /// The first layers use a dense FFN (`{arch}.leading_dense_block_count`).
    pub leading_dense_layers: usize,
    /// After those, layer `l` is a MoE layer when `(l + 1) % step == 0`
    /// (`{arch}.interleave_moe_layer_step`; 1: every layer).
    pub layer_step: usize,
    /// Rows of the shared experts' gate and up matrices (all shared experts together), if
    /// the model has shared experts (`{arch}.expert_shared_count`).
    pub shared_ffn_size: Option<usize>,
}

impl MoeConfig {
    /// Whether layer `l` is a MoE layer.
    pub fn is_moe_layer(&self, l: usize) -> bool {
        l >= self.leading_dense_layers && (l + 1).is_multiple_of(self.layer_step)
    }

    /// Reads the MoE keys of architecture `arch` (defaults from `spec` where the file is
    /// silent, as llama.cpp does).
    pub(crate) fn from_gguf(
        file: &GgufFile,
        arch: &str,
        spec: &MoeSpec,
        num_layers: usize,
    ) -> Result<MoeConfig, ModelError> {
        let key = |s: &str| format!("{arch}.{s}");
        let meta = crate::config::Meta { file, arch };
        let count = |s: &str| meta.usize_opt(s);
        let required = |s: &str| count(s)?.ok_or_else(|| ModelError::MissingKey { key: key(s) });
        let experts = required("expert_count")?;
        let used = required("expert_used_count")?;
        let gating = match file.get_u64(&key("expert_gating_func"))? {
            None | Some(0) => spec.gating,
            Some(code) => Gating::from_code(code).ok_or_else(|| {
                ModelError::Unsupported(format!(
                    "expert gating function {code} ({}); supported: 1 (softmax), 2 (sigmoid)",
                    key("expert_gating_func")
                ))
            })?,
        };
        let scale = match file.get_f32(&key("expert_weights_scale"))? {
            // llama.cpp treats 0 (its default) as "no scaling".
            None | Some(0.0) => 1.0,
            Some(s) => s,
        };
        let groups = count("expert_group_count")?.unwrap_or(1).max(1);
        let router = RouterConfig {
            experts,
            used,
            gating,
            normalize: file
                .get_bool(&key("expert_weights_norm"))?
                .unwrap_or(spec.normalize),
            scale,
            groups,
            groups_used: count("expert_group_used_count")?.unwrap_or(groups),
        };
        router.check().map_err(|reason| ModelError::BadValue {
            key: key("expert_count"),
            reason,
        })?;
        let expert_ffn_size = required("expert_feed_forward_length")?;
        let leading_dense_layers = count("leading_dense_block_count")?.unwrap_or(0);
        if leading_dense_layers > num_layers {
            return Err(ModelError::BadValue {
                key: key("leading_dense_block_count"),
                reason: format!("{leading_dense_layers} exceeds the {num_layers} layers"),
            });
        }
        let layer_step = count("interleave_moe_layer_step")?.unwrap_or(1);
        if layer_step == 0 {
            return Err(ModelError::BadValue {
                key: key("interleave_moe_layer_step"),
                reason: "must be positive".into(),
            });
        }
        let shared = count("expert_shared_count")?.unwrap_or(0);
        let shared_ffn_size = match (shared, count("expert_shared_feed_forward_length")?) {
            (0, _) => None,
            (_, Some(n)) => Some(n),
            (n, None) => Some(n * expert_ffn_size),
        };
        Ok(MoeConfig {
            router,
            expert_ffn_size,
            leading_dense_layers,
            layer_step,
            shared_ffn_size,
        })
    }
}

/// A dense gated FFN's matrices: `down(act(gate·x) ⊙ up·x)`.
pub(crate) struct DenseFfn {
    pub gate: MatrixRef,
    pub up: MatrixRef,
    pub down: MatrixRef,
}

/// One MoE layer's tensors.
pub(crate) struct MoeWeights {
    /// `ffn_gate_inp`: `[experts, hidden]`.
    pub router: MatrixRef,
    /// `exp_probs_b`: the score-correction bias, `experts` long.
    pub probs_bias: Option<Vec<f32>>,
    /// The stacked experts, each `rows = experts · rows per expert`.
    pub experts: DenseFfn,
    pub shared: Option<DenseFfn>,
}

/// A layer's feed-forward block.
pub(crate) enum Ffn {
    Dense(DenseFfn),
    Moe(Box<MoeWeights>),
}

/// Reusable buffers of the feed-forward block.
#[derive(Default)]
pub(crate) struct FfnScratch {
    gate: Vec<f32>,
    up: Vec<f32>,
    logits: Vec<f32>,
    chosen: Vec<u32>,
    weights: Vec<f32>,
    /// Start of each expert's run in `by_expert` (experts + 1 entries).
    starts: Vec<usize>,
    /// Next free place of each expert's run while filling `by_expert`.
    next: Vec<usize>,
    /// Slots (`row · used + rank`) grouped by expert.
    by_expert: Vec<usize>,
    /// Each slot's position in `by_expert`.
    pos_of: Vec<usize>,
    /// Each slot's input row, in `by_expert` order, `[rows · used, hidden]`.
    gathered: Vec<f32>,
    /// Each slot's expert output, in `by_expert` order, `[rows · used, hidden]`.
    expert_out: Vec<f32>,
    shared_out: Vec<f32>,
    route: RouteScratch,
}

/// The first `n` elements of `v`, growing it if needed.
fn sized(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
}

/// Expert `e` of a stacked `[experts · rows, cols]` matrix (also a head of MLA's stacked
/// per-head matrices).
pub(crate) fn expert<'a>(w: &WeightMatrix<'a>, experts: usize, e: usize) -> WeightMatrix<'a> {
    let rows = w.rows() / experts;
    WeightMatrix::new(w.dtype(), rows, w.cols(), w.row_span(e * rows, rows))
        .expect("invariant: a slice of whole rows of a validated matrix")
}

/// `out = down(act(gate·x) ⊙ up·x)` for the rows of `x`.
#[allow(clippy::too_many_arguments)]
fn gated(
    pool: &ThreadPool,
    [gate_w, up_w, down_w]: [&WeightMatrix; 3],
    activation: Activation,
    x: &[f32],
    out: &mut [f32],
    gate: &mut Vec<f32>,
    up: &mut Vec<f32>,
    act: &mut Vec<u8>,
) {
    let rows = x.len() / gate_w.cols();
    let gate = sized(gate, rows * gate_w.rows());
    let up = sized(up, rows * up_w.rows());
    ops::matmul_with_scratch(pool, gate_w, x, gate, act);
    ops::matmul_with_scratch(pool, up_w, x, up, act);
    match activation {
        Activation::Silu => ops::swiglu(gate, up),
        Activation::GeluTanh => ops::geglu(gate, up),
    }
    ops::matmul_with_scratch(pool, down_w, gate, out, act);
}

/// The dense FFN of `x` (`[rows, hidden]`) into `out`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dense_ffn(
    pool: &ThreadPool,
    file: &GgufFile,
    w: &DenseFfn,
    activation: Activation,
    x: &[f32],
    out: &mut [f32],
    s: &mut FfnScratch,
    act: &mut Vec<u8>,
) {
    let (g, u, d) = (w.gate.view(file), w.up.view(file), w.down.view(file));
    gated(
        pool,
        [&g, &u, &d],
        activation,
        x,
        out,
        &mut s.gate,
        &mut s.up,
        act,
    );
}

/// The mixture of experts of `x` (`[rows, hidden]`) into `out`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn moe_ffn(
    pool: &ThreadPool,
    file: &GgufFile,
    cfg: &MoeConfig,
    w: &MoeWeights,
    activation: Activation,
    x: &[f32],
    out: &mut [f32],
    s: &mut FfnScratch,
    act: &mut Vec<u8>,
) {
    let r = &cfg.router;
    let (n_exp, used) = (r.experts, r.used);
    let router = w.router.view(file);
    let hidden = router.cols();
    let rows = x.len() / hidden;

    // Route every row.
    let logits = sized(&mut s.logits, rows * n_exp);
    ops::matmul_with_scratch(pool, &router, x, logits, act);
    s.chosen.resize(rows * used, 0);
    s.weights.resize(rows * used, 0.0);
    for row in 0..rows {
        route(
            r,
            &s.logits[row * n_exp..(row + 1) * n_exp],
            w.probs_bias.as_deref(),
            &mut s.route,
            &mut s.chosen[row * used..(row + 1) * used],
            &mut s.weights[row * used..(row + 1) * used],
        );
    }

    // Group the slots by expert (counting sort, slots in row order within an expert):
    // `by_expert[pos]` is the slot at position `pos`, `pos_of[slot]` its position.
    s.starts.clear();
    s.starts.resize(n_exp + 1, 0);
    for &e in &s.chosen[..rows * used] {
        s.starts[e as usize + 1] += 1;
    }
    for e in 0..n_exp {
        s.starts[e + 1] += s.starts[e];
    }
    s.by_expert.resize(rows * used, 0);
    s.pos_of.resize(rows * used, 0);
    s.next.clear();
    s.next.extend_from_slice(&s.starts[..n_exp]);
    for (slot, &e) in s.chosen[..rows * used].iter().enumerate() {
        let pos = s.next[e as usize];
        s.by_expert[pos] = slot;
        s.pos_of[slot] = pos;
        s.next[e as usize] += 1;
    }

    // Every slot's input row, in expert order, so each expert's rows are one matrix.
    let gathered = sized(&mut s.gathered, rows * used * hidden);
    for (dst, &slot) in gathered.chunks_exact_mut(hidden).zip(&s.by_expert) {
        let row = slot / used;
        dst.copy_from_slice(&x[row * hidden..(row + 1) * hidden]);
    }
    let gathered: &[f32] = gathered;

    // Each chosen expert once, over all the rows that chose it. An expert with few rows
    // (all of them when decoding) is a task of one shared pool dispatch, its three mat-muls
    // on the thread that claims it, rather than three dispatches of its own: decode then
    // waits on one dispatch per layer, not `3·used`. An expert with many rows (prefill)
    // runs its mat-muls across the pool as before, so a popular expert cannot leave the
    // other threads idle. Either way they are the same kernel calls with the same split,
    // so the bits do not depend on which.
    let (gate_all, up_all, down_all) = (
        w.experts.gate.view(file),
        w.experts.up.view(file),
        w.experts.down.view(file),
    );
    let weights_of = |e: usize| {
        [
            expert(&gate_all, n_exp, e),
            expert(&up_all, n_exp, e),
            expert(&down_all, n_exp, e),
        ]
    };
    let expert_out = sized(&mut s.expert_out, rows * used * hidden);
    let mut small: Vec<Mutex<(usize, &mut [f32])>> = Vec::new();
    let mut rest = expert_out;
    for e in 0..n_exp {
        let (first, end) = (s.starts[e], s.starts[e + 1]);
        if first == end {
            continue;
        }
        let (mine, tail) = std::mem::take(&mut rest).split_at_mut((end - first) * hidden);
        rest = tail;
        if end - first < PARALLEL_EXPERT_ROWS {
            small.push(Mutex::new((e, mine)));
            continue;
        }
        let [g, u, d] = weights_of(e);
        let input = &gathered[first * hidden..end * hidden];
        gated(
            pool,
            [&g, &u, &d],
            activation,
            input,
            mine,
            &mut s.gate,
            &mut s.up,
            act,
        );
    }
    let starts = &s.starts;
    pool.run_tasks(small.len(), |job| {
        let mut guard = small[job].lock().unwrap_or_else(|e| e.into_inner());
        let (e, ref mut dst) = *guard;
        let input = &gathered[starts[e] * hidden..starts[e + 1] * hidden];
        let [g, u, d] = weights_of(e);
        EXPERT_SCRATCH.with(|cell| {
            let (mut gate, mut up, mut act) = cell.take();
            gated(
                pool,
                [&g, &u, &d],
                activation,
                input,
                dst,
                &mut gate,
                &mut up,
                &mut act,
            );
            cell.set((gate, up, act));
        });
    });

    // Each row: its experts' outputs, weighted, in its own top-k order.
    for row in 0..rows {
        let dst = &mut out[row * hidden..(row + 1) * hidden];
        dst.fill(0.0);
        for k in 0..used {
            let slot = row * used + k;
            let wk = s.weights[slot];
            let pos = s.pos_of[slot];
            let src = &s.expert_out[pos * hidden..(pos + 1) * hidden];
            for (o, &v) in dst.iter_mut().zip(src) {
                *o += wk * v;
            }
        }
    }

    if let Some(shared) = &w.shared {
        let (g, u, d) = (
            shared.gate.view(file),
            shared.up.view(file),
            shared.down.view(file),
        );
        let shared_out = sized(&mut s.shared_out, rows * hidden);
        gated(
            pool,
            [&g, &u, &d],
            activation,
            x,
            shared_out,
            &mut s.gate,
            &mut s.up,
            act,
        );
        ops::add(out, &s.shared_out[..rows * hidden]);
    }
}

#[cfg(test)]
#[path = "moe_tests.rs"]
mod tests;
