//! Properties of `kaiyuan_engine::sampling` checked against independent references: every
//! expected distribution, nucleus, min-p set and penalty is recomputed here in `f64` from
//! its published definition (never with the crate's own helpers); frequencies are checked
//! with principled bounds (per-token binomial 5σ, chi-square at α = 1e-6) under fixed seeds,
//! so the tests are deterministic; pinned token sequences come from
//! `tools/xoshiro_reference.py`.

use kaiyuan_engine::sampling::{
    LogitBias, LogprobsMode, Sampled, Sampler, SamplingError, SamplingParams, TokenHistory,
    MAX_LOGIT_BIAS,
};

// ---------------------------------------------------------------- test helpers

/// Test-only data generator (64-bit LCG, Knuth's MMIX constants), independent of the crate.
struct Lcg(u64);

impl Lcg {
    fn next_unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn logits(&mut self, n: usize, scale: f64) -> Vec<f32> {
        (0..n)
            .map(|_| ((self.next_unit() * 2.0 - 1.0) * scale) as f32)
            .collect()
    }
}

fn softmax_f64(logits: &[f32], temperature: f64) -> Vec<f64> {
    let max = logits
        .iter()
        .map(|&x| f64::from(x))
        .fold(f64::MIN, f64::max);
    let w: Vec<f64> = logits
        .iter()
        .map(|&x| ((f64::from(x) - max) / temperature).exp())
        .collect();
    let z: f64 = w.iter().sum();
    w.iter().map(|x| x / z).collect()
}

/// Token ids sorted by logit descending, ties by id.
fn ranked(logits: &[f32]) -> Vec<usize> {
    let mut ids: Vec<usize> = (0..logits.len()).collect();
    ids.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    ids
}

/// The expected distribution after temperature → top-k → top-p → min-p, straight from the
/// definitions, in f64. Also returns the smallest gap between a top-p cumulative sum and
/// the threshold, so tests can assert the case is not a rounding coin-flip.
fn reference_distribution(
    logits: &[f32],
    temperature: f64,
    top_k: usize,
    top_p: f64,
    min_p: f64,
) -> (Vec<f64>, f64) {
    let order = ranked(logits);
    let k = if top_k == 0 {
        logits.len()
    } else {
        top_k.min(logits.len())
    };
    let kept: Vec<usize> = order[..k].to_vec();
    let sub: Vec<f32> = kept.iter().map(|&i| logits[i]).collect();
    let p = softmax_f64(&sub, temperature);
    // top-p: shortest prefix with cumulative ≥ top_p.
    let mut cumulative = 0.0;
    let mut n_keep = p.len();
    let mut gap = f64::INFINITY;
    if top_p < 1.0 {
        for (i, &pi) in p.iter().enumerate() {
            cumulative += pi;
            gap = gap.min((cumulative - top_p).abs());
            if cumulative >= top_p {
                n_keep = i + 1;
                break;
            }
        }
    }
    // min-p relative to the most likely token (p[0]).
    let p_max = p[0];
    let mut out = vec![0.0; logits.len()];
    for (j, &i) in kept[..n_keep].iter().enumerate() {
        if p[j] >= min_p * p_max {
            out[i] = p[j];
        }
    }
    let z: f64 = out.iter().sum();
    out.iter_mut().for_each(|x| *x /= z);
    (out, gap)
}

fn sample_counts(params: SamplingParams, logits: &[f32], draws: usize) -> Vec<usize> {
    let mut sampler = Sampler::new(params, logits.len()).expect("valid params");
    let history = TokenHistory::new();
    let mut counts = vec![0usize; logits.len()];
    let mut buf = logits.to_vec();
    for _ in 0..draws {
        buf.copy_from_slice(logits);
        let s = sampler.sample(&mut buf, &history).expect("sample");
        counts[s.token as usize] += 1;
    }
    counts
}

