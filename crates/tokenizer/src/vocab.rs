//! The plain tokenizer description a model file carries: exactly the GGUF metadata keys
//! `tokenizer.ggml.*` (llama.cpp's names and meanings), so a GGUF adapter only copies fields.

/// `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`, same numbering as
/// SentencePiece's piece types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenType {
    /// 1: an ordinary vocabulary entry.
    Normal,
    /// 2: the unknown token.
    Unknown,
    /// 3: control tokens (`<|im_end|>`, `<bos>`...): matched in text only when allowed.
    Control,
    /// 4: user-defined tokens (Gemma's runs of spaces/newlines, HTML tags): always matched whole
    /// in text, as llama.cpp does.
    UserDefined,
    /// 5: reserved, never produced.
    Unused,
    /// 6: byte-fallback tokens `<0xNN>` of SentencePiece vocabularies.
    Byte,
}

impl TokenType {
    /// The type for a metadata value; `None` for a value outside 1..=6.
    pub fn from_ggml(value: i32) -> Option<Self> {
        Some(match value {
            1 => TokenType::Normal,
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => return None,
        })
    }
}

/// Everything needed to build a [`crate::Tokenizer`], named after the GGUF keys.
#[derive(Clone, Debug, Default)]
pub struct Vocab {
    /// `tokenizer.ggml.model`: `"gpt2"` (byte-level BPE) or `"llama"` (SentencePiece-style).
    pub model: String,
    /// `tokenizer.ggml.pre`: the pre-tokenizer variant (byte-level BPE only).
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`: token texts, indexed by id.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.scores`: merge scores (SentencePiece-style; empty if absent).
    pub scores: Vec<f32>,
    /// `tokenizer.ggml.token_type`: one [`TokenType`] value per token (empty: all normal).
    pub token_types: Vec<i32>,
    /// `tokenizer.ggml.merges`: `"left right"` pairs, best first (byte-level BPE).
    pub merges: Vec<String>,
    /// `tokenizer.ggml.bos_token_id`
    pub bos_id: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`
    pub eos_id: Option<u32>,
    /// `tokenizer.ggml.eot_token_id`
    pub eot_id: Option<u32>,
    /// `tokenizer.ggml.padding_token_id`
    pub pad_id: Option<u32>,
    /// `tokenizer.ggml.unknown_token_id`
    pub unk_id: Option<u32>,
    /// `tokenizer.ggml.add_bos_token` (absent: true for `llama` and for `gpt2` with a Llama 3
    /// pre-tokenizer, false for other `gpt2`, as llama.cpp)
    pub add_bos: Option<bool>,
    /// `tokenizer.ggml.add_eos_token` (absent: false)
    pub add_eos: Option<bool>,
    /// `tokenizer.ggml.add_space_prefix` (absent: true for `llama`, false for `gpt2`)
    pub add_space_prefix: Option<bool>,
}
