//! `pull` against a fake Hub (`tests/fakehub`) serving the real test models: quant tags,
//! files, split files, resume, retries, sha256, authorization, missing repositories,
//! concurrent pulls and `--offline`.

mod fakehub;

use std::path::Path;
use std::time::Duration;

use fakehub::{model_bytes, sha256_hex, FakeFile, FakeHub, Repo, GEMMA, SMOL};
use kaiyuan_hub::{
    pull, resolve_blocking, HubClient, HubConfig, HubError, ModelRef, Progress, PullOptions, Store,
};

const SMOL_REPO: &str = "bartowski/SmolLM2-135M-Instruct-GGUF";
const SMOL_FILE: &str = "SmolLM2-135M-Instruct-Q4_1.gguf";

fn config(hub: &FakeHub, token: Option<&str>) -> HubConfig {
    HubConfig {
        endpoint: hub.url.clone(),
        token: token.map(str::to_string),
        tries: 3,
        backoff: Duration::from_millis(10),
    }
}

fn client(hub: &FakeHub) -> HubClient {
    HubClient::new(config(hub, None)).unwrap()
}

const QUIET: PullOptions = PullOptions {
    progress: Progress::Quiet,
};

fn smol_repo() -> Repo {
    Repo {
        files: vec![
            FakeFile::new("README.md", bytes::Bytes::from_static(b"# SmolLM2\n")),
            FakeFile::new(SMOL_FILE, model_bytes(SMOL)),
        ],
        token: None,
    }
}

async fn hub_with_smol() -> FakeHub {
    let hub = FakeHub::start().await;
    hub.add_repo(SMOL_REPO, smol_repo());
    hub
}

fn store() -> (tempdir::Dir, Store) {
    let dir = tempdir::Dir::new();
    let store = Store::at(dir.path());
    (dir, store)
}

/// Names in a directory (empty when it does not exist).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn pulls_by_quant_tag_and_records_the_header() {
    let hub = hub_with_smol().await;
    let (_d, store) = store();
    let r = ModelRef::parse(&format!("hf.co/{SMOL_REPO}:q4_1")).unwrap();
    let m = pull(&client(&hub), &store, &r, QUIET).await.unwrap();
    let sha = sha256_hex(&model_bytes(SMOL));
    assert_eq!(m.reference, format!("hf.co/{SMOL_REPO}:Q4_1"));
    assert_eq!(m.files.len(), 1);
    assert_eq!(m.files[0].name, SMOL_FILE);
    assert_eq!(m.model.sha256, sha);
    assert_eq!(m.model.size, model_bytes(SMOL).len() as u64);
    assert_eq!(m.info.architecture.as_deref(), Some("llama"));
    assert_eq!(m.info.quantization.as_deref(), Some("Q4_1"));
    assert_eq!(m.info.context_length, Some(8192));
    assert!(m.info.parameters > 100_000_000, "{}", m.info.parameters);
    assert_eq!(m.revision.len(), 40);
    let path = store.model_path(&r).unwrap().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), model_bytes(SMOL));
    assert_eq!(
        names(&store.root().join("blobs")),
        [format!("sha256-{sha}")]
    );
    assert_eq!(store.list().unwrap(), [m]);
}

#[tokio::test]
async fn pulls_one_file_by_name_and_the_default_quant() {
    let hub = hub_with_smol().await;
    hub.add_repo(
        "ggml-org/gemma-3-270m-GGUF",
        Repo {
            files: vec![
                FakeFile::new("gemma-3-270m-Q4_K_M.gguf", model_bytes(GEMMA)),
                FakeFile::new("mmproj-gemma-3-270m-Q4_K_M.gguf", model_bytes(SMOL)),
            ],
            token: None,
        },
    );
    let (_d, store) = store();
    let by_file = ModelRef::parse(&format!("{SMOL_REPO}/{SMOL_FILE}")).unwrap();
    let m = pull(&client(&hub), &store, &by_file, QUIET).await.unwrap();
    assert_eq!(m.files[0].name, SMOL_FILE);
    let default = ModelRef::parse("ggml-org/gemma-3-270m-GGUF").unwrap();
    let m = pull(&client(&hub), &store, &default, QUIET).await.unwrap();
    assert_eq!(m.reference, "hf.co/ggml-org/gemma-3-270m-GGUF:latest");
    assert_eq!(m.files[0].name, "gemma-3-270m-Q4_K_M.gguf");
    assert_eq!(m.info.architecture.as_deref(), Some("gemma3"));
    assert_eq!(m.info.quantization.as_deref(), Some("Q4_K_M"));
    assert_eq!(store.list().unwrap().len(), 2);
}

