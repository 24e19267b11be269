//! Parsing of the GGUF layout (header, metadata key/values, tensor infos, aligned data
//! section) from a byte slice, following the GGUF specification in the ggml repository
//! (`docs/gguf.md`). Every read is bounds-checked, every count is checked against the
//! bytes that remain before anything proportional to it is allocated, and every tensor
//! is checked to lie inside the file, so that the accessors never need to re-check.

use std::collections::{HashMap, HashSet};
use std::fmt;

use kaiyuan_kernels::DType;

use crate::error::GgufError;
use crate::value::{Array, Value, ValueType};
use crate::TensorInfo;

/// Alignment of the data section when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Deepest array nesting accepted (an array of arrays is depth 2). Real files use 1;
/// the cap bounds recursion, so a hostile file cannot exhaust the stack.
pub const MAX_ARRAY_NESTING: usize = 8;
/// The most dimensions a GGML tensor can have.
pub const MAX_DIMS: u32 = 4;

/// Smallest encoding of one metadata entry: key length (8) + value type (4) + a 1-byte value.
const MIN_KV_SIZE: u64 = 8 + 4 + 1;
/// Smallest encoding of one tensor info: name length (8) + n_dims (4) + one dim (8)
/// + type (4) + offset (8).
const MIN_TENSOR_INFO_SIZE: u64 = 8 + 4 + 8 + 4 + 8;

/// Everything the header, metadata and tensor infos say, validated against the file size.
pub(crate) struct Parsed {
    pub version: u32,
    pub alignment: u64,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
    pub data_offset: u64,
}

/// Where in the file a read happens, for error messages (formatted only on error).
#[derive(Clone, Copy)]
enum Ctx<'a> {
    Header(&'static str),
    KeyOf(u64),
    ValueOf(&'a str),
    TensorNameOf(u64),
    Tensor(&'a str),
}

impl fmt::Display for Ctx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ctx::Header(field) => write!(f, "header field {field}"),
            Ctx::KeyOf(i) => write!(f, "key of metadata entry #{i}"),
            Ctx::ValueOf(key) => write!(f, "value of metadata key {key:?}"),
            Ctx::TensorNameOf(i) => write!(f, "name of tensor info #{i}"),
            Ctx::Tensor(name) => write!(f, "tensor info {name:?}"),
        }
    }
}