/// Per-token binomial bound: |count − n·p| ≤ 5·sqrt(n·p·(1−p)) + 1 (two-sided 5σ, about
/// 6e-7 per token), and a token of probability 0 is never drawn.
fn binomial_violations(counts: &[usize], probs: &[f64]) -> Vec<String> {
    let n: usize = counts.iter().sum();
    let n = n as f64;
    let mut bad = Vec::new();
    for (i, (&c, &p)) in counts.iter().zip(probs).enumerate() {
        let expected = n * p;
        let bound = if p == 0.0 {
            0.0
        } else {
            5.0 * (n * p * (1.0 - p)).sqrt() + 1.0
        };
        if (c as f64 - expected).abs() > bound {
            bad.push(format!(
                "token {i}: count {c}, expected {expected:.1} ± {bound:.1}"
            ));
        }
    }
    bad
}

fn assert_frequencies(counts: &[usize], probs: &[f64]) {
    let bad = binomial_violations(counts, probs);
    assert!(bad.is_empty(), "frequencies off: {bad:#?}");
}

/// Pearson's chi-square statistic over tokens of non-zero probability.
fn chi_square(counts: &[usize], probs: &[f64]) -> f64 {
    let n: usize = counts.iter().sum();
    counts
        .iter()
        .zip(probs)
        .filter(|(_, &p)| p > 0.0)
        .map(|(&c, &p)| {
            let e = n as f64 * p;
            (c as f64 - e).powi(2) / e
        })
        .sum()
}

/// Chi-square quantile for 5 degrees of freedom at upper tail 1e-6, from the closed form
/// sf(x) = erfc(sqrt(x/2)) + sqrt(2x/π)·e^(−x/2)·(1 + x/3) solved by bisection (Python
/// `math.erfc`): 35.888.
const CHI2_DF5_ALPHA_1E6: f64 = 35.888;

/// One call with an empty history on a copy of `logits`.
fn once(sampler: &mut Sampler, logits: &[f32]) -> Sampled {
    sampler
        .sample(&mut logits.to_vec(), &TokenHistory::new())
        .expect("sample")
}

/// A valid `logit_bias`.
fn bias(pairs: &[(u32, f32)]) -> LogitBias {
    LogitBias::new(pairs.iter().copied()).expect("valid logit_bias")
}

fn params(temperature: f32, seed: u64) -> SamplingParams {
    SamplingParams {
        temperature,
        seed: Some(seed),
        ..SamplingParams::default()
    }
}

// ---------------------------------------------------------------- greedy

#[test]
fn greedy_is_argmax_with_lowest_id_on_ties() {
    let mut rng = Lcg(1);
    for round in 0..50 {
        let logits = rng.logits(1000, 10.0);
        let want = ranked(&logits)[0];
        let mut sampler = Sampler::new(SamplingParams::greedy(), logits.len()).expect("valid");
        let got = once(&mut sampler, &logits);
        assert_eq!(got.token as usize, want, "round {round}");
    }
    let mut sampler = Sampler::new(SamplingParams::greedy(), 5).expect("valid");
    let got = once(&mut sampler, &[1.0, 4.0, 2.0, 4.0, 4.0]);
    assert_eq!(got.token, 1);
}

// ---------------------------------------------------------------- temperature

#[test]
fn temperature_frequencies_match_softmax() {
    let logits = [1.0f32, 0.5, 2.0, -1.0, 0.0, 1.5];
    let draws = 20_000;
    for (seed, t) in [(11u64, 0.5f32), (12, 1.0), (13, 1.7)] {
        let counts = sample_counts(params(t, seed), &logits, draws);
        let want = softmax_f64(&logits, f64::from(t));
        assert_frequencies(&counts, &want);
        let chi2 = chi_square(&counts, &want);
        assert!(
            chi2 < CHI2_DF5_ALPHA_1E6,
            "T={t}: chi-square {chi2:.1} ≥ {CHI2_DF5_ALPHA_1E6}"
        );
        // Power check: the same counts are clearly incompatible with a neighbouring
        // temperature, so the bounds above are tight enough to catch a wrong T.
        let wrong = softmax_f64(&logits, f64::from(t) * 1.3);
        assert!(chi_square(&counts, &wrong) > CHI2_DF5_ALPHA_1E6, "T={t}");
    }
}

