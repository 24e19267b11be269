//! CPU feature detection, done once, and the `KAIYUAN_SIMD` override.
//!
//! Every kernel family is chosen by [`SimdLevel`]: the best level this CPU supports, or a
//! lower one forced through the environment (`KAIYUAN_SIMD=scalar` forces the scalar
//! reference paths everywhere; `avx2`, `avx512`, `amx`, `neon` cap the level).
//!
//! The level is a cap, not a promise that every op runs at it: a weight type's dot
//! products run at the level its table in [`crate::quant`] (`measured_dot_level`) names,
//! which is the highest level measured faster than the one below it for that type. On an
//! AVX-512 CPU that is AVX-512 for the legacy formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: packed
//! panel mat-mat and four-stream mat-vec with VNNI) and AVX2 for the others, whose AVX-512
//! kernels are one-row only (BENCHMARKS.md, "AVX-512 vs AVX2 per weight type" and "Intel
//! Xeon (AVX-512, AMX)"). `KAIYUAN_SIMD=avx512-all` skips that table and runs every
//! AVX-512 kernel that exists, to re-measure it ([`dots_forced_to_level`]); `amx-all` does
//! the same one level up (AMX panels for the legacy formats, which the table leaves at
//! AVX-512 because they measured no faster).

use std::sync::OnceLock;

/// An instruction-set level a kernel can be written for, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SimdLevel {
    /// Portable Rust: the reference every other level is tested against.
    Scalar,
    /// x86-64 AVX2 + FMA + F16C.
    Avx2,
    /// x86-64 AVX-512 F/BW/VL/DQ + VNNI (on top of AVX2).
    Avx512,
    /// x86-64 AMX-INT8 tiles (on top of AVX-512), with the tile data state granted by
    /// Linux to the process (`arch_prctl`).
    Amx,
    /// aarch64 Advanced SIMD (NEON).
    Neon,
}

impl SimdLevel {
    /// Whether the running CPU can execute code written for this level.
    pub fn is_supported(self) -> bool {
        match self {
            SimdLevel::Scalar => true,
            SimdLevel::Avx2 => has_avx2(),
            SimdLevel::Avx512 => has_avx512(),
            SimdLevel::Amx => has_amx(),
            SimdLevel::Neon => has_neon(),
        }
    }

    /// Every level the running CPU supports, scalar first.
    pub fn available() -> Vec<SimdLevel> {
        [
            SimdLevel::Scalar,
            SimdLevel::Avx2,
            SimdLevel::Avx512,
            SimdLevel::Amx,
            SimdLevel::Neon,
        ]
        .into_iter()
        .filter(|l| l.is_supported())
        .collect()
    }

    /// Lower-case name, as accepted by `KAIYUAN_SIMD`.
    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::Scalar => "scalar",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Avx512 => "avx512",
            SimdLevel::Amx => "amx",
            SimdLevel::Neon => "neon",
        }
    }

    fn parse(s: &str) -> Option<SimdLevel> {
        match s.trim().to_ascii_lowercase().as_str() {
            "scalar" | "none" | "0" => Some(SimdLevel::Scalar),
            "avx2" => Some(SimdLevel::Avx2),
            "avx512" => Some(SimdLevel::Avx512),
            "amx" => Some(SimdLevel::Amx),
            "neon" => Some(SimdLevel::Neon),
            _ => None,
        }
    }
}

/// What `KAIYUAN_SIMD` asks for: a cap on the level, and whether the dot products must run
/// at that level wherever a kernel for it exists (`avx512-all`), ignoring the measured
/// per-type table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SimdRequest {
    level: SimdLevel,
    force_dots: bool,
}

/// The value of `KAIYUAN_SIMD` that forces the AVX-512 dot products.
pub const FORCE_AVX512: &str = "avx512-all";
/// The value of `KAIYUAN_SIMD` that forces the AMX dot products (and, for types without
/// AMX kernels, the AVX-512 ones).
pub const FORCE_AMX: &str = "amx-all";

fn parse_request(s: &str) -> Option<SimdRequest> {
    if s.trim().eq_ignore_ascii_case(FORCE_AMX) {
        return Some(SimdRequest {
            level: SimdLevel::Amx,
            force_dots: true,
        });
    }
    if s.trim().eq_ignore_ascii_case(FORCE_AVX512) {
        return Some(SimdRequest {
            level: SimdLevel::Avx512,
            force_dots: true,
        });
    }
    SimdLevel::parse(s).map(|level| SimdRequest {
        level,
        force_dots: false,
    })
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("f16c")
}
#[cfg(not(target_arch = "x86_64"))]
fn has_avx2() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    has_avx2()
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx512vnni")
}
#[cfg(not(target_arch = "x86_64"))]
fn has_avx512() -> bool {
    false
}

