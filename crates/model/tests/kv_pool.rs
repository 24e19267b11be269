//! `KvCache::pool_bytes`, the memory budget's estimate of a KV pool made before loading, for
//! a dense model (keys and values per KV head; none for GLM-4-MoE's NextN block, which is
//! not run) and an MLA one (one cached row per token:
//! the normalised latent and the rope key, read back as the value): equal to the size the
//! file's own hyper-parameters give, and to what the pool allocates.

mod common;

use common::tiny;
use kaiyuan_gguf::GgufFile;
use kaiyuan_model::{KvCache, ModelConfig, BLOCK_TOKENS};

fn key(file: &GgufFile, k: &str) -> u64 {
    file.get_u64(k)
        .unwrap_or_else(|e| panic!("{k}: {e}"))
        .unwrap_or_else(|| panic!("{k} missing"))
}

/// Bytes of one position over all layers, f16, from the GGUF keys alone.
fn per_position(file: &GgufFile) -> u64 {
    let arch = file.architecture().expect("architecture").to_string();
    let k = |name: &str| key(file, &format!("{arch}.{name}"));
    if arch == "deepseek2" {
        // MLA caches kv_lora_rank latent values plus the rope key's dimensions, once.
        k("block_count") * (k("attention.kv_lora_rank") + k("rope.dimension_count")) * 2
    } else {
        let heads = k("attention.head_count");
        let kv_heads = file
            .get_u64(&format!("{arch}.attention.head_count_kv"))
            .ok()
            .flatten()
            .unwrap_or(heads);
        let opt = |name: &str| file.get_u64(&format!("{arch}.{name}")).ok().flatten();
        let head_dim = opt("attention.key_length").unwrap_or(k("embedding_length") / heads);
        // Trailing multi-token-prediction blocks get no cache: they are not run.
        let layers = k("block_count") - opt("nextn_predict_layers").unwrap_or(0);
        layers * kv_heads * head_dim * 2 * 2
    }
}

#[test]
fn pool_bytes_are_what_the_file_says_and_what_the_pool_allocates() {
    for name in [
        "llama.f32.gguf",
        "qwen2.f32.gguf",
        "deepseek2.f32.gguf",
        "deepseek2v3.f32.gguf",
        "glm4moe.f32.gguf",
        "hunyuan-moe.f32.gguf",
    ] {
        let file = GgufFile::open(tiny(name)).expect("tiny model opens");
        let config = ModelConfig::of_file(&file).expect("config");
        let blocks = 5;
        let expected = per_position(&file) * (blocks * BLOCK_TOKENS) as u64;
        assert_eq!(KvCache::pool_bytes(&config, blocks), expected, "{name}");
        assert_eq!(
            KvCache::new(&config, blocks).bytes() as u64,
            expected,
            "{name}"
        );
    }
}
