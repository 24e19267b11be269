//! Character classes used by the pre-tokenizer regexes: `\p{L}` (letters), `\p{N}` (numbers),
//! `\s` (Unicode White_Space). ASCII is answered from a table; other characters from the Unicode
//! general category (crate `unicode-general-category`, Unicode 16) and Rust's White_Space.

use unicode_general_category::{get_general_category, GeneralCategory as Gc};

/// The class of a character as the GPT-2 family of split regexes sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CharClass {
    /// `\p{L}`
    Letter,
    /// `\p{N}`
    Number,
    /// `\s`
    Space,
    /// Anything else: punctuation, symbols, marks, controls, unassigned.
    Other,
}

const fn ascii_table() -> [CharClass; 128] {
    let mut t = [CharClass::Other; 128];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        t[i] = if b.is_ascii_alphabetic() {
            CharClass::Letter
        } else if b.is_ascii_digit() {
            CharClass::Number
        } else if matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
            CharClass::Space
        } else {
            CharClass::Other
        };
        i += 1;
    }
    t
}

static ASCII: [CharClass; 128] = ascii_table();

#[inline]
pub fn classify(c: char) -> CharClass {
    if (c as u32) < 128 {
        return ASCII[c as usize];
    }
    classify_non_ascii(c)
}

fn classify_non_ascii(c: char) -> CharClass {
    if c.is_whitespace() {
        return CharClass::Space;
    }
    match get_general_category(c) {
        Gc::UppercaseLetter
        | Gc::LowercaseLetter
        | Gc::TitlecaseLetter
        | Gc::ModifierLetter
        | Gc::OtherLetter => CharClass::Letter,
        Gc::DecimalNumber | Gc::LetterNumber | Gc::OtherNumber => CharClass::Number,
        _ => CharClass::Other,
    }
}

/// A finer class, for split regexes that also name `\p{M}`, `\p{P}` and `\p{S}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FineClass {
    Letter,
    Mark,
    Number,
    Punctuation,
    Symbol,
    Space,
    Other,
}

pub fn fine_classify(c: char) -> FineClass {
    if c.is_whitespace() {
        return FineClass::Space;
    }
    match get_general_category(c) {
        Gc::UppercaseLetter
        | Gc::LowercaseLetter
        | Gc::TitlecaseLetter
        | Gc::ModifierLetter
        | Gc::OtherLetter => FineClass::Letter,
        Gc::NonspacingMark | Gc::SpacingMark | Gc::EnclosingMark => FineClass::Mark,
        Gc::DecimalNumber | Gc::LetterNumber | Gc::OtherNumber => FineClass::Number,
        Gc::ConnectorPunctuation
        | Gc::DashPunctuation
        | Gc::OpenPunctuation
        | Gc::ClosePunctuation
        | Gc::InitialPunctuation
        | Gc::FinalPunctuation
        | Gc::OtherPunctuation => FineClass::Punctuation,
        Gc::MathSymbol | Gc::CurrencySymbol | Gc::ModifierSymbol | Gc::OtherSymbol => {
            FineClass::Symbol
        }
        _ => FineClass::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_of_sample_characters() {
        // Expected classes from the Unicode Character Database (General_Category, White_Space).
        for c in ['a', 'Z', 'é', 'ß', '日', 'ا', 'ǅ', 'ʰ'] {
            assert_eq!(classify(c), CharClass::Letter, "{c:?}");
        }
        for c in ['0', '9', '½', '²', 'Ⅻ', '٣'] {
            assert_eq!(classify(c), CharClass::Number, "{c:?}");
        }
        for c in [
            ' ', '\t', '\n', '\r', '\u{0b}', '\u{0c}', '\u{85}', '\u{a0}', '\u{3000}', '\u{2028}',
        ] {
            assert_eq!(classify(c), CharClass::Space, "{c:?}");
        }
        for c in [
            '!', '\'', '\u{301}', '\u{200b}', '\u{200d}', '😀', '$', '\u{0}',
        ] {
            assert_eq!(classify(c), CharClass::Other, "{c:?}");
        }
    }
}
