//! Malformed-file corpus: a valid base file built with `kaiyuan_gguf::writer`, then one
//! corruption per test, each asserting the error names the problem and the key/tensor;
//! plus truncation at every byte offset (an error, never a panic).

use kaiyuan_gguf::writer::{GgufWriter, Layout};
use kaiyuan_gguf::{Array, GgufError, GgufFile, Value};
use kaiyuan_kernels::DType;

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Q8_0 blocks with scale 1.0 (f16 0x3C00) and quants 0..32.
fn q8_0_blocks(n_blocks: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..n_blocks {
        out.extend_from_slice(&[0x00, 0x3C]);
        out.extend((0..32u8).map(|q| q.wrapping_sub(16)));
    }
    out
}

fn base_writer() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.kv("general.architecture", Value::String("llama".into()))
        .kv("general.alignment", Value::U32(32))
        .kv("general.name", Value::String("tiny test model".into()))
        .kv("llama.context_length", Value::U32(128))
        .kv("llama.rope.freq_base", Value::F32(10000.0))
        .kv("tokenizer.ggml.add_bos_token", Value::Bool(true))
        .kv(
            "tokenizer.ggml.tokens",
            Value::Array(Array::String(vec!["<unk>".into(), "a".into(), "b".into()])),
        )
        .kv(
            "tokenizer.ggml.token_type",
            Value::Array(Array::I32(vec![2, 1, 1])),
        )
        .kv("test.signed", Value::I64(-5))
        .kv(
            "test.nested",
            Value::Array(Array::Array(vec![
                Array::U8(vec![1, 2]),
                Array::F64(vec![0.5]),
            ])),
        );
    w.tensor(
        "token_embd.weight",
        &[4, 3],
        DType::F32,
        f32_bytes(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0]),
    )
    .tensor("blk.0.attn_q.weight", &[32, 2], DType::Q8_0, q8_0_blocks(2))
    .tensor("output_norm.weight", &[4], DType::F32, f32_bytes(&[1.0; 4]));
    w
}

fn base() -> (Vec<u8>, Layout) {
    base_writer().to_bytes_with_layout()
}

fn kv_index(key: &str) -> usize {
    [
        "general.architecture",
        "general.alignment",
        "general.name",
        "llama.context_length",
        "llama.rope.freq_base",
        "tokenizer.ggml.add_bos_token",
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.token_type",
        "test.signed",
        "test.nested",
    ]
    .iter()
    .position(|k| *k == key)
    .expect("test key exists")
}

fn put_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Parses `bytes`, expecting an error whose message contains every one of `needles`.
fn expect_err(bytes: Vec<u8>, needles: &[&str]) -> GgufError {
    let err = GgufFile::from_bytes(bytes).expect_err("corrupt file must be rejected");
    let msg = err.to_string();
    for needle in needles {
        assert!(
            msg.contains(needle),
            "error {msg:?} should mention {needle:?}"
        );
    }
    err
}

