//! `-m MODEL` for the commands that run a model: a GGUF path (as always), or a Hugging Face
//! reference (`hf.co/OWNER/REPO[:QUANT]`, `OWNER/REPO[:QUANT]`, `OWNER/REPO/FILE.gguf`)
//! resolved from the local store and pulled when absent, unless `--offline`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use kaiyuan_hub::{resolve_blocking, HubConfig, ModelRef, Progress, PullOptions, Store};

/// How a model reference may be resolved.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct RefArgs {
    /// Never contact the Hub: a model reference must already be in the local store
    /// (`$KAIYUAN_HOME`). Also on when HF_HUB_OFFLINE=1.
    #[arg(long)]
    pub offline: bool,
}

impl RefArgs {
    fn offline(self) -> bool {
        self.offline
            || std::env::var("HF_HUB_OFFLINE")
                .is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes"))
    }
}

/// The local file for `model`: an existing path as it is; a reference from the store (pulled
/// first when absent and not offline); anything else as a path, which then fails to open with
/// the usual error.
pub fn resolve_model(model: &str, args: RefArgs) -> anyhow::Result<PathBuf> {
    let path = Path::new(model);
    if path.exists() || !ModelRef::looks_like_ref(model) {
        return Ok(path.to_path_buf());
    }
    let r = ModelRef::parse(model)?;
    let store = Store::from_env()?;
    resolve_blocking(
        &store,
        &r,
        args.offline(),
        || HubConfig::from_env(None),
        PullOptions {
            progress: Progress::Auto,
        },
    )
    .with_context(|| format!("cannot get the model {model}"))
}
