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

/// `tokenizer.ggml.pre` names for which llama.cpp's `llama_detokenize` "cleans" spaces (drops
/// the space before `?!.,` and before some apostrophe contractions, `clean_spaces` in its
/// llama-vocab.cpp). Kaiyuan's decode does not: it gives back the text, as llama-server's
/// `/detokenize` and streamed token pieces do. A known difference, tolerated only where
/// cleaning Kaiyuan's decoding as llama.cpp does ([`llamacpp_clean_spaces`]) gives llama.cpp's.
const CLEAN_SPACES: &[&str] = &["falcon", "glm4", "chatglm-bpe"];

/// What llama.cpp's `clean_spaces` does to a decoded text, written here from reading its
/// llama-vocab.cpp (three passes, each over the previous one's output): a space just before
/// `?`, `!`, `.` or `,` goes; ` ' ` becomes `'`; a space just before `'s`, `'m`, `'re` or
/// `'ve` goes. Only to tell that a decoding differs from llama.cpp's by this alone.
fn llamacpp_clean_spaces(text: &str) -> String {
    let pass = |s: &[u8], drop: &dyn Fn(&[u8], usize) -> usize| -> Vec<u8> {
        let (mut out, mut i) = (Vec::with_capacity(s.len()), 0);
        while i < s.len() {
            // `drop` says how many bytes from `i` on to remove (0: keep `s[i]`).
            match drop(s, i) {
                0 => {
                    out.push(s[i]);
                    i += 1;
                }
                n => i += n,
            }
        }
        out
    };
    let at = |s: &[u8], i: usize| s.get(i).copied();
    let b = text.as_bytes().to_vec();
    let b = pass(&b, &|s, i| {
        usize::from(s[i] == b' ' && matches!(at(s, i + 1), Some(b'?' | b'!' | b'.' | b',')))
    });
    // ` ' `: both spaces go, the apostrophe stays.
    let b = pass(&b, &|s, i| {
        let before = s[i] == b' ' && at(s, i + 1) == Some(b'\'') && at(s, i + 2) == Some(b' ');
        let after = i > 1 && s[i] == b' ' && s[i - 1] == b'\'' && s[i - 2] == b' ';
        usize::from(before || after)
    });
    let b = pass(&b, &|s, i| {
        let next = |k: usize| at(s, i + k);
        let contraction = next(1) == Some(b'\'')
            && (matches!((next(2), next(3)), (Some(b's' | b'm'), _))
                || matches!((next(2), next(3)), (Some(b'r' | b'v'), Some(b'e'))));
        usize::from(s[i] == b' ' && contraction)
    });
    String::from_utf8_lossy(&b).into_owned()
}

/// The whole tokenizer corpus (868 strings and 13 probes) through llama.cpp with some of these
/// vocabularies, and with vocabularies relabelled with other `tokenizer.ggml.pre` names
/// (testdata/golden/tokenizer/vendor_vocab.llamacpp.json, made by
/// tools/vendor_vocab_llamacpp_golden.py): ids with control tokens as text and recognised, BOS
/// as llama.cpp adds it for the name, and llama.cpp's decoding of its ids. No tolerance but
/// [`CLEAN_SPACES`].
#[test]
fn corpus_matches_llamacpp_with_relabelled_vocabularies() {
    use sha2::{Digest, Sha256};
    let dir = vocab_dir();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let golden = root.join("testdata/golden/tokenizer/vendor_vocab.llamacpp.json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&golden).expect("read golden"))
            .expect("golden JSON");
    let corpus = root.join("testdata/golden/tokenizer/smollm2.llamacpp.json");
    let corpus: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&corpus).expect("read corpus"))
            .expect("corpus JSON");
    let mut texts: Vec<String> = corpus["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| c["text"].as_str().expect("text").to_owned())
        .collect();
    texts.extend(
        doc["probes"]
            .as_array()
            .expect("probes")
            .iter()
            .map(|t| t.as_str().expect("probe").to_owned()),
    );
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .expect("ids")
            .iter()
            .map(|x| x.as_u64().expect("id") as u32)
            .collect()
    };
    let vocabs = doc["vocabularies"].as_object().expect("vocabularies");
    assert_eq!(vocabs.len(), 9);
    let mut report = Vec::new();
    let mut checked = 0;
    let mut tolerated = 0;
    for (key, v) in vocabs {
        let file = dir.join(v["file"].as_str().expect("file"));
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let sha: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            sha,
            v["sha256"].as_str().expect("sha256"),
            "{key}: other file"
        );
        let gguf = GgufFile::open(&file).expect("open vocabulary");
        let mut vocab = Vocab::from_gguf(&gguf).expect("tokenizer metadata");
        if let Some(pre) = v["pre"].as_str() {
            vocab.pre = Some(pre.to_owned());
        }
        let tok = Tokenizer::from_vocab(&vocab).unwrap_or_else(|e| panic!("{key}: {e}"));
        // An entry whose ids equal an earlier one's (same vocabulary, same split) names it.
        let rows = match v["same_ids_as"].as_str() {
            Some(other) => &vocabs[other]["ids"],
            None => &v["ids"],
        };
        let rows = rows.as_array().expect("ids rows");
        assert_eq!(rows.len(), texts.len(), "{key}: rows");
        let special = v["ids_special"].as_object().expect("ids_special");
        for (i, (text, row)) in texts.iter().zip(rows).enumerate() {
            let want = ids(row);
            let want_special = special.get(&i.to_string()).map_or(want.clone(), ids);
            for (allow, want) in [(false, want), (true, want_special)] {
                let got = tok.encode(text, allow);
                if got != want {
                    report.push(format!(
                        "{key} (special={allow}): {text:?}\n   want {want:?}\n   got  {got:?}"
                    ));
                }
                checked += 1;
            }
        }
        // Decoding llama.cpp's ids: llama.cpp's `llama_detokenize`, except where it cleans
        // spaces (see CLEAN_SPACES): there Kaiyuan gives the text back.
        let decoded = v["decoded"].as_object().expect("decoded");
        let cleans = CLEAN_SPACES.contains(&v["pre"].as_str().unwrap_or(key));
        for (i, (text, row)) in texts.iter().zip(rows).enumerate() {
            let want = decoded
                .get(&i.to_string())
                .map_or(text.as_str(), |d| d.as_str().expect("decoded text"));
            let got = tok.decode(&ids(row), false).expect("decode");
            if got == want {
                continue;
            }
            if cleans && llamacpp_clean_spaces(&got) == want {
                tolerated += 1;
                continue;
            }
            report.push(format!(
                "{key} (decode): {text:?}\n   want {want:?}\n   got  {got:?}"
            ));
        }
        for (text, want) in v["bos"].as_object().expect("bos") {
            let got = tok.encode_with_bos_eos(text, true);
            if got != ids(want) {
                report.push(format!("{key} (BOS): {text:?}: want {want} got {got:?}"));
            }
        }
    }
    assert!(
        report.is_empty(),
        "{} differences from llama.cpp ({checked} encodings):\n{}",
        report.len(),
        report.join("\n")
    );
    // 15 strings for each of the three entries that clean spaces (" ?", " 's", ...).
    assert_eq!(
        tolerated, 45,
        "decodings that differ only by llama.cpp's space cleaning"
    );
}
