//! Our forward pass against llama.cpp on the real test models (goldens made by
//! `tools/llamacpp_golden.py` with llama-cpp-python 0.3.36; rules and the measured
//! llama.cpp-vs-llama.cpp spread in `testdata/golden/llamacpp/README.md`).
//!
//! llama.cpp disagrees with itself between its kernel paths (batched vs one token at a
//! time, flash attention or not) by a median of 4–5% of the logits' standard deviation and
//! up to 21% (SmolLM2) / 69% (Gemma 3) at single positions, and its greedy continuations
//! flip at near-ties. So: prompt logits are compared by the centred RMS difference over the
//! stored vocabulary subset (a uniform shift does not change probabilities) with bounds on
//! the median, 90th percentile and maximum; greedy tokens must equal llama.cpp's up to the
//! end, or up to a step where llama.cpp's own top-2 logits are within `margin` and we chose
//! its runner-up or a token within `margin` of its choice in our logits (a near-tie, where
//! the check stops), and enough steps must be compared (a floor per model, at least one
//! step per prompt); perplexity must be within 1%.

mod common;

use common::repo_root;
use kaiyuan_kernels::threads::ThreadPool;
use kaiyuan_model::{perplexity, Model, Session};
use serde_json::Value;

struct Case {
    file: &'static str,
    /// Near-tie margin for greedy steps and top-1 checks (README: "proposed test rules").
    margin: f32,
    /// Largest centred RMS/std allowed at any single prompt position.
    max_position_rms: f64,
    /// Fewest greedy steps that must be compared over all prompts (the check stops at the
    /// first near-tie divergence, so without a floor it could compare almost nothing and
    /// pass). Measured: SmolLM2 163 (AVX2) / 234 (scalar), Gemma 3 228 / 282, of 11 × 64.
    min_greedy_steps: usize,
}

const SMOLLM2: Case = Case {
    file: "SmolLM2-135M-Instruct.Q4_1.gguf",
    margin: 0.5,
    max_position_rms: 0.35,
    min_greedy_steps: 100,
};
const GEMMA3: Case = Case {
    file: "gemma-3-270m-q4_k_m.gguf",
    margin: 1.0,
    max_position_rms: 1.0,
    min_greedy_steps: 140,
};

fn load(case: &Case) -> Model {
    let path = repo_root().join("models").join(case.file);
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-models",
        path.display()
    );
    Model::open(&path).expect("model opens")
}

