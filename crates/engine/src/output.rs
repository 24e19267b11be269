//! One request's output side: turns sampled tokens into text events, deciding when the
//! request ends (end-of-generation token, stop token id, stop string, `max_tokens`).
//! Text goes through an incremental detokenizer (whole UTF-8 characters only) and a stop
//! filter (text that could still become a stop string is held back).

use kaiyuan_tokenizer::{StopEvent, StopFilter, StreamDecoder, Tokenizer};

use crate::request::{FinishReason, GenerateRequest};

pub(crate) struct Output<'t> {
    decoder: StreamDecoder<'t>,
    stop: StopFilter,
    /// Token ids that end the request (model end-of-generation ids unless `ignore_eos`,
    /// plus the request's stop token ids).
    stop_ids: Vec<u32>,
    max_tokens: usize,
    generated: usize,
    /// The final flush completed a stop string.
    stopped_in_flush: bool,
    /// Which of the request's stop strings ended the output, if one did.
    matched_stop: Option<usize>,
}

/// What one sampled token did.
pub(crate) struct Step {
    /// Text that became final (possibly empty).
    pub text: String,
    /// Whether the token is part of the visible output (false for a token that ended the
    /// request by id).
    pub visible: bool,
    pub finish: Option<FinishReason>,
}

impl<'t> Output<'t> {
    pub fn new(tok: &'t Tokenizer, request: &GenerateRequest, eog: &[u32]) -> Output<'t> {
        let mut stop_ids = request.stop_token_ids.clone();
        if !request.ignore_eos {
            stop_ids.extend_from_slice(eog);
        }
        Output {
            decoder: tok.stream_decoder(false),
            stop: StopFilter::new(&request.stop),
            stop_ids,
            max_tokens: request.max_tokens,
            generated: 0,
            stopped_in_flush: false,
            matched_stop: None,
        }
    }

    pub fn generated(&self) -> usize {
        self.generated
    }

    /// The index (in the request's `stop`) of the stop string that ended the output.
    pub fn matched_stop(&self) -> Option<usize> {
        self.matched_stop
    }

    /// Takes one sampled token.
    pub fn push(&mut self, token: u32) -> Step {
        self.generated += 1;
        if self.stop_ids.contains(&token) {
            return Step {
                text: self.flush(),
                visible: false,
                finish: Some(FinishReason::Stop),
            };
        }
        let piece = match self.decoder.push(token) {
            Ok(p) => p,
            Err(e) => {
                return Step {
                    text: String::new(),
                    visible: false,
                    finish: Some(FinishReason::Error(format!(
                        "cannot detokenize token {token}: {e}"
                    ))),
                }
            }
        };
        let (mut text, mut finish) = match self.stop.push(&piece) {
            StopEvent::Text(t) => (t, None),
            StopEvent::Stopped { text, stop } => {
                self.matched_stop = Some(stop);
                (text, Some(FinishReason::Stop))
            }
        };
        if finish.is_none() && self.generated >= self.max_tokens {
            text.push_str(&self.flush());
            finish = Some(self.final_reason(FinishReason::Length));
        }
        Step {
            text,
            visible: true,
            finish,
        }
    }

    /// Ends the request after a token that [`Output::push`] let continue (its grammar is
    /// complete): the text still held back, and the reason (`Stop`).
    pub fn end_here(&mut self) -> (String, FinishReason) {
        let text = self.flush();
        self.stopped_in_flush = false;
        (text, FinishReason::Stop)
    }

    /// Ends the text: what the decoder and the stop filter still hold.
    fn flush(&mut self) -> String {
        let tail = self.decoder.finish();
        match self.stop.push(&tail) {
            StopEvent::Text(mut t) => {
                t.push_str(&self.stop.finish());
                t
            }
            StopEvent::Stopped { text, stop } => {
                self.stopped_in_flush = true;
                self.matched_stop = Some(stop);
                text
            }
        }
    }

    fn final_reason(&mut self, otherwise: FinishReason) -> FinishReason {
        if std::mem::take(&mut self.stopped_in_flush) {
            FinishReason::Stop
        } else {
            otherwise
        }
    }
}
