//! Pre-tokenizers made of several split regexes applied in sequence, each cutting every piece
//! of the previous stage into its matches and the gaps between them (Hugging Face's
//! `Split(..., "isolated")`; the regex lists llama.cpp gives for these `pre` names). Each stage
//! is a hand-written matcher tried at successive positions (leftmost match).
//!
//! DeepSeek-V3 (`deepseek-v3`, from DeepSeek-V3's tokenizer.json):
//! 1. `\p{N}{1,3}`
//! 2. `[一-龥぀-ゟ゠-ヿ]+` (CJK ideographs U+4E00..U+9FA5, hiragana, katakana)
//! 3. `[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|
//!    ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
//!
//! DeepSeek LLM 7B/67B (`deepseek-llm`, from its tokenizer.json; the character classes are
//! spelled out in [`crate::charsets`]):
//! 1. `[\r\n]`
//! 2. `\s?[A-Za-zµÀ-ÖØ-öø-ƺ...𞤀-𞥃]+` (a fixed list of cased-letter ranges)
//! 3. `\s?[!-/:-~！-／：-～‘-‟　-。]+` (ASCII punctuation *and letters*, fullwidth forms, quotes)
//! 4. `\s+$` (`$` is the end of the piece: pieces hold no `\n` by then)
//! 5. `[一-龥ࠀ-一가-퟿]+` (U+0800..U+9FA5 and U+AC00..U+D7FF)
//! 6. `\p{N}+`
//!
//! DeepSeek Coder (`deepseek-coder`, from its tokenizer.json):
//! 1. `[\r\n]`
//! 2. `\s?\p{L}+`
//! 3. `\s?\p{P}+`
//! 4. `[一-龥ࠀ-一가-퟿]+` (DeepSeek LLM's fifth regex)
//! 5. `\p{N}` (every number character alone)
//!
//! Falcon (`falcon`):
//! 1. `[\p{P}\$\+<=>\^~\|\`]+` (all ASCII punctuation and symbols, and Unicode punctuation)
//! 2. the GPT-2 regex
//! 3. `[0-9][0-9][0-9]`
//!
//! Qwen3.5 (`qwen35`, one regex, from its tokenizer.json):
//! `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}|
//!  ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
//!
//! llama.cpp's `default` for byte-level BPE:
//! 1. `[\p{P}\$\+<=>\^~\|]+`
//! 2. the GPT-2 regex `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
//! 3. `\p{N}+`
//! 4. `[0-9][0-9][0-9]`

use crate::charsets::{is_deepseek_llm_cjk, is_deepseek_llm_letter, is_deepseek_llm_punct};
use crate::unicode::{fine_classify, FineClass};

#[derive(Clone, Copy)]
pub struct FCh {
    off: usize,
    c: char,
    class: FineClass,
}

/// Returns the end of the stage's match starting at `i`, if one starts there.
type Matcher = fn(&[FCh], usize) -> Option<usize>;

/// One stage: a regex given by its matcher, or `\s+$`, which can only match a piece's
/// trailing whitespace and so is found from the end (trying it at every position would be
/// quadratic in a long whitespace run that does not end the piece).
#[derive(Clone, Copy)]
enum Stage {
    Regex(Matcher),
    TrailingSpace,
}

use Stage::{Regex, TrailingSpace};

pub fn split_deepseek_v3(text: &str, out: &mut Vec<(usize, usize)>) {
    split(
        text,
        &[Regex(numbers_1_to_3), Regex(cjk), Regex(deepseek_words)],
        out,
    )
}

pub fn split_deepseek_llm(text: &str, out: &mut Vec<(usize, usize)>) {
    split(
        text,
        &[
            Regex(newline),
            Regex(deepseek_llm_letters),
            Regex(deepseek_llm_punct),
            TrailingSpace,
            Regex(deepseek_llm_cjk),
            Regex(number_run),
        ],
        out,
    )
}

