//! Pre-tokenizers of byte-level BPE vocabularies, selected by `tokenizer.ggml.pre`: they cut
//! text into pieces that BPE merges never cross. Each is a hand-written scanner equivalent to the
//! split regex the model was trained with (as listed for each `pre` name in llama.cpp's
//! llama-vocab and in the models' Hugging Face tokenizer.json), written without a regex engine:
//!
//! - GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
//! - SmolLM / StarCoder: first `\p{N}` (every number character alone), then GPT-2 on the rest
//! - Llama 3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//!   ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
//! - GLM-4 (`glm4`, `chatglm-bpe`): the Llama 3 regex
//! - Qwen2 (and Hunyuan's `hunyuan`): the Llama 3 regex with `\p{N}` instead of `\p{N}{1,3}`
//! - Qwen3.5 (`qwen35`): the Qwen2 regex with `[\p{L}\p{M}]` for `\p{L}`, see [`crate::staged`]
//! - DeepSeek-V3 (and Hunyuan's `hunyuan-dense`), DeepSeek LLM, DeepSeek Coder, Falcon and llama.cpp's `default`: several
//!   regexes in sequence, see [`crate::staged`]
//!
//! Every scanner returns the leftmost match of the regex's alternatives in order at each
//! position, exactly as a backtracking engine would; the pieces cover the text completely.

use crate::error::{Error, Result};
use crate::unicode::{classify, CharClass};

/// A pre-tokenizer variant (the split rule of `tokenizer.ggml.pre`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreTokenizer {
    Gpt2,
    SmolLm,
    Llama3,
    /// GLM-4 (`glm4`): Llama 3's split and whole-word lookup, but no BOS unless the file asks.
    Glm4,
    /// ChatGLM-4 (`chatglm-bpe`): Llama 3's split, merges always run, no BOS unless asked.
    ChatGlm4,
    Qwen2,
    /// Qwen3.5: Qwen2's rule, with combining marks joining letters.
    Qwen35,
    DeepSeekV3,
    /// DeepSeek LLM 7B/67B: six regexes in sequence, with fixed character ranges.
    DeepSeekLlm,
    /// DeepSeek Coder 1.3B/6.7B/33B: five regexes in sequence, every digit alone.
    DeepSeekCoder,
    /// Falcon 7B/40B: punctuation runs, GPT-2, ASCII digit triples.
    Falcon,
    /// llama.cpp's `default` byte-level BPE split (punctuation runs, GPT-2, digit triples).
    Default,
}

