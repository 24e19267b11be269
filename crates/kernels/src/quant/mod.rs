//! Block formats: dequantization, quantization of activations, and weight·activation dot
//! products, looked up by [`DType`] and [`SimdLevel`].
//!
//! All data travels as raw bytes (`&[u8]`) laid out exactly as in a GGUF file: a row of
//! `n` elements of type `t` is `n / t.block_size()` blocks of `t.type_size()` bytes, with
//! no alignment promised. Each weight type is paired with the activation type its dot
//! product consumes ([`activation_type`]): the activation row is quantized once per
//! mat-vec and reused against every weight row.
//!
//! Families: `float` (F32/F16/BF16), `legacy` (Q4_0..Q8_1, 32-element blocks) and
//! `kquants` (Q2_K..Q8_K, 256-element super-blocks). Each family has a scalar reference
//! (the spec) and SIMD versions that must match it.
//!
//! Which level runs: [`weight_kernels`] takes every dot product of a weight type from one
//! level (the per-row bit-identity of `vec_dot`, `vec_dot_rows4`, `vec_dot_x4`,
//! `vec_dot_x8` and the panel mat-mat holds only within a level), namely the level `measured_dot_level` names for
//! that type under the process's [`simd_level`]: the highest level measured faster than the
//! one below it, not simply the highest one the CPU has.

use crate::dispatch::{dots_forced_to_level, simd_level, SimdLevel};
use crate::dtype::DType;
use std::sync::OnceLock;

mod float;
mod kquants;
mod le_bytes;
mod legacy;
#[doc(hidden)]
pub mod testing;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86;

/// Dequantizes whole blocks: `dst.len()` is a multiple of the block size and `src` holds
/// exactly `dst.len() / block_size` blocks.
pub type DequantizeFn = fn(src: &[u8], dst: &mut [f32]);
/// Quantizes whole blocks: `src.len()` is a multiple of the block size and `dst` holds
/// exactly `src.len() / block_size` blocks.
pub type QuantizeFn = fn(src: &[f32], dst: &mut [u8]);
/// Dot product of `n` elements: `w` in the weight type, `a` in its activation type.
/// `n` is a multiple of the weight type's block size.
pub type VecDotFn = fn(n: usize, w: &[u8], a: &[u8]) -> f32;
/// One weight row against `N` activation rows: `[dot(w, a[0]), …, dot(w, a[N - 1])]`, each
/// bit-identical to the [`VecDotFn`] of the same type and level.
pub type VecDotXnFn<const N: usize> = fn(n: usize, w: &[u8], a: [&[u8]; N]) -> [f32; N];
/// [`VecDotXnFn`] for four activation rows.
pub type VecDotX4Fn = VecDotXnFn<4>;
/// [`VecDotXnFn`] for eight activation rows.
pub type VecDotX8Fn = VecDotXnFn<8>;
/// Four streams of weight rows against one activation row: each `w[k]` holds `g` whole
/// rows of `n` elements, back to back, `out` holds `4·g` floats, and
/// `out[4·i + k] = dot(row i of w[k], a)`, each bit-identical to the [`VecDotFn`] of the
/// same type and level. One call covers many rows, so its checks and call cost are paid
/// once per `4·g` rows rather than per row. Panics if the lengths do not fit.
pub type VecDotRows4Fn = fn(n: usize, w: [&[u8]; 4], a: &[u8], out: &mut [f32]);

/// Weight rows in one packed panel of the panel mat-mat ([`PanelKernels`]).
pub const PANEL_ROWS: usize = 16;
/// Packs `rows` (at most [`PANEL_ROWS`]) weight rows of `n` elements, back to back in
/// `w`, into a panel in `panel` (resized; missing rows are zero).
pub type PanelPackFn = fn(n: usize, rows: usize, w: &[u8], panel: &mut Vec<u8>);
/// The per-block integer sums of one activation row of `n` elements (one per block).
pub type ActSumsFn = fn(n: usize, a: &[u8], sums: &mut [i32]);
/// A packed panel against the activation rows back to back in `a` (their [`ActSumsFn`]
/// sums back to back in `sums`): `out[PANEL_ROWS·r + l]` is the dot product of panel row
/// `l` with activation row `r`, bit-identical to the [`VecDotFn`] of the same type and
/// level. `out.len()` is a multiple of [`PANEL_ROWS`].
pub type PanelDotFn = fn(n: usize, panel: &[u8], a: &[u8], sums: &[i32], out: &mut [f32]);

