//! `kaiyuan serve`'s models: one [`ModelSpec`] per `-m` argument or models-file table, the
//! engine settings each loads with (its own, then the flags), and the registry entry that
//! loads it on demand, sized for the memory budget as the model file plus its KV pool at
//! its fullest.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use kaiyuan_engine::EngineConfig;
use kaiyuan_gguf::GgufFile;
use kaiyuan_hub::ModelRef;
use kaiyuan_server::ModelEntry;

use super::model_ref::resolve_model;
use super::serve::{load, ServeArgs, DEFAULT_MODEL};
use super::serve_models::{ModelConfig, ModelsFile};

/// One model to serve: a `-m` argument or a models file's table.
#[derive(Clone)]
pub(super) struct ModelSpec {
    pub(super) path: PathBuf,
    pub(super) name: String,
    pub(super) stem: String,
    pub(super) aliases: Vec<String>,
    pub(super) pinned: bool,
    pub(super) context: Option<usize>,
    pub(super) threads: Option<usize>,
    pub(super) sampling: serde_json::Map<String, serde_json::Value>,
}

impl ModelSpec {
    /// The registry's entry, loading with `args`' settings.
    pub(super) fn entry(self, args: &Arc<ServeArgs>) -> ModelEntry {
        let bytes = super::model_file::model_bytes(&self.path).unwrap_or(0);
        let memory_bytes = bytes.saturating_add(kv_pool_bytes(&self, args));
        let context = self.context.or(args.ctx).or_else(|| {
            kaiyuan_hub::ModelInfo::read(&self.path)
                .ok()
                .and_then(|i| i.context_length)
                .map(|c| (c as usize).clamp(1, 4096))
        });
        let mut aliases = self.aliases.clone();
        if self.stem != self.name && !aliases.contains(&self.stem) {
            aliases.push(self.stem.clone());
        }
        let (name, pinned) = (self.name.clone(), self.pinned);
        let args = Arc::clone(args);
        ModelEntry {
            name,
            aliases,
            pinned,
            bytes,
            memory_bytes,
            context,
            load: Some(Arc::new(move || {
                load(&self, &args).map_err(|e| format!("{e:#}"))
            })),
        }
    }
}

/// The models file's models, after the `-m` ones (names checked against them).
pub(super) fn file_specs(args: &ServeArgs, taken: &[ModelSpec]) -> anyhow::Result<Vec<ModelSpec>> {
    let Some(path) = &args.models_file else {
        return Ok(Vec::new());
    };
    let file = ModelsFile::read(path)?;
    let mut specs = Vec::new();
    for m in file.models {
        let ModelConfig {
            name,
            path: file_path,
            reference,
            aliases,
            context,
            threads,
            pinned,
            sampling,
        } = m;
        for n in std::iter::once(&name).chain(&aliases) {
            if let Some(other) = taken
                .iter()
                .find(|s| &s.name == n || &s.stem == n || s.aliases.contains(n))
            {
                bail!(
                    "the models file names a model {n:?}, which -m already serves as {:?}",
                    other.name
                );
            }
        }
        let path = match (file_path, reference) {
            (Some(p), _) => p,
            (None, Some(r)) => resolve_model(&r, args.source)
                .with_context(|| format!("model {name:?} of the models file"))?,
            (None, None) => bail!("model {name:?} needs `path` or `ref`"),
        };
        if !path.is_file() {
            bail!(
                "model {name:?} of the models file: {} does not exist",
                path.display()
            );
        }
        specs.push(ModelSpec {
            path,
            stem: name.clone(),
            name,
            aliases,
            pinned,
            context,
            threads,
            sampling: sampling.as_json(),
        });
    }
    Ok(specs)
}

pub(super) fn model_specs(args: &ServeArgs) -> anyhow::Result<Vec<ModelSpec>> {
    if args.models.is_empty() && args.models_file.is_some() {
        return Ok(Vec::new());
    }
    let given: Vec<String> = if args.models.is_empty() {
        let dir = std::env::var_os("KAIYUAN_MODELS")
            .map_or_else(|| PathBuf::from("models"), PathBuf::from);
        let path = dir.join(DEFAULT_MODEL);
        if !path.exists() {
            bail!(
                "the default model {} is missing: run scripts/fetch-models (or pass -m MODEL)",
                path.display()
            );
        }
        vec![path.to_string_lossy().into_owned()]
    } else {
        args.models.clone()
    };
    let mut specs: Vec<ModelSpec> = Vec::new();
    for arg in given {
        // `FILE=ALIAS`, unless the whole argument is an existing file.
        let (given, alias) = match arg.rsplit_once('=') {
            Some((p, a)) if !Path::new(&arg).exists() => (p.to_string(), Some(a.to_string())),
            _ => (arg.clone(), None),
        };
        // A Hugging Face reference is named as written; a file by its stem.
        let is_ref = !Path::new(&given).exists() && ModelRef::looks_like_ref(&given);
        let path = resolve_model(&given, args.source)?;
        if !path.is_file() {
            bail!("model file {} does not exist", path.display());
        }
        let stem = if is_ref {
            given.clone()
        } else {
            path.file_stem()
                .map_or_else(|| arg.clone(), |s| s.to_string_lossy().into_owned())
        };
        let name = alias
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| stem.clone());
        if specs.iter().any(|s| s.name == name || s.stem == name) {
            bail!("two models are named {name:?}; give one an alias with -m FILE=NAME");
        }
        specs.push(ModelSpec {
            path,
            name,
            stem,
            aliases: Vec::new(),
            pinned: true,
            context: None,
            threads: None,
            sampling: serde_json::Map::new(),
        });
    }
    Ok(specs)
}

/// Threads of the pool the engines share: `--threads`, else every core.
pub(super) fn thread_budget(args: &ServeArgs) -> usize {
    args.threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

/// The engine settings `spec` loads with: the model's defaults, then the models file's
/// context, then the flags (`--ctx`, `--max-seqs`, `--kv-tokens`, ...); threads from the
/// shared pool's size unless the model has a pool of its own.
pub(super) fn engine_config(
    spec: &ModelSpec,
    args: &ServeArgs,
    model: &kaiyuan_model::ModelConfig,
) -> EngineConfig {
    let mut config = EngineConfig::for_config(model);
    config.threads = spec.threads.unwrap_or_else(|| thread_budget(args));
    if let Some(c) = spec.context.or(args.ctx) {
        config.context = c;
        config.kv_tokens = config.kv_tokens.max(4 * c);
    }
    if let Some(n) = args.max_seqs {
        config.max_seqs = n;
    }
    if let Some(n) = args.kv_tokens {
        config.kv_tokens = n;
    }
    if let Some(n) = args.max_batch_tokens {
        config.max_batch_tokens = n;
    }
    if let Some(n) = args.max_queue {
        config.max_queue = n;
    }
    config
}

/// Bytes of the KV pool `spec`'s engine allocates, counted full (its pages are committed
/// as they fill, so that is what a busy model reaches): with the file's size, what the model
/// holds once loaded, for `--max-loaded-bytes`. 0 for a file whose configuration cannot be
/// read (its load then fails with the reason).
fn kv_pool_bytes(spec: &ModelSpec, args: &ServeArgs) -> u64 {
    GgufFile::open_split(&spec.path, false)
        .ok()
        .and_then(|gguf| kaiyuan_model::ModelConfig::of_file(&gguf).ok())
        .map_or(0, |model| {
            engine_config(spec, args, &model).kv_bytes(&model)
        })
}
