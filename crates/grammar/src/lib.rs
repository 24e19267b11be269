//! Structured output: the grammars a request can ask for ([`GrammarSpec`]: a JSON Schema,
//! any JSON object, a Lark grammar, a regular expression), compiled by the `llguidance`
//! crate against one model's vocabulary ([`GrammarVocab`], built once per model), and the
//! per-sequence [`Constraint`] that gives the engine a [`TokenMask`] before each sample and
//! takes the sampled token after it.
//!
//! The engine never parses JSON or grammars: it asks a constraint for the allowed set, sets
//! every other logit to −∞, samples, and commits the token. When the grammar is complete
//! the constraint says so ([`Constraint::is_finished`]), or only the end-of-generation
//! tokens stay allowed; when it cannot continue, [`Constraint::compute_mask`] fails with a
//! message instead of returning an empty set.
//!
//! Limits (documented in the README): a grammar's text (the schema serialized, the Lark or
//! regex source) is at most [`MAX_SPEC_BYTES`]; `llguidance`'s own fuel limits bound the
//! work of compiling it and of each mask; callers add a wall-clock limit on compilation.

mod lazy;
mod reasoning;
mod vocab;

use std::fmt;
use std::sync::Arc;

use kaiyuan_tokenizer::Tokenizer;
use lazy::LazyPhase;
use llguidance::api::{ParserLimits, TopLevelGrammar};
use llguidance::toktrie::{SimpleVob, TokEnv};
use llguidance::{Matcher, ParserFactory};
use reasoning::ReasoningPhase;
use serde_json::{json, Value};

/// The largest grammar source accepted, in bytes (a schema counts as its JSON text).
pub const MAX_SPEC_BYTES: usize = 64 * 1024;

/// What a request constrains its output to.
#[derive(Clone, Debug, PartialEq)]
pub enum GrammarSpec {
    /// Any JSON object (OpenAI's `response_format: {"type": "json_object"}`).
    JsonObject,
    /// JSON that validates against `schema`. With `strict`, a keyword the compiler cannot
    /// enforce is an error; without, it is ignored (the rest is still enforced).
    JsonSchema { schema: Value, strict: bool },
    /// A grammar in `llguidance`'s Lark dialect (it may embed JSON schemas and name
    /// control tokens such as `<|im_end|>`).
    Lark(String),
    /// A regular expression the whole output must match.
    Regex(String),
}

impl GrammarSpec {
    /// The size that [`MAX_SPEC_BYTES`] limits.
    pub fn source_bytes(&self) -> usize {
        match self {
            GrammarSpec::JsonObject => 0,
            GrammarSpec::JsonSchema { schema, .. } => serde_json::to_string(schema)
                .map(|s| s.len())
                .unwrap_or(usize::MAX),
            GrammarSpec::Lark(s) | GrammarSpec::Regex(s) => s.len(),
        }
    }

    fn to_llguidance(&self) -> Result<TopLevelGrammar, GrammarError> {
        Ok(match self {
            GrammarSpec::JsonObject => TopLevelGrammar::from_json_schema(with_json_options(
                json!({"type": "object"}),
                true,
            )?),
            GrammarSpec::JsonSchema { schema, strict } => {
                if !(schema.is_object() || schema.is_boolean()) {
                    return Err(GrammarError::Invalid(
                        "a JSON schema must be an object (or a boolean)".into(),
                    ));
                }
                TopLevelGrammar::from_json_schema(with_json_options(schema.clone(), *strict)?)
            }
            GrammarSpec::Lark(src) => TopLevelGrammar::from_lark(src.clone()),
            GrammarSpec::Regex(src) => TopLevelGrammar::from_regex(src),
        })
    }
}