/// A mat-mat over weights repacked per call into panels of [`PANEL_ROWS`] rows, so that
/// one instruction serves many weight rows (AVX-512 VNNI: one `vpdpbusd` per four
/// elements of sixteen rows).
#[derive(Clone, Copy, Debug)]
pub struct PanelKernels {
    pub pack: PanelPackFn,
    pub act_sums: ActSumsFn,
    pub dot: PanelDotFn,
}

/// The activation type a weight type's dot product consumes, or `None` if the weight
/// type cannot be used in dot products.
pub fn activation_type(weight: DType) -> Option<DType> {
    match weight {
        DType::F32 | DType::F16 | DType::BF16 => Some(DType::F32),
        // Q8_1 rather than Q8_0 even for the `_0` weights: its f32 scale needs no
        // conversion per block pair, and its `s = d·Σq` lets SIMD kernels take the `_0`
        // offsets as a per-block correction (see `legacy`).
        DType::Q4_0 | DType::Q4_1 | DType::Q5_0 | DType::Q5_1 | DType::Q8_0 => Some(DType::Q8_1),
        DType::Q2_K | DType::Q3_K | DType::Q4_K | DType::Q5_K | DType::Q6_K => Some(DType::Q8_K),
        _ => None,
    }
}

/// Bytes taken by a row of `n` elements of `dtype` (`n` a multiple of the block size).
pub fn row_bytes(dtype: DType, n: usize) -> usize {
    debug_assert_eq!(
        n % dtype.block_size(),
        0,
        "{dtype}: {n} is not whole blocks"
    );
    n / dtype.block_size() * dtype.type_size()
}

/// The scalar dequantizer for `dtype`, if Kaiyuan reads that type.
pub fn dequantize_fn(dtype: DType) -> Option<DequantizeFn> {
    float::dequantize_fn(dtype)
        .or_else(|| legacy::dequantize_fn(dtype))
        .or_else(|| kquants::dequantize_fn(dtype))
}

/// The quantizer for `dtype` written for exactly `level`, if there is one and this CPU
/// runs it. Activation types (F32, Q8_0, Q8_1, Q8_K) and Q4_0/Q8_0 have quantizers.
pub fn quantize_fn(dtype: DType, level: SimdLevel) -> Option<QuantizeFn> {
    if !level.is_supported() {
        return None;
    }
    float::quantize_fn(dtype, level)
        .or_else(|| legacy::quantize_fn(dtype, level))
        .or_else(|| kquants::quantize_fn(dtype, level))
}

/// The dot product for weight type `dtype` written for exactly `level`, if there is one
/// and this CPU runs it. Tests compare every level against [`SimdLevel::Scalar`].
pub fn vec_dot_fn(dtype: DType, level: SimdLevel) -> Option<VecDotFn> {
    // Families may assume the CPU supports `level`: this check is what makes handing out
    // their target-feature wrappers sound.
    if !level.is_supported() {
        return None;
    }
    float::vec_dot_fn(dtype, family_level(level))
        .or_else(|| legacy::vec_dot_fn(dtype, level))
        .or_else(|| kquants::vec_dot_fn(dtype, family_level(level)))
}

/// The level whose kernels the float and K-quant families hand out at `level`: AMX adds
/// tiles only to the legacy formats' mat-mat, so at AMX those families run their AVX-512
/// kernels (an AMX CPU has AVX-512 VNNI), which keeps every level complete.
fn family_level(level: SimdLevel) -> SimdLevel {
    if level == SimdLevel::Amx {
        SimdLevel::Avx512
    } else {
        level
    }
}

