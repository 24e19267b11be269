//! The sampler's pseudo-random generator: xoshiro256** (Blackman & Vigna, "Scrambled Linear
//! Pseudorandom Number Generators", ACM TOMS 2021) seeded with SplitMix64 (Steele, Lea &
//! Flood, OOPSLA 2014, with Vigna's constants), as the xoshiro authors recommend.
//!
//! **The algorithm is part of the public API.** A request's `seed` must produce the same
//! text on every platform and in every future version of Kaiyuan, so neither generator,
//! nor the seeding, nor [`Xoshiro256StarStar::next_f64`]'s conversion may ever change.
//! Known-answer tests pin all three against `tools/xoshiro_reference.py`, an independent
//! implementation written from the papers' descriptions.
//!
//! Without a seed, [`entropy_seed`] draws one from the operating system's hash keys
//! (`std::hash::RandomState`), the clock, the thread and a process-wide counter; std only.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// SplitMix64: a 64-bit counter passed through a bijective mixer. Used only to expand one
/// `u64` seed into xoshiro's 256-bit state (it never yields the all-zero state in four
/// consecutive outputs, because its outputs are a bijection of distinct counters).
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// The golden-ratio increment of the counter.
    const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(Self::GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// xoshiro256**: 256 bits of state, period 2^256 − 1, passes BigCrush; one `u64` per step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Xoshiro256StarStar {
    s: [u64; 4],
}

impl Xoshiro256StarStar {
    /// The generator for a user seed: the state is four consecutive SplitMix64 outputs
    /// started at `seed`. Every `u64` is a valid seed.
    pub fn from_seed(seed: u64) -> Xoshiro256StarStar {
        let mut mixer = SplitMix64::new(seed);
        let s = [
            mixer.next_u64(),
            mixer.next_u64(),
            mixer.next_u64(),
            mixer.next_u64(),
        ];
        Xoshiro256StarStar { s }
    }

    /// A generator with an explicit state, as in the reference code. Returns `None` for the
    /// all-zero state, the one state xoshiro cannot leave.
    pub fn from_state(s: [u64; 4]) -> Option<Xoshiro256StarStar> {
        (s != [0; 4]).then_some(Xoshiro256StarStar { s })
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)` with 53 random bits: the top 53 bits of [`Self::next_u64`]
    /// times 2^-53 (exact in `f64`, never 1.0).
    pub fn next_f64(&mut self) -> f64 {
        const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
        (self.next_u64() >> 11) as f64 * SCALE
    }
}

/// A seed for requests that did not give one. Not reproducible by design; the sampler
/// reports the seed it used so that a run can be repeated.
pub fn entropy_seed() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // `RandomState::new()` carries per-process random keys from the OS; hashing the clock,
    // a counter, the thread id and a stack address under those keys gives distinct seeds
    // for concurrent requests in one process and across processes.
    let mut hasher = std::hash::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    hasher.write_u128(now);
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    std::thread::current().id().hash(&mut hasher);
    let marker = 0u8;
    hasher.write_usize(std::ptr::addr_of!(marker) as usize);
    SplitMix64::new(hasher.finish()).next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values: `python3 tools/xoshiro_reference.py`. The first two lines are also
    // the values published with the reference C code (SplitMix64 of 1234567; xoshiro256**
    // from state {1, 2, 3, 4}).
    #[test]
    fn splitmix64_known_answers() {
        let mut g = SplitMix64::new(1234567);
        let got: Vec<u64> = (0..4).map(|_| g.next_u64()).collect();
        assert_eq!(
            got,
            [
                6457827717110365317,
                3203168211198807973,
                9817491932198370423,
                4593380528125082431
            ]
        );
        let mut g = SplitMix64::new(0);
        assert_eq!(g.next_u64(), 16294208416658607535);
    }

    #[test]
    fn xoshiro256starstar_known_answers_from_state() {
        let mut g = Xoshiro256StarStar::from_state([1, 2, 3, 4]).expect("non-zero state");
        let got: Vec<u64> = (0..8).map(|_| g.next_u64()).collect();
        assert_eq!(
            got,
            [
                11520,
                0,
                1509978240,
                1215971899390074240,
                1216172134540287360,
                607988272756665600,
                16172922978634559625,
                8476171486693032832
            ]
        );
    }

    #[test]
    fn xoshiro256starstar_known_answers_from_seed() {
        let mut g = Xoshiro256StarStar::from_seed(42);
        let got: Vec<u64> = (0..4).map(|_| g.next_u64()).collect();
        assert_eq!(
            got,
            [
                1546998764402558742,
                6990951692964543102,
                12544586762248559009,
                17057574109182124193
            ]
        );
        let mut g = Xoshiro256StarStar::from_seed(42);
        assert_eq!(g.next_f64(), 0.08386297105988216);
        assert_eq!(g.next_f64(), 0.3789802506626686);
    }

    #[test]
    fn zero_state_is_rejected() {
        assert!(Xoshiro256StarStar::from_state([0; 4]).is_none());
    }

    #[test]
    fn entropy_seeds_differ() {
        let a = entropy_seed();
        let b = entropy_seed();
        assert_ne!(a, b);
    }
}
