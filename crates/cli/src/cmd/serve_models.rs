//! `kaiyuan serve --models FILE`: the models file (TOML), read and checked before anything
//! loads, and the flags of on-demand loading (`--keep-alive`, `--max-loaded-bytes`).
//!
//! ```toml
//! [[models]]
//! name = "smollm2"                      # what clients send as `model`
//! path = "models/SmolLM2-135M-Instruct.Q4_1.gguf"   # relative to this file; or:
//! # ref = "bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M"
//! aliases = ["small"]
//! context = 2048                        # positions per request (default: the model's, ≤ 4096)
//! threads = 2                           # a pool of its own (default: the shared pool)
//! pinned = true                         # loaded at start, never unloaded
//! sampling = { temperature = 0.2, top_p = 0.9 }   # defaults for requests that omit them
//! ```
//! Unknown keys, a model with both or neither of `path`/`ref`, and a name or alias used twice
//! are errors naming the line or the model.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

/// The file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsFile {
    #[serde(default)]
    pub models: Vec<ModelConfig>,
}

/// One `[[models]]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub name: String,
    #[serde(default)]
    pub path: Option<PathBuf>,
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub context: Option<usize>,
    #[serde(default)]
    pub threads: Option<usize>,
    #[serde(default)]
    pub pinned: bool,
    #[serde(default)]
    pub sampling: Sampling,
}

/// Default sampling of one model: used for the fields a request leaves out.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sampling {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<i64>,
    pub min_p: Option<f64>,
    pub repetition_penalty: Option<f64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub max_tokens: Option<u64>,
}

impl Sampling {
    /// As request fields (`{"temperature": 0.2, …}`), only those given.
    pub fn as_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        let mut put = |k: &str, v: Option<serde_json::Value>| {
            if let Some(v) = v {
                m.insert(k.to_string(), v);
            }
        };
        put("temperature", self.temperature.map(Into::into));
        put("top_p", self.top_p.map(Into::into));
        put("top_k", self.top_k.map(Into::into));
        put("min_p", self.min_p.map(Into::into));
        put(
            "repetition_penalty",
            self.repetition_penalty.map(Into::into),
        );
        put("presence_penalty", self.presence_penalty.map(Into::into));
        put("frequency_penalty", self.frequency_penalty.map(Into::into));
        put("max_tokens", self.max_tokens.map(Into::into));
        m
    }
}

impl ModelsFile {
    /// Reads and checks `path`; relative model paths become relative to its directory.
    pub fn read(path: &Path) -> anyhow::Result<ModelsFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the models file {}", path.display()))?;
        let mut file = ModelsFile::parse(&text)
            .with_context(|| format!("the models file {} is invalid", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        for m in &mut file.models {
            if let Some(p) = &m.path {
                if p.is_relative() {
                    m.path = Some(dir.join(p));
                }
            }
        }
        Ok(file)
    }

    /// Parses and checks the text of a models file.
    pub fn parse(text: &str) -> anyhow::Result<ModelsFile> {
        let file: ModelsFile = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        if file.models.is_empty() {
            bail!("it configures no model (add a [[models]] table with name and path or ref)");
        }
        let mut owner: HashMap<&str, &str> = HashMap::new();
        for m in &file.models {
            if m.name.trim().is_empty() {
                bail!("a model has an empty name");
            }
            match (&m.path, &m.reference) {
                (Some(_), Some(_)) => {
                    bail!("model {:?} has both `path` and `ref`; give one", m.name)
                }
                (None, None) => bail!(
                    "model {:?} needs `path` (a GGUF file) or `ref` (a Hugging Face reference)",
                    m.name
                ),
                _ => {}
            }
            if m.context == Some(0) {
                bail!("model {:?}: `context` must be at least 1", m.name);
            }
            if m.threads == Some(0) {
                bail!("model {:?}: `threads` must be at least 1", m.name);
            }
            for n in std::iter::once(&m.name).chain(&m.aliases) {
                if n.trim().is_empty() {
                    bail!("model {:?} has an empty alias", m.name);
                }
                if let Some(first) = owner.insert(n, &m.name) {
                    if first == m.name {
                        bail!("model {:?} lists the name {n:?} twice", m.name);
                    }
                    bail!(
                        "the name {n:?} is used by two models: {first:?} and {:?}",
                        m.name
                    );
                }
            }
        }
        Ok(file)
    }
}

/// `--keep-alive`: `5m`, `30s`, `500ms`, `1h`, a plain number of seconds, `0` (unload as
/// soon as idle), or `-1` / `forever` (never unload). `None`: never.
pub fn parse_keep_alive(s: &str) -> Result<Option<Duration>, String> {
    let t = s.trim();
    if t == "-1" || t.eq_ignore_ascii_case("forever") {
        return Ok(None);
    }
    let (num, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let value: f64 = num.trim().parse().map_err(|_| {
        format!("{s:?} is not a duration (like 5m, 30s, 500ms, 0, or -1 for forever)")
    })?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("{s:?}: the unit must be ms, s, m or h")),
    };
    if !(secs.is_finite() && secs >= 0.0) {
        return Err(format!(
            "{s:?} must be a non-negative duration (or -1 for forever)"
        ));
    }
    Ok(Some(Duration::from_secs_f64(secs)))
}

