//! Opening a model file for the commands that need its tokenizer or chat template.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use kaiyuan_chat::{builtin, pick_builtin, ChatTemplate, BUILTIN_NAMES};
use kaiyuan_gguf::GgufFile;
use kaiyuan_tokenizer::{TokenType, Tokenizer, Vocab};

/// A GGUF file with its tokenizer built.
pub struct ModelFile {
    pub gguf: Arc<GgufFile>,
    pub tokenizer: Arc<Tokenizer>,
    /// The file is mapped, not copied: it must not change while in use (`mapped.rs`).
    pub mapped: bool,
}

/// How the commands that run a model hold its weights.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct LoadArgs {
    /// Map the model file instead of copying it into memory of its own. Loads faster and
    /// shares the OS page cache between processes, but decodes slower: the copy sits in
    /// 2 MiB huge pages (on Linux), which memory reads faster than 4 KiB file pages.
    #[arg(long)]
    pub mmap: bool,
}

/// Whether a copy of the file at `path` fits in the memory the OS reports available (with
/// a quarter to spare for the KV cache and everything else). A resident copy cannot be
/// paged back to the file the way a mapping can, so when it does not fit the model is
/// mapped instead (slower decoding rather than an out-of-memory kill), and this says so.
/// Where the OS does not report it (not Linux), the copy is made.
fn fits_in_free_memory(path: &Path) -> bool {
    let Ok(len) = model_bytes(path) else {
        return true; // opening reports the error
    };
    let available = available_memory();
    let fits = copy_fits(len, available);
    if let (false, Some(available)) = (fits, available) {
        tracing::warn!(
            path = %path.display(),
            "{} ({} MiB) is mapped, not copied into memory: only {} MiB is available",
            path.display(),
            len >> 20,
            available >> 20
        );
    }
    fits
}

/// Bytes of the model at `path`: the file, or every shard of a gguf-split model named
/// `NAME-00001-of-0000N.gguf` (those that exist; opening reports a missing one).
pub fn model_bytes(path: &Path) -> std::io::Result<u64> {
    let first = std::fs::metadata(path)?.len();
    let Some(shards) = kaiyuan_gguf::shard_paths(path) else {
        return Ok(first);
    };
    if shards.first().map(PathBuf::as_path) != Some(path) {
        return Ok(first);
    }
    Ok(shards
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum())
}

/// The rule of [`fits_in_free_memory`]: a file of `len` bytes plus a quarter fits in
/// `available` bytes; unknown availability counts as fitting.
fn copy_fits(len: u64, available: Option<u64>) -> bool {
    available.is_none_or(|a| len.saturating_add(len / 4) <= a)
}

/// `MemAvailable` of `/proc/meminfo`, in bytes (Linux only).
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

impl ModelFile {
    /// Opens `path` by mapping it (for commands that only need the tokenizer or template).
    pub fn open(path: &Path) -> anyhow::Result<ModelFile> {
        ModelFile::open_for_inference(path, LoadArgs { mmap: true })
    }

    /// Opens `path` to run it: copied into huge-page memory unless `load.mmap` or the copy
    /// would not fit in available memory.
    pub fn open_for_inference(path: &Path, load: LoadArgs) -> anyhow::Result<ModelFile> {
        let resident = !load.mmap && fits_in_free_memory(path);
        // The first shard of a gguf-split model brings the others.
        let gguf = GgufFile::open_split(path, resident)
            .with_context(|| format!("cannot load {}", path.display()))?;
        let vocab = Vocab::from_gguf(&gguf)
            .with_context(|| format!("cannot read the tokenizer of {}", path.display()))?;
        let tokenizer = Tokenizer::from_vocab(&vocab)
            .with_context(|| format!("cannot build the tokenizer of {}", path.display()))?;
        Ok(ModelFile {
            gguf: Arc::new(gguf),
            tokenizer: Arc::new(tokenizer),
            mapped: !resident,
        })
    }

    /// The model's weights, over the same mapping as the tokenizer.
    pub fn load_model(&self) -> anyhow::Result<kaiyuan_model::Model> {
        kaiyuan_model::Model::from_gguf(Arc::clone(&self.gguf)).context("cannot load the model")
    }

    /// Text of a token id, or `None` if out of range.
    pub fn token_text(&self, id: Option<u32>) -> Option<String> {
        let bytes = self.tokenizer.piece_bytes(id?, true).ok()?;
        Some(String::from_utf8_lossy(bytes).into_owned())
    }

    /// The file's chat template, or a built-in one chosen from its metadata; the second
    /// value says which built-in was chosen and why (`None` when the file has its own).
    pub fn chat_template(&self) -> anyhow::Result<(ChatTemplate, Option<String>)> {
        let own = self
            .gguf
            .get_str("tokenizer.chat_template")
            .context("reading tokenizer.chat_template")?;
        let (source, note) = match own {
            Some(s) => (s.to_string(), None),
            None => {
                let has_token = |t: &str| self.control_token_texts().iter().any(|c| c == t);
                let choice = pick_builtin(self.gguf.architecture(), &has_token);
                let note = format!(
                    "the model has no chat template; using the built-in {:?} template ({})",
                    choice.name, choice.reason
                );
                (choice.source.to_string(), Some(note))
            }
        };
        Ok((self.compile_template(&source)?, note))
    }

    /// The built-in template called `name` (`chatml`, `llama3`, `gemma`), for this model's
    /// BOS/EOS and control tokens.
    pub fn builtin_template(&self, name: &str) -> anyhow::Result<ChatTemplate> {
        let Some(source) = builtin(name) else {
            anyhow::bail!(
                "no built-in chat template is called {name:?} (there are: {})",
                BUILTIN_NAMES.join(", ")
            );
        };
        self.compile_template(source)
    }

    /// The chat template in the file at `path` (`--chat-template-file`), for this model's
    /// BOS/EOS and control tokens.
    pub fn template_from_file(&self, path: &Path) -> anyhow::Result<ChatTemplate> {
        let source = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the chat template {}", path.display()))?;
        self.compile_template(&source)
            .with_context(|| path.display().to_string())
    }

    fn compile_template(&self, source: &str) -> anyhow::Result<ChatTemplate> {
        let bos = self.token_text(self.tokenizer.bos_id());
        let eos = self.token_text(self.tokenizer.eos_id());
        Ok(ChatTemplate::new(source, bos.as_deref(), eos.as_deref())
            .context("cannot compile the chat template")?
            .with_control_tokens(self.control_token_texts()))
    }

    /// Texts of control and user-defined tokens (the template's markup vocabulary).
    pub fn control_token_texts(&self) -> Vec<String> {
        (0..self.tokenizer.vocab_size() as u32)
            .filter(|&id| {
                matches!(
                    self.tokenizer.token_type(id),
                    Some(TokenType::Control | TokenType::UserDefined)
                )
            })
            .filter_map(|id| self.token_text(Some(id)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_needs_the_file_plus_a_quarter() {
        assert!(copy_fits(800, Some(1000)));
        assert!(!copy_fits(801, Some(1000)));
        assert!(copy_fits(u64::MAX, None));
        assert!(!copy_fits(u64::MAX, Some(u64::MAX - 1)));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_reports_available_memory() {
        assert!(available_memory().is_some_and(|b| b > 0));
    }
}
