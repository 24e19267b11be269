//! The local model store: `$KAIYUAN_HOME` (default `~/.cache/kaiyuan`) holds
//! `blobs/sha256-<hex>` (files by content hash, shared between references) and
//! `manifests/hf.co/OWNER/REPO/<tag-…|file-…>.json` (one per reference), and for `gguf-split`
//! models `split/<first shard's hex>/` with links named as the repository names the shards
//! (the loader finds shards by name). Manifests and blobs are written to a temporary name and
//! renamed into place, so a reader never sees half of one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{HubError, ModelInfo, ModelRef};

/// One file a manifest names: a repository file, or the model file (joined parts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// The path in the repository (or `joined:` + the first part's path).
    pub name: String,
    pub sha256: String,
    pub size: u64,
}

/// What the store knows about one pulled reference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The canonical reference (`hf.co/OWNER/REPO:TAG` or `hf.co/OWNER/REPO/FILE`).
    #[serde(rename = "ref")]
    pub reference: String,
    pub repo: String,
    /// The commit the files came from.
    pub revision: String,
    /// The repository files, in order (the parts of a split file, or one file).
    pub files: Vec<ManifestFile>,
    /// The blob to load: the file itself, or the byte-split parts joined (see `pull`).
    pub model: ManifestFile,
    #[serde(flatten)]
    pub info: ModelInfo,
    /// Seconds since the Unix epoch.
    pub pulled_at: u64,
}

impl Manifest {
    /// The bytes on disk this reference needs.
    pub fn size(&self) -> u64 {
        self.model.size
    }
}

