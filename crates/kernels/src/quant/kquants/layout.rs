//! Byte layouts of the K-quant super-blocks, the unpacking of their packed sub-block
//! scales (shared by the scalar and SIMD kernels) and of their quants (scalar code).
//!
//! Layouts follow the GGML block definitions as read by the `gguf` Python package
//! (`gguf/quants.py`); every super-block holds `QK_K` = 256 elements, fields in this
//! order, f16 stored as raw little-endian bits:
//!
//! | type | bytes | fields |
//! |------|-------|--------|
//! | Q2_K | 84  | scales\[16\] (low nibble scale, high nibble min), qs\[64\], d, dmin |
//! | Q3_K | 110 | hmask\[32\], qs\[64\], scales\[12\] (16 × 6 bits, offset 32), d |
//! | Q4_K | 144 | d, dmin, scales\[12\] (8 scales + 8 mins, 6 bits each), qs\[128\] |
//! | Q5_K | 176 | d, dmin, scales\[12\] (as Q4_K), qh\[32\], qs\[128\] |
//! | Q6_K | 210 | ql\[128\], qh\[64\], scales\[16\] (i8), d |
//! | Q8_K | 292 | d (f32), qs\[256\] (i8), bsums\[16\] (i16, sum of each 16 qs) |

pub(super) use crate::quant::le_bytes::{f16_at, f32_at, i16_at};

/// Elements per super-block.
pub(super) const QK_K: usize = 256;

pub(super) const Q2K_BYTES: usize = 84;
pub(super) const Q3K_BYTES: usize = 110;
pub(super) const Q4K_BYTES: usize = 144;
pub(super) const Q5K_BYTES: usize = 176;
pub(super) const Q6K_BYTES: usize = 210;
pub(super) const Q8K_BYTES: usize = 292;

// Field offsets inside each super-block.
pub(super) const Q2K_SCALES: usize = 0;
pub(super) const Q2K_QS: usize = 16;
pub(super) const Q2K_D: usize = 80;
pub(super) const Q2K_DMIN: usize = 82;

pub(super) const Q3K_HMASK: usize = 0;
pub(super) const Q3K_QS: usize = 32;
pub(super) const Q3K_SCALES: usize = 96;
pub(super) const Q3K_D: usize = 108;

pub(super) const Q4K_D: usize = 0;
pub(super) const Q4K_DMIN: usize = 2;
pub(super) const Q4K_SCALES: usize = 4;
pub(super) const Q4K_QS: usize = 16;

pub(super) const Q5K_D: usize = 0;
pub(super) const Q5K_DMIN: usize = 2;
pub(super) const Q5K_SCALES: usize = 4;
pub(super) const Q5K_QH: usize = 16;
pub(super) const Q5K_QS: usize = 48;

pub(super) const Q6K_QL: usize = 0;
pub(super) const Q6K_QH: usize = 128;
pub(super) const Q6K_SCALES: usize = 192;
pub(super) const Q6K_D: usize = 208;

pub(super) const Q8K_D: usize = 0;
pub(super) const Q8K_QS: usize = 4;
pub(super) const Q8K_BSUMS: usize = 260;

/// Unpacks Q4_K/Q5_K's 12 scale bytes into 8 six-bit scales and 8 six-bit mins.
///
/// Bytes 0..4 hold scales 0..4 in their low 6 bits and the top 2 bits of scales 4..8;
/// bytes 4..8 the same for the mins; bytes 8..12 hold the low nibbles of scales 4..8
/// (low half) and mins 4..8 (high half).
#[inline]
pub(super) fn unpack_q4k_scales(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    let word = |i: usize| u32::from_le_bytes([s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3]]);
    let (s0, s1, s2) = (word(0), word(1), word(2));
    // Byte-wise on four bytes at once; no shift moves a kept bit across a byte boundary.
    let sc_low = s0 & 0x3f3f_3f3f;
    let mn_low = s1 & 0x3f3f_3f3f;
    let sc_high = (s2 & 0x0f0f_0f0f) | ((s0 >> 2) & 0x3030_3030);
    let mn_high = ((s2 >> 4) & 0x0f0f_0f0f) | ((s1 >> 2) & 0x3030_3030);
    let join = |a: u32, b: u32| (a as u64 | ((b as u64) << 32)).to_le_bytes();
    (join(sc_low, sc_high), join(mn_low, mn_high))
}