/// AMX-INT8 (CPUID leaf 7: AMX-TILE and AMX-INT8) on top of AVX-512, and Linux's
/// permission for this process to use the tile data state, asked for once here.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn has_amx() -> bool {
    static AMX: OnceLock<bool> = OnceLock::new();
    *AMX.get_or_init(|| {
        if !has_avx512() {
            return false;
        }
        // CPUID exists on every x86-64 CPU; leaf 7 is valid (AVX-512 needs it).
        let leaf7 = std::arch::x86_64::__cpuid_count(7, 0);
        let (amx_tile, amx_int8) = (leaf7.edx >> 24 & 1 == 1, leaf7.edx >> 25 & 1 == 1);
        if !(amx_tile && amx_int8) {
            return false;
        }
        // arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA): 0 once the kernel grants
        // the process the tile data state, an error if it cannot (old kernel, no AMX).
        const SYS_ARCH_PRCTL: i64 = 158;
        const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
        const XFEATURE_XTILEDATA: i64 = 18;
        let ret: i64;
        // SAFETY: a plain Linux system call that only changes this process's permitted
        // extended-state features; it reads and writes no memory of ours. The kernel
        // clobbers rcx and r11.
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") SYS_ARCH_PRCTL => ret,
                in("rdi") ARCH_REQ_XCOMP_PERM,
                in("rsi") XFEATURE_XTILEDATA,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        ret == 0
    })
}
#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn has_amx() -> bool {
    false
}

#[cfg(target_arch = "aarch64")]
fn has_neon() -> bool {
    std::arch::is_aarch64_feature_detected!("neon")
}
#[cfg(not(target_arch = "aarch64"))]
fn has_neon() -> bool {
    false
}

/// Whether this process runs x86 AVX2 (+ FMA + F16C) code: the level is AVX2, AVX-512 or
/// AMX.
/// For the kernels that have an AVX2 version and no AVX-512 one (attention, exponentials,
/// activations); the level check is what makes calling their `#[target_feature]` code
/// sound.
#[cfg(target_arch = "x86_64")]
pub(crate) fn runs_avx2() -> bool {
    matches!(
        simd_level(),
        SimdLevel::Avx2 | SimdLevel::Avx512 | SimdLevel::Amx
    )
}

/// The level kernels run at in this process: the best supported one, capped by
/// `KAIYUAN_SIMD` when set. Read once; later changes to the environment have no effect.
/// Weight types' dot products may run at a lower level (see the module docs).
pub fn simd_level() -> SimdLevel {
    simd_request().level
}

/// Whether `KAIYUAN_SIMD=avx512-all` (or `amx-all`) asked for every weight type's dot
/// products at the process level, where a kernel for it exists, instead of the measured per-type choice.
pub fn dots_forced_to_level() -> bool {
    simd_request().force_dots
}

fn simd_request() -> SimdRequest {
    static REQUEST: OnceLock<SimdRequest> = OnceLock::new();
    *REQUEST.get_or_init(|| {
        let best = *SimdLevel::available()
            .last()
            .expect("invariant: scalar is always available");
        let fallback = SimdRequest {
            level: best,
            force_dots: false,
        };
        match std::env::var("KAIYUAN_SIMD") {
            Ok(v) => match parse_request(&v) {
                Some(wanted) if wanted.level.is_supported() => wanted,
                Some(wanted) => {
                    eprintln!(
                        "kaiyuan: KAIYUAN_SIMD={v}: this CPU lacks {}; using {}",
                        wanted.level.name(),
                        best.name()
                    );
                    fallback
                }
                None => {
                    eprintln!(
                        "kaiyuan: KAIYUAN_SIMD={v} is not one of scalar, avx2, avx512, \
                         {FORCE_AVX512}, amx, {FORCE_AMX}, neon; using {}",
                        best.name()
                    );
                    fallback
                }
            },
            Err(_) => fallback,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_always_available_and_parse_names() {
        assert!(SimdLevel::available().contains(&SimdLevel::Scalar));
        for l in [
            SimdLevel::Scalar,
            SimdLevel::Avx2,
            SimdLevel::Avx512,
            SimdLevel::Amx,
            SimdLevel::Neon,
        ] {
            assert_eq!(SimdLevel::parse(l.name()), Some(l));
        }
        assert_eq!(SimdLevel::parse("sse9"), None);
        assert!(simd_level().is_supported());
        assert_eq!(
            parse_request("AVX512-all"),
            Some(SimdRequest {
                level: SimdLevel::Avx512,
                force_dots: true
            })
        );
        assert_eq!(
            parse_request("avx512"),
            Some(SimdRequest {
                level: SimdLevel::Avx512,
                force_dots: false
            })
        );
        assert_eq!(parse_request("avx2-all"), None);
        assert_eq!(
            parse_request("amx-all"),
            Some(SimdRequest {
                level: SimdLevel::Amx,
                force_dots: true
            })
        );
    }
}
