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

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<u32> {
        self.tok.encode(&String::from_utf8_lossy(s), false)
    }
}
