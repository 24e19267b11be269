//! The subcommands of the `kaiyuan` binary, one module each.

pub mod bench;
pub mod chat;
pub mod inspect;
mod local_engine;
mod mapped;
mod model_file;
mod model_ref;
pub mod perplexity;
pub mod pull;
pub mod run;
mod sampling_args;
pub mod serve;
mod serve_metering;
mod serve_models;
mod serve_specs;
pub mod store;
pub mod template;
pub mod tokenize;
