//! Golden test of every dequantizer against the `gguf` Python package's numpy
//! dequantization, on blocks of real tensors of both test models and on synthetic blocks
//! with extreme scales. The golden files under `testdata/golden/dequant/` are made by
//! `tools/dequant_golden.py` (see its README there) and hold the raw block bytes too, so
//! this test needs no model files. Comparison is bit for bit on the f32 values, except
//! that any NaN matches any NaN.

use kaiyuan_kernels::{quant, DType};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::OnceLock;

const SMOLLM2: &str = include_str!("../../../testdata/golden/dequant/smollm2.json");
const GEMMA3: &str = include_str!("../../../testdata/golden/dequant/gemma3.json");
const SYNTHETIC: &str = include_str!("../../../testdata/golden/dequant/synthetic.json");

/// One golden entry: whole blocks of `dtype` and the values the reference decoded.
struct Entry {
    dtype: DType,
    /// Where the bytes come from, for failure messages.
    origin: String,
    bytes: Vec<u8>,
    expected_bits: Vec<u32>,
}

struct Golden {
    name: &'static str,
    header: Value,
    entries: Vec<Entry>,
}

fn dtype_named(name: &str) -> Option<DType> {
    DType::all().find(|t| t.name() == name)
}

fn parse_hex_bytes(s: &str) -> Result<Vec<u8>, String> {
    if s.len() & 1 == 1 {
        return Err(format!("odd-length hex string ({} digits)", s.len()));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .ok_or_else(|| format!("bad hex byte at {i}"))
        })
        .collect()
}

fn parse_f32_bits(s: &str) -> Result<Vec<u32>, String> {
    s.split_whitespace()
        .map(|w| u32::from_str_radix(w, 16).map_err(|e| format!("bad f32 bits {w:?}: {e}")))
        .collect()
}

fn str_field<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing string field {key:?}"))
}

/// Parses a golden file; a malformed file is a test failure, with the reason.
fn load(name: &'static str, text: &str) -> Golden {
    let doc: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: not valid JSON: {e}"));
    let header = doc.get("header").cloned().unwrap_or(Value::Null);
    assert!(header.is_object(), "{name}: no header object");
    let raw_entries = doc
        .get("entries")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{name}: no entries array"));
    let entries = raw_entries
        .iter()
        .enumerate()
        .map(|(i, e)| parse_entry(e).unwrap_or_else(|msg| panic!("{name} entry {i}: {msg}")))
        .collect();
    Golden {
        name,
        header,
        entries,
    }
}

fn parse_entry(e: &Value) -> Result<Entry, String> {
    let type_name = str_field(e, "type")?;
    let dtype = dtype_named(type_name).ok_or_else(|| format!("unknown type {type_name:?}"))?;
    let origin = match (e.get("tensor"), e.get("first_block"), e.get("case")) {
        (Some(t), Some(b), _) => format!("{} block {}", t.as_str().unwrap_or("?"), b),
        (_, _, Some(c)) => format!("case {:?}", c.as_str().unwrap_or("?")),
        _ => String::from("(unlabelled)"),
    };
    let bytes = parse_hex_bytes(str_field(e, "bytes")?)?;
    let expected_bits = parse_f32_bits(str_field(e, "f32_bits")?)?;
    let whole_blocks = bytes.chunks_exact(dtype.type_size()).remainder().is_empty();
    if bytes.is_empty() || !whole_blocks {
        return Err(format!(
            "{type_name}: {} bytes is not whole {}-byte blocks",
            bytes.len(),
            dtype.type_size()
        ));
    }
    let n_values = bytes.len() / dtype.type_size() * dtype.block_size();
    if expected_bits.len() != n_values {
        return Err(format!(
            "{type_name}: {} expected values for {n_values} elements",
            expected_bits.len()
        ));
    }
    Ok(Entry {
        dtype,
        origin,
        bytes,
        expected_bits,
    })
}

fn same_value(got: f32, want_bits: u32) -> bool {
    let want = f32::from_bits(want_bits);
    got.to_bits() == want_bits || (got.is_nan() && want.is_nan())
}

/// All golden files, parsed once.
fn goldens() -> &'static [Golden] {
    static ALL: OnceLock<Vec<Golden>> = OnceLock::new();
    ALL.get_or_init(|| {
        vec![
            load("smollm2.json", SMOLLM2),
            load("gemma3.json", GEMMA3),
            load("synthetic.json", SYNTHETIC),
        ]
    })
}

fn golden(name: &str) -> &'static Golden {
    goldens()
        .iter()
        .find(|g| g.name == name)
        .expect("invariant: goldens() loads every file named in the tests")
}

/// Describes the first differing values of one entry, or `None` if all match.
fn mismatch(e: &Entry, got: &[f32]) -> Option<String> {
    let wrong: Vec<usize> = (0..got.len())
        .filter(|&k| !same_value(got[k], e.expected_bits[k]))
        .collect();
    let &k = wrong.first()?;
    let mut line = format!(
        "{} of {} values differ; first at {k}: got {:e} ({:08x}), want {:e} ({:08x})",
        wrong.len(),
        got.len(),
        got[k],
        got[k].to_bits(),
        f32::from_bits(e.expected_bits[k]),
        e.expected_bits[k],
    );
    if wrong.len() > 1 {
        let _ = write!(line, "; also at {:?}", &wrong[1..wrong.len().min(8)]);
    }
    Some(line)
}

