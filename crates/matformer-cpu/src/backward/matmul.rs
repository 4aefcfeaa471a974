//! Backward of the matrix products, via parallel `gemm`.

use crate::fast::gemm::{col_major, gemm, row_major};
use crate::shape::check_len;

/// Backward of [`crate::fast::matmul_nt`] (`y[n,m] = x[n,k] · w[m,k]ᵀ + b`).
/// Accumulates `dx[n,k] += dy · w`, `dw[m,k] += dyᵀ · x` and
/// `dbias[m] += Σ_rows dy`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_nt_backward(
    dy: &[f32],
    x: &[f32],
    w: &[f32],
    dx: &mut [f32],
    dw: &mut [f32],
    dbias: Option<&mut [f32]>,
    n: usize,
    k: usize,
    m: usize,
) {
    check("matmul_nt_backward", dy, x, w, dx, dw, &dbias, n, k, m);
    // dx[n,k] += dy[n,m] · w[m,k]
    gemm((n, k, m), dx, row_major(k), dy, row_major(m), w, row_major(k), true, 1.0, true);
    // dw[m,k] += dy[n,m]ᵀ · x[n,k]
    gemm((m, k, n), dw, row_major(k), dy, col_major(m), x, row_major(k), true, 1.0, true);
    if let Some(db) = dbias {
        bias_grad(dy, db, m);
    }
}

/// Backward of [`crate::fast::matmul_nn`] (`y[n,m] = x[n,k] · w[k,m] + b`).
/// Accumulates `dx[n,k] += dy · wᵀ`, `dw[k,m] += xᵀ · dy` and
/// `dbias[m] += Σ_rows dy`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_nn_backward(
    dy: &[f32],
    x: &[f32],
    w: &[f32],
    dx: &mut [f32],
    dw: &mut [f32],
    dbias: Option<&mut [f32]>,
    n: usize,
    k: usize,
    m: usize,
) {
    check("matmul_nn_backward", dy, x, w, dx, dw, &dbias, n, k, m);
    // dx[n,k] += dy[n,m] · w[k,m]ᵀ
    gemm((n, k, m), dx, row_major(k), dy, row_major(m), w, col_major(m), true, 1.0, true);
    // dw[k,m] += x[n,k]ᵀ · dy[n,m]
    gemm((k, m, n), dw, row_major(m), x, col_major(k), dy, row_major(m), true, 1.0, true);
    if let Some(db) = dbias {
        bias_grad(dy, db, m);
    }
}

