//! Backward of LayerNorm and RMSNorm (statistics recomputed from `x`).

use crate::fast::par::rows_with_partials;
use crate::fast::{layernorm_stats, rms_rstd};
use crate::shape::check_len;

/// Backward of LayerNorm (`y = (x − mean)·rstd·gamma + beta`). Accumulates
/// `dx += rstd·(dŷ − mean(dŷ) − x̂·mean(dŷ·x̂))` with `dŷ = dy·gamma`,
/// `dgamma += Σ_rows dy·x̂` and `dbeta += Σ_rows dy`.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward(
    dy: &[f32],
    x: &[f32],
    gamma: &[f32],
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: Option<&mut [f32]>,
    n: usize,
    d: usize,
    eps: f32,
) {
    let op = "layernorm_backward";
    check(op, dy, x, gamma, dx, dgamma, n, d);
    if let Some(db) = &dbeta {
        check_len(op, "dbeta", db.len(), d);
    }
    let partials = rows_with_partials(dx, d, 8 * d, 2 * d, |row0, rows, part| {
        let (pg, pb) = part.split_at_mut(d);
        for (r, dxr) in rows.chunks_exact_mut(d).enumerate() {
            let i = row0 + r;
            let (xr, dyr) = (&x[i * d..(i + 1) * d], &dy[i * d..(i + 1) * d]);
            let (mean, rstd) = layernorm_stats(xr, eps);
            let (mut a, mut b) = (0.0f32, 0.0f32);
            for ((&xv, &g), &gy) in xr.iter().zip(gamma).zip(dyr) {
                let dn = g * gy;
                a += dn;
                b += dn * (xv - mean) * rstd;
            }
            let (a, b) = (a / d as f32, b / d as f32);
            for j in 0..d {
                let xhat = (xr[j] - mean) * rstd;
                dxr[j] += rstd * (gamma[j] * dyr[j] - a - xhat * b);
                pg[j] += dyr[j] * xhat;
                pb[j] += dyr[j];
            }
        }
    });
    let mut dbeta = dbeta;
    for part in partials.chunks_exact(2 * d) {
        add(dgamma, &part[..d]);
        if let Some(db) = dbeta.as_deref_mut() {
            add(db, &part[d..]);
        }
    }
}

/// Backward of RMSNorm (`y = x·r·gamma`, `r = 1/sqrt(mean(x²) + eps)`).
/// Accumulates `dx += r·(gamma·dy − x·r²·mean(dy·gamma·x))` and
/// `dgamma += Σ_rows dy·x·r`.
#[allow(clippy::too_many_arguments)]
pub fn rmsnorm_backward(
    dy: &[f32],
    x: &[f32],
    gamma: &[f32],
    dx: &mut [f32],
    dgamma: &mut [f32],
    n: usize,
    d: usize,
    eps: f32,
) {
    check("rmsnorm_backward", dy, x, gamma, dx, dgamma, n, d);
    let partials = rows_with_partials(dx, d, 6 * d, d, |row0, rows, pg| {
        for (r, dxr) in rows.chunks_exact_mut(d).enumerate() {
            let i = row0 + r;
            let (xr, dyr) = (&x[i * d..(i + 1) * d], &dy[i * d..(i + 1) * d]);
            let rstd = rms_rstd(xr, eps);
            let c: f32 = xr.iter().zip(gamma).zip(dyr).map(|((&xv, &g), &gy)| xv * g * gy).sum::<f32>() / d as f32;
            let r3c = rstd * rstd * c;
            for j in 0..d {
                dxr[j] += rstd * (gamma[j] * dyr[j] - xr[j] * r3c);
                pg[j] += dyr[j] * xr[j] * rstd;
            }
        }
    });
    for part in partials.chunks_exact(d) {
        add(dgamma, part);
    }
}

