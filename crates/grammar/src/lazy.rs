//! A lazy grammar: the output is free (it may also end) until it writes one of the trigger
//! texts; from the end of that trigger on, the grammar applies. This is how `tool_choice:
//! auto` forces a family's tool-call syntax only once the model has chosen to call (the model
//! writes `<tool_call>`, then the call must parse and match the tool's schema), as llama.cpp's
//! lazy grammars do.

use llguidance::toktrie::{SimpleVob, TokEnv};

use crate::{GrammarError, TokenMask};

#[derive(Clone)]
pub(crate) struct LazyPhase {
    env: TokEnv,
    triggers: Vec<Vec<u8>>,
    /// The last bytes of the output, to find a trigger split across tokens.
    tail: Vec<u8>,
}

impl LazyPhase {
    pub(crate) fn new(env: TokEnv, triggers: &[String]) -> Result<LazyPhase, GrammarError> {
        if triggers.is_empty() || triggers.iter().any(String::is_empty) {
            return Err(GrammarError::Invalid(
                "a lazy grammar needs non-empty trigger texts".into(),
            ));
        }
        Ok(LazyPhase {
            env,
            triggers: triggers.iter().map(|t| t.as_bytes().to_vec()).collect(),
            tail: Vec::new(),
        })
    }

    /// Every token, the end of generation included.
    pub(crate) fn mask(&self) -> TokenMask {
        TokenMask(SimpleVob::alloc_ones(self.env.tok_trie().vocab_size()))
    }

    /// Takes one sampled token. When it completes a trigger: `Some(tokens)` to feed the
    /// grammar, the tokens of whatever the same token wrote after the trigger (usually none).
    pub(crate) fn commit(&mut self, token: u32) -> Result<Option<Vec<u32>>, GrammarError> {
        let bytes = self.env.tok_trie().token(token);
        // A control token reads as 0xFF + its text in the trie: match on the text.
        let bytes = bytes.strip_prefix(&[0xFF]).unwrap_or(bytes);
        self.tail.extend_from_slice(bytes);
        let found = self
            .triggers
            .iter()
            .filter_map(|t| find(&self.tail, t).map(|at| (at, at + t.len())))
            .min();
        if let Some((_, end)) = found {
            let after = &self.tail[end..];
            let tokens = if after.is_empty() {
                Vec::new()
            } else {
                self.env.tokenize_bytes(after)
            };
            return Ok(Some(tokens));
        }
        let keep = self.triggers.iter().map(Vec::len).max().unwrap_or(1) - 1;
        if self.tail.len() > keep {
            self.tail.drain(..self.tail.len() - keep);
        }
        Ok(None)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
