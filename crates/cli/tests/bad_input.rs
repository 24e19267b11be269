//! The command line's half of the bad-input table (RELIABILITY.md, "Bad input"): every
//! case exits non-zero with an `error:` line naming the problem, never a panic or a
//! backtrace. `serve` cases listen on port 0, so a case that wrongly starts serving is
//! caught by a timeout instead of a port clash.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{assert_clean_error, smollm2};

/// A file under the test's temp dir with `bytes` in it.
fn file(name: &str, bytes: &[u8]) -> String {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bad_input_{name}"));
    std::fs::write(&path, bytes).unwrap();
    path.to_string_lossy().into_owned()
}

/// Runs kaiyuan, killing it (and failing) if it is still running after two minutes: a bad
/// `serve` flag must end the process, not leave it serving.
fn kaiyuan(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kaiyuan"))
        .args(args)
        .env_remove("KAIYUAN_ADMIN_KEY")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kaiyuan");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{args:?} still running after 120 s: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn serve(extra: &[&str]) -> Output {
    let mut args = vec!["serve", "--host", "127.0.0.1", "--port", "0"];
    args.extend_from_slice(extra);
    kaiyuan(&args)
}

const ADMIN: &str = "admin-key-0123456789abcdef";

/// A truncated copy of the default model: `keep` bytes of it.
fn truncated(name: &str, keep: usize) -> String {
    let bytes = std::fs::read(smollm2()).unwrap();
    file(name, &bytes[..keep.min(bytes.len())])
}

#[test]
fn bad_model_files_are_clear_errors() {
    let text = file("not_a_model.gguf", b"hello, I am not a model\n");
    let empty = file("empty.gguf", b"");
    let header_only = truncated("header_only.gguf", 16);
    let short = {
        let len = std::fs::metadata(smollm2()).unwrap().len() as usize;
        truncated("short.gguf", len - 100)
    };
    let dir = std::env::temp_dir().to_string_lossy().into_owned();
    for command in ["run", "tokenize", "inspect"] {
        let args = |m: &str| -> Vec<String> {
            match command {
                "run" => vec![
                    "run".into(),
                    "-m".into(),
                    m.into(),
                    "-p".into(),
                    "hi".into(),
                ],
                "tokenize" => vec!["tokenize".into(), "-m".into(), m.into(), "hi".into()],
                _ => vec!["inspect".into(), m.into()],
            }
        };
        for (model, needle) in [
            ("/no/such/model.gguf", "/no/such/model.gguf"),
            (text.as_str(), text.as_str()),
            (empty.as_str(), empty.as_str()),
            (header_only.as_str(), header_only.as_str()),
            (dir.as_str(), dir.as_str()),
        ] {
            let a = args(model);
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            assert_clean_error(&kaiyuan(&a), needle);
        }
    }
    // The tensor data cut short: inspect lists tensors without reading them, run loads them.
    assert_clean_error(&kaiyuan(&["run", "-m", &short, "-p", "hi"]), &short);
    // `serve` loads after it starts listening: it still exits non-zero, naming the file.
    for model in [&text, &empty, &header_only, &short] {
        assert_clean_error(&serve(&["-m", model]), model);
        assert_clean_error(&serve(&["-m", model, "--mmap"]), model);
    }
    assert_clean_error(
        &serve(&["-m", "/no/such/model.gguf"]),
        "/no/such/model.gguf",
    );
}

