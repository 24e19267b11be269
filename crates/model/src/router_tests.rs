//! Router tests: hand-worked cases, and random cases against a direct reference written
//! here independently of `route` (f64, full sorts, groups ranked by sorting each group).

use super::*;

fn cfg(experts: usize, used: usize, gating: Gating) -> RouterConfig {
    RouterConfig {
        experts,
        used,
        gating,
        normalize: false,
        scale: 1.0,
        groups: 1,
        groups_used: 1,
    }
}

fn run(c: &RouterConfig, logits: &[f32], bias: Option<&[f32]>) -> (Vec<u32>, Vec<f32>) {
    let mut e = vec![0u32; c.used];
    let mut w = vec![0f32; c.used];
    route(
        c,
        logits,
        bias,
        &mut RouteScratch::default(),
        &mut e,
        &mut w,
    );
    (e, w)
}

/// The reference: scores in f64, every expert sorted by (selection desc, index asc).
fn reference(c: &RouterConfig, logits: &[f32], bias: Option<&[f32]>) -> (Vec<u32>, Vec<f64>) {
    let l: Vec<f64> = logits.iter().map(|&x| f64::from(x)).collect();
    let scores: Vec<f64> = match c.gating {
        Gating::Softmax => {
            let m = l.iter().cloned().fold(f64::MIN, f64::max);
            let z: f64 = l.iter().map(|x| (x - m).exp()).sum();
            l.iter().map(|x| (x - m).exp() / z).collect()
        }
        Gating::Sigmoid => l.iter().map(|x| 1.0 / (1.0 + (-x).exp())).collect(),
    };
    let mut sel: Vec<f64> = scores.clone();
    if let Some(b) = bias {
        for (s, b) in sel.iter_mut().zip(b) {
            *s += f64::from(*b);
        }
    }
    let mut eligible = vec![true; c.experts];
    if c.groups > 1 {
        let per = c.experts / c.groups;
        let mut gs: Vec<(f64, usize)> = (0..c.groups)
            .map(|g| {
                let mut m: Vec<f64> = sel[g * per..(g + 1) * per].to_vec();
                m.sort_by(|a, b| b.partial_cmp(a).unwrap());
                (m[0] + m[1], g)
            })
            .collect();
        gs.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
        for &(_, g) in &gs[c.groups_used..] {
            eligible[g * per..(g + 1) * per].fill(false);
        }
    }
    let mut idx: Vec<usize> = (0..c.experts).filter(|&e| eligible[e]).collect();
    idx.sort_by(|&a, &b| sel[b].partial_cmp(&sel[a]).unwrap().then(a.cmp(&b)));
    idx.truncate(c.used);
    let mut w: Vec<f64> = idx.iter().map(|&e| scores[e]).collect();
    if c.normalize {
        let s: f64 = w.iter().sum();
        w.iter_mut().for_each(|x| *x /= s);
    }
    w.iter_mut().for_each(|x| *x *= f64::from(c.scale));
    (idx.iter().map(|&e| e as u32).collect(), w)
}

#[test]
fn softmax_top2_by_hand() {
    // softmax([0, ln 2, ln 3, ln 4]) = [1, 2, 3, 4] / 10.
    let l = [0.0, 2f32.ln(), 3f32.ln(), 4f32.ln()];
    let (e, w) = run(&cfg(4, 2, Gating::Softmax), &l, None);
    assert_eq!(e, [3, 2]);
    assert!(
        (w[0] - 0.4).abs() < 1e-6 && (w[1] - 0.3).abs() < 1e-6,
        "{w:?}"
    );
    // Normalized over the chosen two: 4/7, 3/7; then scaled by 2.5.
    let mut c = cfg(4, 2, Gating::Softmax);
    c.normalize = true;
    c.scale = 2.5;
    let (_, w) = run(&c, &l, None);
    assert!((w[0] - 2.5 * 4.0 / 7.0).abs() < 1e-6, "{w:?}");
    assert!((w[1] - 2.5 * 3.0 / 7.0).abs() < 1e-6, "{w:?}");
}

