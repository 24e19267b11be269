//! Character classes that split regexes spell out as code-point ranges rather than Unicode
//! properties: DeepSeek LLM's (`deepseek-llm`, see [`crate::staged`]). The ranges are written as
//! escapes, not characters: several of them (U+1F7D, U+1FBE, U+1FD3, U+1FDB, U+2126, U+212A)
//! change under Unicode normalization into other code points, which would silently change
//! the class.

/// The class of DeepSeek LLM's second regex, `\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓ...𞤀-𞥃]+`, in the
/// order its tokenizer.json lists it (ascending, disjoint). Its ranges are cased letters, but
/// the list is fixed: it is not all of them (no Armenian or Georgian small letters), and its
/// ranges hold code points whether assigned or not.
static LETTERS: &[(char, char)] = &[
    ('A', 'Z'),
    ('a', 'z'),
    ('\u{B5}', '\u{B5}'),
    ('\u{C0}', '\u{D6}'),
    ('\u{D8}', '\u{F6}'),
    ('\u{F8}', '\u{1BA}'),
    ('\u{1BC}', '\u{1BF}'),
    ('\u{1C4}', '\u{293}'),
    ('\u{295}', '\u{2AF}'),
    ('\u{370}', '\u{373}'),
    ('\u{376}', '\u{376}'),
    ('\u{377}', '\u{377}'),
    ('\u{37B}', '\u{37D}'),
    ('\u{37F}', '\u{37F}'),
    ('\u{386}', '\u{386}'),
    ('\u{388}', '\u{38A}'),
    ('\u{38C}', '\u{38C}'),
    ('\u{38E}', '\u{3A1}'),
    ('\u{3A3}', '\u{3F5}'),
    ('\u{3F7}', '\u{481}'),
    ('\u{48A}', '\u{52F}'),
    ('\u{531}', '\u{556}'),
    ('\u{10A0}', '\u{10C5}'),
    ('\u{13A0}', '\u{13F5}'),
    ('\u{13F8}', '\u{13FD}'),
    ('\u{1C90}', '\u{1CBA}'),
    ('\u{1CBD}', '\u{1CBF}'),
    ('\u{1D00}', '\u{1D2B}'),
    ('\u{1D6B}', '\u{1D77}'),
    ('\u{1D79}', '\u{1D9A}'),
    ('\u{1E00}', '\u{1F15}'),
    ('\u{1F18}', '\u{1F1D}'),
    ('\u{1F20}', '\u{1F45}'),
    ('\u{1F48}', '\u{1F4D}'),
    ('\u{1F50}', '\u{1F57}'),
    ('\u{1F59}', '\u{1F59}'),
    ('\u{1F5B}', '\u{1F5B}'),
    ('\u{1F5D}', '\u{1F5D}'),
    ('\u{1F5F}', '\u{1F7D}'),
    ('\u{1F80}', '\u{1FB4}'),
    ('\u{1FB6}', '\u{1FBC}'),
    ('\u{1FBE}', '\u{1FBE}'),
    ('\u{1FC2}', '\u{1FC4}'),
    ('\u{1FC6}', '\u{1FCC}'),
    ('\u{1FD0}', '\u{1FD3}'),
    ('\u{1FD6}', '\u{1FDB}'),
    ('\u{1FE0}', '\u{1FEC}'),
    ('\u{1FF2}', '\u{1FF4}'),
    ('\u{1FF6}', '\u{1FFC}'),
    ('\u{2102}', '\u{2102}'),
    ('\u{2107}', '\u{2107}'),
    ('\u{210A}', '\u{2113}'),
    ('\u{2115}', '\u{2115}'),
    ('\u{2119}', '\u{211D}'),
    ('\u{2124}', '\u{2124}'),
    ('\u{2126}', '\u{2126}'),
    ('\u{2128}', '\u{2128}'),
    ('\u{212A}', '\u{212D}'),
    ('\u{212F}', '\u{2134}'),
    ('\u{2139}', '\u{2139}'),
    ('\u{213C}', '\u{213F}'),
    ('\u{2145}', '\u{2149}'),
    ('\u{214E}', '\u{214E}'),
    ('\u{2183}', '\u{2183}'),
    ('\u{2184}', '\u{2184}'),
    ('\u{2C00}', '\u{2C7B}'),
    ('\u{2C7E}', '\u{2CE4}'),
    ('\u{2CEB}', '\u{2CEE}'),
    ('\u{2CF2}', '\u{2CF2}'),
    ('\u{2CF3}', '\u{2CF3}'),
    ('\u{A640}', '\u{A66D}'),
    ('\u{A680}', '\u{A69B}'),
    ('\u{A722}', '\u{A76F}'),
    ('\u{A771}', '\u{A787}'),
    ('\u{A78B}', '\u{A78E}'),
    ('\u{AB70}', '\u{ABBF}'),
    ('\u{FB00}', '\u{FB06}'),
    ('\u{FB13}', '\u{FB17}'),
    ('\u{FF21}', '\u{FF3A}'),
    ('\u{FF41}', '\u{FF5A}'),
    ('\u{10400}', '\u{1044F}'),
    ('\u{104B0}', '\u{104D3}'),
    ('\u{104D8}', '\u{104FB}'),
    ('\u{10C80}', '\u{10CB2}'),
    ('\u{10CC0}', '\u{10CF2}'),
    ('\u{118A0}', '\u{118DF}'),
    ('\u{1E900}', '\u{1E943}'),
];