// ---------------------------------------------------------------- truncation

#[test]
fn top_k_returns_only_the_k_best_with_renormalised_frequencies() {
    let mut rng = Lcg(2);
    let logits = rng.logits(60, 4.0);
    let k = 5;
    let best: Vec<usize> = ranked(&logits)[..k].to_vec();
    let p = SamplingParams {
        top_k: k,
        ..params(0.5, 21)
    };
    let counts = sample_counts(p, &logits, 20_000);
    for (id, &c) in counts.iter().enumerate() {
        if c > 0 {
            assert!(best.contains(&id), "token {id} is not in the top {k}");
        }
    }
    let (want, _) = reference_distribution(&logits, 0.5, k, 1.0, 0.0);
    assert_frequencies(&counts, &want);
    // Power check: temperature matters inside the top k.
    let (at_t1, _) = reference_distribution(&logits, 1.0, k, 1.0, 0.0);
    assert!(!binomial_violations(&counts, &at_t1).is_empty());
}

#[test]
fn top_p_returns_only_the_nucleus_with_renormalised_frequencies() {
    let mut rng = Lcg(3);
    for (case, (t, top_p)) in [(1.0f32, 0.8f32), (0.6, 0.5), (1.3, 0.95)]
        .into_iter()
        .enumerate()
    {
        let logits = rng.logits(500, 6.0);
        let (want, gap) = reference_distribution(&logits, f64::from(t), 0, f64::from(top_p), 0.0);
        assert!(
            gap > 1e-5,
            "case {case}: nucleus boundary too close to call"
        );
        let nucleus = want.iter().filter(|&&p| p > 0.0).count();
        assert!(nucleus > 1 && nucleus < 500, "case {case}: trivial nucleus");
        let p = SamplingParams {
            top_p,
            ..params(t, 30 + case as u64)
        };
        let counts = sample_counts(p, &logits, 20_000);
        assert_frequencies(&counts, &want);
    }
}

#[test]
fn top_p_nucleus_larger_than_a_first_chunk() {
    // A flat distribution over 4096 tokens: the nucleus needs thousands of tokens, so the
    // incremental partial sort must grow several times.
    let mut rng = Lcg(4);
    let logits = rng.logits(4096, 0.5);
    let (want, gap) = reference_distribution(&logits, 1.0, 0, 0.7, 0.0);
    assert!(gap > 1e-7);
    let p = SamplingParams {
        top_p: 0.7,
        ..params(1.0, 41)
    };
    let counts = sample_counts(p, &logits, 5_000);
    for (id, &c) in counts.iter().enumerate() {
        assert!(c == 0 || want[id] > 0.0, "token {id} outside the nucleus");
    }
    assert!(want.iter().filter(|&&p| p > 0.0).count() > 1000);
}

#[test]
fn min_p_keeps_tokens_above_the_relative_threshold() {
    let mut rng = Lcg(5);
    let logits = rng.logits(300, 5.0);
    let (want, _) = reference_distribution(&logits, 0.9, 0, 1.0, 0.05);
    let kept = want.iter().filter(|&&p| p > 0.0).count();
    assert!(kept > 1 && kept < 300);
    let p = SamplingParams {
        min_p: 0.05,
        ..params(0.9, 51)
    };
    let counts = sample_counts(p, &logits, 20_000);
    assert_frequencies(&counts, &want);
}

