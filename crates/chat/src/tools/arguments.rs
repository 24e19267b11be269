//! How a chat template wants a tool call's `arguments`: as a JSON object it serializes itself
//! (`tool_call.arguments | tojson`), or as JSON text it writes as is
//! (`'<｜tool▁sep｜>' + tool['function']['arguments']`). Both exist for one family: DeepSeek's
//! own templates concatenate the text, while the copies llama.cpp and vLLM ship (and GGUFs
//! converted with them) apply `tojson`, which turns text into a quoted, escaped string
//! (`"{\"city\": …}"`) — a prompt unlike anything the model was trained on.

/// Whether `template_source` applies `tojson` to a tool call's `arguments` (`arguments | tojson`,
/// `['arguments']|tojson(indent=2)`...): then it wants them as an object. A template that only
/// concatenates or prints them wants JSON text where its family writes JSON (DeepSeek).
pub fn template_serializes_arguments(template_source: &str) -> bool {
    let s = template_source;
    s.match_indices("arguments").any(|(at, word)| {
        let rest = s[at + word.len()..].trim_start_matches(['\'', '"', ']', ' ', '\t', '\n']);
        rest.strip_prefix('|')
            .is_some_and(|r| r.trim_start().starts_with("tojson"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tojson_on_arguments_in_every_spelling() {
        for source in [
            "{{ tool_call.arguments | tojson }}",
            "{{ tool['function']['arguments']|tojson }}",
            "{{ '<｜tool▁sep｜>' + tool[\"function\"][\"arguments\"] | tojson(indent=2) }}",
            "{{ (a if a is string else tool_call.arguments | tojson) }}",
        ] {
            assert!(template_serializes_arguments(source), "{source}");
        }
    }

    #[test]
    fn concatenated_or_printed_arguments_are_text() {
        for source in [
            "{{ '<｜tool▁sep｜>' + tool['function']['arguments'] + '<｜tool▁call▁end｜>' }}",
            "{{ tool_call.arguments }}",
            "{%- if tool_call.arguments is string %}{{ x | tojson }}{% endif %}",
            "{{ tool_call.function | tojson }}",
            "",
        ] {
            assert!(!template_serializes_arguments(source), "{source}");
        }
    }
}
