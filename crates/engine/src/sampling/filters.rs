//! Turning processed logits into a token: greedy [`argmax`], or [`draw`] — temperature,
//! top-k, top-p, min-p, then one inverse-CDF draw.
//!
//! Definitions (p = softmax(logits / T) over the tokens still in play at that stage):
//! - top-k: the k highest logits (invariant under T).
//! - top-p (nucleus, Holtzman et al. 2020): sorting by probability, the shortest prefix whose
//!   probability sum is ≥ top_p (renormalised over the top-k set) — at least one token.
//! - min-p (Nguyen et al. 2024): tokens with p ≥ min_p · p_max.
//!
//! Every token's unnormalised probability is its weight `exp((logit − max) / T)` (the most
//! likely token weighs exactly 1, so min-p is simply `weight ≥ min_p`).
//!
//! Two paths, both without a full sort of the vocabulary:
//! - **top-k set** (0 < k < vocabulary): a histogram of `max − logit` (buckets as below)
//!   finds the bucket holding the k-th best, only tokens up to it become candidates, partial
//!   selection (`select_nth_unstable_by`) keeps the k best and sorts them (k log k); top-p
//!   and min-p cut that list; the draw walks it best-first.
//! - **no top-k**: weights for the whole vocabulary in one vectorisable pass. Top-p uses a
//!   histogram: tokens are bucketed by `(max − logit) / T` in steps of 1/32 nat (a bucket
//!   index never decreases as the logit decreases), bucket weight sums locate the bucket
//!   where the cumulative sum crosses `top_p · Z`, and only that bucket is sorted. Tokens
//!   outside the nucleus or below min-p get weight 0; the draw walks the weights in id order.
//!
//! Determinism: candidates are ordered by (logit descending, id ascending), a total order,
//! so selections and sorts give one result whatever std's algorithms do; weights come from
//! the portable [`math::exp`]; sums are `f64` in a fixed order.

use std::cmp::Ordering;

use super::math;
use super::rng::Xoshiro256StarStar;

/// A token still in play, with its weight `exp((logit − max) / T)`.
#[derive(Clone, Copy, Debug)]
pub struct Candidate {
    pub id: u32,
    pub logit: f32,
    pub weight: f32,
}

/// Logit descending, then id ascending. Logits are never NaN here (sanitized).
fn by_logit_desc(a: &Candidate, b: &Candidate) -> Ordering {
    b.logit
        .partial_cmp(&a.logit)
        .unwrap_or(Ordering::Equal)
        .then(a.id.cmp(&b.id))
}

/// The id of the highest logit, the lowest id among equals; `None` if every logit is −∞.
pub fn argmax(logits: &[f32]) -> Option<u32> {
    let max = math::max(logits);
    if max == f32::NEG_INFINITY {
        return None;
    }
    logits.iter().position(|&x| x == max).map(|i| i as u32)
}

/// The truncation settings of one request.
#[derive(Clone, Copy, Debug)]
pub struct Truncation {
    /// > 0 (temperature 0 takes [`argmax`] instead).
    pub temperature: f32,
    pub top_k: usize,
    pub top_p: f32,
    pub min_p: f32,
}

/// Buckets per nat of `(max − logit) / T` in the top-p histogram, and their number (the
/// last one collects every token more than 64 nats — a factor e^-64 — below the max).
const BUCKETS_PER_NAT: f32 = 32.0;
const BUCKETS: usize = 2048;

/// Buffers reused across calls (vocabulary-sized after the first call that needs them).
#[derive(Clone, Debug, Default)]
pub struct Workspace {
    candidates: Vec<Candidate>,
    weights: Vec<f32>,
    bucket_sums: Vec<f64>,
    bucket_counts: Vec<u32>,
    /// Each token's histogram bucket, computed once per call.
    bucket_of: Vec<u16>,
}

impl Workspace {
    /// A vocabulary-sized `f32` buffer for other passes of the same call, once the draw
    /// is done with it (its contents are unspecified).
    pub fn scratch(&mut self) -> &mut Vec<f32> {
        &mut self.weights
    }
}

/// Applies temperature, top-k, top-p and min-p to `logits` and draws one token with one
/// [`Xoshiro256StarStar::next_f64`]. `None` (and no draw) if every logit is −∞.
pub fn draw(
    logits: &[f32],
    t: Truncation,
    ws: &mut Workspace,
    rng: &mut Xoshiro256StarStar,
) -> Option<u32> {
    if t.top_k > 0 && t.top_k < logits.len() {
        let total = truncate_top_k(logits, t, ws)?;
        let target = rng.next_f64() * total;
        let picked = walk(ws.candidates.iter().map(|c| c.weight), target);
        Some(ws.candidates[picked].id)
    } else {
        let total = truncate_full(logits, t, ws)?;
        let target = rng.next_f64() * total;
        Some(walk(ws.weights.iter().copied(), target) as u32)
    }
}

