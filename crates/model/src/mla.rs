//! Multi-head latent attention (MLA; DeepSeek-AI, "DeepSeek-V2", 2024, section 2.1), in
//! the weight-absorbed form, with a KV cache that holds only the compressed latent and the
//! shared RoPE key of every token.
//!
//! Per token `x` (after the attention norm), with `n` heads, `d_nope`/`d_rope` query-key
//! dimensions per head, `d_v` value dimensions per head and a latent of `r` values:
//!
//! ```text
//! q      = x·Wq                     or  norm(x·Wq_a)·Wq_b          [n, d_nope + d_rope]
//! c, kᵣ  = x·Wkv_a  split [r | d_rope];  c = norm(c)               latent, shared rope key
//! k_h    = [Wk_b,h·c | RoPE(kᵣ)]    v_h = Wv_b,h·c                 (never formed)
//! score  = q_nope,h·(Wk_b,h·c) + RoPE(q_rope,h)·RoPE(kᵣ)
//!        = (Wk_b,hᵀ·q_nope,h)·c + RoPE(q_rope,h)·RoPE(kᵣ)
//! out_h  = Wv_b,h·Σₜ pₜ cₜ
//! ```
//!
//! So every head attends, as in multi-query attention, over one shared cached row
//! `[RoPE(kᵣ) | c]` (`d_rope + r` values) with the query `[RoPE(q_rope,h) | Wk_b,hᵀ·q_nope,h]`,
//! and the values are the same rows: the cache stores keys only
//! ([`KvCache`] with values in the keys), and the weighted sum of the rows' latent part,
//! multiplied by `Wv_b,h`, is the head's output. The GGUF tensors are llama.cpp's split of
//! Hugging Face's `kv_b_proj`: `attn_k_b` (GGML dims `[d_nope, r, n]`, per head the
//! `[r, d_nope]` matrix `Wk_b,hᵀ`) and `attn_v_b` (`[r, d_v, n]`, per head `Wv_b,h`).
//!
//! The score scale is `1/√(d_nope + d_rope)`, times YaRN's magnitude correction squared
//! when the file stretches RoPE with YaRN (`(1 + rope.scaling.yarn_log_multiplier·ln s)²`
//! for factor `s`; the rotation itself then keeps unit magnitude), as llama.cpp's
//! `deepseek2` graph and Hugging Face's `yarn_get_mscale` do.

use crate::attention::{attend, AttnScratch, AttnShape, RowInfo};
use crate::config::{ModelConfig, RopeScaling};
use crate::decoder::BatchSeq;
use crate::error::ModelError;
use crate::kv::{KvCache, BLOCK_TOKENS};
use crate::moe::expert;
use crate::weights::{Loader, MatrixRef};
use kaiyuan_gguf::GgufFile;
use kaiyuan_kernels::ops::{self, RopeParams};
use kaiyuan_kernels::threads::ThreadPool;

/// MLA hyper-parameters (`{arch}.attention.*` keys written by llama.cpp's converter).
#[derive(Clone, Debug, PartialEq)]
pub struct MlaConfig {
    /// Rank of the query compression (`q_lora_rank`); `None` (absent or 0): one `attn_q`.
    pub q_lora_rank: Option<usize>,
    /// Values in the compressed KV latent (`kv_lora_rank`).
    pub kv_lora_rank: usize,
    /// Query/key dimensions per head without RoPE (`key_length_mla − rope`).
    pub nope_dim: usize,
    /// Query/key dimensions per head with RoPE (`rope.dimension_count`).
    pub rope_dim: usize,
    /// Value dimensions per head (`value_length_mla`).
    pub v_head_dim: usize,
    /// `rope.scaling.yarn_log_multiplier` (0.1 × Hugging Face's `mscale_all_dim`).
    pub yarn_log_multiplier: Option<f32>,
}

