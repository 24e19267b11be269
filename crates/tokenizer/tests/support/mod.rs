//! Test support: the models' tokenizer metadata and the golden files.
//!
//! THROWAWAY: `read_vocab` is a minimal GGUF v2/v3 metadata reader (header + key/value section
//! only, per the GGUF spec) that exists only until the real reader (`kaiyuan-gguf`) is merged;
//! then it becomes a call of the `from_gguf` adapter.

#![allow(dead_code)]

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;

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

#[derive(Debug)]
enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Strs(Vec<String>),
    Ints(Vec<i64>),
    Floats(Vec<f32>),
    Other,
}

struct R(BufReader<File>);

impl R {
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        self.0.read_exact(&mut b).expect("GGUF metadata truncated");
        b
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes())
    }
    fn string(&mut self) -> String {
        let n = self.u64() as usize;
        assert!(n < 1 << 24, "implausible string length {n}");
        let mut b = vec![0u8; n];
        self.0.read_exact(&mut b).expect("GGUF metadata truncated");
        String::from_utf8(b).expect("GGUF string is not UTF-8")
    }
    fn scalar(&mut self, ty: u32) -> Value {
        match ty {
            0 => Value::Int(self.bytes::<1>()[0] as i64),
            1 => Value::Int(self.bytes::<1>()[0] as i8 as i64),
            2 => Value::Int(u16::from_le_bytes(self.bytes()) as i64),
            3 => Value::Int(i16::from_le_bytes(self.bytes()) as i64),
            4 => Value::Int(self.u32() as i64),
            5 => Value::Int(i32::from_le_bytes(self.bytes()) as i64),
            6 => Value::Float(f32::from_le_bytes(self.bytes()) as f64),
            7 => Value::Bool(self.bytes::<1>()[0] != 0),
            8 => Value::Str(self.string()),
            10 => Value::Int(self.u64() as i64),
            11 => Value::Int(i64::from_le_bytes(self.bytes())),
            12 => Value::Float(f64::from_le_bytes(self.bytes())),
            t => panic!("unknown GGUF value type {t}"),
        }
    }
    fn value(&mut self, ty: u32) -> Value {
        if ty != 9 {
            return self.scalar(ty);
        }
        let elem = self.u32();
        let n = self.u64() as usize;
        assert!(n < 1 << 26, "implausible array length {n}");
        let items: Vec<Value> = (0..n).map(|_| self.value(elem)).collect();
        match elem {
            8 => Value::Strs(
                items
                    .into_iter()
                    .map(|v| {
                        if let Value::Str(s) = v {
                            s
                        } else {
                            unreachable!()
                        }
                    })
                    .collect(),
            ),
            6 => Value::Floats(
                items
                    .into_iter()
                    .map(|v| {
                        if let Value::Float(f) = v {
                            f as f32
                        } else {
                            unreachable!()
                        }
                    })
                    .collect(),
            ),
            0..=5 | 10 | 11 => Value::Ints(
                items
                    .into_iter()
                    .map(|v| {
                        if let Value::Int(i) = v {
                            i
                        } else {
                            unreachable!()
                        }
                    })
                    .collect(),
            ),
            _ => Value::Other,
        }
    }
}

/// The `tokenizer.ggml.*` metadata of a model file, as a [`Vocab`].
pub fn read_vocab(name: &str) -> Vocab {
    let mut r = R(BufReader::new(
        File::open(model_path(name)).expect("open model"),
    ));
    assert_eq!(&r.bytes::<4>(), b"GGUF", "not a GGUF file");
    let version = r.u32();
    assert!(version == 2 || version == 3, "GGUF version {version}");
    let _tensors = r.u64();
    let kvs = r.u64();
    let mut v = Vocab::default();
    for _ in 0..kvs {
        let key = r.string();
        let ty = r.u32();
        let val = r.value(ty);
        let Some(k) = key.strip_prefix("tokenizer.ggml.") else {
            continue;
        };
        let id = |val: &Value| {
            if let Value::Int(i) = val {
                Some(*i as u32)
            } else {
                None
            }
        };
        let flag = |val: &Value| {
            if let Value::Bool(b) = val {
                Some(*b)
            } else {
                None
            }
        };
        match (k, val) {
            ("model", Value::Str(s)) => v.model = s,
            ("pre", Value::Str(s)) => v.pre = Some(s),
            ("tokens", Value::Strs(t)) => v.tokens = t,
            ("scores", Value::Floats(s)) => v.scores = s,
            ("token_type", Value::Ints(t)) => {
                v.token_types = t.into_iter().map(|x| x as i32).collect()
            }
            ("merges", Value::Strs(m)) => v.merges = m,
            ("bos_token_id", ref x) => v.bos_id = id(x),
            ("eos_token_id", ref x) => v.eos_id = id(x),
            ("eot_token_id", ref x) => v.eot_id = id(x),
            ("padding_token_id", ref x) => v.pad_id = id(x),
            ("unknown_token_id", ref x) => v.unk_id = id(x),
            ("add_bos_token", ref x) => v.add_bos = flag(x),
            ("add_eos_token", ref x) => v.add_eos = flag(x),
            ("add_space_prefix", ref x) => v.add_space_prefix = flag(x),
            _ => {}
        }
    }
    v
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
