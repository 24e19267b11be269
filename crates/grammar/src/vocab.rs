//! A Kaiyuan vocabulary as `llguidance` sees it: the bytes each token adds to the output
//! (what the engine's detokenizer emits for it) in a token trie, with the model's
//! end-of-generation ids as its stop tokens.
//!
//! llama.cpp's recipe for GGUF vocabularies: a token that decodes to text is that text's
//! bytes; a token that decodes to nothing (control tokens such as `<|im_end|>`, reserved
//! ones) is its written form behind the marker byte 0xFF, so a grammar can name it
//! (`<|im_end|>` in Lark) while no text rule ever matches it. The unknown token is marked
//! the same way: it stands for no text.

use std::sync::Arc;

use kaiyuan_tokenizer::{TokenType, Tokenizer};
use llguidance::toktrie::{TokRxInfo, TokTrie, TokenizerEnv};

/// The bytes token `id` stands for in the trie.
pub(crate) fn trie_bytes(tok: &Tokenizer, id: u32) -> Vec<u8> {
    let text = tok.piece_bytes(id, false).unwrap_or(&[]);
    let special = matches!(
        tok.token_type(id),
        Some(TokenType::Control | TokenType::Unused | TokenType::Unknown)
    );
    if !special && !text.is_empty() {
        return text.to_vec();
    }
    let written = tok.piece_bytes(id, true).unwrap_or(&[]);
    if written.is_empty() {
        // Nothing to name it by: never allowed.
        return Vec::new();
    }
    let mut bytes = Vec::with_capacity(written.len() + 1);
    bytes.push(TokTrie::SPECIAL_TOKEN_MARKER);
    bytes.extend_from_slice(written);
    bytes
}

/// The trie over every token of `tok`, stopping on `eog` (the first is the trie's main EOS).
pub(crate) fn build_trie(tok: &Tokenizer, eog: &[u32]) -> TokTrie {
    let n = tok.vocab_size() as u32;
    let words: Vec<Vec<u8>> = (0..n).map(|id| trie_bytes(tok, id)).collect();
    let eos = eog.first().copied().or(tok.eos_id()).unwrap_or(0);
    let info = TokRxInfo {
        vocab_size: n,
        tok_eos: eos,
        tok_bos: tok.bos_id(),
        tok_pad: tok.pad_id(),
        tok_unk: tok.unk_id(),
        tok_end_of_turn: tok.eot_id(),
    };
    let trie = TokTrie::from(&info, &words);
    let eos_ids: Vec<u32> = if eog.is_empty() {
        vec![eos]
    } else {
        eog.to_vec()
    };
    trie.with_eos_tokens(&eos_ids)
}

/// The environment `llguidance` compiles grammars in: the trie, and Kaiyuan's own
/// tokenizer for the few places it turns text into tokens (literal text, never special).
pub(crate) struct KaiyuanEnv {
    pub trie: TokTrie,
    pub tok: Arc<Tokenizer>,
}

impl TokenizerEnv for KaiyuanEnv {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    /// llguidance allows the tokens returned here when the grammar forces `s`, so they must
    /// spell exactly `s`. Kaiyuan's encoder gives them for UTF-8 text whose every byte has a
    /// token. Otherwise (a forced prefix that ends inside a character, or a byte the
    /// vocabulary lacks, which the encoder writes as the unknown token: no text) the longest
    /// tokens of the trie, up to the first byte no token starts with (`Constraint` stops
    /// before forced text with such a byte: found by fuzzing).
    fn tokenize_bytes(&self, s: &[u8]) -> Vec<u32> {
        if let Ok(text) = std::str::from_utf8(s) {
            let ids = self.tok.encode(text, false);
            if spells(&self.trie, &ids, s) {
                return ids;
            }
        }
        greedy_prefix(&self.trie, s)
    }
}

/// Whether the trie bytes of `ids` are exactly `s`.
fn spells(trie: &TokTrie, ids: &[u32], s: &[u8]) -> bool {
    let mut rest = s;
    for &id in ids {
        match rest.strip_prefix(trie.token(id)) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

/// Longest-match tokens spelling `s` from its start, up to the first byte no token starts
/// with (`TokTrie::greedy_tokenize` skips such a byte and goes on: other bytes than `s`).
fn greedy_prefix(trie: &TokTrie, s: &[u8]) -> Vec<u32> {
    let mut ids = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let mut node = trie.root();
        let mut best = None;
        for (j, &b) in s[i..].iter().enumerate() {
            let Some(child) = trie.child_at_byte(node, b) else {
                break;
            };
            node = child;
            if let Some(id) = node.token_id() {
                best = Some((id, j + 1));
            }
        }
        let Some((id, len)) = best else {
            break;
        };
        ids.push(id);
        i += len;
    }
    ids
}

/// The bytes no token of `trie` starts with (bytes a byte-level vocabulary left out), or
/// `None` when every byte starts some token.
pub(crate) fn unwritable_bytes(trie: &TokTrie) -> Option<Arc<[bool; 256]>> {
    let mut missing = [false; 256];
    for b in 0..=255u8 {
        missing[usize::from(b)] = trie.child_at_byte(trie.root(), b).is_none();
    }
    missing.iter().any(|&m| m).then(|| Arc::new(missing))
}
