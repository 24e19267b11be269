//! `gguf-split` models: one model in several GGUF files `NAME-00001-of-0000N.gguf` …
//! `NAME-0000N-of-0000N.gguf`, as llama.cpp's `llama-gguf-split` and gguf-py's writer
//! make them. Every shard is a complete GGUF file with `split.no` (u16, from 0),
//! `split.count` (u16) and `split.tensors.count` (i32, tensors in all shards); the first
//! holds the model's metadata, each holds some of the tensors.
//!
//! [`GgufFile::open_split`] opens the first shard, finds the others by name, checks that
//! they belong together (count, numbering, total tensors, no name twice) and returns one
//! [`GgufFile`]: the first shard's metadata and every shard's tensors, whose data stays in
//! each shard's own mapping or copy.

use std::path::{Path, PathBuf};

use crate::error::GgufError;
use crate::file::GgufFile;

/// The paths of every shard of the split model whose shard `path` is, in order, from its
/// name (`NAME-0000k-of-0000N.gguf`); `None` if the name does not follow that pattern.
pub fn shard_paths(path: &Path) -> Option<Vec<PathBuf>> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".gguf")?;
    let (rest, count) = stem.rsplit_once("-of-")?;
    let (prefix, no) = rest.rsplit_once('-')?;
    let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(count) || !digits(no) {
        return None;
    }
    let n: usize = count.parse().ok()?;
    if n == 0 {
        return None;
    }
    Some(
        (1..=n)
            .map(|k| path.with_file_name(format!("{prefix}-{k:05}-of-{n:05}.gguf")))
            .collect(),
    )
}

/// `split.no`, `split.count`, `split.tensors.count` of one file (`None`: not a shard).
fn split_keys(file: &GgufFile) -> Result<Option<(u64, u64, u64)>, GgufError> {
    let Some(count) = file.get_u64("split.count")? else {
        return Ok(None);
    };
    let no = file.get_u64("split.no")?.unwrap_or(0);
    let tensors = file
        .get_u64("split.tensors.count")?
        .unwrap_or(file.tensors().len() as u64);
    Ok(Some((no, count, tensors)))
}

impl GgufFile {
    /// Opens the GGUF file at `path` (mapped, or copied when `resident`: see
    /// [`GgufFile::open_resident`]); when it is the first shard of a `gguf-split` model,
    /// every shard, as one file. A missing shard, a shard of another split, a later shard
    /// given first, or tensor counts that do not add up are [`GgufError::Split`] naming the
    /// file.
    pub fn open_split(path: impl AsRef<Path>, resident: bool) -> Result<GgufFile, GgufError> {
        let path = path.as_ref();
        let mut first = GgufFile::open_one(path, resident)?;
        let Some((no, count, total)) = split_keys(&first)? else {
            return Ok(first);
        };
        let bad = |path: &Path, reason: String| GgufError::Split {
            path: path.to_path_buf(),
            reason,
        };
        if count <= 1 {
            return Ok(first);
        }
        let Some(paths) = shard_paths(path) else {
            return Err(bad(
                path,
                format!("split.count is {count}, but the file name does not follow NAME-00001-of-{count:05}.gguf, so the other shards cannot be found"),
            ));
        };
        if no != 0 {
            return Err(bad(
                path,
                format!(
                    "this is shard {} of {count}; load the first one, {}",
                    no + 1,
                    paths[0].display()
                ),
            ));
        }
        if paths.len() as u64 != count {
            return Err(bad(
                path,
                format!(
                    "split.count is {count}, but the file name says {} shards",
                    paths.len()
                ),
            ));
        }
        let mut shards = Vec::with_capacity(paths.len() - 1);
        for (k, p) in paths.iter().enumerate().skip(1) {
            if !p.exists() {
                return Err(bad(
                    path,
                    format!("shard {} of {count} is missing: {}", k + 1, p.display()),
                ));
            }
            let shard = GgufFile::open_one(p, resident)?;
            match split_keys(&shard)? {
                Some((n, c, t)) if n == k as u64 && c == count && t == total => {}
                Some((n, c, t)) => {
                    return Err(bad(
                        p,
                        format!(
                            "it says it is shard {} of {c} with {t} tensors in all, but shard {} of {count} with {total} was expected: the shards come from different splits",
                            n + 1,
                            k + 1
                        ),
                    ))
                }
                None => {
                    return Err(bad(
                        p,
                        format!("it has no split.count, so it is not shard {} of {count}", k + 1),
                    ))
                }
            }
            shards.push(shard);
        }
        first.absorb(shards)?;
        if first.tensors().len() as u64 != total {
            return Err(bad(
                path,
                format!(
                    "the shards hold {} tensors, but split.tensors.count is {total}",
                    first.tensors().len()
                ),
            ));
        }
        Ok(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names_follow_llama_cpp() {
        let p = shard_paths(Path::new("/m/Qwen-7B-Q4_K_M-00002-of-00003.gguf")).unwrap();
        assert_eq!(
            p,
            [
                PathBuf::from("/m/Qwen-7B-Q4_K_M-00001-of-00003.gguf"),
                PathBuf::from("/m/Qwen-7B-Q4_K_M-00002-of-00003.gguf"),
                PathBuf::from("/m/Qwen-7B-Q4_K_M-00003-of-00003.gguf"),
            ]
        );
        assert_eq!(shard_paths(Path::new("model.gguf")), None);
        assert_eq!(shard_paths(Path::new("m-1-of-3.gguf")), None);
        assert_eq!(shard_paths(Path::new("m-00001-of-00000.gguf")), None);
    }
}