#[test]
fn ties_go_to_the_lower_index() {
    let (e, _) = run(
        &cfg(6, 3, Gating::Softmax),
        &[1.0, 2.0, 2.0, 0.0, 2.0, 1.0],
        None,
    );
    assert_eq!(e, [1, 2, 4]);
    let (e, _) = run(&cfg(4, 2, Gating::Sigmoid), &[0.5; 4], None);
    assert_eq!(e, [0, 1]);
}

#[test]
fn bias_chooses_but_does_not_weigh() {
    // sigmoid(0) = 0.5, sigmoid(1) ≈ 0.731; the bias lifts expert 0 above expert 1.
    let mut c = cfg(3, 1, Gating::Sigmoid);
    let (e, w) = run(&c, &[0.0, 1.0, -1.0], Some(&[0.5, 0.0, 0.0]));
    assert_eq!(e, [0]);
    assert!(
        (w[0] - 0.5).abs() < 1e-6,
        "weight is the unbiased score: {w:?}"
    );
    c.normalize = true;
    let (_, w) = run(&c, &[0.0, 1.0, -1.0], Some(&[0.5, 0.0, 0.0]));
    assert!((w[0] - 1.0).abs() < 1e-6, "{w:?}");
}

#[test]
fn groups_rank_by_their_two_best() {
    // Two groups of three. Group 0 has the single best expert (0.9) but its two best sum
    // to 0.9 + 0.1; group 1's two best sum to 0.6 + 0.6. With one group kept, group 1 wins.
    let mut c = cfg(6, 2, Gating::Sigmoid);
    c.groups = 2;
    c.groups_used = 1;
    let logit = |p: f32| (p / (1.0 - p)).ln();
    let l = [
        logit(0.9),
        logit(0.1),
        logit(0.05),
        logit(0.6),
        logit(0.6),
        logit(0.2),
    ];
    let (e, w) = run(&c, &l, None);
    assert_eq!(e, [3, 4]);
    assert!((w[0] - 0.6).abs() < 1e-5, "{w:?}");
    // Without grouping the best expert overall is chosen.
    let (e, _) = run(&cfg(6, 2, Gating::Sigmoid), &l, None);
    assert_eq!(e, [0, 3]);
}

/// xorshift, so the cases need no extra crate.
struct Rng(u64);
impl Rng {
    fn f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 * 8.0 - 4.0
    }
}

#[test]
fn random_cases_match_the_reference() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let shapes = [
        (8, 2, 1, 1),
        (16, 4, 4, 2),
        (64, 8, 8, 4),
        (60, 6, 1, 1),
        (32, 3, 8, 3),
    ];
    for case in 0..400 {
        let (n, used, groups, groups_used) = shapes[case % shapes.len()];
        let c = RouterConfig {
            experts: n,
            used,
            gating: if case % 2 == 0 {
                Gating::Softmax
            } else {
                Gating::Sigmoid
            },
            normalize: case % 3 != 0,
            scale: if case % 5 == 0 { 2.5 } else { 1.0 },
            groups,
            groups_used,
        };
        c.check().unwrap();
        let logits: Vec<f32> = (0..n).map(|_| rng.f32()).collect();
        let bias: Vec<f32> = (0..n).map(|_| rng.f32() * 0.05).collect();
        let bias = (case % 4 == 1).then_some(&bias[..]);
        let (e, w) = run(&c, &logits, bias);
        let (re, rw) = reference(&c, &logits, bias);
        assert_eq!(e, re, "case {case}: {c:?}");
        for (a, b) in w.iter().zip(&rw) {
            assert!(
                (f64::from(*a) - b).abs() < 1e-5 * b.abs().max(1.0),
                "case {case}: {w:?} vs {rw:?}"
            );
        }
    }
}

#[test]
fn bad_counts_are_refused() {
    let mut c = cfg(4, 5, Gating::Softmax);
    assert!(c
        .check()
        .unwrap_err()
        .contains("5 experts used per token out of 4"));
    c.used = 2;
    c.groups = 3;
    assert!(c.check().unwrap_err().contains("do not divide"));
    c.groups = 2;
    c.groups_used = 0;
    assert!(c.check().is_err());
    c.groups_used = 1;
    c.used = 3;
    assert!(c.check().unwrap_err().contains("fewer than the 3 used"));
}
