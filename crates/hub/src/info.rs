//! What the store records about a model from its GGUF header: architecture, quantization,
//! training context, parameter count, display name and `gguf-split` shard count.

use std::path::Path;

use kaiyuan_gguf::{file_type_name, GgufFile};
use serde::{Deserialize, Serialize};

use crate::HubError;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub architecture: Option<String>,
    /// `general.name`.
    pub name: Option<String>,
    /// `general.file_type` as llama.cpp names it without `MOSTLY_` (`Q4_K_M`, `F16`…).
    pub quantization: Option<String>,
    /// `<architecture>.context_length`.
    pub context_length: Option<u64>,
    /// Elements in all tensors.
    pub parameters: u64,
    /// `split.count` of a `gguf-split` shard (absent for a whole file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_count: Option<u64>,
}

impl ModelInfo {
    /// Reads the header of the GGUF file at `path` (mapped, not copied).
    pub fn read(path: &Path) -> Result<ModelInfo, HubError> {
        let bad = |reason: String| HubError::BadGguf {
            path: path.to_path_buf(),
            reason,
        };
        let gguf = GgufFile::open(path).map_err(|e| bad(e.to_string()))?;
        ModelInfo::of(&gguf).map_err(|e| bad(e.to_string()))
    }

    fn of(gguf: &GgufFile) -> Result<ModelInfo, kaiyuan_gguf::GgufError> {
        let architecture = gguf.architecture().map(str::to_string);
        let context_length = match &architecture {
            Some(a) => gguf.get_u64(&format!("{a}.context_length"))?,
            None => None,
        };
        let quantization = gguf.get_u32("general.file_type")?.map(|t| {
            file_type_name(t).map_or_else(
                || format!("file type {t}"),
                |n| n.trim_start_matches("MOSTLY_").to_string(),
            )
        });
        Ok(ModelInfo {
            architecture,
            name: gguf.get_str("general.name")?.map(str::to_string),
            quantization,
            context_length,
            parameters: gguf.tensors().iter().map(|t| t.n_elements()).sum(),
            split_count: gguf.get_u64("split.count")?.filter(|&n| n > 1),
        })
    }
}

/// A parameter count as people write it: `135M`, `1.5B`.
pub fn human_params(n: u64) -> String {
    let (v, unit) = match n {
        n if n >= 1_000_000_000 => (n as f64 / 1e9, "B"),
        n if n >= 1_000_000 => (n as f64 / 1e6, "M"),
        n if n >= 1_000 => (n as f64 / 1e3, "K"),
        n => return n.to_string(),
    };
    if v >= 100.0 {
        format!("{v:.0}{unit}")
    } else {
        format!("{v:.1}{unit}")
    }
}

/// A byte count in binary units: `93.8 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_as_people_write_them() {
        assert_eq!(human_params(134_515_008), "135M");
        assert_eq!(human_params(1_544_000_000), "1.5B");
        assert_eq!(human_params(999), "999");
        assert_eq!(human_bytes(98_362_432), "93.8 MiB");
        assert_eq!(human_bytes(12), "12 B");
    }
}
