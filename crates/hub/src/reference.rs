//! Model references: `hf.co/OWNER/REPO[:QUANT]`, `OWNER/REPO[:QUANT]` and
//! `OWNER/REPO/PATH/FILE.gguf` (the forms of llama.cpp's `-hf` and Ollama's `hf.co/…`), parsed,
//! validated and written back in one canonical form, which names the manifest in the store.

use std::fmt;

use crate::HubError;

/// The quant tag used when a reference names none (llama.cpp's and the Hub's default).
pub const DEFAULT_QUANT: &str = "Q4_K_M";

/// What a reference asks for inside its repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefTarget {
    /// A quant tag (upper-cased), or `None` for the default choice (`:latest`).
    Quant(Option<String>),
    /// One file by its path in the repository (a split file's first part brings the others).
    File(String),
}

/// A parsed model reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelRef {
    /// `OWNER/REPO`.
    pub repo: String,
    pub target: RefTarget,
}

impl ModelRef {
    /// Parses a reference; anything malformed is a [`HubError::BadReference`] saying why.
    pub fn parse(text: &str) -> Result<ModelRef, HubError> {
        let bad = |reason: &str| HubError::BadReference {
            reference: text.to_string(),
            reason: reason.to_string(),
        };
        let t = text.trim();
        let t = t
            .strip_prefix("https://")
            .or_else(|| t.strip_prefix("http://"))
            .unwrap_or(t);
        let t = ["hf.co/", "huggingface.co/"]
            .iter()
            .find_map(|p| t.strip_prefix(p))
            .unwrap_or(t);
        if t.is_empty() {
            return Err(bad("expected OWNER/REPO[:QUANT] or OWNER/REPO/FILE.gguf"));
        }
        let parts: Vec<&str> = t.split('/').collect();
        match parts.as_slice() {
            [_] => Err(bad("expected OWNER/REPO[:QUANT] or OWNER/REPO/FILE.gguf")),
            [owner, repo_tag] => {
                let (repo, tag) = match repo_tag.split_once(':') {
                    Some((r, tag)) => (r, Some(tag)),
                    None => (*repo_tag, None),
                };
                check_name(owner, "owner").map_err(|r| bad(&r))?;
                check_name(repo, "repository").map_err(|r| bad(&r))?;
                let quant = match tag {
                    None => None,
                    Some(tag) if tag.eq_ignore_ascii_case("latest") => None,
                    Some(tag) => {
                        check_name(tag, "quant tag").map_err(|r| bad(&r))?;
                        Some(tag.to_ascii_uppercase())
                    }
                };
                Ok(ModelRef {
                    repo: format!("{owner}/{repo}"),
                    target: RefTarget::Quant(quant),
                })
            }
            [owner, repo, file @ ..] => {
                check_name(owner, "owner").map_err(|r| bad(&r))?;
                check_name(repo, "repository").map_err(|r| bad(&r))?;
                for part in file {
                    if part.is_empty() || *part == "." || *part == ".." || part.contains('\\') {
                        return Err(bad("the file path has an empty, '.' or '..' component"));
                    }
                }
                let file = file.join("/");
                if !file.to_ascii_lowercase().ends_with(".gguf") {
                    return Err(bad("a file reference must name a .gguf file"));
                }
                Ok(ModelRef {
                    repo: format!("{owner}/{repo}"),
                    target: RefTarget::File(file),
                })
            }
            [] => unreachable!("split yields at least one part"),
        }
    }

    /// Whether `text` should be read as a reference rather than a local path: it starts with
    /// `hf.co/`/`huggingface.co/`, or parses and does not look like a path (no leading `/`,
    /// `.` or `~`, a bare `OWNER/REPO` not ending in `.gguf`, and a first component that is not
    /// a directory here).
    pub fn looks_like_ref(text: &str) -> bool {
        let t = text.trim();
        if t.starts_with("hf.co/") || t.starts_with("huggingface.co/") {
            return true;
        }
        if t.starts_with(['/', '.', '~']) || t.contains('\\') {
            return false;
        }
        let Ok(r) = ModelRef::parse(t) else {
            return false;
        };
        if let RefTarget::Quant(_) = r.target {
            if t.to_ascii_lowercase().ends_with(".gguf") {
                return false;
            }
        }
        let first = t.split('/').next().unwrap_or("");
        !std::path::Path::new(first).is_dir()
    }

