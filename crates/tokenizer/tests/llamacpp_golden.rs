//! Checks both test models' tokenizers against llama.cpp's own tokenizer, the reference:
//! the ids `llama-cpp-python` gives for every corpus string, with control tokens not recognised
//! and recognised, BOS as llama.cpp applies it, and decoding as llama.cpp decodes (testdata/golden/tokenizer/*.llamacpp.json,
//! made by tools/tokenizer_llamacpp_golden.py). No tolerance: every id must match.

mod support;

use kaiyuan_tokenizer::Tokenizer;
use support::{read_llamacpp_golden, read_vocab, GEMMA3, SMOLLM2};

fn check_model(file: &str, golden: &str) {
    let tok = Tokenizer::from_vocab(&read_vocab(file)).expect("build tokenizer");
    let g = read_llamacpp_golden(golden);
    assert!(g.reference.starts_with("llama.cpp"), "{}", g.reference);
    assert!(g.cases.len() >= 300, "{} strings", g.cases.len());
    let mut failures = Vec::new();
    let mut special_differs = 0;
    for c in &g.cases {
        for (allow_special, want) in [(false, &c.ids), (true, &c.ids_special)] {
            let got = tok.encode(&c.text, allow_special);
            if &got != want {
                failures.push(format!(
                    "(special={allow_special}) {:?}\n   want {want:?}\n   got  {got:?}",
                    c.text
                ));
            }
        }
        special_differs += usize::from(c.ids != c.ids_special);
        // Decoding llama.cpp's ids as llama.cpp does (control tokens hidden or rendered).
        for (ids, render, want) in [
            (&c.ids, false, &c.decoded),
            (&c.ids_special, false, &c.decoded_special_hidden),
            (&c.ids_special, true, &c.decoded_special_rendered),
        ] {
            let got = tok.decode(ids, render).expect("decode");
            if &got != want {
                failures.push(format!(
                    "(decode, render_special={render}) {ids:?}\n   want {want:?}\n   got  {got:?}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{golden}: {} differences from llama.cpp over {} strings:\n{}",
        failures.len(),
        g.cases.len(),
        failures.join("\n")
    );
    // The corpus must exercise control tokens in text, or the special mode checks nothing.
    assert!(special_differs >= 10, "{special_differs}");
    assert!(!g.bos.is_empty());
    for (text, want) in &g.bos {
        assert_eq!(
            &tok.encode_with_bos_eos(text, true),
            want,
            "{golden}: with BOS: {text:?}"
        );
    }
}

#[test]
fn smollm2_matches_llamacpp() {
    check_model(SMOLLM2, "smollm2");
}

#[test]
fn gemma3_matches_llamacpp() {
    check_model(GEMMA3, "gemma3");
}
