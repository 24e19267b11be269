//! [`GgufFile`]: an opened, fully validated GGUF file (memory-mapped or in memory), its
//! metadata with typed getters, and its tensor infos with zero-copy access to their data.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use kaiyuan_kernels::hugepage::HugePageBuffer;
use kaiyuan_kernels::DType;

use crate::error::GgufError;
use crate::parse::{parse, Parsed};
use crate::value::{Array, Value};

/// One tensor-info record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// GGML order: `dims[0]` is the row length (`ne0`), the fastest-varying dimension.
    /// PyTorch order is the reverse.
    pub dims: Vec<u64>,
    pub dtype: DType,
    /// Byte offset relative to the start of the data section ([`GgufFile::data_offset`]).
    pub offset: u64,
    /// Bytes of data.
    pub size: u64,
}

impl TensorInfo {
    /// Number of elements (the product of `dims`; checked not to overflow at parse time).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// The bytes a [`GgufFile`] was parsed from.
pub(crate) enum Storage {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
    /// A copy of the file in huge-page memory.
    Resident(HugePageBuffer),
}

impl Storage {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mapped(m) => m,
            Storage::Owned(v) => v,
            Storage::Resident(b) => b.as_slice(),
        }
    }
}

/// A validated GGUF file. All tensor ranges lie inside the file.
///
/// [`GgufFile::open`] memory-maps the file: it must not be truncated or modified while
/// the `GgufFile` is alive (model files are treated as immutable).
pub struct GgufFile {
    storage: Storage,
    version: u32,
    alignment: u64,
    metadata: Vec<(String, Value)>,
    key_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    data_offset: u64,
    /// The other shards of a `gguf-split` model (see `split.rs`); empty for one file.
    pub(crate) shards: Vec<Shard>,
    /// Per tensor, which storage holds its data: 0 this file's, `k` `shards[k - 1]`.
    /// Empty for one file.
    pub(crate) tensor_shard: Vec<u16>,
}

