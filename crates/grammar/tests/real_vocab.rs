//! The two real test vocabularies (SmolLM2's 49k byte-level BPE, Gemma 3's 262k
//! SentencePiece; run scripts/fetch-models first): a forced JSON prefix allows exactly the
//! tokens whose text starts it, control tokens never count as text, and the end-of-turn
//! tokens end a complete output.

use std::path::PathBuf;
use std::sync::Arc;

use kaiyuan_gguf::GgufFile;
use kaiyuan_grammar::{GrammarSpec, GrammarVocab};
use kaiyuan_tokenizer::{TokenType, Tokenizer, Vocab};
use serde_json::json;

fn tokenizer(file: &str) -> Arc<Tokenizer> {
    let dir = std::env::var_os("KAIYUAN_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"));
    let path = dir.join(file);
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-models",
        path.display()
    );
    let gguf = GgufFile::open(&path).expect("model opens");
    Arc::new(Tokenizer::from_vocab(&Vocab::from_gguf(&gguf).unwrap()).unwrap())
}

const MODELS: [&str; 2] = [
    "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma-3-270m-q4_k_m.gguf",
];

#[test]
fn a_forced_prefix_allows_the_tokens_that_start_it() {
    for file in MODELS {
        let tok = tokenizer(file);
        let eog = tok.end_of_generation_ids();
        let vocab = GrammarVocab::new(Arc::clone(&tok), &eog).unwrap();
        // One required key: the output must begin with `{"name": "`.
        let schema = json!({
            "type": "object",
            "properties": {"name": {"type": "string"}},
            "required": ["name"],
            "additionalProperties": false
        });
        let mut c = vocab
            .compile(&GrammarSpec::JsonSchema {
                schema,
                strict: true,
            })
            .unwrap();
        let mask = c.compute_mask().unwrap();
        let forced = b"{\"name\": \"";
        let allowed: Vec<u32> = (0..tok.vocab_size() as u32)
            .filter(|&t| mask.allows(t))
            .collect();
        assert!(!allowed.is_empty(), "{file}");
        for &t in &allowed {
            let text = tok.piece_bytes(t, false).unwrap();
            assert!(
                !text.is_empty() && forced.starts_with(text),
                "{file}: token {t} ({:?}) is allowed",
                String::from_utf8_lossy(text)
            );
            assert_ne!(tok.token_type(t), Some(TokenType::Control));
        }
        // The tokenizer's own first token of the forced text is among them.
        let first = tok.encode(std::str::from_utf8(forced).unwrap(), false)[0];
        assert!(allowed.contains(&first), "{file}: {first} not allowed");
    }
}

#[test]
fn a_complete_output_allows_only_the_end_of_generation_tokens() {
    for file in MODELS {
        let tok = tokenizer(file);
        let eog = tok.end_of_generation_ids();
        let vocab = GrammarVocab::new(Arc::clone(&tok), &eog).unwrap();
        let mut c = vocab.compile(&GrammarSpec::Regex("yes|no".into())).unwrap();
        for t in tok.encode("yes", false) {
            let mask = c.compute_mask().unwrap();
            assert!(mask.allows(t), "{file}: {t}");
            c.commit(t).unwrap();
        }
        let mask = c.compute_mask().unwrap();
        let allowed: Vec<u32> = (0..tok.vocab_size() as u32)
            .filter(|&t| mask.allows(t))
            .collect();
        let mut expected = eog.clone();
        expected.sort_unstable();
        assert_eq!(allowed, expected, "{file}");
    }
}

fn allowed_ids(mask: &kaiyuan_grammar::TokenMask, tok: &Tokenizer) -> Vec<u32> {
    (0..tok.vocab_size() as u32)
        .filter(|&t| mask.allows(t))
        .collect()
}

