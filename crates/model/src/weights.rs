//! The model's tensors, located and shape-checked once at load. Matrices stay in the
//! memory-mapped file (zero copy) and are viewed as [`WeightMatrix`] when used; small
//! vectors (norm weights, biases, RoPE factors) are dequantized to f32 at load.
//!
//! Names are llama.cpp's GGUF tensor names (`gguf-py/gguf/constants.py`,
//! `MODEL_TENSOR` → `TENSOR_NAMES`), shared by every architecture here.

use crate::config::ModelConfig;
use crate::error::ModelError;
use crate::mla::MlaWeights;
use crate::moe::{DenseFfn, Ffn, MoeWeights};
use kaiyuan_gguf::GgufFile;
use kaiyuan_kernels::ops::WeightMatrix;
use kaiyuan_kernels::quant::dequantize_fn;
use kaiyuan_kernels::DType;

/// A weight matrix `[rows, cols]` inside the file, already validated against the
/// kernels, so [`MatrixRef::view`] cannot fail.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MatrixRef {
    tensor: usize,
    dtype: DType,
    rows: usize,
    cols: usize,
    /// The matrix is rows `first_row..first_row + rows` of a tensor of `tensor_rows` rows
    /// (a part of a fused tensor); usually `0` and `rows`.
    first_row: usize,
    tensor_rows: usize,
}

impl MatrixRef {
    pub fn view<'a>(&self, file: &'a GgufFile) -> WeightMatrix<'a> {
        let data = file.tensor_data(&file.tensors()[self.tensor]);
        let whole = WeightMatrix::new(self.dtype, self.tensor_rows, self.cols, data)
            .expect("invariant: matrix validated when the model was loaded");
        if self.rows == self.tensor_rows {
            return whole;
        }
        WeightMatrix::new(
            self.dtype,
            self.rows,
            self.cols,
            whole.row_span(self.first_row, self.rows),
        )
        .expect("invariant: a slice of whole rows of a validated matrix")
    }

    /// Rows `first..first + rows` of this matrix, as a matrix.
    fn row_range(self, first: usize, rows: usize) -> MatrixRef {
        assert!(first + rows <= self.rows, "row range inside the matrix");
        MatrixRef {
            first_row: self.first_row + first,
            rows,
            ..self
        }
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }
}

#[cfg(test)]
impl MatrixRef {
    /// Tensor `name` of `file` viewed as `[rows, cols]`, unchecked (tests build layers by hand).
    pub(crate) fn for_test(file: &GgufFile, name: &str, rows: usize, cols: usize) -> MatrixRef {
        let tensor = file.tensors().iter().position(|t| t.name == name).unwrap();
        MatrixRef {
            tensor,
            dtype: file.tensors()[tensor].dtype,
            rows,
            cols,
            first_row: 0,
            tensor_rows: rows,
        }
    }
}

/// A layer's attention projections before the output projection.
pub(crate) enum AttnWeights {
    /// Separate Q, K, V projections (multi-head, grouped-query and multi-query attention).
    Qkv {
        wq: MatrixRef,
        wk: MatrixRef,
        wv: MatrixRef,
    },
    /// Multi-head latent attention.
    Mla(Box<MlaWeights>),
}

/// One transformer block's tensors.
pub(crate) struct LayerWeights {
    pub attn_norm: Vec<f32>,
    pub attn: AttnWeights,
    pub wo: MatrixRef,
    /// Q, K, V biases when the config has them.
    pub qkv_bias: Option<[Vec<f32>; 3]>,
    /// Per-head Q and K norm weights when the config has them.
    pub qk_norm: Option<[Vec<f32>; 2]>,
    /// Post-attention and post-FFN norms (sandwich) when the config has them.
    pub sandwich: Option<[Vec<f32>; 2]>,
    pub ffn_norm: Vec<f32>,
    pub ffn: Ffn,
}

pub(crate) struct Weights {
    /// `[vocab, hidden]`; rows are dequantized one token at a time.
    pub token_embd: MatrixRef,
    pub output_norm: Vec<f32>,
    /// `[vocab, hidden]`: `output.weight`, or `token_embd.weight` when tied.
    pub output: MatrixRef,
    /// Llama 3 RoPE frequency divisors, `n_rot / 2` of them.
    pub rope_freqs: Option<Vec<f32>>,
    pub layers: Vec<LayerWeights>,
}

pub(crate) struct Loader<'a> {
    file: &'a GgufFile,
    norm_offset: f32,
}