#[test]
fn top_k_then_top_p_then_min_p_compose_in_order() {
    // 10 "head" tokens with logits 5 − 0.3·i and 90 flat "tail" tokens at 1.0, scattered
    // over the ids by i ↦ 37·i mod 100. With k = 20 the tail contributes only its 10
    // lowest ids, which changes top-p's renormalisation: top-k binds through top-p.
    let mut logits = vec![0.0f32; 100];
    for i in 0..100 {
        logits[(37 * i) % 100] = if i < 10 { 5.0 - 0.3 * i as f32 } else { 1.0 };
    }
    // (top_p, min_p, the stage that must bind): A — min-p cuts more than top-p;
    // B — top-p cuts more than min-p.
    for (case, (top_p, min_p)) in [(0.9f32, 0.15f32), (0.8, 0.05)].into_iter().enumerate() {
        let (tp, mp) = (f64::from(top_p), f64::from(min_p));
        let (want, gap) = reference_distribution(&logits, 1.0, 20, tp, mp);
        assert!(gap > 1e-3, "case {case}");
        let p = SamplingParams {
            top_k: 20,
            top_p,
            min_p,
            ..params(1.0, 61 + case as u64)
        };
        let counts = sample_counts(p, &logits, 20_000);
        assert_frequencies(&counts, &want);
        // The stages bind: dropping top-k, or the tighter of top-p / min-p, changes the
        // expected distribution.
        let without_k = reference_distribution(&logits, 1.0, 0, tp, mp).0;
        let without_tighter = if case == 0 {
            reference_distribution(&logits, 1.0, 20, tp, 0.0).0
        } else {
            reference_distribution(&logits, 1.0, 20, 1.0, mp).0
        };
        assert!(
            without_tighter != want,
            "case {case}: truncation does not bind"
        );
        if case == 1 {
            assert!(without_k != want, "top-k does not bind");
        }
    }
}

// ---------------------------------------------------------------- penalties

/// Runs the greedy sampler once and returns the processed logits it leaves behind.
fn processed(p: SamplingParams, logits: &[f32], history: &TokenHistory) -> Vec<f32> {
    let mut sampler = Sampler::new(p, logits.len()).expect("valid");
    let mut buf = logits.to_vec();
    sampler.sample(&mut buf, history).expect("sample");
    buf
}

#[test]
fn repetition_penalty_follows_ctrl_over_the_window() {
    let logits = [2.0f32, -1.5, 0.8, -0.3, 3.0, 1.0];
    let mut history = TokenHistory::new().with_repetition_window(4);
    history.push_prompt(&[4, 0]);
    for t in [1, 1, 3] {
        history.push(t);
    }
    // Window = last 4 = [0, 1, 1, 3]; token 4 slid out; 1 counts once.
    let penalty = 1.3f64;
    let p = SamplingParams {
        repetition_penalty: penalty as f32,
        ..SamplingParams::greedy()
    };
    let got = processed(p, &logits, &history);
    for (id, (&x, &g)) in logits.iter().zip(&got).enumerate() {
        let x = f64::from(x);
        let want = if [0, 1, 3].contains(&id) {
            if x > 0.0 {
                x / penalty
            } else {
                x * penalty
            }
        } else {
            x
        };
        assert!(
            (f64::from(g) - want).abs() < 1e-6,
            "token {id}: {g} vs {want}"
        );
    }
}

#[test]
fn presence_and_frequency_follow_openai_formula() {
    let logits = [2.0f32, -1.5, 0.8, -0.3, 3.0, 1.0];
    let mut history = TokenHistory::new();
    history.push_prompt(&[5, 5, 5]); // not counted by default
    for t in [2, 2, 2, 0, 4, 2] {
        history.push(t);
    }
    let counts = [1.0f64, 0.0, 4.0, 0.0, 1.0, 0.0];
    let (presence, frequency) = (0.7f64, -0.4f64);
    let p = SamplingParams {
        presence_penalty: presence as f32,
        frequency_penalty: frequency as f32,
        ..SamplingParams::greedy()
    };
    let got = processed(p.clone(), &logits, &history);
    for id in 0..6 {
        let c = counts[id];
        let want = f64::from(logits[id]) - c * frequency - if c > 0.0 { presence } else { 0.0 };
        assert!((f64::from(got[id]) - want).abs() < 1e-5, "token {id}");
    }
    // With prompt counting on, token 5 (three prompt occurrences) is penalised too.
    let mut with_prompt = TokenHistory::new().with_prompt_counts(true);
    with_prompt.push_prompt(&[5, 5, 5]);
    let got = processed(p, &logits, &with_prompt);
    let want = f64::from(logits[5]) - 3.0 * frequency - presence;
    assert!((f64::from(got[5]) - want).abs() < 1e-5);
}

