//! [`Model`] and its single batched forward pass, shared by every architecture.
//!
//! One step takes any number of sequences, each a run of new tokens at its own starting
//! position with its own KV block table. All new rows of all sequences go through every
//! projection together as one `[rows, hidden]` matrix (`ops::matmul`: each weight matrix
//! is streamed once per step); attention runs per row over its sequence's cached keys.
//! Per block (pre-norm decoder, Radford et al. GPT-2 / Touvron et al. Llama):
//!
//! ```text
//! h = x·emb_scale
//! a = attn(norm(h))              Q,K,V (+bias) → [Q/K norm] → RoPE [→ Q/K norm] → cache → softmax(QKᵀ·s)V → O
//! h = h + [post_attn_norm](a)
//! f = down(act(gate(norm(h))) · up(norm(h)))   or, in MoE layers, Σₖ wₖ·expertₖ(norm(h))
//!                                                 [+ shared experts]  (see `moe.rs`)
//! h = h + [post_ffw_norm](f)
//! logits = output(norm(h))       only for rows that want them; [final softcap]
//! ```
//! The bracketed steps and the constants come from [`ModelConfig`] / [`ArchSpec`]
//! (see `arch/`), never from the architecture's name.

use crate::arch;
use crate::attention::{attend, AttnScratch, AttnShape, RowInfo};
use crate::config::ModelConfig;
use crate::error::ModelError;
use crate::kv::{BlockId, KvCache, BLOCK_TOKENS};
use crate::mla::{self, MlaScratch, MlaStep};
use crate::moe::{dense_ffn, moe_ffn, Ffn, FfnScratch};
use crate::rope_scaling::{resolve_rope, LayerRope};
use crate::weights::{AttnWeights, LayerWeights, MatrixRef, Weights};
use kaiyuan_gguf::GgufFile;
use kaiyuan_kernels::ops::{self, RopeParams};
use kaiyuan_kernels::quant::dequantize_fn;
use kaiyuan_kernels::threads::ThreadPool;
use std::path::Path;
use std::sync::Arc;

/// Which rows of a sequence need logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogitsWanted {
    None,
    Last,
    All,
}

/// One sequence's part of a batch.
#[derive(Clone, Copy, Debug)]
pub struct BatchSeq<'a> {
    /// New tokens, placed at positions `start_pos..start_pos + tokens.len()`.
    pub tokens: &'a [u32],
    /// Tokens already in this sequence's KV cache.
    pub start_pos: usize,
    /// Blocks holding positions `16·i..16·(i+1)`; must cover every new position.
    pub block_table: &'a [BlockId],
    pub want_logits: LogitsWanted,
}

/// Logits of the rows that wanted them: `rows × vocab`, with each row's origin.
#[derive(Clone, Debug)]
pub struct Logits {
    data: Vec<f32>,
    vocab_size: usize,
    /// `(sequence index in the batch, index of the token within that sequence's tokens)`.
    origins: Vec<(usize, usize)>,
}

impl Logits {
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    pub fn num_rows(&self) -> usize {
        self.origins.len()
    }

    /// `(sequence, token index)` of every row, in row order.
    pub fn origins(&self) -> &[(usize, usize)] {
        &self.origins
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.vocab_size..(i + 1) * self.vocab_size]
    }

    /// The logits of token `index` of sequence `seq`, if they were computed.
    pub fn get(&self, seq: usize, index: usize) -> Option<&[f32]> {
        let i = self.origins.iter().position(|&o| o == (seq, index))?;
        Some(self.row(i))
    }

    /// All rows of sequence `seq`, in token order.
    pub fn for_seq(&self, seq: usize) -> impl Iterator<Item = &[f32]> + '_ {
        self.origins
            .iter()
            .enumerate()
            .filter(move |(_, o)| o.0 == seq)
            .map(|(i, _)| self.row(i))
    }

    /// The flat `rows × vocab` buffer.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
}

/// Reusable buffers of the forward pass; grows to the largest batch seen, then stops
/// allocating.
#[derive(Default)]
pub struct Scratch {
    x: Vec<f32>,
    xn: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    proj: Vec<f32>,
    ffn: FfnScratch,
    rows: Vec<RowInfo>,
    /// Batch rows whose logits are wanted.
    picked: Vec<usize>,
    act: Vec<u8>,
    attn: AttnScratch,
    mla: MlaScratch,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch::default()
    }
}

