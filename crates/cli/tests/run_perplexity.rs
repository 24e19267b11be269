//! Runs `kaiyuan run` and `kaiyuan perplexity` on the real SmolLM2 model: seeded runs are
//! reproducible, impossible lengths are refused with both numbers, and the perplexity
//! command agrees with llama.cpp's (testdata/golden/llamacpp, within 1%).

mod common;

use common::{kaiyuan, repo_root, smollm2};

#[test]
fn seeded_runs_are_reproducible_across_thread_counts() {
    let m = smollm2();
    let run = |threads: &str| {
        let out = kaiyuan(&[
            "run",
            "-m",
            &m,
            "-p",
            "The best way to learn",
            "-n",
            "24",
            "--seed",
            "42",
            "-t",
            threads,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 text")
    };
    let (a, b, c) = (run("1"), run("1"), run("2"));
    assert!(a.starts_with("The best way to learn") && a.len() > "The best way to learn".len() + 10);
    assert_eq!(a, b);
    assert_eq!(a, c);
}

#[test]
fn too_long_a_request_names_both_numbers() {
    let out = kaiyuan(&[
        "run",
        "-m",
        &smollm2(),
        "-p",
        "hi",
        "-n",
        "9000",
        "--ctx",
        "512",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("9000") && err.contains("512"), "{err}");
}

#[test]
fn perplexity_command_matches_llamacpp() {
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            repo_root().join("testdata/golden/llamacpp/SmolLM2-135M-Instruct.Q4_1.ppl.json"),
        )
        .expect("golden"),
    )
    .expect("JSON");
    let want = golden["ppl"].as_f64().expect("ppl");
    let text = repo_root().join("testdata/text/ppl.txt");
    let out = kaiyuan(&[
        "perplexity",
        "-m",
        &smollm2(),
        "-f",
        text.to_str().unwrap(),
        "-t",
        "2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let ppl: f64 = stdout
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no perplexity in {stdout:?}"));
    assert!(
        (ppl / want - 1.0).abs() <= 0.01,
        "{ppl} vs llama.cpp {want}"
    );
    assert!(stdout.contains("1020 scored tokens"), "{stdout}");
}
