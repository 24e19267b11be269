//! gguf-split models: the shards in `testdata/tiny/split/` (written by gguf-py's split
//! writer, `tools/split_tiny.py`) load as one model whose logits equal the whole file's, bit
//! for bit; a missing shard, a shard of another split and a later shard given first are
//! clear errors.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{golden, tiny};
use kaiyuan_gguf::GgufFile;
use kaiyuan_kernels::threads::ThreadPool;
use kaiyuan_model::{Model, Session};

fn shard(name: &str, k: usize) -> PathBuf {
    tiny(&format!("split/{name}-{k:05}-of-00003.gguf"))
}

fn logits(file: GgufFile, tokens: &[u32]) -> Vec<f32> {
    let model = Model::from_gguf(Arc::new(file)).expect("model loads");
    let pool = ThreadPool::new(2);
    let mut s = Session::new(&model, 64);
    s.eval(&pool, tokens, true).expect("forward")
}

fn check_same_logits(arch: &str) {
    let name = format!("{arch}.q8_0");
    let tokens = golden(arch).tokens;
    let whole = GgufFile::open(tiny(&format!("{name}.gguf"))).expect("whole file");
    for resident in [false, true] {
        let split = GgufFile::open_split(shard(&name, 1), resident).expect("split opens");
        assert_eq!(split.shard_count(), 3);
        assert_eq!(split.tensors().len(), whole.tensors().len());
        // Every shard holds some tensors (else the test would not exercise the lookup).
        for k in 2..=3 {
            let part = GgufFile::open(shard(&name, k)).expect("shard opens");
            assert!(!part.tensors().is_empty(), "shard {k} holds tensors");
            for t in part.tensors() {
                let merged = split.tensor(&t.name).expect("tensor of a later shard");
                assert_eq!(split.tensor_data(merged), part.tensor_data(t), "{}", t.name);
            }
        }
        let expected = logits(
            GgufFile::open(tiny(&format!("{name}.gguf"))).unwrap(),
            &tokens,
        );
        let got = logits(split, &tokens);
        assert!(
            got.iter()
                .map(|x| x.to_bits())
                .eq(expected.iter().map(|x| x.to_bits())),
            "{arch}: a split model gives other logits than the whole file"
        );
    }
}

#[test]
fn split_gemma3_gives_the_logits_of_the_whole_file() {
    check_same_logits("gemma3");
}

#[test]
fn split_llama_gives_the_logits_of_the_whole_file() {
    check_same_logits("llama");
}

#[test]
fn a_whole_file_opens_as_itself() {
    let f = GgufFile::open_split(tiny("llama.q8_0.gguf"), false).expect("opens");
    assert_eq!(f.shard_count(), 1);
}

/// A directory with copies of `files` under new names.
fn dir_with(files: &[(PathBuf, &str)]) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("kaiyuan-split-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (from, to) in files {
        std::fs::copy(from, dir.join(to)).unwrap();
    }
    dir
}

fn open_err(path: &Path) -> String {
    GgufFile::open_split(path, false)
        .map(|_| ())
        .expect_err("must fail")
        .to_string()
}

#[test]
fn missing_and_mismatched_shards_are_clear_errors() {
    let g = "gemma3.q8_0";
    let first = format!("{g}-00001-of-00003.gguf");
    let second = format!("{g}-00002-of-00003.gguf");
    let third = format!("{g}-00003-of-00003.gguf");

    let missing = dir_with(&[(shard(g, 1), &first), (shard(g, 2), &second)]);
    let e = open_err(&missing.join(&first));
    assert!(
        e.contains("shard 3 of 3 is missing") && e.contains(&third),
        "{e}"
    );

    // Llama's third shard under Gemma's name: another split (other tensor count).
    let mixed = dir_with(&[
        (shard(g, 1), &first),
        (shard(g, 2), &second),
        (shard("llama.q8_0", 3), &third),
    ]);
    let e = open_err(&mixed.join(&first));
    assert!(e.contains("different splits"), "{e}");

    let e = open_err(&shard(g, 2));
    assert!(e.contains("shard 2 of 3") && e.contains("first"), "{e}");

    // A shard renamed so its name no longer says where the others are.
    let renamed = dir_with(&[(shard(g, 1), "model.gguf")]);
    let e = open_err(&renamed.join("model.gguf"));
    assert!(e.contains("NAME-00001-of-00003.gguf"), "{e}");
    for d in [missing, mixed, renamed] {
        let _ = std::fs::remove_dir_all(d);
    }
}