/// A little-endian reader over the whole file that never reads past its end.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64, ctx: Ctx<'_>) -> Result<&'a [u8], GgufError> {
        if n > self.remaining() {
            return Err(GgufError::Truncated {
                what: ctx.to_string(),
                offset: self.pos as u64,
                needed: n,
                file_len: self.bytes.len() as u64,
            });
        }
        // n <= remaining <= usize::MAX, so the cast is lossless.
        let n = n as usize;
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, ctx: Ctx<'_>) -> Result<[u8; N], GgufError> {
        let s = self.take(N as u64, ctx)?;
        Ok(s.try_into().expect("invariant: take returned N bytes"))
    }

    fn u8(&mut self, ctx: Ctx<'_>) -> Result<u8, GgufError> {
        Ok(self.array::<1>(ctx)?[0])
    }

    fn u32(&mut self, ctx: Ctx<'_>) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(ctx)?))
    }

    fn u64(&mut self, ctx: Ctx<'_>) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(ctx)?))
    }

    /// A GGUF string: u64 byte length, then that many UTF-8 bytes (no terminator).
    fn string(&mut self, ctx: Ctx<'_>) -> Result<String, GgufError> {
        let len = self.u64(ctx)?;
        let start = self.pos as u64;
        let bytes = self.take(len, ctx)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(GgufError::InvalidUtf8 {
                what: ctx.to_string(),
                offset: start,
            }),
        }
    }

    /// Rejects `count` items of at least `min_each` bytes that cannot fit what remains.
    fn check_count(
        &self,
        count: u64,
        min_each: u64,
        what: impl FnOnce() -> String,
    ) -> Result<(), GgufError> {
        let fits = count
            .checked_mul(min_each)
            .is_some_and(|total| total <= self.remaining());
        if fits {
            Ok(())
        } else {
            Err(GgufError::CountTooLarge {
                what: what(),
                count,
                remaining: self.remaining(),
                min_each,
            })
        }
    }

    /// `count` fixed-size little-endian numbers, decoded with `decode`.
    fn numbers<T, const N: usize>(
        &mut self,
        count: u64,
        ctx: Ctx<'_>,
        decode: fn([u8; N]) -> T,
    ) -> Result<Vec<T>, GgufError> {
        // Called only after check_count, so count * N fits the remaining bytes.
        let bytes = self.take(count * N as u64, ctx)?;
        Ok(bytes
            .chunks_exact(N)
            .map(|c| {
                decode(
                    c.try_into()
                        .expect("invariant: chunks_exact yields N bytes"),
                )
            })
            .collect())
    }

    fn value(&mut self, ty: ValueType, key: &str, depth: usize) -> Result<Value, GgufError> {
        let ctx = Ctx::ValueOf(key);
        Ok(match ty {
            ValueType::U8 => Value::U8(self.u8(ctx)?),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.array(ctx)?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array(ctx)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array(ctx)?)),
            ValueType::U32 => Value::U32(self.u32(ctx)?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array(ctx)?)),
            ValueType::U64 => Value::U64(self.u64(ctx)?),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array(ctx)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array(ctx)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array(ctx)?)),
            ValueType::Bool => Value::Bool(decode_bool(self.u8(ctx)?, key)?),
            ValueType::String => Value::String(self.string(ctx)?),
            ValueType::Array => Value::Array(self.array_value(key, depth + 1)?),
        })
    }

    /// An array body: element type id, u64 count, elements. `depth` is 1 for a
    /// top-level array.
    fn array_value(&mut self, key: &str, depth: usize) -> Result<Array, GgufError> {
        if depth > MAX_ARRAY_NESTING {
            return Err(GgufError::NestingTooDeep {
                key: key.to_owned(),
                max: MAX_ARRAY_NESTING,
            });
        }
        let ctx = Ctx::ValueOf(key);
        let type_id = self.u32(ctx)?;
        let elem = ValueType::from_id(type_id).ok_or_else(|| GgufError::UnknownValueType {
            key: key.to_owned(),
            type_id,
        })?;
        let count = self.u64(ctx)?;
        self.check_count(count, elem.min_encoded_size(), || {
            format!("length of {elem} array {key:?}")
        })?;
        Ok(match elem {
            ValueType::U8 => Array::U8(self.take(count, ctx)?.to_vec()),
            ValueType::I8 => Array::I8(self.numbers(count, ctx, i8::from_le_bytes)?),
            ValueType::U16 => Array::U16(self.numbers(count, ctx, u16::from_le_bytes)?),
            ValueType::I16 => Array::I16(self.numbers(count, ctx, i16::from_le_bytes)?),
            ValueType::U32 => Array::U32(self.numbers(count, ctx, u32::from_le_bytes)?),
            ValueType::I32 => Array::I32(self.numbers(count, ctx, i32::from_le_bytes)?),
            ValueType::U64 => Array::U64(self.numbers(count, ctx, u64::from_le_bytes)?),
            ValueType::I64 => Array::I64(self.numbers(count, ctx, i64::from_le_bytes)?),
            ValueType::F32 => Array::F32(self.numbers(count, ctx, f32::from_le_bytes)?),
            ValueType::F64 => Array::F64(self.numbers(count, ctx, f64::from_le_bytes)?),
            ValueType::Bool => Array::Bool(
                self.take(count, ctx)?
                    .iter()
                    .map(|&b| decode_bool(b, key))
                    .collect::<Result<_, _>>()?,
            ),
            ValueType::String => {
                let mut v = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    v.push(self.string(ctx)?);
                }
                Array::String(v)
            }
            ValueType::Array => {
                let mut v = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    v.push(self.array_value(key, depth + 1)?);
                }
                Array::Array(v)
            }
        })
    }
}

fn decode_bool(byte: u8, key: &str) -> Result<bool, GgufError> {
    match byte {
        0 => Ok(false),
        1 => Ok(true),
        value => Err(GgufError::InvalidBool {
            key: key.to_owned(),
            value,
        }),
    }
}

/// Checks magic and version. "GGUF" read as a little-endian u32 is 0x46554747.
fn parse_header(c: &mut Cursor<'_>) -> Result<u32, GgufError> {
    let magic: [u8; 4] = c.array(Ctx::Header("magic"))?;
    if &magic == b"FUGG" {
        // The magic written as a big-endian u32.
        return Err(GgufError::BigEndian {
            detail: "the magic is byte-swapped".to_owned(),
        });
    }
    if &magic != b"GGUF" {
        return Err(GgufError::BadMagic { found: magic });
    }
    let version = c.u32(Ctx::Header("version"))?;
    match version {
        2 | 3 => Ok(version),
        1 => Err(GgufError::VersionOne),
        v if v & 0xFFFF == 0 && (1..=3).contains(&v.swap_bytes()) => Err(GgufError::BigEndian {
            detail: format!(
                "the version field reads {v:#x}, which is version {} byte-swapped",
                v.swap_bytes()
            ),
        }),
        v => Err(GgufError::UnsupportedVersion(v)),
    }
}

/// `general.alignment`, if present, must be a UINT32 power of two.
fn alignment_of(
    metadata: &[(String, Value)],
    index: &HashMap<String, usize>,
) -> Result<u64, GgufError> {
    let Some(&i) = index.get("general.alignment") else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    match &metadata[i].1 {
        Value::U32(a) if a.is_power_of_two() => Ok(u64::from(*a)),
        Value::U32(a) => Err(GgufError::BadAlignment(format!(
            "{a} is not a power of two"
        ))),
        other => Err(GgufError::BadAlignment(format!(
            "expected UINT32, found {}",
            other.type_description()
        ))),
    }
}

