//! Reference normalizations: LayerNorm and RMSNorm, statistics in `f64`.

use crate::shape::check_len;
use crate::WeightElem;

/// LayerNorm over rows of `x[n,d]`:
/// `y = (x - mean) / sqrt(var + eps) * gamma (+ beta)`, biased variance.
#[allow(clippy::too_many_arguments)]
pub fn layernorm<W: WeightElem>(
    x: &[f32],
    gamma: &[W],
    beta: Option<&[W]>,
    y: &mut [f32],
    n: usize,
    d: usize,
    eps: f32,
) {
    check_norm("layernorm", x, gamma, y, n, d);
    if let Some(b) = beta {
        check_len("layernorm", "beta", b.len(), d);
    }
    for i in 0..n {
        let row = &x[i * d..(i + 1) * d];
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
        let rstd = 1.0 / (var + eps as f64).sqrt();
        for j in 0..d {
            let mut v = (row[j] as f64 - mean) * rstd * gamma[j].to_f32() as f64;
            if let Some(b) = beta {
                v += b[j].to_f32() as f64;
            }
            y[i * d + j] = v as f32;
        }
    }
}

/// RMSNorm (Llama) over rows of `x[n,d]`: `y = x / sqrt(mean(x²) + eps) * gamma`.
pub fn rmsnorm<W: WeightElem>(x: &[f32], gamma: &[W], y: &mut [f32], n: usize, d: usize, eps: f32) {
    check_norm("rmsnorm", x, gamma, y, n, d);
    for i in 0..n {
        let row = &x[i * d..(i + 1) * d];
        let ms = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / d as f64;
        let r = 1.0 / (ms + eps as f64).sqrt();
        for j in 0..d {
            y[i * d + j] = (row[j] as f64 * r * gamma[j].to_f32() as f64) as f32;
        }
    }
}

/// Shape checks shared by the norms.
#[track_caller]
pub(crate) fn check_norm<W>(op: &str, x: &[f32], gamma: &[W], y: &[f32], n: usize, d: usize) {
    check_len(op, "x", x.len(), n * d);
    check_len(op, "y", y.len(), n * d);
    check_len(op, "gamma", gamma.len(), d);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layernorm_normalizes() {
        let x = [1.0, 2.0, 3.0, 4.0];
        let mut y = [0.0; 4];
        layernorm(&x, &[1.0f32; 4], Some(&[1.0f32; 4]), &mut y, 1, 4, 0.0);
        let s = 1.25f32.sqrt();
        let want = [-1.5 / s + 1.0, -0.5 / s + 1.0, 0.5 / s + 1.0, 1.5 / s + 1.0];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn rmsnorm_known() {
        let x = [3.0, 4.0];
        let mut y = [0.0; 2];
        rmsnorm(&x, &[1.0f32, 2.0], &mut y, 1, 2, 0.0);
        let r = (12.5f32).sqrt();
        assert!((y[0] - 3.0 / r).abs() < 1e-6 && (y[1] - 8.0 / r).abs() < 1e-6);
    }
}
