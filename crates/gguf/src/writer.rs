//! A small GGUF v2/v3 writer for tests and fixtures: metadata and tensors in, file bytes
//! out, laid out as the GGUF specification describes (tensor data aligned to
//! `general.alignment`, default 32). [`Layout`] records where every field was written so
//! tests can corrupt one field precisely. Not meant for multi-gigabyte models: the whole
//! file is built in memory.

use std::path::Path;

use kaiyuan_kernels::DType;

use crate::parse::DEFAULT_ALIGNMENT;
use crate::value::{Array, Value};

/// Where one metadata entry was written (absolute file offsets).
#[derive(Clone, Debug)]
pub struct KvLayout {
    /// The u64 key length; the key bytes follow.
    pub key: usize,
    /// The u32 value type id.
    pub value_type: usize,
    /// The value (for arrays: the u32 element type, then the u64 count, then elements).
    pub value: usize,
}

/// Where one tensor info was written (absolute file offsets).
#[derive(Clone, Debug)]
pub struct TensorLayout {
    /// The u64 name length; the name bytes follow.
    pub name: usize,
    pub n_dims: usize,
    /// The first u64 dimension; the others follow.
    pub dims: usize,
    pub dtype: usize,
    pub offset: usize,
    /// Absolute offset of the tensor's data.
    pub data: usize,
}

/// Byte positions of every field of a written file.
#[derive(Clone, Debug)]
pub struct Layout {
    pub version: usize,
    pub tensor_count: usize,
    pub kv_count: usize,
    pub kvs: Vec<KvLayout>,
    pub tensors: Vec<TensorLayout>,
    /// End of the tensor infos (before padding).
    pub infos_end: usize,
    pub data_offset: usize,
}

struct PendingTensor {
    name: String,
    dims: Vec<u64>,
    dtype: DType,
    data: Vec<u8>,
}

/// Builds a GGUF file. Entries are written in the order they were added.
pub struct GgufWriter {
    version: u32,
    metadata: Vec<(String, Value)>,
    tensors: Vec<PendingTensor>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        GgufWriter::new()
    }
}

impl GgufWriter {
    /// An empty version-3 file.
    pub fn new() -> GgufWriter {
        GgufWriter {
            version: 3,
            metadata: Vec::new(),
            tensors: Vec::new(),
        }
    }

    /// Sets the version field (any value, so tests can write unsupported ones).
    pub fn version(&mut self, version: u32) -> &mut Self {
        self.version = version;
        self
    }

    /// Appends a metadata entry (duplicates are written as given).
    pub fn kv(&mut self, key: impl Into<String>, value: Value) -> &mut Self {
        self.metadata.push((key.into(), value));
        self
    }

    /// Appends a tensor; `dims` in GGML order, `data` its raw bytes.
    ///
    /// Panics if `data.len()` is not the size `dtype` and `dims` call for.
    pub fn tensor(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        dtype: DType,
        data: Vec<u8>,
    ) -> &mut Self {
        let name = name.into();
        let n: u64 = dims.iter().product();
        assert_eq!(
            dtype.bytes_for(n),
            Some(data.len() as u64),
            "writer: tensor {name} of {dtype} {dims:?} needs a different number of bytes"
        );
        self.tensors.push(PendingTensor {
            name,
            dims: dims.to_vec(),
            dtype,
            data,
        });
        self
    }

    /// The alignment the file will use: `general.alignment` if it is a valid UINT32
    /// power of two, else the default.
    fn alignment(&self) -> usize {
        self.metadata
            .iter()
            .rev()
            .find_map(|(k, v)| match v {
                Value::U32(a) if k == "general.alignment" && a.is_power_of_two() => {
                    Some(*a as usize)
                }
                _ => None,
            })
            .unwrap_or(DEFAULT_ALIGNMENT as usize)
    }

