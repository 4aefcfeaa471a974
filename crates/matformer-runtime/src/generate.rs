//! Text generation: one batched prefill of the prompt, then incremental decode over the KV cache.

use matformer_graph::Submodel;

use crate::error::{Result, RuntimeError};
use crate::executor::{validate_tokens, LmExecutor, Logits};
use crate::sampling::{Sampler, SamplingParams};

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// Produced the requested number of tokens.
    MaxTokens,
    /// The context window is full.
    ContextFull,
}

/// The result of [`generate`].
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    /// Generated token ids (prompt excluded).
    pub tokens: Vec<u32>,
    /// Why it stopped.
    pub stop: StopReason,
}

/// Generate up to `max_tokens` after `prompt` with `sub`, calling `on_token` as each token is chosen.
/// The executor's cache is reset first. A prompt that does not fit the context is an error; a generation
/// that reaches the end of the context stops early with [`StopReason::ContextFull`].
pub fn generate(
    exec: &mut dyn LmExecutor,
    prompt: &[u32],
    sub: &Submodel,
    max_tokens: usize,
    params: &SamplingParams,
    mut on_token: impl FnMut(u32),
) -> Result<Generation> {
    let mut sampler = Sampler::new(params.clone())?;
    exec.reset();
    validate_tokens(exec.config(), prompt, 0)?;
    if max_tokens == 0 {
        return Ok(Generation { tokens: vec![], stop: StopReason::MaxTokens });
    }
    let max_seq = exec.config().max_seq_len();
    let mut logits = exec.forward(prompt, sub, Logits::Last)?;
    let mut out = Vec::with_capacity(max_tokens);
    loop {
        let next = sampler.sample(&logits);
        out.push(next);
        on_token(next);
        if out.len() == max_tokens {
            return Ok(Generation { tokens: out, stop: StopReason::MaxTokens });
        }
        if exec.cached_len() + 1 > max_seq {
            return Ok(Generation { tokens: out, stop: StopReason::ContextFull });
        }
        logits = exec.forward(&[next], sub, Logits::Last)?;
    }
}

/// Mean next-token cross-entropy (nats) of `tokens` under `sub`, over windows of the context length.
pub fn mean_loss(exec: &mut dyn LmExecutor, tokens: &[u32], sub: &Submodel, window: usize) -> Result<f64> {
    if tokens.len() < 2 {
        return Err(RuntimeError::InvalidInput("need at least two tokens to measure next-token loss".into()));
    }
    let window = window.min(exec.config().max_seq_len()).max(2);
    let vocab = exec.config().n_outputs();
    let (mut total, mut count) = (0.0f64, 0usize);
    let mut start = 0;
    while start + 1 < tokens.len() {
        let end = (start + window).min(tokens.len());
        let chunk = &tokens[start..end];
        exec.reset();
        let logits = exec.forward(chunk, sub, Logits::All)?;
        for (i, &target) in chunk[1..].iter().enumerate() {
            let row = &logits[i * vocab..(i + 1) * vocab];
            let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let lse = row.iter().map(|&v| ((v - max) as f64).exp()).sum::<f64>().ln() + max as f64;
            total += lse - row[target as usize] as f64;
            count += 1;
        }
        start = end - 1;
        if end == tokens.len() {
            break;
        }
    }
    Ok(total / count as f64)
}
