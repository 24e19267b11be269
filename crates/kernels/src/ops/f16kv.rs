//! Attention's inner loops over f16 (IEEE binary16) keys and values read in place from the
//! KV cache, for all the query heads that share one KV head (grouped-query attention):
//! [`dot_heads_f16`] (every query head · every key) and [`axpy_heads_f16`] (every head's
//! weighted sum of the values). Converting while loading (F16C `vcvtph2ps` on x86) avoids
//! an f32 copy of the cache, and doing all the heads of a group in one pass reads and
//! converts each key and value once instead of once per head.
//!
//! The scalar functions are the reference. Per (head, key) the dot accumulates in eight
//! interleaved lanes, and the weighted sum accumulates the keys in order into a zeroed
//! sum that is then added to the output, as the AVX2 versions do; every f16 value
//! converts exactly, so the SIMD versions differ from them only by FMA rounding and the
//! order of the final eight-lane sum.

#[cfg(target_arch = "x86_64")]
use crate::dispatch::runs_avx2;
use crate::half::f16_to_f32;

/// Checks the shapes shared by both kernels; returns `(head_dim, keys)`.
fn check_shape(
    op: &str,
    heads: usize,
    per_head: usize,
    kv: usize,
    stride: usize,
) -> (usize, usize) {
    assert!(heads > 0, "{op}: no heads");
    assert!(
        per_head.is_multiple_of(heads),
        "{op}: {per_head} query/output values are not whole heads of {heads}"
    );
    let d = per_head / heads;
    assert!(d > 0, "{op}: empty heads");
    assert!(
        kv.is_multiple_of(d),
        "{op}: {kv} key/value elements are not whole rows of {d}"
    );
    let n = kv / d;
    assert!(
        n <= stride,
        "{op}: {n} keys do not fit a stride of {stride}"
    );
    (d, n)
}

/// Scores of `heads` query heads against `n` keys: `q` is `[heads, d]`, `keys` is
/// `[n, d]` (f16 bits), and `out[h·out_stride + t] = q_h · k_t`. Panics if the shapes do
/// not fit (`n ≤ out_stride`, `out` long enough).
pub fn dot_heads_f16(q: &[f32], heads: usize, keys: &[u16], out: &mut [f32], out_stride: usize) {
    let (d, n) = check_shape("dot_heads_f16", heads, q.len(), keys.len(), out_stride);
    if n == 0 {
        return;
    }
    assert!(
        out.len() >= (heads - 1) * out_stride + n,
        "dot_heads_f16: output too short"
    );
    #[cfg(not(target_arch = "x86_64"))]
    let _ = d;
    #[cfg(target_arch = "x86_64")]
    if runs_avx2() {
        // SAFETY: the level check guarantees AVX2, FMA and F16C; the shapes were checked
        // above (`q` is heads × d, `keys` n × d, `out` holds every (h, t) slot).
        unsafe { avx2::dot_heads(q, heads, d, keys, n, out, out_stride) };
        return;
    }
    dot_heads_f16_scalar(q, heads, keys, out, out_stride)
}

/// Weighted sums of `n` value rows for `heads` heads: `p` holds head `h`'s weights at
/// `p[h·p_stride ..][..n]`, `values` is `[n, d]` (f16 bits), `out` is `[heads, d]` and
/// gets `out_h += Σ_t p[h·p_stride + t] · v_t`. Panics if the shapes do not fit.
pub fn axpy_heads_f16(p: &[f32], p_stride: usize, heads: usize, values: &[u16], out: &mut [f32]) {
    let (d, n) = check_shape("axpy_heads_f16", heads, out.len(), values.len(), p_stride);
    if n == 0 {
        return;
    }
    assert!(
        p.len() >= (heads - 1) * p_stride + n,
        "axpy_heads_f16: weights too short"
    );
    #[cfg(not(target_arch = "x86_64"))]
    let _ = d;
    #[cfg(target_arch = "x86_64")]
    if runs_avx2() {
        // SAFETY: the level check guarantees AVX2, FMA and F16C; the shapes were checked
        // above (`values` n × d, `out` heads × d, `p` holds every (h, t) weight).
        unsafe { avx2::axpy_heads(p, p_stride, heads, d, values, n, out) };
        return;
    }
    axpy_heads_f16_scalar(p, p_stride, heads, values, out)
}

