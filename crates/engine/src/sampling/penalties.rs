//! The logit-editing stages that run before temperature, in this order:
//! 1. [`sanitize`]: NaN → −∞; if any logit is +∞, the +∞ tokens share all probability
//!    (they become 0, every other token −∞) — the limit of the softmax.
//! 2. [`LogitBias::apply`]: OpenAI `logit_bias` — add the bias; exactly −100 bans the token
//!    (−∞), exactly +100 keeps only the +100 tokens (each gets its logit + 100). The bias is
//!    validated once, when the [`LogitBias`] is built.
//! 3. [`apply_repetition_penalty`]: CTRL (Keskar et al. 2019, §4.1) as in llama.cpp — over
//!    the distinct tokens of the history's window, divide positive logits by the penalty
//!    and multiply negative ones by it.
//! 4. [`apply_presence_frequency`]: OpenAI's formula
//!    `logit[j] -= count[j] * frequency_penalty + (count[j] > 0) * presence_penalty`.
//!
//! Tokens of the history outside the vocabulary are ignored (no panic).

use std::collections::HashSet;

use super::history::TokenHistory;
use super::params::{ParamError, LOGIT_BIAS_LIMIT, MAX_LOGIT_BIAS};

/// Removes NaN and +∞ as described in the module docs. Returns nothing: a vector with no
/// finite logit left is detected (and reported) by the stages that pick a token.
pub fn sanitize(logits: &mut [f32]) {
    // A branch-free scan first (vectorises); the fix-up passes run only for bad input.
    let needs_fixing = logits
        .iter()
        .fold(false, |bad, &x| bad | x.is_nan() | (x == f32::INFINITY));
    if !needs_fixing {
        return;
    }
    let mut any_pos_inf = false;
    for x in logits.iter_mut() {
        if x.is_nan() {
            *x = f32::NEG_INFINITY;
        } else if *x == f32::INFINITY {
            any_pos_inf = true;
        }
    }
    if any_pos_inf {
        for x in logits.iter_mut() {
            *x = if *x == f32::INFINITY {
                0.0
            } else {
                f32::NEG_INFINITY
            };
        }
    }
}

/// A request's `logit_bias`, validated once when it is built ([`LogitBias::new`]): at most
/// [`MAX_LOGIT_BIAS`] entries (OpenAI's limit), each token id at most once, each bias in
/// −100..=100 (NaN refused). Only the vocabulary check is left for later
/// ([`SamplingParams::validate_for_vocab`](super::SamplingParams::validate_for_vocab), one
/// comparison against [`LogitBias::max_token`]). Entries keep the order they were given in.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogitBias {
    entries: Vec<(u32, f32)>,
    /// The tokens biased by exactly +100, sorted ascending.
    forced: Vec<u32>,
    max_token: Option<u32>,
}

impl LogitBias {
    /// Checks `pairs` in one pass (the count cap first, so an oversized list is refused
    /// before any work); the error names the field `logit_bias`.
    pub fn new(pairs: impl IntoIterator<Item = (u32, f32)>) -> Result<LogitBias, ParamError> {
        let pairs = pairs.into_iter();
        let too_many = |n: String| {
            ParamError::new("logit_bias", n, format!("at most {MAX_LOGIT_BIAS} entries"))
        };
        let (at_least, _) = pairs.size_hint();
        if at_least > MAX_LOGIT_BIAS {
            return Err(too_many(format!("{at_least} entries")));
        }
        let mut bias = LogitBias {
            entries: Vec::with_capacity(at_least),
            ..LogitBias::default()
        };
        let mut seen = HashSet::with_capacity(at_least);
        for (token, b) in pairs {
            if bias.entries.len() == MAX_LOGIT_BIAS {
                return Err(too_many(format!("more than {MAX_LOGIT_BIAS} entries")));
            }
            if !(-LOGIT_BIAS_LIMIT..=LOGIT_BIAS_LIMIT).contains(&b) {
                return Err(ParamError::new(
                    "logit_bias",
                    format!("{b} for token {token}"),
                    "in -100..=100".into(),
                ));
            }
            if !seen.insert(token) {
                return Err(ParamError::new(
                    "logit_bias",
                    format!("token {token} listed twice"),
                    "each token at most once".into(),
                ));
            }
            if b >= LOGIT_BIAS_LIMIT {
                bias.forced.push(token);
            }
            bias.max_token = bias.max_token.max(Some(token));
            bias.entries.push((token, b));
        }
        bias.forced.sort_unstable();
        Ok(bias)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The `(token, bias)` entries, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = (u32, f32)> + '_ {
        self.entries.iter().copied()
    }