#[test]
fn penalties_apply_after_bias_and_repetition_before_presence() {
    // Token 0: logit 1.0, bias −3 → −2.0; repetition 2 multiplies (negative) → −4.0;
    // frequency 0.5 × 1 → −4.5. Any other order gives a different number.
    let mut history = TokenHistory::new();
    history.push(0);
    let p = SamplingParams {
        logit_bias: bias(&[(0, -3.0)]),
        repetition_penalty: 2.0,
        frequency_penalty: 0.5,
        ..SamplingParams::greedy()
    };
    let got = processed(p, &[1.0, 0.0], &history);
    assert_eq!(got[0], -4.5);
}

// ---------------------------------------------------------------- logit bias

#[test]
fn logit_bias_minus_100_bans_and_plus_100_forces() {
    let logits = [0.0f32, 25.0, 1.0, -30.0];
    // Ban the overwhelming favourite: greedy takes the runner-up, sampling never picks it.
    let ban = SamplingParams {
        logit_bias: bias(&[(1, -100.0)]),
        ..params(2.0, 71)
    };
    let counts = sample_counts(ban.clone(), &logits, 2000);
    assert_eq!(counts[1], 0);
    assert!(counts[0] > 0 && counts[2] > 0);
    let greedy_ban = SamplingParams {
        temperature: 0.0,
        ..ban
    };
    assert_eq!(sample_counts(greedy_ban, &logits, 1)[2], 1);
    // Force the least likely token: it is always chosen.
    let force = SamplingParams {
        logit_bias: bias(&[(3, 100.0)]),
        ..params(1.0, 72)
    };
    assert_eq!(sample_counts(force, &logits, 500)[3], 500);
    // Two forced tokens share the probability by their own logits.
    let two = SamplingParams {
        logit_bias: bias(&[(3, 100.0), (0, 100.0)]),
        ..params(1.0, 73)
    };
    let counts = sample_counts(two, &logits, 20_000);
    let pair = softmax_f64(&[0.0, -30.0 + 0.5], 1.0);
    assert_frequencies(&counts, &[pair[0], 0.0, 0.0, pair[1]]);
}

#[test]
fn small_logit_bias_is_additive() {
    let logits = [0.3f32, -0.2, 1.1];
    let p = SamplingParams {
        logit_bias: bias(&[(1, 2.5), (2, -0.75)]),
        ..params(1.0, 81)
    };
    let counts = sample_counts(p, &logits, 20_000);
    let want = softmax_f64(&[0.3, 2.3, 0.35], 1.0);
    assert_frequencies(&counts, &want);
}

// ---------------------------------------------------------------- reproducibility

fn sequence(p: SamplingParams, logits: &[f32], n: usize) -> (u64, Vec<u32>) {
    let mut sampler = Sampler::new(p, logits.len()).expect("valid");
    let mut history = TokenHistory::new();
    let mut out = Vec::new();
    for _ in 0..n {
        let mut buf = logits.to_vec();
        let s = sampler.sample(&mut buf, &history).expect("sample");
        history.push(s.token);
        out.push(s.token);
    }
    (sampler.seed(), out)
}

#[test]
fn same_seed_same_tokens_different_seed_different_tokens() {
    let mut rng = Lcg(9);
    let logits = rng.logits(5000, 3.0);
    let p = SamplingParams {
        top_p: 0.95,
        frequency_penalty: 0.3,
        ..params(1.0, 123)
    };
    let (_, a) = sequence(p.clone(), &logits, 200);
    let (_, b) = sequence(p.clone(), &logits, 200);
    assert_eq!(a, b);
    let (_, c) = sequence(
        SamplingParams {
            seed: Some(124),
            ..p.clone()
        },
        &logits,
        200,
    );
    assert_ne!(a, c);
    // Unseeded samplers report the seed they drew; replaying it gives the same tokens.
    let unseeded = SamplingParams { seed: None, ..p };
    let (seed, d) = sequence(unseeded.clone(), &logits, 50);
    let (_, e) = sequence(
        SamplingParams {
            seed: Some(seed),
            ..unseeded
        },
        &logits,
        50,
    );
    assert_eq!(d, e);
}