#[tokio::test]
async fn an_unknown_quant_lists_the_available_ones() {
    let hub = hub_with_smol().await;
    let (_d, store) = store();
    let r = ModelRef::parse(&format!("{SMOL_REPO}:Q8_0")).unwrap();
    let e = pull(&client(&hub), &store, &r, QUIET).await.unwrap_err();
    assert!(matches!(e, HubError::NoSuchQuant { .. }), "{e}");
    assert!(e.to_string().contains("available quants: Q4_1"), "{e}");
    assert_eq!(hub.bytes_served(), 0);
}

#[tokio::test]
async fn split_parts_are_fetched_together_and_joined() {
    let hub = FakeHub::start().await;
    let data = model_bytes(SMOL);
    let mid = data.len() / 2 + 12345;
    hub.add_repo(
        "test/SmolLM2-split-GGUF",
        Repo {
            files: vec![
                FakeFile::new("SmolLM2-Q4_1-00002-of-00002.gguf", data.slice(mid..)),
                FakeFile::new("SmolLM2-Q4_1-00001-of-00002.gguf", data.slice(..mid)),
            ],
            token: None,
        },
    );
    let (_d, store) = store();
    let r = ModelRef::parse("test/SmolLM2-split-GGUF:Q4_1").unwrap();
    let m = pull(&client(&hub), &store, &r, QUIET).await.unwrap();
    let parts: Vec<&str> = m.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        parts,
        [
            "SmolLM2-Q4_1-00001-of-00002.gguf",
            "SmolLM2-Q4_1-00002-of-00002.gguf"
        ]
    );
    assert_eq!(m.files[0].sha256, sha256_hex(&data[..mid]));
    assert_eq!(m.model.sha256, sha256_hex(&data));
    assert_eq!(m.info.architecture.as_deref(), Some("llama"));
    let path = store.model_path(&r).unwrap().unwrap();
    assert_eq!(std::fs::read(path).unwrap(), data);
    // Both parts and the joined file are blobs; nothing else is.
    assert_eq!(names(&store.root().join("blobs")).len(), 3);
}

#[tokio::test]
async fn a_dropped_connection_resumes_without_fetching_bytes_again() {
    let hub = hub_with_smol().await;
    let (_d, store) = store();
    let size = model_bytes(SMOL).len() as u64;
    hub.drop_after(size / 2, 1);
    let r = ModelRef::parse(&format!("{SMOL_REPO}:Q4_1")).unwrap();
    pull(&client(&hub), &store, &r, QUIET).await.unwrap();
    let served = hub.served();
    assert_eq!(served.len(), 2, "{served:?}");
    assert_eq!((served[0].range_start, served[0].bytes), (0, size / 2));
    assert_eq!(served[1].range_start, size / 2, "{served:?}");
    assert_eq!(served[1].bytes, size - size / 2);
    assert_eq!(hub.bytes_served(), size);
    assert_eq!(
        std::fs::read(store.model_path(&r).unwrap().unwrap()).unwrap(),
        model_bytes(SMOL)
    );
}

#[tokio::test]
async fn a_failed_pull_leaves_a_part_that_the_next_pull_resumes() {
    let hub = hub_with_smol().await;
    let (_d, store) = store();
    let size = model_bytes(SMOL).len() as u64;
    hub.drop_after(1 << 20, 3);
    let r = ModelRef::parse(&format!("{SMOL_REPO}:Q4_1")).unwrap();
    let e = pull(&client(&hub), &store, &r, QUIET).await.unwrap_err();
    assert!(matches!(e, HubError::GaveUp { tries: 3, .. }), "{e}");
    let sha = sha256_hex(&model_bytes(SMOL));
    let part = store.root().join(format!("blobs/sha256-{sha}.part"));
    let have = std::fs::metadata(&part).unwrap().len();
    assert_eq!(have, 3 << 20);
    assert!(store.manifest(&r).unwrap().is_none());
    pull(&client(&hub), &store, &r, QUIET).await.unwrap();
    let served = hub.served();
    assert_eq!(served.len(), 4, "{served:?}");
    assert_eq!(served[3].range_start, have);
    assert_eq!(hub.bytes_served(), size);
    assert!(!part.exists());
}