    /// The quant tag asked for, if any.
    pub fn quant(&self) -> Option<&str> {
        match &self.target {
            RefTarget::Quant(q) => q.as_deref(),
            RefTarget::File(_) => None,
        }
    }

    /// The manifest's path under `manifests/`, one directory per owner and repository.
    pub(crate) fn manifest_rel_path(&self) -> String {
        let leaf = match &self.target {
            RefTarget::Quant(None) => "tag-latest".to_string(),
            RefTarget::Quant(Some(q)) => format!("tag-{q}"),
            RefTarget::File(f) => format!("file-{}", f.replace('/', "%2F")),
        };
        format!("hf.co/{}/{leaf}.json", self.repo)
    }
}

/// The canonical form: `hf.co/OWNER/REPO:TAG` (`:latest` when no tag) or
/// `hf.co/OWNER/REPO/FILE`.
impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            RefTarget::Quant(None) => write!(f, "hf.co/{}:latest", self.repo),
            RefTarget::Quant(Some(q)) => write!(f, "hf.co/{}:{q}", self.repo),
            RefTarget::File(file) => write!(f, "hf.co/{}/{file}", self.repo),
        }
    }
}

/// Hub names: ASCII letters, digits, `-`, `_`, `.`; not empty, not `.`/`..`, at most 96.
fn check_name(s: &str, what: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if s == "." || s == ".." || s.len() > 96 {
        return Err(format!("{s:?} is not a valid {what}"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!("the {what} {s:?} contains {c:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_parse_to_one_canonical_form() {
        let r = ModelRef::parse("hf.co/bartowski/Qwen-GGUF:q4_k_m").unwrap();
        assert_eq!(r.repo, "bartowski/Qwen-GGUF");
        assert_eq!(r.quant(), Some("Q4_K_M"));
        assert_eq!(r.to_string(), "hf.co/bartowski/Qwen-GGUF:Q4_K_M");
        let r = ModelRef::parse("bartowski/Qwen-GGUF").unwrap();
        assert_eq!(r.target, RefTarget::Quant(None));
        assert_eq!(r.to_string(), "hf.co/bartowski/Qwen-GGUF:latest");
        assert_eq!(ModelRef::parse("bartowski/Qwen-GGUF:latest").unwrap(), r);
        let r = ModelRef::parse("huggingface.co/a/b/sub/x-Q8_0.gguf").unwrap();
        assert_eq!(r.target, RefTarget::File("sub/x-Q8_0.gguf".into()));
        assert_eq!(r.to_string(), "hf.co/a/b/sub/x-Q8_0.gguf");
        assert_eq!(
            r.manifest_rel_path(),
            "hf.co/a/b/file-sub%2Fx-Q8_0.gguf.json"
        );
    }

    #[test]
    fn malformed_references_are_refused_with_a_reason() {
        for bad in [
            "",
            "hf.co/",
            "justone",
            "a/b:",
            "a/../x.gguf",
            "../b/x.gguf",
            "a/b/c.bin",
            "a/b c",
            "a//x.gguf",
            "a/b:Q4 K",
        ] {
            let e = ModelRef::parse(bad).expect_err(bad);
            assert!(matches!(e, HubError::BadReference { .. }), "{bad}: {e}");
        }
    }

    #[test]
    fn paths_are_not_references() {
        assert!(!ModelRef::looks_like_ref("./x/y.gguf"));
        assert!(!ModelRef::looks_like_ref("/tmp/x.gguf"));
        assert!(!ModelRef::looks_like_ref("model.gguf"));
        assert!(!ModelRef::looks_like_ref("dir/model.gguf"));
        assert!(ModelRef::looks_like_ref("hf.co/a/b"));
        assert!(ModelRef::looks_like_ref("no-such-owner-dir/repo:Q8_0"));
    }
}
