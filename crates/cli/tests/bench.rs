//! `kaiyuan bench` on the real SmolLM2 model with tiny sizes: the JSON records parse and
//! have sane fields, the table has a row per test, the bandwidth probe answers, and bad
//! arguments are clear errors. No timings are asserted (only that they are positive).

mod common;

use common::{assert_clean_error, kaiyuan, smollm2, stderr, stdout};
use serde_json::Value;

fn positive(v: &Value) -> bool {
    v.as_f64().is_some_and(|x| x.is_finite() && x > 0.0)
}

#[test]
fn json_records_have_sane_fields() {
    let m = smollm2();
    let out = kaiyuan(&[
        "bench", "-m", &m, "-p", "8", "-n", "3", "-d", "0,5", "-r", "2", "-t", "1", "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let records: Vec<Value> = serde_json::from_str(&stdout(&out)).expect("JSON array");
    let tests: Vec<&str> = records
        .iter()
        .map(|r| r["test"].as_str().unwrap())
        .collect();
    assert_eq!(tests, ["pp8", "tg3", "pp8 @ d5", "tg3 @ d5"]);
    for r in &records {
        assert_eq!(r["n_threads"], 1);
        assert_eq!(r["reps"], 2);
        assert_eq!(r["samples_ts"].as_array().unwrap().len(), 2);
        assert_eq!(r["samples_ns"].as_array().unwrap().len(), 2);
        assert!(positive(&r["avg_ts"]) && positive(&r["avg_ns"]), "{r}");
        assert!(r["stddev_ts"].as_f64().unwrap() >= 0.0);
        assert_eq!(r["model_type"], "llama 134.52 M Q4_1");
        assert_eq!(r["model_n_params"], 134_515_008);
        let size = r["model_size"].as_u64().unwrap();
        assert!(size > 80 << 20 && size < 120 << 20, "{size}");
        let tg = r["n_gen"].as_u64().unwrap() > 0;
        assert_eq!(r["n_prompt"].as_u64().unwrap() > 0, !tg);
        if tg {
            // Tied embeddings: a decode step reads every weight.
            assert_eq!(r["weight_bytes_per_token"].as_u64(), Some(size));
            assert!(positive(&r["kv_bytes_per_token"]));
        } else {
            assert!(r["weight_bytes_per_token"].is_null());
        }
        // avg_ts is the mean of the samples.
        let samples: Vec<f64> = r["samples_ts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!((mean / r["avg_ts"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    }
    // More context, more KV bytes per generated token.
    assert!(records[3]["kv_bytes_per_token"].as_f64() > records[1]["kv_bytes_per_token"].as_f64());
}

#[test]
fn moe_decode_reads_only_the_used_experts() {
    // The tiny qwen3moe (8 experts, 2 used per token), Q8_0. Its tensor sizes as the `gguf`
    // package reads them: 205,944 bytes in all, token_embd 21,692 (319 rows: one is 68),
    // the six stacked expert tensors 104,448, of which a token reads 2/8.
    let m = common::repo_root().join("testdata/tiny/qwen3moe.q8_0.gguf");
    let out = kaiyuan(&[
        "bench",
        "-m",
        m.to_str().unwrap(),
        "-n",
        "2",
        "--only",
        "tg",
        "-r",
        "1",
        "-t",
        "1",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let records: Vec<Value> = serde_json::from_str(&stdout(&out)).expect("JSON array");
    assert_eq!(records[0]["model_size"].as_u64(), Some(205_944));
    let expected = 205_944 - 21_692 + 68 - 104_448 + 104_448 / 8 * 2;
    assert_eq!(
        records[0]["weight_bytes_per_token"].as_u64(),
        Some(expected)
    );
}

#[test]
fn table_has_a_row_per_test() {
    let m = smollm2();
    let out = kaiyuan(&[
        "bench", "-m", &m, "-p", "4", "-n", "2", "-r", "1", "-t", "2", "--only", "tg",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("| model | size | params | backend | threads | test | t/s |"));
    let rows: Vec<&str> = text.lines().skip(2).collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert!(
        rows[0].contains("| 2 | tg2 |") && rows[0].contains(" ± "),
        "{text}"
    );
}

#[test]
fn bandwidth_probe_answers() {
    let out = kaiyuan(&[
        "bench",
        "--bandwidth",
        "--probe-mib",
        "8",
        "-t",
        "1,2",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let records: Vec<Value> = serde_json::from_str(&stdout(&out)).expect("JSON array");
    assert_eq!(records.len(), 2);
    for (r, t) in records.iter().zip([1, 2]) {
        assert_eq!(r["n_threads"], t);
        assert_eq!(r["buffer_bytes"], 8 << 20);
        assert!(positive(&r["gbs"]), "{r}");
    }
}

#[test]
fn bad_arguments_are_clear_errors() {
    let m = smollm2();
    assert_clean_error(
        &kaiyuan(&["bench", "-m", "/no/such/model.gguf"]),
        "cannot load",
    );
    assert_clean_error(&kaiyuan(&["bench", "-m", &m, "-p", "0"]), "-p 0");
    assert_clean_error(&kaiyuan(&["bench", "-m", &m, "-n", "0"]), "-n 0");
    assert_clean_error(&kaiyuan(&["bench", "-m", &m, "-r", "0"]), "-r 0");
    assert_clean_error(&kaiyuan(&["bench", "-m", &m, "-t", "0"]), "-t 0");
    assert_clean_error(
        &kaiyuan(&["bench", "--bandwidth", "--probe-mib", "0"]),
        "--probe-mib 0",
    );
    // clap's own errors (a missing -m, a non-number) are clean too.
    for args in [&["bench"][..], &["bench", "-m", &m, "-p", "x"]] {
        let out = kaiyuan(args);
        assert!(!out.status.success());
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }
}
