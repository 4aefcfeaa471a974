//! Consistency of submodels with the full model: greedy next-token agreement and KL(full ‖ sub).

use matformer_cpu::fast::{agreement_kl, RowAgreement};
use matformer_graph::Submodel;

use crate::error::{Result, RuntimeError};
use crate::executor::{LmExecutor, Logits};

/// Agreement of one submodel with the reference.
#[derive(Clone, Debug, PartialEq)]
pub struct Consistency {
    /// Fraction of positions where both pick the same greedy token.
    pub agreement: f64,
    /// Mean KL divergence KL(reference ‖ submodel) in nats.
    pub kl: f64,
    /// Positions compared.
    pub positions: usize,
}

/// Compare each of `subs` with `reference` on `tokens`, in windows of at most the context length.
pub fn consistency(
    exec: &mut dyn LmExecutor,
    tokens: &[u32],
    reference: &Submodel,
    subs: &[Submodel],
    window: usize,
) -> Result<Vec<Consistency>> {
    if tokens.len() < 2 {
        return Err(RuntimeError::InvalidInput("need at least two tokens to compare predictions".into()));
    }
    let vocab = exec.config().n_outputs();
    let window = window.min(exec.config().max_seq_len()).max(1);
    let mut acc = vec![RowAgreement::default(); subs.len()];
    for chunk in tokens.chunks(window) {
        exec.reset();
        let r = exec.forward(chunk, reference, Logits::All)?;
        for (si, s) in subs.iter().enumerate() {
            exec.reset();
            let o = exec.forward(chunk, s, Logits::All)?;
            acc[si] += agreement_kl(&r, &o, chunk.len(), vocab);
        }
    }
    Ok(acc.into_iter().map(|a| Consistency { agreement: a.agreement(), kl: a.mean_kl(), positions: a.rows }).collect())
}
