//! The table of GGML tensor types: id, name, block size and bytes per block.
//!
//! Sizes follow the GGML type traits as published by the `gguf` Python package
//! (`gguf.constants.GGML_QUANT_SIZES`). Every type a GGUF file may name is listed so that
//! byte sizes can be computed (and `inspect` can show them) even for types the engine
//! cannot compute with; [`DType::is_supported`] says which ones it can.

use std::fmt;

/// A GGML tensor element type, as stored in a GGUF tensor-info record.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    IQ2_XXS,
    IQ2_XS,
    IQ3_XXS,
    IQ1_S,
    IQ4_NL,
    IQ3_S,
    IQ2_S,
    IQ4_XS,
    I8,
    I16,
    I32,
    I64,
    F64,
    IQ1_M,
    BF16,
    TQ1_0,
    TQ2_0,
    MXFP4,
}

/// (type, ggml id, name, elements per block, bytes per block)
const TABLE: &[(DType, u32, &str, usize, usize)] = &[
    (DType::F32, 0, "F32", 1, 4),
    (DType::F16, 1, "F16", 1, 2),
    (DType::Q4_0, 2, "Q4_0", 32, 18),
    (DType::Q4_1, 3, "Q4_1", 32, 20),
    (DType::Q5_0, 6, "Q5_0", 32, 22),
    (DType::Q5_1, 7, "Q5_1", 32, 24),
    (DType::Q8_0, 8, "Q8_0", 32, 34),
    (DType::Q8_1, 9, "Q8_1", 32, 40),
    (DType::Q2_K, 10, "Q2_K", 256, 84),
    (DType::Q3_K, 11, "Q3_K", 256, 110),
    (DType::Q4_K, 12, "Q4_K", 256, 144),
    (DType::Q5_K, 13, "Q5_K", 256, 176),
    (DType::Q6_K, 14, "Q6_K", 256, 210),
    (DType::Q8_K, 15, "Q8_K", 256, 292),
    (DType::IQ2_XXS, 16, "IQ2_XXS", 256, 66),
    (DType::IQ2_XS, 17, "IQ2_XS", 256, 74),
    (DType::IQ3_XXS, 18, "IQ3_XXS", 256, 98),
    (DType::IQ1_S, 19, "IQ1_S", 256, 50),
    (DType::IQ4_NL, 20, "IQ4_NL", 32, 18),
    (DType::IQ3_S, 21, "IQ3_S", 256, 110),
    (DType::IQ2_S, 22, "IQ2_S", 256, 82),
    (DType::IQ4_XS, 23, "IQ4_XS", 256, 136),
    (DType::I8, 24, "I8", 1, 1),
    (DType::I16, 25, "I16", 1, 2),
    (DType::I32, 26, "I32", 1, 4),
    (DType::I64, 27, "I64", 1, 8),
    (DType::F64, 28, "F64", 1, 8),
    (DType::IQ1_M, 29, "IQ1_M", 256, 56),
    (DType::BF16, 30, "BF16", 1, 2),
    (DType::TQ1_0, 34, "TQ1_0", 256, 54),
    (DType::TQ2_0, 35, "TQ2_0", 256, 66),
    (DType::MXFP4, 39, "MXFP4", 32, 17),
];

impl DType {
    fn entry(self) -> &'static (DType, u32, &'static str, usize, usize) {
        TABLE
            .iter()
            .find(|e| e.0 == self)
            .expect("invariant: every DType variant has a TABLE entry")
    }

    /// The type for a GGML type id, or `None` for an id GGML never assigned (or retired).
    pub fn from_ggml_id(id: u32) -> Option<DType> {
        TABLE.iter().find(|e| e.1 == id).map(|e| e.0)
    }

    /// The GGML type id written in GGUF files.
    pub fn ggml_id(self) -> u32 {
        self.entry().1
    }

    /// GGML's name for the type (`Q4_K`, `BF16`, ...).
    pub fn name(self) -> &'static str {
        self.entry().2
    }

    /// Elements per block (1 for plain scalar types).
    pub fn block_size(self) -> usize {
        self.entry().3
    }

    /// Bytes per block.
    pub fn type_size(self) -> usize {
        self.entry().4
    }

    /// Bytes taken by `n` elements, or `None` if `n` is not a whole number of blocks
    /// or the size overflows.
    pub fn bytes_for(self, n: u64) -> Option<u64> {
        let bs = self.block_size() as u64;
        if !n.is_multiple_of(bs) {
            return None;
        }
        (n / bs).checked_mul(self.type_size() as u64)
    }

    /// Whether Kaiyuan can dequantize this type and use it as a weight in dot products.
    pub fn is_supported(self) -> bool {
        matches!(
            self,
            DType::F32
                | DType::F16
                | DType::BF16
                | DType::Q4_0
                | DType::Q4_1
                | DType::Q5_0
                | DType::Q5_1
                | DType::Q8_0
                | DType::Q2_K
                | DType::Q3_K
                | DType::Q4_K
                | DType::Q5_K
                | DType::Q6_K
        )
    }

    /// All known types, in GGML id order.
    pub fn all() -> impl Iterator<Item = DType> {
        TABLE.iter().map(|e| e.0)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_unique() {
        for t in DType::all() {
            assert_eq!(DType::from_ggml_id(t.ggml_id()), Some(t));
        }
        let mut ids: Vec<u32> = DType::all().map(|t| t.ggml_id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), TABLE.len());
    }

    #[test]
    fn retired_ids_are_unknown() {
        for id in [4, 5, 31, 32, 33, 36, 37, 38, 1000] {
            assert_eq!(DType::from_ggml_id(id), None);
        }
    }

    #[test]
    fn bytes_for_rejects_partial_blocks_and_overflow() {
        assert_eq!(DType::Q4_0.bytes_for(64), Some(36));
        assert_eq!(DType::Q4_0.bytes_for(33), None);
        assert_eq!(DType::F32.bytes_for(u64::MAX), None);
    }
}
