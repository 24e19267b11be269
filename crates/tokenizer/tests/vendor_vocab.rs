//! Checks our tokenizer against llama.cpp's own tokenizer test cases: the vocab-only GGUF files
//! llama.cpp keeps in `models/ggml-vocab-*.gguf`, with `test-tokenizer-0`'s inputs (`.gguf.inp`)
//! and expected ids (`.gguf.out`) beside them, from the llama.cpp tree vendored in the pinned
//! llama-cpp-python sdist. `scripts/fetch-templates` extracts them into `.cache/vendor-vocab/`;
//! nothing of them is committed here.
//!
//! As in llama.cpp's `tests/test-tokenizer-0.cpp`: the inputs are separated by the line
//! `__ggml_vocab_test__` (the separator is `"\n__ggml_vocab_test__\n"`, the text after the last
//! one, if any, is the last case), each `.out` line holds one case's ids separated by spaces,
//! and each case is tokenized with `add_special = false` (no BOS/EOS) and `parse_special =
//! false` (control tokens in the text are plain text; user-defined tokens are still matched):
//! our `Tokenizer::encode(text, false)`. No tolerance: every id of every case must match.
//!
//! A vocabulary our tokenizer does not implement is named in [`REFUSED`] with the reason, and
//! must be refused with an error naming what is missing, never tokenized differently.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kaiyuan_gguf::GgufFile;
use kaiyuan_tokenizer::{Tokenizer, Vocab};

/// Vocabularies (file `ggml-vocab-NAME.gguf`) our tokenizer refuses, with why, and a text the
/// error must contain (the unsupported `tokenizer.ggml.model` or `tokenizer.ggml.pre` value).
const REFUSED: &[(&str, &str, &str)] = &[
    (
        "bert-bge",
        "WordPiece (tokenizer.ggml.model = bert) is not implemented",
        "\"bert\"",
    ),
    (
        "gemma-4",
        "Gemma 4's tokenizer (tokenizer.ggml.model = gemma4) is not implemented",
        "\"gemma4\"",
    ),
];

/// Every vocabulary with test cases in llama-cpp-python 0.3.36's llama.cpp: a guard against a
/// half-extracted folder passing with fewer.
const EXPECTED: &[&str] = &[
    "bert-bge",
    "command-r",
    "deepseek-coder",
    "deepseek-llm",
    "falcon",
    "gemma-4",
    "gpt-2",
    "llama-bpe",
    "llama-spm",
    "mpt",
    "phi-3",
    "qwen2",
    "qwen35",
    "refact",
    "starcoder",
];

fn vocab_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/vendor-vocab");
    assert!(
        dir.join(".sdist-sha256").exists(),
        "{} is missing or incomplete: run scripts/fetch-templates (it extracts llama.cpp's tokenizer test \
         vocabularies from the pinned llama-cpp-python sdist; CI runs it in scripts/test)",
        dir.display()
    );
    dir
}

/// The names (`NAME` of `ggml-vocab-NAME.gguf`) of the vocabularies that have test cases.
fn names_with_cases(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .expect("read .cache/vendor-vocab")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter_map(|f| {
            let name = f.strip_prefix("ggml-vocab-")?.strip_suffix(".gguf.inp")?;
            Some(name.to_owned())
        })
        .filter(|name| dir.join(format!("ggml-vocab-{name}.gguf.out")).exists())
        .collect()
}