/// One more shard of a split model: its bytes and where its data section starts.
pub(crate) struct Shard {
    pub(crate) storage: Storage,
    pub(crate) data_offset: u64,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.version)
            .field("len", &self.storage.bytes().len())
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Memory-maps and validates the file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
        let path = path.as_ref();
        let io_err = |source_error| GgufError::Io {
            path: path.to_owned(),
            source_error,
        };
        let file = File::open(path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        if len == 0 {
            // Mapping an empty file is not portable; the parser reports the truncation.
            return GgufFile::from_bytes(Vec::new());
        }
        // SAFETY: `Mmap::map` is unsafe because the mapping aliases the file: if another
        // process truncates or rewrites the file while it is mapped, reads may observe
        // changing bytes or fault (SIGBUS). Model files are treated as immutable artifacts
        // that no one modifies while Kaiyuan has them open; this is the assumption every
        // mmap-based model loader makes, and it is stated in `GgufFile`'s docs. Under it
        // the mapping is an ordinary read-only byte slice that lives as long as `self`.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err)?;
        GgufFile::from_storage(Storage::Mapped(map))
    }

    /// Opens `path` mapped ([`GgufFile::open`]) or copied ([`GgufFile::open_resident`]).
    pub(crate) fn open_one(path: &Path, resident: bool) -> Result<GgufFile, GgufError> {
        if resident {
            GgufFile::open_resident(path)
        } else {
            GgufFile::open(path)
        }
    }

    /// Reads the file at `path` into memory of its own and validates it: an anonymous
    /// mapping aligned to 2 MiB and, on Linux, advised to use transparent huge pages.
    ///
    /// Why: decoding streams every weight once per token, so it runs at the speed memory
    /// can be read. Read through 4 KiB pages (what a file mapping gets), the CPU's
    /// prefetchers stop at every page boundary and each page costs a TLB miss; with 2 MiB
    /// pages a plain read loop measured 15-17% more bandwidth on our machine. The cost is
    /// one copy at load (about 0.05 s per 250 MB from the page cache) and no sharing of the
    /// page cache between processes. Resident memory stays one copy of the file: reading
    /// does not map the page cache into this process.
    pub fn open_resident(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
        use std::io::Read;
        let path = path.as_ref();
        let io_err = |source_error| GgufError::Io {
            path: path.to_owned(),
            source_error,
        };
        let mut file = File::open(path).map_err(io_err)?;
        let len = usize::try_from(file.metadata().map_err(io_err)?.len()).map_err(|_| {
            io_err(std::io::Error::new(
                std::io::ErrorKind::OutOfMemory,
                "file larger than the address space",
            ))
        })?;
        if len == 0 {
            return GgufFile::from_bytes(Vec::new());
        }
        let mut buf = HugePageBuffer::zeroed(len).map_err(io_err)?;
        file.read_exact(buf.as_mut_slice()).map_err(io_err)?;
        GgufFile::from_storage(Storage::Resident(buf))
    }

    /// Parses a GGUF file held in memory (tests, fuzzing, embedded fixtures).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        GgufFile::from_storage(Storage::Owned(bytes))
    }

    pub(crate) fn from_storage(storage: Storage) -> Result<GgufFile, GgufError> {
        let Parsed {
            version,
            alignment,
            metadata,
            tensors,
            data_offset,
        } = parse(storage.bytes())?;
        let key_index = metadata
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.clone(), i))
            .collect();
        let tensor_index = tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Ok(GgufFile {
            storage,
            version,
            alignment,
            metadata,
            key_index,
            tensors,
            tensor_index,
            data_offset,
            shards: Vec::new(),
            tensor_shard: Vec::new(),
        })
    }

    /// Takes the other shards' tensors into this one (`split.rs` checked them): their
    /// infos are appended, their bytes kept alive beside this file's.
    pub(crate) fn absorb(&mut self, shards: Vec<GgufFile>) -> Result<(), GgufError> {
        self.tensor_shard = vec![0; self.tensors.len()];
        for (k, shard) in shards.into_iter().enumerate() {
            let id = u16::try_from(k + 1).map_err(|_| GgufError::CountTooLarge {
                what: "split.count".into(),
                count: k as u64 + 1,
                remaining: 0,
                min_each: 1,
            })?;
            for t in shard.tensors {
                if self.tensor_index.contains_key(&t.name) {
                    return Err(GgufError::DuplicateTensor(t.name));
                }
                self.tensor_index.insert(t.name.clone(), self.tensors.len());
                self.tensors.push(t);
                self.tensor_shard.push(id);
            }
            self.shards.push(Shard {
                storage: shard.storage,
                data_offset: shard.data_offset,
            });
        }
        Ok(())
    }

    /// Shards of a split model, this file included (1 for a whole file).
    pub fn shard_count(&self) -> usize {
        1 + self.shards.len()
    }

    /// GGUF format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Alignment of tensor data (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Size of the file in bytes.
    pub fn file_len(&self) -> u64 {
        self.storage.bytes().len() as u64
    }

    /// All metadata in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.key_index.get(key).map(|&i| &self.metadata[i].1)
    }

    fn mismatch(&self, key: &str, expected: &'static str, found: &Value) -> GgufError {
        GgufError::TypeMismatch {
            key: key.to_owned(),
            expected,
            found: found.type_description(),
        }
    }

    /// An integer of any GGUF integer type, converted to `T` if it fits.
    fn get_int<T: TryFrom<i128>>(
        &self,
        key: &str,
        target: &'static str,
    ) -> Result<Option<T>, GgufError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let Some(n) = v.as_integer() else {
            return Err(self.mismatch(key, "an integer", v));
        };
        T::try_from(n).map(Some).map_err(|_| GgufError::OutOfRange {
            key: key.to_owned(),
            value: n.to_string(),
            target,
        })
    }

    /// `key` as a `u32`; accepts any integer type whose value fits.
    pub fn get_u32(&self, key: &str) -> Result<Option<u32>, GgufError> {
        self.get_int(key, "u32")
    }

    /// `key` as a `u64`; accepts any integer type whose value fits.
    pub fn get_u64(&self, key: &str) -> Result<Option<u64>, GgufError> {
        self.get_int(key, "u64")
    }

    /// `key` as an `i32`; accepts any integer type whose value fits.
    pub fn get_i32(&self, key: &str) -> Result<Option<i32>, GgufError> {
        self.get_int(key, "i32")
    }

    /// `key` as an `i64`; accepts any integer type whose value fits.
    pub fn get_i64(&self, key: &str) -> Result<Option<i64>, GgufError> {
        self.get_int(key, "i64")
    }

    /// `key` as an `f32`: a FLOAT32, or a FLOAT64 rounded to nearest.
    pub fn get_f32(&self, key: &str) -> Result<Option<f32>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::F32(x)) => Ok(Some(*x)),
            Some(Value::F64(x)) => Ok(Some(*x as f32)),
            Some(v) => Err(self.mismatch(key, "FLOAT32", v)),
        }
    }

    /// `key` as an `f64`: a FLOAT64 or FLOAT32 (exact).
    pub fn get_f64(&self, key: &str) -> Result<Option<f64>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::F32(x)) => Ok(Some(f64::from(*x))),
            Some(Value::F64(x)) => Ok(Some(*x)),
            Some(v) => Err(self.mismatch(key, "FLOAT64", v)),
        }
    }

    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.mismatch(key, "BOOL", v)),
        }
    }

    pub fn get_str(&self, key: &str) -> Result<Option<&str>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.mismatch(key, "STRING", v)),
        }
    }

    pub fn get_array(&self, key: &str) -> Result<Option<&Array>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(v) => Err(self.mismatch(key, "ARRAY", v)),
        }
    }

    fn get_typed_array<'a, T: ?Sized>(
        &'a self,
        key: &str,
        expected: &'static str,
        pick: fn(&'a Array) -> Option<&'a T>,
    ) -> Result<Option<&'a T>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_array().and_then(pick) {
                Some(items) => Ok(Some(items)),
                None => Err(self.mismatch(key, expected, v)),
            },
        }
    }

    pub fn get_str_array(&self, key: &str) -> Result<Option<&[String]>, GgufError> {
        self.get_typed_array(key, "ARRAY of STRING", Array::as_strings)
    }

    pub fn get_f32_array(&self, key: &str) -> Result<Option<&[f32]>, GgufError> {
        self.get_typed_array(key, "ARRAY of FLOAT32", Array::as_f32)
    }

    pub fn get_i32_array(&self, key: &str) -> Result<Option<&[i32]>, GgufError> {
        self.get_typed_array(key, "ARRAY of INT32", Array::as_i32)
    }

    pub fn get_u32_array(&self, key: &str) -> Result<Option<&[u32]>, GgufError> {
        self.get_typed_array(key, "ARRAY of UINT32", Array::as_u32)
    }

    /// `general.architecture`, if present and a string.
    pub fn architecture(&self) -> Option<&str> {
        self.get("general.architecture").and_then(Value::as_str)
    }

    /// All tensor infos in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// Absolute file offset of the data section.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// The raw bytes of `t`, exactly as stored (little-endian GGML blocks).
    ///
    /// Panics if `t` is not one of this file's tensor infos (a programmer error): the
    /// ranges of this file's tensors were checked against its length when it was opened.
    pub fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        let (bytes, data_offset) = match self.shard_of(t) {
            0 => (self.storage.bytes(), self.data_offset),
            k => {
                let s = &self.shards[k - 1];
                (s.storage.bytes(), s.data_offset)
            }
        };
        let start = data_offset.checked_add(t.offset);
        let end = start.and_then(|s| s.checked_add(t.size));
        let range = start
            .zip(end)
            .and_then(|(s, e)| Some((usize::try_from(s).ok()?, usize::try_from(e).ok()?)))
            .and_then(|(s, e)| bytes.get(s..e));
        range.expect("invariant: tensor_data called with a TensorInfo of this file")
    }

    /// Which storage holds `t`'s data (0: this file's). Found from `t`'s place in the
    /// tensor table (callers pass references into [`GgufFile::tensors`]), else by name.
    fn shard_of(&self, t: &TensorInfo) -> usize {
        if self.tensor_shard.is_empty() {
            return 0;
        }
        let base = self.tensors.as_ptr() as usize;
        let size = std::mem::size_of::<TensorInfo>();
        let at = (t as *const TensorInfo as usize).wrapping_sub(base);
        let idx = if at.is_multiple_of(size) && at / size < self.tensors.len() {
            at / size
        } else {
            match self.tensor_index.get(&t.name) {
                Some(&i) => i,
                None => return 0,
            }
        };
        usize::from(self.tensor_shard[idx])
    }

    /// The raw bytes of the tensor called `name`.
    pub fn tensor_data_by_name(&self, name: &str) -> Option<&[u8]> {
        self.tensor(name).map(|t| self.tensor_data(t))
    }

    /// Ok if the engine can compute with every tensor's type; otherwise an error listing
    /// each tensor whose type it cannot use, with the type.
    pub fn check_supported(&self) -> Result<(), GgufError> {
        let bad: Vec<(String, DType)> = self
            .tensors
            .iter()
            .filter(|t| !t.dtype.is_supported())
            .map(|t| (t.name.clone(), t.dtype))
            .collect();
        if bad.is_empty() {
            Ok(())
        } else {
            Err(GgufError::UnsupportedTensorTypes(bad))
        }
    }
}

/// A `GgufFile` is shared read-only between worker threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<GgufFile>();
};
