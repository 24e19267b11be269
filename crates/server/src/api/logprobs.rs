//! Log-probabilities in the two shapes OpenAI uses: chat's list of
//! `{"token", "logprob", "bytes", "top_logprobs"}` and the completions endpoint's parallel
//! arrays `{"tokens", "token_logprobs", "top_logprobs", "text_offset"}`. A token's text is
//! its piece (control tokens by their text); `-inf` (a banned token) is reported as
//! -9999.0, OpenAI's floor, since JSON has no infinity.

use kaiyuan_engine::TokenEvent;
use kaiyuan_tokenizer::Tokenizer;
use serde_json::{Map, Value};

use super::response::{ChatLogprobs, CompletionLogprobs, TokenLogprob, TopLogprob};
use crate::prompt::token_text;

const FLOOR: f32 = -9999.0;

fn finite(logprob: f32) -> f32 {
    if logprob.is_finite() {
        logprob
    } else {
        FLOOR
    }
}

/// Chat logprobs of `tokens` (those without a logprob are skipped).
pub fn chat(tok: &Tokenizer, tokens: &[TokenEvent]) -> ChatLogprobs {
    let content = tokens
        .iter()
        .filter_map(|t| {
            let logprob = t.logprob?;
            let (token, bytes) = token_text(tok, t.id);
            let top_logprobs = t
                .top_logprobs
                .iter()
                .map(|&(id, lp)| {
                    let (token, bytes) = token_text(tok, id);
                    TopLogprob {
                        token,
                        logprob: finite(lp),
                        bytes: Some(bytes),
                    }
                })
                .collect();
            Some(TokenLogprob {
                token,
                logprob: finite(logprob),
                bytes: Some(bytes),
                top_logprobs,
            })
        })
        .collect();
    ChatLogprobs {
        content,
        refusal: None,
    }
}

/// Completions logprobs of `tokens`, whose text starts at character `offset` of the
/// choice's text. Returns them and the offset after the last token.
pub fn completion(
    tok: &Tokenizer,
    tokens: &[TokenEvent],
    mut offset: usize,
) -> (CompletionLogprobs, usize) {
    let mut out = CompletionLogprobs::default();
    for t in tokens {
        let Some(logprob) = t.logprob else { continue };
        let (text, _) = token_text(tok, t.id);
        let mut top = Map::new();
        for &(id, lp) in &t.top_logprobs {
            let (alt, _) = token_text(tok, id);
            // Two ids with the same text: the more likely one (listed first) stays.
            top.entry(alt).or_insert_with(|| Value::from(finite(lp)));
        }
        out.text_offset.push(offset);
        offset += text.chars().count();
        out.tokens.push(text);
        out.token_logprobs.push(finite(logprob));
        out.top_logprobs.push(top);
    }
    (out, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infinities_become_the_floor() {
        assert_eq!(finite(f32::NEG_INFINITY), -9999.0);
        assert_eq!(finite(-1.5), -1.5);
    }
}
