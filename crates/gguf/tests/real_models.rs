//! Compares Kaiyuan's reader on the two real test models with listings written by
//! `tools/gguf_listing.py` from the `gguf` Python package's GGUFReader (the independent
//! reference): every tensor info and every metadata key, type and value (arrays by
//! length, first elements and a hash of all elements).
//!
//! The models come from `scripts/fetch-models` (env `KAIYUAN_MODELS`, default
//! `<repo>/models`); if they are missing the test fails rather than skipping.

use std::path::PathBuf;

use kaiyuan_gguf::{Array, GgufFile, Value};
use serde_json::Value as Json;

const MODELS: [&str; 2] = ["SmolLM2-135M-Instruct.Q4_1", "gemma-3-270m-q4_k_m"];

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model_path(stem: &str) -> PathBuf {
    let dir = std::env::var_os("KAIYUAN_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("models"));
    let path = dir.join(format!("{stem}.gguf"));
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-models (or set KAIYUAN_MODELS)",
        path.display()
    );
    path
}

fn golden(stem: &str) -> Json {
    let path = repo_root().join(format!("testdata/golden/{stem}.listing.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("golden listing is JSON")
}

const FNV_OFFSET: u64 = 0xCBF2_9CE4_8422_2325;
const FNV_PRIME: u64 = 0x100_0000_01B3;

fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(FNV_PRIME);
    }
    h
}

/// FNV-1a over the GGUF encoding of every element, as the listing tool computes it.
fn array_hash(a: &Array) -> u64 {
    let mut h = FNV_OFFSET;
    for i in 0..a.len() {
        let v = a.get(i).expect("index in range");
        let bytes = match v {
            Value::U8(x) => x.to_le_bytes().to_vec(),
            Value::I8(x) => x.to_le_bytes().to_vec(),
            Value::U16(x) => x.to_le_bytes().to_vec(),
            Value::I16(x) => x.to_le_bytes().to_vec(),
            Value::U32(x) => x.to_le_bytes().to_vec(),
            Value::I32(x) => x.to_le_bytes().to_vec(),
            Value::U64(x) => x.to_le_bytes().to_vec(),
            Value::I64(x) => x.to_le_bytes().to_vec(),
            Value::F32(x) => x.to_le_bytes().to_vec(),
            Value::F64(x) => x.to_le_bytes().to_vec(),
            Value::Bool(x) => vec![u8::from(x)],
            Value::String(s) => {
                let mut b = (s.len() as u64).to_le_bytes().to_vec();
                b.extend_from_slice(s.as_bytes());
                b
            }
            Value::Array(_) => panic!("the real models have no nested arrays"),
        };
        h = fnv1a(h, &bytes);
    }
    h
}

/// Whether our scalar equals the listing's JSON value (floats compared by bits when given).
fn scalar_matches(ours: &Value, expected: &Json, entry: &Json) -> bool {
    match ours {
        Value::F32(x) => match entry.get("f32_bits") {
            Some(bits) => Some(u64::from(x.to_bits())) == bits.as_u64(),
            None => expected.as_f64() == Some(f64::from(*x)),
        },
        Value::F64(x) => match entry.get("f64_bits") {
            Some(bits) => Some(x.to_bits()) == bits.as_u64(),
            None => expected.as_f64() == Some(*x),
        },
        Value::Bool(b) => expected.as_bool() == Some(*b),
        Value::String(s) => expected.as_str() == Some(s.as_str()),
        other => {
            let n = other
                .as_integer()
                .expect("remaining scalar types are integers");
            expected.as_i64().map(i128::from) == Some(n)
                || expected.as_u64().map(i128::from) == Some(n)
        }
    }
}