#[test]
fn base_file_is_valid_and_reads_back() {
    let (bytes, layout) = base();
    std::fs::write(concat!(env!("CARGO_TARGET_TMPDIR"), "/base.gguf"), &bytes).unwrap();
    let f = GgufFile::from_bytes(bytes.clone()).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.alignment(), 32);
    assert_eq!(f.data_offset(), layout.data_offset as u64);
    assert_eq!(f.data_offset() % 32, 0);
    assert_eq!(f.architecture(), Some("llama"));
    assert_eq!(f.metadata().len(), 10);
    assert_eq!(f.metadata()[2].0, "general.name");
    assert_eq!(f.get_u32("llama.context_length").unwrap(), Some(128));
    assert_eq!(f.get_u64("llama.context_length").unwrap(), Some(128));
    assert_eq!(f.get_f32("llama.rope.freq_base").unwrap(), Some(10000.0));
    assert_eq!(
        f.get_bool("tokenizer.ggml.add_bos_token").unwrap(),
        Some(true)
    );
    assert_eq!(f.get_i64("test.signed").unwrap(), Some(-5));
    assert_eq!(
        f.get_str_array("tokenizer.ggml.tokens").unwrap().unwrap(),
        &["<unk>".to_string(), "a".into(), "b".into()]
    );
    assert_eq!(
        f.get_i32_array("tokenizer.ggml.token_type")
            .unwrap()
            .unwrap(),
        &[2, 1, 1]
    );
    assert_eq!(
        f.get("test.nested"),
        Some(&Value::Array(Array::Array(vec![
            Array::U8(vec![1, 2]),
            Array::F64(vec![0.5])
        ])))
    );
    assert_eq!(f.get_u32("missing").unwrap(), None);

    let names: Vec<&str> = f.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "token_embd.weight",
            "blk.0.attn_q.weight",
            "output_norm.weight"
        ]
    );
    let q = f.tensor("blk.0.attn_q.weight").unwrap();
    assert_eq!(
        (q.dims.as_slice(), q.dtype, q.n_elements(), q.size),
        (&[32u64, 2][..], DType::Q8_0, 64, 68)
    );
    assert_eq!(f.tensor_data(q), &q8_0_blocks(2)[..]);
    assert_eq!(
        f.tensor_data_by_name("output_norm.weight").unwrap(),
        &f32_bytes(&[1.0; 4])[..]
    );
    for (t, l) in f.tensors().iter().zip(&layout.tensors) {
        assert_eq!(t.offset % 32, 0);
        assert_eq!(f.data_offset() + t.offset, l.data as u64);
    }
    f.check_supported().unwrap();
}

#[test]
fn version_2_is_accepted() {
    let mut w = base_writer();
    w.version(2);
    assert_eq!(GgufFile::from_bytes(w.to_bytes()).unwrap().version(), 2);
}

#[test]
fn file_without_tensors_is_valid() {
    let mut w = GgufWriter::new();
    w.kv("general.architecture", Value::String("llama".into()));
    let f = GgufFile::from_bytes(w.to_bytes()).unwrap();
    assert!(f.tensors().is_empty());
}

#[test]
fn open_reads_from_disk_and_reports_missing_files() {
    let path = concat!(env!("CARGO_TARGET_TMPDIR"), "/open_test.gguf");
    base_writer().write(path).unwrap();
    let f = GgufFile::open(path).unwrap();
    assert_eq!(f.tensors().len(), 3);
    let err = GgufFile::open("/nonexistent/model.gguf").unwrap_err();
    assert!(err.to_string().contains("/nonexistent/model.gguf"), "{err}");
    let empty = concat!(env!("CARGO_TARGET_TMPDIR"), "/empty.gguf");
    std::fs::write(empty, b"").unwrap();
    assert!(matches!(
        GgufFile::open(empty),
        Err(GgufError::Truncated { .. })
    ));
}

#[test]
fn open_resident_holds_the_same_file_as_open() {
    let path = concat!(env!("CARGO_TARGET_TMPDIR"), "/open_resident_test.gguf");
    base_writer().write(path).unwrap();
    let mapped = GgufFile::open(path).unwrap();
    let resident = GgufFile::open_resident(path).unwrap();
    assert_eq!(mapped.tensors(), resident.tensors());
    for t in mapped.tensors() {
        assert_eq!(mapped.tensor_data(t), resident.tensor_data(t), "{}", t.name);
        // The copy starts on a 2 MiB boundary, so tensor data keeps the file's alignment.
        let offset = resident.tensor_data(t).as_ptr() as usize % 32;
        assert_eq!(offset, 0, "{} misaligned", t.name);
    }
    let err = GgufFile::open_resident("/nonexistent/model.gguf").unwrap_err();
    assert!(err.to_string().contains("/nonexistent/model.gguf"), "{err}");
    let empty = concat!(env!("CARGO_TARGET_TMPDIR"), "/empty_resident.gguf");
    std::fs::write(empty, b"").unwrap();
    assert!(matches!(
        GgufFile::open_resident(empty),
        Err(GgufError::Truncated { .. })
    ));
}

