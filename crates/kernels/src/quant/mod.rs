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

use crate::dispatch::{simd_level, SimdLevel};
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
    float::vec_dot_fn(dtype, level)
        .or_else(|| legacy::vec_dot_fn(dtype, level))
        .or_else(|| kquants::vec_dot_fn(dtype, level))
}

/// The four-row dot product for weight type `dtype` at exactly `level`, if there is one
/// and this CPU runs it.
pub fn vec_dot_x4_fn(dtype: DType, level: SimdLevel) -> Option<VecDotX4Fn> {
    // As in `vec_dot_fn`: this check makes handing out target-feature wrappers sound.
    if !level.is_supported() {
        return None;
    }
    legacy::vec_dot_x4_fn(dtype, level).or_else(|| kquants::vec_dot_x4_fn(dtype, level))
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
}

/// The kernels for one weight type, resolved once for this process's [`simd_level`].
#[derive(Clone, Copy, Debug)]
pub struct WeightKernels {
    pub dtype: DType,
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
}

/// Levels to try, best first, when running at `level`.
fn fallbacks(level: SimdLevel) -> &'static [SimdLevel] {
    match level {
        SimdLevel::Scalar => &[SimdLevel::Scalar],
        SimdLevel::Avx2 => &[SimdLevel::Avx2, SimdLevel::Scalar],
        SimdLevel::Avx512 => &[SimdLevel::Avx512, SimdLevel::Avx2, SimdLevel::Scalar],
        SimdLevel::Neon => &[SimdLevel::Neon, SimdLevel::Scalar],
    }
}

fn resolve(dtype: DType, level: SimdLevel) -> Option<WeightKernels> {
    let act = activation_type(dtype)?;
    let levels = fallbacks(level);
    let (dot_level, vec_dot) = levels
        .iter()
        .find_map(|&l| vec_dot_fn(dtype, l).map(|f| (l, f)))?;
    Some(WeightKernels {
        dtype,
        act,
        dequantize: dequantize_fn(dtype)?,
        quantize_act: levels.iter().find_map(|&l| quantize_fn(act, l))?,
        vec_dot,
        vec_dot_x4: vec_dot_x4_fn(dtype, dot_level),
        vec_dot_x8: vec_dot_x8_fn(dtype, dot_level),
        vec_dot_rows4: vec_dot_rows4_fn(dtype, dot_level),
    })
}

/// The best kernels for weight type `dtype` at this process's SIMD level, or `None` if
/// the type cannot be used as a weight.
pub fn weight_kernels(dtype: DType) -> Option<&'static WeightKernels> {
    static TABLE: OnceLock<Vec<WeightKernels>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            DType::all()
                .filter_map(|t| resolve(t, simd_level()))
                .collect()
        })
        .iter()
        .find(|k| k.dtype == dtype)
}

/// Dequantizes a whole row (convenience over [`dequantize_fn`]); `None` if unsupported.
pub fn dequantize_row(dtype: DType, src: &[u8], dst: &mut [f32]) -> Option<()> {
    let f = dequantize_fn(dtype)?;
    f(src, dst);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_and_eight_row_dots_are_bit_identical_to_single_row_dots() {
        use crate::quant::testing::{random_blocks, Rng};
        let mut rng = Rng::new(11);
        // The types with four- and eight-row kernels must stay covered by the loop below.
        #[cfg(target_arch = "x86_64")]
        if SimdLevel::Avx2.is_supported() {
            use DType::*;
            for t in [Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q5_K, Q6_K] {
                assert!(
                    vec_dot_x4_fn(t, SimdLevel::Avx2).is_some(),
                    "{t}: no AVX2 x4"
                );
            }
            for t in [Q4_0, Q4_1, Q5_0, Q8_0] {
                assert!(
                    vec_dot_x8_fn(t, SimdLevel::Avx2).is_some(),
                    "{t}: no AVX2 x8"
                );
            }
        }
        for level in SimdLevel::available() {
            for t in DType::all() {
                let x4 = vec_dot_x4_fn(t, level);
                let x8 = vec_dot_x8_fn(t, level);
                if x4.is_none() && x8.is_none() {
                    continue;
                }
                let dot = vec_dot_fn(t, level).expect("x4/x8 imply a single-row kernel");
                let act = activation_type(t).unwrap();
                for nb in [1usize, 2, 3, 7, 18] {
                    let n = nb * t.block_size();
                    let w = random_blocks(t, nb, &mut rng).unwrap();
                    let acts: Vec<Vec<u8>> = (0..8)
                        .map(|_| {
                            let x = rng.vec_f32(n, 3.0);
                            let mut a = vec![0u8; nb * act.type_size()];
                            quantize_fn(act, SimdLevel::Scalar).unwrap()(&x, &mut a);
                            a
                        })
                        .collect();
                    let mut got = Vec::new();
                    if let Some(x4) = x4 {
                        got.push(x4(n, &w, std::array::from_fn(|r| &acts[r][..])).to_vec());
                    }
                    if let Some(x8) = x8 {
                        got.push(x8(n, &w, std::array::from_fn(|r| &acts[r][..])).to_vec());
                    }
                    for rows in got {
                        for (r, v) in rows.iter().enumerate() {
                            assert_eq!(
                                v.to_bits(),
                                dot(n, &w, &acts[r]).to_bits(),
                                "{t} {} nb={nb} {} rows: row {r}",
                                level.name(),
                                rows.len()
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn four_weight_row_dots_are_bit_identical_to_single_row_dots() {
        use crate::quant::testing::{random_blocks, Rng};
        let mut rng = Rng::new(12);
        for level in SimdLevel::available() {
            for t in DType::all() {
                let Some(rows4) = vec_dot_rows4_fn(t, level) else {
                    continue;
                };
                let dot = vec_dot_fn(t, level).expect("rows4 implies a single-row kernel");
                let act = activation_type(t).unwrap();
                for (nb, g) in [(1usize, 1usize), (2, 3), (3, 1), (7, 2), (20, 5)] {
                    let n = nb * t.block_size();
                    let row_bytes = nb * t.type_size();
                    let w: Vec<Vec<u8>> = (0..4)
                        .map(|_| random_blocks(t, g * nb, &mut rng).unwrap())
                        .collect();
                    let x = rng.vec_f32(n, 3.0);
                    let mut a = vec![0u8; nb * act.type_size()];
                    quantize_fn(act, SimdLevel::Scalar).unwrap()(&x, &mut a);
                    let mut got = vec![f32::NAN; 4 * g];
                    rows4(n, [&w[0], &w[1], &w[2], &w[3]], &a, &mut got);
                    for i in 0..g {
                        for k in 0..4 {
                            let row = &w[k][i * row_bytes..(i + 1) * row_bytes];
                            assert_eq!(
                                got[4 * i + k].to_bits(),
                                dot(n, row, &a).to_bits(),
                                "{t} {} nb={nb} stream {k} row {i}",
                                level.name()
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_supported_weight_type_has_kernels() {
        for t in DType::all().filter(|t| t.is_supported()) {
            let k = weight_kernels(t).unwrap_or_else(|| panic!("{t} has no kernels"));
            assert_eq!(k.act, activation_type(t).unwrap());
            assert!(
                vec_dot_fn(t, SimdLevel::Scalar).is_some(),
                "{t}: no scalar dot"
            );
        }
    }

    #[test]
    fn unsupported_types_have_none() {
        for t in [
            DType::IQ2_XXS,
            DType::IQ4_NL,
            DType::TQ1_0,
            DType::MXFP4,
            DType::I32,
        ] {
            assert!(weight_kernels(t).is_none(), "{t}");
        }
    }
}
