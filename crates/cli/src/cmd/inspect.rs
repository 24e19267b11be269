//! `kaiyuan inspect FILE [--json]`: summarises a GGUF file — architecture (with support,
//! attention kind and experts),
//! hyper-parameters (`<arch>.*` keys), `general.*` keys, tokenizer, totals and the tensor
//! table, marking tensor types the engine cannot compute with. The same [`Report`] is
//! printed as text or, with `--json`, as one JSON document.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use kaiyuan_gguf::{file_type_name, Array, GgufFile, Value};
use kaiyuan_kernels::DType;
use serde::Serialize;
use serde_json::{json, Value as Json};

pub mod model;
pub mod text;

#[derive(clap::Args)]
pub struct InspectArgs {
    /// The GGUF file.
    pub file: PathBuf,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &InspectArgs) -> anyhow::Result<()> {
    let report = inspect(&args.file)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", text::render(&report));
    }
    Ok(())
}

/// Everything `inspect` shows.
#[derive(Serialize)]
pub struct Report {
    pub file: String,
    pub file_size: u64,
    pub gguf_version: u32,
    pub alignment: u64,
    pub data_offset: u64,
    pub architecture: Option<String>,
    /// Support, attention kind and experts, when the file names an architecture.
    pub model: Option<model::ModelSummary>,
    pub name: Option<String>,
    pub file_type: Option<FileType>,
    pub quantization_version: Option<u64>,
    /// `general.*` keys.
    pub general: Vec<Entry>,
    /// `<architecture>.*` keys, with the prefix removed.
    pub hyperparameters: Vec<Entry>,
    pub tokenizer: Option<Tokenizer>,
    /// Keys in none of the sections above.
    pub other_metadata: Vec<Entry>,
    pub totals: Totals,
    /// Shapes are in PyTorch order (outermost dimension first); `ggml_dims` is the reverse.
    pub tensors: Vec<TensorRow>,
    /// Tensors whose type the engine cannot compute with.
    pub unsupported_tensors: Vec<String>,
}

#[derive(Serialize)]
pub struct FileType {
    pub id: u64,
    pub name: Option<&'static str>,
}

/// One metadata key: scalars as JSON values, arrays summarised.
#[derive(Serialize)]
pub struct Entry {
    pub key: String,
    #[serde(rename = "type")]
    pub value_type: String,
    pub value: Json,
}

#[derive(Serialize)]
pub struct SpecialToken {
    pub role: &'static str,
    pub id: u64,
    /// The token's text, if the id is inside the vocabulary.
    pub token: Option<String>,
}

#[derive(Serialize)]
pub struct ChatTemplate {
    pub bytes: usize,
    pub lines: usize,
    pub first_line: String,
}

#[derive(Serialize)]
pub struct Tokenizer {
    pub model: Option<String>,
    pub pre: Option<String>,
    pub vocab_size: Option<usize>,
    pub merges: Option<usize>,
    pub has_scores: bool,
    pub has_token_types: bool,
    pub special_tokens: Vec<SpecialToken>,
    pub add_bos_token: Option<bool>,
    pub add_eos_token: Option<bool>,
    pub chat_template: Option<ChatTemplate>,
    /// `tokenizer.*` keys not summarised above.
    pub other: Vec<Entry>,
}

#[derive(Serialize)]
pub struct TypeTotal {
    #[serde(rename = "type")]
    pub dtype: String,
    pub supported: bool,
    pub tensors: usize,
    pub parameters: u64,
    pub bytes: u64,
}

#[derive(Serialize)]
pub struct Totals {
    pub tensors: usize,
    pub parameters: u64,
    pub bytes: u64,
    pub by_type: Vec<TypeTotal>,
}

#[derive(Serialize)]
pub struct TensorRow {
    pub name: String,
    #[serde(rename = "type")]
    pub dtype: String,
    pub supported: bool,
    pub shape: Vec<u64>,
    pub ggml_dims: Vec<u64>,
    pub parameters: u64,
    pub bytes: u64,
    pub offset: u64,
}

