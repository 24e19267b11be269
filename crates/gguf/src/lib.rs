//! GGUF (versions 2 and 3) reader: memory-mapped, zero-copy, every offset bounds-checked.
//!
//! The layout follows the GGUF specification in the ggml repository (`docs/gguf.md`):
//! header, typed metadata key/values, tensor infos, then the tensor data section aligned
//! to `general.alignment` (default 32). [`GgufFile::open`] validates the whole layout up
//! front (every check is listed in the `parse` module and exercised by
//! `tests/malformed.rs`), so [`GgufFile::tensor_data`] is a
//! plain slice of the mapping. [`writer`] builds GGUF files for tests and fixtures.
//! [`GgufFile::open_split`] opens a `gguf-split` model (`NAME-00001-of-0000N.gguf`) as one
//! file: the first shard's metadata, every shard's tensors.

mod error;
mod file;
mod names;
mod parse;
mod split;
mod value;
pub mod writer;

pub use error::GgufError;
pub use file::{GgufFile, TensorInfo};
pub use names::file_type_name;
pub use parse::{DEFAULT_ALIGNMENT, MAX_ARRAY_NESTING, MAX_DIMS};
pub use split::shard_paths;
pub use value::{Array, Value, ValueType};