#[test]
fn reasoning_comes_first_then_the_grammar() {
    let tok = tokenizer(MODELS[0]);
    let eog = tok.end_of_generation_ids();
    let vocab = GrammarVocab::new(Arc::clone(&tok), &eog).unwrap();
    let spec = GrammarSpec::JsonSchema {
        schema: json!({"type": "object"}),
        strict: true,
    };
    let close_ids = tok.encode("</think>", false);
    let brace = tok.encode("{", false)[0];

    // The model closes the reasoning itself: anything goes until `</think>`, then JSON.
    let mut c = vocab
        .compile(&spec)
        .unwrap()
        .after_reasoning("</think>", close_ids.clone(), None)
        .unwrap();
    for t in tok.encode("Let me think.</think>", false) {
        let mask = c.compute_mask().unwrap();
        assert_eq!(
            mask.count(),
            tok.vocab_size() - eog.len(),
            "free while reasoning, but no end of generation"
        );
        assert!(eog.iter().all(|&t| !mask.allows(t)));
        assert!(!c.is_finished());
        c.commit(t).unwrap();
    }
    let mask = c.compute_mask().unwrap();
    assert!(
        mask.allows(brace) && mask.count() < 1000,
        "the grammar starts"
    );

    // A budget of 3 reasoning tokens: then the close tag's tokens are forced, one by one.
    let mut c = vocab
        .compile(&spec)
        .unwrap()
        .after_reasoning("</think>", close_ids.clone(), Some(3))
        .unwrap();
    for t in tok.encode("one two three four", false).into_iter().take(3) {
        c.compute_mask().unwrap();
        c.commit(t).unwrap();
    }
    for &t in &close_ids {
        assert_eq!(allowed_ids(&c.compute_mask().unwrap(), &tok), vec![t]);
        c.commit(t).unwrap();
    }
    let mask = c.compute_mask().unwrap();
    assert!(mask.allows(brace) && !mask.allows(close_ids[0]));
    // A fork made during reasoning keeps its own count.
    let a = vocab
        .compile(&spec)
        .unwrap()
        .after_reasoning("</think>", close_ids.clone(), Some(1))
        .unwrap();
    let mut b = a.fork();
    b.compute_mask().unwrap();
    b.commit(tok.encode("x", false)[0]).unwrap();
    assert_eq!(
        allowed_ids(&b.compute_mask().unwrap(), &tok),
        vec![close_ids[0]]
    );
    let mut a = a;
    assert_eq!(
        a.compute_mask().unwrap().count(),
        tok.vocab_size() - eog.len()
    );
}