fn golden(case: &Case, kind: &str) -> Value {
    let stem = case.file.trim_end_matches(".gguf");
    let path = repo_root().join(format!("testdata/golden/llamacpp/{stem}.{kind}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("golden file")).expect("JSON")
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

fn f(v: &Value) -> f64 {
    v.as_f64().expect("number")
}

fn argmax(row: &[f32]) -> usize {
    (0..row.len())
        .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
        .expect("row")
}

fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn prompt_logits(case: &Case) {
    let model = load(case);
    let vocab = model.config().vocab_size;
    let pool = ThreadPool::new(2);
    let g = golden(case, "greedy");
    let subset = ids(&g["subset_ids"]);
    let mut rms = Vec::new();
    let mut top1_misses = Vec::new();
    for p in g["prompts"].as_array().expect("prompts") {
        let tokens = ids(&p["prompt_tokens"]);
        let mut s = Session::new(&model, tokens.len());
        let ours = s.eval(&pool, &tokens, true).expect("prefill");
        for (pos, r) in p["prompt_logits"]
            .as_array()
            .expect("rows")
            .iter()
            .enumerate()
        {
            let row = &ours[pos * vocab..(pos + 1) * vocab];
            // Compare on the stored subset plus the reference's top 16.
            let mut pairs: Vec<(f64, f64)> = subset
                .iter()
                .zip(r["subset_logits"].as_array().expect("subset"))
                .map(|(&id, want)| (f64::from(row[id as usize]), f(want)))
                .collect();
            for (id, want) in ids(&r["top_ids"])
                .iter()
                .zip(r["top_logits"].as_array().unwrap())
            {
                pairs.push((f64::from(row[*id as usize]), f(want)));
            }
            let n = pairs.len() as f64;
            let shift = pairs.iter().map(|(a, b)| a - b).sum::<f64>() / n;
            let centred = (pairs
                .iter()
                .map(|(a, b)| (a - b - shift).powi(2))
                .sum::<f64>()
                / n)
                .sqrt();
            let ratio = centred / f(&r["std"]);
            assert!(
                ratio <= case.max_position_rms,
                "{} prompt {} position {pos}: centred RMS difference {ratio:.3} of std",
                case.file,
                p["name"]
            );
            rms.push(ratio);
            let top = r["top_logits"].as_array().unwrap();
            let ref_gap = (f(&top[0]) - f(&top[1])) as f32;
            let ref_top = ids(&r["top_ids"])[0] as usize;
            if argmax(row) != ref_top && ref_gap >= case.margin {
                top1_misses.push(format!("{} @{pos} (reference gap {ref_gap:.2})", p["name"]));
            }
        }
    }
    let (median, p90, max) = (
        quantile(rms.clone(), 0.5),
        quantile(rms.clone(), 0.9),
        quantile(rms, 1.0),
    );
    eprintln!(
        "{}: centred RMS/std median {median:.3}, p90 {p90:.3}, max {max:.3}",
        case.file
    );
    assert!(
        median <= 0.08 && p90 <= 0.16,
        "{}: median {median:.3}, p90 {p90:.3}",
        case.file
    );
    assert!(
        top1_misses.is_empty(),
        "{}: top-1 differs outside near-ties: {top1_misses:?}",
        case.file
    );
}

fn greedy(case: &Case) {
    let model = load(case);
    let vocab = model.config().vocab_size;
    let pool = ThreadPool::new(2);
    let g = golden(case, "greedy");
    let mut to_the_end = 0;
    let mut compared_total = 0;
    let mut per_prompt = Vec::new();
    let mut per_prompt_steps = Vec::new();
    let prompts = g["prompts"].as_array().expect("prompts");
    for p in prompts {
        let tokens = ids(&p["prompt_tokens"]);
        let want = ids(&p["generated"]);
        let top2 = p["top2"].as_array().expect("top2");
        let mut s = Session::new(&model, tokens.len() + want.len());
        let mut logits = s.eval(&pool, &tokens, false).expect("prefill");
        let mut matched = true;
        let mut compared = 0;
        for (step, &expected) in want.iter().enumerate() {
            let row = &logits[..vocab];
            let ours = argmax(row) as u32;
            compared += 1;
            if ours != expected {
                let t = top2[step].as_array().expect("row");
                let ref_gap = (f(&t[1]) - f(&t[3])) as f32;
                let runner_up = t[2].as_u64().expect("id") as u32;
                let our_gap = row[ours as usize] - row[expected as usize];
                // A near-tie in llama.cpp, and we picked its runner-up or a token we too
                // hold within the margin of llama.cpp's choice.
                assert!(
                    ref_gap < case.margin && (ours == runner_up || our_gap < case.margin),
                    "{} prompt {} step {step}: we chose {ours}, llama.cpp {expected} \
                     (runner-up {runner_up}); llama.cpp's top-2 gap {ref_gap:.3}, ours \
                     {our_gap:.3} (margin {})",
                    case.file,
                    p["name"],
                    case.margin
                );
                eprintln!(
                    "{} prompt {}: near-tie at step {step} (gaps {ref_gap:.3} / {our_gap:.3}); check stops",
                    case.file, p["name"]
                );
                matched = false;
                break;
            }
            logits = s.eval(&pool, &[expected], false).expect("decode");
        }
        to_the_end += usize::from(matched);
        compared_total += compared;
        per_prompt_steps.push(compared);
        per_prompt.push(format!("{} {compared}/{}", p["name"], want.len()));
    }
    eprintln!("{}: greedy steps compared: {per_prompt:?}", case.file);
    // Floors, so that the test cannot pass by comparing (almost) nothing: every prompt of
    // the golden file, each with a non-empty continuation, at least one step each, and
    // `min_greedy_steps` steps in all.
    assert!(
        prompts.len() >= 10,
        "{}: only {} greedy prompts in the golden file",
        case.file,
        prompts.len()
    );
    assert!(
        per_prompt_steps.iter().all(|&n| n >= 1),
        "{}: a prompt compared no greedy step: {per_prompt:?}",
        case.file
    );
    assert!(
        compared_total >= case.min_greedy_steps,
        "{}: only {compared_total} greedy steps compared (at least {} expected): {per_prompt:?}",
        case.file,
        case.min_greedy_steps
    );
    eprintln!(
        "{}: {to_the_end} of {} prompts match llama.cpp to the end",
        case.file,
        prompts.len()
    );
}

fn ppl(case: &Case) {
    let model = load(case);
    let g = golden(case, "ppl");
    let tokens = ids(&g["tokens"]);
    let n_ctx = g["n_ctx"].as_u64().expect("n_ctx") as usize;
    let bos = if g["add_bos"].as_bool().expect("add_bos") {
        Some(tokens[0])
    } else {
        None
    };
    let ours = perplexity(&model, &ThreadPool::new(2), &tokens, n_ctx, bos).expect("perplexity");
    let want = f(&g["ppl"]);
    eprintln!(
        "{}: perplexity {:.4}, llama.cpp {want:.4}",
        case.file, ours.ppl
    );
    assert_eq!(
        ours.window_mean_nll.len() as u64,
        g["n_chunks"].as_u64().unwrap()
    );
    assert!(
        (ours.ppl / want - 1.0).abs() <= 0.01,
        "{}: perplexity {:.4} vs llama.cpp {want:.4}",
        case.file,
        ours.ppl
    );
}

#[test]
fn smollm2_prompt_logits_match_llamacpp() {
    prompt_logits(&SMOLLM2);
}

#[test]
fn gemma3_prompt_logits_match_llamacpp() {
    prompt_logits(&GEMMA3);
}

#[test]
fn smollm2_greedy_matches_llamacpp() {
    greedy(&SMOLLM2);
}

#[test]
fn gemma3_greedy_matches_llamacpp() {
    greedy(&GEMMA3);
}

#[test]
fn smollm2_perplexity_within_1_percent_of_llamacpp() {
    ppl(&SMOLLM2);
}

#[test]
fn gemma3_perplexity_within_1_percent_of_llamacpp() {
    ppl(&GEMMA3);
}
