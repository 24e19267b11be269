//! GGUF (versions 2 and 3) reader: memory-mapped, zero-copy, every offset bounds-checked.
//!
//! (Skeleton: filled in by the GGUF work.)
