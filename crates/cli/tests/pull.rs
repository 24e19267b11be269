//! `kaiyuan pull`, `list`, `show`, `rm` and `run -m REF [--offline]` against the fake Hub of
//! `crates/hub/tests/fakehub` (pointed to by `HF_ENDPOINT`), with a store in a temporary
//! `KAIYUAN_HOME`.

mod common;
#[path = "../../hub/tests/fakehub/mod.rs"]
mod fakehub;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fakehub::{model_bytes, FakeFile, FakeHub, Repo, SMOL};

const REPO: &str = "bartowski/SmolLM2-135M-Instruct-GGUF";

fn kaiyuan(home: &Path, hub: &FakeHub, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kaiyuan"))
        .args(args)
        .env("KAIYUAN_HOME", home)
        .env("HF_ENDPOINT", &hub.url)
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_OFFLINE")
        .output()
        .expect("run kaiyuan")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn temp_home(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("kaiyuan-cli-pull-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

#[test]
fn pull_list_show_run_rm() {
    let hub = FakeHub::start_on_thread();
    hub.add_repo(
        REPO,
        Repo {
            files: vec![FakeFile::new(
                "SmolLM2-135M-Instruct-Q4_1.gguf",
                model_bytes(SMOL),
            )],
            token: None,
        },
    );
    let home = temp_home("main");
    let reference = format!("{REPO}:Q4_1");

    let o = kaiyuan(&home, &hub, &["pull", &reference]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains(&format!("pulled hf.co/{REPO}:Q4_1")), "{out}");
    // Not a terminal: plain progress lines.
    assert!(
        err.contains("pulling SmolLM2-135M-Instruct-Q4_1.gguf"),
        "{err}"
    );
    assert!(err.contains("50%"), "{err}");

    let o = kaiyuan(&home, &hub, &["list"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let row = out
        .lines()
        .find(|l| l.contains(REPO))
        .unwrap_or_else(|| panic!("{out}"));
    for cell in ["93.8 MiB", "llama", "Q4_1", "135M", "8192"] {
        assert!(row.contains(cell), "{cell} not in {row}");
    }

    let o = kaiyuan(&home, &hub, &["show", &reference]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("tools         generic JSON"), "{out}");
    assert!(out.contains("reasoning     no"), "{out}");
    assert!(out.contains("sha256"), "{out}");
    // What `inspect` prints for the file follows.
    let inspect = common::kaiyuan(&["inspect", &common::smollm2()]);
    let inspect = String::from_utf8_lossy(&inspect.stdout).into_owned();
    let tail: Vec<&str> = inspect.lines().skip(2).collect();
    assert!(out.contains(&tail.join("\n")), "{out}");

    let served = hub.bytes_served();
    let o = kaiyuan(
        &home,
        &hub,
        &[
            "run",
            "-m",
            &reference,
            "--offline",
            "-p",
            "Hello",
            "-n",
            "3",
            "--temp",
            "0",
        ],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert_eq!(hub.bytes_served(), served, "nothing is fetched again");

    let o = kaiyuan(
        &home,
        &hub,
        &[
            "run",
            "-m",
            "someone/Other-GGUF:Q4_1",
            "--offline",
            "-p",
            "Hi",
        ],
    );
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("--offline") && err.contains("kaiyuan pull hf.co/someone/Other-GGUF:Q4_1"),
        "{err}"
    );

    serve_names_the_model_as_written(&home, &hub, &reference);

    let o = kaiyuan(&home, &hub, &["rm", &reference]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("removed") && out.contains("93.8 MiB freed"),
        "{out}"
    );
    let o = kaiyuan(&home, &hub, &["list"]);
    assert!(!text(&o).0.contains(REPO));
    let o = kaiyuan(&home, &hub, &["rm", &reference]);
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("not in the local store"),
        "{:?}",
        text(&o)
    );
    let _ = std::fs::remove_dir_all(&home);
}

/// `serve -m REF --offline` loads the stored model and lists it under the name as written.
fn serve_names_the_model_as_written(home: &Path, hub: &FakeHub, reference: &str) {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut child = Command::new(env!("CARGO_BIN_EXE_kaiyuan"))
        .args([
            "serve",
            "-m",
            reference,
            "--offline",
            "--port",
            "0",
            "-t",
            "1",
        ])
        .env("KAIYUAN_HOME", home)
        .env("HF_ENDPOINT", &hub.url)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            Some(
                l.split("listening on http://")
                    .nth(1)?
                    .split(' ')
                    .next()?
                    .to_string(),
            )
        })
        .expect("the server prints its address");
    std::thread::spawn(move || lines.for_each(drop));
    let get = |path: &str| -> String {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !get("/health").starts_with("HTTP/1.1 200") {
        assert!(
            std::time::Instant::now() < deadline,
            "the model did not load"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let models = get("/v1/models");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        models.contains(&format!("\"id\":\"{reference}\"")),
        "{models}"
    );
}

#[test]
fn pull_errors_are_clear() {
    let hub = FakeHub::start_on_thread();
    let home = temp_home("errors");
    let o = kaiyuan(&home, &hub, &["pull", "nobody/missing-GGUF"]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("nobody/missing-GGUF was not found"), "{err}");
    let o = kaiyuan(&home, &hub, &["pull", "not a reference"]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("invalid model reference"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // A plain path that does not exist stays a path error, with no Hub request.
    let o = kaiyuan(&home, &hub, &["run", "-m", "missing.gguf", "-p", "x"]);
    assert!(!o.status.success());
    // `serve` and `chat` take references the same way, before anything is loaded or bound.
    for cmd in ["serve", "chat"] {
        let o = kaiyuan(&home, &hub, &[cmd, "-m", "someone/Other-GGUF", "--offline"]);
        let (_, err) = text(&o);
        assert!(!o.status.success());
        assert!(
            err.contains("kaiyuan pull hf.co/someone/Other-GGUF:latest"),
            "{cmd}: {err}"
        );
    }
    // Only the first pull reached the Hub.
    assert_eq!(hub.request_count(), 1);
    let _ = std::fs::remove_dir_all(&home);
}