const SPECIAL_TOKENS: &[(&str, &str)] = &[
    ("bos", "tokenizer.ggml.bos_token_id"),
    ("eos", "tokenizer.ggml.eos_token_id"),
    ("eot", "tokenizer.ggml.eot_token_id"),
    ("eom", "tokenizer.ggml.eom_token_id"),
    ("pad", "tokenizer.ggml.padding_token_id"),
    ("unk", "tokenizer.ggml.unknown_token_id"),
    ("sep", "tokenizer.ggml.seperator_token_id"),
    ("cls", "tokenizer.ggml.cls_token_id"),
    ("mask", "tokenizer.ggml.mask_token_id"),
];

/// Tokenizer keys the summary covers (the rest are listed as entries).
const SUMMARISED_TOKENIZER_KEYS: &[&str] = &[
    "tokenizer.ggml.model",
    "tokenizer.ggml.pre",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.merges",
    "tokenizer.ggml.scores",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.add_bos_token",
    "tokenizer.ggml.add_eos_token",
    "tokenizer.chat_template",
];

pub fn inspect(path: &Path) -> anyhow::Result<Report> {
    let file =
        GgufFile::open(path).with_context(|| format!("cannot inspect {}", path.display()))?;
    Ok(build_report(path, &file))
}

/// A JSON number for an `f32`, via its shortest decimal form (so 1e-5 prints as 1e-05,
/// not 9.999999747378752e-06).
fn f32_json(x: f32) -> Json {
    format!("{x}")
        .parse::<f64>()
        .map(Json::from)
        .unwrap_or(Json::Null)
}

fn array_summary(a: &Array) -> Json {
    let first: Vec<Json> = (0..a.len().min(3))
        .filter_map(|i| a.get(i))
        .map(|v| value_json(&v))
        .collect();
    json!({ "element_type": a.element_type().name(), "length": a.len(), "first": first })
}

fn value_json(v: &Value) -> Json {
    match v {
        Value::F32(x) => f32_json(*x),
        Value::F64(x) => Json::from(*x),
        Value::Bool(b) => Json::from(*b),
        Value::String(s) => Json::from(s.as_str()),
        Value::Array(a) => array_summary(a),
        other => match other.as_integer() {
            Some(n) => i64::try_from(n)
                .map(Json::from)
                .or_else(|_| u64::try_from(n).map(Json::from))
                .unwrap_or(Json::Null),
            None => Json::Null,
        },
    }
}

fn entry(key: &str, v: &Value) -> Entry {
    Entry {
        key: key.to_owned(),
        value_type: v.type_description(),
        value: value_json(v),
    }
}

fn tokenizer_summary(file: &GgufFile) -> Option<Tokenizer> {
    let keys: Vec<&(String, Value)> = file
        .metadata()
        .iter()
        .filter(|(k, _)| k.starts_with("tokenizer."))
        .collect();
    if keys.is_empty() {
        return None;
    }
    let string = |k| file.get(k).and_then(Value::as_str).map(str::to_owned);
    let array_len = |k| file.get(k).and_then(Value::as_array).map(Array::len);
    let flag = |k| match file.get(k) {
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    };
    let tokens = file
        .get("tokenizer.ggml.tokens")
        .and_then(Value::as_array)
        .and_then(Array::as_strings);
    let special_tokens = SPECIAL_TOKENS
        .iter()
        .filter_map(|&(role, key)| {
            let id = file
                .get(key)?
                .as_integer()
                .and_then(|n| u64::try_from(n).ok())?;
            let token = tokens
                .and_then(|t| t.get(usize::try_from(id).ok()?))
                .cloned();
            Some(SpecialToken { role, id, token })
        })
        .collect();
    let chat_template = file
        .get("tokenizer.chat_template")
        .and_then(Value::as_str)
        .map(|t| ChatTemplate {
            bytes: t.len(),
            lines: t.lines().count(),
            first_line: t.lines().next().unwrap_or("").to_owned(),
        });
    let other = keys
        .iter()
        .filter(|(k, _)| {
            !SUMMARISED_TOKENIZER_KEYS.contains(&k.as_str())
                && !SPECIAL_TOKENS.iter().any(|(_, s)| s == k)
        })
        .map(|(k, v)| entry(k, v))
        .collect();
    Some(Tokenizer {
        model: string("tokenizer.ggml.model"),
        pre: string("tokenizer.ggml.pre"),
        vocab_size: array_len("tokenizer.ggml.tokens"),
        merges: array_len("tokenizer.ggml.merges"),
        has_scores: file.get("tokenizer.ggml.scores").is_some(),
        has_token_types: file.get("tokenizer.ggml.token_type").is_some(),
        special_tokens,
        add_bos_token: flag("tokenizer.ggml.add_bos_token"),
        add_eos_token: flag("tokenizer.ggml.add_eos_token"),
        chat_template,
        other,
    })
}