/// The first `n` elements of `v`, growing it if needed.
fn sized(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
}

/// A loaded model: its file, configuration and weights.
pub struct Model {
    file: Arc<GgufFile>,
    config: ModelConfig,
    weights: Weights,
    layer_rope: Vec<LayerRope>,
}

impl Model {
    /// Opens and memory-maps a GGUF model.
    pub fn open(path: impl AsRef<Path>) -> Result<Model, ModelError> {
        Model::from_gguf(Arc::new(GgufFile::open(path)?))
    }

    /// Builds a model over an opened file: checks tensor types, reads the configuration
    /// and locates every weight.
    pub fn from_gguf(file: Arc<GgufFile>) -> Result<Model, ModelError> {
        let name =
            file.get_str("general.architecture")?
                .ok_or_else(|| ModelError::NoArchitecture {
                    supported: arch::supported_names(),
                })?;
        let spec = arch::lookup(name)?;
        file.check_supported()?;
        let config = ModelConfig::from_gguf(&file, spec)?;
        let weights = Weights::load(&file, &config)?;
        let layer_rope = resolve_rope(&config, weights.rope_freqs.as_deref())?;
        Ok(Model {
            file,
            config,
            weights,
            layer_rope,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn file(&self) -> &GgufFile {
        &self.file
    }

    /// Runs one step for `seqs`: writes their new keys and values into `kv` at their
    /// positions and returns the logits they asked for.
    pub fn forward(
        &self,
        pool: &ThreadPool,
        kv: &mut KvCache,
        seqs: &[BatchSeq],
        scratch: &mut Scratch,
    ) -> Result<Logits, ModelError> {
        self.validate(kv, seqs)?;
        let c = &self.config;
        let (hidden, q_dim, kv_dim) = (c.hidden_size, c.q_dim(), c.kv_dim());
        let s = scratch;

        s.rows.clear();
        for (i, seq) in seqs.iter().enumerate() {
            for t in 0..seq.tokens.len() {
                s.rows.push(RowInfo {
                    seq: i,
                    pos: seq.start_pos + t,
                });
            }
        }
        let n_rows = s.rows.len();

        // Embeddings. [rows, hidden]
        let x = sized(&mut s.x, n_rows * hidden);
        self.embed(seqs, x);

        for (l, lw) in self.weights.layers.iter().enumerate() {
            let rope = &self.layer_rope[l];
            let params = RopeParams {
                style: c.rope_style,
                n_rot: c.n_rot,
                theta_base: rope.theta_base,
                freq_scale: rope.freq_scale,
                freq_factors: rope.factors.as_deref(),
            };
            // Attention input norm. [rows, hidden]
            let xn = sized(&mut s.xn, n_rows * hidden);
            rms_rows(&s.x[..n_rows * hidden], &lw.attn_norm, c.rms_eps, xn);
            let proj = sized(&mut s.proj, n_rows * hidden);
            let (wq, wk, wv) = match &lw.attn {
                AttnWeights::Qkv { wq, wk, wv } => (wq, wk, wv),
                AttnWeights::Mla(w) => {
                    let step = MlaStep {
                        pool,
                        file: &self.file,
                        config: c,
                        layer: l,
                        rope: &params,
                        scale: c.attention_scale * rope.score_mult,
                        rows: &s.rows,
                        seqs,
                    };
                    mla::attention(
                        &step,
                        w,
                        &lw.wo,
                        kv,
                        xn,
                        proj,
                        &mut s.mla,
                        &mut s.attn,
                        &mut s.act,
                    );
                    if let Some([post_attn, _]) = &lw.sandwich {
                        rms_rows_in_place(proj, post_attn, c.rms_eps);
                    }
                    ops::add(&mut s.x[..n_rows * hidden], proj);
                    self.feed_forward(pool, lw, n_rows, s);
                    continue;
                }
            };
            let shape = AttnShape {
                num_heads: c.num_heads,
                num_kv_heads: c.num_kv_heads,
                head_dim: c.head_dim,
                scale: c.attention_scale * rope.score_mult,
                softcap: c.attn_logit_softcap,
                window: c.layers[l].sliding_window,
            };
            let q = sized(&mut s.q, n_rows * q_dim);
            let k = sized(&mut s.k, n_rows * kv_dim);
            let v = sized(&mut s.v, n_rows * kv_dim);
            self.project(pool, wq, xn, q, &mut s.act);
            self.project(pool, wk, xn, k, &mut s.act);
            self.project(pool, wv, xn, v, &mut s.act);
            if let Some([bq, bk, bv]) = &lw.qkv_bias {
                add_rows(q, bq);
                add_rows(k, bk);
                add_rows(v, bv);
            }
            let qk_norm = |q: &mut [f32], k: &mut [f32]| {
                if let Some([qn, kn]) = &lw.qk_norm {
                    rms_heads(q, qn, c.rms_eps);
                    rms_heads(k, kn, c.rms_eps);
                }
            };
            if !c.qk_norm_after_rope {
                qk_norm(q, k);
            }
            for (r, info) in s.rows.iter().enumerate() {
                ops::rope_qk(
                    &mut q[r * q_dim..(r + 1) * q_dim],
                    c.num_heads,
                    &mut k[r * kv_dim..(r + 1) * kv_dim],
                    c.num_kv_heads,
                    c.head_dim,
                    info.pos,
                    &params,
                );
                if c.qk_norm_after_rope {
                    qk_norm(
                        &mut q[r * q_dim..(r + 1) * q_dim],
                        &mut k[r * kv_dim..(r + 1) * kv_dim],
                    );
                }
                let table = seqs[info.seq].block_table;
                let block = table[info.pos / BLOCK_TOKENS];
                let rows = r * kv_dim..(r + 1) * kv_dim;
                kv.write(
                    l,
                    block,
                    info.pos % BLOCK_TOKENS,
                    &k[rows.clone()],
                    &v[rows],
                );
            }
            let att = sized(&mut s.att, n_rows * q_dim);
            attend(pool, &shape, &s.rows, kv, l, seqs, q, att, &mut s.attn);
            let proj = sized(&mut s.proj, n_rows * hidden);
            self.project(pool, &lw.wo, att, proj, &mut s.act);
            let x = &mut s.x[..n_rows * hidden];
            if let Some([post_attn, _]) = &lw.sandwich {
                rms_rows_in_place(proj, post_attn, c.rms_eps);
            }
            ops::add(x, proj);
            self.feed_forward(pool, lw, n_rows, s);
        }

        self.output(pool, seqs, s)
    }

    /// The feed-forward half of layer `lw` on the rows of `s.x`, added to them.
    fn feed_forward(&self, pool: &ThreadPool, lw: &LayerWeights, n_rows: usize, s: &mut Scratch) {
        let c = &self.config;
        let hidden = c.hidden_size;
        let x = &s.x[..n_rows * hidden];
        let xn = &mut s.xn[..n_rows * hidden];
        rms_rows(x, &lw.ffn_norm, c.rms_eps, xn);
        let proj = &mut s.proj[..n_rows * hidden];
        match &lw.ffn {
            Ffn::Dense(w) => dense_ffn(
                pool,
                &self.file,
                w,
                c.activation,
                xn,
                proj,
                &mut s.ffn,
                &mut s.act,
            ),
            Ffn::Moe(w) => {
                let moe = c
                    .moe
                    .as_ref()
                    .expect("invariant: MoE weights only with a MoE config");
                moe_ffn(
                    pool,
                    &self.file,
                    moe,
                    w,
                    c.activation,
                    xn,
                    proj,
                    &mut s.ffn,
                    &mut s.act,
                )
            }
        }
        if let Some([_, post_ffw]) = &lw.sandwich {
            rms_rows_in_place(proj, post_ffw, c.rms_eps);
        }
        ops::add(&mut s.x[..n_rows * hidden], proj);
    }

    fn project(
        &self,
        pool: &ThreadPool,
        w: &MatrixRef,
        x: &[f32],
        y: &mut [f32],
        act: &mut Vec<u8>,
    ) {
        ops::matmul_with_scratch(pool, &w.view(&self.file), x, y, act);
    }

    /// Looks up (dequantizes) each token's embedding row into `x`, scaled.
    fn embed(&self, seqs: &[BatchSeq], x: &mut [f32]) {
        let hidden = self.config.hidden_size;
        let table = self.weights.token_embd.view(&self.file);
        let dequantize = dequantize_fn(self.weights.token_embd.dtype())
            .expect("invariant: token_embd's type has kernels (checked at load)");
        let tokens = seqs.iter().flat_map(|s| s.tokens.iter());
        for (row, &tok) in x.chunks_exact_mut(hidden).zip(tokens) {
            dequantize(table.row(tok as usize), row);
            if self.config.embedding_scale != 1.0 {
                ops::scale(row, self.config.embedding_scale);
            }
        }
    }

    /// Final norm and output projection for the rows that want logits.
    fn output(
        &self,
        pool: &ThreadPool,
        seqs: &[BatchSeq],
        s: &mut Scratch,
    ) -> Result<Logits, ModelError> {
        let c = &self.config;
        let hidden = c.hidden_size;
        let mut origins = Vec::new();
        let mut row = 0;
        let picked = &mut s.picked;
        picked.clear();
        for (i, seq) in seqs.iter().enumerate() {
            let n = seq.tokens.len();
            let wanted = match seq.want_logits {
                LogitsWanted::None => 0..0,
                LogitsWanted::Last => n.saturating_sub(1)..n,
                LogitsWanted::All => 0..n,
            };
            for t in wanted {
                origins.push((i, t));
                picked.push(row + t);
            }
            row += n;
        }
        let xn = sized(&mut s.xn, picked.len() * hidden);
        for (dst, &r) in xn.chunks_exact_mut(hidden).zip(picked.iter()) {
            ops::rms_norm(
                &s.x[r * hidden..(r + 1) * hidden],
                &self.weights.output_norm,
                c.rms_eps,
                dst,
            );
        }
        let mut data = vec![0f32; picked.len() * c.vocab_size];
        self.project(pool, &self.weights.output, xn, &mut data, &mut s.act);
        if let Some(cap) = c.final_logit_softcap {
            for v in &mut data {
                *v = cap * (*v / cap).tanh();
            }
        }
        Ok(Logits {
            data,
            vocab_size: c.vocab_size,
            origins,
        })
    }

    /// Checks every input before anything is written to the cache.
    fn validate(&self, kv: &KvCache, seqs: &[BatchSeq]) -> Result<(), ModelError> {
        if !kv.matches(&self.config) {
            return Err(ModelError::KvCacheMismatch);
        }
        for (i, seq) in seqs.iter().enumerate() {
            if let Some(&token) = seq
                .tokens
                .iter()
                .find(|&&t| t as usize >= self.config.vocab_size)
            {
                return Err(ModelError::TokenOutOfRange {
                    token,
                    vocab_size: self.config.vocab_size,
                });
            }
            let positions = seq.start_pos + seq.tokens.len();
            let need = KvCache::blocks_for(positions);
            if seq.block_table.len() < need {
                return Err(ModelError::BlockTableTooShort {
                    seq: i,
                    have: seq.block_table.len(),
                    need,
                    positions,
                });
            }
            if let Some(b) = seq.block_table[..need]
                .iter()
                .find(|b| b.index() >= kv.num_blocks())
            {
                return Err(ModelError::BlockOutOfRange {
                    block: b.0,
                    pool_blocks: kv.num_blocks(),
                });
            }
        }
        Ok(())
    }
}

/// Row-wise RMS norm of `[rows, n]` into `out`.
fn rms_rows(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let n = w.len();
    for (src, dst) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        ops::rms_norm(src, w, eps, dst);
    }
}

fn rms_rows_in_place(x: &mut [f32], w: &[f32], eps: f32) {
    for row in x.chunks_exact_mut(w.len()) {
        ops::rms_norm_in_place(row, w, eps);
    }
}

/// RMS norm of every head (`w.len()` = head size) of `[rows, heads·head_dim]`.
fn rms_heads(x: &mut [f32], w: &[f32], eps: f32) {
    rms_rows_in_place(x, w, eps);
}

/// Adds `bias` to every row of `x`.
fn add_rows(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        ops::add(row, bias);
    }
}