/// The four-row dot product for weight type `dtype` at exactly `level`, if there is one
/// and this CPU runs it.
pub fn vec_dot_x4_fn(dtype: DType, level: SimdLevel) -> Option<VecDotX4Fn> {
    // As in `vec_dot_fn`: this check makes handing out target-feature wrappers sound.
    if !level.is_supported() {
        return None;
    }
    legacy::vec_dot_x4_fn(dtype, level)
        .or_else(|| kquants::vec_dot_x4_fn(dtype, family_level(level)))
}

/// The eight-row dot product for weight type `dtype` at exactly `level`, if there is one
/// and this CPU runs it.
pub fn vec_dot_x8_fn(dtype: DType, level: SimdLevel) -> Option<VecDotX8Fn> {
    // As in `vec_dot_fn`: this check makes handing out target-feature wrappers sound.
    if !level.is_supported() {
        return None;
    }
    legacy::vec_dot_x8_fn(dtype, level)
}

/// The four-weight-row dot product for weight type `dtype` at exactly `level`, if there
/// is one and this CPU runs it.
pub fn vec_dot_rows4_fn(dtype: DType, level: SimdLevel) -> Option<VecDotRows4Fn> {
    // As in `vec_dot_fn`: this check makes handing out target-feature wrappers sound.
    if !level.is_supported() {
        return None;
    }
    legacy::vec_dot_rows4_fn(dtype, level)
        .or_else(|| kquants::vec_dot_rows4_fn(dtype, family_level(level)))
}

/// The packed-panel mat-mat for weight type `dtype` at exactly `level`, if there is one
/// and this CPU runs it.
pub fn panel_fn(dtype: DType, level: SimdLevel) -> Option<PanelKernels> {
    // As in `vec_dot_fn`: this check makes handing out target-feature wrappers sound.
    if !level.is_supported() {
        return None;
    }
    legacy::panel_fn(dtype, level).or_else(|| kquants::panel_fn(dtype, family_level(level)))
}

/// The kernels for one weight type, resolved once for this process's [`simd_level`].
#[derive(Clone, Copy, Debug)]
pub struct WeightKernels {
    pub dtype: DType,
    /// The level every dot product below is written for (the quantizer's may differ: it is
    /// bit-identical to scalar at every level).
    pub level: SimdLevel,
    /// Activation type the dot product consumes.
    pub act: DType,
    pub dequantize: DequantizeFn,
    /// Quantizes an f32 activation row into `act`.
    pub quantize_act: QuantizeFn,
    pub vec_dot: VecDotFn,
    /// Four activation rows at once, bit-identical per row to `vec_dot` (present only
    /// where it exists at the same level as `vec_dot`).
    pub vec_dot_x4: Option<VecDotX4Fn>,
    /// Eight activation rows at once, the same way (present only where it exists at the
    /// same level as `vec_dot`).
    pub vec_dot_x8: Option<VecDotX8Fn>,
    /// Four weight rows at once, bit-identical per row to `vec_dot` (present only where
    /// it exists at the same level as `vec_dot`).
    pub vec_dot_rows4: Option<VecDotRows4Fn>,
    /// The packed-panel mat-mat, bit-identical per row to `vec_dot` (present only where
    /// it exists at the same level as `vec_dot`).
    pub panel: Option<PanelKernels>,
}

/// Levels to try, best first, when running at `level`.
fn fallbacks(level: SimdLevel) -> &'static [SimdLevel] {
    match level {
        SimdLevel::Scalar => &[SimdLevel::Scalar],
        SimdLevel::Avx2 => &[SimdLevel::Avx2, SimdLevel::Scalar],
        SimdLevel::Avx512 => &[SimdLevel::Avx512, SimdLevel::Avx2, SimdLevel::Scalar],
        SimdLevel::Amx => &[
            SimdLevel::Amx,
            SimdLevel::Avx512,
            SimdLevel::Avx2,
            SimdLevel::Scalar,
        ],
        SimdLevel::Neon => &[SimdLevel::Neon, SimdLevel::Scalar],
    }
}

