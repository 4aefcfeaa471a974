//! Matrix products through the `gemm` crate (parallel over output tiles, so each output element is
//! reduced in a fixed order: deterministic for a given machine).

use gemm::Parallelism;

fn par(work: usize) -> Parallelism {
    if work >= 1 << 16 && rayon::current_num_threads() > 1 {
        Parallelism::Rayon(0)
    } else {
        Parallelism::None
    }
}

/// Strided f32 GEMM: `dst[m×n] = (acc ? dst : 0) + lhs[m×k] · rhs[k×n]`; strides are `(row, col)`.
///
/// # Safety
/// Every pointer must be valid for the extents its strides describe and `dst` must not alias the inputs.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_strided(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    (drs, dcs): (usize, usize),
    lhs: *const f32,
    (lrs, lcs): (usize, usize),
    rhs: *const f32,
    (rrs, rcs): (usize, usize),
    acc: bool,
    parallel: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !acc {
            for r in 0..m {
                for c in 0..n {
                    *dst.add(r * drs + c * dcs) = 0.0;
                }
            }
        }
        return;
    }
    let p = if parallel { par(m * n * k) } else { Parallelism::None };
    gemm::gemm(
        m,
        n,
        k,
        dst,
        dcs as isize,
        drs as isize,
        acc,
        lhs,
        lcs as isize,
        lrs as isize,
        rhs,
        rcs as isize,
        rrs as isize,
        1.0,
        1.0,
        false,
        false,
        false,
        p,
    );
}

fn check(op: &str, what: &str, len: usize, want: usize) {
    assert_eq!(len, want, "{op}: `{what}` has length {len}, expected {want}");
}

/// `y[n,m] (+)= x[n,k] · w[m,k]ᵀ` (a linear layer with PyTorch `[out, in]` weights).
pub fn matmul_nt(x: &[f32], w: &[f32], y: &mut [f32], n: usize, k: usize, m: usize, acc: bool) {
    check("matmul_nt", "x", x.len(), n * k);
    check("matmul_nt", "w", w.len(), m * k);
    check("matmul_nt", "y", y.len(), n * m);
    // SAFETY: extents checked above; `y` is an exclusive borrow.
    unsafe { gemm_strided((n, m, k), y.as_mut_ptr(), (m, 1), x.as_ptr(), (k, 1), w.as_ptr(), (1, k), acc, true) }
}

/// `y[n,m] (+)= x[n,k] · w[k,m]`.
pub fn matmul_nn(x: &[f32], w: &[f32], y: &mut [f32], n: usize, k: usize, m: usize, acc: bool) {
    check("matmul_nn", "x", x.len(), n * k);
    check("matmul_nn", "w", w.len(), k * m);
    check("matmul_nn", "y", y.len(), n * m);
    // SAFETY: extents checked above; `y` is an exclusive borrow.
    unsafe { gemm_strided((n, m, k), y.as_mut_ptr(), (m, 1), x.as_ptr(), (k, 1), w.as_ptr(), (m, 1), acc, true) }
}

/// `y[m,k] (+)= a[n,m]ᵀ · b[n,k]` (weight gradients: `dW = dYᵀ · X`).
pub fn matmul_tn(a: &[f32], b: &[f32], y: &mut [f32], n: usize, m: usize, k: usize, acc: bool) {
    check("matmul_tn", "a", a.len(), n * m);
    check("matmul_tn", "b", b.len(), n * k);
    check("matmul_tn", "y", y.len(), m * k);
    // SAFETY: extents checked above; `y` is an exclusive borrow.
    unsafe { gemm_strided((m, k, n), y.as_mut_ptr(), (k, 1), a.as_ptr(), (1, m), b.as_ptr(), (k, 1), acc, true) }
}

/// Backward of `y = x·Wᵀ (+ b)` with `W [m,k]`: `dx += dy·W` (when given), `dW += dyᵀ·x`, `db += colsum(dy)`.
#[allow(clippy::too_many_arguments)]
pub fn linear_backward(
    dy: &[f32],
    x: &[f32],
    w: &[f32],
    dx: Option<&mut [f32]>,
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    n: usize,
    k: usize,
    m: usize,
) {
    if let Some(dx) = dx {
        matmul_nn(dy, w, dx, n, m, k, true);
    }
    matmul_tn(dy, x, dw, n, m, k, true);
    if let Some(db) = db {
        super::colsum_accumulate(dy, db, n, m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_nt(x: &[f32], w: &[f32], n: usize, k: usize, m: usize) -> Vec<f32> {
        let mut y = vec![0.0; n * m];
        for i in 0..n {
            for j in 0..m {
                y[i * m + j] = (0..k).map(|l| x[i * k + l] * w[j * k + l]).sum();
            }
        }
        y
    }

    #[test]
    fn products_match_naive() {
        let (n, k, m) = (7, 5, 3);
        let x: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let w: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.11).cos()).collect();
        let want = naive_nt(&x, &w, n, k, m);
        let mut y = vec![1.0; n * m];
        matmul_nt(&x, &w, &mut y, n, k, m, false);
        for (a, b) in y.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5);
        }
        // w as [k, m]: transpose.
        let mut wt = vec![0.0; k * m];
        for j in 0..m {
            for l in 0..k {
                wt[l * m + j] = w[j * k + l];
            }
        }
        let mut y2 = vec![0.0; n * m];
        matmul_nn(&x, &wt, &mut y2, n, k, m, false);
        for (a, b) in y2.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5);
        }
        // tn: y[m,k] = a[n,m]^T b[n,k]
        let mut g = vec![0.0; m * k];
        matmul_tn(&want, &x, &mut g, n, m, k, false);
        for j in 0..m {
            for l in 0..k {
                let e: f32 = (0..n).map(|i| want[i * m + j] * x[i * k + l]).sum();
                assert!((g[j * k + l] - e).abs() < 1e-4);
            }
        }
    }
}
