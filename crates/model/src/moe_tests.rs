//! `moe_ffn` on hand-made F32 weights against a direct f64 reference written here: sigmoid
//! router with score-correction bias, expert groups, normalized and scaled weights, a
//! shared expert, experts sliced out of 3-D tensors; one row (decode) and a batch whose
//! rows share experts (prefill grouping).

use super::*;
use kaiyuan_gguf::writer::GgufWriter;
use kaiyuan_kernels::DType;

const HIDDEN: usize = 32;
const EXPERTS: usize = 8;
const USED: usize = 3;
const FF: usize = 8;
const SHARED_FF: usize = 16;

struct Rng(u64);
impl Rng {
    fn f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.f32() * scale).collect()
    }
}

fn bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

struct Fixture {
    file: GgufFile,
    router: Vec<f32>,
    bias: Vec<f32>,
    /// Per expert: gate `[FF, HIDDEN]`, up `[FF, HIDDEN]`, down `[HIDDEN, FF]`.
    gate: Vec<f32>,
    up: Vec<f32>,
    down: Vec<f32>,
    shared: [Vec<f32>; 3],
}

fn fixture() -> Fixture {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let h = HIDDEN as u64;
    let (e, ff, sff) = (EXPERTS as u64, FF as u64, SHARED_FF as u64);
    let router = rng.vec(EXPERTS * HIDDEN, 0.5);
    let bias = rng.vec(EXPERTS, 0.1);
    let gate = rng.vec(EXPERTS * FF * HIDDEN, 0.3);
    let up = rng.vec(EXPERTS * FF * HIDDEN, 0.3);
    let down = rng.vec(EXPERTS * HIDDEN * FF, 0.3);
    let shared = [
        rng.vec(SHARED_FF * HIDDEN, 0.3),
        rng.vec(SHARED_FF * HIDDEN, 0.3),
        rng.vec(HIDDEN * SHARED_FF, 0.3),
    ];
    let mut w = GgufWriter::new();
    w.tensor("router", &[h, e], DType::F32, bytes(&router))
        .tensor("gate_exps", &[h, ff, e], DType::F32, bytes(&gate))
        .tensor("up_exps", &[h, ff, e], DType::F32, bytes(&up))
        .tensor("down_exps", &[ff, h, e], DType::F32, bytes(&down))
        .tensor("gate_shexp", &[h, sff], DType::F32, bytes(&shared[0]))
        .tensor("up_shexp", &[h, sff], DType::F32, bytes(&shared[1]))
        .tensor("down_shexp", &[sff, h], DType::F32, bytes(&shared[2]));
    let file = GgufFile::from_bytes(w.to_bytes()).unwrap();
    Fixture {
        file,
        router,
        bias,
        gate,
        up,
        down,
        shared,
    }
}

fn config() -> MoeConfig {
    MoeConfig {
        router: RouterConfig {
            experts: EXPERTS,
            used: USED,
            gating: Gating::Sigmoid,
            normalize: true,
            scale: 2.5,
            groups: 4,
            groups_used: 2,
        },
        expert_ffn_size: FF,
        leading_dense_layers: 0,
        layer_step: 1,
        shared_ffn_size: Some(SHARED_FF),
    }
}

/// Which layers are MoE layers, by Hugging Face ERNIE 4.5's rule written out by hand:
/// `(i + 1) % moe_layer_interval == 0 and i >= moe_layer_start_index`.
#[test]
fn moe_layers_follow_leading_dense_count_and_step() {
    let layers = |lead, step| {
        let c = MoeConfig {
            leading_dense_layers: lead,
            layer_step: step,
            ..config()
        };
        (0..6).map(|l| c.is_moe_layer(l)).collect::<Vec<_>>()
    };
    assert_eq!(layers(0, 1), [true; 6]);
    assert_eq!(layers(1, 1), [false, true, true, true, true, true]);
    assert_eq!(layers(1, 2), [false, true, false, true, false, true]);
    assert_eq!(layers(2, 2), [false, false, false, true, false, true]);
    assert_eq!(layers(0, 3), [false, false, true, false, false, true]);
}

/// `W·x` in f64 for a row-major `[rows, cols]` `w`.
fn mv(w: &[f32], x: &[f64]) -> Vec<f64> {
    w.chunks_exact(x.len())
        .map(|r| r.iter().zip(x).map(|(a, b)| f64::from(*a) * b).sum())
        .collect()
}

