//! Checks the scalar legacy quantizers and dequantizers against results of the `gguf`
//! Python package (GGML's numpy reference), stored by `tools/golden/legacy_quantize.py`
//! in `testdata/golden/legacy_quantize.json`.

use super::{dequantize_fn, quantize_fn};
use crate::dispatch::SimdLevel;
use crate::dtype::DType;

const GOLDEN: &str = include_str!("../../../../../testdata/golden/legacy_quantize.json");

struct Case {
    op: String,
    dtype: String,
    input: Vec<u8>,
    output: Vec<u8>,
}

/// The string value of `"key": "..."` inside one case object.
fn field(obj: &str, key: &str) -> String {
    let pat = format!("\"{key}\": \"");
    let start = obj.find(&pat).unwrap_or_else(|| panic!("no {key}")) + pat.len();
    let len = obj[start..].find('"').expect("unterminated string");
    obj[start..start + len].to_string()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn cases() -> Vec<Case> {
    let body = &GOLDEN[GOLDEN.find("\"cases\"").expect("cases")..];
    body.split('{')
        .skip(1)
        .map(|obj| Case {
            op: field(obj, "op"),
            dtype: field(obj, "type"),
            input: unhex(&field(obj, "input")),
            output: unhex(&field(obj, "output")),
        })
        .collect()
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn dtype(name: &str) -> DType {
    DType::all().find(|t| t.name() == name).expect("known type")
}

#[test]
fn quantizers_match_gguf_package_bytes() {
    let mut seen = 0;
    for c in cases().iter().filter(|c| c.op == "quantize") {
        let t = dtype(&c.dtype);
        let q = quantize_fn(t, SimdLevel::Scalar).expect("scalar quantizer");
        let x = f32s(&c.input);
        let mut out = vec![0u8; c.output.len()];
        q(&x, &mut out);
        for (i, (ours, theirs)) in out
            .chunks_exact(t.type_size())
            .zip(c.output.chunks_exact(t.type_size()))
            .enumerate()
        {
            assert_eq!(ours, theirs, "{t} block {i}");
        }
        seen += 1;
    }
    assert_eq!(seen, 2);
}

#[test]
fn dequantizers_match_gguf_package_bit_for_bit() {
    let mut seen = 0;
    for c in cases().iter().filter(|c| c.op == "dequantize") {
        let t = dtype(&c.dtype);
        let want = f32s(&c.output);
        let mut got = vec![0f32; want.len()];
        dequantize_fn(t).expect("dequantizer")(&c.input, &mut got);
        for (j, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.to_bits(), w.to_bits(), "{t} element {j}: {g} vs {w}");
        }
        seen += 1;
    }
    assert_eq!(seen, 5);
}
