//! Consistency of submodels with the full model: greedy next-token agreement and KL(full ‖ sub).

use matformer_graph::Submodel;

use crate::error::{Result, RuntimeError};
use crate::executor::{LmExecutor, Logits};
use crate::sampling::argmax;

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

fn log_softmax(row: &[f32]) -> Vec<f64> {
    let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = row.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln() + max;
    row.iter().map(|&v| v as f64 - lse).collect()
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
    let mut acc = vec![(0usize, 0.0f64); subs.len()];
    let mut positions = 0;
    for chunk in tokens.chunks(window) {
        exec.reset();
        let r = exec.forward(chunk, reference, Logits::All)?;
        let ref_rows: Vec<(usize, Vec<f64>)> =
            r.chunks_exact(vocab).map(|row| (argmax(row), log_softmax(row))).collect();
        positions += chunk.len();
        for (si, s) in subs.iter().enumerate() {
            exec.reset();
            let o = exec.forward(chunk, s, Logits::All)?;
            for (row, (ref_arg, ref_lp)) in o.chunks_exact(vocab).zip(&ref_rows) {
                let lp = log_softmax(row);
                acc[si].0 += (argmax(row) == *ref_arg) as usize;
                acc[si].1 += ref_lp.iter().zip(&lp).map(|(p, q)| p.exp() * (p - q)).sum::<f64>();
            }
        }
    }
    Ok(acc
        .into_iter()
        .map(|(agree, kl)| Consistency {
            agreement: agree as f64 / positions as f64,
            kl: kl / positions as f64,
            positions,
        })
        .collect())
}
