//! The interface every LM backend (CPU, GPU) implements: a model plus its KV cache.

use matformer_graph::{ModelConfig, Submodel};

use crate::error::{Result, RuntimeError};

/// Which logits a forward pass returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    /// Only the last token's logits `[vocab]` (prefill before sampling, decode).
    Last,
    /// Every token's logits `[n, vocab]` (evaluation, speculative verification).
    All,
}

/// A MatLM on some device with a KV cache. The submodel is a per-call argument: switching it changes
/// nothing but the widths the kernels are given.
pub trait LmExecutor {
    /// The model's config.
    fn config(&self) -> &ModelConfig;
    /// Run `tokens` at positions `cached_len()..`, append their keys/values to the cache, return logits.
    fn forward(&mut self, tokens: &[u32], sub: &Submodel, which: Logits) -> Result<Vec<f32>>;
    /// Tokens currently in the KV cache.
    fn cached_len(&self) -> usize;
    /// Forget cached positions from `len` on (rollback after rejected speculative tokens).
    fn truncate(&mut self, len: usize);
    /// Empty the cache.
    fn reset(&mut self) {
        self.truncate(0)
    }
    /// Short device description for logs.
    fn device_name(&self) -> String;
    /// A second executor over the same weights (no copy, no second upload) with its own empty cache:
    /// e.g. the draft of self-speculative decoding next to the target.
    fn fork(&self) -> Result<Box<dyn LmExecutor>>;
}

/// Checks shared by every backend before any work: non-empty, ids in vocabulary, fits the context.
pub fn validate_tokens(cfg: &ModelConfig, tokens: &[u32], cached: usize) -> Result<()> {
    if tokens.is_empty() {
        return Err(RuntimeError::EmptyPrompt);
    }
    let vocab = cfg.n_outputs();
    if let Some((position, &id)) = tokens.iter().enumerate().find(|(_, &t)| t as usize >= vocab) {
        return Err(RuntimeError::TokenOutOfVocab { id, position, vocab });
    }
    let max = cfg.max_seq_len();
    if cached + tokens.len() > max {
        return Err(RuntimeError::ContextOverflow { len: cached + tokens.len(), max });
    }
    Ok(())
}

/// Family check used by LM-only entry points.
pub fn require_lm(cfg: &ModelConfig) -> Result<()> {
    if cfg.is_lm() {
        Ok(())
    } else {
        Err(RuntimeError::WrongFamily { expected: "MatLM", actual: "MatViT" })
    }
}

/// A boxed executor (what [`crate::lm_executor`] returns) is an executor too.
impl<E: LmExecutor + ?Sized> LmExecutor for Box<E> {
    fn config(&self) -> &ModelConfig {
        (**self).config()
    }
    fn forward(&mut self, tokens: &[u32], sub: &Submodel, which: Logits) -> Result<Vec<f32>> {
        (**self).forward(tokens, sub, which)
    }
    fn cached_len(&self) -> usize {
        (**self).cached_len()
    }
    fn truncate(&mut self, len: usize) {
        (**self).truncate(len)
    }
    fn reset(&mut self) {
        (**self).reset()
    }
    fn device_name(&self) -> String {
        (**self).device_name()
    }
    fn fork(&self) -> Result<Box<dyn LmExecutor>> {
        (**self).fork()
    }
}
