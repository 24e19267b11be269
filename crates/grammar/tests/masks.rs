//! Masks of small grammars over a hand-made vocabulary, checked by hand: which token ids
//! each step allows, how a grammar ends, and which grammars are refused.

use std::sync::Arc;

use kaiyuan_grammar::{GrammarError, GrammarSpec, GrammarVocab, TokenMask, MAX_SPEC_BYTES};
use kaiyuan_tokenizer::{Tokenizer, Vocab};
use serde_json::json;

// A SentencePiece-style vocabulary. Token types: 1 normal, 2 unknown, 3 control, 6 byte.
const TOKENS: [(&str, i32); 20] = [
    ("<unk>", 2),      // 0
    ("<s>", 3),        // 1
    ("</s>", 3),       // 2: end of generation
    ("<0x0A>", 6),     // 3: "\n"
    ("{", 1),          // 4
    ("}", 1),          // 5
    ("\"", 1),         // 6
    ("a", 1),          // 7
    ("b", 1),          // 8
    ("ab", 1),         // 9
    (":", 1),          // 10
    (",", 1),          // 11
    ("1", 1),          // 12
    ("2", 1),          // 13
    ("\u{2581}", 1),   // 14: " "
    ("\"a\"", 1),      // 15
    ("<|im_end|>", 3), // 16
    ("x", 1),          // 17
    ("[", 1),          // 18
    ("]", 1),          // 19
];
const EOS: u32 = 2;

fn vocab() -> GrammarVocab {
    let v = Vocab {
        model: "llama".into(),
        tokens: TOKENS.iter().map(|(t, _)| t.to_string()).collect(),
        token_types: TOKENS.iter().map(|&(_, ty)| ty).collect(),
        scores: (0..TOKENS.len()).map(|i| -(i as f32)).collect(),
        bos_id: Some(1),
        eos_id: Some(EOS),
        unk_id: Some(0),
        add_space_prefix: Some(false),
        ..Vocab::default()
    };
    let tok = Arc::new(Tokenizer::from_vocab(&v).expect("tiny vocabulary"));
    GrammarVocab::new(tok, &[EOS]).expect("vocabulary prepared")
}

fn allowed(mask: &TokenMask) -> Vec<u32> {
    (0..TOKENS.len() as u32)
        .filter(|&t| mask.allows(t))
        .collect()
}

#[test]
fn regex_steps_allow_exactly_the_prefixes() {
    let v = vocab();
    let mut c = v
        .compile(&GrammarSpec::Regex("ab|b1".into()))
        .expect("compiles");
    // "a" and "ab" start "ab"; "b" starts "b1".
    assert_eq!(allowed(&c.compute_mask().unwrap()), vec![7, 8, 9]);
    c.commit(7).unwrap();
    assert_eq!(allowed(&c.compute_mask().unwrap()), vec![8]);
    c.commit(8).unwrap();
    // "ab" is complete and nothing may follow.
    assert!(c.is_finished());
    assert_eq!(allowed(&c.compute_mask().unwrap()), vec![EOS]);
}

#[test]
fn a_complete_output_that_may_go_on_allows_the_end_and_more() {
    let v = vocab();
    let mut c = v.compile(&GrammarSpec::Regex("1+".into())).unwrap();
    assert_eq!(allowed(&c.compute_mask().unwrap()), vec![12]);
    c.commit(12).unwrap();
    assert!(!c.is_finished());
    assert_eq!(allowed(&c.compute_mask().unwrap()), vec![EOS, 12]);
}

#[test]
fn json_schema_object_with_one_required_integer() {
    let v = vocab();
    let schema = json!({
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "required": ["a"],
        "additionalProperties": false
    });
    let mut c = v
        .compile(&GrammarSpec::JsonSchema {
            schema,
            strict: true,
        })
        .unwrap();
    // No leading whitespace: only "{".
    assert_eq!(allowed(&c.compute_mask().unwrap()), vec![4]);
    c.commit(4).unwrap();
    // The only key is "a", so `"a": ` is forced, and forced text is allowed only as the
    // tokenizer would write it: this vocabulary has no merge into `"a"` (15), so `"`, `a`,
    // `"`, `:`, ` `, one token at a time.
    for token in [6, 7, 6] {
        assert_eq!(allowed(&c.compute_mask().unwrap()), vec![token]);
        c.commit(token).unwrap();
    }
    assert_eq!(allowed(&c.compute_mask().unwrap()), vec![10]);
    c.commit(10).unwrap();
    // The key separator is ": ".
    assert_eq!(allowed(&c.compute_mask().unwrap()), vec![14]);
    c.commit(14).unwrap();
    assert_eq!(allowed(&c.compute_mask().unwrap()), vec![12, 13]);
    c.commit(12).unwrap();
    // More digits or the end of the object.
    assert_eq!(allowed(&c.compute_mask().unwrap()), vec![5, 12, 13]);
    c.commit(5).unwrap();
    assert_eq!(allowed(&c.compute_mask().unwrap()), vec![EOS]);
}

