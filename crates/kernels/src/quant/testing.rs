//! Deterministic random data for tests and benchmarks: a small PRNG and generators of
//! valid blocks (finite scales) for every supported type. Not used by the product.

use crate::dtype::DType;
use crate::half::{f32_to_bf16, f32_to_f16};

/// xorshift64* : tiny, seedable, good enough for test data.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.next_f32()
    }

    /// Uniform in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn fill_bytes(&mut self, out: &mut [u8]) {
        for b in out {
            *b = self.next_u64() as u8;
        }
    }

    /// `n` values uniform in [-scale, scale).
    pub fn vec_f32(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(-scale, scale)).collect()
    }
}

/// Random but valid blocks of `dtype` (every scale finite, values in a sane range),
/// `n_blocks` of them; `None` for a type that has no generator.
pub fn random_blocks(dtype: DType, n_blocks: usize, rng: &mut Rng) -> Option<Vec<u8>> {
    let mut out = vec![0u8; n_blocks * dtype.type_size()];
    match dtype {
        DType::F32 => {
            for c in out.chunks_exact_mut(4) {
                c.copy_from_slice(&rng.uniform(-2.0, 2.0).to_le_bytes());
            }
        }
        DType::F16 => {
            for c in out.chunks_exact_mut(2) {
                c.copy_from_slice(&f32_to_f16(rng.uniform(-2.0, 2.0)).to_le_bytes());
            }
        }
        DType::BF16 => {
            for c in out.chunks_exact_mut(2) {
                c.copy_from_slice(&f32_to_bf16(rng.uniform(-2.0, 2.0)).to_le_bytes());
            }
        }
        _ => {
            rng.fill_bytes(&mut out);
            let fixed = super::legacy::sanitize_random_blocks(dtype, &mut out, rng)
                || super::kquants::sanitize_random_blocks(dtype, &mut out, rng);
            if !fixed {
                return None;
            }
        }
    }
    Some(out)
}
