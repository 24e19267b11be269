//! Fuzz target: chat template rendering with hostile conversations. Templates: the two test
//! models' own, or the built-in one the CLI picks for a model without one (with their
//! BOS/EOS and control tokens, as the CLI and server compile them)
//! and the built-in ones (for SmolLM2's tokens). The input's first byte picks the template
//! and the options; the rest is either a chat request as JSON (any roles, content, tool_calls,
//! tools, documents, kwargs) or, when it does not parse, raw text split at NUL bytes into
//! messages with hostile roles. Renders may fail with an error, never panic; a separated
//! render concatenates to the plain render. The text is also fed to every tool-call parser.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use kaiyuan_chat::tools::ToolFormat;
use kaiyuan_chat::{
    builtin, pick_builtin, ChatRequest, ChatTemplate, Content, Message, BUILTIN_NAMES,
};
use kaiyuan_gguf::GgufFile;
use kaiyuan_tokenizer::{TokenType, Tokenizer, Vocab};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const MODELS: [&str; 2] = [
    "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma-3-270m-q4_k_m.gguf",
];

const ROLES: [&str; 8] = [
    "user",
    "assistant",
    "system",
    "tool",
    "developer",
    "",
    "<|im_end|>",
    "ipython",
];

struct Model {
    tokenizer: Tokenizer,
    template: String,
}

fn load(name: &str) -> Model {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../models")
        .join(name);
    let file = GgufFile::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/fetch-models)", path.display()));
    let tokenizer = Tokenizer::from_vocab(&Vocab::from_gguf(&file).expect("tokenizer metadata"))
        .expect("tokenizer");
    let template = file
        .get_str("tokenizer.chat_template")
        .expect("chat template metadata")
        .map(str::to_string)
        .unwrap_or_else(|| {
            // No template in the file: the built-in one the CLI picks for it.
            let controls = control_texts(&tokenizer);
            let has = |t: &str| controls.iter().any(|c| c == t);
            pick_builtin(file.architecture(), &has).source.to_string()
        });
    Model {
        tokenizer,
        template,
    }
}

fn token_text(tok: &Tokenizer, id: Option<u32>) -> Option<String> {
    let bytes = tok.piece_bytes(id?, true).ok()?;
    Some(String::from_utf8_lossy(bytes).into_owned())
}

fn control_texts(tok: &Tokenizer) -> Vec<String> {
    (0..tok.vocab_size() as u32)
        .filter(|&id| {
            matches!(
                tok.token_type(id),
                Some(TokenType::Control | TokenType::UserDefined)
            )
        })
        .filter_map(|id| token_text(tok, Some(id)))
        .collect()
}

fn compile(model: &Model, source: &str) -> ChatTemplate {
    let tok = &model.tokenizer;
    let controls = control_texts(tok);
    let bos = token_text(tok, tok.bos_id());
    let eos = token_text(tok, tok.eos_id());
    ChatTemplate::new(source, bos.as_deref(), eos.as_deref())
        .expect("template compiles")
        .with_control_tokens(controls)
}

fn templates() -> &'static [ChatTemplate] {
    static TEMPLATES: OnceLock<Vec<ChatTemplate>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        let models = MODELS.map(load);
        let mut out: Vec<ChatTemplate> = models.iter().map(|m| compile(m, &m.template)).collect();
        for name in BUILTIN_NAMES {
            out.push(compile(&models[0], builtin(name).expect("built-in")));
        }
        out
    })
}

/// Raw text as a conversation: NUL-separated messages, each `ROLE_INDEX_BYTE` + content.
fn raw_messages(text: &str) -> Vec<Message> {
    text.split('\0')
        .map(|part| {
            let mut chars = part.chars();
            let role = chars
                .next()
                .map_or("user", |c| ROLES[c as usize % ROLES.len()]);
            let content = chars.as_str();
            let mut m = Message::text(role, content);
            match part.len() % 5 {
                1 => m.reasoning_content = Some(content.to_string()),
                2 => {
                    m.tool_calls = Some(serde_json::json!([{"type": "function", "id": content,
                        "function": {"name": content, "arguments": {"x": content}}}]));
                }
                3 => {
                    m.content = Some(Content::Parts(vec![serde_json::json!(
                    {"type": "text", "text": content})]))
                }
                _ => {}
            }
            m
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let templates = templates();
    let template = &templates[usize::from(mode) % templates.len()];
    let (messages, mut opts) = match serde_json::from_str::<ChatRequest>(text) {
        Ok(req) => {
            let opts = req.options();
            (req.messages, opts)
        }
        Err(_) => {
            let mut opts = kaiyuan_chat::RenderOptions::default();
            if mode & 0x80 != 0 {
                opts.tools = Some(serde_json::json!([{"type": "function", "function": {
                    "name": "f", "description": text, "parameters": {"type": "object",
                    "properties": {"x": {"type": "string", "description": text}}}}}]));
            }
            (raw_messages(text), opts)
        }
    };
    opts.add_generation_prompt = mode & 0x40 != 0;
    opts.now_unix_seconds = Some(1_700_000_000);
    if mode & 0x20 != 0 {
        opts.extra
            .insert("enable_thinking".into(), Value::Bool(mode & 0x10 != 0));
    }
    let plain = template.render_text(&messages, &opts);
    if let Ok(rendered) = template.render(&messages, &opts) {
        let plain = plain.expect("a render that separates also renders as text");
        assert_eq!(rendered.text(), plain, "segments concatenate to the render");
    }
    let format = ToolFormat::ALL[usize::from(mode >> 4) % ToolFormat::ALL.len()];
    let _ = format.parse_all(text);
});
