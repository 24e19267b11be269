//! [`TokenHistory`]: the token counts a request's penalties read, updated in O(1) per token.
//!
//! Two views, following the two traditions the penalties come from:
//! - presence / frequency penalties (OpenAI) count the *generated* tokens — all of them,
//!   and the prompt's too if [`TokenHistory::with_prompt_counts`] asks for it;
//! - the repetition penalty (CTRL, Keskar et al. 2019, as used by llama.cpp's
//!   `repeat_last_n`) looks at the distinct tokens among the last `repetition_window` tokens
//!   of prompt + generation.
//!
//! Memory grows with the number of distinct tokens seen, not with the vocabulary, so many
//! concurrent requests over a 262k vocabulary stay cheap.

use std::collections::{HashMap, VecDeque};

/// llama.cpp's default `repeat_last_n`.
pub const DEFAULT_REPETITION_WINDOW: usize = 64;

/// The tokens of one sequence, as the penalties see them. The caller pushes the prompt once
/// and then every token it accepts from the sampler.
#[derive(Clone, Debug)]
pub struct TokenHistory {
    repetition_window: usize,
    count_prompt: bool,
    /// The last `repetition_window` tokens, oldest first.
    window: VecDeque<u32>,
    /// Occurrences of each token inside `window` (no zero entries).
    window_counts: HashMap<u32, u32>,
    /// Occurrences counted for presence/frequency (no zero entries).
    counts: HashMap<u32, u32>,
    generated: usize,
}

impl Default for TokenHistory {
    fn default() -> TokenHistory {
        TokenHistory::new()
    }
}

impl TokenHistory {
    /// An empty history with a repetition window of [`DEFAULT_REPETITION_WINDOW`] tokens;
    /// prompt tokens do not count for presence/frequency.
    pub fn new() -> TokenHistory {
        TokenHistory {
            repetition_window: DEFAULT_REPETITION_WINDOW,
            count_prompt: false,
            window: VecDeque::new(),
            window_counts: HashMap::new(),
            counts: HashMap::new(),
            generated: 0,
        }
    }

    /// How many of the most recent tokens (prompt included) the repetition penalty looks
    /// at; `0` disables it, `usize::MAX` means the whole history. Set before pushing.
    pub fn with_repetition_window(mut self, tokens: usize) -> TokenHistory {
        self.repetition_window = tokens;
        self
    }

    /// Whether prompt tokens also count for the presence and frequency penalties (default
    /// `false`: OpenAI and vLLM penalise only what the model generated). Set before pushing.
    pub fn with_prompt_counts(mut self, count_prompt: bool) -> TokenHistory {
        self.count_prompt = count_prompt;
        self
    }

    /// Records prompt tokens.
    pub fn push_prompt(&mut self, tokens: &[u32]) {
        for &token in tokens {
            self.push_to_window(token);
            if self.count_prompt {
                *self.counts.entry(token).or_insert(0) += 1;
            }
        }
    }

    /// Records one generated token (the sampler does not do it for you).
    pub fn push(&mut self, token: u32) {
        self.push_to_window(token);
        *self.counts.entry(token).or_insert(0) += 1;
        self.generated += 1;
    }

    fn push_to_window(&mut self, token: u32) {
        if self.repetition_window == 0 {
            return;
        }
        if self.window.len() == self.repetition_window {
            if let Some(oldest) = self.window.pop_front() {
                if let Some(n) = self.window_counts.get_mut(&oldest) {
                    *n -= 1;
                    if *n == 0 {
                        self.window_counts.remove(&oldest);
                    }
                }
            }
        }
        self.window.push_back(token);
        *self.window_counts.entry(token).or_insert(0) += 1;
    }

    /// Forgets everything, keeping the configuration.
    pub fn clear(&mut self) {
        self.window.clear();
        self.window_counts.clear();
        self.counts.clear();
        self.generated = 0;
    }

    /// How many times `token` counts for presence/frequency.
    pub fn count(&self, token: u32) -> u32 {
        self.counts.get(&token).copied().unwrap_or(0)
    }

    /// Whether `token` occurs in the repetition window.
    pub fn in_repetition_window(&self, token: u32) -> bool {
        self.window_counts.contains_key(&token)
    }

    /// Number of generated tokens pushed so far.
    pub fn generated_len(&self) -> usize {
        self.generated
    }

    /// The distinct tokens of the repetition window (arbitrary order).
    pub fn repetition_window_tokens(&self) -> impl Iterator<Item = u32> + '_ {
        self.window_counts.keys().copied()
    }

    /// `(token, count)` for every token counted for presence/frequency (arbitrary order).
    pub fn counted_tokens(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.counts.iter().map(|(&t, &n)| (t, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slides_and_counts_accumulate() {
        let mut h = TokenHistory::new().with_repetition_window(3);
        h.push_prompt(&[7, 8]);
        h.push(9);
        h.push(9);
        // window = [8, 9, 9]; 7 slid out.
        assert!(!h.in_repetition_window(7));
        assert!(h.in_repetition_window(8));
        let mut w: Vec<u32> = h.repetition_window_tokens().collect();
        w.sort_unstable();
        assert_eq!(w, [8, 9]);
        assert_eq!(h.count(9), 2);
        assert_eq!(h.count(7), 0, "prompt tokens are not counted by default");
        assert_eq!(h.generated_len(), 2);
    }

    #[test]
    fn prompt_counts_and_disabled_window() {
        let mut h = TokenHistory::new()
            .with_repetition_window(0)
            .with_prompt_counts(true);
        h.push_prompt(&[1, 1]);
        assert_eq!(h.count(1), 2);
        assert!(!h.in_repetition_window(1));
        h.clear();
        assert_eq!(h.count(1), 0);
    }
}