/// Inverse CDF: the index of the first weight at which the running `f64` sum exceeds
/// `target`; a rounding shortfall falls back to the last non-zero weight.
fn walk(weights: impl Iterator<Item = f32>, target: f64) -> usize {
    let mut cumulative = 0.0f64;
    let mut last_nonzero = 0;
    for (i, w) in weights.enumerate() {
        if w > 0.0 {
            last_nonzero = i;
        }
        cumulative += f64::from(w);
        if cumulative > target {
            return i;
        }
    }
    last_nonzero
}

/// The top-k path: fills `candidates` with the survivors, best first, and returns the sum
/// of their weights (≥ 1). `None` if every logit is −∞.
fn truncate_top_k(logits: &[f32], t: Truncation, ws: &mut Workspace) -> Option<f64> {
    let max = math::max(logits);
    if max == f32::NEG_INFINITY {
        return None;
    }
    let Workspace {
        candidates,
        bucket_counts: counts,
        bucket_of,
        ..
    } = ws;
    candidates.clear();
    // Histogram prefilter: count tokens per bucket of (max − logit) and keep only the
    // buckets up to the one where the count reaches k, so selection runs on a few tokens
    // instead of the whole vocabulary. Bucket order agrees with logit order.
    bucket_of.clear();
    bucket_of.extend(logits.iter().map(|&l| bucket(l - max)));
    counts.clear();
    counts.resize(BUCKETS, 0);
    for &b in bucket_of.iter() {
        counts[usize::from(b)] += 1;
    }
    let mut seen = 0usize;
    let mut last_bucket = (BUCKETS - 1) as u16;
    for (b, &n) in (0u16..).zip(counts.iter()) {
        seen += n as usize;
        if seen >= t.top_k {
            last_bucket = b;
            break;
        }
    }
    candidates.extend(
        logits
            .iter()
            .zip(bucket_of.iter())
            .enumerate()
            .filter(|&(_, (&logit, &b))| logit > f32::NEG_INFINITY && b <= last_bucket)
            .map(|(id, (&logit, _))| Candidate {
                id: id as u32,
                logit,
                weight: 0.0,
            }),
    );
    if t.top_k < candidates.len() {
        candidates.select_nth_unstable_by(t.top_k - 1, by_logit_desc);
        candidates.truncate(t.top_k);
    }
    candidates.sort_unstable_by(by_logit_desc);
    let mut total = 0.0f64;
    for c in candidates.iter_mut() {
        c.weight = math::exp((c.logit - max) / t.temperature);
        total += f64::from(c.weight);
    }
    if t.top_p < 1.0 {
        let target = f64::from(t.top_p) * total;
        let mut cumulative = 0.0f64;
        let keep = candidates
            .iter()
            .position(|c| {
                cumulative += f64::from(c.weight);
                cumulative >= target
            })
            .map_or(candidates.len(), |i| i + 1);
        candidates.truncate(keep);
    }
    if t.min_p > 0.0 {
        candidates.retain(|c| c.weight >= t.min_p);
    }
    Some(candidates.iter().map(|c| f64::from(c.weight)).sum())
}

/// `(logit − max) / T`, the one expression both the weights and the top-p buckets use.
#[inline(always)]
fn scaled(logit: f32, max: f32, temperature: f32) -> f32 {
    (logit - max) / temperature
}

/// Histogram bucket of a scaled logit (≤ 0): non-decreasing as the logit decreases. Top-k
/// uses it on `logit − max` (T = 1), top-p on `(logit − max) / T`.
#[inline(always)]
fn bucket(scaled: f32) -> u16 {
    // min() sends +∞ (from a −∞ logit) to the last bucket; `as` truncates toward zero and
    // saturates (−0.0 → 0).
    (-scaled * BUCKETS_PER_NAT).min((BUCKETS - 1) as f32) as u16
}

