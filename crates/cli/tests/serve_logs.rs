//! `serve`'s own lines (`listening on`, a model's warning, `loaded`, `ready:`, `stopped`)
//! are log events: one JSON object each under `--log-format json`, the plain lines a person
//! reads under the default text format.
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::{gemma3, smollm2};
use serde_json::Value;

/// A `serve` of SmolLM2 (`smol`) and Gemma 3 (`gemma`, whose file has no chat template) on
/// a free port, with its stderr lines arriving on a channel.
struct Serve {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Serve {
    fn start(log_args: &[&str]) -> Serve {
        let smol = format!("{}=smol", smollm2());
        let gemma = format!("{}=gemma", gemma3());
        let mut child = Command::new(env!("CARGO_BIN_EXE_kaiyuan"))
            .args(log_args)
            .args(["serve", "-m", &smol, "-m", &gemma])
            .args(["--port", "0", "-t", "1", "--ctx", "256", "--max-seqs", "2"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kaiyuan serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Serve {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Lines up to and including the first that `last` accepts (at most two minutes).
    fn lines_until(&mut self, last: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                let _ = self.child.kill();
                panic!(
                    "serve stopped or stalled; its lines so far: {:#?}",
                    self.seen
                );
            };
            self.seen.push(line.clone());
            out.push(line);
            if last(out.last().expect("a line")) {
                return out;
            }
        }
    }

    /// SIGTERM; the remaining stderr lines and stdout, after a clean exit.
    fn stop(self) -> (Vec<String>, String) {
        let pid = i32::try_from(self.child.id()).expect("pid fits");
        // SAFETY: kill(2) only sends a signal; the pid is our own child, not yet waited for,
        // so it cannot have been reused.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM sent");
        let rest: Vec<String> = self.lines.iter().collect();
        let out = self.child.wait_with_output().expect("wait for serve");
        assert!(out.status.success(), "{:?}: {rest:#?}", out.status);
        (rest, String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

fn json(line: &str) -> Value {
    let v: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
    for field in ["timestamp", "level", "target", "message"] {
        assert!(v[field].is_string(), "no {field}: {line}");
    }
    v
}

/// The address in `kaiyuan listening on http://ADDR (…`.
fn listening_addr(message: &str) -> String {
    let rest = message
        .strip_prefix("kaiyuan listening on http://")
        .unwrap_or_else(|| panic!("not the listening line: {message}"));
    rest.split(' ').next().expect("an address").to_string()
}

#[test]
fn json_start_up_lines_are_objects_with_their_fields() {
    let mut serve = Serve::start(&["--log-format", "json"]);
    // Up to the `ready:` line, whatever its format: a plain one fails the parse below.
    let start = serve.lines_until(|l| l.contains("ready: "));
    let start: Vec<Value> = start.iter().map(|l| json(l)).collect();
    let serve_target = |v: &Value| {
        assert_eq!(v["target"], "kaiyuan::cmd::serve", "{v}");
    };

    let listening = &start[0];
    serve_target(listening);
    assert_eq!(listening["level"], "INFO");
    let addr = listening_addr(listening["message"].as_str().unwrap());
    assert_eq!(listening["addr"], addr.as_str(), "{listening}");
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    assert_eq!(
        (&listening["pinned"], &listening["models"]),
        (&2.into(), &2.into())
    );

    let loaded: Vec<&Value> = start
        .iter()
        .filter(|v| v["message"].as_str().unwrap().starts_with("loaded "))
        .collect();
    assert_eq!(loaded.len(), 2, "{start:#?}");
    for (v, name, path) in [
        (loaded[0], "smol", smollm2()),
        (loaded[1], "gemma", gemma3()),
    ] {
        serve_target(v);
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["model"], name, "{v}");
        assert_eq!(v["path"], path.as_str(), "{v}");
        assert_eq!(
            (&v["context"], &v["threads"]),
            (&256.into(), &1.into()),
            "{v}"
        );
        assert_eq!(v["max_seqs"], 2, "{v}");
        assert!(v["kv_blocks"].as_u64().is_some_and(|n| n > 0), "{v}");
    }

    let warnings: Vec<&Value> = start.iter().filter(|v| v["level"] == "WARN").collect();
    assert_eq!(warnings.len(), 1, "{start:#?}");
    serve_target(warnings[0]);
    assert_eq!(warnings[0]["model"], "gemma");
    let message = warnings[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("gemma: the model has no chat template"),
        "{message}"
    );

    let ready = start.last().expect("the ready line");
    serve_target(ready);
    assert_eq!(ready["url"], format!("http://{addr}/v1"), "{ready}");
    assert_eq!(start.len(), 5, "{start:#?}");

    let (rest, stdout) = serve.stop();
    let rest: Vec<Value> = rest.iter().map(|l| json(l)).collect();
    assert!(
        rest.iter().any(|v| v["target"] == "kaiyuan_server"
            && v["message"].as_str().unwrap().starts_with("shutting down")),
        "{rest:#?}"
    );
    let stopped = rest.last().expect("the stopped line");
    serve_target(stopped);
    assert_eq!(stopped["message"], "stopped");
    assert_eq!(stdout, "", "serve writes nothing to stdout");
}

#[test]
fn text_start_up_lines_stay_plain() {
    let mut serve = Serve::start(&[]);
    let start = serve.lines_until(|l| l.starts_with("ready: "));
    assert_eq!(start.len(), 5, "{start:#?}");
    let addr = listening_addr(&start[0]);
    let expected_start = [
        format!("kaiyuan listening on http://{addr} (loading 2 pinned model(s) of 2)"),
        format!("loaded smol ({}): context 256, 2 sequences, ", smollm2()),
        "warning: gemma: the model has no chat template; using the built-in \"gemma\" template"
            .to_string(),
        format!("loaded gemma ({}): context 256, 2 sequences, ", gemma3()),
        format!("ready: http://{addr}/v1 (GET /health answers 200)"),
    ];
    for (line, expected) in start.iter().zip(&expected_start) {
        assert!(
            line.starts_with(expected.as_str()),
            "{line:?} is not {expected:?}…"
        );
    }
    assert!(start[1].ends_with(" KV blocks, 1 threads"), "{}", start[1]);
    let (rest, stdout) = serve.stop();
    assert_eq!(
        rest.last().map(String::as_str),
        Some("stopped"),
        "{rest:#?}"
    );
    // The libraries' lines keep the full format: timestamp, level, target.
    assert!(
        rest.iter()
            .any(|l| l.contains(" INFO kaiyuan_server: shutting down")),
        "{rest:#?}"
    );
    assert_eq!(stdout, "");
}