/// `db[m] += Σ_rows dy[n,m]`.
fn bias_grad(dy: &[f32], db: &mut [f32], m: usize) {
    for row in dy.chunks_exact(m.max(1)) {
        for (d, &g) in db.iter_mut().zip(row) {
            *d += g;
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[track_caller]
fn check(
    op: &str,
    dy: &[f32],
    x: &[f32],
    w: &[f32],
    dx: &[f32],
    dw: &[f32],
    dbias: &Option<&mut [f32]>,
    n: usize,
    k: usize,
    m: usize,
) {
    check_len(op, "dy", dy.len(), n * m);
    check_len(op, "x", x.len(), n * k);
    check_len(op, "w", w.len(), k * m);
    check_len(op, "dx", dx.len(), n * k);
    check_len(op, "dw", dw.len(), k * m);
    if let Some(db) = dbias {
        check_len(op, "dbias", db.len(), m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;
    use crate::testutil::{assert_close, check_grad, project, rng, uniform};

    /// Finite differences of the `f64`-accumulating reference forward with
    /// step 1e-2: the loss `Σ y·r` is linear in each argument, so central
    /// differences are exact up to `f32` rounding of `y` (≈1e-7·|y|·√(nm)
    /// over a step of 2e-2, i.e. ≲1e-4 absolute here). Tolerance 1e-3 rel +
    /// 1e-3 abs.
    #[test]
    fn gradients_match_finite_differences() {
        let mut r = rng(21);
        for &(n, k, m) in &[(1, 1, 1), (3, 7, 5), (4, 9, 6)] {
            for nt in [true, false] {
                let x = uniform(&mut r, n * k);
                let w = uniform(&mut r, k * m);
                let b = uniform(&mut r, m);
                let rr = uniform(&mut r, n * m);
                let fwd = |x: &[f32], w: &[f32], b: &[f32]| {
                    let mut y = vec![0.0; n * m];
                    if nt {
                        reference::matmul_nt(x, w, Some(b), &mut y, n, k, m);
                    } else {
                        reference::matmul_nn(x, w, Some(b), &mut y, n, k, m);
                    }
                    project(&y, &rr)
                };
                // start from non-zero grads to check accumulation
                let (mut dx, mut dw, mut db) = (vec![1.0; n * k], vec![1.0; k * m], vec![1.0; m]);
                if nt {
                    matmul_nt_backward(&rr, &x, &w, &mut dx, &mut dw, Some(&mut db), n, k, m);
                } else {
                    matmul_nn_backward(&rr, &x, &w, &mut dx, &mut dw, Some(&mut db), n, k, m);
                }
                let sub1 = |v: &[f32]| v.iter().map(|g| g - 1.0).collect::<Vec<_>>();
                let (eps, rt, at) = (1e-2, 1e-3, 1e-3);
                check_grad("dx", &x, &sub1(&dx), &mut |p| fwd(p, &w, &b), eps, rt, at);
                check_grad("dw", &w, &sub1(&dw), &mut |p| fwd(&x, p, &b), eps, rt, at);
                check_grad("db", &b, &sub1(&db), &mut |p| fwd(&x, &w, p), eps, rt, at);
            }
        }
    }

    /// Larger, non-tile-multiple shapes against plain `f64` loops (the gemm
    /// strides are what is being tested). Tolerance 1e-5 rel + 1e-5 abs for
    /// sums of ≤ 130 products of values in [-1, 1].
    #[test]
    fn large_shapes_match_loops() {
        let mut r = rng(22);
        for &(n, k, m) in &[(33, 130, 7), (130, 33, 65), (1, 70, 33)] {
            let x = uniform(&mut r, n * k);
            let w = uniform(&mut r, k * m);
            let dy = uniform(&mut r, n * m);
            for nt in [true, false] {
                let wv = |l: usize, j: usize| if nt { w[j * k + l] } else { w[l * m + j] } as f64;
                let (mut dx, mut dw, mut db) = (vec![0.0; n * k], vec![0.0; k * m], vec![0.0; m]);
                if nt {
                    matmul_nt_backward(&dy, &x, &w, &mut dx, &mut dw, Some(&mut db), n, k, m);
                } else {
                    matmul_nn_backward(&dy, &x, &w, &mut dx, &mut dw, Some(&mut db), n, k, m);
                }
                let mut wdx = vec![0.0; n * k];
                let mut wdw = vec![0.0; k * m];
                for i in 0..n {
                    for l in 0..k {
                        wdx[i * k + l] = (0..m).map(|j| dy[i * m + j] as f64 * wv(l, j)).sum::<f64>() as f32;
                    }
                }
                for j in 0..m {
                    for l in 0..k {
                        let g = (0..n).map(|i| dy[i * m + j] as f64 * x[i * k + l] as f64).sum::<f64>() as f32;
                        let idx = if nt { j * k + l } else { l * m + j };
                        wdw[idx] = g;
                    }
                }
                let wdb: Vec<f32> = (0..m).map(|j| (0..n).map(|i| dy[i * m + j]).sum()).collect();
                assert_close("dx", &dx, &wdx, 1e-5, 1e-5);
                assert_close("dw", &dw, &wdw, 1e-5, 1e-5);
                assert_close("db", &db, &wdb, 1e-5, 1e-5);
            }
        }
    }
}
