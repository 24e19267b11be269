//! The subcommands of the `kaiyuan` binary, one module each.

pub mod inspect;
