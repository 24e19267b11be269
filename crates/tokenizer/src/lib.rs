//! Kaiyuan's tokenizers, built from the tokenizer description a GGUF file carries
//! (`tokenizer.ggml.*`, see [`Vocab`]): byte-level BPE (`gpt2`) with the pre-tokenizer named by
//! `tokenizer.ggml.pre`, and SentencePiece-style BPE (`llama`) with byte fallback. Both follow
//! llama.cpp's semantics (the reference the project checks against): user-defined tokens are
//! always matched whole in text, control tokens only when the caller allows special tokens.
//! Decoding is in [`decode`], with an incremental [`StreamDecoder`] for streaming output and a
//! [`StopFilter`] that finds stop strings across streamed chunks.
//!
//! What checks these tokenizers against which reference (llama.cpp's own tokenizer test cases
//! and vocabularies, HF `tokenizers`, `sentencepiece`): testdata/golden/tokenizer/README.md.

mod bpe;
mod bytelevel;
mod cache;
mod charsets;
pub mod decode;
mod error;
mod gguf;
mod hash;
mod pretokenize;
mod special;
mod spm;
mod staged;
mod stop;
mod unicode;
mod vocab;

use std::cell::RefCell;

pub use decode::StreamDecoder;
pub use error::{Error, Result};
pub use pretokenize::PreTokenizer;
pub use stop::{StopEvent, StopFilter};
pub use vocab::{TokenType, Vocab};

use bpe::{Bpe, BpeScratch};
use special::{Fragment, SpecialMatcher};
use spm::{Spm, SpmScratch};

enum Model {
    Bpe(Box<Bpe>),
    Spm(Box<Spm>),
}

/// A tokenizer: text to token ids and back. Immutable and `Sync`; share it between threads.
pub struct Tokenizer {
    model: Model,
    specials: SpecialMatcher,
    types: Vec<TokenType>,
    /// The bytes each token stands for in decoded text (control tokens: their text).
    pieces: Vec<Box<[u8]>>,
    bos: Option<u32>,
    eos: Option<u32>,
    eot: Option<u32>,
    pad: Option<u32>,
    unk: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
}

thread_local! {
    static SCRATCH: RefCell<(BpeScratch, SpmScratch)> = RefCell::default();
}

/// Token texts llama.cpp makes control tokens whatever type the file gives them (its vocabulary
/// loader's end-of-turn, end-of-generation and fill-in-the-middle lists, llama.cpp 0.3.36's
/// `llama-vocab.cpp`): so Gemma 3's user-defined `</s>` is not matched in plain text, decodes
/// to nothing unless special tokens are rendered, and ends generation, as in llama.cpp.
const CONTROL_BY_TEXT: &[&str] = &[
    // end of turn / end of generation
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<\u{ff5c}end\u{2581}of\u{2581}sentence\u{ff5c}>",
    "[e~[",
    // fill in the middle: prefix, suffix, middle, pad, repo, file separator
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<\u{ff5c}fim\u{2581}begin\u{ff5c}>",
    "<PRE>",
    "\u{2581}<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<\u{ff5c}fim\u{2581}hole\u{ff5c}>",
    "<SUF>",
    "\u{2581}<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<\u{ff5c}fim\u{2581}end\u{ff5c}>",
    "<MID>",
    "\u{2581}<MID>",
    "<|code_middle|>",
    "<|middle|>",
    "<|fim_pad|>",
    "<fim-pad>",
    "<fim_pad>",
    "<PAD>",
    "[PAD]",
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
    "<|file_sep|>",
];

fn check_id(id: Option<u32>, n: usize, key: &str) -> Result<Option<u32>> {
    match id {
        Some(i) if i as usize >= n => Err(Error::InvalidVocab(format!(
            "tokenizer.ggml.{key} = {i} but the vocabulary has {n} tokens"
        ))),
        other => Ok(other),
    }
}