fn read_vocab(dir: &Path, name: &str) -> Vocab {
    let path = dir.join(format!("ggml-vocab-{name}.gguf"));
    let file = GgufFile::open(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    Vocab::from_gguf(&file).unwrap_or_else(|e| panic!("{name}: tokenizer metadata: {e}"))
}

/// test-tokenizer-0's cases: (input text, expected ids).
fn read_cases(dir: &Path, name: &str) -> Vec<(String, Vec<u32>)> {
    let read = |ext: &str| {
        let p = dir.join(format!("ggml-vocab-{name}.gguf.{ext}"));
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    };
    let (inp, out) = (read("inp"), read("out"));
    const SEP: &str = "\n__ggml_vocab_test__\n";
    let mut texts = Vec::new();
    let mut rest = inp.as_str();
    while !rest.is_empty() {
        match rest.find(SEP) {
            Some(k) => {
                texts.push(rest[..k].to_owned());
                rest = &rest[k + SEP.len()..];
            }
            None => {
                texts.push(rest.to_owned());
                rest = "";
            }
        }
    }
    let ids: Vec<Vec<u32>> = out
        .lines()
        .map(|line| {
            line.split_whitespace()
                .map(|t| {
                    t.parse()
                        .unwrap_or_else(|e| panic!("{name}.out: {t:?}: {e}"))
                })
                .collect()
        })
        .collect();
    assert_eq!(
        texts.len(),
        ids.len(),
        "{name}: {} inputs but {} lines of expected ids",
        texts.len(),
        ids.len()
    );
    texts.into_iter().zip(ids).collect()
}

#[test]
fn every_expected_vocabulary_is_there() {
    let dir = vocab_dir();
    let have = names_with_cases(&dir);
    for name in EXPECTED {
        assert!(
            have.contains(*name),
            "ggml-vocab-{name}.gguf.inp/.out missing"
        );
    }
    for (name, _, _) in REFUSED {
        assert!(
            EXPECTED.contains(name),
            "REFUSED names {name}, not a test vocabulary"
        );
    }
}

#[test]
fn unsupported_vocabularies_are_refused_with_a_clear_error() {
    let dir = vocab_dir();
    for (name, why, must_name) in REFUSED {
        let Err(err) = Tokenizer::from_vocab(&read_vocab(&dir, name)) else {
            panic!("{name} is listed as refused ({why}) but builds: check it and unlist it");
        };
        let msg = err.to_string();
        assert!(
            msg.contains(must_name) && msg.contains("unsupported"),
            "{name}: the error does not name {must_name}: {msg}"
        );
    }
}

#[test]
fn supported_vocabularies_match_llamacpp_on_every_case() {
    let dir = vocab_dir();
    let mut report = Vec::new();
    let mut checked = 0;
    for name in names_with_cases(&dir) {
        if REFUSED.iter().any(|(n, _, _)| *n == name) {
            continue;
        }
        let tok = match Tokenizer::from_vocab(&read_vocab(&dir, &name)) {
            Ok(t) => t,
            Err(e) => {
                report.push(format!("{name}: refused ({e}) but not listed in REFUSED"));
                continue;
            }
        };
        let cases = read_cases(&dir, &name);
        let mut failed = 0;
        for (text, want) in &cases {
            let got = tok.encode(text, false);
            if &got != want {
                failed += 1;
                report.push(format!(
                    "{name}: {text:?}\n   want {want:?}\n   got  {got:?}"
                ));
            }
        }
        if failed > 0 {
            report.push(format!("{name}: {failed} of {} cases differ", cases.len()));
        }
        checked += cases.len();
    }
    assert!(
        report.is_empty(),
        "differences from llama.cpp's test-tokenizer-0 ({checked} cases checked):\n{}",
        report.join("\n")
    );
    assert!(checked >= 500, "only {checked} cases");
}

/// Falcon's vocabulary has no token for 14 ASCII control bytes and no unknown token: both
/// references drop such characters. Expected ids from HF `tokenizers` 0.23.3 (BPE over the
/// file's tokens and merges, ByteLevel) and llama.cpp (llama-cpp-python 0.3.36, `vocab_only`).
#[test]
fn falcon_drops_characters_it_has_no_token_for() {
    let dir = vocab_dir();
    let tok = Tokenizer::from_vocab(&read_vocab(&dir, "falcon")).expect("falcon builds");
    for (text, want) in [
        ("a\u{3}b", &[76, 77][..]),
        ("x\u{b}y", &[99, 100]),
        ("hello\u{1d} world", &[30835, 1079]),
    ] {
        assert_eq!(tok.encode(text, false), want, "{text:?}");
    }
}
