//! The tokenizer crate's error type: bad vocabulary metadata and out-of-range token ids.

use std::fmt;

/// Why a tokenizer could not be built, or a request could not be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// `tokenizer.ggml.model` names a tokenizer family this crate does not implement.
    UnknownModel(String),
    /// `tokenizer.ggml.pre` names a pre-tokenizer variant this crate does not implement.
    /// Tokenizing with another variant would silently give different ids, so this is an error.
    UnknownPreTokenizer(String),
    /// The vocabulary metadata is inconsistent (array lengths, missing tokens, bad merges...).
    InvalidVocab(String),
    /// A token id outside the vocabulary was given to the decoder.
    TokenOutOfRange { id: u32, vocab_size: usize },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownModel(m) => write!(
                f,
                "unsupported tokenizer model {m:?} (tokenizer.ggml.model)"
            ),
            Error::UnknownPreTokenizer(p) => {
                write!(f, "unsupported pre-tokenizer {p:?} (tokenizer.ggml.pre)")
            }
            Error::InvalidVocab(msg) => write!(f, "invalid tokenizer vocabulary: {msg}"),
            Error::TokenOutOfRange { id, vocab_size } => {
                write!(
                    f,
                    "token id {id} is out of range (vocabulary has {vocab_size} tokens)"
                )
            }
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