#[test]
fn seeded_draws_are_pinned_forever() {
    // Expected: `python3 tools/xoshiro_reference.py` (draw_sequence, smallest gap 0.0103).
    let logits = [0.5f32, -1.0, 2.0, 1.25, 0.0, -0.5];
    let mut sampler = Sampler::new(params(0.8, 2024), 6).expect("valid");
    let got: Vec<u32> = (0..24).map(|_| once(&mut sampler, &logits).token).collect();
    assert_eq!(
        got,
        [0, 3, 0, 2, 3, 2, 2, 2, 2, 0, 3, 4, 3, 2, 3, 2, 0, 2, 3, 2, 2, 2, 2, 2]
    );
}

#[test]
fn seeded_truncated_draws_are_pinned_forever() {
    // Expected: `python3 tools/xoshiro_reference.py` (draw_sequence; its smallest gaps
    // between a draw and a cumulative boundary are ≥ 0.005, and the top-p boundaries sit
    // ≥ 0.004 away from the threshold, far above f32 rounding).
    let logits: Vec<f32> = (0..64)
        .map(|i| ((1.7 * f64::from(i)).sin() * 3.0) as f32)
        .collect();
    let cases: [(u64, usize, f32, f32, [u32; 16]); 3] = [
        (
            7,
            0,
            0.8,
            0.0,
            [45, 16, 53, 60, 60, 53, 1, 5, 23, 8, 34, 45, 60, 56, 27, 34],
        ),
        (
            8,
            10,
            0.9,
            0.1,
            [27, 38, 38, 45, 1, 49, 1, 38, 45, 27, 27, 23, 49, 34, 27, 45],
        ),
        (
            9,
            0,
            1.0,
            0.2,
            [1, 16, 8, 45, 56, 45, 42, 31, 8, 27, 45, 60, 12, 45, 60, 60],
        ),
    ];
    for (seed, top_k, top_p, min_p, want) in cases {
        let p = SamplingParams {
            top_k,
            top_p,
            min_p,
            ..params(0.9, seed)
        };
        let mut sampler = Sampler::new(p, logits.len()).expect("valid");
        let got: Vec<u32> = (0..16).map(|_| once(&mut sampler, &logits).token).collect();
        assert_eq!(got, want, "seed {seed}");
    }
}

// ---------------------------------------------------------------- validation

#[test]
fn validation_errors_name_the_field() {
    type Edit = fn(&mut SamplingParams);
    let cases: [(&str, Edit); 12] = [
        ("temperature", |p| p.temperature = 2.5),
        ("temperature", |p| p.temperature = -0.1),
        ("temperature", |p| p.temperature = f32::NAN),
        ("top_p", |p| p.top_p = 0.0),
        ("top_p", |p| p.top_p = 1.01),
        ("min_p", |p| p.min_p = -0.01),
        ("min_p", |p| p.min_p = 1.5),
        ("repetition_penalty", |p| p.repetition_penalty = 0.0),
        ("repetition_penalty", |p| {
            p.repetition_penalty = f32::INFINITY
        }),
        ("presence_penalty", |p| p.presence_penalty = 2.1),
        ("frequency_penalty", |p| p.frequency_penalty = -2.5),
        ("logprobs", |p| p.logprobs = Some(21)),
    ];
    for (field, edit) in cases {
        let mut p = SamplingParams::default();
        edit(&mut p);
        let err = p.validate().expect_err(field);
        assert_eq!(err.field, field, "{p:?}");
        assert!(err.to_string().contains(field), "{err}");
        match Sampler::new(p, 10) {
            Err(SamplingError::InvalidParams(e)) => assert_eq!(e.field, field),
            other => panic!("{field}: expected InvalidParams, got {other:?}"),
        }
    }
    // logit_bias is checked when it is built, once, and names its field.
    for bad in [
        vec![(1, 100.5)],
        vec![(1, f32::NAN)],
        vec![(1, 1.0), (1, 2.0)],
        (0..=MAX_LOGIT_BIAS as u32).map(|t| (t, 1.0)).collect(),
    ] {
        let err = LogitBias::new(bad.iter().copied()).expect_err("invalid logit_bias");
        assert_eq!(err.field, "logit_bias");
        assert!(err.to_string().contains("logit_bias"), "{err}");
    }
    let base = SamplingParams::default;
    // Checks that need the vocabulary.
    let out_of_vocab = SamplingParams {
        logit_bias: bias(&[(10, 1.0)]),
        ..base()
    };
    assert_eq!(out_of_vocab.validate(), Ok(()));
    match Sampler::new(out_of_vocab, 10) {
        Err(SamplingError::InvalidParams(e)) => assert_eq!(e.field, "logit_bias"),
        other => panic!("expected InvalidParams, got {other:?}"),
    }
    assert!(matches!(
        Sampler::new(base(), 0),
        Err(SamplingError::InvalidParams(e)) if e.field == "vocab_size"
    ));
}