fn totals(file: &GgufFile) -> Totals {
    let mut by_type: BTreeMap<DType, TypeTotal> = BTreeMap::new();
    for t in file.tensors() {
        let e = by_type.entry(t.dtype).or_insert_with(|| TypeTotal {
            dtype: t.dtype.name().to_owned(),
            supported: t.dtype.is_supported(),
            tensors: 0,
            parameters: 0,
            bytes: 0,
        });
        e.tensors += 1;
        e.parameters += t.n_elements();
        e.bytes += t.size;
    }
    Totals {
        tensors: file.tensors().len(),
        parameters: file.tensors().iter().map(|t| t.n_elements()).sum(),
        bytes: file.tensors().iter().map(|t| t.size).sum(),
        by_type: by_type.into_values().collect(),
    }
}

fn build_report(path: &Path, file: &GgufFile) -> Report {
    let arch = file.architecture().map(str::to_owned);
    let arch_prefix = arch.as_ref().map(|a| format!("{a}."));
    let mut general = Vec::new();
    let mut hyperparameters = Vec::new();
    let mut other_metadata = Vec::new();
    for (key, value) in file.metadata() {
        if key.starts_with("general.") {
            general.push(entry(key, value));
        } else if let Some(rest) = arch_prefix.as_deref().and_then(|p| key.strip_prefix(p)) {
            hyperparameters.push(entry(rest, value));
        } else if !key.starts_with("tokenizer.") {
            other_metadata.push(entry(key, value));
        }
    }
    let file_type = file
        .get("general.file_type")
        .and_then(Value::as_integer)
        .and_then(|n| u64::try_from(n).ok())
        .map(|id| FileType {
            id,
            name: u32::try_from(id).ok().and_then(file_type_name),
        });
    let tensors: Vec<TensorRow> = file
        .tensors()
        .iter()
        .map(|t| TensorRow {
            name: t.name.clone(),
            dtype: t.dtype.name().to_owned(),
            supported: t.dtype.is_supported(),
            shape: t.dims.iter().rev().copied().collect(),
            ggml_dims: t.dims.clone(),
            parameters: t.n_elements(),
            bytes: t.size,
            offset: t.offset,
        })
        .collect();
    Report {
        file: path.display().to_string(),
        file_size: file.file_len(),
        gguf_version: file.version(),
        alignment: file.alignment(),
        data_offset: file.data_offset(),
        architecture: arch,
        model: model::summary(file),
        name: file
            .get("general.name")
            .and_then(Value::as_str)
            .map(str::to_owned),
        file_type,
        quantization_version: file
            .get("general.quantization_version")
            .and_then(Value::as_integer)
            .and_then(|n| u64::try_from(n).ok()),
        general,
        hyperparameters,
        tokenizer: tokenizer_summary(file),
        other_metadata,
        totals: totals(file),
        unsupported_tensors: tensors
            .iter()
            .filter(|t| !t.supported)
            .map(|t| t.name.clone())
            .collect(),
        tensors,
    }
}
