//! Turning processed logits into a token: greedy [`argmax`], or [`truncate`] (temperature,
//! top-k, top-p, min-p) followed by [`draw`].
//!
//! Definitions (p = softmax(logits / T) over the tokens still in play at that stage):
//! - top-k: the k highest logits (invariant under T).
//! - top-p (nucleus, Holtzman et al. 2020): sorting by probability, the shortest prefix whose
//!   probability sum is ≥ top_p (renormalised over the top-k set) — at least one token.
//! - min-p (Nguyen et al. 2024): tokens with p ≥ min_p · p_max.
//!
//! Speed on a 262k vocabulary: no full sort. Top-k uses partial selection
//! (`select_nth_unstable_by`) then sorts only the k kept; top-p alone sorts growing prefixes
//! (64, 256, 1024, … tokens) found by partial selection until the nucleus is complete;
//! min-p is a linear filter (p ≥ min_p·p_max ⇔ exp((x − max)/T) ≥ min_p, no sort needed).
//! The only buffer is the caller's reusable candidate vector.
//!
//! Determinism: candidates are ordered by (logit descending, id ascending), a total order,
//! so every selection and sort gives one result whatever std's algorithms do; weights are
//! summed in `f64`.

use std::cmp::Ordering;

/// A token still in play, with its unnormalised probability `exp((logit − max) / T)`.
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
    let mut best: Option<(u32, f32)> = None;
    for (id, &x) in logits.iter().enumerate() {
        if x > best.map_or(f32::NEG_INFINITY, |(_, b)| b) {
            best = Some((id as u32, x));
        }
    }
    best.map(|(id, _)| id)
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

/// Fills `candidates` with the tokens that survive top-k, top-p and min-p, with weights
/// `exp((logit − max) / T)`, and returns the sum of the kept weights (≥ 1: the most likely
/// token always survives with weight 1). `None` if every logit is −∞.
pub fn truncate(logits: &[f32], t: Truncation, candidates: &mut Vec<Candidate>) -> Option<f64> {
    candidates.clear();
    let mut max = f32::NEG_INFINITY;
    for (id, &logit) in logits.iter().enumerate() {
        if logit > f32::NEG_INFINITY {
            max = max.max(logit);
            candidates.push(Candidate {
                id: id as u32,
                logit,
                weight: 0.0,
            });
        }
    }
    if candidates.is_empty() {
        return None;
    }

    let mut sorted = false;
    if t.top_k > 0 && t.top_k < candidates.len() {
        candidates.select_nth_unstable_by(t.top_k - 1, by_logit_desc);
        candidates.truncate(t.top_k);
        candidates.sort_unstable_by(by_logit_desc);
        sorted = true;
    }

    let mut total = 0.0f64;
    for c in candidates.iter_mut() {
        c.weight = ((c.logit - max) / t.temperature).exp();
        total += f64::from(c.weight);
    }

    if t.top_p < 1.0 {
        let keep = nucleus_len(candidates, sorted, f64::from(t.top_p) * total);
        candidates.truncate(keep);
    }
    if t.min_p > 0.0 {
        // The most likely token has weight exactly 1, so p_i / p_max = weight_i.
        candidates.retain(|c| c.weight >= t.min_p);
    }
    Some(candidates.iter().map(|c| f64::from(c.weight)).sum())
}

/// Sorts the front of `candidates` by [`by_logit_desc`] just far enough to find the
/// shortest prefix whose weights sum to at least `target`; returns its length (≥ 1).
fn nucleus_len(candidates: &mut [Candidate], already_sorted: bool, target: f64) -> usize {
    let n = candidates.len();
    let mut done = 0;
    let mut chunk = 64;
    let mut cumulative = 0.0f64;
    loop {
        let end = if already_sorted {
            n
        } else {
            (done + chunk).min(n)
        };
        if !already_sorted {
            let rest = &mut candidates[done..];
            let take = end - done;
            if end < n {
                rest.select_nth_unstable_by(take - 1, by_logit_desc);
            }
            rest[..take].sort_unstable_by(by_logit_desc);
        }
        for (i, c) in candidates[done..end].iter().enumerate() {
            cumulative += f64::from(c.weight);
            if cumulative >= target {
                return done + i + 1;
            }
        }
        if end == n {
            return n;
        }
        done = end;
        chunk *= 4;
    }
}

/// Inverse-CDF draw: the first candidate, in the order `candidates` is in, at which the
/// running weight sum exceeds `uniform · total` (`uniform` in [0, 1)). A rounding
/// shortfall falls back to the last candidate of non-zero weight.
///
/// # Panics
/// If `candidates` is empty (the caller has [`truncate`]'s `Some` result).
pub fn draw(candidates: &[Candidate], total: f64, uniform: f64) -> u32 {
    let target = uniform * total;
    let mut cumulative = 0.0f64;
    for c in candidates {
        cumulative += f64::from(c.weight);
        if cumulative > target {
            return c.id;
        }
    }
    candidates
        .iter()
        .rev()
        .find(|c| c.weight > 0.0)
        .or(candidates.last())
        .expect("invariant: truncate keeps at least the most likely token")
        .id
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
    fn nucleus_grows_past_first_chunk() {
        // 1000 equal logits: top_p 0.5 needs exactly 500 tokens, beyond the first chunk.
        let logits = vec![0.0f32; 1000];
        let mut c = Vec::new();
        let t = Truncation {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.5,
            min_p: 0.0,
        };
        let total = truncate(&logits, t, &mut c).expect("finite");
        assert_eq!(c.len(), 500);
        assert_eq!(total, 500.0);
        let ids: Vec<u32> = c.iter().map(|c| c.id).collect();
        assert_eq!(ids, (0..500).collect::<Vec<u32>>(), "ties → lowest ids");
    }
}