pub fn split_deepseek_coder(text: &str, out: &mut Vec<(usize, usize)>) {
    split(
        text,
        &[
            Regex(newline),
            Regex(space_then_letters),
            Regex(space_then_punctuation),
            Regex(deepseek_llm_cjk),
            Regex(one_number),
        ],
        out,
    )
}

pub fn split_falcon(text: &str, out: &mut Vec<(usize, usize)>) {
    split(
        text,
        &[
            Regex(falcon_punctuation_run),
            Regex(gpt2),
            Regex(three_ascii_digits),
        ],
        out,
    )
}

pub fn split_qwen35(text: &str, out: &mut Vec<(usize, usize)>) {
    split(text, &[Regex(qwen35_words)], out)
}

pub fn split_default(text: &str, out: &mut Vec<(usize, usize)>) {
    split(
        text,
        &[
            Regex(punctuation_run),
            Regex(gpt2),
            Regex(number_run),
            Regex(three_ascii_digits),
        ],
        out,
    )
}

fn split(text: &str, stages: &[Stage], out: &mut Vec<(usize, usize)>) {
    let chars: Vec<FCh> = text
        .char_indices()
        .map(|(off, c)| FCh {
            off,
            c,
            class: fine_classify(c),
        })
        .collect();
    let off = |i: usize| chars.get(i).map_or(text.len(), |ch| ch.off);
    // Pieces as char index ranges, refined stage by stage.
    let mut pieces = vec![(0, chars.len())];
    for &stage in stages {
        let mut next = Vec::with_capacity(pieces.len() * 2);
        for &(a, b) in &pieces {
            match stage {
                Regex(matcher) => split_isolated(&chars[..b], a, matcher, &mut next),
                TrailingSpace => {
                    let t = (a..b)
                        .rev()
                        .find(|&k| chars[k].class != FineClass::Space)
                        .map_or(a, |k| k + 1);
                    next.extend([(a, t), (t, b)].into_iter().filter(|(x, y)| x < y));
                }
            }
        }
        pieces = next;
    }
    out.extend(
        pieces
            .iter()
            .filter(|(a, b)| a < b)
            .map(|&(a, b)| (off(a), off(b))),
    );
}

/// Cuts `chars[from..]` into matches of `stage` and the gaps between them.
fn split_isolated(chars: &[FCh], from: usize, stage: Matcher, out: &mut Vec<(usize, usize)>) {
    let (mut gap, mut i) = (from, from);
    while i < chars.len() {
        match stage(chars, i) {
            Some(j) => {
                if gap < i {
                    out.push((gap, i));
                }
                out.push((i, j));
                i = j;
                gap = j;
            }
            None => i += 1,
        }
    }
    if gap < chars.len() {
        out.push((gap, chars.len()));
    }
}

fn run(chars: &[FCh], mut i: usize, pred: impl Fn(&FCh) -> bool) -> usize {
    while i < chars.len() && pred(&chars[i]) {
        i += 1;
    }
    i
}

fn numbers_1_to_3(chars: &[FCh], i: usize) -> Option<usize> {
    (chars[i].class == FineClass::Number)
        .then(|| run(chars, i, |c| c.class == FineClass::Number).min(i + 3))
}

fn is_cjk(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FA5}' | '\u{3040}'..='\u{309F}' | '\u{30A0}'..='\u{30FF}')
}

fn cjk(chars: &[FCh], i: usize) -> Option<usize> {
    is_cjk(chars[i].c).then(|| run(chars, i, |c| is_cjk(c.c)))
}

fn is_newline(c: char) -> bool {
    c == '\r' || c == '\n'
}

