//! `kaiyuan chat` driven through a pipe on the real models: it answers, keeps the
//! conversation and reuses the KV cache across turns, `/reset` clears, `/exit` and end of
//! input quit with status 0, multi-line input reaches the model as one message, an
//! overflowing conversation is refused with both numbers, and bad arguments are clear
//! errors. Replies come from the engine: a greedy reply equals the engine's for the shown
//! prompt, and a reply ends on every end-of-generation id. The rendered prompts come from
//! `--show-prompt` (stderr). No timings are asserted.

mod common;

use common::engine::{cli_sampling, generate, tokenizer};
use common::{assert_clean_error, kaiyuan, kaiyuan_with_stdin, smollm2, stderr, stdout};

/// The engine's KV block size: its prefix cache reuses whole blocks.
const BLOCK_TOKENS: usize = 16;

/// A prompt `--show-prompt` printed: its text and counts.
#[derive(Debug)]
struct Shown {
    text: String,
    tokens: usize,
    reused: usize,
}

fn prompts(stderr: &str) -> Vec<Shown> {
    let mut out = Vec::new();
    let mut rest = stderr;
    while let Some(start) = rest.find("--- prompt: ") {
        let after = &rest[start + "--- prompt: ".len()..];
        let header_end = after.find(" ---\n").expect("prompt header");
        let header = &after[..header_end];
        let numbers: Vec<usize> = header
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        let body = &after[header_end + " ---\n".len()..];
        let end = body.find("\n--- end of prompt ---").expect("prompt end");
        out.push(Shown {
            text: body[..end].to_string(),
            tokens: numbers[0],
            reused: numbers[1],
        });
        rest = &body[end..];
    }
    out
}

