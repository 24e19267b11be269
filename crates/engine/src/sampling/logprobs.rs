//! Log-probabilities reported with each token: log-softmax over a whole logit vector
//! (`logprob_i = x_i − max − ln Σ_j exp(x_j − max)`, the sum in `f64`) and the top-N tokens
//! by one pass that keeps a small sorted list (O(V) for the N ≤ 20 the API allows).
//! Which vector is used (raw or processed) is chosen by
//! [`LogprobsMode`](super::LogprobsMode).

use super::math;

/// The normaliser of a log-softmax.
#[derive(Clone, Copy, Debug)]
pub struct LogSoftmax {
    max: f32,
    log_sum: f64,
}

impl LogSoftmax {
    /// `None` if no logit is finite (after [`sanitize`](super::penalties::sanitize) there is
    /// no NaN or +∞, so "not −∞" means finite). `scratch` is reusable space.
    pub fn of(logits: &[f32], scratch: &mut Vec<f32>) -> Option<LogSoftmax> {
        let max = math::max(logits);
        if max == f32::NEG_INFINITY {
            return None;
        }
        let sum = math::sum_exp_f64(logits, max, scratch);
        Some(LogSoftmax {
            max,
            log_sum: sum.ln(),
        })
    }

    /// The log-probability of a token whose logit is `x` (−∞ for a −∞ logit).
    pub fn logprob(&self, x: f32) -> f32 {
        (f64::from(x - self.max) - self.log_sum) as f32
    }
}

/// The (at most) `n` tokens of highest logit, as `(id, logprob)`, most likely first, ties
/// → lowest id first. Tokens of probability zero (−∞) are left out. `best` is scratch
/// space kept by the caller so that only the returned list is allocated.
pub fn top_n(
    logits: &[f32],
    n: usize,
    norm: &LogSoftmax,
    best: &mut Vec<(f32, u32)>,
) -> Vec<(u32, f32)> {
    if n == 0 {
        return Vec::new();
    }
    // `best` holds (logit, id) sorted by logit descending, then id ascending.
    best.clear();
    for (id, &x) in logits.iter().enumerate() {
        if x == f32::NEG_INFINITY {
            continue;
        }
        if best.len() == n && best.last().is_some_and(|&(worst, _)| x <= worst) {
            continue;
        }
        // Ids arrive in increasing order, so an equal logit goes after the ones present.
        let at = best.partition_point(|&(y, _)| y >= x);
        best.insert(at, (x, id as u32));
        best.truncate(n);
    }
    best.iter().map(|&(x, id)| (id, norm.logprob(x))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_matches_formula() {
        let v = [1.0f32, 2.0, 3.0, f32::NEG_INFINITY];
        let norm = LogSoftmax::of(&v, &mut Vec::new()).expect("finite logits");
        let z: f64 = [1.0f64, 2.0, 3.0].iter().map(|x| x.exp()).sum();
        for &x in &v[..3] {
            let want = f64::from(x) - z.ln();
            assert!((f64::from(norm.logprob(x)) - want).abs() < 1e-6);
        }
        assert_eq!(norm.logprob(f32::NEG_INFINITY), f32::NEG_INFINITY);
        assert!(LogSoftmax::of(&[f32::NEG_INFINITY; 3], &mut Vec::new()).is_none());
    }

    #[test]
    fn top_n_orders_and_breaks_ties_by_id() {
        let v = [0.5f32, 2.0, 2.0, f32::NEG_INFINITY, 3.0, 0.5];
        let norm = LogSoftmax::of(&v, &mut Vec::new()).expect("finite logits");
        let mut scratch = Vec::new();
        let out = top_n(&v, 4, &norm, &mut scratch);
        let ids: Vec<u32> = out.iter().map(|&(id, _)| id).collect();
        assert_eq!(ids, [4, 1, 2, 0]);
        let out = top_n(&v, 20, &norm, &mut scratch);
        assert_eq!(out.len(), 5, "the -inf token is left out");
    }
}