fn deepseek_words(chars: &[FCh], i: usize) -> Option<usize> {
    use FineClass::*;
    let ch = chars[i];
    let class_at = |k: usize| chars.get(k).map(|c| c.class);
    let letter_or_mark = |c: &FCh| matches!(c.class, Letter | Mark);
    // `[ASCII punctuation][A-Za-z]+`
    if ch.c.is_ascii_punctuation() && chars.get(i + 1).is_some_and(|c| c.c.is_ascii_alphabetic()) {
        return Some(run(chars, i + 1, |c| c.c.is_ascii_alphabetic()));
    }
    // `[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+`
    if letter_or_mark(&ch) {
        return Some(run(chars, i, letter_or_mark));
    }
    let may_lead = !is_newline(ch.c) && !matches!(ch.class, Letter | Punctuation | Symbol);
    if may_lead && matches!(class_at(i + 1), Some(Letter | Mark)) {
        return Some(run(chars, i + 1, letter_or_mark));
    }
    // ` ?[\p{P}\p{S}]+[\r\n]*`
    let punct = |c: &FCh| matches!(c.class, Punctuation | Symbol);
    let p = if ch.c == ' ' && chars.get(i + 1).is_some_and(punct) {
        i + 1
    } else {
        i
    };
    if punct(&chars[p]) {
        let j = run(chars, p, punct);
        return Some(run(chars, j, |c| is_newline(c.c)));
    }
    whitespace_tail(chars, i)
}

/// `\s*[\r\n]+|\s+(?!\S)|\s+` at `i`, the tail shared by the Llama 3 family of regexes.
fn whitespace_tail(chars: &[FCh], i: usize) -> Option<usize> {
    if chars[i].class != FineClass::Space {
        return None;
    }
    let j = run(chars, i, |c| c.class == FineClass::Space);
    if let Some(k) = (i..j).rev().find(|&k| is_newline(chars[k].c)) {
        return Some(k + 1);
    }
    Some(if j == chars.len() || j - i == 1 {
        j
    } else {
        j - 1
    })
}

/// Qwen3.5's regex (see the module doc); it matches at every position.
fn qwen35_words(chars: &[FCh], i: usize) -> Option<usize> {
    use FineClass::*;
    let ch = chars[i];
    if ch.c == '\'' {
        let lower = |k: usize| chars.get(i + k).map(|c| c.c.to_ascii_lowercase());
        match (lower(1), lower(2)) {
            (Some('s' | 't' | 'm' | 'd'), _) => return Some(i + 2),
            (Some('r'), Some('e')) | (Some('v'), Some('e')) | (Some('l'), Some('l')) => {
                return Some(i + 3)
            }
            _ => {}
        }
    }
    // `[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+`
    let letter_or_mark = |c: &FCh| matches!(c.class, Letter | Mark);
    if letter_or_mark(&ch) {
        return Some(run(chars, i, letter_or_mark));
    }
    if !is_newline(ch.c) && ch.class != Number && chars.get(i + 1).is_some_and(letter_or_mark) {
        return Some(run(chars, i + 1, letter_or_mark));
    }
    // `\p{N}`
    if ch.class == Number {
        return Some(i + 1);
    }
    // ` ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*` (letters, marks and numbers are handled above)
    let other = |c: &FCh| c.class != Space && !matches!(c.class, Letter | Mark | Number);
    let p = if ch.c == ' ' && chars.get(i + 1).is_some_and(other) {
        i + 1
    } else {
        i
    };
    if other(&chars[p]) {
        let j = run(chars, p, other);
        return Some(run(chars, j, |c| is_newline(c.c)));
    }
    whitespace_tail(chars, i)
}

/// `[\p{P}\$\+<=>\^~\|]+`
fn punctuation_run(chars: &[FCh], i: usize) -> Option<usize> {
    let member = |c: &FCh| c.class == FineClass::Punctuation || "$+<=>^~|".contains(c.c);
    member(&chars[i]).then(|| run(chars, i, member))
}

/// `[\p{P}\$\+<=>\^~\|\`]+`
fn falcon_punctuation_run(chars: &[FCh], i: usize) -> Option<usize> {
    let member = |c: &FCh| c.class == FineClass::Punctuation || "$+<=>^~|`".contains(c.c);
    member(&chars[i]).then(|| run(chars, i, member))
}

