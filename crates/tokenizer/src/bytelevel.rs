//! GPT-2's reversible byte-to-character mapping used by byte-level BPE vocabularies: the 188
//! printable Latin-1 bytes map to themselves, the other 68 to U+0100.. in byte order (so the
//! space byte is spelled `Ġ` U+0120 and newline `Ċ` U+010A). Tokens in a `gpt2` GGUF vocabulary
//! are written in this alphabet.

fn is_printable_latin1(b: u8) -> bool {
    matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// `BYTE_TO_CHAR[b]` is the character that spells byte `b`.
pub fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 0x100u32;
    for b in 0..=255u8 {
        table[b as usize] = if is_printable_latin1(b) {
            b as char
        } else {
            let c = char::from_u32(next).expect("invariant: U+0100..U+0143 are chars");
            next += 1;
            c
        };
    }
    table
}

/// The byte a character of the byte-level alphabet stands for, or `None` if it is not one.
pub fn char_to_byte(c: char) -> Option<u8> {
    let u = c as u32;
    if u < 256 {
        let b = u as u8;
        return is_printable_latin1(b).then_some(b);
    }
    if !(0x100..0x100 + 68).contains(&u) {
        return None;
    }
    // The k-th non-printable byte, in increasing byte order.
    let k = (u - 0x100) as usize;
    (0..=255u8).filter(|&b| !is_printable_latin1(b)).nth(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_spellings_and_round_trip() {
        // Spellings fixed by GPT-2's published encoder: space is 'Ġ', newline 'Ċ', tab 'ĉ'.
        let t = byte_to_char_table();
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[b'\t' as usize], 'ĉ');
        assert_eq!(t[b'a' as usize], 'a');
        assert_eq!(t[0xAD], 'Ń');
        for b in 0..=255u8 {
            assert_eq!(char_to_byte(t[b as usize]), Some(b));
        }
        assert_eq!(char_to_byte('\u{121}'), Some(0x7F));
        assert_eq!(char_to_byte('\u{144}'), None);
        assert_eq!(char_to_byte(' '), None);
    }
}
