//! [`ChatRequest`]: the JSON a user or an OpenAI-style client sends to render a conversation
//! (`kaiyuan template -m MODEL FILE.json`, the server's chat endpoint). Extra template variables
//! come in `chat_template_kwargs`, the name OpenAI-compatible servers use, so request fields like
//! `model` or `temperature` never reach the template.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::message::Message;
use crate::template::RenderOptions;

fn yes() -> bool {
    true
}

/// A conversation to render: `{"messages": [...], "tools": [...], "add_generation_prompt": true,
/// "chat_template_kwargs": {"enable_thinking": false}}`. Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    #[serde(default)]
    pub tools: Option<Value>,
    #[serde(default)]
    pub documents: Option<Value>,
    /// Defaults to true: a request normally asks for the assistant's next reply.
    #[serde(default = "yes")]
    pub add_generation_prompt: bool,
    #[serde(default)]
    pub chat_template_kwargs: Map<String, Value>,
}

impl ChatRequest {
    /// The render options this request asks for (system clock for `strftime_now`).
    pub fn options(&self) -> RenderOptions {
        RenderOptions {
            add_generation_prompt: self.add_generation_prompt,
            tools: self.tools.clone().filter(|t| !t.is_null()),
            documents: self.documents.clone().filter(|d| !d.is_null()),
            extra: self.chat_template_kwargs.clone(),
            now_unix_seconds: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Content;

    #[test]
    fn parses_an_openai_style_request() {
        let request: ChatRequest = serde_json::from_str(
            r#"{"model": "x", "temperature": 0.2,
                "messages": [{"role": "user", "content": "hi", "name": null}],
                "chat_template_kwargs": {"enable_thinking": false}}"#,
        )
        .expect("parses");
        assert_eq!(
            request.messages[0].content,
            Some(Content::Text("hi".into()))
        );
        assert_eq!(request.messages[0].name, None);
        let opts = request.options();
        assert!(opts.add_generation_prompt);
        assert_eq!(opts.extra.get("enable_thinking"), Some(&Value::Bool(false)));
        assert!(opts.tools.is_none());
    }
}
