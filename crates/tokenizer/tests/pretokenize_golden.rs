//! The hand-written pre-tokenizers against the split regexes they implement, run by Hugging
//! Face `tokenizers` (Oniguruma) on the whole corpus (testdata/golden/tokenizer/pretokenize.json,
//! made by tools/tokenizer_golden.py). Needs no model file.

use kaiyuan_tokenizer::PreTokenizer;

#[test]
fn pre_tokenizers_match_reference_regexes() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/golden/tokenizer/pretokenize.json"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read golden")).expect("JSON");
    let texts: Vec<&str> = doc["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(texts.len() >= 300);
    let variants = doc["piece_byte_lengths"].as_object().unwrap();
    assert_eq!(variants.len(), 10);
    for name in ["deepseek-llm", "deepseek-coder", "falcon", "qwen35"] {
        assert!(variants.contains_key(name), "{name}");
    }
    let mut failures = Vec::new();
    for (name, rows) in variants {
        let pre = PreTokenizer::from_name(name).expect("variant");
        for (text, row) in texts.iter().zip(rows.as_array().unwrap()) {
            let want_lens: Vec<usize> = row
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as usize)
                .collect();
            let mut want = Vec::new();
            let mut at = 0;
            for len in want_lens {
                want.push(&text[at..at + len]);
                at += len;
            }
            let got = pre.pieces(text);
            if got != want {
                failures.push(format!(
                    "{name} {text:?}\n   want {want:?}\n   got  {got:?}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
