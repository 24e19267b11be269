//! Fuzz target: both test vocabularies (SmolLM2's byte-level BPE, Gemma 3's SentencePiece),
//! loaded once. The input's first byte picks the vocabulary and the mode:
//! - encode arbitrary UTF-8 with and without special-token parsing: every id is in range,
//!   the ids decode, and without special parsing decode(encode(s)) == s (SentencePiece
//!   cannot tell a literal U+2581 from an escaped space, so Gemma skips those texts);
//! - decode arbitrary id lists (the rest of the input as little-endian u32s, ids out of
//!   range included): an error exactly when an id is out of range, never a panic, and the
//!   stream decoder gives the same text as `decode`.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use kaiyuan_gguf::GgufFile;
use kaiyuan_tokenizer::{Tokenizer, Vocab};
use libfuzzer_sys::fuzz_target;

const MODELS: [&str; 2] = [
    "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma-3-270m-q4_k_m.gguf",
];

fn load(name: &str) -> Tokenizer {
    // crates/tokenizer/fuzz -> repository root.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../models")
        .join(name);
    let file = GgufFile::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/fetch-models)", path.display()));
    Tokenizer::from_vocab(&Vocab::from_gguf(&file).expect("tokenizer metadata")).expect("tokenizer")
}

fn tokenizers() -> &'static [Tokenizer; 2] {
    static TOKENIZERS: OnceLock<[Tokenizer; 2]> = OnceLock::new();
    TOKENIZERS.get_or_init(|| MODELS.map(load))
}

fn check_decode(tok: &Tokenizer, ids: &[u32], render_special: bool) -> Option<String> {
    let in_range = ids.iter().all(|&id| (id as usize) < tok.vocab_size());
    let full = tok.decode(ids, render_special);
    assert_eq!(full.is_ok(), in_range, "decode of {ids:?}");
    let mut stream = tok.stream_decoder(render_special);
    let mut streamed = String::new();
    for &id in ids {
        match stream.push(id) {
            Ok(part) => streamed.push_str(&part),
            Err(_) => {
                assert!((id as usize) >= tok.vocab_size());
                return None;
            }
        }
    }
    streamed.push_str(&stream.finish());
    let full = full.ok()?;
    assert_eq!(streamed, full, "stream decode of {ids:?}");
    Some(full)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let which = usize::from(mode & 1);
    let tok = &tokenizers()[which];
    if mode & 2 == 0 {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        for allow_special in [false, true] {
            let ids = tok.encode(text, allow_special);
            assert!(ids.iter().all(|&id| (id as usize) < tok.vocab_size()));
            let decoded = check_decode(tok, &ids, false).expect("encoded ids decode");
            // A byte the vocabulary has no token for becomes the unknown token (as in the
            // reference tokenizers), which decodes to nothing: only then is text lost.
            let lossy = tok.unk_id().is_some_and(|unk| ids.contains(&unk));
            if !allow_special && !lossy && !(which == 1 && text.contains('\u{2581}')) {
                assert_eq!(decoded, text, "round trip (vocabulary {which})");
            }
            let with = tok.encode_with_bos_eos(text, allow_special);
            assert!(with.len() >= ids.len());
            let mut parts = Vec::new();
            let mid = (0..=text.len() / 2)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            let after = tok.encode_continuation(&text[..mid], allow_special, true, &mut parts);
            tok.encode_continuation(&text[mid..], allow_special, after, &mut parts);
            assert!(parts.iter().all(|&id| (id as usize) < tok.vocab_size()));
        }
    } else {
        let ids: Vec<u32> = rest
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            // Mostly ids in range, some far out of it (the top bit keeps them as they are).
            .map(|id| {
                if id & 0x8000_0000 == 0 {
                    id % 0x4_2000
                } else {
                    id
                }
            })
            .collect();
        let render_special = mode & 4 != 0;
        check_decode(tok, &ids, render_special);
        for &id in ids.iter().take(64) {
            let _ = (tok.piece_bytes(id, render_special), tok.token_type(id));
        }
    }
});