/// `--max-loaded-bytes`: a number of bytes, or with a unit (`800M`, `8G`, `8GiB`; powers
/// of 1024).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let i = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(i);
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size (like 4000000000, 800M, 8G)"))?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("{s:?}: the unit must be K, M, G or T")),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[models]]
name = "smol"
path = "a.gguf"
aliases = ["small", "s"]
pinned = true
sampling = { temperature = 0.2 }

[[models]]
name = "gemma"
ref = "google/gemma-3-270m-it-GGUF:Q4_K_M"
context = 1024
"#;

    #[test]
    fn a_good_file_parses_in_order() {
        let f = ModelsFile::parse(GOOD).unwrap();
        assert_eq!(f.models.len(), 2);
        assert_eq!(f.models[0].name, "smol");
        assert!(f.models[0].pinned);
        assert_eq!(f.models[0].sampling.temperature, Some(0.2));
        assert_eq!(f.models[1].context, Some(1024));
        assert!(!f.models[1].pinned);
    }

    fn error_of(text: &str) -> String {
        format!("{:#}", ModelsFile::parse(text).unwrap_err())
    }

    #[test]
    fn bad_files_get_errors_that_name_the_problem() {
        let unknown = error_of("[[models]]\nname = \"a\"\npath = \"a.gguf\"\npinnned = true\n");
        assert!(unknown.contains("pinnned"), "{unknown}");
        let dup = error_of(
            "[[models]]\nname = \"a\"\npath = \"a.gguf\"\n[[models]]\nname = \"b\"\npath = \"b.gguf\"\naliases = [\"a\"]\n",
        );
        assert!(dup.contains("\"a\"") && dup.contains("two models"), "{dup}");
        let both = error_of("[[models]]\nname = \"a\"\npath = \"a.gguf\"\nref = \"o/r\"\n");
        assert!(both.contains("both"), "{both}");
        let neither = error_of("[[models]]\nname = \"a\"\n");
        assert!(
            neither.contains("path") && neither.contains("ref"),
            "{neither}"
        );
        assert!(error_of("").contains("no model"));
        let sampling =
            error_of("[[models]]\nname = \"a\"\npath = \"a\"\nsampling = { temp = 1 }\n");
        assert!(sampling.contains("temp"), "{sampling}");
        let top = error_of("model = 1\n[[models]]\nname = \"a\"\npath = \"a\"\n");
        assert!(top.contains("model"), "{top}");
    }

    #[test]
    fn keep_alive_and_byte_sizes_parse() {
        assert_eq!(parse_keep_alive("5m"), Ok(Some(Duration::from_secs(300))));
        assert_eq!(
            parse_keep_alive("500ms"),
            Ok(Some(Duration::from_millis(500)))
        );
        assert_eq!(parse_keep_alive("2"), Ok(Some(Duration::from_secs(2))));
        assert_eq!(parse_keep_alive("0"), Ok(Some(Duration::ZERO)));
        assert_eq!(parse_keep_alive("-1"), Ok(None));
        assert!(parse_keep_alive("5 parsecs").is_err());
        assert!(parse_keep_alive("-3s").is_err());
        assert_eq!(parse_bytes("800M"), Ok(800 << 20));
        assert_eq!(parse_bytes("8GiB"), Ok(8 << 30));
        assert_eq!(parse_bytes("123"), Ok(123));
        assert!(parse_bytes("12X").is_err());
        assert!(parse_bytes("99999999999T").is_err());
    }
}
