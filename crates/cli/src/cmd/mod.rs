//! The subcommands of the `kaiyuan` binary, one module each.

pub mod inspect;
mod model_file;
pub mod perplexity;
pub mod run;
pub mod serve;
pub mod template;
pub mod tokenize;
