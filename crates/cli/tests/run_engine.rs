//! `kaiyuan run` generates through the engine: its greedy continuation follows llama.cpp's
//! (independent reference) up to llama.cpp's first near-tie, greedy and seeded output equal
//! the engine's for the same prompt and settings (what the server returns), and it stops on
//! every end-of-generation id the engine knows and on no other token. `--logit-bias` is
//! checked and its errors are clean.

mod common;

use common::engine::{cli_sampling, generate, tokenizer};
use common::{assert_clean_error, kaiyuan, repo_root, smollm2, stderr, stdout};
use kaiyuan_engine::FinishReason;

/// `kaiyuan run -m SmolLM2 -p PROMPT -n N -t 1 EXTRA...`, which must succeed.
fn run(prompt: &str, n: usize, extra: &[&str]) -> (String, String) {
    let m = smollm2();
    let n = n.to_string();
    let mut args = vec!["run", "-m", &m, "-p", prompt, "-n", &n, "-t", "1"];
    args.extend_from_slice(extra);
    let out = kaiyuan(&args);
    let err = stderr(&out);
    assert!(out.status.success(), "run failed: {err}");
    (stdout(&out), err)
}

fn golden() -> serde_json::Value {
    let path = repo_root().join("testdata/golden/llamacpp/SmolLM2-135M-Instruct.Q4_1.greedy.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read the greedy golden"))
        .expect("golden is JSON")
}

#[test]
fn greedy_run_follows_llama_cpp_to_its_first_near_tie() {
    // llama.cpp's greedy continuation of the "numbers" prompt, up to the first step where
    // its own top-2 logits are within 0.5 (where kernels may legitimately choose the other).
    let g = golden();
    let case = g["prompts"]
        .as_array()
        .expect("prompts")
        .iter()
        .find(|p| p["name"] == "numbers")
        .expect("the numbers prompt");
    assert_eq!(case["tokenize"]["parse_special"], false);
    let text = case["text"].as_str().expect("text");
    let steps = case["top2"]
        .as_array()
        .expect("top2")
        .iter()
        .take_while(|t| (t[1].as_f64().unwrap() - t[3].as_f64().unwrap()).abs() >= 0.5)
        .count();
    assert!(steps >= 16, "only {steps} clear steps: pick another prompt");
    let ids: Vec<u32> = case["generated"].as_array().expect("generated")[..steps]
        .iter()
        .map(|v| v.as_u64().expect("id") as u32)
        .collect();
    let want = tokenizer(&smollm2()).decode(&ids, false).expect("decode");
    let (out, _) = run(text, steps, &["--temp", "0"]);
    assert_eq!(out, format!("{text}{want}\n"));
}

#[test]
fn greedy_and_seeded_run_equal_the_engine() {
    let m = smollm2();
    let tok = tokenizer(&m);
    let prompt = "The recipe for pancakes calls for";
    for (temp, seed) in [(0.0f32, 1u64), (0.9, 11), (0.9, 12)] {
        let (want, _) = generate(
            &m,
            tok.encode_with_bos_eos(prompt, false),
            cli_sampling(temp, seed),
            24,
        );
        let (temp_s, seed_s) = (temp.to_string(), seed.to_string());
        let (out, err) = run(prompt, 24, &["--temp", &temp_s, "--seed", &seed_s]);
        assert_eq!(
            out,
            format!("{prompt}{want}\n"),
            "--temp {temp} --seed {seed}"
        );
        assert!(err.contains(&format!("seed {seed}")), "{err}");
    }
}

#[test]
fn run_stops_on_every_end_of_generation_id_and_no_other() {
    let m = smollm2();
    let eog = tokenizer(&m).end_of_generation_ids();
    // The file's EOS (llama.cpp's golden records it: 2, `<|im_end|>`) is among them.
    let eos = golden()["model"]["eos"].as_u64().expect("eos") as u32;
    assert!(eog.contains(&eos), "{eog:?}");
    for id in &eog {
        // +100 forces the token (OpenAI's semantics): the first token ends the output.
        let (out, err) = run(
            "Hello",
            8,
            &["--temp", "0", "--logit-bias", &format!("{id}+100")],
        );
        assert_eq!(out, "Hello\n", "token {id} did not end the output");
        assert!(err.contains("generated: 1 tokens"), "token {id}: {err}");
    }
    // A forced ordinary token (81 is "a" in the reference tokenizer's golden) does not stop.
    assert!(!eog.contains(&81));
    let (out, err) = run("Hello", 8, &["--temp", "0", "--logit-bias", "81+100"]);
    assert_eq!(out, "Helloaaaaaaaa\n");
    assert!(err.contains("generated: 8 tokens"), "{err}");
    // The engine says the same: a forced end-of-generation id is a `stop`.
    let (text, reason) = generate(
        &m,
        tokenizer(&m).encode_with_bos_eos("Hello", false),
        kaiyuan_engine::sampling::SamplingParams {
            logit_bias: kaiyuan_engine::sampling::LogitBias::new([(eos, 100.0)]).unwrap(),
            ..cli_sampling(0.0, 1)
        },
        8,
    );
    assert_eq!((text.as_str(), reason), ("", FinishReason::Stop));
}

#[test]
fn bad_run_arguments_are_clear_errors() {
    let m = smollm2();
    let base = ["run", "-m", &m, "-p", "Hi", "-t", "1"];
    let with = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        kaiyuan(&a)
    };
    assert_clean_error(&with(&["-n", "0"]), "-n 0");
    assert_clean_error(&with(&["--logit-bias", "2*3"]), "ID+BIAS");
    assert_clean_error(&with(&["--logit-bias", "2+101"]), "logit_bias");
    assert_clean_error(&with(&["--logit-bias", "99999999+1"]), "logit_bias");
    assert_clean_error(&with(&["--logit-bias", "2+1", "-l", "2-1"]), "twice");
    assert_clean_error(&with(&["--temp", "3"]), "temperature");
}