#[test]
fn a_lazy_grammar_starts_at_its_trigger() {
    let tok = tokenizer(MODELS[0]);
    let eog = tok.end_of_generation_ids();
    let vocab = GrammarVocab::new(Arc::clone(&tok), &eog).unwrap();
    let spec = GrammarSpec::Lark(r#"start: "\n" %json {"type": "object"} "\n</call>""#.into());
    let triggers = ["<call>".to_string()];
    let fresh = || vocab.compile(&spec).unwrap().lazy(&triggers).unwrap();

    // Before the trigger anything goes, the end of generation included.
    let mut c = fresh();
    assert_eq!(c.compute_mask().unwrap().count(), tok.vocab_size());
    for t in tok.encode("I will call <", false) {
        c.compute_mask().unwrap();
        c.commit(t).unwrap();
        assert!(!c.is_active());
    }
    // `call>` completes the trigger (split across tokens): then only the grammar.
    for t in tok.encode("call>", false) {
        c.compute_mask().unwrap();
        c.commit(t).unwrap();
    }
    assert!(c.is_active());
    let mask = c.compute_mask().unwrap();
    let newline = tok.encode("\n", false)[0];
    assert!(
        mask.allows(newline) && mask.count() < 100,
        "{}",
        mask.count()
    );
    assert!(eog.iter().all(|&t| !mask.allows(t)));
    for t in tok.encode("\n{\"a\": 1}\n</call>", false) {
        c.compute_mask().unwrap();
        c.commit(t).unwrap();
    }
    assert!(c.is_finished() || c.compute_mask().unwrap().count() <= eog.len());

    // Text the trigger's own token writes after it is fed to the grammar: the trigger
    // `Hel` ends inside the token `Hello`, whose `lo` must then fit the grammar.
    let hello = tok.encode("Hello", false);
    assert_eq!(hello.len(), 1, "`Hello` is one token in this vocabulary");
    let hel = ["Hel".to_string()];
    let fits = GrammarSpec::Lark(r#"start: "lo world""#.into());
    let mut c = vocab.compile(&fits).unwrap().lazy(&hel).unwrap();
    c.compute_mask().unwrap();
    c.commit(hello[0]).unwrap();
    assert!(c.is_active());
    let world = tok.encode(" world", false);
    assert!(c.compute_mask().unwrap().allows(world[0]));
    let misfit = GrammarSpec::Lark(r#"start: "xyz""#.into());
    let mut c = vocab.compile(&misfit).unwrap().lazy(&hel).unwrap();
    c.compute_mask().unwrap();
    let err = c.commit(hello[0]).unwrap_err().to_string();
    assert!(err.contains("after the trigger"), "{err}");

    // A model that never writes the trigger stays free and may end.
    let mut c = fresh();
    for t in tok.encode("Just an answer.", false) {
        assert_eq!(c.compute_mask().unwrap().count(), tok.vocab_size());
        c.commit(t).unwrap();
    }
    assert!(!c.is_finished() && !c.is_active());
}

/// Walks `spec` taking, at each step, the first token the mask allows: every such token
/// must be accepted (found by fuzzing: grammar_compile). A grammar the vocabulary cannot
/// write may be refused, or get stuck where no token fits; that is an error, not a mask.
fn follow_first_allowed(vocab: &GrammarVocab, spec: GrammarSpec) {
    let Ok(mut c) = vocab.compile(&spec) else {
        return;
    };
    for _ in 0..32 {
        if c.is_finished() {
            return;
        }
        let Ok(mask) = c.compute_mask() else {
            return;
        };
        let token = (0..vocab.vocab_size() as u32)
            .find(|&id| mask.allows(id))
            .expect("a mask is never empty");
        c.commit(token)
            .unwrap_or_else(|e| panic!("{spec:?}: allowed token {token} refused: {e}"));
    }
}

/// Text the grammar forces is tokenized to decide which tokens the mask allows. Bytes that
/// SmolLM2's vocabulary has no token for (0x04) encode as the unknown token, and a forced
/// prefix ending inside a character is not UTF-8: neither may put a token that does not
/// spell those bytes in the mask.
#[test]
fn forced_bytes_only_allow_tokens_that_spell_them() {
    let tok = tokenizer(MODELS[0]);
    let vocab = GrammarVocab::new(Arc::clone(&tok), &tok.end_of_generation_ids()).unwrap();
    follow_first_allowed(&vocab, GrammarSpec::Regex("1\u{4}x".into()));
    follow_first_allowed(&vocab, GrammarSpec::Regex("1+\u{0}\u{3}\u{4}\u{1}".into()));
    // The fuzzer's input: the mask once allowed 0x00 where 0x03 was forced.
    let nul = |n: usize| "\u{0}".repeat(n);
    let found = format!(
        "1+\u{0}\u{3}\u{4}{}o\"{}?<{}\u{4}{}",
        nul(4),
        nul(11),
        nul(28),
        nul(14)
    );
    follow_first_allowed(&vocab, GrammarSpec::Regex(found));
    // Forced text whose missing byte comes after a few tokens (the mask was off by them).
    follow_first_allowed(&vocab, GrammarSpec::Regex("inLength\u{4}\u{0}".into()));
    follow_first_allowed(&vocab, GrammarSpec::Regex("ab(é|ê)".into()));
}