impl MlaConfig {
    pub(crate) fn from_gguf(file: &GgufFile, arch: &str) -> Result<MlaConfig, ModelError> {
        let key = |s: &str| format!("{arch}.{s}");
        let meta = crate::config::Meta { file, arch };
        let get = |s: &str| meta.usize_opt(s);
        let positive = |s: &str| match get(s)? {
            Some(0) => Err(ModelError::BadValue {
                key: key(s),
                reason: "must be positive".into(),
            }),
            Some(v) => Ok(v),
            None => Err(ModelError::MissingKey { key: key(s) }),
        };
        if get("attention.key_length_mla")?.is_none()
            && file.tensor("blk.0.attn_kv_b.weight").is_some()
        {
            return Err(ModelError::Unsupported(format!(
                "an older {arch} conversion (blk.N.attn_kv_b, no {}): convert the model again \
                 with a current llama.cpp convert_hf_to_gguf.py, which writes attn_k_b and attn_v_b",
                key("attention.key_length_mla")
            )));
        }
        let kv_lora_rank = positive("attention.kv_lora_rank")?;
        let rope_dim = positive("rope.dimension_count")?;
        let key_length = positive("attention.key_length_mla")?;
        let v_head_dim = positive("attention.value_length_mla")?;
        if rope_dim % 2 != 0 || key_length <= rope_dim {
            return Err(ModelError::BadValue {
                key: key("rope.dimension_count"),
                reason: format!(
                    "{rope_dim} must be even and less than the key length {key_length} \
                     ({})",
                    key("attention.key_length_mla")
                ),
            });
        }
        Ok(MlaConfig {
            q_lora_rank: get("attention.q_lora_rank")?.filter(|&r| r > 0),
            kv_lora_rank,
            nope_dim: key_length - rope_dim,
            rope_dim,
            v_head_dim,
            yarn_log_multiplier: file.get_f32(&key("rope.scaling.yarn_log_multiplier"))?,
        })
    }

    /// Values of one cached row: the rope key then the latent.
    pub fn cache_width(&self) -> usize {
        self.rope_dim + self.kv_lora_rank
    }

    /// Query/key dimensions per head as the model sees them (`d_nope + d_rope`).
    pub fn qk_head_dim(&self) -> usize {
        self.nope_dim + self.rope_dim
    }

    /// Multiplier of the scores: `1/√(d_nope + d_rope)`, with YaRN's magnitude correction.
    pub(crate) fn attention_scale(&self, rope: &RopeScaling) -> Result<f32, ModelError> {
        let base = 1.0 / (self.qk_head_dim() as f32).sqrt();
        let RopeScaling::Yarn { factor, .. } = rope else {
            return Ok(base);
        };
        let Some(log_mul) = self.yarn_log_multiplier else {
            // llama.cpp and transformers place the correction differently without it.
            return Err(ModelError::Unsupported(
                "YaRN RoPE scaling on multi-head latent attention without \
                 rope.scaling.yarn_log_multiplier (Hugging Face's mscale_all_dim)"
                    .into(),
            ));
        };
        let mscale = if *factor > 1.0 {
            1.0 + log_mul * factor.ln()
        } else {
            1.0
        };
        Ok(base * mscale * mscale)
    }
}

/// How a layer makes its queries.
pub(crate) enum QueryProj {
    /// `attn_q`: `[n·(d_nope + d_rope), hidden]`.
    Direct(MatrixRef),
    /// `attn_q_a` `[q_rank, hidden]`, `attn_q_a_norm`, `attn_q_b` `[n·(d_nope + d_rope), q_rank]`.
    LowRank {
        a: MatrixRef,
        norm: Vec<f32>,
        b: MatrixRef,
    },
}

/// One layer's MLA tensors (the output projection `attn_output` stays in the layer).
pub(crate) struct MlaWeights {
    pub q: QueryProj,
    /// `attn_kv_a_mqa`: `[r + d_rope, hidden]`.
    pub kv_a: MatrixRef,
    /// `attn_kv_a_norm`: `r` weights.
    pub kv_a_norm: Vec<f32>,
    /// `attn_k_b` stacked per head: `[n·r, d_nope]`.
    pub k_b: MatrixRef,
    /// `attn_v_b` stacked per head: `[n·d_v, r]`.
    pub v_b: MatrixRef,
}

impl MlaWeights {
    pub(crate) fn load(l: &Loader, c: &ModelConfig, i: usize) -> Result<MlaWeights, ModelError> {
        let m = c
            .mla
            .as_ref()
            .expect("invariant: MLA weights only with an MLA config");
        let n = |suffix: &str| format!("blk.{i}.{suffix}");
        let (hidden, heads, r) = (c.hidden_size, c.num_heads, m.kv_lora_rank);
        let q_rows = heads * m.qk_head_dim();
        let q = match m.q_lora_rank {
            Some(rank) => QueryProj::LowRank {
                a: l.matrix(&n("attn_q_a.weight"), rank, hidden)?,
                norm: l.norm(&n("attn_q_a_norm.weight"), rank)?,
                b: l.matrix(&n("attn_q_b.weight"), q_rows, rank)?,
            },
            None => QueryProj::Direct(l.matrix(&n("attn_q.weight"), q_rows, hidden)?),
        };
        Ok(MlaWeights {
            q,
            kv_a: l.matrix(&n("attn_kv_a_mqa.weight"), r + m.rope_dim, hidden)?,
            kv_a_norm: l.norm(&n("attn_kv_a_norm.weight"), r)?,
            k_b: l.experts(&n("attn_k_b.weight"), heads, r, m.nope_dim)?,
            v_b: l.experts(&n("attn_v_b.weight"), heads, m.v_head_dim, r)?,
        })
    }
}

