//! Runs `kaiyuan tokenize` and `kaiyuan template` on the real models. Expected ids come
//! from the tokenizer goldens (Hugging Face `tokenizers`, see testdata/golden/tokenizer);
//! expected prompts are written out by hand from SmolLM2's own template text.

mod common;

use std::process::Output;

use common::repo_root;
use serde_json::Value as Json;

fn model(name: &str) -> String {
    common::model(name)
}

const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const GEMMA3: &str = "gemma-3-270m-q4_k_m.gguf";

fn kaiyuan(args: &[&str]) -> Output {
    let out = common::kaiyuan(args);
    assert!(
        out.status.success(),
        "kaiyuan {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ids_of(stdout: &[u8]) -> Vec<u32> {
    String::from_utf8_lossy(stdout)
        .split_whitespace()
        .map(|s| s.parse().expect("an id"))
        .collect()
}

#[test]
fn tokenize_ids_match_the_reference() {
    for (name, golden) in [(SMOLLM2, "smollm2"), (GEMMA3, "gemma3")] {
        let path = repo_root().join(format!("testdata/golden/tokenizer/{golden}.json"));
        let doc: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let cases = doc["cases"].as_array().unwrap();
        // A handful of varied, non-empty cases is enough here: the tokenizer crate checks
        // the whole corpus; this checks the command's plumbing (no BOS, no special tokens).
        let picked: Vec<&Json> = cases
            .iter()
            .filter(|c| {
                c["text"]
                    .as_str()
                    .is_some_and(|t| !t.trim().is_empty() && !t.contains('▁'))
            })
            .step_by(37)
            .take(8)
            .collect();
        assert!(picked.len() >= 5);
        let m = model(name);
        for case in picked {
            let text = case["text"].as_str().unwrap();
            let want: Vec<u32> = case["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            let out = kaiyuan(&["tokenize", "-m", &m, "--ids", "--no-bos", "--", text]);
            assert_eq!(ids_of(&out.stdout), want, "{name}: {text:?}");
        }
    }
}

#[test]
fn control_tokens_in_text_need_special() {
    let m = model(SMOLLM2);
    let plain = ids_of(&kaiyuan(&["tokenize", "-m", &m, "--ids", "a<|im_end|>"]).stdout);
    let special =
        ids_of(&kaiyuan(&["tokenize", "-m", &m, "--ids", "--special", "a<|im_end|>"]).stdout);
    // SmolLM2's <|im_end|> is id 2 (tokenizer.ggml.eos_token_id in the file).
    assert!(!plain.contains(&2), "{plain:?}");
    assert_eq!(special.last(), Some(&2), "{special:?}");
}

#[test]
fn template_renders_and_keeps_user_markup_as_text() {
    let dir = std::env::temp_dir().join(format!("kaiyuan-template-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let req = dir.join("chat.json");
    std::fs::write(
        &req,
        r#"{"messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": "Hi <|im_end|>"}]}"#,
    )
    .unwrap();
    let m = model(SMOLLM2);
    let out = kaiyuan(&["template", "-m", &m, req.to_str().unwrap(), "--tokens"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (prompt, tokens) = stdout.split_once("\n--- tokens").expect("a tokens section");
    assert_eq!(
        prompt,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi <|im_end|><|im_end|>\n<|im_start|>assistant\n"
    );
    let line = tokens.lines().nth(1).expect("the token line");
    // Exactly two <|im_end|> control tokens (id 2), both from markup (end of the system and
    // of the user turn); the user's literal `<|im_end|>` sits inside brackets as plain tokens.
    let content: Vec<&str> = line
        .split('[')
        .skip(1)
        .map(|s| s.split(']').next().unwrap())
        .collect();
    assert_eq!(content.len(), 2, "{line}");
    for c in &content {
        assert!(
            !c.split(' ').any(|id| id == "2"),
            "control token in content: {line}"
        );
    }
    assert_eq!(line.split(' ').filter(|id| *id == "2").count(), 2, "{line}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn template_tokens_have_one_bos_when_the_template_writes_it() {
    // Gemma's template writes <bos> and its tokenizer asks for one too: the prompt must start
    // with a single BOS (id 2), as llama.cpp and `kaiyuan chat` feed it.
    let dir = std::env::temp_dir().join(format!("kaiyuan-bos-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let req = dir.join("chat.json");
    std::fs::write(
        &req,
        r#"{"messages": [{"role": "user", "content": "Hello"}]}"#,
    )
    .unwrap();
    let m = model(GEMMA3);
    let out = kaiyuan(&["template", "-m", &m, req.to_str().unwrap(), "--tokens"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = stdout.lines().last().expect("the token line");
    assert!(line.starts_with("2 105 "), "{line}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("10 tokens"));
    std::fs::remove_dir_all(&dir).ok();
}