fn add(a: &mut [f32], b: &[f32]) {
    for (x, &y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

#[allow(clippy::too_many_arguments)]
#[track_caller]
fn check(op: &str, dy: &[f32], x: &[f32], gamma: &[f32], dx: &[f32], dgamma: &[f32], n: usize, d: usize) {
    check_len(op, "dy", dy.len(), n * d);
    check_len(op, "x", x.len(), n * d);
    check_len(op, "dx", dx.len(), n * d);
    check_len(op, "gamma", gamma.len(), d);
    check_len(op, "dgamma", dgamma.len(), d);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;
    use crate::testutil::{check_grad, project, rng, uniform};

    /// Central differences (step 1e-2) of the `f64`-accumulating reference
    /// forward. Truncation error is O(eps²·f''') ~ 1e-4 relative for these
    /// smooth O(1) functions; `f32` output rounding adds ~1e-5 absolute.
    /// Tolerance 2e-3 rel + 2e-3 abs. Shapes include one big enough to be
    /// split into several parallel tasks with partial weight gradients.
    #[test]
    fn gradients_match_finite_differences() {
        let mut r = rng(31);
        for &(n, d) in &[(1, 1), (1, 2), (3, 7), (2, 16)] {
            fd_case(&mut r, n, d);
        }
    }

    #[test]
    fn large_rows_accumulate_partials() {
        // 2000 rows of 33: many tasks; check dgamma/dbeta equal the
        // single-task result by comparing against a row-by-row sum.
        let mut r = rng(32);
        let (n, d) = (2000, 33);
        let x = uniform(&mut r, n * d);
        let g = uniform(&mut r, d);
        let dy = uniform(&mut r, n * d);
        let (mut dx, mut dg, mut db) = (vec![0.0; n * d], vec![0.0; d], vec![0.0; d]);
        layernorm_backward(&dy, &x, &g, &mut dx, &mut dg, Some(&mut db), n, d, 1e-5);
        let (mut dg1, mut db1) = (vec![0.0; d], vec![0.0; d]);
        let mut dx1 = vec![0.0; d];
        for i in 0..n {
            let s = i * d..(i + 1) * d;
            layernorm_backward(&dy[s.clone()], &x[s.clone()], &g, &mut dx1, &mut dg1, Some(&mut db1), 1, d, 1e-5);
        }
        crate::testutil::assert_close("dgamma", &dg, &dg1, 1e-4, 1e-4);
        crate::testutil::assert_close("dbeta", &db, &db1, 1e-4, 1e-4);
        let mut dgr = vec![0.0; d];
        let mut dxr = vec![0.0; n * d];
        rmsnorm_backward(&dy, &x, &g, &mut dxr, &mut dgr, n, d, 1e-6);
        assert!(dgr.iter().all(|v| v.is_finite()));
    }

    fn fd_case(r: &mut rand::rngs::StdRng, n: usize, d: usize) {
        let x: Vec<f32> = uniform(r, n * d).iter().map(|v| v * 2.0 + 0.3).collect();
        let g = uniform(r, d);
        let b = uniform(r, d);
        let rr = uniform(r, n * d);
        let eps = 1e-5;
        let ln = |x: &[f32], g: &[f32], b: &[f32]| {
            let mut y = vec![0.0; n * d];
            reference::layernorm(x, g, Some(b), &mut y, n, d, eps);
            project(&y, &rr)
        };
        let (mut dx, mut dg, mut db) = (vec![0.0; n * d], vec![0.0; d], vec![0.0; d]);
        layernorm_backward(&rr, &x, &g, &mut dx, &mut dg, Some(&mut db), n, d, eps);
        let (h, rt, at) = (1e-2, 2e-3, 2e-3);
        check_grad("ln dx", &x, &dx, &mut |p| ln(p, &g, &b), h, rt, at);
        check_grad("ln dgamma", &g, &dg, &mut |p| ln(&x, p, &b), h, rt, at);
        check_grad("ln dbeta", &b, &db, &mut |p| ln(&x, &g, p), h, rt, at);

        let rms = |x: &[f32], g: &[f32]| {
            let mut y = vec![0.0; n * d];
            reference::rmsnorm(x, g, &mut y, n, d, eps);
            project(&y, &rr)
        };
        let (mut dx, mut dg) = (vec![0.0; n * d], vec![0.0; d]);
        rmsnorm_backward(&rr, &x, &g, &mut dx, &mut dg, n, d, eps);
        check_grad("rms dx", &x, &dx, &mut |p| rms(p, &g), h, rt, at);
        check_grad("rms dgamma", &g, &dg, &mut |p| rms(&x, p), h, rt, at);
    }
}
