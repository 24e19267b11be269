//! Built-in chat templates for models whose GGUF has no `tokenizer.chat_template`, and the rule
//! that picks one from the model's metadata. The templates are written for Kaiyuan from the
//! published prompt formats (ChatML; Llama 3's header/eot format; Gemma's turn format).

/// Names accepted by [`builtin`].
pub const BUILTIN_NAMES: [&str; 3] = ["chatml", "llama3", "gemma"];

/// ChatML: `<|im_start|>role\ncontent<|im_end|>\n` per message.
const CHATML: &str = include_str!("builtin/chatml.jinja");

/// Llama 3: BOS, then `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>` per message,
/// content trimmed.
const LLAMA3: &str = include_str!("builtin/llama3.jinja");

/// Gemma: BOS, then `<start_of_turn>user|model\ncontent<end_of_turn>\n`; Gemma has no system role,
/// so a leading system message is put before the first user turn's text, separated by a blank line.
const GEMMA: &str = include_str!("builtin/gemma.jinja");

/// The source of the built-in template called `name` (one of [`BUILTIN_NAMES`]).
pub fn builtin(name: &str) -> Option<&'static str> {
    match name {
        "chatml" => Some(CHATML),
        "llama3" => Some(LLAMA3),
        "gemma" => Some(GEMMA),
        _ => None,
    }
}

/// A built-in template chosen for a model, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinChoice {
    pub name: &'static str,
    pub source: &'static str,
    /// One sentence for the user: which metadata decided.
    pub reason: String,
}

/// Picks the built-in template for a model without one. `architecture` is `general.architecture`;
/// `has_token` says whether the vocabulary holds a token text. The vocabulary's turn markers decide
/// first (they are what the model was trained on), then the architecture; ChatML is the default.
pub fn pick_builtin(architecture: Option<&str>, has_token: &dyn Fn(&str) -> bool) -> BuiltinChoice {
    let choose = |name: &'static str, reason: String| BuiltinChoice {
        name,
        source: builtin(name).expect("invariant: the name is in BUILTIN_NAMES"),
        reason,
    };
    let markers: [(&'static str, [&str; 2]); 3] = [
        ("gemma", ["<start_of_turn>", "<end_of_turn>"]),
        ("llama3", ["<|start_header_id|>", "<|eot_id|>"]),
        ("chatml", ["<|im_start|>", "<|im_end|>"]),
    ];
    for (name, [open, close]) in markers {
        if has_token(open) && has_token(close) {
            return choose(
                name,
                format!("the vocabulary has the {name} turn tokens {open} and {close}"),
            );
        }
    }
    match architecture {
        Some(arch) if arch.starts_with("gemma") => {
            choose("gemma", format!("the architecture is {arch} and the vocabulary has no known turn tokens"))
        }
        Some(arch) => choose("chatml", format!("no known turn tokens in the vocabulary and no rule for architecture {arch}; ChatML is the default")),
        None => choose("chatml", "no known turn tokens and no architecture; ChatML is the default".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_builtin_exists_and_unknown_is_none() {
        for name in BUILTIN_NAMES {
            assert!(
                builtin(name).is_some_and(|s| s.contains("macro content_text")),
                "{name}"
            );
        }
        assert!(builtin("vicuna").is_none());
    }

    #[test]
    fn picks_from_vocabulary_then_architecture() {
        let gemma_vocab = |t: &str| matches!(t, "<start_of_turn>" | "<end_of_turn>");
        assert_eq!(pick_builtin(Some("llama"), &gemma_vocab).name, "gemma");
        let llama3_vocab = |t: &str| matches!(t, "<|start_header_id|>" | "<|eot_id|>");
        assert_eq!(pick_builtin(Some("llama"), &llama3_vocab).name, "llama3");
        let chatml_vocab = |t: &str| matches!(t, "<|im_start|>" | "<|im_end|>");
        assert_eq!(pick_builtin(Some("llama"), &chatml_vocab).name, "chatml");
        let nothing = |_: &str| false;
        let gemma = pick_builtin(Some("gemma3"), &nothing);
        assert_eq!(gemma.name, "gemma");
        assert!(gemma.reason.contains("gemma3"));
        assert_eq!(pick_builtin(None, &nothing).name, "chatml");
    }
}