// ---------------------------------------------------------------- NaN / inf

#[test]
fn nan_and_infinite_logits_do_not_panic() {
    let h = TokenHistory::new();
    for p in [SamplingParams::greedy(), params(1.0, 91)] {
        let with_logprobs = SamplingParams {
            logprobs: Some(3),
            ..p.clone()
        };
        // NaN counts as −∞: never chosen, even where it sits at the "max".
        let mut s = Sampler::new(with_logprobs.clone(), 4).expect("valid");
        for _ in 0..200 {
            let r = once(&mut s, &[f32::NAN, 0.0, 0.5, f32::NAN]);
            assert!(r.token == 1 || r.token == 2);
            assert!(r.logprob.is_some_and(|l| l.is_finite()));
            assert!(r
                .top
                .iter()
                .all(|&(id, l)| (id == 1 || id == 2) && l.is_finite()));
        }
        // +∞ tokens share all the probability.
        for _ in 0..200 {
            let r = once(&mut s, &[1e30, f32::INFINITY, 0.0, f32::INFINITY]);
            assert!(r.token == 1 || r.token == 3);
            let lp = r.logprob.expect("asked for logprobs");
            assert!((f64::from(lp) - 0.5f64.ln()).abs() < 1e-6);
        }
        // Nothing left: an error, not a panic.
        let mut s = Sampler::new(p.clone(), 3).expect("valid");
        assert_eq!(
            s.sample(&mut [f32::NAN; 3], &h),
            Err(SamplingError::NoCandidate)
        );
        assert_eq!(
            s.sample(&mut [f32::NEG_INFINITY; 3], &h),
            Err(SamplingError::NoCandidate)
        );
        let ban_all = SamplingParams {
            logit_bias: bias(&[(0, -100.0), (1, -100.0), (2, -100.0)]),
            ..p
        };
        let mut s = Sampler::new(ban_all, 3).expect("valid");
        assert_eq!(
            s.sample(&mut [0.0, 1.0, 2.0], &h),
            Err(SamplingError::NoCandidate)
        );
    }
    // Both infinities at once with a tiny temperature and huge finite logits.
    let mut s = Sampler::new(params(0.01, 92), 3).expect("valid");
    let r = once(&mut s, &[f32::MAX, -f32::MAX, f32::NEG_INFINITY]);
    assert_eq!(r.token, 0);
}

// ---------------------------------------------------------------- logprobs