/// Reusable buffers of [`attention`].
#[derive(Default)]
pub(crate) struct MlaScratch {
    q: Vec<f32>,
    q_low: Vec<f32>,
    kv: Vec<f32>,
    /// Absorbed queries `[rows, n, d_rope + r]`.
    queries: Vec<f32>,
    /// Cached rows of this step `[rows, d_rope + r]`.
    keys: Vec<f32>,
    /// Attention output per head `[rows, n, d_rope + r]`.
    out: Vec<f32>,
    /// One head's rows gathered for its up-projection, and its result.
    head_in: Vec<f32>,
    head_out: Vec<f32>,
    /// Per-head values `[rows, n·d_v]`.
    values: Vec<f32>,
}

/// The first `n` elements of `v`, growing it if needed.
fn sized(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
}

/// What one layer's attention needs besides its weights.
pub(crate) struct MlaStep<'a> {
    pub pool: &'a ThreadPool,
    pub file: &'a GgufFile,
    pub config: &'a ModelConfig,
    pub layer: usize,
    pub rope: &'a RopeParams<'a>,
    pub scale: f32,
    pub rows: &'a [RowInfo],
    pub seqs: &'a [BatchSeq<'a>],
}

/// `y = x·Wᵀ` for every head's slice of `x` and `y`: `x` is `[rows, heads, x_stride]` with
/// the head's input at `x_at..x_at + w.cols`, `y` is `[rows, heads, y_stride]` likewise;
/// `w` is the heads' matrices stacked. The heads' inputs are gathered head-major into
/// `head_in`, then one pool dispatch runs whole heads as tasks, each head's rows through one
/// mat-mat on its thread (the same kernel call as a mat-mat of its own, so the same bits),
/// into `head_out`; then the results are scattered back. One dispatch per call rather than
/// one per head: decoding a V3-shaped layer (128 heads) would otherwise wait on 256 of them.
fn per_head(
    pool: &ThreadPool,
    w: &ops::WeightMatrix,
    heads: usize,
    (x, x_stride, x_at): (&[f32], usize, usize),
    (y, y_stride, y_at): (&mut [f32], usize, usize),
    head_in: &mut Vec<f32>,
    head_out: &mut Vec<f32>,
) {
    let rows = x.len() / (heads * x_stride);
    let (cols, out) = (w.cols(), w.rows() / heads);
    let input = sized(head_in, heads * rows * cols);
    for (h, head) in input.chunks_exact_mut(rows * cols).enumerate() {
        for (r, dst) in head.chunks_exact_mut(cols).enumerate() {
            let at = (r * heads + h) * x_stride + x_at;
            dst.copy_from_slice(&x[at..at + cols]);
        }
    }
    let input: &[f32] = input;
    let output = sized(head_out, heads * rows * out);
    pool.run_split_mut(output, rows * out, |first, part| {
        for (k, dst) in part.chunks_exact_mut(rows * out).enumerate() {
            let h = first + k;
            let src = &input[h * rows * cols..(h + 1) * rows * cols];
            // Inside a pool task: runs on this thread.
            ops::matmul(pool, &expert(w, heads, h), src, dst);
        }
    });
    for (h, head) in output.chunks_exact(rows * out).enumerate() {
        for (r, src) in head.chunks_exact(out).enumerate() {
            let at = (r * heads + h) * y_stride + y_at;
            y[at..at + out].copy_from_slice(src);
        }
    }
}

