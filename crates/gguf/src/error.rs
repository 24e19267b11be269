//! The single error type of the GGUF reader: every variant names the problem and the key,
//! tensor or byte offset it concerns, so a user can tell which part of which file is bad.

use std::path::PathBuf;

use kaiyuan_kernels::DType;

/// Everything that can go wrong opening, parsing or querying a GGUF file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    // The io error is in the message, not a `#[source]`: error-chain printers (anyhow's
    // `{:#}`) would otherwise print it twice.
    #[error("cannot read {path}: {source_error}")]
    Io {
        path: PathBuf,
        source_error: std::io::Error,
    },

    #[error("file truncated: {what} needs {needed} byte(s) at offset {offset}, but the file ends at {file_len}")]
    Truncated {
        what: String,
        offset: u64,
        needed: u64,
        file_len: u64,
    },

    #[error("not a GGUF file: magic is {found:02x?} ({:?}), expected \"GGUF\"", String::from_utf8_lossy(.found))]
    BadMagic { found: [u8; 4] },

    #[error("big-endian GGUF is not supported ({detail})")]
    BigEndian { detail: String },

    #[error("GGUF version 1 is not supported (it used 32-bit counts and was superseded in 2023); re-convert the model to GGUF v3")]
    VersionOne,

    #[error("unsupported GGUF version {0} (supported: 2 and 3)")]
    UnsupportedVersion(u32),

    #[error("{what} is {count}, but only {remaining} byte(s) remain and each needs at least {min_each}: the count is corrupt or the file is truncated")]
    CountTooLarge {
        what: String,
        count: u64,
        remaining: u64,
        min_each: u64,
    },

    #[error("metadata key {key:?}: unknown value type id {type_id}")]
    UnknownValueType { key: String, type_id: u32 },

    #[error("{what} at offset {offset} is not valid UTF-8")]
    InvalidUtf8 { what: String, offset: u64 },

    #[error("duplicate metadata key {0:?}")]
    DuplicateKey(String),

    #[error("duplicate tensor name {0:?}")]
    DuplicateTensor(String),

    #[error("metadata key {key:?}: bool byte is {value}, expected 0 or 1")]
    InvalidBool { key: String, value: u8 },

    #[error("metadata key {key:?}: arrays nested deeper than {max} levels")]
    NestingTooDeep { key: String, max: usize },

    #[error("general.alignment: {0}")]
    BadAlignment(String),

    #[error("tensor {tensor:?}: {n_dims} dimensions (must be 1..=4)")]
    BadDimCount { tensor: String, n_dims: u32 },

    #[error("tensor {tensor:?}: dimensions {dims:?} overflow the element count")]
    ShapeOverflow { tensor: String, dims: Vec<u64> },

    #[error("tensor {tensor:?}: unknown GGML type id {type_id}")]
    UnknownTensorType { tensor: String, type_id: u32 },

    #[error("tensor {tensor:?}: row length {row_len} (dims[0]) is not a multiple of the {dtype} block size {block_size}")]
    PartialBlock {
        tensor: String,
        dtype: DType,
        row_len: u64,
        block_size: u64,
    },

    #[error(
        "tensor {tensor:?}: data offset {offset} is not a multiple of the alignment {alignment}"
    )]
    MisalignedTensor {
        tensor: String,
        offset: u64,
        alignment: u64,
    },

    #[error("tensor {tensor:?}: data [{start}, {end}) extends past the end of the file ({file_len} bytes)")]
    TensorOutOfBounds {
        tensor: String,
        start: u64,
        end: u64,
        file_len: u64,
    },

    #[error("tensors {first:?} and {second:?} overlap in the data section")]
    OverlappingTensors { first: String, second: String },

    #[error("tensor data section would start at offset {data_offset}, beyond the end of the file ({file_len} bytes)")]
    DataBeyondEof { data_offset: u64, file_len: u64 },

    #[error("metadata key {key:?}: expected {expected}, found {found}")]
    TypeMismatch {
        key: String,
        expected: &'static str,
        found: String,
    },

    #[error("metadata key {key:?}: value {value} does not fit in {target}")]
    OutOfRange {
        key: String,
        value: String,
        target: &'static str,
    },

    #[error("unsupported tensor types: {}", list_tensors(.0))]
    UnsupportedTensorTypes(Vec<(String, DType)>),

    /// A `gguf-split` model whose shards are missing or do not belong together.
    #[error("split model {path}: {reason}")]
    Split { path: PathBuf, reason: String },
}

fn list_tensors(tensors: &[(String, DType)]) -> String {
    tensors
        .iter()
        .map(|(name, dtype)| format!("{name} ({dtype})"))
        .collect::<Vec<_>>()
        .join(", ")
}
