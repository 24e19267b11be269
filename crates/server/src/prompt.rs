//! The server's side of prompt encoding. Chat prompts are encoded by `kaiyuan_chat`
//! ([`encode_rendered`], re-exported here), next to the templates, so the CLI and the server
//! feed a model the same ids; completions recognise control tokens written in the prompt, as
//! llama-server does; and a token's text for `logprobs`.

pub use kaiyuan_chat::{encode_rendered, PromptTokens};
use kaiyuan_tokenizer::Tokenizer;

/// Tokenizes a completions prompt: BOS/EOS as the model asks, control tokens recognised
/// (the caller writes the whole prompt, as with llama-server).
pub fn encode_text(tok: &Tokenizer, text: &str) -> Vec<u32> {
    kaiyuan_chat::encode_text(tok, text, true)
}

/// The text of token `id` as a response shows it (control tokens by their text), and its
/// bytes. Pieces that are not whole UTF-8 (a byte of a longer character) show U+FFFD.
pub fn token_text(tok: &Tokenizer, id: u32) -> (String, Vec<u8>) {
    let bytes = tok.piece_bytes(id, true).unwrap_or_default().to_vec();
    (String::from_utf8_lossy(&bytes).into_owned(), bytes)
}
