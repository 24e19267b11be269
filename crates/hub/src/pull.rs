//! `pull`: a reference → the repository's file list → the chosen file(s) → blobs (each
//! downloaded under an exclusive lock on `locks/sha256-<hex>.lock`, so concurrent pulls of the
//! same file wait for one another instead of writing the same `.part`) → the GGUF header read →
//! the manifest written. Parts of a split whose first part is not a complete GGUF file (a byte
//! split: the parts concatenated are the model) are joined into one blob, which is what the
//! engine loads; `gguf-split` shards are kept as they are and recorded as such.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::client::is_sha256;
use crate::download::hex;
use crate::select::select_files;
use crate::store::unique_tmp;
use crate::{
    HubClient, HubError, Manifest, ManifestFile, ModelInfo, ModelRef, Progress, RepoInfo, Store,
};

/// How to pull.
#[derive(Clone, Copy, Debug, Default)]
pub struct PullOptions {
    pub progress: Progress,
}

/// Pulls `r` into `store` (files already there are not fetched again) and returns its manifest.
pub async fn pull(
    client: &HubClient,
    store: &Store,
    r: &ModelRef,
    options: PullOptions,
) -> Result<Manifest, HubError> {
    let info = client.repo_info(&r.repo).await?;
    let names: Vec<String> = info.files.iter().map(|f| f.name.clone()).collect();
    let chosen = select_files(r, &names)?;
    let revision = info.commit.clone().unwrap_or_else(|| "main".to_string());
    store.ensure_dirs()?;
    let mut files = Vec::new();
    for name in &chosen {
        let (sha256, size) = expected(client, &info, &revision, name).await?;
        let blob = store.blob_path(&sha256);
        let _lock = lock(&blob).await?;
        let complete = std::fs::metadata(&blob).is_ok_and(|m| m.len() == size);
        if complete {
            if options.progress != Progress::Quiet {
                eprintln!("{name}: already in the store");
            }
        } else {
            client
                .download(
                    &r.repo,
                    &revision,
                    name,
                    (&sha256, size),
                    &blob,
                    options.progress,
                )
                .await?;
        }
        files.push(ManifestFile {
            name: name.clone(),
            sha256,
            size,
        });
    }
    let (model, info) = match model_file(store, &files) {
        Ok(x) => x,
        Err(e) => {
            // Nothing unusable stays in the store.
            let shas: Vec<&str> = files.iter().map(|f| f.sha256.as_str()).collect();
            let _ = store.drop_unreferenced(&shas);
            return Err(e);
        }
    };
    let manifest = Manifest {
        reference: r.to_string(),
        repo: r.repo.clone(),
        revision,
        files,
        model,
        info,
        pulled_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    store.write_manifest(r, &manifest)?;
    Ok(manifest)
}

/// [`pull`] on a runtime of its own, for callers without one.
pub fn pull_blocking(
    client: &HubClient,
    store: &Store,
    r: &ModelRef,
    options: PullOptions,
) -> Result<Manifest, HubError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| HubError::io("tokio runtime", e))?;
    rt.block_on(pull(client, store, r, options))
}

/// The sha256 and size of `name`: from the file list, else from a HEAD on the file.
async fn expected(
    client: &HubClient,
    info: &RepoInfo,
    revision: &str,
    name: &str,
) -> Result<(String, u64), HubError> {
    let listed = info.files.iter().find(|f| f.name == name);
    let (mut sha, mut size) = listed.map_or((None, None), |f| (f.sha256.clone(), f.size));
    if sha.is_none() || size.is_none() {
        let (s, n) = client.file_meta(&info.repo, revision, name).await?;
        sha = sha.or(s);
        size = size.or(n);
    }
    match (sha, size) {
        (Some(sha), Some(size)) if is_sha256(&sha) => Ok((sha.to_ascii_lowercase(), size)),
        _ => Err(HubError::NoChecksum {
            file: name.to_string(),
        }),
    }
}

/// An exclusive lock on `locks/<blob name>.lock`, waited for without blocking the runtime.
async fn lock(blob: &Path) -> Result<std::fs::File, HubError> {
    let dir = blob
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."))
        .join("locks");
    std::fs::create_dir_all(&dir).map_err(|e| HubError::io(&dir, e))?;
    let mut name = blob.file_name().unwrap_or_default().to_owned();
    name.push(".lock");
    let path = dir.join(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| HubError::io(&path, e))?;
    let mut said = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {
                if !said {
                    eprintln!("waiting for another pull of {}", blob.display());
                    said = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(HubError::io(&path, e)),
        }
    }
}

/// The blob to load and its header: the single file; a `gguf-split` model's first shard; or
/// a byte split's parts joined into a new blob.
fn model_file(
    store: &Store,
    files: &[ManifestFile],
) -> Result<(ManifestFile, ModelInfo), HubError> {
    let first = &files[0];
    let first_path = store.blob_path(&first.sha256);
    let whole = ModelInfo::read(&first_path);
    if files.len() == 1 {
        return Ok((first.clone(), whole?));
    }
    if let Ok(info) = whole {
        if info.split_count.is_some() {
            return Ok((first.clone(), info));
        }
    }
    let joined = join(store, files)?;
    let info = ModelInfo::read(&store.blob_path(&joined.sha256))?;
    Ok((joined, info))
}

/// Concatenates the parts' blobs into a blob of their own (hashed while written).
fn join(store: &Store, files: &[ManifestFile]) -> Result<ManifestFile, HubError> {
    use std::io::{Read, Write};
    let tmp = unique_tmp(&store.blobs_dir().join("joined"));
    let result = (|| -> Result<ManifestFile, HubError> {
        let mut out = std::fs::File::create(&tmp).map_err(|e| HubError::io(&tmp, e))?;
        let mut h = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        for f in files {
            let p = store.blob_path(&f.sha256);
            let mut input = std::fs::File::open(&p).map_err(|e| HubError::io(&p, e))?;
            loop {
                let n = input.read(&mut buf).map_err(|e| HubError::io(&p, e))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                out.write_all(&buf[..n])
                    .map_err(|e| HubError::io(&tmp, e))?;
                size += n as u64;
            }
        }
        out.sync_all().map_err(|e| HubError::io(&tmp, e))?;
        let sha256 = hex(&h.finalize());
        let target = store.blob_path(&sha256);
        std::fs::rename(&tmp, &target).map_err(|e| HubError::io(&target, e))?;
        Ok(ManifestFile {
            name: format!("joined:{}", files[0].name),
            sha256,
            size,
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The model file for `r`: from the store, else pulled with a client made by `config` — unless
/// `offline`, which makes an absent reference a [`HubError::Offline`] (nothing is contacted).
pub fn resolve_blocking(
    store: &Store,
    r: &ModelRef,
    offline: bool,
    config: impl FnOnce() -> crate::HubConfig,
    options: PullOptions,
) -> Result<PathBuf, HubError> {
    if let Some(m) = store.manifest(r)? {
        return store.model_path_of(&m);
    }
    if offline {
        return Err(HubError::Offline {
            reference: r.to_string(),
            home: store.root().to_path_buf(),
        });
    }
    let client = HubClient::new(config())?;
    let manifest = pull_blocking(&client, store, r, options)?;
    store.model_path_of(&manifest)
}