    /// The file bytes and where each field went.
    pub fn to_bytes_with_layout(&self) -> (Vec<u8>, Layout) {
        let align = self.alignment();
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        let version = out.len();
        put_u32(&mut out, self.version);
        let tensor_count = out.len();
        put_u64(&mut out, self.tensors.len() as u64);
        let kv_count = out.len();
        put_u64(&mut out, self.metadata.len() as u64);

        let mut kvs = Vec::new();
        for (key, value) in &self.metadata {
            let key_pos = out.len();
            put_str(&mut out, key);
            let value_type = out.len();
            put_u32(&mut out, value.value_type().id());
            let value_pos = out.len();
            put_value(&mut out, value);
            kvs.push(KvLayout {
                key: key_pos,
                value_type,
                value: value_pos,
            });
        }

        let mut relative = 0usize;
        let mut offsets = Vec::new();
        for t in &self.tensors {
            offsets.push(relative);
            relative = (relative + t.data.len()).div_ceil(align) * align;
        }
        let mut tensors = Vec::new();
        for (t, &rel) in self.tensors.iter().zip(&offsets) {
            let name = out.len();
            put_str(&mut out, &t.name);
            let n_dims = out.len();
            put_u32(&mut out, t.dims.len() as u32);
            let dims = out.len();
            for &d in &t.dims {
                put_u64(&mut out, d);
            }
            let dtype = out.len();
            put_u32(&mut out, t.dtype.ggml_id());
            let offset = out.len();
            put_u64(&mut out, rel as u64);
            tensors.push(TensorLayout {
                name,
                n_dims,
                dims,
                dtype,
                offset,
                data: 0,
            });
        }
        let infos_end = out.len();
        let data_offset = infos_end.div_ceil(align) * align;
        out.resize(data_offset, 0);
        for ((t, &rel), layout) in self.tensors.iter().zip(&offsets).zip(&mut tensors) {
            out.resize(data_offset + rel, 0);
            layout.data = out.len();
            out.extend_from_slice(&t.data);
        }
        let layout = Layout {
            version,
            tensor_count,
            kv_count,
            kvs,
            tensors,
            infos_end,
            data_offset,
        };
        (out, layout)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_bytes_with_layout().0
    }

    pub fn write(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, self.to_bytes())
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(u8::from(*x)),
        Value::String(s) => put_str(out, s),
        Value::Array(a) => put_array(out, a),
    }
}

fn put_array(out: &mut Vec<u8>, a: &Array) {
    put_u32(out, a.element_type().id());
    put_u64(out, a.len() as u64);
    fn each<T>(out: &mut Vec<u8>, items: &[T], f: impl Fn(&mut Vec<u8>, &T)) {
        for x in items {
            f(out, x);
        }
    }
    match a {
        Array::U8(v) => out.extend_from_slice(v),
        Array::I8(v) => each(out, v, |o, x| o.extend_from_slice(&x.to_le_bytes())),
        Array::U16(v) => each(out, v, |o, x| o.extend_from_slice(&x.to_le_bytes())),
        Array::I16(v) => each(out, v, |o, x| o.extend_from_slice(&x.to_le_bytes())),
        Array::U32(v) => each(out, v, |o, x| o.extend_from_slice(&x.to_le_bytes())),
        Array::I32(v) => each(out, v, |o, x| o.extend_from_slice(&x.to_le_bytes())),
        Array::U64(v) => each(out, v, |o, x| o.extend_from_slice(&x.to_le_bytes())),
        Array::I64(v) => each(out, v, |o, x| o.extend_from_slice(&x.to_le_bytes())),
        Array::F32(v) => each(out, v, |o, x| o.extend_from_slice(&x.to_le_bytes())),
        Array::F64(v) => each(out, v, |o, x| o.extend_from_slice(&x.to_le_bytes())),
        Array::Bool(v) => each(out, v, |o, x| o.push(u8::from(*x))),
        Array::String(v) => each(out, v, |o, s| put_str(o, s)),
        Array::Array(v) => each(out, v, put_array),
    }
}