fn parse_tensor_info(c: &mut Cursor<'_>, i: u64, alignment: u64) -> Result<TensorInfo, GgufError> {
    let name = c.string(Ctx::TensorNameOf(i))?;
    let ctx = Ctx::Tensor(&name);
    let n_dims = c.u32(ctx)?;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(GgufError::BadDimCount {
            tensor: name,
            n_dims,
        });
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        dims.push(c.u64(ctx)?);
    }
    let type_id = c.u32(ctx)?;
    let offset = c.u64(ctx)?;

    // GGML stores dims and the element count as int64.
    let n_elements = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= i64::MAX as u64 && dims.iter().all(|&d| d <= i64::MAX as u64));
    let Some(n_elements) = n_elements else {
        return Err(GgufError::ShapeOverflow { tensor: name, dims });
    };
    let Some(dtype) = DType::from_ggml_id(type_id) else {
        return Err(GgufError::UnknownTensorType {
            tensor: name,
            type_id,
        });
    };
    let block_size = dtype.block_size() as u64;
    if dims[0] % block_size != 0 {
        return Err(GgufError::PartialBlock {
            tensor: name,
            dtype,
            row_len: dims[0],
            block_size,
        });
    }
    let Some(size) = dtype.bytes_for(n_elements) else {
        return Err(GgufError::ShapeOverflow { tensor: name, dims });
    };
    if offset % alignment != 0 {
        return Err(GgufError::MisalignedTensor {
            tensor: name,
            offset,
            alignment,
        });
    }
    Ok(TensorInfo {
        name,
        dims,
        dtype,
        offset,
        size,
    })
}

/// Rejects two tensors whose non-empty byte ranges intersect.
fn check_overlaps(tensors: &[TensorInfo]) -> Result<(), GgufError> {
    let mut order: Vec<&TensorInfo> = tensors.iter().filter(|t| t.size > 0).collect();
    order.sort_by_key(|t| t.offset);
    for pair in order.windows(2) {
        // offset + size was checked against the file length, so it cannot overflow.
        if pair[0].offset + pair[0].size > pair[1].offset {
            return Err(GgufError::OverlappingTensors {
                first: pair[0].name.clone(),
                second: pair[1].name.clone(),
            });
        }
    }
    Ok(())
}

/// Parses and validates a whole GGUF file.
pub(crate) fn parse(bytes: &[u8]) -> Result<Parsed, GgufError> {
    let file_len = bytes.len() as u64;
    let mut c = Cursor { bytes, pos: 0 };
    let version = parse_header(&mut c)?;
    let n_tensors = c.u64(Ctx::Header("tensor_count"))?;
    let n_kv = c.u64(Ctx::Header("metadata_kv_count"))?;
    c.check_count(n_kv, MIN_KV_SIZE, || "metadata_kv_count".to_owned())?;

    let mut metadata = Vec::with_capacity(n_kv as usize);
    let mut index = HashMap::with_capacity(n_kv as usize);
    for i in 0..n_kv {
        let key = c.string(Ctx::KeyOf(i))?;
        if index.contains_key(&key) {
            return Err(GgufError::DuplicateKey(key));
        }
        let type_id = c.u32(Ctx::ValueOf(&key))?;
        let Some(ty) = ValueType::from_id(type_id) else {
            return Err(GgufError::UnknownValueType { key, type_id });
        };
        let value = c.value(ty, &key, 0)?;
        index.insert(key.clone(), metadata.len());
        metadata.push((key, value));
    }
    let alignment = alignment_of(&metadata, &index)?;

    c.check_count(n_tensors, MIN_TENSOR_INFO_SIZE, || {
        "tensor_count".to_owned()
    })?;
    let mut tensors = Vec::with_capacity(n_tensors as usize);
    let mut names = HashSet::with_capacity(n_tensors as usize);
    for i in 0..n_tensors {
        let t = parse_tensor_info(&mut c, i, alignment)?;
        if !names.insert(t.name.clone()) {
            return Err(GgufError::DuplicateTensor(t.name));
        }
        tensors.push(t);
    }

    let end_of_infos = c.pos as u64;
    let data_offset = end_of_infos.div_ceil(alignment) * alignment;
    if n_tensors > 0 && data_offset > file_len {
        return Err(GgufError::DataBeyondEof {
            data_offset,
            file_len,
        });
    }
    for t in &tensors {
        let start = data_offset.checked_add(t.offset);
        let end = start.and_then(|s| s.checked_add(t.size));
        match (start, end) {
            (Some(_), Some(end)) if end <= file_len => {}
            _ => {
                return Err(GgufError::TensorOutOfBounds {
                    tensor: t.name.clone(),
                    start: data_offset.saturating_add(t.offset),
                    end: data_offset.saturating_add(t.offset).saturating_add(t.size),
                    file_len,
                })
            }
        }
    }
    check_overlaps(&tensors)?;

    Ok(Parsed {
        version,
        alignment,
        metadata,
        tensors,
        data_offset,
    })
}