impl Loader<'_> {
    fn find(&self, name: &str) -> Result<usize, ModelError> {
        self.file
            .tensors()
            .iter()
            .position(|t| t.name == name)
            .ok_or_else(|| ModelError::MissingTensor { name: name.into() })
    }

    fn check_dims(&self, idx: usize, expected: &[u64]) -> Result<(), ModelError> {
        let t = &self.file.tensors()[idx];
        if t.dims != expected {
            return Err(ModelError::TensorShape {
                name: t.name.clone(),
                found: t.dims.clone(),
                expected: expected.to_vec(),
            });
        }
        Ok(())
    }

    /// A `[rows, cols]` matrix (GGML dims `[cols, rows]`).
    pub(crate) fn matrix(
        &self,
        name: &str,
        rows: usize,
        cols: usize,
    ) -> Result<MatrixRef, ModelError> {
        let idx = self.find(name)?;
        self.check_dims(idx, &[cols as u64, rows as u64])?;
        let t = &self.file.tensors()[idx];
        WeightMatrix::new(t.dtype, rows, cols, self.file.tensor_data(t)).map_err(|source| {
            ModelError::TensorType {
                name: name.into(),
                source,
            }
        })?;
        Ok(MatrixRef {
            tensor: idx,
            dtype: t.dtype,
            rows,
            cols,
            first_row: 0,
            tensor_rows: rows,
        })
    }

    /// A 3-D stack of `experts` matrices `[rows, cols]` (GGML dims `[cols, rows, experts]`),
    /// as one `[experts · rows, cols]` matrix.
    pub(crate) fn experts(
        &self,
        name: &str,
        experts: usize,
        rows: usize,
        cols: usize,
    ) -> Result<MatrixRef, ModelError> {
        let idx = self.find(name)?;
        self.check_dims(idx, &[cols as u64, rows as u64, experts as u64])?;
        let t = &self.file.tensors()[idx];
        let stacked = experts
            .checked_mul(rows)
            .ok_or_else(|| ModelError::TensorShape {
                name: name.into(),
                found: t.dims.clone(),
                expected: vec![],
            })?;
        WeightMatrix::new(t.dtype, stacked, cols, self.file.tensor_data(t)).map_err(|source| {
            ModelError::TensorType {
                name: name.into(),
                source,
            }
        })?;
        Ok(MatrixRef {
            tensor: idx,
            dtype: t.dtype,
            rows: stacked,
            cols,
            first_row: 0,
            tensor_rows: stacked,
        })
    }

    /// Layer `i`'s feed-forward tensors: dense, or router + experts (+ shared experts).
    fn ffn(&self, c: &ModelConfig, i: usize) -> Result<Ffn, ModelError> {
        let n = |suffix: &str| format!("blk.{i}.{suffix}");
        let hidden = c.hidden_size;
        let dense = |kind: &str, ff: usize| -> Result<DenseFfn, ModelError> {
            Ok(DenseFfn {
                gate: self.matrix(&n(&format!("ffn_gate{kind}.weight")), ff, hidden)?,
                up: self.matrix(&n(&format!("ffn_up{kind}.weight")), ff, hidden)?,
                down: self.matrix(&n(&format!("ffn_down{kind}.weight")), hidden, ff)?,
            })
        };
        let moe = match &c.moe {
            Some(m) if m.is_moe_layer(i) => m,
            _ if c.fused_gate_up => {
                let ff = c.ffn_size;
                let gate_up = self.matrix(&n("ffn_up.weight"), ff.saturating_mul(2), hidden)?;
                return Ok(Ffn::Dense(DenseFfn {
                    gate: gate_up.row_range(0, ff),
                    up: gate_up.row_range(ff, ff),
                    down: self.matrix(&n("ffn_down.weight"), hidden, ff)?,
                }));
            }
            _ => return Ok(Ffn::Dense(dense("", c.ffn_size)?)),
        };
        let (e, ff) = (moe.router.experts, moe.expert_ffn_size);
        if self.file.tensor(&n("ffn_gate_inp_shexp.weight")).is_some() {
            return Err(ModelError::Unsupported(format!(
                "{} (a gated shared expert)",
                n("ffn_gate_inp_shexp.weight")
            )));
        }
        let probs_bias = match self.file.tensor(&n("exp_probs_b.bias")) {
            Some(_) => Some(self.vector(&n("exp_probs_b.bias"), e)?),
            None => None,
        };
        let shared = match moe.shared_ffn_size {
            Some(sff) => Some(dense("_shexp", sff)?),
            None => None,
        };
        Ok(Ffn::Moe(Box::new(MoeWeights {
            router: self.matrix(&n("ffn_gate_inp.weight"), e, hidden)?,
            probs_bias,
            experts: DenseFfn {
                gate: self.experts(&n("ffn_gate_exps.weight"), e, ff, hidden)?,
                up: self.experts(&n("ffn_up_exps.weight"), e, ff, hidden)?,
                down: self.experts(&n("ffn_down_exps.weight"), e, hidden, ff)?,
            },
            shared,
        })))
    }

    /// A vector of `len` elements, dequantized to f32.
    /// Trailing dimensions of 1 are accepted (`[len, 1]`: ERNIE 4.5's `exp_probs_b`, kept
    /// 2-D by the converter as Hugging Face stores it).
    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
        let idx = self.find(name)?;
        let t = &self.file.tensors()[idx];
        let flat = t.dims.first() == Some(&(len as u64)) && t.dims[1..].iter().all(|&d| d == 1);
        if !flat {
            self.check_dims(idx, &[len as u64])?;
        }
        let unsupported = || ModelError::Unsupported(format!("tensor {name} has type {}", t.dtype));
        if !len.is_multiple_of(t.dtype.block_size()) {
            return Err(unsupported());
        }
        let dequantize = dequantize_fn(t.dtype).ok_or_else(unsupported)?;
        let mut out = vec![0f32; len];
        dequantize(self.file.tensor_data(t), &mut out);
        Ok(out)
    }

    pub(crate) fn norm(&self, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
        let mut w = self.vector(name, len)?;
        if self.norm_offset != 0.0 {
            for v in &mut w {
                *v += self.norm_offset;
            }
        }
        Ok(w)
    }

    fn layer(&self, c: &ModelConfig, i: usize) -> Result<LayerWeights, ModelError> {
        let n = |suffix: &str| format!("blk.{i}.{suffix}");
        // Biases the decoder does not add (ERNIE 4.5 with `use_bias`, some Llama variants):
        // refused rather than silently left out.
        for b in ["attn_output", "ffn_gate", "ffn_up", "ffn_down"] {
            let name = n(&format!("{b}.bias"));
            if self.file.tensor(&name).is_some() {
                return Err(ModelError::Unsupported(format!(
                    "{name}: a bias on the attention output or FFN projections"
                )));
            }
        }
        let (hidden, q_dim, kv_dim) = (c.hidden_size, c.q_dim(), c.kv_dim());
        let qkv_bias = if c.qkv_bias {
            Some([
                self.vector(&n("attn_q.bias"), q_dim)?,
                self.vector(&n("attn_k.bias"), kv_dim)?,
                self.vector(&n("attn_v.bias"), kv_dim)?,
            ])
        } else {
            None
        };
        let qk_norm = if c.qk_norm {
            Some([
                self.norm(&n("attn_q_norm.weight"), c.head_dim)?,
                self.norm(&n("attn_k_norm.weight"), c.head_dim)?,
            ])
        } else {
            None
        };
        let sandwich = if c.sandwich_norms {
            Some([
                self.norm(&n("post_attention_norm.weight"), hidden)?,
                self.norm(&n("post_ffw_norm.weight"), hidden)?,
            ])
        } else {
            None
        };
        let (attn, attn_out_dim) = match &c.mla {
            Some(m) => (
                AttnWeights::Mla(Box::new(MlaWeights::load(self, c, i)?)),
                c.num_heads * m.v_head_dim,
            ),
            None => (
                AttnWeights::Qkv {
                    wq: self.matrix(&n("attn_q.weight"), q_dim, hidden)?,
                    wk: self.matrix(&n("attn_k.weight"), kv_dim, hidden)?,
                    wv: self.matrix(&n("attn_v.weight"), kv_dim, hidden)?,
                },
                q_dim,
            ),
        };
        Ok(LayerWeights {
            attn_norm: self.norm(&n("attn_norm.weight"), hidden)?,
            attn,
            wo: self.matrix(&n("attn_output.weight"), hidden, attn_out_dim)?,
            qkv_bias,
            qk_norm,
            sandwich,
            ffn_norm: self.norm(&n(&format!("{}.weight", c.ffn_norm)), hidden)?,
            ffn: self.ffn(c, i)?,
        })
    }
}

impl Weights {
    /// Locates and checks every tensor `config` needs. Call
    /// [`GgufFile::check_supported`] first so unsupported types are reported by name.
    pub fn load(file: &GgufFile, c: &ModelConfig) -> Result<Weights, ModelError> {
        let l = Loader {
            file,
            norm_offset: c.norm_weight_offset,
        };
        let token_embd = l.matrix("token_embd.weight", c.vocab_size, c.hidden_size)?;
        let output = if c.tied_embeddings {
            token_embd
        } else {
            l.matrix("output.weight", c.vocab_size, c.hidden_size)?
        };
        let rope_freqs = if c.has_rope_freqs {
            Some(l.vector("rope_freqs.weight", c.n_rot / 2)?)
        } else {
            None
        };
        let layers = (0..c.num_layers)
            .map(|i| l.layer(c, i))
            .collect::<Result<_, _>>()?;
        Ok(Weights {
            token_embd,
            output_norm: l.norm("output_norm.weight", c.hidden_size)?,
            output,
            rope_freqs,
            layers,
        })
    }
}
