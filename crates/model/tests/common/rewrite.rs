//! A tiny fixture rewritten in memory: metadata keys set or removed, tensors dropped,
//! renamed or added, so a test states only what it changes.

use std::sync::Arc;

use kaiyuan_gguf::writer::GgufWriter;
use kaiyuan_gguf::{GgufFile, Value};
use kaiyuan_kernels::DType;

use super::tiny;

/// The fixture `testdata/tiny/NAME` with edits, written back through [`GgufWriter`] in the
/// fixture's own order: a key that is set keeps its place (a new key goes after the
/// others), a removed key or dropped tensor leaves no gap, an added tensor goes last.
pub struct Rewrite {
    src: GgufFile,
    set: Vec<(String, Value)>,
    removed_keys: Vec<String>,
    dropped_tensors: Vec<String>,
    renamed: Vec<(String, String)>,
    added_tensors: Vec<(String, Vec<u64>, DType, Vec<u8>)>,
}

impl Rewrite {
    /// The tiny fixture `name` (e.g. `llama.f32.gguf`), unchanged so far.
    pub fn of(name: &str) -> Rewrite {
        Rewrite {
            src: GgufFile::open(tiny(name)).expect("fixture"),
            set: Vec::new(),
            removed_keys: Vec::new(),
            dropped_tensors: Vec::new(),
            renamed: Vec::new(),
            added_tensors: Vec::new(),
        }
    }

    /// Gives `key` the value `value`, in its place if the fixture has it, else after the
    /// fixture's keys (in the order of the calls).
    pub fn set(mut self, key: &str, value: Value) -> Rewrite {
        self.set.push((key.to_string(), value));
        self
    }

    /// Leaves the metadata key `key` out.
    pub fn remove_key(mut self, key: &str) -> Rewrite {
        self.removed_keys.push(key.to_string());
        self
    }

    /// Leaves the tensor `name` out.
    pub fn drop_tensor(mut self, name: &str) -> Rewrite {
        self.dropped_tensors.push(name.to_string());
        self
    }

    /// Replaces `from` by `to` in every tensor name that contains it.
    pub fn rename_tensors(mut self, from: &str, to: &str) -> Rewrite {
        self.renamed.push((from.to_string(), to.to_string()));
        self
    }

    /// Adds a tensor after the fixture's (`dims` in GGML order, `data` its raw bytes).
    pub fn add_tensor(mut self, name: &str, dims: &[u64], dtype: DType, data: Vec<u8>) -> Rewrite {
        self.added_tensors
            .push((name.to_string(), dims.to_vec(), dtype, data));
        self
    }

    /// The rewritten file's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let mut w = GgufWriter::new();
        let value_of = |key: &str| self.set.iter().rev().find(|(k, _)| k == key);
        for (k, v) in self.src.metadata() {
            if self.removed_keys.contains(k) {
                continue;
            }
            let v = value_of(k).map_or(v, |(_, new)| new);
            w.kv(k.clone(), v.clone());
        }
        for (i, (k, v)) in self.set.iter().enumerate() {
            let later = self.set[i + 1..].iter().any(|(other, _)| other == k);
            if self.src.get(k).is_none() && !later {
                w.kv(k.clone(), v.clone());
            }
        }
        for t in self.src.tensors() {
            if self.dropped_tensors.contains(&t.name) {
                continue;
            }
            let name = self
                .renamed
                .iter()
                .fold(t.name.clone(), |name, (from, to)| name.replace(from, to));
            w.tensor(name, &t.dims, t.dtype, self.src.tensor_data(t).to_vec());
        }
        for (name, dims, dtype, data) in &self.added_tensors {
            w.tensor(name.clone(), dims, *dtype, data.clone());
        }
        w.to_bytes()
    }

    /// The rewritten file, parsed.
    pub fn file(&self) -> Arc<GgufFile> {
        Arc::new(GgufFile::from_bytes(self.bytes()).expect("rewritten file parses"))
    }
}
