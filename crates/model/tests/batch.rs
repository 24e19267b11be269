//! Batched forward: several sequences at different positions in one call give the same
//! logits as each run alone (bit-identical: every row is computed independently).

mod common;

use common::{golden, tiny};
use kaiyuan_kernels::threads::ThreadPool;
use kaiyuan_model::{BatchSeq, BlockId, KvCache, LogitsWanted, Model, Scratch, Session};

/// Logits of `tokens[start..]` (all rows) after `tokens[..start]`, run alone.
fn alone(model: &Model, pool: &ThreadPool, tokens: &[u32], start: usize) -> Vec<f32> {
    let mut s = Session::new(model, 64);
    if start > 0 {
        s.eval(pool, &tokens[..start], false).expect("history");
    }
    s.eval(pool, &tokens[start..], true).expect("new tokens")
}

fn check_batch(arch: &str) {
    let model = Model::open(tiny(&format!("{arch}.f32.gguf"))).expect("model opens");
    let pool = ThreadPool::new(2);
    let g = golden(arch);
    let t = &g.tokens;
    // Three sequences: (tokens, history length already cached).
    let a: Vec<u32> = t[..30].to_vec(); // 10 new after 20 cached: prefill chunk
    let b: Vec<u32> = t[5..12].to_vec(); // 7 fresh tokens
    let c: Vec<u32> = t[3..22].iter().rev().copied().collect(); // 1 decode token after 18
    let seqs = [(&a, 20usize), (&b, 0), (&c, 18)];

    // Interleaved, non-contiguous block tables in one pool.
    let mut kv = KvCache::new(model.config(), 12);
    let tables: [Vec<BlockId>; 3] = [
        vec![BlockId(7), BlockId(2)],
        vec![BlockId(5)],
        vec![BlockId(0), BlockId(9)],
    ];
    let mut scratch = Scratch::new();
    // Fill the histories (one batched call with no logits wanted).
    let history: Vec<BatchSeq> = seqs
        .iter()
        .zip(&tables)
        .filter(|((_, h), _)| *h > 0)
        .map(|((toks, h), table)| BatchSeq {
            tokens: &toks[..*h],
            start_pos: 0,
            block_table: table,
            want_logits: LogitsWanted::None,
        })
        .collect();
    let none = model
        .forward(&pool, &mut kv, &history, &mut scratch)
        .expect("history step");
    assert_eq!(none.num_rows(), 0);

    let step: Vec<BatchSeq> = seqs
        .iter()
        .zip(&tables)
        .map(|((toks, h), table)| BatchSeq {
            tokens: &toks[*h..],
            start_pos: *h,
            block_table: table,
            want_logits: LogitsWanted::All,
        })
        .collect();
    let logits = model
        .forward(&pool, &mut kv, &step, &mut scratch)
        .expect("batched step");
    for (i, (toks, h)) in seqs.iter().enumerate() {
        let expected = alone(&model, &pool, toks, *h);
        let got: Vec<f32> = logits.for_seq(i).flatten().copied().collect();
        assert_eq!(got.len(), expected.len(), "{arch} seq {i}: row count");
        assert!(
            got.iter()
                .zip(&expected)
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "{arch} seq {i}: batched logits differ from running alone"
        );
    }
}

#[test]
fn batched_equals_alone_llama() {
    check_batch("llama");
}

#[test]
fn batched_equals_alone_gemma3_sliding_window() {
    check_batch("gemma3");
}

/// Mixture of experts: the batch's rows are grouped by expert across sequences, yet each
/// row's logits are exactly those of its sequence run alone.
#[test]
fn batched_equals_alone_qwen3moe() {
    check_batch("qwen3moe");
}

/// ERNIE 4.5 MoE: a dense leading layer, the score-correction bias and shared experts.
#[test]
fn batched_equals_alone_ernie4_5_moe() {
    check_batch("ernie4_5-moe");
}

/// GLM-4's fused gate/up halves and Hunyuan's per-row Q/K norms after RoPE.
#[test]
fn batched_equals_alone_glm4_and_hunyuan_dense() {
    check_batch("glm4");
    check_batch("hunyuan-dense");
}