impl Tokenizer {
    /// Builds a tokenizer from GGUF-style metadata. Errors name the offending key or value.
    pub fn from_vocab(v: &Vocab) -> Result<Self> {
        let n = v.tokens.len();
        if n == 0 || n >= u32::MAX as usize {
            return Err(Error::InvalidVocab(format!(
                "{n} tokens (tokenizer.ggml.tokens)"
            )));
        }
        let types: Vec<TokenType> = if v.token_types.is_empty() {
            vec![TokenType::Normal; n]
        } else if v.token_types.len() != n {
            return Err(Error::InvalidVocab(format!(
                "{} token types for {n} tokens (tokenizer.ggml.token_type)",
                v.token_types.len()
            )));
        } else {
            v.token_types
                .iter()
                .enumerate()
                .map(|(i, &t)| {
                    TokenType::from_ggml(t).ok_or_else(|| {
                        Error::InvalidVocab(format!("token {i} has unknown token type {t}"))
                    })
                })
                .collect::<Result<_>>()?
        };
        let mut types = types;
        for (i, text) in v.tokens.iter().enumerate() {
            if matches!(types[i], TokenType::Normal | TokenType::UserDefined)
                && CONTROL_BY_TEXT.contains(&text.as_str())
            {
                types[i] = TokenType::Control;
            }
        }
        let unk = check_id(v.unk_id, n, "unknown_token_id")?;
        let (model, is_spm) = match v.model.as_str() {
            "gpt2" => {
                let normal = |i: usize| types[i] == TokenType::Normal;
                (
                    Model::Bpe(Box::new(Bpe::new(
                        v.pre.as_deref(),
                        &v.tokens,
                        normal,
                        &v.merges,
                        unk,
                    )?)),
                    false,
                )
            }
            "llama" => {
                let is_byte = |i: usize| types[i] == TokenType::Byte;
                (
                    Model::Spm(Box::new(Spm::new(&v.tokens, &v.scores, is_byte, unk)?)),
                    true,
                )
            }
            other => return Err(Error::UnknownModel(other.to_string())),
        };
        let default_add_bos = match &model {
            Model::Spm(_) => true,
            Model::Bpe(m) => m.pre().adds_bos_by_default(),
        };
        let pieces = v
            .tokens
            .iter()
            .zip(&types)
            .map(|(t, &ty)| decode::token_bytes(t, ty, is_spm).into_boxed_slice())
            .collect();
        let specials = SpecialMatcher::new(
            v.tokens
                .iter()
                .zip(&types)
                .enumerate()
                .map(|(i, (t, &ty))| (i as u32, t.as_str(), ty)),
        );
        Ok(Tokenizer {
            model,
            specials,
            types,
            pieces,
            bos: check_id(v.bos_id, n, "bos_token_id")?,
            eos: check_id(v.eos_id, n, "eos_token_id")?,
            eot: check_id(v.eot_id, n, "eot_token_id")?,
            pad: check_id(v.pad_id, n, "padding_token_id")?,
            unk,
            add_bos: v.add_bos.unwrap_or(default_add_bos),
            add_eos: v.add_eos.unwrap_or(false),
            add_space_prefix: is_spm && v.add_space_prefix.unwrap_or(true),
        })
    }