#[test]
fn truncation_at_every_offset_is_an_error() {
    let (bytes, _) = base();
    for len in 0..bytes.len() {
        let result = GgufFile::from_bytes(bytes[..len].to_vec());
        assert!(
            result.is_err(),
            "file truncated to {len} bytes was accepted"
        );
    }
}

#[test]
fn empty_file() {
    expect_err(Vec::new(), &["truncated", "magic"]);
}

#[test]
fn bad_magic() {
    let (mut b, _) = base();
    b[..4].copy_from_slice(b"GGML");
    expect_err(b, &["not a GGUF file", "GGML"]);
}

#[test]
fn big_endian_version() {
    let (mut b, l) = base();
    b[l.version..l.version + 4].copy_from_slice(&3u32.to_be_bytes());
    expect_err(b, &["big-endian GGUF is not supported"]);
}

#[test]
fn big_endian_magic() {
    let (mut b, _) = base();
    b[..4].copy_from_slice(b"FUGG");
    expect_err(b, &["big-endian GGUF is not supported"]);
}

#[test]
fn version_1_rejected_clearly() {
    let (mut b, l) = base();
    put_u32(&mut b, l.version, 1);
    expect_err(b, &["version 1 is not supported"]);
}

#[test]
fn unsupported_future_version() {
    let (mut b, l) = base();
    put_u32(&mut b, l.version, 4);
    expect_err(b, &["unsupported GGUF version 4"]);
}

#[test]
fn huge_kv_count() {
    let (mut b, l) = base();
    put_u64(&mut b, l.kv_count, u64::MAX);
    expect_err(b, &["metadata_kv_count", "corrupt"]);
}

#[test]
fn huge_tensor_count() {
    let (mut b, l) = base();
    put_u64(&mut b, l.tensor_count, 1 << 50);
    expect_err(b, &["tensor_count", "corrupt"]);
}

#[test]
fn huge_key_length() {
    let (mut b, l) = base();
    put_u64(&mut b, l.kvs[3].key, u64::MAX - 3);
    expect_err(b, &["truncated", "key of metadata entry #3"]);
}

#[test]
fn huge_string_value_length() {
    let (mut b, l) = base();
    put_u64(&mut b, l.kvs[kv_index("general.name")].value, 1 << 40);
    expect_err(b, &["truncated", "\"general.name\""]);
}

#[test]
fn huge_array_length() {
    let (mut b, l) = base();
    // Array value: element type (u32) then count (u64).
    put_u64(
        &mut b,
        l.kvs[kv_index("tokenizer.ggml.tokens")].value + 4,
        1 << 40,
    );
    expect_err(b, &["tokenizer.ggml.tokens", "corrupt"]);
}

#[test]
fn huge_numeric_array_length_overflowing_byte_count() {
    let (mut b, l) = base();
    // u64::MAX / 2 INT32 elements: count * 4 overflows u64.
    put_u64(
        &mut b,
        l.kvs[kv_index("tokenizer.ggml.token_type")].value + 4,
        u64::MAX / 2,
    );
    expect_err(b, &["tokenizer.ggml.token_type", "corrupt"]);
}

#[test]
fn unknown_value_type() {
    let (mut b, l) = base();
    put_u32(
        &mut b,
        l.kvs[kv_index("llama.context_length")].value_type,
        13,
    );
    let e = expect_err(b, &["\"llama.context_length\"", "unknown value type id 13"]);
    assert!(matches!(e, GgufError::UnknownValueType { type_id: 13, .. }));
}

#[test]
fn unknown_array_element_type() {
    let (mut b, l) = base();
    put_u32(
        &mut b,
        l.kvs[kv_index("tokenizer.ggml.token_type")].value,
        99,
    );
    expect_err(
        b,
        &["\"tokenizer.ggml.token_type\"", "unknown value type id 99"],
    );
}

#[test]
fn non_utf8_key() {
    let (mut b, l) = base();
    b[l.kvs[4].key + 8] = 0xFF;
    expect_err(b, &["key of metadata entry #4", "not valid UTF-8"]);
}