/// GLM-4-MoE (sigmoid routing with bias, shared expert, a file with a NextN block left out)
/// and Hunyuan-MoE (shared expert in every layer, Q/K norms after RoPE).
#[test]
fn batched_equals_alone_glm4moe_and_hunyuan_moe() {
    check_batch("glm4moe");
    check_batch("hunyuan-moe");
}

/// Multi-head latent attention over a keys-only cache in interleaved, non-contiguous
/// blocks (paging), with grouped expert routing: still each sequence's own logits.
#[test]
fn batched_equals_alone_deepseek2() {
    check_batch("deepseek2");
    check_batch("deepseek2v3");
}

#[test]
fn logits_only_for_rows_that_want_them() {
    let model = Model::open(tiny("qwen2.f32.gguf")).expect("model opens");
    let pool = ThreadPool::new(1);
    let mut kv = KvCache::new(model.config(), 4);
    let (t1, t2) = ([1u32, 2, 3], [4u32, 5]);
    let (tab1, tab2) = ([BlockId(0)], [BlockId(1)]);
    let seqs = [
        BatchSeq {
            tokens: &t1,
            start_pos: 0,
            block_table: &tab1,
            want_logits: LogitsWanted::Last,
        },
        BatchSeq {
            tokens: &t2,
            start_pos: 0,
            block_table: &tab2,
            want_logits: LogitsWanted::None,
        },
    ];
    let logits = model
        .forward(&pool, &mut kv, &seqs, &mut Scratch::new())
        .expect("forward");
    assert_eq!(logits.origins(), &[(0, 2)]);
    assert_eq!(logits.row(0).len(), model.config().vocab_size);
    let expected = alone(&model, &pool, &t1, 0);
    assert_eq!(logits.row(0), &expected[2 * model.config().vocab_size..]);
}

/// The tiny qwen3moe F32 file with expert `expert` of layer `layer` set to NaN.
fn poisoned_expert(layer: usize, expert: usize) -> Model {
    use kaiyuan_gguf::writer::GgufWriter;
    use kaiyuan_gguf::GgufFile;
    let src = GgufFile::open(tiny("qwen3moe.f32.gguf")).expect("fixture");
    let mut w = GgufWriter::new();
    for (k, v) in src.metadata() {
        w.kv(k.clone(), v.clone());
    }
    let target = format!("blk.{layer}.ffn_gate_exps.weight");
    for t in src.tensors() {
        let mut data = src.tensor_data(t).to_vec();
        if t.name == target {
            // GGML dims [hidden, ffn, experts]: expert e is the e-th run of hidden·ffn floats.
            let per = (t.dims[0] * t.dims[1]) as usize * 4;
            for b in data[expert * per..(expert + 1) * per].chunks_exact_mut(4) {
                b.copy_from_slice(&f32::NAN.to_le_bytes());
            }
        }
        w.tensor(t.name.clone(), &t.dims, t.dtype, data);
    }
    let file = GgufFile::from_bytes(w.to_bytes()).expect("rewritten file parses");
    Model::from_gguf(std::sync::Arc::new(file)).expect("model opens")
}

/// Decoding one token computes only the experts its router chose: poisoning any other
/// expert with NaN leaves the logits bit-identical (a dense evaluation weighting the unused
/// experts by zero would turn them into NaN), while poisoning a chosen one shows up.
#[test]
fn decode_reads_only_the_chosen_experts() {
    let pool = ThreadPool::new(1);
    let clean = Model::open(tiny("qwen3moe.f32.gguf")).expect("model opens");
    let token = [golden("qwen3moe").tokens[0]];
    let reference = Session::new(&clean, 16)
        .eval(&pool, &token, false)
        .expect("decode");
    let (layers, experts, used) = (2, 8, 2);
    for layer in 0..layers {
        let mut untouched = 0;
        for expert in 0..experts {
            let model = poisoned_expert(layer, expert);
            let logits = Session::new(&model, 16)
                .eval(&pool, &token, false)
                .expect("decode");
            if logits
                .iter()
                .zip(&reference)
                .all(|(a, b)| a.to_bits() == b.to_bits())
            {
                untouched += 1;
            } else {
                assert!(
                    logits.iter().all(|v| v.is_nan()),
                    "layer {layer} expert {expert}: changed without being NaN"
                );
            }
        }
        assert_eq!(untouched, experts - used, "layer {layer}");
    }
}