    /// Token ids of `text`, without BOS/EOS. With `allow_special`, control tokens written in
    /// the text (`<|im_end|>`) become their ids; without, they are tokenized as plain text.
    /// User-defined tokens are always matched.
    pub fn encode(&self, text: &str, allow_special: bool) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        self.encode_into(text, allow_special, &mut out);
        out
    }

    /// Like [`Tokenizer::encode`], with BOS/EOS added as the model's metadata asks.
    pub fn encode_with_bos_eos(&self, text: &str, allow_special: bool) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if let (true, Some(bos)) = (self.add_bos, self.bos) {
            out.push(bos);
        }
        self.encode_into(text, allow_special, &mut out);
        if let (true, Some(eos)) = (self.add_eos, self.eos) {
            out.push(eos);
        }
        out
    }

    fn encode_into(&self, text: &str, allow_special: bool, out: &mut Vec<u32>) {
        self.encode_continuation(text, allow_special, true, out);
    }

    /// Encodes `text` as the continuation of a longer text that was encoded in parts (a chat
    /// prompt whose markup and message text allow special tokens differently): the result
    /// equals encoding the whole text at once wherever the parts meet at a pre-token
    /// boundary. `after_special` says whether the text so far ended with a special token
    /// (or is empty): only then does SentencePiece's `add_space_prefix` put a space before
    /// `text`, as it would in the whole text. Returns the same flag for the next part.
    pub fn encode_continuation(
        &self,
        text: &str,
        allow_special: bool,
        after_special: bool,
        out: &mut Vec<u32>,
    ) -> bool {
        let mut fragments = Vec::new();
        self.specials.partition(text, allow_special, &mut fragments);
        SCRATCH.with(|cell| {
            let mut guard = cell.borrow_mut();
            let (bpe_s, spm_s) = &mut *guard;
            // SentencePiece prefixes a space to text at the start and after each special token.
            let mut after_special = after_special;
            for f in fragments {
                match f {
                    Fragment::Token(id) => {
                        out.push(id);
                        after_special = true;
                    }
                    Fragment::Text(t) => {
                        match &self.model {
                            Model::Bpe(m) => m.encode(t, bpe_s, out),
                            Model::Spm(m) => {
                                m.encode(t, self.add_space_prefix && after_special, spm_s, out)
                            }
                        }
                        after_special = false;
                    }
                }
            }
            after_special
        })
    }

    /// Decodes ids to text. Control tokens are rendered as their text only with
    /// `render_special`. Bytes that are not valid UTF-8 become U+FFFD (only here, at the end).
    pub fn decode(&self, ids: &[u32], render_special: bool) -> Result<String> {
        let mut bytes = Vec::new();
        for &id in ids {
            let piece = self.piece_bytes(id, render_special)?;
            // The first piece with text (a hidden BOS before it does not count).
            bytes.extend_from_slice(if bytes.is_empty() {
                self.strip_space_prefix(piece)
            } else {
                piece
            });
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The bytes token `id` contributes to decoded text.
    pub fn piece_bytes(&self, id: u32, render_special: bool) -> Result<&[u8]> {
        let i = id as usize;
        let (Some(piece), Some(&ty)) = (self.pieces.get(i), self.types.get(i)) else {
            return Err(Error::TokenOutOfRange {
                id,
                vocab_size: self.pieces.len(),
            });
        };
        let hidden = matches!(ty, TokenType::Control | TokenType::Unused) && !render_special;
        Ok(if hidden { &[] } else { piece })
    }

    /// The first piece of a SentencePiece text (the first that is not empty) loses the space
    /// `add_space_prefix` put there.
    fn strip_space_prefix<'a>(&self, piece: &'a [u8]) -> &'a [u8] {
        if self.add_space_prefix {
            piece.strip_prefix(b" ").unwrap_or(piece)
        } else {
            piece
        }
    }

    /// A fresh incremental decoder for a stream of ids from this tokenizer.
    pub fn stream_decoder(&self, render_special: bool) -> StreamDecoder<'_> {
        StreamDecoder::new(self, render_special)
    }

    /// The ids that end generation: EOS, EOT, and the control tokens chat formats end a turn
    /// with (`<|im_end|>`, `<end_of_turn>`, `<|eot_id|>`, ...) that this vocabulary has — a
    /// chat model often ends its turn with one of these while its EOS is another token.
    /// Scans the vocabulary: call once per model.
    pub fn end_of_generation_ids(&self) -> Vec<u32> {
        const END_OF_TURN: [&str; 12] = [
            "<|im_end|>",
            "<|eot_id|>",
            "<|eom_id|>",
            "<|end_of_text|>",
            "<end_of_turn>",
            "<|endoftext|>",
            "<|end|>",
            "<|return|>",
            "<\u{ff5c}end\u{2581}of\u{2581}sentence\u{ff5c}>",
            "</s>",
            "<eos>",
            "<EOT>",
        ];
        let mut ids: Vec<u32> = [self.eos, self.eot].into_iter().flatten().collect();
        for id in 0..self.vocab_size() as u32 {
            if self.token_type(id) != Some(TokenType::Control) || ids.contains(&id) {
                continue;
            }
            if let Ok(bytes) = self.piece_bytes(id, true) {
                if END_OF_TURN.iter().any(|t| t.as_bytes() == bytes) {
                    ids.push(id);
                }
            }
        }
        ids
    }

    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }
    pub fn token_type(&self, id: u32) -> Option<TokenType> {
        self.types.get(id as usize).copied()
    }
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }
    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }
    pub fn eot_id(&self) -> Option<u32> {
        self.eot
    }
    pub fn pad_id(&self) -> Option<u32> {
        self.pad
    }
    pub fn unk_id(&self) -> Option<u32> {
        self.unk
    }
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }
    pub fn add_eos(&self) -> bool {
        self.add_eos
    }
}