/// Unpacks Q3_K's 12 scale bytes into 16 signed scales in -32..=31.
///
/// Scale `i` has its low 4 bits in nibble `i / 8` of byte `i % 8` and its high 2 bits in
/// bits `2 * (i / 4)..` of byte `8 + i % 4`; the stored 6-bit value is offset by 32.
#[inline]
pub(super) fn unpack_q3k_scales(s: &[u8]) -> [i8; 16] {
    let mut out = [0i8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        let low = (s[i % 8] >> (4 * (i / 8))) & 0x0f;
        let high = (s[8 + i % 4] >> (2 * (i / 4))) & 0x03;
        *o = ((low | (high << 4)) as i8) - 32;
    }
    out
}

/// Q2_K's 256 quants (0..=3) in element order: element `128h + 32s + l` (`h < 2`, `s < 4`,
/// `l < 32`) is bits `2s..2s + 2` of `qs[32h + l]`.
pub(super) fn q2k_quants(b: &[u8]) -> [i8; QK_K] {
    let qs = &b[Q2K_QS..Q2K_QS + 64];
    let mut q = [0i8; QK_K];
    for (j, v) in q.iter_mut().enumerate() {
        let (h, s, l) = (j / 128, (j / 32) % 4, j % 32);
        *v = ((qs[32 * h + l] >> (2 * s)) & 3) as i8;
    }
    q
}

/// Q3_K's 256 quants (-4..=3) in element order: the two low bits as in Q2_K, minus 4 where
/// bit `j / 32` of `hmask[j % 32]` is clear (a set bit means no offset).
pub(super) fn q3k_quants(b: &[u8]) -> [i8; QK_K] {
    let hmask = &b[Q3K_HMASK..Q3K_HMASK + 32];
    let qs = &b[Q3K_QS..Q3K_QS + 64];
    let mut q = [0i8; QK_K];
    for (j, v) in q.iter_mut().enumerate() {
        let (h, s, l) = (j / 128, (j / 32) % 4, j % 32);
        let low = ((qs[32 * h + l] >> (2 * s)) & 3) as i8;
        let high_set = (hmask[l] >> (j / 32)) & 1 == 1;
        *v = if high_set { low } else { low - 4 };
    }
    q
}

/// Q4_K's 256 quants (0..=15) in element order: element `32 sub + l` (`sub < 8`,
/// `l < 32`) is the low (even `sub`) or high (odd `sub`) nibble of `qs[32 (sub / 2) + l]`.
pub(super) fn q4k_quants(b: &[u8]) -> [i8; QK_K] {
    nibble_quants(&b[Q4K_QS..Q4K_QS + 128])
}

/// Q5_K's 256 quants (0..=31) in element order: the nibbles as in Q4_K, plus bit `sub` of
/// `qh[l]` as bit 4 of element `32 sub + l`.
pub(super) fn q5k_quants(b: &[u8]) -> [i8; QK_K] {
    let qh = &b[Q5K_QH..Q5K_QH + 32];
    let mut q = nibble_quants(&b[Q5K_QS..Q5K_QS + 128]);
    for (j, v) in q.iter_mut().enumerate() {
        let (sub, l) = (j / 32, j % 32);
        *v |= (((qh[l] >> sub) & 1) << 4) as i8;
    }
    q
}

fn nibble_quants(qs: &[u8]) -> [i8; QK_K] {
    let mut q = [0i8; QK_K];
    for (j, v) in q.iter_mut().enumerate() {
        let (sub, l) = (j / 32, j % 32);
        *v = ((qs[32 * (sub / 2) + l] >> (4 * (sub % 2))) & 0x0f) as i8;
    }
    q
}

