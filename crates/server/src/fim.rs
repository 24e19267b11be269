//! Fill-in-the-middle (`suffix` on `/v1/completions` and DeepSeek's `/beta/completions`): the
//! prompt becomes prefix-suffix-middle in the model's own FIM tokens, found by their text in the
//! vocabulary (as control or user-defined tokens). A vocabulary without them gets a clear 400.

use kaiyuan_tokenizer::{TokenType, Tokenizer};

use crate::error::ApiError;

/// The spellings of (prefix, suffix, middle) the known code-model families use: Qwen2.5-Coder,
/// CodeGemma (the same spelling), StarCoder, DeepSeek-Coder. (Codestral's suffix-first
/// order is not supported.)
const SPELLINGS: [[&str; 3]; 3] = [
    ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"],
    ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"],
    ["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"],
];

/// The model's FIM token ids (prefix, suffix, middle), if its vocabulary has a full set.
pub fn fim_tokens(tok: &Tokenizer) -> Option<[u32; 3]> {
    let single = |text: &str| match tok.encode(text, true)[..] {
        [id] if matches!(
            tok.token_type(id),
            Some(TokenType::Control | TokenType::UserDefined)
        ) =>
        {
            Some(id)
        }
        _ => None,
    };
    SPELLINGS
        .iter()
        .find_map(|[p, s, m]| Some([single(p)?, single(s)?, single(m)?]))
}

/// [`fim_tokens`], or the 400 a `suffix` gets from a model without them.
pub fn require_fim_tokens(tok: &Tokenizer) -> Result<[u32; 3], ApiError> {
    fim_tokens(tok).ok_or_else(|| {
        ApiError::unsupported(
            "suffix",
            "fill-in-the-middle needs a model whose vocabulary has FIM tokens \
             (<|fim_prefix|>, <fim_prefix>, <｜fim▁begin｜>, ...); this one has none",
        )
    })
}

/// The ids of a fill-in-the-middle prompt: BOS if the model wants one, then the prefix token
/// and text, the suffix token and text, and the middle token (PSM order); texts as plain text.
pub fn fim_prompt(
    tok: &Tokenizer,
    [pre, suf, mid]: [u32; 3],
    prefix: &str,
    suffix: &str,
) -> Vec<u32> {
    let mut ids = Vec::new();
    if let (true, Some(bos)) = (tok.add_bos(), tok.bos_id()) {
        ids.push(bos);
    }
    ids.push(pre);
    ids.extend(tok.encode(prefix, false));
    ids.push(suf);
    ids.extend(tok.encode(suffix, false));
    ids.push(mid);
    ids
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use kaiyuan_gguf::GgufFile;
    use kaiyuan_tokenizer::Vocab;

    use super::*;

    fn smollm2_vocab() -> Vocab {
        let dir = std::env::var_os("KAIYUAN_MODELS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"));
        let gguf = GgufFile::open(dir.join("SmolLM2-135M-Instruct.Q4_1.gguf"))
            .expect("run scripts/fetch-models");
        Vocab::from_gguf(&gguf).unwrap()
    }

    #[test]
    fn a_vocabulary_without_fim_tokens_is_refused_by_name() {
        let tok = Tokenizer::from_vocab(&smollm2_vocab()).unwrap();
        assert_eq!(fim_tokens(&tok), None);
        let e = require_fim_tokens(&tok).unwrap_err();
        assert_eq!(e.param(), Some("suffix"));
    }

    #[test]
    fn fim_prompts_are_prefix_suffix_middle() {
        // SmolLM2's vocabulary plus Qwen2.5-Coder's three FIM control tokens.
        let mut v = smollm2_vocab();
        let n = v.tokens.len() as u32;
        if v.token_types.is_empty() {
            v.token_types = vec![1; v.tokens.len()];
        }
        for t in ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"] {
            v.tokens.push(t.to_string());
            v.token_types.push(3);
            if !v.scores.is_empty() {
                v.scores.push(0.0);
            }
        }
        let tok = Tokenizer::from_vocab(&v).unwrap();
        let fim = require_fim_tokens(&tok).unwrap();
        assert_eq!(fim, [n, n + 1, n + 2]);
        let ids = fim_prompt(
            &tok,
            fim,
            "def add(a, b):\n    return ",
            "\n\nprint(add(1, 2))",
        );
        let mut want = vec![n];
        want.extend(tok.encode("def add(a, b):\n    return ", false));
        want.push(n + 1);
        want.extend(tok.encode("\n\nprint(add(1, 2))", false));
        want.push(n + 2);
        assert_eq!(ids, want);
        // Text that spells a FIM token is plain text, never the token.
        let ids = fim_prompt(&tok, fim, "<|fim_middle|>", "");
        assert_eq!(ids.iter().filter(|&&i| i == n + 2).count(), 1);
    }
}
