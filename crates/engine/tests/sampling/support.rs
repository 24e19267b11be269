//! What the sampling tests share: an independent data generator, the reference
//! distributions computed from the published definitions in `f64`, and the frequency bounds.

use kaiyuan_engine::sampling::{LogitBias, Sampled, Sampler, SamplingParams, TokenHistory};

/// Test-only data generator (64-bit LCG, Knuth's MMIX constants), independent of the crate.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next_unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn logits(&mut self, n: usize, scale: f64) -> Vec<f32> {
        (0..n)
            .map(|_| ((self.next_unit() * 2.0 - 1.0) * scale) as f32)
            .collect()
    }
}

pub fn softmax_f64(logits: &[f32], temperature: f64) -> Vec<f64> {
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
pub fn ranked(logits: &[f32]) -> Vec<usize> {
    let mut ids: Vec<usize> = (0..logits.len()).collect();
    ids.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    ids
}

/// The expected distribution after temperature → top-k → top-p → min-p, straight from the
/// definitions, in f64. Also returns the smallest gap between a top-p cumulative sum and
/// the threshold, so tests can assert the case is not a rounding coin-flip.
pub fn reference_distribution(
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

pub fn sample_counts(params: SamplingParams, logits: &[f32], draws: usize) -> Vec<usize> {
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
pub fn binomial_violations(counts: &[usize], probs: &[f64]) -> Vec<String> {
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

pub fn assert_frequencies(counts: &[usize], probs: &[f64]) {
    let bad = binomial_violations(counts, probs);
    assert!(bad.is_empty(), "frequencies off: {bad:#?}");
}

/// Pearson's chi-square statistic over tokens of non-zero probability.
pub fn chi_square(counts: &[usize], probs: &[f64]) -> f64 {
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
pub const CHI2_DF5_ALPHA_1E6: f64 = 35.888;

/// One call with an empty history on a copy of `logits`.
pub fn once(sampler: &mut Sampler, logits: &[f32]) -> Sampled {
    sampler
        .sample(&mut logits.to_vec(), &TokenHistory::new())
        .expect("sample")
}

/// A valid `logit_bias`.
pub fn bias(pairs: &[(u32, f32)]) -> LogitBias {
    LogitBias::new(pairs.iter().copied()).expect("valid logit_bias")
}

pub fn params(temperature: f32, seed: u64) -> SamplingParams {
    SamplingParams {
        temperature,
        seed: Some(seed),
        ..SamplingParams::default()
    }
}
