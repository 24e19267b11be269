//! Tests of the kernel lookup: multi-row kernels bit-identical to `vec_dot` per row at
//! every level, and the per-type level table of `measured_dot_level`.

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
    // And the AVX-512 legacy kernels (issue 22), where the CPU has them.
    #[cfg(target_arch = "x86_64")]
    if SimdLevel::Avx512.is_supported() {
        use DType::*;
        for t in [Q4_0, Q4_1, Q5_0, Q5_1, Q8_0] {
            let l = SimdLevel::Avx512;
            assert!(panel_fn(t, l).is_some(), "{t}: no AVX-512 panel mat-mat");
            assert!(vec_dot_rows4_fn(t, l).is_some(), "{t}: no AVX-512 rows4");
        }
        // The K-quant panels and four-stream kernels (issue 22) must stay covered by the
        // panel and rows4 tests.
        for t in [Q4_K, Q5_K, Q6_K] {
            let l = SimdLevel::Avx512;
            assert!(panel_fn(t, l).is_some(), "{t}: no AVX-512 panel mat-mat");
            assert!(vec_dot_rows4_fn(t, l).is_some(), "{t}: no AVX-512 rows4");
        }
    } else {
        eprintln!("no AVX-512 VNNI on this CPU: the AVX-512 multi-row kernels are not run");
    }
    #[cfg(target_arch = "x86_64")]
    if SimdLevel::Amx.is_supported() {
        for t in [
            DType::Q4_0,
            DType::Q4_1,
            DType::Q5_0,
            DType::Q5_1,
            DType::Q8_0,
        ] {
            assert!(
                panel_fn(t, SimdLevel::Amx).is_some(),
                "{t}: no AMX panel mat-mat"
            );
        }
    } else {
        eprintln!("no AMX-INT8 (or no tile permission): the AMX panel kernels are not run");
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
fn panel_dots_are_bit_identical_to_single_row_dots() {
    use crate::quant::testing::{random_blocks, Rng};
    let mut rng = Rng::new(13);
    let mut checked = 0;
    for level in SimdLevel::available() {
        for t in DType::all() {
            let Some(p) = panel_fn(t, level) else {
                continue;
            };
            let dot = vec_dot_fn(t, level).expect("a panel implies a single-row kernel");
            let act = activation_type(t).unwrap();
            for (nb, rows, m) in [
                (1usize, 16usize, 1usize),
                (2, 3, 5),
                (7, 16, 9),
                (18, 11, 4),
                (5, 16, 19),
                (3, 7, 35),
            ] {
                let n = nb * t.block_size();
                let w = random_blocks(t, rows * nb, &mut rng).unwrap();
                let mut a = vec![0u8; m * nb * act.type_size()];
                for row in a.chunks_exact_mut(nb * act.type_size()) {
                    let x = rng.vec_f32(n, 3.0);
                    quantize_fn(act, SimdLevel::Scalar).unwrap()(&x, row);
                }
                let mut sums = vec![0i32; m * nb];
                for (j, s) in sums.chunks_exact_mut(nb).enumerate() {
                    (p.act_sums)(n, &a[j * nb * act.type_size()..], s);
                }
                let mut panel = Vec::new();
                (p.pack)(n, rows, &w, &mut panel);
                let mut got = vec![f32::NAN; m * PANEL_ROWS];
                (p.dot)(n, &panel, &a, &sums, &mut got);
                let scalar = vec_dot_fn(t, SimdLevel::Scalar).unwrap();
                for j in 0..m {
                    let aj = &a[j * nb * act.type_size()..(j + 1) * nb * act.type_size()];
                    for l in 0..PANEL_ROWS {
                        let v = got[j * PANEL_ROWS + l];
                        if l >= rows {
                            assert_eq!(v, 0.0, "{t} padding row {l}");
                            continue;
                        }
                        let wl = &w[l * row_bytes(t, n)..(l + 1) * row_bytes(t, n)];
                        let want = dot(n, wl, aj);
                        let name = level.name();
                        assert_eq!(
                            v.to_bits(),
                            want.to_bits(),
                            "{t} {name} nb={nb} row {l} act {j}"
                        );
                        // This level's contract: the scalar reference's bits.
                        assert_eq!(
                            v.to_bits(),
                            scalar(n, wl, aj).to_bits(),
                            "{t} {name} vs scalar"
                        );
                    }
                }
                checked += 1;
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    if SimdLevel::Avx512.is_supported() {
        assert!(checked >= 20, "AVX-512 panels not checked");
    }
    let _ = checked;
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

/// The per-type table of `measured_dot_level` for an AVX-512 process, written out
/// independently: what the measurements in BENCHMARKS.md ("AVX-512 vs AVX2 per weight
/// type", "Intel Xeon (AVX-512, AMX)", "AMD EPYC with AVX-512: K-quant panels") chose:
/// AVX-512 for the five legacy formats and Q4_K, Q5_K, Q6_K, AVX2 for the other five
/// weight types with dot products.
fn expected_avx512_dot_level(t: DType) -> SimdLevel {
    use DType::*;
    match t {
        Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q4_K | Q5_K | Q6_K => SimdLevel::Avx512,
        _ => SimdLevel::Avx2,
    }
}

/// Checks that `k` takes all its dot products from exactly `level`: the same kernels'
/// presence, and the same bits on random rows (AVX2 and AVX-512 sum in different orders,
/// so a kernel from another level would show).
fn assert_dots_from(k: &WeightKernels, level: SimdLevel, what: &str) {
    use crate::quant::testing::{random_blocks, Rng};
    let t = k.dtype;
    assert_eq!(k.level, level, "{t} {what}: level");
    assert_eq!(
        k.vec_dot_x4.is_some(),
        vec_dot_x4_fn(t, level).is_some(),
        "{t} {what}: x4"
    );
    assert_eq!(
        k.vec_dot_x8.is_some(),
        vec_dot_x8_fn(t, level).is_some(),
        "{t} {what}: x8"
    );
    assert_eq!(
        k.vec_dot_rows4.is_some(),
        vec_dot_rows4_fn(t, level).is_some(),
        "{t} {what}: rows4"
    );
    assert_eq!(
        k.panel.is_some(),
        panel_fn(t, level).is_some(),
        "{t} {what}: panel"
    );
    let want = vec_dot_fn(t, level).expect("level has a dot");
    let mut rng = Rng::new(21);
    let nb = 37;
    let n = nb * t.block_size();
    for _ in 0..4 {
        let w = random_blocks(t, nb, &mut rng).unwrap();
        let x = rng.vec_f32(n, 3.0);
        let mut a = vec![0u8; row_bytes(k.act, n)];
        (k.quantize_act)(&x, &mut a);
        assert_eq!(
            (k.vec_dot)(n, &w, &a).to_bits(),
            want(n, &w, &a).to_bits(),
            "{t} {what}: vec_dot bits"
        );
    }
}

#[test]
fn avx512_runs_each_weight_types_dots_at_the_measured_level() {
    if !SimdLevel::Avx512.is_supported() {
        eprintln!("no AVX-512 on this CPU: the AVX-512 choice is not checked here");
        for t in DType::all().filter(|&t| activation_type(t).is_some()) {
            let k = resolve(t, SimdLevel::Scalar, false).unwrap();
            assert_dots_from(&k, SimdLevel::Scalar, "scalar");
        }
        return;
    }
    let mut n_types = 0;
    for t in DType::all().filter(|&t| activation_type(t).is_some()) {
        let k = resolve(t, SimdLevel::Avx512, false).unwrap();
        assert_dots_from(&k, expected_avx512_dot_level(t), "default");
        let k = resolve(t, SimdLevel::Avx512, true).unwrap();
        assert_dots_from(&k, SimdLevel::Avx512, "avx512-all");
        // An AMX process runs each type as an AVX-512 one; `amx-all` runs the AMX
        // panels where they exist.
        if SimdLevel::Amx.is_supported() {
            let k = resolve(t, SimdLevel::Amx, false).unwrap();
            assert_dots_from(&k, expected_avx512_dot_level(t), "amx default");
            let k = resolve(t, SimdLevel::Amx, true).unwrap();
            assert_dots_from(&k, SimdLevel::Amx, "amx-all");
        }
        // A cap of AVX2 is AVX2 everywhere, as before.
        let k = resolve(t, SimdLevel::Avx2, false).unwrap();
        assert_dots_from(&k, SimdLevel::Avx2, "avx2");
        n_types += 1;
    }
    assert_eq!(
        n_types, 13,
        "every weight type with a dot product is checked"
    );
    // Issue 22: SmolLM2's Q4_1 gets the AVX-512 panel mat-mat and four-stream mat-vec,
    // and Gemma 3's Q4_K and Q6_K the K-quant panel mat-mat.
    let k = resolve(DType::Q4_1, SimdLevel::Avx512, false).unwrap();
    assert!(k.panel.is_some() && k.vec_dot_rows4.is_some());
    for t in [DType::Q4_K, DType::Q6_K] {
        let k = resolve(t, SimdLevel::Avx512, false).unwrap();
        assert!(k.panel.is_some(), "{t}: no panel at the AVX-512 default");
    }
    // The quantizer is the AVX2 one either way (there is no AVX-512 quantizer).
    assert!(quantize_fn(DType::Q8_1, SimdLevel::Avx512).is_none());
}

#[test]
fn simd_description_names_the_dot_level_where_it_differs() {
    let at = |t: DType, level: SimdLevel| WeightKernels {
        level,
        ..*weight_kernels(t).expect("kernels")
    };
    let (a, b, c) = (
        at(DType::Q4_1, SimdLevel::Avx2),
        at(DType::Q4_K, SimdLevel::Avx2),
        at(DType::F16, SimdLevel::Avx512),
    );
    assert_eq!(describe(SimdLevel::Avx2, &[&a, &b]), "avx2");
    assert_eq!(
        describe(SimdLevel::Avx512, &[&a, &b]),
        "avx512 (dot products: avx2)"
    );
    assert_eq!(
        describe(SimdLevel::Avx512, &[&a, &c, &b]),
        "avx512 (dot products: avx2; avx512 for F16)"
    );
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
