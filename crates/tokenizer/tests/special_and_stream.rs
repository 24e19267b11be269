//! Special-token handling (allow_special on/off, user-defined tokens always whole), decoding of
//! control tokens, streaming across split characters, and errors for bad metadata. Expected
//! ids are looked up by text in the model's own token list, not computed by our encoder.

mod support;

use kaiyuan_tokenizer::{Error, Tokenizer, Vocab};
use support::{read_vocab, GEMMA3, SMOLLM2};

fn id_of(v: &Vocab, text: &str) -> u32 {
    v.tokens
        .iter()
        .position(|t| t == text)
        .unwrap_or_else(|| panic!("{text:?} not in vocab")) as u32
}

#[test]
fn control_tokens_only_when_allowed() {
    let v = read_vocab(SMOLLM2);
    let tok = Tokenizer::from_vocab(&v).unwrap();
    let (start, end) = (id_of(&v, "<|im_start|>"), id_of(&v, "<|im_end|>"));
    let text = "<|im_start|>user\nI wrote <|im_end|> myself<|im_end|>";
    let allowed = tok.encode(text, true);
    assert_eq!(allowed.first(), Some(&start));
    assert_eq!(allowed.last(), Some(&end));
    assert_eq!(allowed.iter().filter(|&&i| i == end).count(), 2);
    let plain = tok.encode(text, false);
    assert!(
        !plain.contains(&start) && !plain.contains(&end),
        "{plain:?}"
    );
    // The literal characters survive as text.
    assert_eq!(tok.decode(&plain, false).unwrap(), text);
    // Control tokens are hidden in decoded text unless asked for.
    assert_eq!(
        tok.decode(&allowed, false).unwrap(),
        "user\nI wrote  myself"
    );
    assert_eq!(tok.decode(&allowed, true).unwrap(), text);
}

#[test]
fn gemma_user_defined_tokens_always_whole() {
    let v = read_vocab(GEMMA3);
    let tok = Tokenizer::from_vocab(&v).unwrap();
    let (table, turn) = (id_of(&v, "<table>"), id_of(&v, "<start_of_turn>"));
    for allow in [false, true] {
        assert_eq!(tok.encode("<table>", allow), [table]);
        assert_eq!(tok.encode("\n\n\n", allow), [id_of(&v, "\n\n\n")]);
        assert_eq!(tok.encode("    ", allow), [id_of(&v, "    ")]);
    }
    assert_eq!(tok.encode("<start_of_turn>", true), [turn]);
    assert_ne!(tok.encode("<start_of_turn>", false), [turn]);
    let bos = v.bos_id.unwrap();
    assert_eq!(tok.encode_with_bos_eos("<table>", false), [bos, table]);
}

#[test]
fn stream_holds_back_split_characters() {
    let v = read_vocab(SMOLLM2);
    let tok = Tokenizer::from_vocab(&v).unwrap();
    // In a byte-level vocabulary an emoji's 4 UTF-8 bytes span several tokens.
    let ids = tok.encode("a😀b", false);
    assert!(ids.len() >= 4, "{ids:?}");
    let mut s = tok.stream_decoder(false);
    let parts: Vec<String> = ids.iter().map(|&i| s.push(i).unwrap()).collect();
    assert_eq!(parts.concat(), "a😀b");
    for p in &parts {
        assert!(
            p.is_empty() || p == "a" || p == "b" || p.contains('😀'),
            "{parts:?}"
        );
    }
    assert_eq!(s.finish(), "");
    // A stream cut inside a character ends with one replacement character.
    let mut s = tok.stream_decoder(false);
    let emoji = tok.encode("😀", false);
    let mut out = String::new();
    for &i in &emoji[..emoji.len() - 1] {
        out.push_str(&s.push(i).unwrap());
    }
    assert_eq!(out, "");
    assert_eq!(s.finish(), "\u{FFFD}");
}

#[test]
fn gemma_byte_fallback_stream() {
    let v = read_vocab(GEMMA3);
    let tok = Tokenizer::from_vocab(&v).unwrap();
    // U+10FFFD (private use) is not a Gemma token: it falls back to 4 byte tokens.
    let ids = tok.encode("\u{10FFFD}", false);
    let bytes: Vec<u32> = "\u{10FFFD}"
        .bytes()
        .map(|b| id_of(&v, &format!("<0x{b:02X}>")))
        .collect();
    assert_eq!(ids, bytes);
    let mut s = tok.stream_decoder(false);
    let parts: Vec<String> = ids.iter().map(|&i| s.push(i).unwrap()).collect();
    assert_eq!(parts, ["", "", "", "\u{10FFFD}"]);
}

#[test]
fn bad_metadata_and_ids_are_errors() {
    let mut v = read_vocab(SMOLLM2);
    v.pre = Some("mystery".into());
    let e = Tokenizer::from_vocab(&v).err().unwrap();
    assert_eq!(e, Error::UnknownPreTokenizer("mystery".into()));
    assert!(e.to_string().contains("mystery"));
    v.pre = None;
    assert!(matches!(
        Tokenizer::from_vocab(&v),
        Err(Error::UnknownPreTokenizer(_))
    ));
    v.pre = Some("smollm".into());
    v.model = "wordpiece".into();
    assert_eq!(
        Tokenizer::from_vocab(&v).err(),
        Some(Error::UnknownModel("wordpiece".into()))
    );
    v.model = "gpt2".into();
    v.token_types.pop();
    assert!(matches!(
        Tokenizer::from_vocab(&v),
        Err(Error::InvalidVocab(_))
    ));
    let tok = Tokenizer::from_vocab(&read_vocab(SMOLLM2)).unwrap();
    let n = tok.vocab_size() as u32;
    assert_eq!(
        tok.decode(&[n], false),
        Err(Error::TokenOutOfRange {
            id: n,
            vocab_size: n as usize
        })
    );
}

#[test]
fn stop_string_found_across_streamed_tokens() {
    use kaiyuan_tokenizer::{StopEvent, StopFilter};
    let v = read_vocab(SMOLLM2);
    let tok = Tokenizer::from_vocab(&v).unwrap();
    // Generated text that writes a stop marker as plain text, split over several tokens.
    let text = "The answer is 42.\n\nUser: and more";
    let ids = tok.encode(text, false);
    let mut dec = tok.stream_decoder(false);
    let mut stop = StopFilter::new(&["\n\nUser:"]);
    let mut shown = String::new();
    let mut stopped = None;
    for &id in &ids {
        match stop.push(&dec.push(id).unwrap()) {
            StopEvent::Text(t) => shown.push_str(&t),
            StopEvent::Stopped { text, stop } => {
                shown.push_str(&text);
                stopped = Some(stop);
                break;
            }
        }
    }
    assert_eq!(stopped, Some(0));
    assert_eq!(shown, "The answer is 42.");
}

#[test]
fn tokenizer_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Tokenizer>();
}

#[test]
fn bos_defaults_when_metadata_is_silent() {
    // llama.cpp's defaults: SentencePiece and Llama 3 style vocabularies add BOS, others not.
    let mut v = read_vocab(SMOLLM2);
    v.add_bos = None;
    assert!(!Tokenizer::from_vocab(&v).unwrap().add_bos());
    v.pre = Some("llama-bpe".into());
    assert!(Tokenizer::from_vocab(&v).unwrap().add_bos());
    let mut g = read_vocab(GEMMA3);
    g.add_bos = None;
    assert!(Tokenizer::from_vocab(&g).unwrap().add_bos());
    g.add_bos = Some(false);
    assert!(!Tokenizer::from_vocab(&g).unwrap().add_bos());
}