/// Q6_K's 256 quants (-32..=31) in element order: element `128h + 32s + l` has its low
/// nibble in the low (`s < 2`) or high (`s >= 2`) half of `ql[64h + 32 (s % 2) + l]` and its
/// two high bits in bits `2s..2s + 2` of `qh[32h + l]`; the stored 6-bit value is offset
/// by 32.
pub(super) fn q6k_quants(b: &[u8]) -> [i8; QK_K] {
    let ql = &b[Q6K_QL..Q6K_QL + 128];
    let qh = &b[Q6K_QH..Q6K_QH + 64];
    let mut q = [0i8; QK_K];
    for (j, v) in q.iter_mut().enumerate() {
        let (h, s, l) = (j / 128, (j / 32) % 4, j % 32);
        let low = (ql[64 * h + 32 * (s % 2) + l] >> (4 * (s / 2))) & 0x0f;
        let high = (qh[32 * h + l] >> (2 * s)) & 3;
        *v = (low | (high << 4)) as i8 - 32;
    }
    q
}

/// Q6_K's sixteen signed sub-block scales.
pub(super) fn q6k_scales(b: &[u8]) -> [i8; 16] {
    std::array::from_fn(|k| b[Q6K_SCALES + k] as i8)
}

/// Sets a Q8_K block's `bsums` from its quants: `bsums[g]` = sum of `qs[16g..16g + 16]`
/// as i8 (at most 16 · 128 in magnitude, so the i16 cannot overflow).
pub(super) fn fill_q8k_bsums(b: &mut [u8]) {
    for g in 0..16 {
        let sum: i16 = b[Q8K_QS + 16 * g..Q8K_QS + 16 * g + 16]
            .iter()
            .map(|&q| (q as i8) as i16)
            .sum();
        b[Q8K_BSUMS + 2 * g..Q8K_BSUMS + 2 * g + 2].copy_from_slice(&sum.to_le_bytes());
    }
}

/// The first `nb` (weight, activation) super-block pairs of a weight row of `w_bytes`-byte
/// blocks and a Q8_K row.
#[inline]
pub(super) fn super_blocks<'a>(
    w: &'a [u8],
    w_bytes: usize,
    a: &'a [u8],
    nb: usize,
) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
    w.chunks_exact(w_bytes)
        .zip(a.chunks_exact(Q8K_BYTES))
        .take(nb)
}

/// The first `nb` super-blocks of a weight row of `w_bytes`-byte blocks, each with the
/// matching Q8_K blocks of four activation rows (each must hold `nb` blocks; panics
/// otherwise).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(super) fn super_blocks_x4<'a>(
    w: &'a [u8],
    w_bytes: usize,
    a: [&'a [u8]; 4],
    nb: usize,
) -> impl Iterator<Item = (&'a [u8], [&'a [u8]; 4])> {
    w.chunks_exact(w_bytes)
        .take(nb)
        .enumerate()
        .map(move |(i, wb)| (wb, a.map(|r| &r[i * Q8K_BYTES..(i + 1) * Q8K_BYTES])))
}

/// Checks a dot product's inputs and returns the number of super-blocks.
#[inline]
pub(super) fn check_dot_args(n: usize, w: &[u8], w_bytes: usize, a: &[u8]) -> usize {
    assert_eq!(
        n % QK_K,
        0,
        "K-quant dot: n = {n} is not whole super-blocks"
    );
    let nb = n / QK_K;
    assert!(
        w.len() >= nb * w_bytes && a.len() >= nb * Q8K_BYTES,
        "K-quant dot: {nb} super-blocks need {} weight and {} activation bytes, got {} and {}",
        nb * w_bytes,
        nb * Q8K_BYTES,
        w.len(),
        a.len()
    );
    nb
}