/// The schema with Kaiyuan's JSON layout: `", "` and `": "` separators and no other
/// whitespace (a model cannot pad the output with blank lines until `max_tokens`), and
/// keywords the compiler cannot enforce ignored unless `strict`. Options the schema sets
/// itself under `x-guidance` (llguidance's extension) win.
pub fn with_json_options(mut schema: Value, strict: bool) -> Result<Value, GrammarError> {
    let Some(obj) = schema.as_object_mut() else {
        return Ok(schema);
    };
    let mut options = json!({
        "whitespace_flexible": false,
        "item_separator": ", ",
        "key_separator": ": ",
        "lenient": !strict,
    });
    match obj.get("x-guidance") {
        None => {}
        Some(Value::Object(own)) => {
            let merged = options
                .as_object_mut()
                .expect("invariant: built as an object");
            for (k, v) in own {
                merged.insert(k.clone(), v.clone());
            }
        }
        Some(_) => {
            return Err(GrammarError::Invalid(
                "`x-guidance` must be an object of llguidance JSON options".into(),
            ))
        }
    }
    obj.insert("x-guidance".into(), options);
    Ok(schema)
}

/// Why a grammar was refused or stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrammarError {
    /// The source is larger than [`MAX_SPEC_BYTES`].
    TooLarge { bytes: usize, limit: usize },
    /// It does not compile, or matches no output at all (the compiler's message).
    Invalid(String),
    /// The vocabulary could not be prepared for constrained decoding.
    Vocabulary(String),
    /// During generation: no token can continue the output (the matcher's message).
    Stuck(String),
}

impl fmt::Display for GrammarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrammarError::TooLarge { bytes, limit } => write!(
                f,
                "the grammar is {bytes} bytes long; at most {limit} bytes are accepted"
            ),
            GrammarError::Invalid(m) => write!(f, "{m}"),
            GrammarError::Vocabulary(m) => {
                write!(
                    f,
                    "the vocabulary cannot be used for constrained decoding: {m}"
                )
            }
            GrammarError::Stuck(m) => {
                write!(f, "the output cannot continue under its grammar: {m}")
            }
        }
    }
}

impl std::error::Error for GrammarError {}

/// One model's vocabulary prepared for `llguidance` (token trie, compiler, limits). Build
/// once per model (it walks the whole vocabulary) and share it.
pub struct GrammarVocab {
    factory: ParserFactory,
    vocab_size: usize,
    /// Bytes no token starts with, if any (see [`Constraint::compute_mask`]).
    unwritable: Option<Arc<[bool; 256]>>,
}

impl fmt::Debug for GrammarVocab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrammarVocab")
            .field("vocab_size", &self.vocab_size)
            .finish_non_exhaustive()
    }
}