#[test]
fn logprobs_raw_and_processed() {
    let logits = [1.0f32, 3.0, -2.0, 2.5, 0.0];
    let bias = bias(&[(1, -100.0), (4, 1.5)]);
    let log_softmax = |v: &[f64]| -> Vec<f64> {
        let m = v.iter().cloned().fold(f64::MIN, f64::max);
        let lse = m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
        v.iter().map(|x| x - lse).collect()
    };
    // Raw: the model's distribution, bias ignored.
    let raw = SamplingParams {
        logit_bias: bias.clone(),
        logprobs: Some(3),
        ..SamplingParams::greedy()
    };
    let mut s = Sampler::new(raw.clone(), 5).expect("valid");
    let r = once(&mut s, &logits);
    let want = log_softmax(&[1.0, 3.0, -2.0, 2.5, 0.0]);
    assert_eq!(r.token, 3, "token 1 is banned");
    assert!((f64::from(r.logprob.expect("asked")) - want[3]).abs() < 1e-6);
    let ids: Vec<u32> = r.top.iter().map(|&(id, _)| id).collect();
    assert_eq!(ids, [1, 3, 0]);
    for &(id, lp) in &r.top {
        assert!((f64::from(lp) - want[id as usize]).abs() < 1e-6);
    }
    // Processed: after bias (token 1 gone, token 4 raised to 1.5).
    let processed = SamplingParams {
        logprobs_mode: LogprobsMode::Processed,
        ..raw
    };
    let mut s = Sampler::new(processed, 5).expect("valid");
    let r = once(&mut s, &logits);
    let kept = [1.0f64, -2.0, 2.5, 1.5];
    let lp = log_softmax(&kept);
    let want = [lp[0], f64::NEG_INFINITY, lp[1], lp[2], lp[3]];
    assert!((f64::from(r.logprob.expect("asked")) - want[3]).abs() < 1e-6);
    let ids: Vec<u32> = r.top.iter().map(|&(id, _)| id).collect();
    assert_eq!(ids, [3, 4, 0]);
    for &(id, lp) in &r.top {
        assert!((f64::from(lp) - want[id as usize]).abs() < 1e-6);
    }
    // Not asked: nothing reported.
    let mut s = Sampler::new(SamplingParams::greedy(), 5).expect("valid");
    let r = once(&mut s, &logits);
    assert_eq!((r.logprob, r.top.len()), (None, 0));
}

// ---------------------------------------------------------------- large vocabulary

#[test]
fn vocab_262144_works() {
    const V: usize = 262_144;
    let mut rng = Lcg(10);
    let logits = rng.logits(V, 12.0);
    let order = ranked(&logits);

    let mut greedy = Sampler::new(
        SamplingParams {
            logprobs: Some(5),
            ..SamplingParams::greedy()
        },
        V,
    )
    .expect("valid");
    let r = once(&mut greedy, &logits);
    assert_eq!(r.token as usize, order[0]);
    let top_ids: Vec<usize> = r.top.iter().map(|&(id, _)| id as usize).collect();
    assert_eq!(top_ids, order[..5]);
    let m = f64::from(logits[order[0]]);
    let lse = m + logits
        .iter()
        .map(|&x| (f64::from(x) - m).exp())
        .sum::<f64>()
        .ln();
    assert!((f64::from(r.logprob.expect("asked")) - (m - lse)).abs() < 1e-4);

    let top_k = SamplingParams {
        top_k: 40,
        ..params(1.0, 101)
    };
    let counts = sample_counts(top_k, &logits, 300);
    for (id, &c) in counts.iter().enumerate() {
        assert!(
            c == 0 || order[..40].contains(&id),
            "token {id} not in top 40"
        );
    }

    // Here min-p (tokens within ln 10 of the max) binds before top-p; the f64 reference
    // and the sampler can only disagree on a token at the boundary, whose probability is
    // below 1e-4 per draw.
    let (want, _) = reference_distribution(&logits, 1.0, 0, 0.9, 0.1);
    let nucleus = SamplingParams {
        top_p: 0.9,
        min_p: 0.1,
        ..params(1.0, 102)
    };
    let counts = sample_counts(nucleus, &logits, 300);
    for (id, &c) in counts.iter().enumerate() {
        assert!(c == 0 || want[id] > 0.0, "token {id} outside top-p/min-p");
    }

    // Plain sampling over the whole vocabulary.
    let counts = sample_counts(params(1.0, 103), &logits, 50);
    assert_eq!(counts.iter().sum::<usize>(), 50);
}
