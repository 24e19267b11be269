//! Builds a [`Vocab`] from a GGUF file's `tokenizer.ggml.*` metadata.

use crate::error::{Error, Result};
use crate::vocab::Vocab;
use kaiyuan_gguf::{Array, GgufError, GgufFile};

fn meta(e: GgufError) -> Error {
    Error::InvalidVocab(e.to_string())
}

/// Token types may be stored as any integer array; GGUF writers use INT32.
fn int_array(file: &GgufFile, key: &str) -> Result<Vec<i32>> {
    let Some(arr) = file.get_array(key).map_err(meta)? else {
        return Ok(Vec::new());
    };
    let out: Option<Vec<i32>> = match arr {
        Array::I32(v) => Some(v.clone()),
        Array::U32(v) => v.iter().map(|&x| i32::try_from(x).ok()).collect(),
        Array::I8(v) => Some(v.iter().map(|&x| x.into()).collect()),
        Array::U8(v) => Some(v.iter().map(|&x| x.into()).collect()),
        Array::I16(v) => Some(v.iter().map(|&x| x.into()).collect()),
        Array::U16(v) => Some(v.iter().map(|&x| x.into()).collect()),
        Array::I64(v) => v.iter().map(|&x| i32::try_from(x).ok()).collect(),
        Array::U64(v) => v.iter().map(|&x| i32::try_from(x).ok()).collect(),
        _ => None,
    };
    out.ok_or_else(|| Error::InvalidVocab(format!("{key} is not an array of small integers")))
}

impl Vocab {
    /// Reads the tokenizer metadata of `file`. A missing `tokenizer.ggml.model` or
    /// `tokenizer.ggml.tokens`, or a key of the wrong type, is an error naming the key.
    pub fn from_gguf(file: &GgufFile) -> Result<Vocab> {
        let str_key = |k: &str| -> Result<Option<String>> {
            Ok(file.get_str(k).map_err(meta)?.map(str::to_owned))
        };
        let id = |k: &str| file.get_u32(k).map_err(meta);
        let flag = |k: &str| file.get_bool(k).map_err(meta);
        let model = str_key("tokenizer.ggml.model")?
            .ok_or_else(|| Error::InvalidVocab("tokenizer.ggml.model is missing".into()))?;
        let tokens = file
            .get_str_array("tokenizer.ggml.tokens")
            .map_err(meta)?
            .ok_or_else(|| Error::InvalidVocab("tokenizer.ggml.tokens is missing".into()))?
            .to_vec();
        Ok(Vocab {
            model,
            pre: str_key("tokenizer.ggml.pre")?,
            tokens,
            scores: file
                .get_f32_array("tokenizer.ggml.scores")
                .map_err(meta)?
                .map(<[f32]>::to_vec)
                .unwrap_or_default(),
            token_types: int_array(file, "tokenizer.ggml.token_type")?,
            merges: file
                .get_str_array("tokenizer.ggml.merges")
                .map_err(meta)?
                .map(<[String]>::to_vec)
                .unwrap_or_default(),
            bos_id: id("tokenizer.ggml.bos_token_id")?,
            eos_id: id("tokenizer.ggml.eos_token_id")?,
            eot_id: id("tokenizer.ggml.eot_token_id")?,
            pad_id: id("tokenizer.ggml.padding_token_id")?,
            unk_id: id("tokenizer.ggml.unknown_token_id")?,
            add_bos: flag("tokenizer.ggml.add_bos_token")?,
            add_eos: flag("tokenizer.ggml.add_eos_token")?,
            add_space_prefix: flag("tokenizer.ggml.add_space_prefix")?,
        })
    }
}
