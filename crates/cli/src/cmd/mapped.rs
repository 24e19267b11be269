//! Model files that are mapped rather than copied (`--mmap`, or a copy that would not fit in
//! memory) must not change while they are in use: the mapping shows the file's current
//! bytes. This module turns such a change into a clear error instead of silent garbage or
//! a bare "Bus error": [`FileWatch`] notices a file rewritten or truncated in place (its
//! size or modification time changes; `serve` checks every 200 ms and exits 1), and
//! [`report_sigbus`] makes the fault that reading a truncated mapping raises print what
//! happened and exit 1. A file replaced by renaming a new one over it is not a change: the
//! mapping keeps the old file, which stays intact until it is unmapped.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The identity and state of a mapped file when it was loaded.
pub struct FileWatch {
    path: PathBuf,
    #[cfg(unix)]
    inode: (u64, u64),
    len: u64,
    modified: Option<SystemTime>,
}

impl FileWatch {
    /// Records `path` as it is now (call right after mapping it).
    pub fn new(path: &Path) -> std::io::Result<FileWatch> {
        let m = std::fs::metadata(path)?;
        Ok(FileWatch {
            path: path.to_owned(),
            #[cfg(unix)]
            inode: inode(&m),
            len: m.len(),
            modified: m.modified().ok(),
        })
    }

    /// Why the mapped file can no longer be trusted, or `None`: unchanged, or replaced by
    /// another file (renamed over it, or deleted: the mapping still holds the original).
    pub fn changed(&self) -> Option<String> {
        let m = std::fs::metadata(&self.path).ok()?;
        #[cfg(unix)]
        if inode(&m) != self.inode {
            return None;
        }
        if m.len() != self.len {
            return Some(format!(
                "the model file {} changed size while mapped ({} -> {} bytes)",
                self.path.display(),
                self.len,
                m.len()
            ));
        }
        if m.modified().ok() != self.modified {
            return Some(format!(
                "the model file {} was rewritten in place while mapped",
                self.path.display()
            ));
        }
        None
    }
}

#[cfg(unix)]
fn inode(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

/// What a SIGBUS means while a model is mapped, printed by the handler.
const SIGBUS_MESSAGE: &[u8] = b"error: a memory-mapped model file was truncated or became \
unreadable while in use (SIGBUS); with --mmap, replace a model file by renaming a new file \
over it, never by writing it in place\n";

/// Installs a SIGBUS handler that prints [`SIGBUS_MESSAGE`] and exits with status 1 (a
/// truncated mapping faults on the next read of its lost pages). No-op off Unix.
pub fn report_sigbus() {
    #[cfg(unix)]
    {
        extern "C" fn on_sigbus(_: libc::c_int) {
            // SAFETY: write(2) and _exit(2) are async-signal-safe; the buffer is a static
            // byte string valid for its whole length.
            unsafe {
                libc::write(2, SIGBUS_MESSAGE.as_ptr().cast(), SIGBUS_MESSAGE.len());
                libc::_exit(1);
            }
        }
        // SAFETY: `action` is zero-initialised (a valid `sigaction`: empty mask, no flags)
        // before its handler is set to a function of the signature `sa_handler` expects;
        // sigaction(2) copies it, and a null old-action pointer is allowed.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
        }
    }
}

/// The watches of every mapped model file `serve` has loaded, at start or on demand (a
/// model of the models file loads on its first request, on the registry's thread).
pub fn watches() -> &'static std::sync::Mutex<Vec<FileWatch>> {
    static WATCHES: std::sync::OnceLock<std::sync::Mutex<Vec<FileWatch>>> =
        std::sync::OnceLock::new();
    WATCHES.get_or_init(|| std::sync::Mutex::new(Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_place_changes_are_seen_and_renames_are_not() {
        let dir = std::env::temp_dir().join(format!("kaiyuan-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.gguf");
        std::fs::write(&path, b"0123456789").unwrap();
        let watch = FileWatch::new(&path).unwrap();
        assert_eq!(watch.changed(), None);

        // Replaced by rename: the mapping keeps the old file.
        let new = dir.join("new.gguf");
        std::fs::write(&new, b"abc").unwrap();
        std::fs::rename(&new, &path).unwrap();
        assert_eq!(watch.changed(), None);

        // Truncated in place.
        let watch = FileWatch::new(&path).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(1)
            .unwrap();
        assert!(watch.changed().unwrap().contains("3 -> 1 bytes"));

        // Rewritten in place, same size (a later modification time).
        let watch = FileWatch::new(&path).unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_modified(SystemTime::now() + std::time::Duration::from_secs(5))
            .unwrap();
        assert!(watch.changed().unwrap().contains("rewritten in place"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