/// Eight-lane dot product of `a` with the f16 row `b` (the reference's per-pair order).
fn dot_one(a: &[f32], b: &[u16]) -> f32 {
    const LANES: usize = 8;
    let mut acc = [0f32; LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(&x, &y)| x * f16_to_f32(y))
        .sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..LANES {
            acc[i] += x[i] * f16_to_f32(y[i]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Reference of [`dot_heads_f16`].
pub fn dot_heads_f16_scalar(
    q: &[f32],
    heads: usize,
    keys: &[u16],
    out: &mut [f32],
    out_stride: usize,
) {
    let (d, _) = check_shape("dot_heads_f16", heads, q.len(), keys.len(), out_stride);
    for (h, qh) in q.chunks_exact(d).enumerate() {
        for (t, k) in keys.chunks_exact(d).enumerate() {
            out[h * out_stride + t] = dot_one(qh, k);
        }
    }
}

/// Reference of [`axpy_heads_f16`].
pub fn axpy_heads_f16_scalar(
    p: &[f32],
    p_stride: usize,
    heads: usize,
    values: &[u16],
    out: &mut [f32],
) {
    let (d, _) = check_shape("axpy_heads_f16", heads, out.len(), values.len(), p_stride);
    let mut sum = vec![0f32; d];
    for (h, oh) in out.chunks_exact_mut(d).enumerate() {
        sum.fill(0.0);
        for (t, v) in values.chunks_exact(d).enumerate() {
            let w = p[h * p_stride + t];
            for (s, &x) in sum.iter_mut().zip(v) {
                *s += w * f16_to_f32(x);
            }
        }
        for (o, s) in oh.iter_mut().zip(&sum) {
            *o += s;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use crate::half::f16_to_f32;
    use crate::quant::x86::hsum_ps;
    use std::arch::x86_64::*;

    /// Keys scored per pass of [`dot_group`]: four independent accumulators per head
    /// hide the FMA latency, and the four sums reduce together ([`hsum4`]).
    const KEY_TILE: usize = 4;

    /// Eight f16 values at `p`, as f32.
    ///
    /// # Safety
    /// The CPU has F16C; `p..p + 8` is readable.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8(p: *const u16) -> __m256 {
        // SAFETY: the caller guarantees eight readable values.
        _mm256_cvtph_ps(unsafe { _mm_loadu_si128(p as *const __m128i) })
    }

    /// `[Σ a[0], Σ a[1], Σ a[2], Σ a[3]]`, each over eight lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn hsum4(a: [__m256; 4]) -> __m128 {
        let s = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
        _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s))
    }

    /// `Σ a[i]·b[i]` over `from..d` (the part of a row past its last full eight lanes).
    ///
    /// # Safety
    /// `a..a + d` and `b..b + d` are readable.
    #[inline]
    unsafe fn tail_dot(a: *const f32, b: *const u16, from: usize, d: usize) -> f32 {
        // SAFETY: i < d, inside both rows.
        (from..d)
            .map(|i| unsafe { *a.add(i) * f16_to_f32(*b.add(i)) })
            .sum()
    }

    /// # Safety
    /// AVX2, FMA and F16C; `q` is `heads·d`, `keys` is `n·d`, and `out` holds index
    /// `h·stride + t` for every `h < heads`, `t < n`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot_heads(
        q: &[f32],
        heads: usize,
        d: usize,
        keys: &[u16],
        n: usize,
        out: &mut [f32],
        stride: usize,
    ) {
        let mut h = 0;
        while h < heads {
            let group = (heads - h).min(3);
            // SAFETY: heads h..h + group exist in `q` and `out` (caller's shapes).
            unsafe {
                let (qp, op) = (q.as_ptr().add(h * d), out.as_mut_ptr().add(h * stride));
                let kp = keys.as_ptr();
                match group {
                    3 => dot_group::<3>(qp, d, kp, n, op, stride),
                    2 => dot_group::<2>(qp, d, kp, n, op, stride),
                    _ => dot_group::<1>(qp, d, kp, n, op, stride),
                }
            }
            h += group;
        }
    }

    /// Scores of `H` consecutive query heads against `n` keys.
    ///
    /// # Safety
    /// As [`dot_heads`], for the `H` heads starting at `q` / `out`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot_group<const H: usize>(
        q: *const f32,
        d: usize,
        keys: *const u16,
        n: usize,
        out: *mut f32,
        stride: usize,
    ) {
        let full = d / 8 * 8;
        let mut t = 0;
        while t + KEY_TILE <= n {
            let mut acc = [[_mm256_setzero_ps(); KEY_TILE]; H];
            let mut i = 0;
            while i < full {
                for k in 0..KEY_TILE {
                    // SAFETY: key t + k < n and i + 8 <= d: inside `keys`.
                    let kv = unsafe { load8(keys.add((t + k) * d + i)) };
                    for (h, acc_h) in acc.iter_mut().enumerate() {
                        // SAFETY: head h < H and i + 8 <= d: inside `q`.
                        let qv = unsafe { _mm256_loadu_ps(q.add(h * d + i)) };
                        acc_h[k] = _mm256_fmadd_ps(qv, kv, acc_h[k]);
                    }
                }
                i += 8;
            }
            for (h, acc_h) in acc.iter().enumerate() {
                let mut sums = [0f32; KEY_TILE];
                // SAFETY: `sums` holds four f32.
                unsafe { _mm_storeu_ps(sums.as_mut_ptr(), hsum4(*acc_h)) };
                for (k, s) in sums.into_iter().enumerate() {
                    // SAFETY: row h of `q`, key t + k < n of `keys`; slot h·stride + t + k
                    // of `out` exists (caller's shapes).
                    unsafe {
                        let tail = tail_dot(q.add(h * d), keys.add((t + k) * d), full, d);
                        *out.add(h * stride + t + k) = s + tail;
                    }
                }
            }
            t += KEY_TILE;
        }
        while t < n {
            let mut acc = [_mm256_setzero_ps(); H];
            let mut i = 0;
            while i < full {
                // SAFETY: key t < n and i + 8 <= d.
                let kv = unsafe { load8(keys.add(t * d + i)) };
                for (h, acc_h) in acc.iter_mut().enumerate() {
                    // SAFETY: head h < H and i + 8 <= d.
                    let qv = unsafe { _mm256_loadu_ps(q.add(h * d + i)) };
                    *acc_h = _mm256_fmadd_ps(qv, kv, *acc_h);
                }
                i += 8;
            }
            for (h, acc_h) in acc.iter().enumerate() {
                // SAFETY: as in the tiled loop above.
                unsafe {
                    let tail = tail_dot(q.add(h * d), keys.add(t * d), full, d);
                    *out.add(h * stride + t) = hsum_ps(*acc_h) + tail;
                }
            }
            t += 1;
        }
    }

    /// # Safety
    /// AVX2, FMA and F16C; `values` is `n·d`, `out` is `heads·d`, and `p` holds index
    /// `h·p_stride + t` for every `h < heads`, `t < n`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn axpy_heads(
        p: &[f32],
        p_stride: usize,
        heads: usize,
        d: usize,
        values: &[u16],
        n: usize,
        out: &mut [f32],
    ) {
        let mut h = 0;
        while h < heads {
            let group = (heads - h).min(4);
            // SAFETY: heads h..h + group exist in `p` and `out` (caller's shapes).
            unsafe {
                let (pp, op) = (p.as_ptr().add(h * p_stride), out.as_mut_ptr().add(h * d));
                let vp = values.as_ptr();
                // Vectors per dimension chunk: as many accumulators as registers allow
                // (H·V accumulators + H broadcast weights + 1 value ≤ 16 registers).
                match group {
                    4 => axpy_group::<4, 2>(pp, p_stride, d, vp, n, op),
                    3 => axpy_group::<3, 2>(pp, p_stride, d, vp, n, op),
                    2 => axpy_group::<2, 4>(pp, p_stride, d, vp, n, op),
                    _ => axpy_group::<1, 8>(pp, p_stride, d, vp, n, op),
                }
            }
            h += group;
        }
    }

    /// Weighted value sums of `H` consecutive heads, `8·V` dimensions at a time.
    ///
    /// # Safety
    /// As [`axpy_heads`], for the `H` heads starting at `p` / `out`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn axpy_group<const H: usize, const V: usize>(
        p: *const f32,
        p_stride: usize,
        d: usize,
        values: *const u16,
        n: usize,
        out: *mut f32,
    ) {
        let mut i = 0;
        while i + 8 * V <= d {
            // SAFETY: i + 8·V <= d, within every row and head.
            unsafe { axpy_chunk::<H, V>(p, p_stride, d, values, n, out, i) };
            i += 8 * V;
        }
        while i + 8 <= d {
            // SAFETY: i + 8 <= d, within every row and head.
            unsafe { axpy_chunk::<H, 1>(p, p_stride, d, values, n, out, i) };
            i += 8;
        }
        if i < d {
            for h in 0..H {
                for j in i..d {
                    // SAFETY: h < H, t < n, j < d: inside `p`, `values` and `out`.
                    unsafe {
                        let s: f32 = (0..n)
                            .map(|t| *p.add(h * p_stride + t) * f16_to_f32(*values.add(t * d + j)))
                            .sum();
                        *out.add(h * d + j) += s;
                    }
                }
            }
        }
    }

    /// Dimensions `i..i + 8·V` of [`axpy_group`].
    ///
    /// # Safety
    /// As [`axpy_group`], and `i + 8·V <= d`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn axpy_chunk<const H: usize, const V: usize>(
        p: *const f32,
        p_stride: usize,
        d: usize,
        values: *const u16,
        n: usize,
        out: *mut f32,
        i: usize,
    ) {
        let mut acc = [[_mm256_setzero_ps(); V]; H];
        for t in 0..n {
            let mut w = [_mm256_setzero_ps(); H];
            for (h, w_h) in w.iter_mut().enumerate() {
                // SAFETY: h < H, t < n: inside `p`.
                *w_h = _mm256_set1_ps(unsafe { *p.add(h * p_stride + t) });
            }
            #[allow(clippy::needless_range_loop)] // j indexes the value row and `acc[h]`
            for j in 0..V {
                // SAFETY: t < n and i + 8·j + 8 <= d: inside `values`.
                let v = unsafe { load8(values.add(t * d + i + 8 * j)) };
                for h in 0..H {
                    acc[h][j] = _mm256_fmadd_ps(w[h], v, acc[h][j]);
                }
            }
        }
        for (h, acc_h) in acc.iter().enumerate() {
            for (j, a) in acc_h.iter().enumerate() {
                // SAFETY: h < H and i + 8·j + 8 <= d: inside `out`.
                unsafe {
                    let o = out.add(h * d + i + 8 * j);
                    _mm256_storeu_ps(o, _mm256_add_ps(_mm256_loadu_ps(o), *a));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::half::f32_to_f16;
    use crate::quant::testing::Rng;

    fn floats(n: usize, r: &mut Rng) -> Vec<f32> {
        (0..n).map(|_| r.uniform(-2.0, 2.0)).collect()
    }

    fn halves(n: usize, r: &mut Rng) -> Vec<u16> {
        (0..n).map(|_| f32_to_f16(r.uniform(-2.0, 2.0))).collect()
    }

    /// Head counts that hit every group size of the SIMD paths (and a remainder), head
    /// dimensions with and without a tail past the last eight lanes, key counts on both
    /// sides of the key tile.
    const HEADS: [usize; 6] = [1, 2, 3, 4, 5, 8];
    const DIMS: [usize; 6] = [1, 7, 8, 24, 64, 72];
    const KEYS: [usize; 5] = [0, 1, 3, 4, 17];

    fn close(got: f32, want: f32, mag: f32) -> bool {
        (got - want).abs() <= 2e-6 * mag.max(1.0)
    }

    #[test]
    fn dispatched_dot_heads_match_the_reference() {
        let mut r = Rng::new(7);
        for heads in HEADS {
            for d in DIMS {
                for n in KEYS {
                    let q = floats(heads * d, &mut r);
                    let keys = halves(n * d, &mut r);
                    let stride = n + 3;
                    let mut got = vec![f32::NAN; heads * stride];
                    let mut want = got.clone();
                    dot_heads_f16(&q, heads, &keys, &mut got, stride);
                    dot_heads_f16_scalar(&q, heads, &keys, &mut want, stride);
                    for h in 0..heads {
                        for t in 0..n {
                            let mag: f32 = (0..d)
                                .map(|i| (q[h * d + i] * f16_to_f32(keys[t * d + i])).abs())
                                .sum();
                            let (g, w) = (got[h * stride + t], want[h * stride + t]);
                            assert!(close(g, w, mag), "h{heads} d{d} n{n}: {g} vs {w}");
                        }
                        // Slots past the keys are left alone.
                        assert!(got[h * stride + n..(h + 1) * stride]
                            .iter()
                            .all(|x| x.is_nan()));
                    }
                }
            }
        }
    }

    #[test]
    fn dispatched_axpy_heads_match_the_reference() {
        let mut r = Rng::new(11);
        for heads in HEADS {
            for d in DIMS {
                for n in KEYS {
                    let stride = n + 2;
                    let p: Vec<f32> = (0..heads * stride).map(|_| r.uniform(0.0, 1.0)).collect();
                    let values = halves(n * d, &mut r);
                    let start = floats(heads * d, &mut r);
                    let (mut got, mut want) = (start.clone(), start.clone());
                    axpy_heads_f16(&p, stride, heads, &values, &mut got);
                    axpy_heads_f16_scalar(&p, stride, heads, &values, &mut want);
                    for (idx, (g, w)) in got.iter().zip(&want).enumerate() {
                        let (h, i) = (idx / d, idx % d);
                        let mag: f32 = start[idx].abs()
                            + (0..n)
                                .map(|t| (p[h * stride + t] * f16_to_f32(values[t * d + i])).abs())
                                .sum::<f32>();
                        assert!(close(*g, *w, mag), "h{heads} d{d} n{n}: {g} vs {w}");
                    }
                }
            }
        }
    }

    #[test]
    fn reference_is_exact_on_small_integers() {
        // Two heads, three keys of five dimensions: every product and sum is an integer.
        let q: Vec<f32> = (0..10).map(|i| i as f32 - 4.0).collect();
        let keys: Vec<u16> = (0..15).map(|i| f32_to_f16((i % 4) as f32 - 1.0)).collect();
        let want = |h: usize, t: usize| -> f32 {
            (0..5)
                .map(|i| (h * 5 + i) as f32 - 4.0)
                .zip((0..5).map(|i| ((t * 5 + i) % 4) as f32 - 1.0))
                .map(|(a, b)| a * b)
                .sum()
        };
        for f in [dot_heads_f16, dot_heads_f16_scalar] {
            let mut out = [0f32; 8];
            f(&q, 2, &keys, &mut out, 4);
            for h in 0..2 {
                for t in 0..3 {
                    assert_eq!(out[h * 4 + t], want(h, t));
                }
            }
        }
        let p = [1.0, 2.0, -1.0, 0.0, 3.0, 0.0, 1.0, 0.0];
        for f in [axpy_heads_f16, axpy_heads_f16_scalar] {
            let mut out = [1f32; 10];
            f(&p, 4, 2, &keys, &mut out);
            for h in 0..2 {
                for i in 0..5 {
                    let v = |t: usize| ((t * 5 + i) % 4) as f32 - 1.0;
                    let w = 1.0 + p[h * 4] * v(0) + p[h * 4 + 1] * v(1) + p[h * 4 + 2] * v(2);
                    assert_eq!(out[h * 5 + i], w);
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "do not fit a stride")]
    fn too_many_keys_for_the_stride_panics() {
        dot_heads_f16(&[0.0; 8], 1, &[0; 24], &mut [0.0; 8], 2);
    }
}
