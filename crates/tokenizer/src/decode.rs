//! Token ids back to text: each token's bytes (byte-level BPE spelling undone, `▁` back to a
//! space, `<0xNN>` to its byte), and [`StreamDecoder`], which emits text as ids arrive but only
//! whole UTF-8 characters, holding back a character split across tokens.

use crate::bpe::decode_spelling;
use crate::error::Result;
use crate::spm::parse_byte_token;
use crate::vocab::TokenType;
use crate::Tokenizer;

/// The bytes a token stands for in decoded text.
pub(crate) fn token_bytes(text: &str, ty: TokenType, spm: bool) -> Vec<u8> {
    match ty {
        TokenType::Normal if spm => text.replace('\u{2581}', " ").into_bytes(),
        TokenType::Normal => decode_spelling(text).unwrap_or_else(|| text.as_bytes().to_vec()),
        TokenType::Byte => match parse_byte_token(text) {
            Some(b) => vec![b],
            None => text.as_bytes().to_vec(),
        },
        // Control, user-defined, unknown, unused: their text as written.
        _ => text.as_bytes().to_vec(),
    }
}

/// Incremental detokenizer: feed ids one at a time, get the text that is complete so far.
/// The concatenation of everything it returns equals [`Tokenizer::decode`] of all the ids.
pub struct StreamDecoder<'t> {
    tok: &'t Tokenizer,
    render_special: bool,
    /// Bytes received but not yet emitted: an incomplete UTF-8 sequence at the end.
    pending: Vec<u8>,
    /// No text has come yet: the next piece loses a leading `add_space_prefix` space.
    first: bool,
}

impl<'t> StreamDecoder<'t> {
    pub(crate) fn new(tok: &'t Tokenizer, render_special: bool) -> Self {
        StreamDecoder {
            tok,
            render_special,
            pending: Vec::new(),
            first: true,
        }
    }

    /// Adds one token; returns the text that became complete (possibly empty).
    pub fn push(&mut self, id: u32) -> Result<String> {
        let piece = self.tok.piece_bytes(id, self.render_special)?;
        let piece = if self.first {
            self.tok.strip_space_prefix(piece)
        } else {
            piece
        };
        // Until a piece with text arrives (a hidden BOS has none), the next one is "first".
        if !piece.is_empty() {
            self.first = false;
        }
        self.pending.extend_from_slice(piece);
        Ok(self.take_complete())
    }

    /// Ends the stream: whatever is still held (a truncated character) comes out as U+FFFD.
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }

    /// Emits the longest prefix that will not change with more bytes: valid UTF-8, with each
    /// invalid sequence replaced by U+FFFD exactly as `String::from_utf8_lossy` does.
    fn take_complete(&mut self) -> String {
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    // `valid` is the prefix from_utf8 just reported as valid.
                    out.push_str(std::str::from_utf8(valid).expect("invariant: checked prefix"));
                    match e.error_len() {
                        Some(bad) => {
                            out.push('\u{FFFD}');
                            rest = &after[bad..];
                        }
                        None => {
                            rest = after; // incomplete character: wait for more bytes
                            break;
                        }
                    }
                }
            }
        }
        let keep = rest.len();
        let drop = self.pending.len() - keep;
        self.pending.drain(..drop);
        out
    }
}