/// Checks every golden entry of `dtype`, in all files, against Kaiyuan's dequantizer.
/// Fails if there is no dequantizer, no synthetic entry, or any value differs.
fn check_format(dtype: DType) {
    let synthetic = golden("synthetic.json");
    assert!(
        synthetic.entries.iter().any(|e| e.dtype == dtype),
        "synthetic.json has no blocks of {dtype}"
    );
    let dequantize =
        quant::dequantize_fn(dtype).unwrap_or_else(|| panic!("no dequantizer for {dtype}"));
    let mut fails = Vec::new();
    let mut checked = 0;
    for g in goldens() {
        for (i, e) in g
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.dtype == dtype)
        {
            let mut got = vec![f32::NAN; e.expected_bits.len()];
            dequantize(&e.bytes, &mut got);
            checked += 1;
            if let Some(why) = mismatch(e, &got) {
                fails.push(format!("{} entry {i} ({}): {why}", g.name, e.origin));
            }
        }
    }
    assert!(
        fails.is_empty(),
        "{dtype}: {} of {checked} golden entries differ from the gguf package's dequantization:\n  {}",
        fails.len(),
        fails.join("\n  ")
    );
}

fn types_in(golden: &Golden) -> BTreeSet<DType> {
    golden.entries.iter().map(|e| e.dtype).collect()
}

/// The header's list of type names (`key`), as types.
fn header_types(golden: &Golden, key: &str) -> BTreeSet<DType> {
    golden
        .header
        .get(key)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{}: header has no {key:?} list", golden.name))
        .iter()
        .map(|v| {
            let name = v.as_str().unwrap_or("");
            dtype_named(name)
                .unwrap_or_else(|| panic!("{}: header names unknown type {v}", golden.name))
        })
        .collect()
}

/// Every tensor type of the model (as the generator listed it) has golden blocks.
fn assert_covers_model_types(golden: &Golden) {
    let wanted = header_types(golden, "tensor_types");
    assert!(
        !wanted.is_empty(),
        "{}: model has no tensor types",
        golden.name
    );
    let have = types_in(golden);
    let missing: Vec<_> = wanted.difference(&have).collect();
    assert!(
        missing.is_empty(),
        "{}: no golden blocks for model tensor types {missing:?}",
        golden.name
    );
}

/// One test per format, so each format's status shows on its own.
macro_rules! format_tests {
    ($($test:ident: $dtype:ident),* $(,)?) => {
        const TESTED_FORMATS: &[DType] = &[$(DType::$dtype),*];
        $(
            #[test]
            fn $test() {
                check_format(DType::$dtype);
            }
        )*
    };
}

format_tests! {
    f32_matches_reference: F32,
    f16_matches_reference: F16,
    bf16_matches_reference: BF16,
    q4_0_matches_reference: Q4_0,
    q4_1_matches_reference: Q4_1,
    q5_0_matches_reference: Q5_0,
    q5_1_matches_reference: Q5_1,
    q8_0_matches_reference: Q8_0,
    q2_k_matches_reference: Q2_K,
    q3_k_matches_reference: Q3_K,
    q4_k_matches_reference: Q4_K,
    q5_k_matches_reference: Q5_K,
    q6_k_matches_reference: Q6_K,
}

#[test]
fn every_supported_format_is_tested_and_in_synthetic_golden() {
    let tested: BTreeSet<DType> = TESTED_FORMATS.iter().copied().collect();
    let supported: BTreeSet<DType> = DType::all().filter(|t| t.is_supported()).collect();
    assert_eq!(
        tested, supported,
        "format_tests! must list every supported format"
    );
    let synthetic = golden("synthetic.json");
    let have = types_in(synthetic);
    let missing: Vec<_> = supported.difference(&have).collect();
    assert!(
        missing.is_empty(),
        "synthetic.json has no blocks for supported formats {missing:?}"
    );
    // The generator's own list must agree with what the file holds.
    assert_eq!(header_types(synthetic, "formats"), have);
}

#[test]
fn every_golden_entry_is_of_a_tested_format() {
    for g in goldens() {
        assert!(!g.entries.is_empty(), "{}: no entries", g.name);
        let untested: Vec<_> = types_in(g)
            .into_iter()
            .filter(|t| !TESTED_FORMATS.contains(t))
            .collect();
        assert!(
            untested.is_empty(),
            "{}: entries of untested types {untested:?}",
            g.name
        );
    }
}

#[test]
fn smollm2_golden_covers_every_model_tensor_type() {
    assert_covers_model_types(golden("smollm2.json"));
}

#[test]
fn gemma3_golden_covers_every_model_tensor_type() {
    assert_covers_model_types(golden("gemma3.json"));
}

#[test]
fn comparison_is_bit_exact_and_nan_aware() {
    assert!(same_value(f32::NAN, 0x7fc0_0000));
    assert!(same_value(f32::from_bits(0xffc0_0001), 0x7f80_0001));
    assert!(!same_value(0.0, 0x8000_0000), "-0 must not match +0");
    assert!(
        !same_value(1.0, 0x3f80_0001),
        "one ulp apart must not match"
    );
    assert!(!same_value(f32::NAN, 0x7f80_0000), "NaN must not match inf");
}
