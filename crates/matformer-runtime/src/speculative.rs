//! Self-speculative decoding: a small submodel drafts `k` tokens, the large one verifies them in one batched
//! forward pass over the same weights. Greedy only, so the output equals the large model's greedy output.

use std::time::Instant;

use matformer_graph::Submodel;

use crate::error::{Result, RuntimeError};
use crate::executor::{validate_tokens, LmExecutor, Logits};
use crate::generate::StopReason;
use crate::sampling::argmax;

/// Counters of a speculative run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpecStats {
    /// Draft tokens proposed.
    pub drafted: usize,
    /// Draft tokens the verifier accepted.
    pub accepted: usize,
    /// Batched verification passes of the large model.
    pub verify_passes: usize,
    /// Draft forward calls (one per drafted token, the first of a round also catching up).
    pub draft_steps: usize,
    /// Wall time spent drafting, in seconds.
    pub draft_secs: f64,
    /// Wall time spent in verification passes (prefill excluded), in seconds.
    pub verify_secs: f64,
}

impl SpecStats {
    /// Fraction of drafted tokens accepted.
    pub fn acceptance(&self) -> f64 {
        if self.drafted == 0 {
            0.0
        } else {
            self.accepted as f64 / self.drafted as f64
        }
    }
}

/// Result of [`speculative_generate`].
#[derive(Clone, Debug, PartialEq)]
pub struct SpecGeneration {
    /// Generated tokens (prompt excluded), identical to greedy decoding with the target submodel.
    pub tokens: Vec<u32>,
    /// Why it stopped.
    pub stop: StopReason,
    /// Acceptance counters.
    pub stats: SpecStats,
}

/// Greedy generation of `max_tokens` with `target`, drafting `k` tokens at a time with `draft`.
///
/// `draft_exec` and `target_exec` are two executors over the *same* weights (e.g. two `CpuLm`s sharing one
/// `Arc<ModelWeights>`): each keeps its own KV cache, since a narrower FFN gives different keys and values.
#[allow(clippy::too_many_arguments)] // draft and target each need an executor and a submodel
pub fn speculative_generate(
    draft_exec: &mut dyn LmExecutor,
    target_exec: &mut dyn LmExecutor,
    prompt: &[u32],
    draft: &Submodel,
    target: &Submodel,
    k: usize,
    max_tokens: usize,
    mut on_token: impl FnMut(u32),
) -> Result<SpecGeneration> {
    if k == 0 {
        return Err(RuntimeError::InvalidInput("speculative decoding needs k >= 1 draft tokens".into()));
    }
    let cfg = target_exec.config().clone();
    if draft_exec.config() != &cfg {
        return Err(RuntimeError::InvalidInput("draft and target executors must hold the same model".into()));
    }
    validate_tokens(&cfg, prompt, 0)?;
    let max_seq = cfg.max_seq_len();
    draft_exec.reset();
    target_exec.reset();
    let mut stats = SpecStats::default();
    let mut out: Vec<u32> = Vec::with_capacity(max_tokens);
    if max_tokens == 0 {
        return Ok(SpecGeneration { tokens: out, stop: StopReason::MaxTokens, stats });
    }
    // The target's prefill gives the first token; the draft catches up on the prompt lazily.
    let first = argmax(&target_exec.forward(prompt, target, Logits::Last)?) as u32;
    out.push(first);
    on_token(first);
    let mut committed: Vec<u32> = prompt.to_vec();
    committed.push(first); // the last entry is not yet in the target's cache
    loop {
        if out.len() >= max_tokens {
            return Ok(SpecGeneration { tokens: out, stop: StopReason::MaxTokens, stats });
        }
        let base = committed.len() - 1; // tokens in the target cache
        let room = max_seq.saturating_sub(base + 1); // positions left after `last`
        if room == 0 {
            // `last` still fits: its logits give one final token, as plain decoding would produce.
            let t = argmax(&target_exec.forward(&committed[base..], target, Logits::Last)?) as u32;
            out.push(t);
            on_token(t);
            return Ok(SpecGeneration { tokens: out, stop: StopReason::ContextFull, stats });
        }
        let k_now = k.min(room).min(max_tokens - out.len());
        // Draft: feed whatever the draft cache lacks (at least the last committed token), then k_now - 1 more.
        let t_draft = Instant::now();
        let d_len = draft_exec.cached_len();
        let mut logits = draft_exec.forward(&committed[d_len..], draft, Logits::Last)?;
        let mut drafted = Vec::with_capacity(k_now);
        for i in 0..k_now {
            let t = argmax(&logits) as u32;
            drafted.push(t);
            if i + 1 < k_now {
                logits = draft_exec.forward(&[t], draft, Logits::Last)?;
            }
        }
        stats.draft_steps += k_now;
        stats.draft_secs += t_draft.elapsed().as_secs_f64();
        // Verify all drafts in one pass: row j predicts the token after (last, d_1..d_j).
        let mut batch = Vec::with_capacity(k_now + 1);
        batch.push(committed[base]);
        batch.extend_from_slice(&drafted);
        let fits = base + batch.len() <= max_seq;
        let verify_len = if fits { batch.len() } else { batch.len() - 1 };
        let t_verify = Instant::now();
        let vlogits = target_exec.forward(&batch[..verify_len], target, Logits::All)?;
        stats.verify_secs += t_verify.elapsed().as_secs_f64();
        stats.verify_passes += 1;
        stats.drafted += k_now;
        let vocab = cfg.n_outputs();
        let row = |j: usize| argmax(&vlogits[j * vocab..(j + 1) * vocab]) as u32;
        let mut accepted = 0;
        while accepted < k_now && accepted < verify_len && drafted[accepted] == row(accepted) {
            accepted += 1;
        }
        stats.accepted += accepted;
        let mut new_tokens: Vec<u32> = drafted[..accepted].to_vec();
        if accepted < verify_len {
            new_tokens.push(row(accepted)); // the target's own token: a correction, or a bonus after all k
        }
        for &t in &new_tokens {
            if out.len() < max_tokens {
                out.push(t);
                on_token(t);
            }
        }
        committed.extend_from_slice(&new_tokens);
        // Keep only cache entries for committed tokens; the newest committed token is fed next round.
        let keep = committed.len() - 1;
        target_exec.truncate(keep);
        draft_exec.truncate(keep.min(draft_exec.cached_len()));
        if target_exec.cached_len() < keep {
            // Only when the verify pass was cut short by the context end: nothing more fits.
            return Ok(SpecGeneration { tokens: out, stop: StopReason::ContextFull, stats });
        }
    }
}
