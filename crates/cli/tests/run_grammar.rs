//! `kaiyuan run --json-schema FILE` and `--grammar FILE` on SmolLM2: the continuation is the
//! constrained output (valid JSON with the schema's keys; a Lark sentence), and a schema
//! that does not compile or a missing file is a clean error.

mod common;

use common::{assert_clean_error, kaiyuan, smollm2, stdout};

fn write(name: &str, text: &str) -> String {
    let path =
        std::env::temp_dir().join(format!("kaiyuan-run-grammar-{}-{name}", std::process::id()));
    std::fs::write(&path, text).expect("write temp file");
    path.to_string_lossy().into_owned()
}

#[test]
fn json_schema_constrains_the_continuation() {
    let schema = write(
        "person.json",
        r#"{"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
            "age": {"type": "integer", "minimum": 0, "maximum": 120}},
            "required": ["name", "age"], "additionalProperties": false}"#,
    );
    let m = smollm2();
    let out = kaiyuan(&[
        "run",
        "-m",
        &m,
        "-p",
        "A person:",
        "-n",
        "80",
        "--temp",
        "0.8",
        "--seed",
        "4",
        "-t",
        "1",
        "--json-schema",
        &schema,
    ]);
    assert!(out.status.success());
    let text = stdout(&out);
    let json = text
        .strip_prefix("A person:")
        .expect("the prompt first")
        .trim_end();
    let v: serde_json::Value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json:?}"));
    let age = v["age"].as_i64().expect("an integer age");
    assert!((0..=120).contains(&age));
    assert!(v["name"].as_str().expect("a string name").chars().count() <= 20);
    assert_eq!(v.as_object().unwrap().len(), 2);
}

#[test]
fn lark_grammar_constrains_the_continuation() {
    let g = write(
        "yes-no.lark",
        "start: \"The answer is \" (\"yes\" | \"no\") \".\"\n",
    );
    let m = smollm2();
    let out = kaiyuan(&[
        "run",
        "-m",
        &m,
        "-p",
        "Q: Is the sky blue?",
        "-n",
        "30",
        "-t",
        "1",
        "--grammar",
        &g,
    ]);
    assert!(out.status.success());
    let text = stdout(&out);
    let answer = text.strip_prefix("Q: Is the sky blue?").unwrap().trim_end();
    assert!(
        answer == "The answer is yes." || answer == "The answer is no.",
        "{answer:?}"
    );
}

#[test]
fn bad_grammars_are_clean_errors() {
    let m = smollm2();
    let bad = write("bad.json", r#"{"type": 5}"#);
    assert_clean_error(
        &kaiyuan(&["run", "-m", &m, "-p", "x", "--json-schema", &bad]),
        "invalid --json-schema",
    );
    let not_json = write("not.json", "{type: object");
    assert_clean_error(
        &kaiyuan(&["run", "-m", &m, "-p", "x", "--json-schema", &not_json]),
        "is not JSON",
    );
    assert_clean_error(
        &kaiyuan(&[
            "run",
            "-m",
            &m,
            "-p",
            "x",
            "--grammar",
            "/nonexistent/g.lark",
        ]),
        "cannot read --grammar",
    );
    let lark = write("bad.lark", "start: missing");
    assert_clean_error(
        &kaiyuan(&["run", "-m", &m, "-p", "x", "--grammar", &lark]),
        "invalid --grammar",
    );
}