/// Whether `c` is in DeepSeek LLM's letter class (its second regex).
pub fn is_deepseek_llm_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    // The last range starting at or before `c` is the only one that can hold it.
    let k = LETTERS.partition_point(|&(lo, _)| lo <= c);
    k > 0 && c <= LETTERS[k - 1].1
}

/// Whether `c` is in the class of DeepSeek LLM's third regex, `\s?[!-/:-~！-／：-～‘-‟　-。]+`:
/// printable ASCII except digits (letters included), the fullwidth forms except fullwidth
/// digits, the quotation marks U+2018..U+201F and U+3000..U+3002 (ideographic space, comma
/// and full stop).
pub fn is_deepseek_llm_punct(c: char) -> bool {
    matches!(
        c,
        '!'..='/'
            | ':'..='~'
            | '\u{FF01}'..='\u{FF0F}'
            | '\u{FF1A}'..='\u{FF5E}'
            | '\u{2018}'..='\u{201F}'
            | '\u{3000}'..='\u{3002}'
    )
}

/// Whether `c` is in the class of DeepSeek LLM's fifth regex, `[一-龥ࠀ-一가-퟿]+`: `一-龥` is
/// U+4E00..U+9FA5 and `ࠀ-一` U+0800..U+4E00, together U+0800..U+9FA5 (far more than CJK:
/// Indic scripts, Thai, Georgian, Hangul jamo, Greek Extended, general punctuation, CJK
/// punctuation and kana are all inside); `가-퟿` is U+AC00..U+D7FF (Hangul syllables and jamo
/// extended-B).
pub fn is_deepseek_llm_cjk(c: char) -> bool {
    matches!(c, '\u{0800}'..='\u{9FA5}' | '\u{AC00}'..='\u{D7FF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letter_ranges_are_ascending_and_disjoint() {
        for w in LETTERS.windows(2) {
            assert!(w[0].0 <= w[0].1 && w[0].1 < w[1].0, "{w:?}");
        }
    }

    // Expected memberships read off the regexes in the module doc, at range edges.
    #[test]
    fn letter_class_edges() {
        for c in [
            'A',
            'z',
            'µ',
            'À',
            'Ö',
            'Ø',
            'ö',
            'ø',
            '\u{1BA}',
            '\u{1BC}',
            '\u{1C4}',
            '\u{2AF}',
            '\u{1F7D}',
            '\u{1FBE}',
            '\u{1FD3}',
            '\u{1FDB}',
            '\u{2126}',
            '\u{212A}',
            'Ａ',
            'ｚ',
            '\u{10400}',
            '\u{1E943}',
            'Ж',
            'ж',
        ] {
            assert!(is_deepseek_llm_letter(c), "{c:?} U+{:04X}", c as u32);
        }
        for c in [
            '@',
            '[',
            '`',
            '{',
            '\u{B4}',
            '\u{B6}',
            '×',
            '÷',
            '\u{1BB}',
            '\u{294}',
            '\u{2B0}',
            '\u{1F7E}',
            '\u{1FBD}',
            '\u{2125}',
            '\u{2127}',
            '\u{2129}',
            'ª',
            '\u{561}',
            '\u{2D00}',
            '\u{1E944}',
            '\u{10FFFF}',
            '日',
            '1',
        ] {
            assert!(!is_deepseek_llm_letter(c), "{c:?} U+{:04X}", c as u32);
        }
    }

    #[test]
    fn punct_and_cjk_class_edges() {
        for c in [
            '!', '/', ':', '~', 'a', '！', '／', '：', '～', 'Ａ', '‘', '‟', '　', '、', '。',
        ] {
            assert!(is_deepseek_llm_punct(c), "{c:?}");
        }
        for c in [
            '0', '9', ' ', '\u{7F}', '１', '｟', '\u{2017}', '\u{2020}', '〃', '\u{2FFF}',
        ] {
            assert!(!is_deepseek_llm_punct(c), "{c:?}");
        }
        for c in [
            '\u{800}', '一', '龥', 'ก', 'あ', '가', '\u{D7FF}', '　', '“',
        ] {
            assert!(is_deepseek_llm_cjk(c), "{c:?}");
        }
        for c in [
            '\u{7FF}',
            '龦',
            '\u{ABFF}',
            '\u{E000}',
            '\u{20000}',
            'a',
            '１',
        ] {
            assert!(!is_deepseek_llm_cjk(c), "{c:?}");
        }
    }
}