/// The highest level the dot products of weight type `dtype` (all five: `vec_dot`,
/// `vec_dot_rows4`, `vec_dot_x4`, `vec_dot_x8`, `panel`, one level for all so that they
/// stay bit-identical per row) may run at when the process runs at `level`: a level is
/// used for a type only where it was measured faster than the level below it.
///
/// AVX-512 runs the legacy formats Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 (issue 22): their
/// AVX-512 VNNI level has the packed-panel mat-mat and a four-stream mat-vec
/// (`legacy::avx512_panel`, `legacy::avx512`). Measured on an Intel Xeon with AVX-512 VNNI
/// and AMX (BENCHMARKS.md, "Intel Xeon (AVX-512, AMX)", 1 thread, interleaved rounds,
/// AVX-512 ÷ AVX2 throughput): mat-mat 576×1536 against 64 rows 3.3–3.5× (Q5_1 7.0×),
/// against 16 rows 2.3–2.6× (Q5_1 4.3×); cache-resident mat-vec 576×1536 1.19–1.32×; DRAM
/// mat-vec 4096×4096 1.00–1.08× (memory-bound; Q5_1 1.38×, no AVX2 `rows4`).
///
/// AVX-512 also runs Q4_K, Q5_K and Q6_K: their AVX-512 VNNI level has a packed-panel
/// mat-mat (`kquants::avx512_panel`) and a four-stream mat-vec (`kquants::avx512`), both
/// giving the scalar reference's bits. Measured on an AMD EPYC with AVX-512 (Zen 4, no AMX;
/// BENCHMARKS.md, "AMD EPYC with AVX-512: K-quant panels", 1 thread, 3 interleaved rounds,
/// AVX-512 ÷ AVX2): mat-mat against 16 rows 1.11–1.37×, 64 rows 2.02–2.47×, 256 rows
/// 2.49–3.13×; mat-vec 1.02–1.06× (Q4_K, Q5_K), 1.20–1.28× (Q6_K).
///
/// Everything else stays at AVX2, where the AVX-512 kernels are one-row only. Evidence,
/// AVX-512 against AVX2:
/// - Intel Xeon with AVX-512 VNNI (issue 22, `kaiyuan bench`, 1 thread): Gemma 3 Q4_K_M
///   (Q5_0, Q8_0, Q4_K, Q6_K) 199/52.2 t/s pp512/tg128 against 320/71.3 with the old
///   one-row AVX-512 kernels for every type.
/// - AMD EPYC with AVX-512 (BENCHMARKS.md, "AVX-512 vs AVX2 per weight type", 1 thread,
///   medians of 3-6 interleaved rounds; mat-vec 576×1536 and 4096×4096, mat-mat 576×1536
///   against 64 rows). The ratios are AVX-512 ÷ AVX2 throughput.
///
/// | type | mat-vec | mat-mat | dots at | why |
/// |---|---|---|---|---|
/// | Q2_K, Q3_K | 0.96–1.04 | 0.97–1.02 | AVX2 | within noise |
/// | F16, BF16 | 0.88–1.13 | 1.20 (ranges overlap) | AVX2 | DRAM mat-vec slower |
/// | F32 | 0.95–1.07 | 1.06 | AVX2 | within noise |
///
/// The activation quantizers have no AVX-512 version; they run at the best level below
/// (AVX2) and give the same bits at every level.
///
/// AMX (`legacy::amx`: the legacy panels multiplied by `tdpbsud` tiles, the same bits)
/// measured within ±5% of the AVX-512 panels in mat-mat (the per-block float steps, not the
/// integer products, bound both), so an AMX process runs every type as an AVX-512 one.
///
/// Other levels (Scalar, AVX2, NEON) are the top of their own line and run as they are.
/// `KAIYUAN_SIMD=avx512-all` and `amx-all` bypass this table ([`dots_forced_to_level`]).
fn measured_dot_level(dtype: DType, level: SimdLevel) -> SimdLevel {
    use DType::*;
    match (level, dtype) {
        (SimdLevel::Avx512, Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0) => SimdLevel::Avx512,
        (SimdLevel::Avx512, Q4_K | Q5_K | Q6_K) => SimdLevel::Avx512,
        (SimdLevel::Avx512, Q2_K | Q3_K) => SimdLevel::Avx2,
        (SimdLevel::Avx512, F32 | F16 | BF16) => SimdLevel::Avx2,
        // Types without dot products: nothing runs, AVX2 is the safe answer.
        (SimdLevel::Avx512, _) => SimdLevel::Avx2,
        // AMX multiplies the same panels with tiles, and measured no faster than AVX-512
        // (BENCHMARKS.md, "Intel Xeon (AVX-512, AMX)"): every type as under AVX-512.
        (SimdLevel::Amx, _) => measured_dot_level(dtype, SimdLevel::Avx512),
        (other, _) => other,
    }
}

