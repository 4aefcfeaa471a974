//! Softmax cross-entropy, fused with its gradient.

use rayon::prelude::*;

use super::ROW_CHUNK;

/// Result of [`cross_entropy`] over a set of rows.
#[derive(Clone, Copy, Debug, Default)]
pub struct CeStats {
    /// Sum of per-row losses (nats).
    pub loss_sum: f64,
    /// Rows whose argmax equals the target.
    pub correct: usize,
}

/// Cross-entropy of `logits [n, v]` against `targets`; when `dlogits` is given, writes
/// `(softmax − onehot) · grad_scale` into it (e.g. `grad_scale = 1/n` for a mean loss).
pub fn cross_entropy(
    logits: &[f32],
    targets: &[u32],
    n: usize,
    v: usize,
    dlogits: Option<(&mut [f32], f32)>,
) -> CeStats {
    assert_eq!(logits.len(), n * v, "cross_entropy: logits have the wrong length");
    assert_eq!(targets.len(), n, "cross_entropy: targets have the wrong length");
    let row = |i: usize, lr: &[f32], d: Option<&mut [f32]>, scale: f32| -> (f64, bool) {
        let t = targets[i] as usize;
        let max = lr.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let sum: f64 = lr.iter().map(|&x| ((x - max) as f64).exp()).sum();
        let lse = max as f64 + sum.ln();
        let arg = lr.iter().enumerate().fold(0, |best, (j, &x)| if x > lr[best] { j } else { best });
        if let Some(d) = d {
            for (j, (g, &x)) in d.iter_mut().zip(lr).enumerate() {
                let p = ((x as f64 - lse).exp()) as f32;
                *g = (p - if j == t { 1.0 } else { 0.0 }) * scale;
            }
        }
        (lse - lr[t] as f64, arg == t)
    };
    let parts: Vec<CeStats> = match dlogits {
        Some((d, scale)) => {
            assert_eq!(d.len(), n * v, "cross_entropy: dlogits has the wrong length");
            d.par_chunks_mut(ROW_CHUNK * v)
                .enumerate()
                .map(|(c, db)| {
                    let mut s = CeStats::default();
                    for (r, dr) in db.chunks_exact_mut(v).enumerate() {
                        let i = c * ROW_CHUNK + r;
                        let (l, ok) = row(i, &logits[i * v..][..v], Some(dr), scale);
                        s.loss_sum += l;
                        s.correct += ok as usize;
                    }
                    s
                })
                .collect()
        }
        None => logits
            .par_chunks(ROW_CHUNK * v)
            .enumerate()
            .map(|(c, lb)| {
                let mut s = CeStats::default();
                for (r, lr) in lb.chunks_exact(v).enumerate() {
                    let (l, ok) = row(c * ROW_CHUNK + r, lr, None, 0.0);
                    s.loss_sum += l;
                    s.correct += ok as usize;
                }
                s
            })
            .collect(),
    };
    parts
        .iter()
        .fold(CeStats::default(), |a, p| CeStats { loss_sum: a.loss_sum + p.loss_sum, correct: a.correct + p.correct })
}
