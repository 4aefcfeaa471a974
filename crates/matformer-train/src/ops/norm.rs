//! LayerNorm and RMSNorm with saved statistics, and their backward passes.

use rayon::prelude::*;

use super::ROW_CHUNK;

/// Which normalization, with its parameters.
#[derive(Clone, Copy, Debug)]
pub enum NormParams<'a> {
    /// LayerNorm: scale and optional shift.
    Layer {
        /// Scale `[d]`.
        gamma: &'a [f32],
        /// Shift `[d]`.
        beta: Option<&'a [f32]>,
    },
    /// RMSNorm: scale only.
    Rms {
        /// Scale `[d]`.
        gamma: &'a [f32],
    },
}

/// Normalize `n` rows of `x [n,d]` into `y`, saving each row's mean (0 for RMSNorm) and reciprocal std.
#[allow(clippy::too_many_arguments)]
pub fn norm_forward(
    p: NormParams<'_>,
    x: &[f32],
    y: &mut [f32],
    mean: &mut [f32],
    rstd: &mut [f32],
    n: usize,
    d: usize,
    eps: f32,
) {
    assert_eq!(x.len(), n * d, "norm: x has the wrong length");
    assert_eq!(y.len(), n * d, "norm: y has the wrong length");
    assert!(mean.len() == n && rstd.len() == n, "norm: stats have the wrong length");
    if n == 0 {
        return;
    }
    y.par_chunks_mut(ROW_CHUNK * d)
        .zip(mean.par_chunks_mut(ROW_CHUNK))
        .zip(rstd.par_chunks_mut(ROW_CHUNK))
        .enumerate()
        .for_each(|(c, ((yb, mb), rb))| {
            for (r, (yr, (mr, rr))) in yb.chunks_exact_mut(d).zip(mb.iter_mut().zip(rb.iter_mut())).enumerate() {
                let row = &x[(c * ROW_CHUNK + r) * d..][..d];
                match p {
                    NormParams::Layer { gamma, beta } => {
                        let mu = row.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
                        let var = row.iter().map(|&v| (v as f64 - mu).powi(2)).sum::<f64>() / d as f64;
                        let rs = (1.0 / (var + eps as f64).sqrt()) as f32;
                        let mu = mu as f32;
                        for j in 0..d {
                            yr[j] = (row[j] - mu) * rs * gamma[j] + beta.map_or(0.0, |b| b[j]);
                        }
                        *mr = mu;
                        *rr = rs;
                    }
                    NormParams::Rms { gamma } => {
                        let ms = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / d as f64;
                        let rs = (1.0 / (ms + eps as f64).sqrt()) as f32;
                        for j in 0..d {
                            yr[j] = row[j] * rs * gamma[j];
                        }
                        *mr = 0.0;
                        *rr = rs;
                    }
                }
            }
        });
}

/// Backward of [`norm_forward`]: `dx += ∂L/∂x`, `dgamma += ∂L/∂γ`, `dbeta += ∂L/∂β` (LayerNorm with a shift).
/// `layer` selects LayerNorm (true) or RMSNorm (false).
#[allow(clippy::too_many_arguments)]
pub fn norm_backward(
    layer: bool,
    dy: &[f32],
    x: &[f32],
    mean: &[f32],
    rstd: &[f32],
    gamma: &[f32],
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: Option<&mut [f32]>,
    n: usize,
    d: usize,
) {
    assert!(dy.len() == n * d && x.len() == n * d && dx.len() == n * d, "norm_backward: wrong lengths");
    if n == 0 {
        return;
    }
    let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
        .par_chunks_mut(ROW_CHUNK * d)
        .enumerate()
        .map(|(c, dxb)| {
            let mut dg = vec![0.0f32; d];
            let mut db = vec![0.0f32; d];
            let mut xhat = vec![0.0f32; d];
            for (r, dxr) in dxb.chunks_exact_mut(d).enumerate() {
                let i = c * ROW_CHUNK + r;
                let (xr, dyr) = (&x[i * d..][..d], &dy[i * d..][..d]);
                let (mu, rs) = (mean[i], rstd[i]);
                let mut sum_g = 0.0f32;
                let mut sum_gx = 0.0f32;
                for j in 0..d {
                    xhat[j] = (xr[j] - mu) * rs;
                    let g = dyr[j] * gamma[j];
                    sum_g += g;
                    sum_gx += g * xhat[j];
                    dg[j] += dyr[j] * xhat[j];
                    db[j] += dyr[j];
                }
                let mean_g = if layer { sum_g / d as f32 } else { 0.0 };
                let mean_gx = sum_gx / d as f32;
                for j in 0..d {
                    dxr[j] += rs * (dyr[j] * gamma[j] - mean_g - xhat[j] * mean_gx);
                }
            }
            (dg, db)
        })
        .collect();
    for (dg, _) in &partials {
        for (a, &v) in dgamma.iter_mut().zip(dg) {
            *a += v;
        }
    }
    if let Some(dbeta) = dbeta {
        for (_, db) in &partials {
            for (a, &v) in dbeta.iter_mut().zip(db) {
                *a += v;
            }
        }
    }
}