/// The GPT-2 regex (see [`crate::pretokenize`]); it matches at every position.
fn gpt2(chars: &[FCh], i: usize) -> Option<usize> {
    use FineClass::*;
    let ch = chars[i];
    if ch.c == '\'' {
        let next = |k: usize| chars.get(i + k).map(|c| c.c);
        match (next(1), next(2)) {
            (Some('s' | 't' | 'm' | 'd'), _) => return Some(i + 2),
            (Some('r'), Some('e')) | (Some('v'), Some('e')) | (Some('l'), Some('l')) => {
                return Some(i + 3)
            }
            _ => {}
        }
    }
    // Letters, numbers, and everything else (`[^\s\p{L}\p{N}]`) as three run classes.
    let kind = |c: &FCh| match c.class {
        Letter => 0,
        Number => 1,
        Space => 3,
        _ => 2,
    };
    let p = match chars.get(i + 1) {
        Some(next) if ch.c == ' ' && kind(next) != 3 => i + 1,
        _ => i,
    };
    let k = kind(&chars[p]);
    if k != 3 {
        return Some(run(chars, p, |c| kind(c) == k));
    }
    let j = run(chars, i, |c| c.class == Space);
    Some(if j == chars.len() || j - i == 1 {
        j
    } else {
        j - 1
    })
}

/// `\p{N}+`
fn number_run(chars: &[FCh], i: usize) -> Option<usize> {
    (chars[i].class == FineClass::Number).then(|| run(chars, i, |c| c.class == FineClass::Number))
}

/// `\p{N}`
fn one_number(chars: &[FCh], i: usize) -> Option<usize> {
    (chars[i].class == FineClass::Number).then_some(i + 1)
}

/// `[0-9][0-9][0-9]`
fn three_ascii_digits(chars: &[FCh], i: usize) -> Option<usize> {
    let digit = |k: usize| chars.get(k).is_some_and(|c| c.c.is_ascii_digit());
    (digit(i) && digit(i + 1) && digit(i + 2)).then_some(i + 3)
}

fn newline(chars: &[FCh], i: usize) -> Option<usize> {
    is_newline(chars[i].c).then_some(i + 1)
}

/// `\s?[class]+`: an optional whitespace character, then a run of the class.
fn space_then_run(chars: &[FCh], i: usize, member: fn(char) -> bool) -> Option<usize> {
    let p = match chars.get(i + 1) {
        Some(next) if chars[i].class == FineClass::Space && member(next.c) => i + 1,
        _ => i,
    };
    member(chars[p].c).then(|| run(chars, p, |c| member(c.c)))
}

/// `\s?[class]+` for a character class of [`FineClass`].
fn space_then_class(chars: &[FCh], i: usize, class: FineClass) -> Option<usize> {
    let p = match chars.get(i + 1) {
        Some(next) if chars[i].class == FineClass::Space && next.class == class => i + 1,
        _ => i,
    };
    (chars[p].class == class).then(|| run(chars, p, |c| c.class == class))
}

/// `\s?\p{L}+`
fn space_then_letters(chars: &[FCh], i: usize) -> Option<usize> {
    space_then_class(chars, i, FineClass::Letter)
}

/// `\s?\p{P}+`
fn space_then_punctuation(chars: &[FCh], i: usize) -> Option<usize> {
    space_then_class(chars, i, FineClass::Punctuation)
}

fn deepseek_llm_letters(chars: &[FCh], i: usize) -> Option<usize> {
    space_then_run(chars, i, is_deepseek_llm_letter)
}

fn deepseek_llm_punct(chars: &[FCh], i: usize) -> Option<usize> {
    space_then_run(chars, i, is_deepseek_llm_punct)
}

fn deepseek_llm_cjk(chars: &[FCh], i: usize) -> Option<usize> {
    is_deepseek_llm_cjk(chars[i].c).then(|| run(chars, i, |c| is_deepseek_llm_cjk(c.c)))
}