#[test]
fn non_utf8_string_value() {
    let (mut b, l) = base();
    b[l.kvs[kv_index("general.name")].value + 8 + 2] = 0xC0;
    expect_err(b, &["\"general.name\"", "not valid UTF-8"]);
}

#[test]
fn non_utf8_tensor_name() {
    let (mut b, l) = base();
    b[l.tensors[1].name + 8] = 0xFE;
    expect_err(b, &["name of tensor info #1", "not valid UTF-8"]);
}

#[test]
fn duplicate_key() {
    let mut w = base_writer();
    w.kv("llama.context_length", Value::U32(256));
    expect_err(
        w.to_bytes(),
        &["duplicate metadata key", "llama.context_length"],
    );
}

#[test]
fn duplicate_tensor_name() {
    let mut w = base_writer();
    w.tensor("output_norm.weight", &[4], DType::F32, f32_bytes(&[2.0; 4]));
    expect_err(
        w.to_bytes(),
        &["duplicate tensor name", "output_norm.weight"],
    );
}

#[test]
fn bool_not_zero_or_one() {
    let (mut b, l) = base();
    b[l.kvs[kv_index("tokenizer.ggml.add_bos_token")].value] = 2;
    expect_err(b, &["\"tokenizer.ggml.add_bos_token\"", "bool byte is 2"]);
}

#[test]
fn bool_array_element_not_zero_or_one() {
    let mut w = GgufWriter::new();
    w.kv("flags", Value::Array(Array::Bool(vec![true, false])));
    let (mut b, l) = w.to_bytes_with_layout();
    b[l.kvs[0].value + 12 + 1] = 7;
    expect_err(b, &["\"flags\"", "bool byte is 7"]);
}

#[test]
fn nesting_too_deep() {
    let mut a = Array::U8(vec![1]);
    for _ in 0..kaiyuan_gguf::MAX_ARRAY_NESTING {
        a = Array::Array(vec![a]);
    }
    let mut w = GgufWriter::new();
    w.kv("deep", Value::Array(a));
    expect_err(w.to_bytes(), &["\"deep\"", "nested deeper"]);
}

#[test]
fn nesting_at_the_limit_is_accepted() {
    let mut a = Array::U8(vec![1]);
    for _ in 1..kaiyuan_gguf::MAX_ARRAY_NESTING {
        a = Array::Array(vec![a]);
    }
    let mut w = GgufWriter::new();
    w.kv("deep", Value::Array(a.clone()));
    let f = GgufFile::from_bytes(w.to_bytes()).unwrap();
    assert_eq!(f.get("deep"), Some(&Value::Array(a)));
}

#[test]
fn zero_dims() {
    let (mut b, l) = base();
    put_u32(&mut b, l.tensors[0].n_dims, 0);
    expect_err(b, &["\"token_embd.weight\"", "0 dimensions"]);
}

#[test]
fn too_many_dims() {
    let (mut b, l) = base();
    put_u32(&mut b, l.tensors[2].n_dims, 5);
    expect_err(b, &["\"output_norm.weight\"", "5 dimensions"]);
}

#[test]
fn dims_product_overflow() {
    let (mut b, l) = base();
    put_u64(&mut b, l.tensors[0].dims, 1 << 40);
    put_u64(&mut b, l.tensors[0].dims + 8, 1 << 40);
    expect_err(b, &["\"token_embd.weight\"", "overflow"]);
}

#[test]
fn dim_above_i64_max() {
    let (mut b, l) = base();
    put_u64(&mut b, l.tensors[2].dims, u64::MAX);
    expect_err(b, &["\"output_norm.weight\"", "overflow"]);
}

#[test]
fn row_not_multiple_of_block_size() {
    let (mut b, l) = base();
    put_u64(&mut b, l.tensors[1].dims, 16);
    put_u64(&mut b, l.tensors[1].dims + 8, 4);
    expect_err(
        b,
        &[
            "\"blk.0.attn_q.weight\"",
            "not a multiple of the Q8_0 block size 32",
        ],
    );
}