#[tokio::test]
async fn server_errors_are_retried() {
    let hub = hub_with_smol().await;
    let (_d, store) = store();
    hub.fail_next(503, 2);
    let r = ModelRef::parse(&format!("{SMOL_REPO}:Q4_1")).unwrap();
    pull(&client(&hub), &store, &r, QUIET).await.unwrap();
    hub.fail_next(500, 3);
    let other = ModelRef::parse(&format!("{SMOL_REPO}/{SMOL_FILE}")).unwrap();
    // Already in the store: no file request is made, so no failure is met.
    pull(&client(&hub), &store, &other, QUIET).await.unwrap();
    let (_d2, fresh) = self::store();
    let e = pull(&client(&hub), &fresh, &other, QUIET)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("after 3 tries") && e.to_string().contains("500"),
        "{e}"
    );
}

#[tokio::test]
async fn a_sha256_mismatch_leaves_nothing_in_the_store() {
    let hub = FakeHub::start().await;
    let mut file = FakeFile::new(SMOL_FILE, model_bytes(SMOL));
    file.sha256 = sha256_hex(b"something else");
    hub.add_repo(
        SMOL_REPO,
        Repo {
            files: vec![file],
            token: None,
        },
    );
    let (_d, store) = store();
    let r = ModelRef::parse(&format!("{SMOL_REPO}:Q4_1")).unwrap();
    let e = pull(&client(&hub), &store, &r, QUIET).await.unwrap_err();
    assert!(matches!(e, HubError::ChecksumMismatch { .. }), "{e}");
    assert_eq!(names(&store.root().join("blobs")), Vec::<String>::new());
    assert!(store.list().unwrap().is_empty());
    assert!(store.model_path(&r).unwrap().is_none());
}

#[tokio::test]
async fn a_file_that_is_not_gguf_is_refused_and_removed() {
    let hub = hub_with_smol().await;
    hub.add_repo(
        "junk/not-a-model-GGUF",
        Repo {
            files: vec![FakeFile::new(
                "junk-Q4_1.gguf",
                bytes::Bytes::from(vec![7u8; 4096]),
            )],
            token: None,
        },
    );
    let (_d, store) = store();
    let good = ModelRef::parse(&format!("{SMOL_REPO}:Q4_1")).unwrap();
    pull(&client(&hub), &store, &good, QUIET).await.unwrap();
    let r = ModelRef::parse("junk/not-a-model-GGUF:Q4_1").unwrap();
    let e = pull(&client(&hub), &store, &r, QUIET).await.unwrap_err();
    assert!(matches!(e, HubError::BadGguf { .. }), "{e}");
    let sha = sha256_hex(&model_bytes(SMOL));
    assert_eq!(
        names(&store.root().join("blobs")),
        [format!("sha256-{sha}")]
    );
    assert!(store.manifest(&r).unwrap().is_none());
}

#[tokio::test]
async fn without_blob_info_the_linked_headers_give_size_and_sha256() {
    let hub = FakeHub::start().await;
    hub.list_without_blobs();
    let mut file = FakeFile::new(SMOL_FILE, model_bytes(SMOL));
    let real = file.sha256.clone();
    hub.add_repo(SMOL_REPO, smol_repo());
    let (_d, store) = store();
    let r = ModelRef::parse(&format!("{SMOL_REPO}:Q4_1")).unwrap();
    let m = pull(&client(&hub), &store, &r, QUIET).await.unwrap();
    assert_eq!(m.model.sha256, real);
    let heads = hub
        .state
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.starts_with("HEAD "))
        .count();
    assert_eq!(heads, 1);
    // A wrong X-Linked-Etag is caught by the sha256 check.
    file.sha256 = sha256_hex(b"other");
    hub.add_repo(
        "o/lying-GGUF",
        Repo {
            files: vec![file],
            token: None,
        },
    );
    let lying = ModelRef::parse("o/lying-GGUF:Q4_1").unwrap();
    let (_d2, fresh) = self::store();
    let e = pull(&client(&hub), &fresh, &lying, QUIET)
        .await
        .unwrap_err();
    assert!(matches!(e, HubError::ChecksumMismatch { .. }), "{e}");
}