#[test]
fn json_object_mode_starts_with_a_brace() {
    let v = vocab();
    let mut c = v.compile(&GrammarSpec::JsonObject).unwrap();
    assert_eq!(allowed(&c.compute_mask().unwrap()), vec![4]);
    c.commit(4).unwrap();
    // An empty object or a key.
    assert_eq!(allowed(&c.compute_mask().unwrap()), vec![5, 6, 15]);
}

#[test]
fn unforced_keys_may_come_in_any_token() {
    let v = vocab();
    let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}});
    let mut c = v
        .compile(&GrammarSpec::JsonSchema {
            schema,
            strict: true,
        })
        .unwrap();
    c.commit(4).unwrap();
    // Nothing is forced after "{": `}`, `"` and the whole-key token `"a"` are allowed.
    assert_eq!(allowed(&c.compute_mask().unwrap()), vec![5, 6, 15]);
}

#[test]
fn lark_grammar_can_name_a_control_token() {
    let v = vocab();
    let mut c = v
        .compile(&GrammarSpec::Lark("start: \"x\" <|im_end|>".into()))
        .unwrap();
    assert_eq!(allowed(&c.compute_mask().unwrap()), vec![17]);
    c.commit(17).unwrap();
    assert_eq!(allowed(&c.compute_mask().unwrap()), vec![16]);
}

#[test]
fn forks_advance_independently() {
    let v = vocab();
    let mut a = v.compile(&GrammarSpec::Regex("ab|b1".into())).unwrap();
    let mut b = a.fork();
    a.compute_mask().unwrap();
    b.compute_mask().unwrap();
    a.commit(7).unwrap();
    b.commit(8).unwrap();
    assert_eq!(allowed(&a.compute_mask().unwrap()), vec![8]);
    assert_eq!(allowed(&b.compute_mask().unwrap()), vec![12]);
}

#[test]
fn mask_sets_disallowed_logits_to_negative_infinity() {
    let v = vocab();
    let mut c = v.compile(&GrammarSpec::Regex("ab|b1".into())).unwrap();
    let mask = c.compute_mask().unwrap();
    // Longer than the vocabulary: the extra entries are disallowed too.
    let mut logits = vec![1.5f32; 40];
    mask.apply(&mut logits);
    for (i, &l) in logits.iter().enumerate() {
        if [7, 8, 9].contains(&i) {
            assert_eq!(l, 1.5, "token {i}");
        } else {
            assert_eq!(l, f32::NEG_INFINITY, "token {i}");
        }
    }
    assert_eq!(mask.count(), 3);
}

fn invalid(spec: GrammarSpec) -> String {
    match vocab().compile(&spec) {
        Err(GrammarError::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn schema(schema: serde_json::Value, strict: bool) -> GrammarSpec {
    GrammarSpec::JsonSchema { schema, strict }
}

#[test]
fn bad_schemas_are_refused_with_a_message() {
    let m = invalid(schema(json!([1, 2]), false));
    assert!(m.contains("must be an object"), "{m}");
    let m = invalid(schema(json!({"type": 123}), false));
    assert!(!m.is_empty());
    let m = invalid(schema(json!({"type": "object", "required": "a"}), false));
    assert!(!m.is_empty());
    let m = invalid(schema(json!({"$ref": "#/$defs/missing"}), false));
    assert!(m.contains("missing"), "{m}");
    let m = invalid(schema(json!({"x-guidance": 3}), false));
    assert!(m.contains("x-guidance"), "{m}");
    // A schema nothing can satisfy.
    invalid(schema(json!(false), false));
}

#[test]
fn unsupported_keywords_are_refused_only_when_strict() {
    let s = json!({"type": "array", "items": {"type": "integer"}, "uniqueItems": true});
    let m = invalid(schema(s.clone(), true));
    assert!(m.contains("uniqueItems"), "{m}");
    vocab().compile(&schema(s, false)).expect("lenient");
}

#[test]
fn grammars_that_do_not_compile_are_refused() {
    invalid(GrammarSpec::Lark("start: undefined_rule".into()));
    invalid(GrammarSpec::Regex("(ab".into()));
}

#[test]
fn oversized_grammars_are_refused_before_compiling() {
    let big = "a".repeat(MAX_SPEC_BYTES + 1);
    assert_eq!(
        vocab().compile(&GrammarSpec::Regex(big)).unwrap_err(),
        GrammarError::TooLarge {
            bytes: MAX_SPEC_BYTES + 1,
            limit: MAX_SPEC_BYTES
        }
    );
}
