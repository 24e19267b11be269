//! PLACEHOLDER (branch engine-api only): the engine thread, to be replaced by the real
//! scheduler loop. Every request ends at once with an error.

use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};

use kaiyuan_model::Model;
use kaiyuan_tokenizer::Tokenizer;

use crate::handle::{Command, EngineConfig};
use crate::metrics::EngineMetrics;
use crate::request::{Event, FinishReason, Finished, Usage};

pub(crate) fn end_of_generation_ids(tok: &Tokenizer) -> Vec<u32> {
    [tok.eos_id(), tok.eot_id()].into_iter().flatten().collect()
}

pub(crate) fn run(
    _model: Model,
    _tok: Arc<Tokenizer>,
    _config: EngineConfig,
    rx: mpsc::Receiver<Command>,
    metrics: Arc<EngineMetrics>,
) {
    while let Ok(cmd) = rx.recv() {
        match cmd {
            Command::Submit(s) => {
                metrics.queued.fetch_sub(1, Ordering::AcqRel);
                let _ = s.events.send(Event::Finished(Finished {
                    reason: FinishReason::Error("engine not implemented yet".into()),
                    text: String::new(),
                    usage: Usage {
                        prompt_tokens: s.request.prompt.len(),
                        ..Usage::default()
                    },
                    time_to_first_token: None,
                }));
            }
            Command::Cancel(_) => {}
            Command::Shutdown { .. } => return,
        }
    }
}
