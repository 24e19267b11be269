//! Helpers shared by the CLI tests: where the test models are, and running the binary.

#![allow(dead_code)] // each test file uses a different subset

pub mod engine;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A test model from `$KAIYUAN_MODELS` (default `<repo>/models`); fails when it is missing.
pub fn model(file: &str) -> String {
    let dir = std::env::var_os("KAIYUAN_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("models"));
    let path = dir.join(file);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-models (or set KAIYUAN_MODELS)",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

pub fn smollm2() -> String {
    model("SmolLM2-135M-Instruct.Q4_1.gguf")
}

pub fn gemma3() -> String {
    model("gemma-3-270m-q4_k_m.gguf")
}

pub fn kaiyuan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kaiyuan"))
        .args(args)
        .output()
        .expect("run kaiyuan")
}

/// Runs kaiyuan with `input` on its standard input (a pipe).
pub fn kaiyuan_with_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kaiyuan"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kaiyuan");
    let mut stdin = child.stdin.take().expect("piped stdin");
    // The child may exit before reading everything (/exit): a broken pipe is fine then.
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    child.wait_with_output().expect("wait for kaiyuan")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts a clean failure: non-zero exit, an `error:` line, no panic.
pub fn assert_clean_error(out: &Output, needle: &str) {
    let err = stderr(out);
    assert!(!out.status.success(), "should fail; stderr: {err}");
    assert!(err.contains("error:"), "no error line: {err}");
    assert!(!err.contains("panicked"), "panicked: {err}");
    assert!(err.contains(needle), "{needle:?} not in: {err}");
}