/// The no-top-k path: `ws.weights[id]` becomes each token's weight, 0 outside top-p/min-p;
/// returns their sum (≥ 1). `None` if every logit is −∞.
fn truncate_full(logits: &[f32], t: Truncation, ws: &mut Workspace) -> Option<f64> {
    let max = math::max(logits);
    if max == f32::NEG_INFINITY {
        return None;
    }
    let temperature = t.temperature;
    ws.weights.clear();
    ws.weights.extend(
        logits
            .iter()
            .map(|&l| math::exp(scaled(l, max, temperature))),
    );
    let total = math::sum_f64(&ws.weights);
    if t.top_p >= 1.0 && t.min_p <= 0.0 {
        return Some(total);
    }

    // The nucleus as "bucket < cut_bucket, or in cut_bucket and not after `last`" in the
    // (logit desc, id asc) order; `None` keeps everything.
    let nucleus = if t.top_p < 1.0 {
        nucleus_boundary(logits, max, t, f64::from(t.top_p) * total, ws)
    } else {
        None
    };
    if let Some((cut_bucket, last)) = nucleus {
        for (id, ((w, &l), &b)) in ws
            .weights
            .iter_mut()
            .zip(logits)
            .zip(&ws.bucket_of)
            .enumerate()
        {
            let keep = b < cut_bucket
                || (b == cut_bucket
                    && (l > last.logit || (l == last.logit && id as u32 <= last.id)));
            *w = if keep { *w } else { 0.0 };
        }
    }
    if t.min_p > 0.0 {
        for w in ws.weights.iter_mut() {
            *w = if *w >= t.min_p { *w } else { 0.0 };
        }
    }
    Some(math::sum_f64(&ws.weights))
}

/// Finds the top-p boundary: the bucket where the cumulative weight reaches `target`, and
/// the last token kept inside it. `None` if rounding kept the sum below `target`.
fn nucleus_boundary(
    logits: &[f32],
    max: f32,
    t: Truncation,
    target: f64,
    ws: &mut Workspace,
) -> Option<(u16, Candidate)> {
    ws.bucket_of.clear();
    ws.bucket_of.extend(
        logits
            .iter()
            .map(|&l| bucket(scaled(l, max, t.temperature))),
    );
    ws.bucket_sums.clear();
    ws.bucket_sums.resize(BUCKETS, 0.0);
    for (&w, &b) in ws.weights.iter().zip(&ws.bucket_of) {
        ws.bucket_sums[usize::from(b)] += f64::from(w);
    }
    let mut before = 0.0f64;
    let mut cut_bucket = None;
    for (b, &s) in (0u16..).zip(ws.bucket_sums.iter()) {
        if before + s >= target {
            cut_bucket = Some(b);
            break;
        }
        before += s;
    }
    let cut_bucket = cut_bucket?;
    ws.candidates.clear();
    ws.candidates.extend(
        logits
            .iter()
            .zip(&ws.weights)
            .zip(&ws.bucket_of)
            .enumerate()
            .filter(|&(_, (_, &b))| b == cut_bucket)
            .map(|(id, ((&logit, &weight), _))| Candidate {
                id: id as u32,
                logit,
                weight,
            }),
    );
    ws.candidates.sort_unstable_by(by_logit_desc);
    let mut cumulative = before;
    for c in &ws.candidates {
        cumulative += f64::from(c.weight);
        if cumulative >= target {
            return Some((cut_bucket, *c));
        }
    }
    ws.candidates.last().map(|&c| (cut_bucket, c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_ties_go_to_lowest_id() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), Some(1));
        assert_eq!(argmax(&[f32::NEG_INFINITY; 2]), None);
    }

    #[test]
    fn nucleus_of_equal_logits_takes_lowest_ids() {
        // 1000 equal logits: top_p 0.5 needs exactly the 500 lowest ids (ties → id order).
        let logits = vec![0.0f32; 1000];
        let t = Truncation {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.5,
            min_p: 0.0,
        };
        let mut ws = Workspace::default();
        let total = truncate_full(&logits, t, &mut ws).expect("finite");
        assert_eq!(total, 500.0);
        assert!(ws.weights[..500].iter().all(|&w| w == 1.0));
        assert!(ws.weights[500..].iter().all(|&w| w == 0.0));
        // The top-k path agrees.
        let k = Truncation { top_k: 999, ..t };
        let total = truncate_top_k(&logits, k, &mut ws).expect("finite");
        assert_eq!(total, 500.0);
        let ids: Vec<u32> = ws.candidates.iter().map(|c| c.id).collect();
        assert_eq!(ids, (0..500).collect::<Vec<u32>>());
    }

    #[test]
    fn walk_is_inverse_cdf() {
        let w = [0.0f32, 1.0, 0.0, 2.0, 0.0];
        assert_eq!(walk(w.iter().copied(), 0.0), 1);
        assert_eq!(walk(w.iter().copied(), 0.999), 1);
        assert_eq!(walk(w.iter().copied(), 1.0), 3);
        assert_eq!(walk(w.iter().copied(), 3.5), 3, "shortfall → last non-zero");
    }
}