/// A store directory.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// The store at `root` (created when first written to).
    pub fn at(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    /// `$KAIYUAN_HOME`, else `$XDG_CACHE_HOME/kaiyuan`, else `~/.cache/kaiyuan`.
    pub fn from_env() -> Result<Store, HubError> {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        if let Some(home) = env("KAIYUAN_HOME") {
            return Ok(Store::at(home));
        }
        if let Some(cache) = env("XDG_CACHE_HOME") {
            return Ok(Store::at(PathBuf::from(cache).join("kaiyuan")));
        }
        match env("HOME").or_else(|| env("USERPROFILE")) {
            Some(h) => Ok(Store::at(PathBuf::from(h).join(".cache").join("kaiyuan"))),
            None => Err(HubError::io(
                "$KAIYUAN_HOME",
                std::io::Error::other("neither KAIYUAN_HOME nor HOME is set"),
            )),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }

    fn manifests_dir(&self) -> PathBuf {
        self.root.join("manifests")
    }

    /// Where the blob with this sha256 lives (whether or not it exists).
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.blobs_dir()
            .join(format!("sha256-{}", sha256.to_ascii_lowercase()))
    }

    fn manifest_path(&self, r: &ModelRef) -> PathBuf {
        self.manifests_dir().join(r.manifest_rel_path())
    }

    /// The manifest of `r`, if it was pulled.
    pub fn manifest(&self, r: &ModelRef) -> Result<Option<Manifest>, HubError> {
        let path = self.manifest_path(r);
        match std::fs::read(&path) {
            Ok(bytes) => read_manifest(&path, &bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(HubError::io(path, e)),
        }
    }

    /// The model file to load for `r`: its blob, checked to exist with the recorded size.
    pub fn model_path(&self, r: &ModelRef) -> Result<Option<PathBuf>, HubError> {
        let Some(m) = self.manifest(r)? else {
            return Ok(None);
        };
        self.model_path_of(&m).map(Some)
    }

    /// The model file of a manifest; an error if its blob is missing or a `gguf-split` shard.
    pub fn model_path_of(&self, m: &Manifest) -> Result<PathBuf, HubError> {
        let path = self.blob_path(&m.model.sha256);
        let len = std::fs::metadata(&path).map(|md| md.len());
        if len.as_ref().ok() != Some(&m.model.size) {
            return Err(HubError::BadManifest {
                path: path.clone(),
                reason: format!(
                    "the blob of {} is missing or has the wrong size: pull it again",
                    m.reference
                ),
            });
        }
        if m.info.split_count.is_some() {
            return self.shard_links(m);
        }
        Ok(path)
    }

    /// A `gguf-split` model's shards under their repository names, so that the loader finds
    /// the other shards beside the first (`NAME-0000k-of-0000n.gguf`): links to the blobs in
    /// `split/<first shard's sha256>/`, made when first needed; the first link's path.
    fn shard_links(&self, m: &Manifest) -> Result<PathBuf, HubError> {
        let dir = self.root.join("split").join(&m.files[0].sha256);
        std::fs::create_dir_all(&dir).map_err(|e| HubError::io(&dir, e))?;
        let mut first = None;
        for f in &m.files {
            let blob = self.blob_path(&f.sha256);
            let len = std::fs::metadata(&blob).map(|md| md.len());
            if len.as_ref().ok() != Some(&f.size) {
                return Err(HubError::BadManifest {
                    path: blob,
                    reason: format!(
                        "shard {} of {} is missing or has the wrong size: pull it again",
                        f.name, m.reference
                    ),
                });
            }
            let name = Path::new(&f.name)
                .file_name()
                .ok_or_else(|| HubError::BadManifest {
                    path: dir.clone(),
                    reason: format!("the shard name {:?} has no file name", f.name),
                })?;
            let link = dir.join(name);
            if std::fs::read_link(&link).ok().as_deref() != Some(blob.as_path()) {
                let _ = std::fs::remove_file(&link);
                link_file(&blob, &link).map_err(|e| HubError::io(&link, e))?;
            }
            first.get_or_insert(link);
        }
        first.ok_or_else(|| HubError::BadManifest {
            path: dir,
            reason: format!("{} lists no files", m.reference),
        })
    }

    /// Writes `m` as the manifest of `r` (atomically).
    pub fn write_manifest(&self, r: &ModelRef, m: &Manifest) -> Result<(), HubError> {
        let path = self.manifest_path(r);
        let json = serde_json::to_vec_pretty(m).map_err(|e| HubError::BadManifest {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        write_atomically(&path, &json)
    }

    /// Every manifest in the store, sorted by reference. Damaged ones are skipped.
    pub fn list(&self) -> Result<Vec<Manifest>, HubError> {
        let mut out = Vec::new();
        let mut dirs = vec![self.manifests_dir()];
        while let Some(dir) = dirs.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(HubError::io(dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| HubError::io(&dir, e))?;
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "json") {
                    if let Ok(bytes) = std::fs::read(&path) {
                        if let Ok(m) = read_manifest(&path, &bytes) {
                            out.push(m);
                        }
                    }
                }
            }
        }
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(out)
    }

    /// Removes the manifest of `r` and every blob no other manifest needs; returns the bytes
    /// freed. An error when `r` is not in the store.
    pub fn remove(&self, r: &ModelRef) -> Result<u64, HubError> {
        let path = self.manifest_path(r);
        if !path.exists() {
            return Err(HubError::NotInStore {
                reference: r.to_string(),
                home: self.root.clone(),
            });
        }
        std::fs::remove_file(&path).map_err(|e| HubError::io(&path, e))?;
        self.collect_garbage()
    }

    /// Blob names (`sha256-HEX`) some manifest names.
    fn referenced(&self) -> Result<Vec<String>, HubError> {
        Ok(self
            .list()?
            .iter()
            .flat_map(|m| m.files.iter().chain([&m.model]))
            .map(|f| format!("sha256-{}", f.sha256))
            .collect())
    }

    /// Deletes these blobs unless a manifest names them (what a failed pull leaves; other
    /// pulls' new blobs are not touched).
    pub(crate) fn drop_unreferenced(&self, sha256s: &[&str]) -> Result<(), HubError> {
        let keep = self.referenced()?;
        for sha in sha256s {
            let path = self.blob_path(sha);
            if !keep.iter().any(|k| k[7..] == **sha) {
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(HubError::io(path, e))
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Deletes blobs (not partial downloads) that no manifest names, and the shard links of
    /// split models no longer in the store; returns the bytes freed.
    pub fn collect_garbage(&self) -> Result<u64, HubError> {
        let keep = self.referenced()?;
        if let Ok(links) = std::fs::read_dir(self.root.join("split")) {
            for entry in links.flatten() {
                let name = format!("sha256-{}", entry.file_name().to_string_lossy());
                if !keep.contains(&name) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = self.blobs_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(HubError::io(dir, e)),
        };
        let mut freed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let complete_blob = name.starts_with("sha256-") && !name.contains('.');
            if complete_blob && !keep.contains(&name) {
                let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
                if std::fs::remove_file(entry.path()).is_ok() {
                    freed += len;
                }
            }
        }
        Ok(freed)
    }

    /// Creates the blob directory.
    pub(crate) fn ensure_dirs(&self) -> Result<(), HubError> {
        let dir = self.blobs_dir();
        std::fs::create_dir_all(&dir).map_err(|e| HubError::io(dir, e))
    }
}

fn read_manifest(path: &Path, bytes: &[u8]) -> Result<Manifest, HubError> {
    serde_json::from_slice(bytes).map_err(|e| HubError::BadManifest {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Writes `bytes` to a unique temporary file beside `path`, then renames it over `path`.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), HubError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| HubError::io(dir, e))?;
    let tmp = unique_tmp(path);
    std::fs::write(&tmp, bytes).map_err(|e| HubError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        HubError::io(path, e)
    })
}

/// `path` + `.tmp-<pid>-<counter>`: unique per process and call.
pub(crate) fn unique_tmp(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".tmp-{}-{n}", std::process::id()));
    PathBuf::from(s)
}

/// A link at `link` to `blob`: a symbolic link where the platform has them, else a hard link
/// (blobs and links live in one store, so on one file system).
fn link_file(blob: &Path, link: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(blob, link)
    }
    #[cfg(not(unix))]
    {
        std::fs::hard_link(blob, link)
    }
}
