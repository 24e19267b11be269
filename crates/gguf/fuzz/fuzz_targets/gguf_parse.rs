//! Fuzz target: parse arbitrary bytes as GGUF and touch everything a caller could reach
//! (metadata, typed getters, every tensor's data). Any panic or out-of-bounds read fails.
#![no_main]

use kaiyuan_gguf::{GgufFile, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes(data.to_vec()) else {
        return;
    };
    let _ = (
        file.version(),
        file.alignment(),
        file.data_offset(),
        file.architecture(),
    );
    for (key, value) in file.metadata() {
        assert!(file.get(key).is_some());
        let _ = value.to_string();
        let _ = (
            file.get_u32(key),
            file.get_u64(key),
            file.get_f32(key),
            file.get_str(key),
        );
        let _ = (
            file.get_bool(key),
            file.get_str_array(key),
            file.get_i32_array(key),
        );
        if let Value::Array(a) = value {
            for i in 0..a.len().min(4) {
                assert!(a.get(i).is_some());
            }
        }
    }
    let mut sum = 0u64;
    for t in file.tensors() {
        let bytes = file.tensor_data(t);
        assert_eq!(bytes.len() as u64, t.size);
        assert_eq!(file.tensor(&t.name).map(|x| x.offset), Some(t.offset));
        let _ = t.n_elements();
        sum = sum.wrapping_add(bytes.iter().map(|&b| u64::from(b)).sum::<u64>());
    }
    std::hint::black_box(sum);
    let _ = file.check_supported().map_err(|e| e.to_string());
});