#[tokio::test]
async fn a_gated_repo_needs_the_token() {
    let hub = FakeHub::start().await;
    let mut repo = smol_repo();
    repo.token = Some("hf_secret".into());
    hub.add_repo(SMOL_REPO, repo);
    let (_d, store) = store();
    let r = ModelRef::parse(&format!("{SMOL_REPO}:Q4_1")).unwrap();
    let e = pull(&client(&hub), &store, &r, QUIET).await.unwrap_err();
    assert!(
        matches!(e, HubError::Unauthorized { status: 401, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("HF_TOKEN"), "{e}");
    let wrong = HubClient::new(config(&hub, Some("hf_wrong"))).unwrap();
    let e = pull(&wrong, &store, &r, QUIET).await.unwrap_err();
    assert!(e.to_string().contains("token was refused"), "{e}");
    let right = HubClient::new(config(&hub, Some("hf_secret"))).unwrap();
    pull(&right, &store, &r, QUIET).await.unwrap();
}

#[tokio::test]
async fn a_missing_repo_or_file_is_a_clear_error() {
    let hub = hub_with_smol().await;
    let (_d, store) = store();
    let r = ModelRef::parse("nobody/nothing-GGUF").unwrap();
    let e = pull(&client(&hub), &store, &r, QUIET).await.unwrap_err();
    assert!(matches!(e, HubError::RepoNotFound { .. }), "{e}");
    assert!(
        e.to_string().contains("nobody/nothing-GGUF was not found"),
        "{e}"
    );
    let r = ModelRef::parse(&format!("{SMOL_REPO}/absent.gguf")).unwrap();
    let e = pull(&client(&hub), &store, &r, QUIET).await.unwrap_err();
    assert!(matches!(e, HubError::FileNotFound { .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_of_one_ref_download_once() {
    let hub = hub_with_smol().await;
    let (_d, store) = store();
    let r = ModelRef::parse(&format!("{SMOL_REPO}:Q4_1")).unwrap();
    let (c1, c2) = (client(&hub), client(&hub));
    let (s1, s2) = (store.clone(), store.clone());
    let (r1, r2) = (r.clone(), r.clone());
    let a = tokio::spawn(async move { pull(&c1, &s1, &r1, QUIET).await });
    let b = tokio::spawn(async move { pull(&c2, &s2, &r2, QUIET).await });
    let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
    assert_eq!(a.model, b.model);
    let size = model_bytes(SMOL).len() as u64;
    assert_eq!(
        hub.bytes_served(),
        size,
        "the second pull waited for the first"
    );
    let path = store.model_path(&r).unwrap().unwrap();
    assert_eq!(std::fs::read(path).unwrap(), model_bytes(SMOL));
}

#[test]
fn offline_refuses_to_pull_and_then_uses_the_store() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hub = rt.block_on(hub_with_smol());
    let (_d, store) = store();
    let r = ModelRef::parse(&format!("{SMOL_REPO}:Q4_1")).unwrap();
    let e = resolve_blocking(&store, &r, true, || config(&hub, None), QUIET).unwrap_err();
    assert!(matches!(e, HubError::Offline { .. }), "{e}");
    assert!(e.to_string().contains("kaiyuan pull hf.co/"), "{e}");
    assert_eq!(hub.request_count(), 0);
    let path = resolve_blocking(&store, &r, false, || config(&hub, None), QUIET).unwrap();
    let requests = hub.request_count();
    let again = resolve_blocking(&store, &r, true, || config(&hub, None), QUIET).unwrap();
    assert_eq!(path, again);
    assert_eq!(hub.request_count(), requests);
}

/// A full disk (the part file is `/dev/full`) is a clear error, not a retry loop or a panic.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_full_disk_is_a_clear_error() {
    let hub = hub_with_smol().await;
    let (_d, store) = store();
    let sha = sha256_hex(&model_bytes(SMOL));
    let blobs = store.root().join("blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    std::os::unix::fs::symlink("/dev/full", blobs.join(format!("sha256-{sha}.part"))).unwrap();
    let r = ModelRef::parse(&format!("{SMOL_REPO}:Q4_1")).unwrap();
    let e = pull(&client(&hub), &store, &r, QUIET).await.unwrap_err();
    assert!(matches!(e, HubError::DiskFull { .. }), "{e}");
    assert!(e.to_string().contains("no space left"), "{e}");
    assert_eq!(hub.served().len(), 1, "not retried");
    assert!(store.list().unwrap().is_empty());
}

#[tokio::test]
async fn rm_frees_blobs_no_other_ref_needs() {
    let hub = hub_with_smol().await;
    let (_d, store) = store();
    let tag = ModelRef::parse(&format!("{SMOL_REPO}:Q4_1")).unwrap();
    let file = ModelRef::parse(&format!("{SMOL_REPO}/{SMOL_FILE}")).unwrap();
    pull(&client(&hub), &store, &tag, QUIET).await.unwrap();
    pull(&client(&hub), &store, &file, QUIET).await.unwrap();
    assert_eq!(
        hub.bytes_served(),
        model_bytes(SMOL).len() as u64,
        "one blob for both refs"
    );
    assert_eq!(store.remove(&tag).unwrap(), 0);
    assert!(store.model_path(&file).unwrap().is_some());
    assert_eq!(store.remove(&file).unwrap(), model_bytes(SMOL).len() as u64);
    assert!(names(&store.root().join("blobs")).is_empty());
    assert!(matches!(
        store.remove(&file),
        Err(HubError::NotInStore { .. })
    ));
}

/// A temporary directory removed on drop (no extra crate needed).
mod tempdir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> Dir {
            static N: AtomicU64 = AtomicU64::new(0);
            let p = std::env::temp_dir().join(format!(
                "kaiyuan-hub-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A `gguf-split` model (three shards, written by llama.cpp's gguf-py splitter:
/// tools/split_tiny.py) pulled by tag loads as one model from the store, with every tensor of
/// the unsplit file; `rm` takes the shard links with the blobs.
#[tokio::test]
async fn gguf_split_shards_load_from_the_store_as_one_model() {
    let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/tiny");
    let hub = FakeHub::start().await;
    let shard = |k: usize| {
        let name = format!("llama.q8_0-{k:05}-of-00003.gguf");
        FakeFile::new(
            &name,
            bytes::Bytes::from(std::fs::read(tiny.join("split").join(&name)).unwrap()),
        )
    };
    hub.add_repo(
        "test/tiny-split-GGUF",
        Repo {
            files: vec![shard(3), shard(1), shard(2)],
            token: None,
        },
    );
    let (_d, store) = store();
    let r = ModelRef::parse("test/tiny-split-GGUF:Q8_0").unwrap();
    let m = pull(&client(&hub), &store, &r, QUIET).await.unwrap();
    assert_eq!(m.files.len(), 3);
    assert_eq!(m.info.split_count, Some(3));
    let path = store.model_path(&r).unwrap().unwrap();
    assert_eq!(
        path.file_name().unwrap().to_str(),
        Some("llama.q8_0-00001-of-00003.gguf")
    );
    let split = kaiyuan_gguf::GgufFile::open_split(&path, true).unwrap();
    let whole = kaiyuan_gguf::GgufFile::open(tiny.join("llama.q8_0.gguf")).unwrap();
    assert_eq!(split.tensors().len(), whole.tensors().len());
    for t in whole.tensors() {
        let s = split
            .tensor(&t.name)
            .unwrap_or_else(|| panic!("{} missing", t.name));
        assert_eq!(split.tensor_data(s), whole.tensor_data(t), "{}", t.name);
    }
    // Asking again reuses the links.
    assert_eq!(store.model_path(&r).unwrap().unwrap(), path);
    store.remove(&r).unwrap();
    assert!(names(&store.root().join("blobs")).is_empty());
    assert!(names(&store.root().join("split")).is_empty());
}