fn check_model(stem: &str) {
    let g = golden(stem);
    let f = GgufFile::open(model_path(stem)).unwrap_or_else(|e| panic!("{stem}: {e}"));
    assert_eq!(
        f.file_len(),
        g["file_size"].as_u64().unwrap(),
        "{stem}: file size (wrong model file?)"
    );
    assert_eq!(u64::from(f.version()), g["version"].as_u64().unwrap());
    assert_eq!(f.alignment(), g["alignment"].as_u64().unwrap());
    assert_eq!(f.data_offset(), g["data_offset"].as_u64().unwrap());

    let meta = g["metadata"].as_array().unwrap();
    assert_eq!(f.metadata().len(), meta.len(), "{stem}: metadata count");
    for ((key, value), entry) in f.metadata().iter().zip(meta) {
        assert_eq!(
            key,
            entry["key"].as_str().unwrap(),
            "{stem}: metadata order"
        );
        assert_eq!(
            value.value_type().name(),
            entry["type"].as_str().unwrap(),
            "{stem}: type of {key}"
        );
        match value {
            Value::Array(a) => {
                assert_eq!(
                    a.element_type().name(),
                    entry["element_type"].as_str().unwrap(),
                    "{key}"
                );
                assert_eq!(
                    a.len() as u64,
                    entry["length"].as_u64().unwrap(),
                    "{key}: length"
                );
                for (i, first) in entry["first"].as_array().unwrap().iter().enumerate() {
                    let v = a.get(i).unwrap();
                    assert!(
                        scalar_matches(&v, first, &Json::Null),
                        "{key}[{i}]: {v:?} vs {first}"
                    );
                }
                let hash = format!("{:016x}", array_hash(a));
                assert_eq!(
                    hash,
                    entry["fnv1a64"].as_str().unwrap(),
                    "{stem}: hash of {key}"
                );
            }
            v => assert!(
                scalar_matches(v, &entry["value"], entry),
                "{stem}: {key} = {v:?} vs {entry}"
            ),
        }
        assert_eq!(f.get(key), Some(value));
    }
    let file_type = f.get_u32("general.file_type").unwrap().unwrap();
    assert_eq!(
        kaiyuan_gguf::file_type_name(file_type),
        g["file_type_name"].as_str()
    );

    let tensors = g["tensors"].as_array().unwrap();
    assert_eq!(f.tensors().len(), tensors.len(), "{stem}: tensor count");
    for (t, e) in f.tensors().iter().zip(tensors) {
        let name = e["name"].as_str().unwrap();
        assert_eq!(t.name, name, "{stem}: tensor order");
        assert_eq!(
            u64::from(t.dtype.ggml_id()),
            e["ggml_type"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(t.dtype.name(), e["type_name"].as_str().unwrap(), "{name}");
        let dims: Vec<u64> = e["dims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(t.dims, dims, "{name}: dims");
        assert_eq!(t.offset, e["offset"].as_u64().unwrap(), "{name}: offset");
        assert_eq!(t.size, e["n_bytes"].as_u64().unwrap(), "{name}: bytes");
        assert_eq!(
            t.n_elements(),
            e["n_elements"].as_u64().unwrap(),
            "{name}: elements"
        );
        assert_eq!(f.tensor_data(t).len() as u64, t.size);
        assert_eq!(f.tensor(name), Some(t));
    }
    f.check_supported()
        .unwrap_or_else(|e| panic!("{stem}: {e}"));
}

#[test]
fn smollm2_matches_gguf_python_listing() {
    check_model(MODELS[0]);
}

#[test]
fn gemma3_matches_gguf_python_listing() {
    check_model(MODELS[1]);
}

#[test]
fn typed_getters_on_real_model() {
    let f = GgufFile::open(model_path(MODELS[0])).unwrap();
    assert_eq!(f.architecture(), Some("llama"));
    assert_eq!(f.get_u32("llama.block_count").unwrap(), Some(30));
    assert_eq!(
        f.get_str_array("tokenizer.ggml.tokens")
            .unwrap()
            .map(<[String]>::len),
        Some(49152)
    );
    assert_eq!(f.get_str("tokenizer.ggml.model").unwrap(), Some("gpt2"));
    assert_eq!(
        f.get_bool("tokenizer.ggml.add_bos_token").unwrap(),
        Some(false)
    );
}