    /// The largest biased token id (what the vocabulary check compares).
    pub fn max_token(&self) -> Option<u32> {
        self.max_token
    }

    /// Adds the biases to `logits`: −100 bans a token (−∞), +100 keeps only the +100 tokens
    /// (each at its logit + 100) that can still be sampled — if none can (a grammar mask or a
    /// NaN logit excluded them all), forcing does nothing; tokens beyond `logits` are
    /// ignored.
    pub fn apply(&self, logits: &mut [f32]) {
        for &(token, b) in &self.entries {
            let Some(x) = logits.get_mut(token as usize) else {
                continue;
            };
            if b <= -LOGIT_BIAS_LIMIT {
                *x = f32::NEG_INFINITY;
            } else if b < LOGIT_BIAS_LIMIT {
                *x += b;
            }
        }
        let can_force = self.forced.iter().any(|&t| {
            logits
                .get(t as usize)
                .is_some_and(|x| *x > f32::NEG_INFINITY)
        });
        if can_force {
            // One pass over the vocabulary, walking the sorted forced ids alongside.
            let mut next = self.forced.iter().copied().peekable();
            for (id, x) in logits.iter_mut().enumerate() {
                if next.peek() == Some(&(id as u32)) {
                    next.next();
                    *x += LOGIT_BIAS_LIMIT;
                } else {
                    *x = f32::NEG_INFINITY;
                }
            }
        }
    }
}

/// CTRL repetition penalty over the distinct tokens of `history`'s repetition window.
pub fn apply_repetition_penalty(logits: &mut [f32], history: &TokenHistory, penalty: f32) {
    if penalty == 1.0 {
        return;
    }
    for token in history.repetition_window_tokens() {
        if let Some(x) = logits.get_mut(token as usize) {
            if *x > 0.0 {
                *x /= penalty;
            } else {
                *x *= penalty;
            }
        }
    }
}

/// OpenAI presence and frequency penalties over `history`'s counted tokens.
pub fn apply_presence_frequency(
    logits: &mut [f32],
    history: &TokenHistory,
    presence: f32,
    frequency: f32,
) {
    if presence == 0.0 && frequency == 0.0 {
        return;
    }
    for (token, count) in history.counted_tokens() {
        if let Some(x) = logits.get_mut(token as usize) {
            *x -= count as f32 * frequency + presence;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_nan_and_inf() {
        let mut v = [1.0, f32::NAN, 2.0];
        sanitize(&mut v);
        assert_eq!(v, [1.0, f32::NEG_INFINITY, 2.0]);
        let mut v = [1.0, f32::INFINITY, f32::NAN, f32::INFINITY];
        sanitize(&mut v);
        assert_eq!(v, [f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY, 0.0]);
    }

    #[test]
    fn bias_ban_force_add() {
        let bias = LogitBias::new([(0, -100.0), (2, 100.0), (3, 0.5), (9, 1.0)]).unwrap();
        let mut v = [1.0, 2.0, 3.0, 4.0];
        bias.apply(&mut v);
        // 3 got +0.5 and is then masked because token 2 is forced; 9 is out of vocab.
        assert_eq!(
            v,
            [
                f32::NEG_INFINITY,
                f32::NEG_INFINITY,
                103.0,
                f32::NEG_INFINITY
            ]
        );
    }
}