/// One MLA layer for the rows of `xn` (`[rows, hidden]`, normed): writes each row's cached
/// latent into `kv` and the attention output, after `attn_output` (`wo`), into `proj`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention(
    step: &MlaStep,
    w: &MlaWeights,
    wo: &MatrixRef,
    kv: &mut KvCache,
    xn: &[f32],
    proj: &mut [f32],
    s: &mut MlaScratch,
    attn: &mut AttnScratch,
    act: &mut Vec<u8>,
) {
    let (pool, file, c) = (step.pool, step.file, step.config);
    let m = c
        .mla
        .as_ref()
        .expect("invariant: MLA layers only with an MLA config");
    let heads = c.num_heads;
    let (nope, rope, r) = (m.nope_dim, m.rope_dim, m.kv_lora_rank);
    let (qk, width, dv) = (m.qk_head_dim(), m.cache_width(), m.v_head_dim);
    let n_rows = step.rows.len();
    let MlaScratch {
        q,
        q_low,
        kv: kv_a,
        queries,
        keys,
        out,
        head_in,
        head_out,
        values,
    } = s;

    // Queries [rows, n, d_nope + d_rope].
    let q = sized(q, n_rows * heads * qk);
    match &w.q {
        QueryProj::Direct(wq) => ops::matmul_with_scratch(pool, &wq.view(file), xn, q, act),
        QueryProj::LowRank { a, norm, b } => {
            let low = sized(q_low, n_rows * norm.len());
            ops::matmul_with_scratch(pool, &a.view(file), xn, low, act);
            for row in low.chunks_exact_mut(norm.len()) {
                ops::rms_norm_in_place(row, norm, c.rms_eps);
            }
            ops::matmul_with_scratch(pool, &b.view(file), low, q, act);
        }
    }
    // Latent and rope key [rows, r + d_rope].
    let kv_a = sized(kv_a, n_rows * (r + rope));
    ops::matmul_with_scratch(pool, &w.kv_a.view(file), xn, kv_a, act);

    // Cached rows [RoPE(k_rope) | norm(c)] and the rope part of the queries.
    let queries = sized(queries, n_rows * heads * width);
    let keys = sized(keys, n_rows * width);
    for (i, info) in step.rows.iter().enumerate() {
        let src = &kv_a[i * (r + rope)..(i + 1) * (r + rope)];
        let key = &mut keys[i * width..(i + 1) * width];
        key[..rope].copy_from_slice(&src[r..]);
        ops::rms_norm(&src[..r], &w.kv_a_norm, c.rms_eps, &mut key[rope..]);
        let row_q = &mut queries[i * heads * width..(i + 1) * heads * width];
        for (h, dst) in row_q.chunks_exact_mut(width).enumerate() {
            let at = (i * heads + h) * qk + nope;
            dst[..rope].copy_from_slice(&q[at..at + rope]);
        }
        ops::rope_qk(row_q, heads, key, 1, width, info.pos, step.rope);
        let table = step.seqs[info.seq].block_table;
        let block = table[info.pos / BLOCK_TOKENS];
        kv.write(step.layer, block, info.pos % BLOCK_TOKENS, key, &[]);
    }
    // Absorbed queries: Wk_b,hᵀ·q_nope,h into each head's latent part.
    per_head(
        pool,
        &w.k_b.view(file),
        heads,
        (q, qk, 0),
        (queries, width, rope),
        head_in,
        head_out,
    );

    let shape = AttnShape {
        num_heads: heads,
        num_kv_heads: 1,
        head_dim: width,
        scale: step.scale,
        softcap: c.attn_logit_softcap,
        window: c.layers[step.layer].sliding_window,
    };
    let out = sized(out, n_rows * heads * width);
    attend(
        pool, &shape, step.rows, kv, step.layer, step.seqs, queries, out, attn,
    );

    // Each head's weighted latent through Wv_b,h, then the output projection.
    let values = sized(values, n_rows * heads * dv);
    per_head(
        pool,
        &w.v_b.view(file),
        heads,
        (out, width, rope),
        (values, dv, 0),
        head_in,
        head_out,
    );
    ops::matmul_with_scratch(pool, &wo.view(file), values, proj, act);
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaiyuan_kernels::DType;

    /// `per_head` against each head's product written out directly (f64), with more heads
    /// than the pool has tasks so that one task runs several heads, inputs and outputs at
    /// offsets inside wider rows, and two rows.
    #[test]
    fn per_head_matches_each_heads_direct_product() {
        const HEADS: usize = 20; // > 1 thread × 4 tasks: tasks of several heads
        const ROWS: usize = 2;
        let (cols, out, x_stride, x_at, y_stride, y_at) = (8, 3, 11, 2, 5, 1);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let w: Vec<f32> = (0..HEADS * out * cols).map(|_| next()).collect();
        let x: Vec<f32> = (0..ROWS * HEADS * x_stride).map(|_| next()).collect();
        let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
        let wm = ops::WeightMatrix::new(DType::F32, HEADS * out, cols, &bytes).unwrap();
        for threads in [1, 2] {
            let pool = ThreadPool::new(threads);
            let mut y = vec![f32::NAN; ROWS * HEADS * y_stride];
            let (mut a, mut b) = (Vec::new(), Vec::new());
            per_head(
                &pool,
                &wm,
                HEADS,
                (&x, x_stride, x_at),
                (&mut y, y_stride, y_at),
                &mut a,
                &mut b,
            );
            for r in 0..ROWS {
                for h in 0..HEADS {
                    let xin = &x[(r * HEADS + h) * x_stride + x_at..][..cols];
                    for o in 0..out {
                        let wrow = &w[(h * out + o) * cols..][..cols];
                        let want: f64 = wrow
                            .iter()
                            .zip(xin)
                            .map(|(&p, &q)| f64::from(p) * f64::from(q))
                            .sum();
                        let got = y[(r * HEADS + h) * y_stride + y_at + o];
                        assert!(
                            (f64::from(got) - want).abs() < 1e-5,
                            "{threads} threads, row {r}, head {h}, output {o}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