fn chat(extra: &[&str], input: &str) -> std::process::Output {
    let m = smollm2();
    let mut args = vec!["chat", "-m", &m, "--temp", "0", "-t", "2", "--show-prompt"];
    args.extend_from_slice(extra);
    if !extra.contains(&"-n") {
        args.extend_from_slice(&["-n", "16"]);
    }
    let out = kaiyuan_with_stdin(&args, input);
    assert!(out.status.success(), "chat failed: {}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    out
}

#[test]
fn answers_keeps_the_conversation_and_resets() {
    let out = chat(
        &[],
        "What is the capital of France?\nAnd of Italy?\n/reset\nWhat is the capital of France?\n/exit\nnever sent\n",
    );
    let err = stderr(&out);
    let shown = prompts(&err);
    assert_eq!(shown.len(), 3, "{err}");
    // The second turn sees the first question and its answer, reusing the cached prefix:
    // every full block of the first prompt at least (the prefix cache works in blocks).
    assert!(shown[1].text.starts_with(&shown[0].text), "{err}");
    assert_eq!(shown[1].text.matches("<|im_start|>assistant").count(), 2);
    assert_eq!(shown[1].reused % BLOCK_TOKENS, 0, "{err}");
    assert!(
        shown[1].reused >= shown[0].tokens / BLOCK_TOKENS * BLOCK_TOKENS,
        "{err}"
    );
    assert!(shown[1].reused > 0, "{err}");
    // After /reset the prompt is the first one again, and all its full blocks but one that
    // would leave nothing to evaluate are still cached (the last token is always computed).
    assert!(err.contains("(conversation cleared)"));
    assert_eq!(shown[2].text, shown[0].text);
    assert_eq!(
        shown[2].reused,
        (shown[2].tokens - 1) / BLOCK_TOKENS * BLOCK_TOKENS,
        "{err}"
    );
    assert!(!err.contains("never sent"));
    // Three replies on stdout (one line each at least), with some text.
    let text = stdout(&out);
    assert!(text.trim().len() > 10, "no answer: {text:?}");
    assert!(text.lines().count() >= 3, "{text:?}");
}

#[test]
fn multi_line_input_is_one_message() {
    let out = chat(
        &["--system", "Be brief."],
        "\"\"\"\nfirst line\n/not a command\n\"\"\"\nthird \\\nfourth\n",
    );
    let err = stderr(&out);
    let shown = prompts(&err);
    assert_eq!(shown.len(), 2, "{err}");
    assert!(shown[0]
        .text
        .contains("<|im_start|>system\nBe brief.<|im_end|>"));
    assert_eq!(shown[0].text.matches("<|im_start|>user").count(), 1);
    assert!(
        shown[0]
            .text
            .contains("<|im_start|>user\nfirst line\n/not a command<|im_end|>"),
        "{}",
        shown[0].text
    );
    assert_eq!(shown[1].text.matches("<|im_start|>user").count(), 2);
    assert!(shown[1]
        .text
        .contains("<|im_start|>user\nthird \nfourth<|im_end|>"));
    assert!(!err.contains("unknown command"));
}

#[test]
fn end_of_input_quits_cleanly_and_commands_are_checked() {
    let out = chat(&[], "/help\n/frobnicate\nHi\n");
    let err = stderr(&out);
    assert!(err.contains("/reset"), "{err}");
    assert!(err.contains("unknown command /frobnicate"), "{err}");
    assert_eq!(prompts(&err).len(), 1);
    // Empty input: nothing to do, still status 0.
    let out = chat(&[], "");
    assert!(prompts(&stderr(&out)).is_empty());
}

#[test]
fn an_overflowing_conversation_is_refused_with_both_numbers() {
    let long = "word ".repeat(80);
    let out = chat(&["--ctx", "64"], &format!("{long}\nHi\n/exit\n"));
    let err = stderr(&out);
    assert!(err.contains("but the context holds 64"), "{err}");
    assert!(err.contains("/reset"), "{err}");
    // The refused message was dropped: the next turn starts without it.
    let shown = prompts(&err);
    assert_eq!(shown.len(), 1, "{err}");
    assert!(!shown[0].text.contains("word word"));
}

#[test]
fn a_reply_that_fills_the_context_stops_and_says_so() {
    // The default system prompt and this message take 36 tokens; 42 leaves a few for the reply.
    let out = chat(&["--ctx", "42", "-n", "64"], "Tell me a long story.\n");
    let err = stderr(&out);
    assert!(
        err.contains("context is full") && err.contains("holds 42"),
        "{err}"
    );
}

#[test]
fn a_greedy_reply_equals_the_engine_for_the_shown_prompt() {
    let out = chat(&["-n", "24"], "What is the capital of France?\n");
    let err = stderr(&out);
    let shown = prompts(&err);
    assert_eq!(shown.len(), 1, "{err}");
    // The rendered prompt has no control-token text in the message, so encoding it whole
    // with control tokens recognised gives the ids the server would feed the model.
    let m = smollm2();
    let ids = tokenizer(&m).encode_with_bos_eos(&shown[0].text, true);
    assert_eq!(ids.len(), shown[0].tokens);
    let (want, _) = generate(&m, ids, cli_sampling(0.0, 0), 24);
    assert_eq!(stdout(&out), format!("{want}\n"));
}

#[test]
fn a_reply_ends_on_every_end_of_generation_id() {
    let m = smollm2();
    for id in tokenizer(&m).end_of_generation_ids() {
        let bias = format!("{id}+100");
        let out = chat(&["--logit-bias", &bias], "Hi\nHi again\n");
        let err = stderr(&out);
        assert_eq!(prompts(&err).len(), 2, "{err}");
        assert_eq!(stdout(&out), "\n\n", "token {id}: {err}");
        assert!(!err.contains("stopped at -n"), "token {id}: {err}");
        assert!(err.contains("reply: 1 tokens"), "token {id}: {err}");
    }
    // An ordinary token forced runs to -n.
    let out = chat(&["--logit-bias", "81+100", "-n", "4"], "Hi\n");
    assert_eq!(stdout(&out), "aaaa\n");
    assert!(stderr(&out).contains("stopped at -n 4 tokens"));
}

#[test]
fn gemma_chat_uses_its_template() {
    let m = common::gemma3();
    let out = kaiyuan_with_stdin(
        &[
            "chat",
            "-m",
            &m,
            "--temp",
            "0",
            "-n",
            "4",
            "-t",
            "2",
            "--show-prompt",
        ],
        "Hello\n",
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let shown = prompts(&err);
    assert_eq!(shown.len(), 1);
    assert!(
        shown[0]
            .text
            .ends_with("<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n"),
        "{}",
        shown[0].text
    );
    // BOS once: the template writes it, so the tokenizer must not add another
    // (<bos> <start_of_turn> user \n Hello <end_of_turn> \n <start_of_turn> model \n).
    assert_eq!(shown[0].tokens, 10, "{err}");
}

/// A fixture template of the e2e suite.
fn fixture_template(name: &str) -> String {
    format!(
        "{}/../../tests/e2e/templates/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn thinking_switch_reaches_the_template() {
    // Hy3-style: thinking is `reasoning_effort`, the tags `<think:x>` built with .format().
    let effort = fixture_template("effort-chatml.jinja");
    let on = chat(&["--chat-template-file", &effort], "Hi\n");
    let shown = prompts(&stderr(&on));
    assert!(
        shown[0].text.contains("reasoning_effort: high"),
        "{}",
        shown[0].text
    );
    assert!(shown[0].text.ends_with("<|im_start|>assistant\n<think:x>"));
    // The prompt left the template's own block open: the reply is reasoning.
    assert!(stdout(&on).starts_with("[thinking]"), "{}", stdout(&on));
    let off = chat(
        &["--chat-template-file", &effort, "--thinking", "off"],
        "Hi\n",
    );
    let shown = prompts(&stderr(&off));
    assert!(shown[0].text.contains("reasoning_effort: no_think"));
    assert!(shown[0].text.ends_with("<think:x></think:x>\n\n"));
    assert!(!stdout(&off).contains("[thinking]"), "{}", stdout(&off));

    // Qwen3-style: `enable_thinking`.
    let flag = fixture_template("thinking-chatml.jinja");
    let on = chat(&["--chat-template-file", &flag], "Hi\n");
    assert!(prompts(&stderr(&on))[0]
        .text
        .ends_with("assistant\n<think>\n"));
    let off = chat(
        &["--chat-template-file", &flag, "--thinking", "off"],
        "Hi\n",
    );
    assert!(prompts(&stderr(&off))[0]
        .text
        .ends_with("assistant\n<think>\n\n</think>\n\n"));
}

#[test]
fn bad_arguments_are_clear_errors() {
    assert_clean_error(
        &kaiyuan(&["chat", "-m", "/no/such/model.gguf"]),
        "/no/such/model.gguf",
    );
    let m = smollm2();
    assert_clean_error(&kaiyuan(&["chat", "-m", &m, "-n", "0"]), "-n 0");
    assert_clean_error(
        &kaiyuan(&["chat", "-m", &m, "--chat-template", "nope"]),
        "chatml, llama3, gemma",
    );
    assert_clean_error(&kaiyuan(&["chat", "-m", &m, "--temp", "3"]), "temperature");
    assert_clean_error(
        &kaiyuan(&["chat", "-m", &m, "--chat-template-file", "/no/such.jinja"]),
        "/no/such.jinja",
    );
    assert_clean_error(
        &kaiyuan(&[
            "chat",
            "-m",
            &m,
            "--chat-template",
            "chatml",
            "--chat-template-file",
            "x.jinja",
        ]),
        "cannot be used with",
    );
    assert_clean_error(&kaiyuan(&["chat", "-m", &m, "--thinking", "maybe"]), "on");
}