#[test]
fn unknown_ggml_type() {
    let (mut b, l) = base();
    put_u32(&mut b, l.tensors[1].dtype, 4);
    let e = expect_err(b, &["\"blk.0.attn_q.weight\"", "unknown GGML type id 4"]);
    assert!(matches!(e, GgufError::UnknownTensorType { type_id: 4, .. }));
}

#[test]
fn misaligned_tensor_offset() {
    let (mut b, l) = base();
    put_u64(&mut b, l.tensors[2].offset, 8);
    expect_err(b, &["\"output_norm.weight\"", "offset 8", "alignment 32"]);
}

#[test]
fn tensor_past_end_of_file() {
    let (mut b, _) = base();
    b.truncate(b.len() - 1);
    expect_err(b, &["\"output_norm.weight\"", "past the end of the file"]);
}

#[test]
fn tensor_offset_overflowing_u64() {
    let (mut b, l) = base();
    put_u64(&mut b, l.tensors[2].offset, u64::MAX - 31);
    expect_err(b, &["\"output_norm.weight\"", "past the end of the file"]);
}

#[test]
fn overlapping_tensors() {
    let (mut b, l) = base();
    put_u64(&mut b, l.tensors[2].offset, 96); // inside attn_q: [64, 132)
    expect_err(
        b,
        &[
            "overlap",
            "\"blk.0.attn_q.weight\"",
            "\"output_norm.weight\"",
        ],
    );
}

#[test]
fn alignment_not_power_of_two() {
    let (mut b, l) = base();
    put_u32(&mut b, l.kvs[kv_index("general.alignment")].value, 48);
    expect_err(b, &["general.alignment", "48 is not a power of two"]);
}

#[test]
fn alignment_zero() {
    let (mut b, l) = base();
    put_u32(&mut b, l.kvs[kv_index("general.alignment")].value, 0);
    expect_err(b, &["general.alignment", "0 is not a power of two"]);
}

#[test]
fn alignment_wrong_type() {
    let mut w = GgufWriter::new();
    w.kv("general.alignment", Value::U64(32));
    expect_err(
        w.to_bytes(),
        &["general.alignment", "expected UINT32, found UINT64"],
    );
}

#[test]
fn data_section_beyond_end_of_file() {
    let mut w = GgufWriter::new();
    w.kv("general.alignment", Value::U32(1 << 20))
        .tensor("t", &[1], DType::F32, f32_bytes(&[1.0]));
    let (mut b, l) = w.to_bytes_with_layout();
    b.truncate(l.infos_end + 1);
    expect_err(b, &["data section", "beyond the end of the file"]);
}

#[test]
fn typed_getters_name_key_and_types() {
    let f = GgufFile::from_bytes(base().0).unwrap();
    let e = f.get_u32("general.name").unwrap_err().to_string();
    assert!(
        e.contains("\"general.name\"") && e.contains("integer") && e.contains("STRING"),
        "{e}"
    );
    let e = f.get_u32("test.signed").unwrap_err().to_string();
    assert!(
        e.contains("\"test.signed\"") && e.contains("-5") && e.contains("u32"),
        "{e}"
    );
    let e = f
        .get_str_array("tokenizer.ggml.token_type")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ARRAY of STRING") && e.contains("ARRAY of INT32"),
        "{e}"
    );
    let e = f.get_f32("llama.context_length").unwrap_err().to_string();
    assert!(e.contains("FLOAT32") && e.contains("UINT32"), "{e}");
    let e = f.get_bool("general.name").unwrap_err().to_string();
    assert!(e.contains("BOOL"), "{e}");
}

#[test]
fn check_supported_lists_every_unsupported_tensor() {
    let mut w = base_writer();
    w.tensor("a", &[256], DType::IQ2_XXS, vec![0; 66])
        .tensor("b", &[1], DType::I32, vec![0; 4]);
    let f = GgufFile::from_bytes(w.to_bytes()).unwrap();
    let e = f.check_supported().unwrap_err().to_string();
    assert!(e.contains("a (IQ2_XXS)") && e.contains("b (I32)"), "{e}");
    assert!(!e.contains("output_norm"), "{e}");
}
