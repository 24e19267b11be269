#!/usr/bin/env python3
"""Reference outputs of SplitMix64 and xoshiro256** for the sampler's known-answer tests.

Written from the algorithms' published descriptions, not from Kaiyuan's Rust code:
- xoshiro256** : D. Blackman and S. Vigna, "Scrambled Linear Pseudorandom Number
  Generators", ACM TOMS 47(4), 2021 (and prng.di.unimi.it): output
  rotl(s1 * 5, 7) * 9, then the linear engine t = s1 << 17; s2 ^= s0; s3 ^= s1;
  s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 45).
- SplitMix64 : G. Steele, D. Lea, C. Flood, "Fast splittable pseudorandom number
  generators", OOPSLA 2014, with the mix constants recommended by Vigna
  (state += 0x9e3779b97f4a7c15; z ^= z >> 30; z *= 0xbf58476d1ce4e5b9;
  z ^= z >> 27; z *= 0x94d049bb133111eb; z ^= z >> 31).

Kaiyuan seeds xoshiro256** with four consecutive SplitMix64 outputs of the user's seed
(the seeding the authors recommend). `draw_sequence` replays the sampler's documented
draw (no truncation) so that a seeded token sequence can be pinned forever.
Run: python3 tools/xoshiro_reference.py and compare with the constants in
crates/engine/src/sampling/rng.rs (tests) and crates/engine/tests/sampling.rs.
"""

import math
import struct

MASK = (1 << 64) - 1


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & MASK


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)


class Xoshiro256StarStar:
    def __init__(self, state):
        self.s = [x & MASK for x in state]

    @classmethod
    def from_seed(cls, seed):
        sm = SplitMix64(seed)
        return cls([sm.next() for _ in range(4)])

    def next(self):
        s = self.s
        result = (rotl((s[1] * 5) & MASK, 7) * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def next_f64(self):
        return (self.next() >> 11) * 2.0 ** -53


def draw_sequence(seed, logits, temperature, count, top_k=0, top_p=1.0, min_p=0.0):
    """Kaiyuan's documented draw: weights exp((x - max) / T); top-k keeps the k best
    (logit desc, id asc); top-p the shortest best-first prefix with cumulative >= top_p * Z
    (Z over the top-k set); min-p weights >= min_p. One next_f64() per token, u * Z_kept
    against the running sum — best-first when 0 < top_k < vocabulary, else in token-id
    order. Also returns the smallest gap between u * Z_kept and a cumulative boundary, to
    show the answer does not hinge on rounding."""
    rng = Xoshiro256StarStar.from_seed(seed)
    m = max(logits)
    order = sorted(range(len(logits)), key=lambda i: (-logits[i], i))
    if 0 < top_k < len(logits):
        order = order[:top_k]
    w = {i: math.exp((logits[i] - m) / temperature) for i in order}
    z = sum(w.values())
    if top_p < 1.0:
        cum, keep = 0.0, len(order)
        for n, i in enumerate(order):
            cum += w[i]
            if cum >= top_p * z:
                keep = n + 1
                break
        order = order[:keep]
    order = [i for i in order if w[i] >= min_p]
    walk_order = order if 0 < top_k < len(logits) else sorted(order)
    z_kept = sum(w[i] for i in walk_order)
    tokens, margin = [], float("inf")
    for _ in range(count):
        target = rng.next_f64() * z_kept
        cum = 0.0
        for i in walk_order:
            cum += w[i]
            margin = min(margin, abs(cum - target))
            if cum > target:
                tokens.append(i)
                break
    return tokens, margin


def main():
    sm = SplitMix64(0)
    print("splitmix64 seed 0:", [sm.next() for _ in range(4)])
    sm = SplitMix64(1234567)
    print("splitmix64 seed 1234567:", [sm.next() for _ in range(4)])
    x = Xoshiro256StarStar([1, 2, 3, 4])
    print("xoshiro256** state [1,2,3,4]:", [x.next() for _ in range(8)])
    x = Xoshiro256StarStar.from_seed(42)
    print("xoshiro256** seeded 42:", [x.next() for _ in range(4)])
    x = Xoshiro256StarStar.from_seed(42)
    print("xoshiro256** seeded 42 as f64 in [0,1):",
          [x.next_f64() for _ in range(2)])
    tokens, margin = draw_sequence(2024, [0.5, -1.0, 2.0, 1.25, 0.0, -0.5], 0.8, 24)
    print("draw seed 2024, logits [0.5,-1,2,1.25,0,-0.5], T 0.8:", tokens,
          "smallest gap", margin)
    # f32-rounded, as the Rust test builds them: ((1.7 * i as f64).sin() * 3.0) as f32.
    logits = [struct.unpack("f", struct.pack("f", math.sin(1.7 * i) * 3.0))[0]
              for i in range(64)]
    for seed, kw in [(7, dict(top_p=0.8)), (8, dict(top_k=10, top_p=0.9, min_p=0.1)),
                     (9, dict(min_p=0.2))]:
        tokens, margin = draw_sequence(seed, logits, 0.9, 16, **kw)
        print(f"draw seed {seed}, logits sin(1.7 i)*3 (64), T 0.9, {kw}:", tokens,
              "smallest gap", margin)


if __name__ == "__main__":
    main()