impl GrammarVocab {
    /// Prepares `tok`'s vocabulary; generation under a grammar ends on `eog` (the model's
    /// end-of-generation ids) once the grammar allows the output to end.
    pub fn new(tok: Arc<Tokenizer>, eog: &[u32]) -> Result<GrammarVocab, GrammarError> {
        let trie = vocab::build_trie(&tok, eog);
        let unwritable = vocab::unwritable_bytes(&trie);
        let vocab_size = tok.vocab_size();
        let env: TokEnv = Arc::new(vocab::KaiyuanEnv { trie, tok });
        let mut factory =
            ParserFactory::new_simple(&env).map_err(|e| GrammarError::Vocabulary(e.to_string()))?;
        factory.quiet();
        *factory.limits_mut() = ParserLimits {
            verbose_errors: false,
            ..ParserLimits::default()
        };
        Ok(GrammarVocab {
            factory,
            vocab_size,
            unwritable,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Compiles `spec` and computes its first mask (so that a grammar no output can match
    /// is refused here, before the request queues, and the engine finds that mask ready).
    /// Bounded by the compiler's fuel limits; run it off the async runtime's threads.
    pub fn compile(&self, spec: &GrammarSpec) -> Result<Constraint, GrammarError> {
        let bytes = spec.source_bytes();
        if bytes > MAX_SPEC_BYTES {
            return Err(GrammarError::TooLarge {
                bytes,
                limit: MAX_SPEC_BYTES,
            });
        }
        let grammar = spec.to_llguidance()?;
        let parser = self
            .factory
            .create_parser(grammar)
            .map_err(|e| GrammarError::Invalid(clean_message(&e.to_string())))?;
        let mut constraint = Constraint {
            matcher: Matcher::new(Ok(parser)),
            unwritable: self.unwritable.clone(),
            ready: None,
            reasoning: None,
            lazy: None,
        };
        let first = constraint.compute_mask().map_err(|e| match e {
            GrammarError::Stuck(m) => GrammarError::Invalid(m),
            other => other,
        })?;
        constraint.ready = Some(first);
        Ok(constraint)
    }
}

/// llguidance's messages sometimes carry a context prefix; keep the first line, which
/// says what is wrong.
fn clean_message(m: &str) -> String {
    m.lines().next().unwrap_or(m).trim().to_string()
}

/// The allowed tokens of one step: a bit per vocabulary id.
#[derive(Clone, Debug)]
pub struct TokenMask(pub(crate) SimpleVob);

impl TokenMask {
    /// A mask over `vocab_size` tokens allowing exactly `allowed` (ids past the vocabulary
    /// are ignored): for samplers driven without a grammar, and tests.
    pub fn from_allowed(vocab_size: usize, allowed: impl IntoIterator<Item = u32>) -> TokenMask {
        let mut v = SimpleVob::alloc(vocab_size);
        for id in allowed {
            if (id as usize) < vocab_size {
                v.allow_token(id);
            }
        }
        TokenMask(v)
    }

    pub fn allows(&self, id: u32) -> bool {
        (id as usize) < self.0.len() && self.0.is_allowed(id)
    }

    /// How many tokens are allowed.
    pub fn count(&self) -> usize {
        self.0.num_set()
    }

    /// Sets every disallowed entry of `logits` to −∞ (entries past the vocabulary too).
    pub fn apply(&self, logits: &mut [f32]) {
        let words = self.0.as_slice();
        for (chunk_index, chunk) in logits.chunks_mut(32).enumerate() {
            let word = words.get(chunk_index).copied().unwrap_or(0);
            if word == u32::MAX {
                continue;
            }
            for (bit, logit) in chunk.iter_mut().enumerate() {
                if word & (1 << bit) == 0 {
                    *logit = f32::NEG_INFINITY;
                }
            }
        }
    }
}

/// One sequence's grammar state. Fork it ([`Constraint::fork`]) for each choice of a
/// request: choices advance independently.
pub struct Constraint {
    matcher: Matcher,
    /// The vocabulary's bytes that no token starts with, if any.
    unwritable: Option<Arc<[bool; 256]>>,
    /// A mask computed ahead (the first one, at compile time).
    ready: Option<TokenMask>,
    /// Free reasoning still comes before the grammar ([`Constraint::after_reasoning`]).
    reasoning: Option<ReasoningPhase>,
    /// Free output until a trigger text, then the grammar ([`Constraint::lazy`]).
    lazy: Option<LazyPhase>,
}

impl Clone for Constraint {
    /// The same as [`Constraint::fork`].
    fn clone(&self) -> Constraint {
        self.fork()
    }
}

impl fmt::Debug for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Constraint")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}

impl Constraint {
    /// An independent copy in the same state.
    pub fn fork(&self) -> Constraint {
        Constraint {
            matcher: self.matcher.deep_clone(),
            unwritable: self.unwritable.clone(),
            ready: self.ready.clone(),
            reasoning: self.reasoning.clone(),
            lazy: self.lazy.clone(),
        }
    }

    /// This grammar after a reasoning block: the output first reasons freely until it
    /// writes `close` (e.g. `</think>`; bytes after it in the same token must be whitespace),
    /// or, once `budget` reasoning tokens are spent, `close_ids` (the tag as the tokenizer
    /// writes it) are forced; then the grammar applies. For prompts that leave the reasoning
    /// open (DeepSeek-R1 distills).
    pub fn after_reasoning(
        mut self,
        close: &str,
        close_ids: Vec<u32>,
        budget: Option<usize>,
    ) -> Result<Constraint, GrammarError> {
        let env = self
            .matcher
            .tok_env()
            .map_err(|e| GrammarError::Invalid(clean_message(&e.to_string())))?;
        self.reasoning = Some(ReasoningPhase::new(env, close, close_ids, budget)?);
        Ok(self)
    }

    /// This grammar applied lazily: the output is free (and may end) until it writes one of
    /// `triggers`; the grammar then describes what follows the trigger. Bytes that the
    /// trigger's token wrote after it are fed to the grammar. After a reasoning phase, if any.
    pub fn lazy(mut self, triggers: &[String]) -> Result<Constraint, GrammarError> {
        let env = self
            .matcher
            .tok_env()
            .map_err(|e| GrammarError::Invalid(clean_message(&e.to_string())))?;
        self.lazy = Some(LazyPhase::new(env, triggers)?);
        Ok(self)
    }

    /// Whether the grammar has started (a lazy grammar's trigger was written).
    pub fn is_active(&self) -> bool {
        self.reasoning.is_none() && self.lazy.is_none()
    }

    /// The tokens that may come next. When the grammar is complete this is the
    /// end-of-generation tokens (plus any that continue the output, if the grammar allows
    /// more). An error when no token can continue.
    pub fn compute_mask(&mut self) -> Result<TokenMask, GrammarError> {
        if let Some(r) = &self.reasoning {
            return Ok(r.mask());
        }
        if let Some(l) = &self.lazy {
            return Ok(l.mask());
        }
        if let Some(mask) = self.ready.take() {
            return Ok(mask);
        }
        // llguidance allows the tokens of the text the grammar forces next, assuming they
        // spell all of it; when it holds a byte no token writes, they cannot, and the mask it
        // computes may allow tokens the grammar then refuses (found by fuzzing). No output
        // can get past that byte: stop here.
        if let Some(unwritable) = &self.unwritable {
            let forced = self.matcher.compute_ff_bytes();
            // Text up to a forced special token (0xFF, then its name or `[id]`).
            let text = forced.split(|&b| b == 0xFF).next().unwrap_or(&[]);
            if let Some(&b) = text.iter().find(|&&b| unwritable[usize::from(b)]) {
                return Err(GrammarError::Stuck(format!(
                    "the grammar requires the byte 0x{b:02x}, which no token of this vocabulary writes"
                )));
            }
        }
        let mask = self
            .matcher
            .compute_mask_or_eos()
            .map_err(|e| GrammarError::Stuck(clean_message(&e.to_string())))?;
        if mask.is_zero() {
            return Err(GrammarError::Stuck(
                "the grammar allows no further token".into(),
            ));
        }
        Ok(TokenMask(mask))
    }

    /// Advances past `token` (which the last mask allowed).
    pub fn commit(&mut self, token: u32) -> Result<(), GrammarError> {
        if let Some(r) = &mut self.reasoning {
            if r.commit(token)? {
                self.reasoning = None;
            }
            return Ok(());
        }
        if let Some(l) = &mut self.lazy {
            if let Some(after) = l.commit(token)? {
                self.lazy = None;
                if !after.is_empty() {
                    self.ready = None;
                    self.matcher.consume_tokens(&after).map_err(|e| {
                        GrammarError::Stuck(format!(
                            "the text after the trigger does not fit the grammar: {}",
                            clean_message(&e.to_string())
                        ))
                    })?;
                }
            }
            return Ok(());
        }
        self.ready = None;
        self.matcher
            .consume_token(token)
            .map_err(|e| GrammarError::Stuck(clean_message(&e.to_string())))
    }

    /// The grammar is complete and nothing may follow: the output ends here.
    pub fn is_finished(&self) -> bool {
        self.is_active() && self.matcher.is_stopped() && !self.matcher.is_error()
    }
}