#[test]
fn bad_serve_flags_are_clear_errors() {
    let m = smollm2();
    let empty = file("empty.keys", b"\n  \n");
    for (args, needle) in [
        (vec!["--grace-period=-1"], "--grace-period"),
        (vec!["--grace-period", "NaN"], "--grace-period"),
        (vec!["--prompt-workers", "0"], "--prompt-workers"),
        (vec!["--threads", "0"], "--threads"),
        (vec!["--ctx", "0"], "--ctx"),
        (vec!["--max-seqs", "0"], "--max-seqs"),
        (vec!["--kv-tokens", "0"], "--kv-tokens"),
        (vec!["--max-batch-tokens", "0"], "--max-batch-tokens"),
        (vec!["--api-key", "  "], "--api-key is empty"),
        (vec!["--api-key-file", "/no/such/keys"], "/no/such/keys"),
        (vec!["--api-key-file", &empty], "has no keys"),
        (vec!["--admin-key", "short"], "at least 16 characters"),
        (
            vec!["--chat-template-file", "/no/such/t.jinja"],
            "/no/such/t.jinja",
        ),
        (vec!["-m", &m, "-m", &m], "two models are named"),
    ] {
        let mut full = vec!["-m", m.as_str()];
        if args[0] == "-m" {
            full.clear();
        }
        full.extend(args.iter().copied());
        assert_clean_error(&serve(&full), needle);
    }
    assert_clean_error(
        &kaiyuan(&["serve", "-m", &m, "--host", "256.1.1.1", "--port", "0"]),
        "cannot listen on 256.1.1.1:0",
    );
    let bad_template = file("bad.jinja", b"{% if %}");
    assert_clean_error(
        &serve(&["-m", &m, "--chat-template-file", &bad_template]),
        "template",
    );
}

#[test]
fn bad_metering_flags_are_clear_errors() {
    let m = smollm2();
    let syntax = file("syntax.toml", b"[default\ninput_cache_hit = 1");
    let negative = file(
        "negative.toml",
        b"[default]\ninput_cache_hit = -1\ninput_cache_miss = 1\noutput = 1\n",
    );
    let unknown = file("unknown.toml", b"[pricing]\noutput = 1\n");
    let text_price = file(
        "text.toml",
        b"[default]\ninput_cache_hit = \"cheap\"\ninput_cache_miss = 1\noutput = 1\n",
    );
    let db_dir = file("not_a_dir", b"a file, not a directory");
    let in_file = format!("sqlite://{db_dir}/meter.db");
    for (args, needle) in [
        (vec!["--db", "sqlite://x.db"], "need an admin key"),
        (
            vec!["--admin-key", ADMIN, "--db", "mysql://u@h/db"],
            "mysql",
        ),
        (vec!["--admin-key", ADMIN, "--db", "not a url"], "not a url"),
        (
            vec!["--admin-key", ADMIN, "--db", &in_file],
            "metering database",
        ),
        (
            vec!["--admin-key", ADMIN, "--prices", "/no/such/p.toml"],
            "/no/such/p.toml",
        ),
        (vec!["--admin-key", ADMIN, "--prices", &syntax], &syntax),
        (
            vec!["--admin-key", ADMIN, "--prices", &negative],
            "input_cache_hit",
        ),
        (vec!["--admin-key", ADMIN, "--prices", &unknown], "pricing"),
        (
            vec!["--admin-key", ADMIN, "--prices", &text_price],
            "input_cache_hit",
        ),
        (
            vec!["--admin-key-file", "/no/such/admin.key"],
            "/no/such/admin.key",
        ),
    ] {
        let mut full = vec!["-m", m.as_str()];
        full.extend(args.iter().copied());
        assert_clean_error(&serve(&full), needle);
    }
}

#[test]
fn clap_refuses_malformed_values_without_a_panic() {
    let m = smollm2();
    for args in [
        vec!["serve", "-m", &m, "--port", "70000"],
        vec!["serve", "-m", &m, "--threads", "two"],
        vec!["serve", "-m", &m, "--kv-tokens", "-5"],
        vec!["serve", "-m", &m, "--reasoning-format", "verbose"],
        vec!["serve", "-m", &m, "--thinking", "maybe"],
        vec!["serve", "-m", &m, "--body-limit", "1e9"],
        vec!["serve", "--no-such-flag"],
        vec!["run", "-m", &m],
        vec!["frobnicate"],
    ] {
        let out = kaiyuan(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("error:"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
