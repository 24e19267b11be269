//! Downloading one file into the store: into `TARGET.part` beside the target, resumed with
//! `Range` (only a 206 whose `Content-Range` starts where the part ends is resumed; a 200
//! starts over), tried three times with doubling backoff (the part stays for the next pull),
//! then checked for size and sha256 — a mismatch deletes it — and renamed into place.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use reqwest::header::{HeaderMap, CONTENT_RANGE};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::client::header_str;
use crate::progress::{FileProgress, Progress};
use crate::{HubClient, HubError};

impl HubClient {
    /// Downloads `file` of `repo` at `revision` to `target` (size and sha256 known), through
    /// `target` + `.part`: resumed if the part exists, three tries, verified, renamed into place.
    pub async fn download(
        &self,
        repo: &str,
        revision: &str,
        file: &str,
        expect: (&str, u64),
        target: &Path,
        progress: Progress,
    ) -> Result<(), HubError> {
        let (sha256, size) = expect;
        let part = part_path(target);
        let have = part_len(&part).await?;
        let mut bar = FileProgress::start(progress, file, size, have.min(size));
        let mut last: Option<HubError> = None;
        for attempt in 1..=self.config.tries {
            if attempt > 1 {
                tokio::time::sleep(self.config.backoff * 2u32.pow(attempt - 2)).await;
            }
            match self
                .fetch_into(repo, revision, file, size, &part, &mut bar)
                .await
            {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(e) if e.is_transient() => {
                    let at = part_len(&part).await.unwrap_or(0);
                    if attempt < self.config.tries {
                        bar.retrying(at, &e.to_string());
                    }
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(e) = last {
            bar.finish("failed; run the pull again to resume");
            return Err(HubError::GaveUp {
                what: format!("downloading {file} from {repo}"),
                tries: self.config.tries,
                last: e.to_string(),
            });
        }
        bar.finish("verifying sha256");
        verify(&part, file, sha256, size).await?;
        tokio::fs::rename(&part, target)
            .await
            .map_err(|e| HubError::io(target, e))
    }

    /// One try: append to `part` from its current length until it holds `size` bytes.
    async fn fetch_into(
        &self,
        repo: &str,
        revision: &str,
        file: &str,
        size: u64,
        part: &Path,
        bar: &mut FileProgress,
    ) -> Result<(), HubError> {
        let mut have = part_len(part).await?;
        if have > size {
            truncate(part).await?;
            have = 0;
        }
        if have == size {
            return Ok(());
        }
        let (resp, _) = self.fetch(repo, revision, file, have).await?;
        let url = resp.url().to_string();
        match resp.status() {
            StatusCode::PARTIAL_CONTENT => {
                let start = content_range_start(resp.headers());
                if start != Some(have) {
                    // Not the bytes we asked for: start over rather than guess.
                    truncate(part).await?;
                    return Err(HubError::Http {
                        status: 206,
                        url,
                        detail: format!(
                            " (Content-Range starts at {start:?}, not {have}; starting over)"
                        ),
                    });
                }
            }
            StatusCode::OK => {
                if have > 0 {
                    // The server ignored Range: only a 206 may resume.
                    truncate(part).await?;
                    bar.retrying(0, "the server does not resume (no 206); starting over");
                    have = 0;
                }
            }
            status => {
                return Err(HubError::Http {
                    status: status.as_u16(),
                    url,
                    detail: String::new(),
                })
            }
        }
        let mut out = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(part)
            .await
            .map_err(|e| HubError::io(part, e))?;
        let mut stream = resp.bytes_stream();
        let mut result = Ok(());
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => {
                    if have + bytes.len() as u64 > size {
                        result = Err(HubError::Protocol {
                            url: url.clone(),
                            reason: format!("more than the expected {size} bytes"),
                        });
                        break;
                    }
                    if let Err(e) = out.write_all(&bytes).await {
                        result = Err(HubError::io(part, e));
                        break;
                    }
                    have += bytes.len() as u64;
                    bar.inc(bytes.len() as u64);
                }
                Err(e) => {
                    result = Err(HubError::Network {
                        url: url.clone(),
                        source: e,
                    });
                    break;
                }
            }
        }
        out.flush().await.map_err(|e| HubError::io(part, e))?;
        result?;
        if have < size {
            return Err(HubError::Http {
                status: 200,
                url,
                detail: format!(" (the connection closed after {have} of {size} bytes)"),
            });
        }
        Ok(())
    }
}

/// `START` of `Content-Range: bytes START-END/TOTAL`.
fn content_range_start(h: &HeaderMap) -> Option<u64> {
    let v = header_str(h, CONTENT_RANGE.as_str())?;
    v.strip_prefix("bytes ")?
        .split('-')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// `target` + `.part`, beside it.
pub(crate) fn part_path(target: &Path) -> PathBuf {
    let mut s = target.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

async fn part_len(part: &Path) -> Result<u64, HubError> {
    match tokio::fs::metadata(part).await {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(HubError::io(part, e)),
    }
}

async fn truncate(part: &Path) -> Result<(), HubError> {
    match tokio::fs::remove_file(part).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(HubError::io(part, e)),
    }
}

/// Checks `part`'s size and sha256; on a mismatch it is deleted.
async fn verify(part: &Path, file: &str, sha256: &str, size: u64) -> Result<(), HubError> {
    let len = part_len(part).await?;
    if len != size {
        truncate(part).await?;
        return Err(HubError::SizeMismatch {
            file: file.to_string(),
            expected: size,
            actual: len,
        });
    }
    let actual = sha256_of(part).await?;
    if !actual.eq_ignore_ascii_case(sha256) {
        truncate(part).await?;
        return Err(HubError::ChecksumMismatch {
            file: file.to_string(),
            expected: sha256.to_string(),
            actual,
        });
    }
    Ok(())
}

/// The sha256 of a file, as lower-case hex (read on the blocking pool).
pub(crate) async fn sha256_of(path: &Path) -> Result<String, HubError> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<String, HubError> {
        use std::io::Read;
        let mut f = std::fs::File::open(&p).map_err(|e| HubError::io(&p, e))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).map_err(|e| HubError::io(&p, e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(hex(&h.finalize()))
    })
    .await
    .map_err(|e| HubError::io(path, std::io::Error::other(e)))?
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_start_is_read() {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_RANGE, "bytes 100-199/200".parse().unwrap());
        assert_eq!(content_range_start(&h), Some(100));
    }
}
