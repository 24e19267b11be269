//! Fuzz target: the structured-output front end. The input's first byte picks the kind
//! (JSON schema strict or lenient, Lark, regex, or a `json_object`) and the rest is its
//! source; it is compiled against SmolLM2's vocabulary (prepared once) and, when it
//! compiles, driven a few steps: compute the mask, commit a token the mask allows (picked
//! by the input), also on a fork. Everything may fail with a `GrammarError`, never panic,
//! and a committed token the mask allowed is never refused by the grammar (the compiler's
//! resource limits may still stop it).
#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use kaiyuan_gguf::GgufFile;
use kaiyuan_grammar::{GrammarSpec, GrammarVocab, TokenMask};
use kaiyuan_tokenizer::{Tokenizer, Vocab};
use libfuzzer_sys::fuzz_target;

const MODEL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const STEPS: usize = 4;

fn vocab() -> &'static GrammarVocab {
    static VOCAB: OnceLock<GrammarVocab> = OnceLock::new();
    VOCAB.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../models")
            .join(MODEL);
        let file = GgufFile::open(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run scripts/fetch-models)", path.display()));
        let tok = Tokenizer::from_vocab(&Vocab::from_gguf(&file).expect("tokenizer metadata"))
            .expect("tokenizer");
        let eog = tok.end_of_generation_ids();
        GrammarVocab::new(Arc::new(tok), &eog).expect("grammar vocabulary")
    })
}

/// The `pick`-th allowed token (wrapping), scanning from a point the input chooses.
fn allowed_token(mask: &TokenMask, vocab_size: usize, pick: u32) -> Option<u32> {
    let n = mask.count();
    if n == 0 {
        return None;
    }
    let want = pick as usize % n;
    (0..vocab_size as u32)
        .filter(|&id| mask.allows(id))
        .nth(want)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // The last STEPS * 2 bytes choose the tokens; the source is what comes before.
    let split = rest.len().saturating_sub(STEPS * 2);
    let (source, picks) = rest.split_at(split);
    let Ok(source) = std::str::from_utf8(source) else {
        return;
    };
    let spec = match mode % 5 {
        0 | 1 => match serde_json::from_str(source) {
            Ok(schema) => GrammarSpec::JsonSchema {
                schema,
                strict: mode % 5 == 0,
            },
            Err(_) => return,
        },
        2 => GrammarSpec::Lark(source.to_string()),
        3 => GrammarSpec::Regex(source.to_string()),
        _ => GrammarSpec::JsonObject,
    };
    let vocab = vocab();
    let Ok(mut constraint) = vocab.compile(&spec) else {
        return;
    };
    let mut fork = None;
    for (step, pick) in picks.chunks(2).enumerate() {
        let pick = u32::from(pick[0]) << 8 | u32::from(*pick.get(1).unwrap_or(&0));
        let Ok(mask) = constraint.compute_mask() else {
            return;
        };
        if step == 1 {
            fork = Some(constraint.fork());
        }
        let Some(token) = allowed_token(&mask, vocab.vocab_size(), pick) else {
            return;
        };
        if constraint.is_finished() {
            return;
        }
        // Only the compiler's resource limits may stop a token the mask allowed.
        if let Err(e) = constraint.commit(token) {
            let message = e.to_string();
            assert!(
                !message.contains("satisfy"),
                "a token the mask allowed is refused: {message}"
            );
            return;
        }
    }
    if let Some(mut fork) = fork {
        if let Ok(mask) = fork.compute_mask() {
            if let Some(token) = allowed_token(&mask, vocab.vocab_size(), 0) {
                let _ = fork.commit(token);
            }
        }
    }
});