/// The kernels of `dtype` when the process runs at `level`: dot products at
/// [`measured_dot_level`] (or at `level` itself if `force_dots`), falling back level by level
/// where a type has no kernel there.
fn resolve(dtype: DType, level: SimdLevel, force_dots: bool) -> Option<WeightKernels> {
    let act = activation_type(dtype)?;
    let dot_cap = if force_dots {
        level
    } else {
        measured_dot_level(dtype, level)
    };
    let (dot_level, vec_dot) = fallbacks(dot_cap)
        .iter()
        .find_map(|&l| vec_dot_fn(dtype, l).map(|f| (l, f)))?;
    Some(WeightKernels {
        dtype,
        level: dot_level,
        act,
        dequantize: dequantize_fn(dtype)?,
        quantize_act: fallbacks(level).iter().find_map(|&l| quantize_fn(act, l))?,
        vec_dot,
        vec_dot_x4: vec_dot_x4_fn(dtype, dot_level),
        vec_dot_x8: vec_dot_x8_fn(dtype, dot_level),
        vec_dot_rows4: vec_dot_rows4_fn(dtype, dot_level),
        panel: panel_fn(dtype, dot_level),
    })
}

/// The kernels for weight type `dtype` at this process's SIMD level (see
/// `measured_dot_level`), or `None` if the type cannot be used as a weight.
pub fn weight_kernels(dtype: DType) -> Option<&'static WeightKernels> {
    static TABLE: OnceLock<Vec<WeightKernels>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            DType::all()
                .filter_map(|t| resolve(t, simd_level(), dots_forced_to_level()))
                .collect()
        })
        .iter()
        .find(|k| k.dtype == dtype)
}

/// What runs, in words, for `kaiyuan bench` and the benchmarks: the process level, and the
/// dot products' level where it differs, e.g. `avx512 (dot products: avx2)`, or
/// `avx512 (dot products: avx2; avx512 for F16, BF16)` when types differ.
pub fn simd_description() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let kernels: Vec<&WeightKernels> = DType::all().filter_map(weight_kernels).collect();
        describe(simd_level(), &kernels)
    })
}

fn describe(level: SimdLevel, kernels: &[&WeightKernels]) -> String {
    if kernels.iter().all(|k| k.level == level) {
        return level.name().to_string();
    }
    // The level most types run at, then the exceptions.
    let mut levels: Vec<SimdLevel> = kernels.iter().map(|k| k.level).collect();
    levels.sort();
    levels.dedup();
    let count = |l: SimdLevel| kernels.iter().filter(|k| k.level == l).count();
    let main = *levels
        .iter()
        .max_by_key(|&&l| (count(l), l))
        .expect("not all equal, so not empty");
    let mut text = format!("{} (dot products: {}", level.name(), main.name());
    for &l in levels.iter().rev().filter(|&&l| l != main) {
        let types: Vec<String> = kernels
            .iter()
            .filter(|k| k.level == l)
            .map(|k| k.dtype.name().to_string())
            .collect();
        text += &format!("; {} for {}", l.name(), types.join(", "));
    }
    text + ")"
}

/// Dequantizes a whole row (convenience over [`dequantize_fn`]); `None` if unsupported.
pub fn dequantize_row(dtype: DType, src: &[u8], dst: &mut [f32]) -> Option<()> {
    let f = dequantize_fn(dtype)?;
    f(src, dst);
    Some(())
}

#[cfg(test)]
mod tests;