fn swiglu_ffn(g: &[f32], u: &[f32], d: &[f32], x: &[f64]) -> Vec<f64> {
    let (g, u) = (mv(g, x), mv(u, x));
    let a: Vec<f64> = g
        .iter()
        .zip(&u)
        .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
        .collect();
    mv(d, &a)
}

/// The reference MoE of one row.
fn reference(f: &Fixture, x: &[f32]) -> Vec<f64> {
    let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let scores: Vec<f64> = mv(&f.router, &x)
        .iter()
        .map(|l| 1.0 / (1.0 + (-l).exp()))
        .collect();
    let sel: Vec<f64> = scores
        .iter()
        .zip(&f.bias)
        .map(|(s, b)| s + f64::from(*b))
        .collect();
    // 4 groups of 2: a group's score is the sum of both members; keep the best 2 groups.
    let mut groups: Vec<(f64, usize)> = (0..4).map(|g| (sel[2 * g] + sel[2 * g + 1], g)).collect();
    groups.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap());
    let kept: Vec<usize> = groups[..2].iter().map(|g| g.1).collect();
    let mut cands: Vec<usize> = (0..EXPERTS).filter(|e| kept.contains(&(e / 2))).collect();
    cands.sort_by(|&a, &b| sel[b].partial_cmp(&sel[a]).unwrap());
    cands.truncate(USED);
    let total: f64 = cands.iter().map(|&e| scores[e]).sum();
    let mut out = swiglu_ffn(&f.shared[0], &f.shared[1], &f.shared[2], &x);
    for &e in &cands {
        let w = scores[e] / total * 2.5;
        let (gi, di) = (e * FF * HIDDEN, e * HIDDEN * FF);
        let y = swiglu_ffn(
            &f.gate[gi..gi + FF * HIDDEN],
            &f.up[gi..gi + FF * HIDDEN],
            &f.down[di..di + HIDDEN * FF],
            &x,
        );
        for (o, v) in out.iter_mut().zip(y) {
            *o += w * v;
        }
    }
    out
}

fn weights(f: &Fixture) -> MoeWeights {
    let m = |name, rows, cols| MatrixRef::for_test(&f.file, name, rows, cols);
    MoeWeights {
        router: m("router", EXPERTS, HIDDEN),
        probs_bias: Some(f.bias.clone()),
        experts: DenseFfn {
            gate: m("gate_exps", EXPERTS * FF, HIDDEN),
            up: m("up_exps", EXPERTS * FF, HIDDEN),
            down: m("down_exps", EXPERTS * HIDDEN, FF),
        },
        shared: Some(DenseFfn {
            gate: m("gate_shexp", SHARED_FF, HIDDEN),
            up: m("up_shexp", SHARED_FF, HIDDEN),
            down: m("down_shexp", HIDDEN, SHARED_FF),
        }),
    }
}

#[test]
fn moe_matches_the_direct_reference() {
    let f = fixture();
    let (cfg, w) = (config(), weights(&f));
    let pool = ThreadPool::new(2);
    let mut rng = Rng(42);
    let mut s = FfnScratch::default();
    let mut act = Vec::new();
    // 64 rows: about 24 per expert, so most experts run across the pool, some as tasks.
    for rows in [1usize, 9, 64] {
        let x = rng.vec(rows * HIDDEN, 1.0);
        let mut out = vec![0f32; rows * HIDDEN];
        moe_ffn(
            &pool,
            &f.file,
            &cfg,
            &w,
            Activation::Silu,
            &x,
            &mut out,
            &mut s,
            &mut act,
        );
        for r in 0..rows {
            let expected = reference(&f, &x[r * HIDDEN..(r + 1) * HIDDEN]);
            for (i, (a, b)) in out[r * HIDDEN..].iter().zip(&expected).enumerate() {
                assert!(
                    (f64::from(*a) - b).abs() < 1e-4 * b.abs().max(1.0),
                    "{rows} rows, row {r}, element {i}: {a} vs {b}"
                );
            }
        }
        // Each row alone gives the same bits as in the batch.
        for r in 0..rows {
            let mut one = vec![0f32; HIDDEN];
            let xr = &x[r * HIDDEN..(r + 1) * HIDDEN];
            moe_ffn(
                &pool,
                &f.file,
                &cfg,
                &w,
                Activation::Silu,
                xr,
                &mut one,
                &mut s,
                &mut act,
            );
            assert_eq!(one, &out[r * HIDDEN..(r + 1) * HIDDEN], "row {r} alone");
        }
    }
}
