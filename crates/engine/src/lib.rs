//! Kaiyuan's engine layer: what happens to a request between the model's forward pass and
//! the token stream. For now it holds [`sampling`] (data-flow step 7 of the architecture
//! guide: logit bias, penalties, temperature, top-k / top-p / min-p, seeded draw,
//! log-probabilities). It works on plain `&mut [f32]` logits and knows nothing of the model.

pub mod sampling;
