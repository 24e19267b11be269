//! A reasoning phase before a grammar: the output first reasons freely until it writes the
//! close tag (`</think>`), or — once a token budget is spent — the close tag's tokens are
//! forced; only then does the grammar start. So a reasoning model (DeepSeek-R1 distills,
//! whose prompt leaves `<think>` open) can think before a constrained answer, as vLLM does
//! with structured output after a reasoning parser.

use llguidance::toktrie::{SimpleVob, TokEnv};

use crate::{GrammarError, TokenMask};

#[derive(Clone)]
pub(crate) struct ReasoningPhase {
    env: TokEnv,
    /// The close tag's text and its tokens as the tokenizer writes it.
    close: Vec<u8>,
    close_ids: Vec<u32>,
    budget: Option<usize>,
    /// Reasoning tokens so far (forced close-tag tokens not counted).
    used: usize,
    /// The last bytes of the reasoning, to find a close tag split across tokens.
    tail: Vec<u8>,
    /// Forcing the close tag: the index of its next token.
    forcing: Option<usize>,
}

impl ReasoningPhase {
    pub(crate) fn new(
        env: TokEnv,
        close: &str,
        close_ids: Vec<u32>,
        budget: Option<usize>,
    ) -> Result<ReasoningPhase, GrammarError> {
        let vocab = env.tok_trie().vocab_size();
        if close.is_empty()
            || close_ids.is_empty()
            || close_ids.iter().any(|&t| t as usize >= vocab)
        {
            return Err(GrammarError::Invalid(
                "the reasoning close tag has no tokens in this vocabulary".into(),
            ));
        }
        Ok(ReasoningPhase {
            env,
            close: close.as_bytes().to_vec(),
            close_ids,
            forcing: (budget == Some(0)).then_some(0),
            budget,
            used: 0,
            tail: Vec::new(),
        })
    }

    /// Any token but the end of generation while reasoning (the answer must still come);
    /// only the close tag's next token once the budget is spent.
    pub(crate) fn mask(&self) -> TokenMask {
        let trie = self.env.tok_trie();
        let n = trie.vocab_size();
        match self.forcing {
            Some(i) => TokenMask::from_allowed(n, [self.close_ids[i]]),
            None => {
                let mut all = SimpleVob::alloc_ones(n);
                for &eos in trie.eos_tokens() {
                    all.disallow_token(eos);
                }
                TokenMask(all)
            }
        }
    }

    /// Takes one sampled token; true when the reasoning has ended with it.
    pub(crate) fn commit(&mut self, token: u32) -> Result<bool, GrammarError> {
        if let Some(i) = self.forcing {
            if token != self.close_ids[i] {
                return Err(GrammarError::Stuck(format!(
                    "token {token} is not the forced close tag token {}",
                    self.close_ids[i]
                )));
            }
            self.forcing = (i + 1 < self.close_ids.len()).then_some(i + 1);
            return Ok(self.forcing.is_none());
        }
        self.used += 1;
        self.tail
            .extend_from_slice(self.env.tok_trie().token(token));
        if let Some(at) = find(&self.tail, &self.close) {
            let after = &self.tail[at + self.close.len()..];
            if !after.iter().all(u8::is_ascii_whitespace) {
                return Err(GrammarError::Stuck(
                    "the answer began inside the token that closed the reasoning".into(),
                ));
            }
            return Ok(true);
        }
        // Keep just enough to find a tag that the next token completes.
        let keep = self.close.len().saturating_sub(1);
        if self.tail.len() > keep {
            self.tail.drain(..self.tail.len() - keep);
        }
        if self.budget.is_some_and(|b| self.used >= b) {
            self.forcing = Some(0);
        }
        Ok(false)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
