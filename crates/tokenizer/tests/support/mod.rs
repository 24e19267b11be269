//! Test support: the models' tokenizer metadata and the golden files.

#![allow(dead_code)]

use std::path::PathBuf;

use kaiyuan_gguf::GgufFile;
use kaiyuan_tokenizer::Vocab;

pub const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const GEMMA3: &str = "gemma-3-270m-q4_k_m.gguf";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn model_path(name: &str) -> PathBuf {
    let p = repo_root().join("models").join(name);
    assert!(
        p.exists(),
        "model {} is missing: run scripts/fetch-models",
        p.display()
    );
    p
}

/// The tokenizer metadata of a test model, read with the real GGUF reader.
pub fn read_vocab(name: &str) -> Vocab {
    let file = GgufFile::open(model_path(name)).expect("open model");
    Vocab::from_gguf(&file).expect("tokenizer metadata")
}

/// One golden record: a string and the reference ids.
pub struct Case {
    pub text: String,
    pub ids: Vec<u32>,
    pub ids_special: Option<Vec<u32>>,
    pub ids_space_prefix: Option<Vec<u32>>,
}

pub struct Golden {
    pub add_bos: bool,
    pub add_eos: bool,
    pub bos_id: u32,
    pub eos_id: u32,
    pub cases: Vec<Case>,
}

pub fn read_golden(name: &str) -> Golden {
    let path = repo_root()
        .join("testdata/golden/tokenizer")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).expect("read golden file");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("golden JSON");
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .expect("ids array")
            .iter()
            .map(|x| x.as_u64().expect("id") as u32)
            .collect()
    };
    let cases = doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| Case {
            text: c["text"].as_str().expect("text").to_string(),
            ids: ids(&c["ids"]),
            ids_special: c.get("ids_special").map(ids),
            ids_space_prefix: c.get("ids_space_prefix").map(ids),
        })
        .collect();
    Golden {
        add_bos: doc["add_bos"].as_bool().expect("add_bos"),
        add_eos: doc["add_eos"].as_bool().expect("add_eos"),
        bos_id: doc["bos_id"].as_u64().expect("bos_id") as u32,
        eos_id: doc["eos_id"].as_u64().expect("eos_id") as u32,
        cases,
    }
}

/// One llama.cpp golden record (`<model>.llamacpp.json`): `ids_special` and the `decoded*`
/// texts are only stored where they differ from `ids` / the text, so they are filled in here.
pub struct LlamaCase {
    pub text: String,
    pub ids: Vec<u32>,
    pub ids_special: Vec<u32>,
    /// llama.cpp's detokenization of `ids` (control tokens hidden).
    pub decoded: String,
    /// Of `ids_special`, control tokens hidden.
    pub decoded_special_hidden: String,
    /// Of `ids_special`, control tokens rendered.
    pub decoded_special_rendered: String,
}

pub struct LlamaGolden {
    pub reference: String,
    /// Texts tokenized with `add_bos=True, special=True`.
    pub bos: Vec<(String, Vec<u32>)>,
    pub cases: Vec<LlamaCase>,
}

/// Reads `testdata/golden/tokenizer/<name>.llamacpp.json` (tools/tokenizer_llamacpp_golden.py).
pub fn read_llamacpp_golden(name: &str) -> LlamaGolden {
    let path = repo_root()
        .join("testdata/golden/tokenizer")
        .join(format!("{name}.llamacpp.json"));
    let text = std::fs::read_to_string(&path).expect("read llama.cpp golden file");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("golden JSON");
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .expect("ids array")
            .iter()
            .map(|x| x.as_u64().expect("id") as u32)
            .collect()
    };
    let text_of = |c: &serde_json::Value| c["text"].as_str().expect("text").to_string();
    let cases = doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            let plain = ids(&c["ids"]);
            let text = text_of(c);
            let decoded = |key: &str| {
                c.get(key).map_or_else(
                    || text.clone(),
                    |d| d.as_str().expect("decoded text").to_string(),
                )
            };
            LlamaCase {
                ids_special: c.get("ids_special").map_or_else(|| plain.clone(), ids),
                ids: plain,
                decoded: decoded("decoded"),
                decoded_special_hidden: decoded("decoded_special_hidden"),
                decoded_special_rendered: decoded("decoded_special_rendered"),
                text,
            }
        })
        .collect();
    let bos = doc["bos"]
        .as_array()
        .expect("bos")
        .iter()
        .map(|c| (text_of(c), ids(&c["ids"])))
        .collect();
    LlamaGolden {
        reference: doc["reference"].as_str().expect("reference").to_string(),
        bos,
        cases,
    }
}
