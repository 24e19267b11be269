//! The OpenAI API's data: request bodies as they arrive, their validation into the
//! parameters the server works with, and the response shapes.

pub mod anthropic;
pub mod grammar;
pub mod logprobs;
mod messages;
pub mod reasoning;
pub mod request;
pub mod response;
pub mod tools;
pub mod validate;
