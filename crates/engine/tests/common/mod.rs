//! What the engine's model tests share: loading the default test model.

use std::path::PathBuf;
use std::sync::Arc;

use kaiyuan_gguf::GgufFile;
use kaiyuan_model::Model;
use kaiyuan_tokenizer::{Tokenizer, Vocab};

const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// SmolLM2-135M-Instruct from `$KAIYUAN_MODELS` (default `<repo>/models`) with its
/// tokenizer; fails, saying what to run, when the file is missing.
pub fn load_smollm2() -> (Model, Arc<Tokenizer>) {
    let dir = std::env::var_os("KAIYUAN_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"));
    let path = dir.join(SMOLLM2);
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-models",
        path.display()
    );
    let file = Arc::new(GgufFile::open(&path).expect("model opens"));
    let vocab = Vocab::from_gguf(&file).expect("vocab reads");
    let tok = Tokenizer::from_vocab(&vocab).expect("tokenizer builds");
    let model = Model::from_gguf(file).expect("model loads");
    (model, Arc::new(tok))
}
