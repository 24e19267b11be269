//! Dequantization checked against the `gguf` Python package: the golden file
//! `testdata/golden/kquants_dequant.json` is made by `tools/golden/kquants_dequant.py`
//! (random super-blocks, realistic and extreme f16 scales, `gguf.quants.dequantize`).

use crate::dtype::DType;

const GOLDEN: &str = include_str!("../../../../../testdata/golden/kquants_dequant.json");

/// One golden case: the weight type, its block bytes and the expected values.
struct Case {
    dtype: DType,
    bytes: Vec<u8>,
    values: Vec<f32>,
}

/// The text between `"key":"` (or `"key":[`) and the closing quote (or bracket).
fn field<'a>(line: &'a str, key: &str, open: char, close: char) -> &'a str {
    let start_pat = format!("\"{key}\":{open}");
    let start = line
        .find(&start_pat)
        .unwrap_or_else(|| panic!("golden line lacks {key}"))
        + start_pat.len();
    let len = line[start..]
        .find(close)
        .unwrap_or_else(|| panic!("golden {key} not closed"));
    &line[start..start + len]
}

/// Parses the generator's one-case-per-line JSON array.
fn parse() -> Vec<Case> {
    GOLDEN
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|line| {
            let name = field(line, "type", '"', '"');
            let dtype = DType::all()
                .find(|t| t.name() == name)
                .unwrap_or_else(|| panic!("unknown golden type {name}"));
            let hex = field(line, "hex", '"', '"');
            let bytes = (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("golden hex"))
                .collect();
            let values = field(line, "values", '[', ']')
                .split(',')
                .map(|v| v.trim().parse::<f64>().expect("golden value") as f32)
                .collect();
            Case {
                dtype,
                bytes,
                values,
            }
        })
        .collect()
}

#[test]
fn dequantize_matches_gguf_package_bit_for_bit() {
    let cases = parse();
    for t in [
        DType::Q2_K,
        DType::Q3_K,
        DType::Q4_K,
        DType::Q5_K,
        DType::Q6_K,
    ] {
        assert!(
            cases.iter().filter(|c| c.dtype == t).count() >= 4,
            "{t}: too few golden cases"
        );
    }
    for (k, case) in cases.iter().enumerate() {
        assert_eq!(case.bytes.len(), case.dtype.type_size(), "case {k}");
        assert_eq!(case.values.len(), 256, "case {k}");
        let f = super::dequantize_fn(case.dtype).expect("K-quant dequantizer");
        let mut got = vec![0f32; 256];
        f(&case.bytes, &mut got);
        for (j, (g, e)) in got.iter().zip(&case.values).enumerate() {
            // `==` so that -0.0 and 0.0 agree; every other value must match exactly.
            assert!(
                g == e,
                "{} case {k} element {j}: got {g}, gguf says {e}",
                case.dtype
            );
        }
    }
}