impl PreTokenizer {
    /// The variant for a `tokenizer.ggml.pre` value. Unknown names are an error naming them.
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "gpt2" | "gpt-2" | "mpt" | "olmo" | "jais" => PreTokenizer::Gpt2,
            "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" => {
                PreTokenizer::SmolLm
            }
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral"
            | "midm-2.0" | "lfm2" => PreTokenizer::Llama3,
            "glm4" | "glm5" => PreTokenizer::Glm4,
            "chatglm-bpe" => PreTokenizer::ChatGlm4,
            "qwen2" | "deepseek-r1-qwen" | "kormo" | "stablelm2" | "hunyuan" => PreTokenizer::Qwen2,
            "deepseek-v3" | "hunyuan-dense" | "hy_v4" | "joyai-llm" => PreTokenizer::DeepSeekV3,
            "qwen35" => PreTokenizer::Qwen35,
            "deepseek-llm" => PreTokenizer::DeepSeekLlm,
            "deepseek-coder" => PreTokenizer::DeepSeekCoder,
            "falcon" => PreTokenizer::Falcon,
            "default" => PreTokenizer::Default,
            other => return Err(Error::UnknownPreTokenizer(other.to_string())),
        })
    }

    /// Whether a piece that is itself a vocabulary token is emitted whole, without running the
    /// merges (Llama 3's and GLM-4's tokenizers do this; the others always merge).
    pub fn ignores_merges(self) -> bool {
        matches!(self, PreTokenizer::Llama3 | PreTokenizer::Glm4)
    }

    /// The pieces of `text`, in order (they concatenate to `text`).
    pub fn pieces(self, text: &str) -> Vec<&str> {
        let (mut scratch, mut ranges) = (Vec::new(), Vec::new());
        self.split(text, &mut scratch, &mut ranges);
        ranges.iter().map(|&(a, b)| &text[a..b]).collect()
    }

    /// Whether a vocabulary with this pre-tokenizer adds BOS when its metadata does not say
    /// (`tokenizer.ggml.add_bos_token` absent): llama.cpp's default for the Llama 3 family.
    pub fn adds_bos_by_default(self) -> bool {
        self == PreTokenizer::Llama3
    }

    /// Appends the byte ranges of the pieces of `text` to `out` (in order, covering `text`).
    /// `scratch` is a reusable buffer.
    pub(crate) fn split(self, text: &str, scratch: &mut Vec<Ch>, out: &mut Vec<(usize, usize)>) {
        scratch.clear();
        scratch.extend(text.char_indices().map(|(off, c)| Ch {
            off,
            c,
            class: classify(c),
        }));
        let all = Chars {
            c: scratch,
            end: text.len(),
        };
        match self {
            PreTokenizer::Gpt2 => scan(&all, out, gpt2_match),
            PreTokenizer::Llama3 | PreTokenizer::Glm4 | PreTokenizer::ChatGlm4 => {
                scan(&all, out, |c, i| llama3_match(c, i, 3))
            }
            PreTokenizer::Qwen2 => scan(&all, out, |c, i| llama3_match(c, i, 1)),
            PreTokenizer::DeepSeekV3 => crate::staged::split_deepseek_v3(text, out),
            PreTokenizer::DeepSeekLlm => crate::staged::split_deepseek_llm(text, out),
            PreTokenizer::DeepSeekCoder => crate::staged::split_deepseek_coder(text, out),
            PreTokenizer::Falcon => crate::staged::split_falcon(text, out),
            PreTokenizer::Qwen35 => crate::staged::split_qwen35(text, out),
            PreTokenizer::Default => crate::staged::split_default(text, out),
            PreTokenizer::SmolLm => {
                let mut seg_start = 0;
                for i in 0..all.c.len() {
                    if all.c[i].class == CharClass::Number {
                        let seg = all.sub(seg_start, i);
                        scan(&seg, out, gpt2_match);
                        out.push((all.off(i), all.off(i + 1)));
                        seg_start = i + 1;
                    }
                }
                scan(&all.sub(seg_start, all.c.len()), out, gpt2_match);
            }
        }
    }
}

/// A character with its byte offset and class.
#[derive(Clone, Copy, Debug)]
pub struct Ch {
    off: usize,
    c: char,
    class: CharClass,
}

/// A run of classified characters; `end` is the byte offset just past the last one.
struct Chars<'a> {
    c: &'a [Ch],
    end: usize,
}

impl<'a> Chars<'a> {
    fn off(&self, i: usize) -> usize {
        if i < self.c.len() {
            self.c[i].off
        } else {
            self.end
        }
    }
    fn sub(&self, from: usize, to: usize) -> Chars<'a> {
        Chars {
            c: &self.c[from..to],
            end: self.off(to),
        }
    }
    fn len(&self) -> usize {
        self.c.len()
    }
    fn class_at(&self, i: usize) -> Option<CharClass> {
        self.c.get(i).map(|ch| ch.class)
    }
    /// End of the run of characters of `class` starting at `i`.
    fn run(&self, mut i: usize, class: CharClass) -> usize {
        while i < self.c.len() && self.c[i].class == class {
            i += 1;
        }
        i
    }
    /// Length of an English contraction (`'s`, `'re`...) starting at the apostrophe at `i`.
    fn contraction(&self, i: usize, any_case: bool) -> Option<usize> {
        let lower = |k: usize| {
            self.c.get(k).map(|ch| {
                if any_case {
                    ch.c.to_ascii_lowercase()
                } else {
                    ch.c
                }
            })
        };
        match (lower(i + 1), lower(i + 2)) {
            (Some('s' | 't' | 'm' | 'd'), _) => Some(2),
            (Some('r'), Some('e')) | (Some('v'), Some('e')) | (Some('l'), Some('l')) => Some(3),
            _ => None,
        }
    }
}

fn scan(
    chars: &Chars<'_>,
    out: &mut Vec<(usize, usize)>,
    matcher: impl Fn(&Chars<'_>, usize) -> usize,
) {
    let mut i = 0;
    while i < chars.len() {
        let j = matcher(chars, i);
        debug_assert!(j > i);
        out.push((chars.off(i), chars.off(j)));
        i = j;
    }
}

/// Whitespace alternatives shared by all variants: `\s+(?!\S)|\s+` at `i` (a space character).
fn whitespace_run(chars: &Chars<'_>, i: usize) -> usize {
    let j = chars.run(i, CharClass::Space);
    if j == chars.len() || j - i == 1 {
        j
    } else {
        // Leave the last whitespace character to prefix the next piece.
        j - 1
    }
}

fn gpt2_match(chars: &Chars<'_>, i: usize) -> usize {
    let ch = chars.c[i];
    if ch.c == '\'' {
        if let Some(k) = chars.contraction(i, false) {
            return i + k;
        }
    }
    // ` ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+`: the optional space only joins a non-space.
    let p = match chars.class_at(i + 1) {
        Some(next) if ch.c == ' ' && next != CharClass::Space => i + 1,
        _ => i,
    };
    match chars.c[p].class {
        CharClass::Space => whitespace_run(chars, i),
        class => chars.run(p, class),
    }
}

fn is_newline(c: char) -> bool {
    c == '\r' || c == '\n'
}

fn llama3_match(chars: &Chars<'_>, i: usize, max_digits: usize) -> usize {
    let ch = chars.c[i];
    if ch.c == '\'' {
        if let Some(k) = chars.contraction(i, true) {
            return i + k;
        }
    }
    // `[^\r\n\p{L}\p{N}]?\p{L}+`
    if ch.class == CharClass::Letter {
        return chars.run(i, CharClass::Letter);
    }
    if !is_newline(ch.c)
        && ch.class != CharClass::Number
        && chars.class_at(i + 1) == Some(CharClass::Letter)
    {
        return chars.run(i + 1, CharClass::Letter);
    }
    // `\p{N}{1,3}`
    if ch.class == CharClass::Number {
        return chars.run(i, CharClass::Number).min(i + max_digits);
    }
    // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
    let p = if ch.c == ' ' && chars.class_at(i + 1) == Some(CharClass::Other) {
        i + 1
    } else {
        i
    };
    if chars.c[p].class == CharClass::Other {
        let mut j = chars.run(p, CharClass::Other);
        while j < chars.len() && is_newline(chars.c[j].c) {
            j += 1;
        }
        return j;
    }
    // `\s*[\r\n]+`: up to and including the last newline of the whitespace run.
    let j = chars.run(i, CharClass::Space);
    if let Some(k) = (i..j).rev().find(|&k| is_newline(chars.c[k].c)) {
        return k + 1;
    }
    whitespace_run(chars, i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(pre: PreTokenizer, text: &str) -> Vec<&str> {
        pre.pieces(text)
    }

    // Expected splits worked out by hand from the regexes in the module doc (leftmost match,
    // alternatives in order, greedy with backtracking).
    #[test]
    fn gpt2_splits() {
        let p = PreTokenizer::Gpt2;
        assert_eq!(pieces(p, "Hello world"), ["Hello", " world"]);
        assert_eq!(pieces(p, "it's  ok?!"), ["it", "'s", " ", " ok", "?!"]);
        assert_eq!(pieces(p, "a   b"), ["a", "  ", " b"]);
        assert_eq!(pieces(p, "a \n\tb"), ["a", " \n", "\t", "b"]);
        assert_eq!(pieces(p, "x  "), ["x", "  "]);
        assert_eq!(pieces(p, " 123abc"), [" 123", "abc"]);
        assert_eq!(pieces(p, "?'s 'S"), ["?'", "s", " '", "S"]);
        assert_eq!(pieces(p, "e\u{301}t\u{e9}"), ["e", "\u{301}", "t\u{e9}"]);
    }

    #[test]
    fn smollm_splits_every_digit() {
        let p = PreTokenizer::SmolLm;
        assert_eq!(pieces(p, "abc 123x"), ["abc", " ", "1", "2", "3", "x"]);
        assert_eq!(pieces(p, "½x"), ["½", "x"]);
    }

    #[test]
    fn llama3_and_qwen2_splits() {
        let p = PreTokenizer::Llama3;
        assert_eq!(
            pieces(p, "12345 (hello)"),
            ["123", "45", " (", "hello", ")"]
        );
        assert_eq!(
            pieces(p, "I'LL go\n\n  x"),
            ["I", "'LL", " go", "\n\n", " ", " x"]
        );
        assert_eq!(pieces(p, "a.\n\nb"), ["a", ".\n\n", "b"]);
        assert_eq!(pieces(p, "a \n b"), ["a", " \n", " b"]);
        assert_eq!(pieces(p, "\tx"), ["\tx"]);
        assert_eq!(
            pieces(PreTokenizer::Qwen2, "x 123"),
            ["x", " ", "1", "2", "3"]
        );
    }

    #[test]
    fn deepseek_llm_splits() {
        let p = PreTokenizer::from_name("deepseek-llm").unwrap();
        assert_eq!(p, PreTokenizer::DeepSeekLlm);
        assert_eq!(pieces(p, "Hello world"), ["Hello", " world"]);
        // `é` is in the letter class, not in the ASCII one of the third regex.
        assert_eq!(pieces(p, " caf\u{e9}"), [" caf", "\u{e9}"]);
        assert_eq!(pieces(p, "a\n\nb"), ["a", "\n", "\n", "b"]);
        assert_eq!(pieces(p, "x  "), ["x", "  "]);
        assert_eq!(pieces(p, "1234 abc"), ["1234", " abc"]);
        assert_eq!(pieces(p, "中文\u{ff0c}测试"), ["中文", "\u{ff0c}", "测试"]);
        // U+3000 is whitespace, joins `b` in the second regex, and is cut off again by the
        // fifth (its range U+0800..U+9FA5 holds it).
        assert_eq!(pieces(p, "a \u{3000}b"), ["a", " ", "\u{3000}", "b"]);
        assert_eq!(pieces(p, "x 1 "), ["x", " ", "1", " "]);
        assert_eq!(
            pieces(p, " \u{201c}Hi\u{201d}"),
            [" ", "\u{201c}", "Hi", "\u{201d}"]
        );
        assert_eq!(pieces(p, "a\u{1bb}b"), ["a", "\u{1bb}", "b"]);
        // `\s+$` only matches trailing whitespace; a long run before a digit stays linear.
        let spaces = " ".repeat(200_000);
        let text = format!("{spaces}1 ");
        assert_eq!(pieces(p, &text), [spaces.as_str(), "1", " "]);
    }

    #[test]
    fn family_names_map_as_llama_cpp_maps_them() {
        // llama.cpp's llama-vocab.cpp (0.3.36): `glm5` is `glm4` (CHATGLM4 with its merges
        // ignored); `hy_v4` (Hunyuan) and `joyai-llm` take DeepSeek-V3's regexes, as
        // `hunyuan-dense` does.
        for (name, want) in [
            ("glm5", PreTokenizer::Glm4),
            ("hy_v4", PreTokenizer::DeepSeekV3),
            ("joyai-llm", PreTokenizer::DeepSeekV3),
            ("hunyuan", PreTokenizer::Qwen2),
        ] {
            assert_eq!(PreTokenizer::from_name(name).unwrap(), want, "{name}");
        }
        assert!(PreTokenizer::Glm4.ignores_merges());
    }

    #[test]
    fn unknown_name_is_an_error_naming_it() {
        let err = PreTokenizer::from_name("mystery-bpe").unwrap_err();
        assert!(err.to_string().contains("mystery-bpe"));
    }
}
